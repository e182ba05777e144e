// A template's field mapping as the form edits it: rows of a WeChat keyword key (thing1, time2, as the
// template shows them in the WeChat console) and the event's value that fills it. The server checks the
// same; these checks answer on the row before it is sent, from the template's `fits` (each value name →
// the keyword kinds it may fill), so the two cannot disagree.

export interface MappingRow {
  key: string;
  value: string;
}

/** WeChat's keyword keys: the kind, then one or two digits (schemas/notifications.py's WechatKey). */
const KEY = /^[a-z_]+[0-9]{1,2}$/;
export const MAX_ROWS = 10;

export function rowsFrom(fields: Record<string, string>): MappingRow[] {
  const rows = Object.entries(fields).map(([key, value]) => ({ key, value }));
  return rows.length ? rows : [{ key: "", value: "" }];
}

/** The body's `fields`: each row's key (trimmed) → its value. */
export function fieldsFrom(rows: MappingRow[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const r of rows) out[r.key.trim()] = r.value;
  return out;
}

/** A keyword key's kind: its letters (`time2` → time, `character_string3` → character_string). */
export function keyKind(key: string): string {
  return key.replace(/[0-9]+$/, "");
}

/** What is wrong with each row (by index), in Chinese; empty when the mapping may be sent. */
export function rowProblems(rows: MappingRow[], fits: Record<string, string[]>): Record<number, string> {
  const problems: Record<number, string> = {};
  const seen = new Set<string>();
  rows.forEach((r, i) => {
    const key = r.key.trim();
    if (!key) problems[i] = "请填写模板关键词，如 thing1";
    else if (!KEY.test(key) || key.length > 32) problems[i] = "关键词格式如 thing1、time2（小写字母加一到两位数字）";
    else if (seen.has(key)) problems[i] = "关键词重复";
    else if (!r.value) problems[i] = "请选择填入的内容";
    else if (!(r.value in fits)) problems[i] = "此事件没有该内容";
    else if (!fits[r.value].includes(keyKind(key))) problems[i] = `该内容不能填入 ${keyKind(key)} 类关键词`;
    seen.add(key);
  });
  return problems;
}
