// The member table's search and filters, matched in the browser: GET /members filters by org only, so a
// search reads the subtree's pages and keeps what matches (useMembers.ts).
import type { Schemas } from "@/api/types";

type Member = Schemas["MemberOut"];

export interface MemberFilter {
  /** Part of a name, or digits of the masked phone (its first 3 and last 4 are shown). */
  text: string;
  partyStatus: Member["party_status"] | "";
  active: "" | "active" | "inactive";
  tag: string;
}

export const EMPTY_FILTER: MemberFilter = { text: "", partyStatus: "", active: "", tag: "" };

/** Past this many members a search stops reading pages and says the result is partial. */
export const SEARCH_LIMIT = 5000;

export function isFiltering(f: MemberFilter): boolean {
  return !!(f.text.trim() || f.partyStatus || f.active || f.tag.trim());
}

/** Whether typed digits fit a masked phone ("139****0001": the API never sends more). A whole number fits
 * when its first 3 and last 4 digits do; a part fits when the visible digits contain it. */
export function phoneFits(masked: string, digits: string): boolean {
  const [head = "", tail = ""] = masked.split(/\*+/);
  if (digits.length === masked.length) return digits.startsWith(head) && digits.endsWith(tail);
  return head.includes(digits) || tail.includes(digits) || (head + tail).includes(digits);
}

export function matches(m: Member, f: MemberFilter): boolean {
  const text = f.text.trim();
  if (text) {
    const digits = text.replace(/[\s-]/g, "").replace(/^\+/, "");
    const byPhone = /^\d+$/.test(digits) && phoneFits(m.phone_masked, digits);
    if (!m.name.includes(text) && !byPhone) return false;
  }
  if (f.partyStatus && m.party_status !== f.partyStatus) return false;
  if (f.active === "active" && !m.active) return false;
  if (f.active === "inactive" && m.active) return false;
  const tag = f.tag.trim();
  if (tag && !m.tags.some((t) => t.includes(tag))) return false;
  return true;
}
