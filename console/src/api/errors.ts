// API problems (RFC 9457, API.md §1) in Chinese. Pages never show the server's English `detail`: they
// show `problemMessage(p)`, and put `fieldErrors(p)` on the form's fields. Every code of
// server/errors.py CODES has a sentence here (tests/errors.test.ts checks it against openapi.json).
import type { components } from "./schema";

export type FieldError = components["schemas"]["FieldError"];

/** One refusal from the API, or a network failure (status 0, code "network_error"). */
export class ApiProblem extends Error {
  readonly status: number;
  readonly code: string;
  readonly detail: string;
  readonly errors: FieldError[];
  readonly requestId: string | null;

  constructor(status: number, code: string, detail = "", errors: FieldError[] = [], requestId: string | null = null) {
    super(`${status} ${code}${detail ? `: ${detail}` : ""}`);
    this.name = "ApiProblem";
    this.status = status;
    this.code = code;
    this.detail = detail;
    this.errors = errors;
    this.requestId = requestId;
  }
}

/** A problem+json body (or anything else the server or a proxy answered) as an ApiProblem. */
export function toProblem(status: number, body: unknown, requestId: string | null = null): ApiProblem {
  if (body && typeof body === "object" && typeof (body as { code?: unknown }).code === "string") {
    const p = body as { code: string; detail?: unknown; errors?: unknown; request_id?: unknown };
    const errors = Array.isArray(p.errors)
      ? p.errors.filter((e): e is FieldError => !!e && typeof e.field === "string" && typeof e.message === "string")
      : [];
    const rid = typeof p.request_id === "string" ? p.request_id : requestId;
    return new ApiProblem(status, p.code, typeof p.detail === "string" ? p.detail : "", errors, rid);
  }
  return new ApiProblem(status, STATUS_FALLBACK_CODE[status] ?? (status >= 500 ? "internal_error" : "bad_request"),
    "", [], requestId);
}

const STATUS_FALLBACK_CODE: Record<number, string> = {
  401: "unauthenticated", 403: "forbidden", 404: "not_found", 413: "body_too_large", 429: "rate_limited",
  502: "service_unavailable", 503: "service_unavailable", 504: "service_unavailable",
};

/** Every problem `code` of the API (server/errors.py CODES), with the sentence an organiser reads. */
export const MESSAGES: Record<string, string> = {
  bad_request: "请求有误，请检查后重试。",
  unauthenticated: "登录已失效，请重新登录。",
  invalid_credentials: "手机号或密码错误。",
  refresh_token_reused: "登录凭据已在别处使用，为安全起见请重新登录。",
  wechat_code_invalid: "微信登录凭据无效或已使用，请重试。",
  forbidden: "您没有权限执行此操作。",
  not_an_attendee: "该成员不在本次学习的参加人员名单中。",
  not_attended: "该成员未参加此活动，不能评价。",
  not_confirmed: "该成员的报名未确认，不能签到。",
  not_eligible: "该成员不符合此活动的报名条件。",
  not_found: "未找到相应内容，可能已被删除或不在您的管理范围内。",
  activity_not_found: "未找到该活动，可能已被删除或不在您的管理范围内。",
  announcement_not_found: "未找到该公告，可能已被撤回或不在您的管理范围内。",
  file_not_found: "未找到该文件，请重新上传。",
  request_not_found: "未找到该申请。",
  session_not_found: "未找到该学习安排，可能不在您的管理范围内。",
  signup_not_found: "未找到该报名记录。",
  warning_not_found: "未找到该预警。",
  suggestion_not_found: "未找到该意见建议，可能不在您的管理范围内。",
  method_not_allowed: "不支持此操作。",
  activity_cancelled: "该活动已取消。",
  activity_full: "活动名额已满。",
  already_checked_in: "已经签到过了。",
  attendance_conflict: "考勤记录已被他人修改，请刷新后重试。",
  attendees_fixed: "学习已开始，参加人员名单不能再修改。",
  cancel_deadline_passed: "已过取消报名的截止时间。",
  capacity_below_confirmed: "名额不能少于已确认报名的人数。",
  checkin_closed: "签到已结束。",
  checkin_not_open: "签到尚未开始。",
  feedback_exists: "已经评价过了。",
  member_inactive: "该成员已停用。",
  member_active: "该成员仍在册，请先停用再匿名化。",
  phone_taken: "该手机号已被其他成员使用。",
  reminder_too_soon: "24 小时内已提醒过，请稍后再试。",
  request_in_progress: "相同的请求正在处理中，请稍候。",
  request_not_pending: "该申请已处理过。",
  request_pending: "已有待审批的申请。",
  session_cancelled: "该学习安排已取消。",
  session_changed: "学习安排已被他人修改，请刷新后重试。",
  signup_closed: "报名已截止。",
  signup_not_open: "报名尚未开始。",
  signup_already_open: "该活动已经开放报名，无需再订阅开放提醒。",
  announcement_not_live: "只有已发布且未过期的公告才能提醒。",
  suggestion_answered: "该意见建议已有人回复过了。",
  warning_not_open: "该预警不在待整改状态。",
  warning_not_rectifying: "该预警尚未整改，不能销号。",
  sync_token_expired: "数据已过期，请刷新页面。",
  body_too_large: "提交的内容过大。",
  file_too_large: "文件过大（最大 20 MB）。",
  unsupported_media_type: "不支持该文件类型：仅支持图片、PDF、Office 文档和纯文本。",
  range_not_satisfiable: "文件读取范围无效。",
  invalid_request: "填写的内容有误，请检查标出的项目。",
  content_rejected: "内容未通过安全检查，请修改后重试。",
  daily_cap_exceeded: "超过每日自学时长上限（240 分钟）。",
  idempotency_key_reused: "重复提交的内容与首次不一致，请刷新后重试。",
  invite_code_invalid: "邀请码错误、已使用或已过期。",
  location_inaccurate: "定位精度不足。",
  location_required: "本次签到需要定位。",
  outside_geofence: "不在签到范围内。",
  qr_expired: "二维码已过期，请刷新。",
  qr_invalid: "二维码无效。",
  rate_limited: "操作过于频繁，请稍后再试。",
  internal_error: "服务器出错了，请稍后重试。",
  database_unavailable: "数据库暂时不可用，请稍后重试。",
  service_unavailable: "服务暂时不可用，请稍后重试。",
  wechat_unavailable: "微信服务暂时不可用，请稍后重试。",
  // Not from the server: fetch itself failed (offline, server down, connection reset).
  network_error: "无法连接服务器，请检查网络后重试。",
};

