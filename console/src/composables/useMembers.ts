// Members of the selected org's subtree (API.md §4): one page at a time from the API's cursor, or, while a
// search or filter is set, every page of the subtree matched here, because GET /members filters by org only.
// Also the member's changes: create, edit, (de)activate, roles and invite codes.
import { computed, ref, shallowRef } from "vue";
import { api } from "@/api/client";
import type { Schemas } from "@/api/types";
import { isFiltering, matches, type MemberFilter, SEARCH_LIMIT } from "@/views/members/memberFilter";

export { EMPTY_FILTER, isFiltering, matches, type MemberFilter, SEARCH_LIMIT } from "@/views/members/memberFilter";

export type Member = Schemas["MemberOut"];
export type MemberCreate = Schemas["MemberCreate"];
export type MemberPatch = Schemas["MemberPatch"];
export type RoleGrant = Schemas["RoleGrantIn"];

export function useMemberList() {
  const rows = shallowRef<Member[]>([]);
  const loading = ref(false);
  const error = shallowRef<unknown>(null);
  const pageSize = ref(20);
  // Cursor paging: the cursor of every page reached so far (index 0 is the first page: no cursor).
  const cursors = ref<(string | undefined)[]>([undefined]);
  const pageIndex = ref(0);
  const nextCursor = ref<string | null>(null);
  // Filtered: every match of the subtree, paged here.
  const matched = shallowRef<Member[]>([]);
  const scanned = ref(0);
  const partial = ref(false);
  const filtered = ref(false);
  let run = 0;

  async function loadPage(orgId: string, index: number): Promise<void> {
    const mine = ++run;
    loading.value = true;
    error.value = null;
    try {
      const page = await api.get("/api/v1/members", {
        query: { org_id: orgId, limit: pageSize.value, cursor: cursors.value[index] },
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

  async function search(orgId: string, f: MemberFilter): Promise<void> {
    const mine = ++run;
    loading.value = true;
    error.value = null;
    scanned.value = 0;
    partial.value = false;
    const found: Member[] = [];
    try {
      let cursor: string | undefined;
      do {
        const page = await api.get("/api/v1/members", { query: { org_id: orgId, limit: 100, cursor } });
        if (mine !== run) return;
        scanned.value += page.items.length;
        found.push(...page.items.filter((m) => matches(m, f)));
        cursor = page.next_cursor ?? undefined;
        if (cursor && scanned.value >= SEARCH_LIMIT) {
          partial.value = true;
          break;
        }
      } while (cursor);
      matched.value = found;
      pageIndex.value = 0;
    } catch (e) {
      if (mine === run) error.value = e;
    } finally {
      if (mine === run) loading.value = false;
    }
  }

  return {
    loading, error, pageSize, pageIndex, filtered, scanned, partial,
    /** The rows of the page on screen. */
    rows: computed(() => filtered.value
      ? matched.value.slice(pageIndex.value * pageSize.value, (pageIndex.value + 1) * pageSize.value)
      : rows.value),
    /** Filtered: how many matched (a total is known only then; cursor pages have none). */
    total: computed(() => matched.value.length),
    hasPrevious: computed(() => pageIndex.value > 0),
    hasNext: computed(() => filtered.value
      ? (pageIndex.value + 1) * pageSize.value < matched.value.length
      : nextCursor.value !== null),
    /** From the first page, for `orgId` and the filter. */
    async reload(orgId: string, f: MemberFilter): Promise<void> {
      filtered.value = isFiltering(f);
      cursors.value = [undefined];
      nextCursor.value = null;
      if (filtered.value) await search(orgId, f);
      else await loadPage(orgId, 0);
    },
    /** The current page again (after an edit). */
    async refresh(orgId: string, f: MemberFilter): Promise<void> {
      if (filtered.value) await search(orgId, f);
      else await loadPage(orgId, pageIndex.value);
    },
    async go(orgId: string, delta: 1 | -1): Promise<void> {
      const to = pageIndex.value + delta;
      if (to < 0) return;
      if (filtered.value) pageIndex.value = to;
      else await loadPage(orgId, to);
    },
    /** A row changed on the server: show the answer in place. */
    replace(m: Member): void {
      rows.value = rows.value.map((r) => (r.id === m.id ? m : r));
      matched.value = matched.value.map((r) => (r.id === m.id ? m : r));
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
