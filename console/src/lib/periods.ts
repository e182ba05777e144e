// Study periods (API.md §1: "2026-11", "2026-Q4", "2026") and the current week, in the browser's time
// zone, which for the console's users is the organisation's (Asia/Shanghai).
export type PeriodKind = "month" | "quarter" | "year";

export function periodOf(kind: PeriodKind, at: Date = new Date()): string {
  const y = at.getFullYear();
  if (kind === "year") return String(y);
  if (kind === "quarter") return `${y}-Q${Math.floor(at.getMonth() / 3) + 1}`;
  return `${y}-${String(at.getMonth() + 1).padStart(2, "0")}`;
}

export const PERIOD_NAMES: Record<PeriodKind, string> = { month: "本月", quarter: "本季度", year: "本年" };

/** Monday 00:00 of this week and of the next, as RFC 3339 instants. */
export function thisWeek(at: Date = new Date()): { from: string; to: string } {
  const start = new Date(at.getFullYear(), at.getMonth(), at.getDate());
  start.setDate(start.getDate() - ((start.getDay() + 6) % 7));
  const end = new Date(start);
  end.setDate(end.getDate() + 7);
  return { from: start.toISOString(), to: end.toISOString() };
}

const WEEKDAYS = ["周日", "周一", "周二", "周三", "周四", "周五", "周六"];

/** "12月3日 周三 14:00" */
export function formatDateTime(iso: string | null | undefined): string {
  if (!iso) return "";
  const d = new Date(iso);
  const hh = String(d.getHours()).padStart(2, "0");
  const mm = String(d.getMinutes()).padStart(2, "0");
  return `${d.getMonth() + 1}月${d.getDate()}日 ${WEEKDAYS[d.getDay()]} ${hh}:${mm}`;
}

export function percent(rate: number): string {
  return `${Math.round(rate * 1000) / 10}%`;
}
