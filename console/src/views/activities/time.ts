// Times as the console shows them: local "2026-12-01 15:00", from the API's RFC 3339 strings.
// Shared by the activity and announcement pages (both in this engineer's areas).

function pad(n: number): string {
  return String(n).padStart(2, "0");
}

export function formatTime(iso: string | null | undefined): string {
  if (!iso) return "—";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return "—";
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** "12-01 15:00 至 17:00" when both are on one day, else both in full. */
export function formatSpan(from: string, to: string): string {
  const a = formatTime(from);
  const b = formatTime(to);
  return a.slice(0, 10) === b.slice(0, 10) ? `${a} 至 ${b.slice(11)}` : `${a} 至 ${b}`;
}

/** A picker's Date as the API takes it (UTC with Z), or null when empty. */
export function toApiTime(d: Date | null | undefined): string | null {
  return d ? d.toISOString() : null;
}

export function fromApiTime(iso: string | null | undefined): Date | null {
  return iso ? new Date(iso) : null;
}