/** The Chinese sentence for a problem; an unknown code falls back to one for its status class. */
export function problemMessage(p: { status: number; code: string }): string {
  const known = MESSAGES[p.code];
  if (known) return known;
  if (p.status >= 500) return MESSAGES.internal_error;
  if (p.status === 0) return MESSAGES.network_error;
  return `操作未成功（${p.status}），请检查后重试。`;
}

/** The server's field messages are English, shaped by msgspec and handlers/base.py; these say the same in Chinese. */
const FIELD_PATTERNS: [RegExp, (m: RegExpMatchArray) => string][] = [
  // a template's field mapping (PUT /notification-templates/{event})
  [/is not a WeChat keyword key/i, () => "不是微信模板关键词（如 thing1、time2）"],
  [/offers no value/i, () => "此事件没有该内容"],
  [/cannot fill a (\w+) keyword/i, (m) => `该内容不能填入 ${m[1]} 类关键词`],
  [/is not a reminder/i, () => "只有开始提醒需要提前时间"],
  [/^Object missing required field/i, () => "必填"],
  [/length >= (\d+)/, (m) => `至少 ${m[1]} 个字符`],
  [/length <= (\d+)/, (m) => `最多 ${m[1]} 个字符`],
  [/>= (\S+?)`?$/, (m) => `不能小于 ${m[1]}`],
  [/<= (\S+?)`?$/, (m) => `不能大于 ${m[1]}`],
  [/RFC 3339/i, () => "时间格式不正确"],
  [/^Expected `(str|int|float|bool|array|object)/i, () => "类型不正确"],
  [/one of|invalid enum value/i, () => "取值不在允许范围内"],
  [/Object contains unknown field/i, () => "不支持的字段"],
  [/column missing/i, () => "缺少该列"],
  [/unknown file/i, () => "文件不存在，请重新上传"],
  [/wrong, used or expired/i, () => "错误、已使用或已过期"],
  [/not allowed under/i, () => "上级组织下不能建立此类组织"],
  [/malformed|not valid|matching/i, () => "格式不正确"],
];

export function fieldMessage(message: string): string {
  for (const [pattern, words] of FIELD_PATTERNS) {
    const m = message.match(pattern);
    if (m) return words(m);
  }
  return "填写有误";
}

/**
 * Field errors keyed by the form field (`prop` of an el-form-item) they belong to, in Chinese.
 * The server names nested fields with dots (`location.lat`), as Element Plus props do; `aliases` maps a
 * server field to a form prop where the two differ.
 */
export function fieldErrors(p: ApiProblem | unknown, aliases: Record<string, string> = {}): Record<string, string> {
  const out: Record<string, string> = {};
  if (!(p instanceof ApiProblem)) return out;
  for (const e of p.errors) {
    const field = aliases[e.field] ?? e.field;
    out[field] ??= fieldMessage(e.message);
  }
  return out;
}
