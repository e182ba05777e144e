// Leave and make-up requests (API.md §5): the queue an organiser decides for one org's subtree, a page
// at a time by status, with each request's session and member looked up once, and approving or
// rejecting with a note.
import { api } from "@/api/client";
import type { Schemas } from "@/api/types";
import { type Page, useCursorList } from "./useCursorList";
import type { Session } from "./useStudySessions";

export type StudyRequest = Schemas["RequestOut"];
export type RequestStatus = StudyRequest["status"];

export const KIND_LABELS: Record<StudyRequest["kind"], string> = { leave: "请假", makeup: "补学" };
export const REQUEST_STATUS_LABELS: Record<RequestStatus, string> = {
  pending: "待审批", approved: "已批准", rejected: "已驳回",
};

export interface RequestRow extends StudyRequest {
  session: Session | null;
  memberName: string;
}

interface RequestQuery {
  orgId: string;
  status: RequestStatus;
}

/** One page of an org subtree's requests with one status, 20 a page. */
export function useStudyRequests() {
  // Looked up once per page view; a request names its session and member by id only.
  const sessions = new Map<string, Promise<Session | null>>();
  const names = new Map<string, Promise<string>>();

  function sessionOf(id: string): Promise<Session | null> {
    if (!sessions.has(id)) {
      sessions.set(id, api.get("/api/v1/study/sessions/{session_id}", { path: { session_id: id } })
        .catch(() => null));
    }
    return sessions.get(id)!;
  }

  function nameOf(id: string): Promise<string> {
    if (!names.has(id)) {
      names.set(id, api.get("/api/v1/members/{member_id}", { path: { member_id: id } })
        .then((m) => m.name).catch(() => "（未知成员）"));
    }
    return names.get(id)!;
  }

  return useCursorList(async (q: RequestQuery, cursor: string | undefined): Promise<Page<RequestRow>> => {
    const page = await api.get("/api/v1/study/requests",
      { query: { org_id: q.orgId, status: q.status, limit: 20, cursor } });
    const items = await Promise.all(page.items.map(async (r) => ({
      ...r, session: await sessionOf(r.session_id), memberName: await nameOf(r.member_id),
    })));
    return { items, next_cursor: page.next_cursor };
  });
}

export function decideRequest(id: string, approve: boolean, note: string): Promise<StudyRequest> {
  const body = { note: note.trim() || null };
  return approve
    ? api.post("/api/v1/study/requests/{request_id}/approve", { path: { request_id: id }, body })
    : api.post("/api/v1/study/requests/{request_id}/reject", { path: { request_id: id }, body });
}
