// How the study pages write times and periods: local (the browser's) time, Chinese style.
const dateTime = new Intl.DateTimeFormat("zh-CN", {
  year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hour12: false,
});
const time = new Intl.DateTimeFormat("zh-CN", { hour: "2-digit", minute: "2-digit", hour12: false });

export function fmtDateTime(iso: string | null | undefined): string {
  return iso ? dateTime.format(new Date(iso)) : "—";
}

export function fmtTime(iso: string): string {
  return time.format(new Date(iso));
}

/** "2026/12/02 19:00–21:00", or both dates when the session runs past midnight. */
export function fmtRange(startIso: string, endIso: string): string {
  const start = new Date(startIso);
  const end = new Date(endIso);
  const sameDay = start.toDateString() === end.toDateString();
  return `${dateTime.format(start)}–${sameDay ? time.format(end) : dateTime.format(end)}`;
}

/** Periods as the API spells them: "2026-11", "2026-Q4", "2026". */
export type PeriodKind = "month" | "quarter" | "year";

export function periodOf(kind: PeriodKind, d: Date): string {
  const y = d.getFullYear();
  if (kind === "year") return String(y);
  if (kind === "quarter") return `${y}-Q${Math.floor(d.getMonth() / 3) + 1}`;
  return `${y}-${String(d.getMonth() + 1).padStart(2, "0")}`;
}

export function periodLabel(period: string): string {
  const q = period.match(/^(\d{4})-Q([1-4])$/);
  if (q) return `${q[1]} 年第 ${q[2]} 季度`;
  const m = period.match(/^(\d{4})-(\d{2})$/);
  if (m) return `${m[1]} 年 ${Number(m[2])} 月`;
  return `${period} 年`;
}

export function percent(rate: number): string {
  return `${Math.round(rate * 1000) / 10}%`;
}

/** Monday 00:00 of the week holding `d`, local time. */
export function weekStart(d: Date): Date {
  const out = new Date(d.getFullYear(), d.getMonth(), d.getDate());
  out.setDate(out.getDate() - ((out.getDay() + 6) % 7));
  return out;
}

export function addDays(d: Date, days: number): Date {
  const out = new Date(d);
  out.setDate(out.getDate() + days);
  return out;
}
