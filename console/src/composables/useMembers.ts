// Members of the selected org's subtree (API.md §4), one page at a time from the API's cursor, narrowed by
// the API to the search and filters (q, active, party_status, tag). Also the member's changes: create, edit,
// (de)activate, roles and invite codes.
import { ref } from "vue";
import { api } from "@/api/client";
import type { Schemas } from "@/api/types";
import { useCursorList } from "./useCursorList";
import { isFiltering, type MemberFilter, type MemberQuery, memberQuery } from "@/views/members/memberFilter";

export { EMPTY_FILTER, type MemberFilter } from "@/views/members/memberFilter";

export type Member = Schemas["MemberOut"];
export type MemberCreate = Schemas["MemberCreate"];
export type MemberPatch = Schemas["MemberPatch"];
export type RoleGrant = Schemas["RoleGrantIn"];

interface MemberSearch {
  orgId: string;
  query: MemberQuery;
}

/** One page of an org subtree's members at a time, narrowed by the search and filters sent with 查询. */
export function useMemberList() {
  const pageSize = ref(20);
  const list = useCursorList((s: MemberSearch, cursor: string | undefined) => api.get("/api/v1/members",
    { query: { org_id: s.orgId, ...s.query, limit: pageSize.value, cursor } }));
  /** Whether the rows on screen are narrowed by a search or filter. */
  const filtered = ref(false);

  return {
    ...list, pageSize, filtered,
    /** From the first page, for `org` and the filter. */
    search(org: string, f: MemberFilter): Promise<void> {
      const query = memberQuery(f);
      filtered.value = isFiltering(query);
      return list.search({ orgId: org, query });
    },
    /** A row changed on the server: show the answer in place. */
    replace(m: Member): void {
      list.setItems(list.items.value.map((r) => (r.id === m.id ? m : r)));
    },
  };
}

export function createMember(body: MemberCreate): Promise<Member> {
  return api.post("/api/v1/members", { body });
}

export function updateMember(id: string, body: MemberPatch): Promise<Member> {
  return api.patch("/api/v1/members/{member_id}", { path: { member_id: id }, body });
}

export function setRoles(id: string, roles: RoleGrant[]): Promise<Member> {
  return api.put("/api/v1/members/{member_id}/roles", { path: { member_id: id }, body: { roles } });
}

export function issueInvite(id: string): Promise<Schemas["InviteOut"]> {
  return api.post("/api/v1/members/{member_id}/invite", { path: { member_id: id } });
}

/** Wipe a deactivated member's personal fields (administrators; API.md §11). */
export function anonymiseMember(id: string): Promise<Member> {
  return api.post("/api/v1/members/{member_id}/anonymise", { path: { member_id: id } });
}

/** Up to 20 members of the org's subtree whose name has `q` (or whose whole phone is `q`), for a picker. */
export async function findMembers(orgId: string, q: string): Promise<Member[]> {
  const page = await api.get("/api/v1/members", { query: { org_id: orgId, q: q || undefined, limit: 20 } });
  return page.items;
}
