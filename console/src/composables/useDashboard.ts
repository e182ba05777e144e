// 工作台's data for one org (its whole subtree): each panel loads on its own, so one refusal or a slow
// list does not blank the others. What the API offers decides a few choices, said where they are made.
import { reactive, shallowRef } from "vue";
import { api } from "@/api/client";
import { ApiProblem } from "@/api/errors";
import type { Schemas } from "@/api/types";
import { allPages } from "@/lib/pages";
import { periodOf, thisWeek, type PeriodKind } from "@/lib/periods";
import type { Org } from "./useOrgScope";

export type Session = Schemas["SessionOut"];
export type Activity = Schemas["ActivityOut"];
export type Warning = Schemas["WarningOut"];
export type Compliance = Schemas["Compliance"];
export interface MustRead {
  announcement: Schemas["AnnouncementSummary"];
  receipts: Schemas["ReceiptsOut"];
}
export interface PendingRequest {
  request: Schemas["RequestOut"];
  session: Session;
}

interface Panel<T> {
  data: T | null;
  loading: boolean;
  error: ApiProblem | null;
}

function panel<T>(): Panel<T> {
  return { data: null, loading: false, error: null };
}

async function fill<T>(target: Panel<T>, load: () => Promise<T>): Promise<void> {
  target.loading = true;
  target.error = null;
  try {
    target.data = await load();
  } catch (e) {
    if (!(e instanceof ApiProblem)) throw e;
    target.error = e;
  } finally {
    target.loading = false;
  }
}

/** `orgId` is the selected org; `inScope(id)` says whether an org is in its subtree. */
export function useDashboard(orgId: string, inScope: (id: string) => boolean, orgs: () => Map<string, Org>) {
  const state = reactive({
    compliance: panel<Compliance>(),
    sessions: panel<Session[]>(),
    activities: panel<Activity[]>(),
    announcements: panel<MustRead[]>(),
    warnings: panel<Warning[]>(),
    requests: panel<PendingRequest[]>(),
  });
  const periodKind = shallowRef<PeriodKind>("month");

  function loadCompliance(): Promise<void> {
    return fill(state.compliance, () => api.get("/api/v1/orgs/{org_id}/study/compliance",
      { path: { org_id: orgId }, query: { period: periodOf(periodKind.value) } }));
  }

  function loadSessions(): Promise<void> {
    const week = thisWeek();
    return fill(state.sessions, async () => {
      const items = await allPages((cursor) => api.get("/api/v1/study/sessions",
        { query: { org_id: orgId, from: week.from, to: week.to, limit: 100, cursor } }), 3);
      return items.sort((a, b) => a.starts_at.localeCompare(b.starts_at));
    });
  }

  // GET /activities filters by one org, not a subtree: list what the organiser sees, keep the subtree's.
  function loadActivities(): Promise<void> {
    return fill(state.activities, async () => {
      const now = Date.now();
      const items = await allPages((cursor) => api.get("/api/v1/activities",
        { query: { status: "published", limit: 100, cursor } }), 5);
      return items.filter((a) => inScope(a.org_id) && Date.parse(a.signup_opens_at) <= now &&
        now < Date.parse(a.signup_closes_at))
        .sort((a, b) => a.signup_closes_at.localeCompare(b.signup_closes_at));
    });
  }

  function loadAnnouncements(): Promise<void> {
    return fill(state.announcements, async () => {
      const live = await allPages((cursor) => api.get("/api/v1/announcements",
        { query: { org_id: orgId, status: "live", limit: 100, cursor } }), 3);
      return Promise.all(live.filter((a) => a.must_read).map(async (announcement) => ({
        announcement,
        receipts: await api.get("/api/v1/announcements/{announcement_id}/receipts",
          { path: { announcement_id: announcement.id }, query: { limit: 1 } }),  // the counts
      })));
    });
  }

  function loadWarnings(): Promise<void> {
    return fill(state.warnings, () => allPages((cursor) => api.get("/api/v1/warnings",
      { query: { org_id: orgId, status: "open", limit: 100, cursor } }), 3));
  }

  // A request names its session only: each pending one is shown with its session's title.
  function loadRequests(): Promise<void> {
    return fill(state.requests, async () => {
      const pending = await allPages((cursor) => api.get("/api/v1/study/requests",
        { query: { org_id: orgId, status: "pending", limit: 100, cursor } }), 2);
      const ids = [...new Set(pending.map((r) => r.session_id))];
      const sessions = new Map<string, Session>();
      await Promise.all(ids.map(async (id) => {
        sessions.set(id, await api.get("/api/v1/study/sessions/{session_id}", { path: { session_id: id } }));
      }));
      return pending.flatMap((request) => {
        const session = sessions.get(request.session_id);
        return session ? [{ request, session }] : [];
      });
    });
  }

  function orgName(id: string): string {
    return orgs().get(id)?.name ?? "";
  }

  async function loadAll(): Promise<void> {
    await Promise.all([loadCompliance(), loadSessions(), loadActivities(), loadAnnouncements(), loadWarnings(),
      loadRequests()]);
  }

  return { state, periodKind, loadAll, loadCompliance, orgName };
}
