// A programme's eligibility rules (API.md §6) in one Chinese line, for tables and the activity page.
import type { Rules } from "@/composables/useProgrammes";

export const GENDER_LABELS = { male: "男", female: "女" } as const;
export const PARTY_STATUS_LABELS = { full: "正式党员", probationary: "预备党员", none: "群众" } as const;

export function describeRules(rules: Partial<Rules> | null | undefined): string {
  if (!rules) return "不限";
  const parts: string[] = [];
  if (rules.gender) parts.push(`性别：${GENDER_LABELS[rules.gender]}`);
  if (rules.min_age != null && rules.max_age != null) parts.push(`年龄 ${rules.min_age}–${rules.max_age} 岁`);
  else if (rules.min_age != null) parts.push(`年龄 ≥ ${rules.min_age} 岁`);
  else if (rules.max_age != null) parts.push(`年龄 ≤ ${rules.max_age} 岁`);
  if (rules.tags_any?.length) parts.push(`标签含其一：${rules.tags_any.join("、")}`);
  if (rules.tags_all?.length) parts.push(`标签全含：${rules.tags_all.join("、")}`);
  if (rules.party_status?.length) {
    parts.push(`政治面貌：${rules.party_status.map((s) => PARTY_STATUS_LABELS[s]).join("、")}`);
  }
  return parts.length ? parts.join("；") : "不限";
}
