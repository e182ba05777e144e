// Bulk import of members into one org from CSV or xlsx (POST /orgs/{id}/members/import), and the template
// file: a CSV made here with the Chinese headers and values server/member_import.py accepts.
import { api } from "@/api/client";
import type { Schemas } from "@/api/types";

export type ImportResult = Schemas["ImportResult"];

export const XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

/** The headers the importer reads (HEADER_ALIASES), in the order of its columns. */
export const TEMPLATE_HEADERS = ["姓名", "手机号", "性别", "出生日期", "政治面貌", "标签"];

/** The Content-Type to send for a chosen file, or null for a file the importer does not read. */
export function importType(file: File): string | null {
  const name = file.name.toLowerCase();
  if (name.endsWith(".xlsx")) return XLSX_TYPE;
  if (name.endsWith(".csv")) return "text/csv";
  return null;
}

export function importMembers(orgId: string, file: File, type: string): Promise<ImportResult> {
  return api.upload("/api/v1/orgs/{org_id}/members/import", file, type, { path: { org_id: orgId } });
}

/** The template: UTF-8 with a BOM (so Excel opens it as UTF-8), the header row and no data rows. */
export function templateCsv(): Blob {
  return new Blob(["\ufeff" + TEMPLATE_HEADERS.join(",") + "\r\n"], { type: "text/csv;charset=utf-8" });
}

const FIELD_NAMES: Record<string, string> = {
  name: "姓名", phone: "手机号", gender: "性别", birth_date: "出生日期", party_status: "政治面貌", tags: "标签",
};

/** One row's error as the importer wrote it (msgspec's English, or `code: detail`), in Chinese. */
export function rowMessage(message: string): string {
  if (message.startsWith("phone_taken")) return "手机号已被其他成员使用";
  if (message.startsWith("forbidden")) return "无权修改该成员（其角色高于您的权限）";
  if (/phone number is/i.test(message)) return "手机号：应为 6 到 15 位数字";
  const field = message.match(/at `\$\.(\w+)/)?.[1];
  const where = field ? `${FIELD_NAMES[field] ?? field}：` : "";
  if (/missing required field `(\w+)`/i.test(message)) {
    const missing = message.match(/missing required field `(\w+)`/i)![1];
    return `${FIELD_NAMES[missing] ?? missing}：必填`;
  }
  if (/Invalid enum value/i.test(message)) {
    if (field === "gender") return "性别：应为“男”或“女”";
    if (field === "party_status") return "政治面貌：应为“正式党员”“预备党员”或“群众”";
    return `${where}取值不在允许范围内`;
  }
  if (/date/i.test(message) && field === "birth_date") return "出生日期：格式应为 YYYY-MM-DD";
  if (/length >= 1/.test(message)) return `${where}必填`;
  const max = message.match(/length <= (\d+)/);
  if (max) return `${where}最多 ${max[1]} 个字符`;
  const min = message.match(/length >= (\d+)/);
  if (min) return `${where}至少 ${min[1]} 个字符`;
  if (/matching regex/i.test(message)) return `${where}格式不正确`;
  return `${where}填写有误`;
}
