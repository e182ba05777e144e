// Notifications (API.md §9) as the console uses them: every event's WeChat template (admins of the root
// org configure them), the delivery log of what one activity, session or announcement caused, and the
// 提醒未读 of an announcement.
import { ref } from "vue";
import { api } from "@/api/client";
import type { Schemas } from "@/api/types";
import { useCursorList } from "./useCursorList";
import { useLoader } from "./useLoader";

export type Template = Schemas["TemplateOut"];
export type TemplatePut = Schemas["TemplatePut"];
export type NotificationEvent = Template["event"];
export type Delivery = Schemas["DeliveryOut"];
export type WechatStatus = Delivery["wechat"];

export function useTemplates() {
  return useLoader(async () => (await api.get("/api/v1/notification-templates")).items);
}

export function putTemplate(event: NotificationEvent, body: TemplatePut): Promise<Template> {
  return api.put("/api/v1/notification-templates/{event}", { path: { event }, body });
}

/** The delivery log of one ref (an activity, session or announcement), of one event or all, a page at a
 * time (a ref nothing was sent about yet has an empty log). */
export function useDeliveryList() {
  const pageSize = ref(20);
  const list = useCursorList((q: { refId: string; event?: NotificationEvent }, cursor: string | undefined) =>
    api.get("/api/v1/notifications/deliveries", {
      query: { ref_id: q.refId, event: q.event, limit: pageSize.value, cursor },
    }));
  return { ...list, pageSize };
}

/** Remind the members who have not read it (a must-read: not acknowledged); answers how many were queued. */
export async function remindUnread(announcementId: string): Promise<number> {
  const answer = await api.post("/api/v1/announcements/{announcement_id}/remind", {
    path: { announcement_id: announcementId },
  });
  return answer.queued;
}
