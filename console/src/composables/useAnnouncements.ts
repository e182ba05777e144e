// Announcements (API.md §7): one announcement, its edit and retraction, and its receipts.
import { api } from "@/api/client";
import type { Schemas } from "@/api/types";
import { useLoader } from "./useLoader";

export type Announcement = Schemas["AnnouncementOut"];
export type AnnouncementCreate = Schemas["AnnouncementCreate"];
export type AnnouncementPatch = Schemas["AnnouncementPatch"];
export type Receipts = Schemas["ReceiptsOut"];

/** Where an announcement stands now: the server decides visibility by the same times. */
export type AnnouncementState = "scheduled" | "live" | "expired";

export const STATE_LABELS: Record<AnnouncementState, string> = {
  scheduled: "待发布", live: "已发布", expired: "已过期",
};

export function stateOf(a: Pick<Announcement, "publish_at" | "expires_at">, now = Date.now()): AnnouncementState {
  if (Date.parse(a.publish_at) > now) return "scheduled";
  if (a.expires_at && Date.parse(a.expires_at) <= now) return "expired";
  return "live";
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
    { path: { announcement_id: id } }));
  return { receipts: loader.data, loading: loader.loading, error: loader.error, reload: loader.reload };
}
