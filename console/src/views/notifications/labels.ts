// Chinese words for the notification events, the values they offer a template, and how a delivery went
// to WeChat (API.md §9).
import type { NotificationEvent, WechatStatus } from "@/composables/useNotifications";

export const EVENT_LABELS: Record<NotificationEvent, string> = {
  waitlist_promoted: "候补递补成功",
  activity_cancelled: "活动取消",
  activity_changed: "活动时间或地点变更",
  activity_reminder: "活动开始提醒",
  signup_opens: "活动开放报名提醒",
  session_scheduled: "新的学习安排",
  session_changed: "学习安排变更",
  session_cancelled: "学习安排取消",
  session_reminder: "学习开始提醒",
  request_decided: "请假/补学审批结果",
  must_read_reminder: "公告阅读提醒",
  warning_opened: "新的预警",
};

/** Who gets each event, in a few words. */
export const EVENT_RECIPIENTS: Record<NotificationEvent, string> = {
  waitlist_promoted: "递补的成员",
  activity_cancelled: "已报名和候补的成员",
  activity_changed: "已报名的成员",
  activity_reminder: "已报名的成员",
  signup_opens: "预约了开放提醒的成员",
  session_scheduled: "应参加的成员",
  session_changed: "应参加的成员",
  session_cancelled: "应参加的成员",
  session_reminder: "应参加的成员",
  request_decided: "申请人",
  must_read_reminder: "未读（必读公告：未确认）的成员",
  warning_opened: "该组织的组织员",
};

export const VALUE_LABELS: Record<string, string> = {
  title: "标题", time: "时间", place: "地点", org: "组织名称", result: "结果", reason: "原因", note: "说明",
  opens_at: "报名开始时间", period: "周期", count: "数量",
};

export function valueLabel(name: string): string {
  return VALUE_LABELS[name] ?? name;
}

export const WECHAT_LABELS: Record<WechatStatus, { text: string; type: "success" | "info" | "warning" | "danger" }> = {
  sent: { text: "已发送", type: "success" },
  pending: { text: "待发送", type: "warning" },
  no_grant: { text: "无授权", type: "info" },
  muted: { text: "已静音", type: "info" },
  failed: { text: "失败", type: "danger" },
  off: { text: "未开启", type: "info" },
};

export function isReminder(event: NotificationEvent): boolean {
  return event === "activity_reminder" || event === "session_reminder";
}

export const ACTIVITY_EVENTS: NotificationEvent[] = ["waitlist_promoted", "activity_cancelled", "activity_changed",
  "activity_reminder", "signup_opens"];
export const SESSION_EVENTS: NotificationEvent[] = ["session_scheduled", "session_changed", "session_cancelled",
  "session_reminder"];
export const ANNOUNCEMENT_EVENTS: NotificationEvent[] = ["must_read_reminder"];
