// Study sessions (API.md §5): the list of an org subtree (a page at a time, or a whole week for the
// calendar), one session, and creating, changing and cancelling one. Pages render; this fetches.
import { api } from "@/api/client";
import type { Schemas } from "@/api/types";
import { useCursorList } from "./useCursorList";

export type Session = Schemas["SessionOut"];
export type SessionCreate = Schemas["SessionCreate"];
export type SessionPatch = Schemas["SessionPatch"];

export const PAGE_SIZE = 20;

interface SessionQuery {
  orgId: string;
  from?: string;
  to?: string;
}

/** One page of an org subtree's sessions (newest first); `search` with only those starting in [from, to). */
export function useSessionPages() {
  return useCursorList((q: SessionQuery, cursor: string | undefined) => api.get("/api/v1/study/sessions",
    { query: { org_id: q.orgId, from: q.from, to: q.to, limit: PAGE_SIZE, cursor } }));
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
