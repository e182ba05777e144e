// What the import dialog needs besides the API: the Content-Type of a chosen file, the template (a CSV made
// here with the Chinese headers server/member_import.py accepts) and its row errors in Chinese.

export const XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

/** The headers the importer reads (its HEADER_ALIASES), in the order of its columns. */
export const TEMPLATE_HEADERS = ["姓名", "手机号", "性别", "出生日期", "政治面貌", "标签"];

/** The Content-Type to send for a chosen file, or null for a file the importer does not read. */
export function importType(file: { name: string }): string | null {
  const name = file.name.toLowerCase();
  if (name.endsWith(".xlsx")) return XLSX_TYPE;
  if (name.endsWith(".csv")) return "text/csv";
  return null;
}

/** The template: UTF-8 with a BOM (so Excel opens it as UTF-8), the header row and no data rows, so that
 * nothing made up is imported by a file sent back half-filled. */
export function templateCsv(): Blob {
  return new Blob(["\ufeff" + TEMPLATE_HEADERS.join(",") + "\r\n"], { type: "text/csv;charset=utf-8" });
}

const FIELD_NAMES: Record<string, string> = {
  name: "姓名", phone: "手机号", gender: "性别", birth_date: "出生日期", party_status: "政治面貌", tags: "标签",
};

/** One row's error as the importer writes it (msgspec's English, or `code: detail`), in Chinese. */
export function rowMessage(message: string): string {
  if (message.startsWith("phone_taken")) return "手机号已被其他成员使用";
  if (message.startsWith("forbidden")) return "无权修改该成员（其角色高于您的权限）";
  const missing = message.match(/missing required field `(\w+)`/i)?.[1];
  if (missing) return `${FIELD_NAMES[missing] ?? missing}：必填`;
  const field = message.match(/at `\$\.(\w+)/)?.[1] ?? (/phone number is/i.test(message) ? "phone" : undefined);
  const where = field ? `${FIELD_NAMES[field] ?? field}：` : "";
  if (field === "phone") return "手机号：应为 6 到 15 位数字";
  if (field === "gender") return "性别：应为“男”或“女”";
  if (field === "party_status") return "政治面貌：应为“正式党员”“预备党员”或“群众”";
  if (field === "birth_date") return "出生日期：格式应为 YYYY-MM-DD";
  const min = message.match(/length >= (\d+)/)?.[1];
  if (min) return min === "1" ? `${where}必填` : `${where}至少 ${min} 个字符`;
  const max = message.match(/length <= (\d+)/)?.[1];
  if (max) return `${where}最多 ${max} 个字符`;
  if (/enum value/i.test(message)) return `${where}取值不在允许范围内`;
  return `${where}填写有误`;
}
