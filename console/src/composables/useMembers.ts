// Members of the selected org's subtree (API.md §4), one page at a time from the API's cursor, narrowed by
// the API to the search and filters (q, active, party_status, tag). Also the member's changes: create, edit,
// (de)activate, roles and invite codes.
import { computed, ref, shallowRef } from "vue";
import { api } from "@/api/client";
import type { Schemas } from "@/api/types";
import { isFiltering, type MemberFilter, type MemberQuery, memberQuery } from "@/views/members/memberFilter";

export { EMPTY_FILTER, type MemberFilter } from "@/views/members/memberFilter";

export type Member = Schemas["MemberOut"];
export type MemberCreate = Schemas["MemberCreate"];
export type MemberPatch = Schemas["MemberPatch"];
export type RoleGrant = Schemas["RoleGrantIn"];

export function useMemberList() {
  const rows = shallowRef<Member[]>([]);
  const loading = ref(false);
  const error = shallowRef<unknown>(null);
  const pageSize = ref(20);
  // The cursor of every page reached so far (index 0 is the first page: no cursor).
  const cursors = ref<(string | undefined)[]>([undefined]);
  const pageIndex = ref(0);
  const nextCursor = ref<string | null>(null);
  // The org and filter of the pages on screen: the ones sent with 查询, not what is being typed since.
  let orgId = "";
  let query: MemberQuery = {};
  const filtered = ref(false);
  let run = 0;

  async function loadPage(index: number): Promise<void> {
    const mine = ++run;
    loading.value = true;
    error.value = null;
    try {
      const page = await api.get("/api/v1/members", {
        query: { org_id: orgId, ...query, limit: pageSize.value, cursor: cursors.value[index] },
      });
      if (mine !== run) return;
      rows.value = page.items;
      pageIndex.value = index;
      nextCursor.value = page.next_cursor;
      if (page.next_cursor) cursors.value[index + 1] = page.next_cursor;
    } catch (e) {
      if (mine === run) error.value = e;
    } finally {
      if (mine === run) loading.value = false;
    }
  }

  return {
    loading, error, pageSize, pageIndex, rows,
    /** Whether the rows on screen are narrowed by a search or filter. */
    filtered,
    hasPrevious: computed(() => pageIndex.value > 0),
    hasNext: computed(() => nextCursor.value !== null),
    /** From the first page, for `org` and the filter. */
    async reload(org: string, f: MemberFilter): Promise<void> {
      orgId = org;
      query = memberQuery(f);
      filtered.value = isFiltering(query);
      cursors.value = [undefined];
      nextCursor.value = null;
      await loadPage(0);
    },
    /** The current page again (after a member was added). */
    refresh(): Promise<void> {
      return loadPage(pageIndex.value);
    },
    async go(delta: 1 | -1): Promise<void> {
      const to = pageIndex.value + delta;
      if (to >= 0 && to < cursors.value.length) await loadPage(to);
    },
    /** A row changed on the server: show the answer in place. */
    replace(m: Member): void {
      rows.value = rows.value.map((r) => (r.id === m.id ? m : r));
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
