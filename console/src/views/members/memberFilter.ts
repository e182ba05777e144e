// The member table's search and filters, as the form holds them, and the query GET /members takes for
// them (q, active, party_status, tag): the API does the matching, within the org's subtree.
import type { Schemas } from "@/api/types";

type Member = Schemas["MemberOut"];

export interface MemberFilter {
  /** Part of a name, or a whole phone number (phones are shown masked, so never part of one). */
  q: string;
  partyStatus: Member["party_status"] | "";
  active: "" | "active" | "inactive";
  /** One whole tag. */
  tag: string;
}

export const EMPTY_FILTER: MemberFilter = { q: "", partyStatus: "", active: "", tag: "" };

/** What GET /members may take besides org_id, limit and cursor. */
export interface MemberQuery {
  q?: string;
  active?: boolean;
  party_status?: Member["party_status"];
  tag?: string;
}

/** The query for `f`: blank fields are left out (the API then does not narrow by them). */
export function memberQuery(f: MemberFilter): MemberQuery {
  const query: MemberQuery = {};
  const q = f.q.trim();
  const tag = f.tag.trim();
  if (q) query.q = q;
  if (f.active) query.active = f.active === "active";
  if (f.partyStatus) query.party_status = f.partyStatus;
  if (tag) query.tag = tag;
  return query;
}

export function isFiltering(query: MemberQuery): boolean {
  return Object.keys(query).length > 0;
}
