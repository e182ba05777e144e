// Announcements (API.md §7): the organisers' list by status, one announcement, its edit and
// retraction, and its receipts.
import { api } from "@/api/client";
import type { Schemas } from "@/api/types";
import { useCursorList } from "./useCursorList";
import { useLoader } from "./useLoader";

export type Announcement = Schemas["AnnouncementOut"];
export type AnnouncementCreate = Schemas["AnnouncementCreate"];
export type AnnouncementPatch = Schemas["AnnouncementPatch"];
export type Receipts = Schemas["ReceiptsOut"];
export type AnnouncementSummary = Schemas["AnnouncementSummary"];
/** Where an announcement stands: the list says so (by the server's clock); one announcement is never retracted. */
export type AnnouncementState = AnnouncementSummary["status"];

export const STATE_LABELS: Record<AnnouncementState, string> = {
  scheduled: "待发布", live: "已发布", expired: "已过期", retracted: "已撤回",
};

/** The state of one announcement (GET /announcements/{id} answers no status, and 404 once retracted). */
export function stateOf(a: Pick<Announcement, "publish_at" | "expires_at">,
  now = Date.now()): Exclude<AnnouncementState, "retracted"> {
  if (Date.parse(a.publish_at) > now) return "scheduled";
  if (a.expires_at && Date.parse(a.expires_at) <= now) return "expired";
  return "live";
}

export interface AnnouncementFilters {
  /** The org whose subtree is listed. */
  org_id: string;
  status?: AnnouncementState;
}

const PAGE_SIZE = 20;

/** The organisers' list, newest first, 20 a page (GET /announcements). */
export function useAnnouncementList() {
  return useCursorList((filters: AnnouncementFilters, cursor: string | undefined) =>
    api.get("/api/v1/announcements", { query: { ...filters, limit: PAGE_SIZE, cursor } }));
}

export function createAnnouncement(body: AnnouncementCreate): Promise<Announcement> {
  return api.post("/api/v1/announcements", { body });
}

export function updateAnnouncement(id: string, body: AnnouncementPatch): Promise<Announcement> {
  return api.patch("/api/v1/announcements/{announcement_id}", { path: { announcement_id: id }, body });
}

export function useAnnouncement(id: string) {
  const path = { announcement_id: id };
  const loader = useLoader(() => api.get("/api/v1/announcements/{announcement_id}", { path }));
  return {
    announcement: loader.data,
    loading: loader.loading,
    error: loader.error,
    reload: loader.reload,
    retract(): Promise<void> {
      return api.delete("/api/v1/announcements/{announcement_id}", { path });
    },
  };
}

export function useReceipts(id: string) {
  const loader = useLoader(() => api.get("/api/v1/announcements/{announcement_id}/receipts",
    { path: { announcement_id: id }, query: {} }));  // the first 1,000 unread members (the API's page)
  return { receipts: loader.data, loading: loader.loading, error: loader.error, reload: loader.reload };
}
