// 群心驿站 activities (API.md §6): the list by programme, org and status with cursor paging, one
// activity with its lifecycle (publish, cancel, capacity), its roster and export, and its feedback.
import { ref, shallowRef } from "vue";
import { api } from "@/api/client";
import type { Answer, Operation } from "@/api/http";
import type { Schemas } from "@/api/types";
import { saveBlob } from "@/lib/download";
import { useCursorList } from "./useCursorList";
import { useLoader } from "./useLoader";

export type Activity = Schemas["ActivityOut"];
export type ActivityStatus = Activity["status"];
export type ActivityCreate = Schemas["ActivityCreate"];
export type ActivityPatch = Schemas["ActivityPatch"];
export type Roster = Answer<Operation<"/api/v1/activities/{activity_id}/signups", "get">>;
export type RosterEntry = Roster["confirmed"][number];
export type FeedbackSummary = Schemas["FeedbackSummary"];

export const STATUS_LABELS: Record<ActivityStatus, string> = {
  draft: "草稿", published: "已发布", cancelled: "已取消",
};

export interface ActivityFilters {
  org_id: string;
  programme?: string;
  status?: ActivityStatus;
}

const PAGE_SIZE = 20;

/** One page of activities at a time, 20 a page. */
export function useActivityList() {
  return useCursorList((filters: ActivityFilters, cursor: string | undefined) =>
    api.get("/api/v1/activities", { query: { ...filters, limit: PAGE_SIZE, cursor } }));
}

export function createActivity(body: ActivityCreate): Promise<Activity> {
  return api.post("/api/v1/activities", { body });
}

function fetchRoster(id: string): Promise<Roster> {
  return api.get("/api/v1/activities/{activity_id}/signups", { path: { activity_id: id }, query: {} });
}

/**
 * Edit an activity. A capacity or waitlist change may promote waitlisted members, but the PATCH answers
 * the activity only: who was promoted is read from the roster before and after (waitlisted, then confirmed).
 */
export async function updateActivity(id: string, body: ActivityPatch): Promise<{ activity: Activity;
  promoted: RosterEntry[] }> {
  const mayPromote = body.capacity !== undefined || body.waitlist !== undefined;
  const waiting = mayPromote ? new Set((await fetchRoster(id)).waitlisted.map((e) => e.member_id)) : null;
  const activity = await api.patch("/api/v1/activities/{activity_id}", { path: { activity_id: id }, body });
  if (!waiting?.size) return { activity, promoted: [] };
  const after = await fetchRoster(id);
  return { activity, promoted: after.confirmed.filter((e) => waiting.has(e.member_id)) };
}

/** One activity and what an organiser does with it. */
export function useActivity(id: string) {
  const path = { activity_id: id };
  const loader = useLoader(() => api.get("/api/v1/activities/{activity_id}", { path }));
  const activity = loader.data;

  return {
    activity,
    loading: loader.loading,
    error: loader.error,
    reload: loader.reload,
    async publish(): Promise<void> {
      activity.value = await api.post("/api/v1/activities/{activity_id}/publish", { path, body: {} });
    },
    async cancel(reason: string): Promise<void> {
      activity.value = await api.post("/api/v1/activities/{activity_id}/cancel", { path, body: { reason } });
    },
    /** Set the capacity (and whether there is a waitlist); → who was promoted from the waitlist. */
    async changeCapacity(capacity: number, waitlist: boolean): Promise<RosterEntry[]> {
      const { activity: changed, promoted } = await updateActivity(id, { capacity, waitlist });
      activity.value = changed;
      return promoted;
    },
  };
}

/** The roster: confirmed, waitlisted and cancelled sign-ups, and the roster as a file. */
export function useRoster(id: string) {
  const loader = useLoader(() => fetchRoster(id));
  const exporting = ref(false);
  return {
    roster: loader.data,
    loading: loader.loading,
    error: loader.error,
    reload: loader.reload,
    exporting,
    async download(format: "csv" | "xlsx", title: string): Promise<void> {
      exporting.value = true;
      try {
        const blob = await api.blob("/api/v1/activities/{activity_id}/signups",
          { path: { activity_id: id }, query: { format } });
        saveBlob(blob, `${title}-报名名单.${format}`);
      } finally {
        exporting.value = false;
      }
    },
  };
}

export function useFeedback(id: string) {
  const loader = useLoader(() => api.get("/api/v1/activities/{activity_id}/feedback", { path: { activity_id: id } }));
  return { summary: loader.data, loading: loader.loading, error: loader.error, reload: loader.reload };
}

/** The cover image as an object URL for an <img> (files need the bearer token, so no plain src). */
export function useCover() {
  const url = shallowRef<string | null>(null);
  return {
    url,
    async show(fileId: string | null): Promise<void> {
      if (url.value) URL.revokeObjectURL(url.value);
      url.value = null;
      if (!fileId) return;
      const blob = await api.blob("/api/v1/files/{file_id}", { path: { file_id: fileId } });
      url.value = URL.createObjectURL(blob);
    },
  };
}
