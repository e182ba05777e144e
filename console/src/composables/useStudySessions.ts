// Study sessions (API.md §5): the list of an org subtree (a page at a time, or a whole week for the
// calendar), one session, and creating, changing and cancelling one. Pages render; this fetches.
import { ref, shallowRef } from "vue";
import { api } from "@/api/client";
import type { Schemas } from "@/api/types";

export type Session = Schemas["SessionOut"];
export type SessionCreate = Schemas["SessionCreate"];
export type SessionPatch = Schemas["SessionPatch"];

export const PAGE_SIZE = 20;

/** One page of an org subtree's sessions (newest first), with the cursors to go back and forth. */
export function useSessionPages() {
  const items = shallowRef<Session[]>([]);
  const loading = ref(false);
  const error = shallowRef<unknown>(null);
  // cursors[i] opens page i (page 0 has none); the last entry is the next page's, or null at the end.
  const cursors = ref<(string | undefined)[]>([undefined]);
  const pageIndex = ref(0);
  const hasNext = ref(false);
  let orgId = "";
  let range: { from?: string; to?: string } = {};

  async function fetchPage(index: number): Promise<void> {
    loading.value = true;
    error.value = null;
    try {
      const page = await api.get("/api/v1/study/sessions",
        { query: { org_id: orgId, ...range, limit: PAGE_SIZE, cursor: cursors.value[index] } });
      items.value = page.items;
      pageIndex.value = index;
      cursors.value = [...cursors.value.slice(0, index + 1), page.next_cursor ?? undefined];
      hasNext.value = !!page.next_cursor;
    } catch (e) {
      error.value = e;
    } finally {
      loading.value = false;
    }
  }

  return {
    items, loading, error, pageIndex, hasNext,
    /** The first page of `org`'s sessions, optionally only those starting in [from, to). */
    load(org: string, from?: Date | null, to?: Date | null) {
      orgId = org;
      range = { from: from?.toISOString(), to: to?.toISOString() };
      cursors.value = [undefined];
      return fetchPage(0);
    },
    reload: () => fetchPage(pageIndex.value),
    next: () => (hasNext.value ? fetchPage(pageIndex.value + 1) : Promise.resolve()),
    previous: () => (pageIndex.value > 0 ? fetchPage(pageIndex.value - 1) : Promise.resolve()),
  };
}

/** Every session of an org subtree starting in [from, to): the week calendar's. */
export async function sessionsBetween(orgId: string, from: Date, to: Date): Promise<Session[]> {
  const out: Session[] = [];
  let cursor: string | undefined;
  do {
    const page = await api.get("/api/v1/study/sessions", {
      query: { org_id: orgId, from: from.toISOString(), to: to.toISOString(), limit: 100, cursor },
    });
    out.push(...page.items);
    cursor = page.next_cursor ?? undefined;
  } while (cursor && out.length < 1000);
  return out;
}

export function getSession(id: string): Promise<Session> {
  return api.get("/api/v1/study/sessions/{session_id}", { path: { session_id: id } });
}

export function createSession(body: SessionCreate, idempotencyKey?: string): Promise<Session> {
  return api.post("/api/v1/study/sessions", { body, idempotencyKey });
}

export function updateSession(id: string, body: SessionPatch): Promise<Session> {
  return api.patch("/api/v1/study/sessions/{session_id}", { path: { session_id: id }, body });
}

export function cancelSession(id: string, reason: string): Promise<Session> {
  return api.post("/api/v1/study/sessions/{session_id}/cancel", { path: { session_id: id }, body: { reason } });
}

/** Where a session stands now, for the list's tag: cancelled, not started, checking in, over. */
export type SessionPhase = "cancelled" | "upcoming" | "open" | "over";

export function sessionPhase(s: Session, now = Date.now()): SessionPhase {
  if (s.status === "cancelled") return "cancelled";
  if (now < Date.parse(s.checkin_opens_at)) return "upcoming";
  if (now <= Date.parse(s.checkin_closes_at)) return "open";
  return "over";
}

export const PHASE_LABELS: Record<SessionPhase, { text: string; type: "info" | "success" | "warning" | "danger" | "primary" }> = {
  cancelled: { text: "已取消", type: "danger" },
  upcoming: { text: "未开始", type: "primary" },
  open: { text: "签到中", type: "success" },
  over: { text: "已结束", type: "info" },
};
