// How an audit entry reads (API.md §11): the action in Chinese, and what changed as rows of
// 字段: 之前 → 之后 with the values in words (在册/已停用, 正式党员, an org's name, a role and its org).
// Pure: the page passes what only it knows (org names) in `Names`.
import type { Schemas } from "@/api/types";
import { GENDERS, PARTY_STATUS, ROLES } from "@/views/members/labels";

type Entry = Schemas["AuditEntryOut"];

export interface Names {
  org(id: string): string;
}

export const ACTION_LABELS: Record<string, string> = {
  "member.create": "新增成员",
  "member.update": "编辑成员",
  "member.deactivate": "停用成员",
  "member.roles": "设置角色",
  "member.password": "设置密码",
  "member.invite": "生成邀请码",
  "member.import.create": "导入新增成员",
  "member.import.update": "导入更新成员",
  "member.anonymise": "匿名化成员",
  "org.settings": "修改组织设置",
  "activity.update": "编辑活动",
  "activity.cancel": "取消活动",
  "study.attendance.mark": "手动标记考勤",
  "study.request.approved": "批准请假/补学",
  "study.request.rejected": "驳回请假/补学",
  "study.scheme.put": "自定学习制度",
  "study.scheme.delete": "恢复继承学习制度",
  "study.session.update": "编辑学习安排",
  "study.session.cancel": "取消学习安排",
  "study.warning.create": "生成预警",
  "study.warning.rectifying": "提交整改",
  "study.warning.closed": "预警销号",
  "suggestion.reply": "回复意见建议",
};

export function actionLabel(action: string): string {
  return ACTION_LABELS[action] ?? action;
}

export const TARGET_KINDS: Record<string, string> = {
  member: "成员", org: "组织", activity: "活动", study_session: "学习安排", study_warning: "预警",
  suggestion: "意见建议",
};

const FIELD_LABELS: Record<string, string> = {
  name: "姓名", phone: "手机号", org_id: "所属组织", gender: "性别", birth_date: "出生日期",
  party_status: "政治面貌", tags: "标签", active: "状态", roles: "角色", password_set: "密码",
  anonymised: "匿名化", member_warnings: "成员预警", status: "状态", tracks: "学习项目",
  // the fields an activity or a session edit names (details.fields)
  programme: "活动项目", title: "标题", description: "简介", location: "地点", starts_at: "开始时间",
  ends_at: "结束时间", signup_opens_at: "报名开始", signup_closes_at: "报名截止", cancel_deadline: "取消截止",
  capacity: "名额", waitlist: "候补", cover_file_id: "封面", agenda: "议程", checkin_opens_at: "签到开始",
  checkin_closes_at: "签到结束", late_after: "迟到时间", methods: "签到方式", attendees: "参加人员",
};

export function fieldLabel(field: string, action = ""): string {
  if (field === "name" && action.startsWith("study.scheme.")) return "制度名称";
  return FIELD_LABELS[field] ?? field;
}

const ATTENDANCE: Record<string, string> = { present: "出席", late: "迟到", leave: "请假", absent: "缺席" };
const STATUS_BY_KIND: Record<string, Record<string, string>> = {
  study_warning: { open: "待整改", rectifying: "整改中", closed: "已销号" },
  suggestion: { open: "待回复", answered: "已回复" },
};
const TRACKS: Record<string, string> = {
  branch_assembly: "支部党员大会", group_meeting: "党小组会", party_lecture: "党课", self_study: "个人自学",
};

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function raw(v: unknown): string {
  if (v === null || v === undefined) return "—";
  if (typeof v === "boolean") return v ? "是" : "否";
  if (Array.isArray(v)) return v.length ? v.map(raw).join("、") : "无";
  if (isObject(v)) return JSON.stringify(v);
  return String(v);
}

function roleText(v: unknown, names: Names): string {
  if (!Array.isArray(v)) return raw(v);
  if (!v.length) return "无";
  return v.map((r) => isObject(r)
    ? `${ROLES[r.role as keyof typeof ROLES] ?? String(r.role)}（${names.org(String(r.org_id))}）`
    : raw(r)).join("、");
}

/** One value of `field` in words; `kind` is the entry's target kind (a status reads differently per kind). */
export function valueText(field: string, value: unknown, kind: string, names: Names): string {
  if (value === null || value === undefined) {
    if (field === "member_warnings") return "未单独设置（沿用上级）";
    return "—";
  }
  switch (field) {
    case "active": return value ? "在册" : "已停用";
    case "gender": return GENDERS[value as keyof typeof GENDERS] ?? raw(value);
    case "party_status": return PARTY_STATUS[value as keyof typeof PARTY_STATUS] ?? raw(value);
    case "org_id": return names.org(String(value));
    case "roles": return roleText(value, names);
    case "password_set": return value ? "已设置" : "未设置";
    case "member_warnings": return value ? "开启" : "关闭";
    case "attendance": return ATTENDANCE[String(value)] ?? raw(value);
    case "status": return STATUS_BY_KIND[kind]?.[String(value)] ?? raw(value);
    case "tracks":
      return Array.isArray(value)
        ? value.map((t) => (isObject(t) ? String(t.name ?? t.key) : raw(t))).join("、") || "无"
        : raw(value);
    case "tags": return Array.isArray(value) && !value.length ? "无" : raw(value);
    default: return raw(value);
  }
}

export interface ChangeRow {
  field: string;
  /** null: the entry has no value before (a creation) or after (a removal). */
  before: string | null;
  after: string | null;
}

/** The field a whole before/after value stands for when it is not a record of fields. */
function wholeField(action: string): string {
  if (action === "member.roles") return "roles";
  if (action === "study.attendance.mark" || action.startsWith("study.request.")) return "attendance";
  return "value";
}

const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

/** What the entry changed, a row per field: every field of `after` (or of `before` when only it is given). */
export function changeRows(entry: Pick<Entry, "action" | "target_kind" | "before" | "after">, names: Names): ChangeRow[] {
  const { before, after, target_kind: kind } = entry;
  if ((before === null || before === undefined) && (after === null || after === undefined)) return [];
  if (isObject(before) || isObject(after)) {
    const b = isObject(before) ? before : null;
    const a = isObject(after) ? after : null;
    const fields = [...new Set([...Object.keys(a ?? {}), ...Object.keys(b ?? {})])];
    return fields
      .filter((f) => !(a && b) || !same(b[f], a[f]))
      .map((f) => ({
        field: fieldLabel(f, entry.action),
        before: b ? valueText(f, b[f], kind, names) : null,
        after: a ? valueText(f, a[f], kind, names) : null,
      }));
  }
  const field = wholeField(entry.action);
  return [{
    field: field === "value" ? "内容" : field === "attendance" ? "出勤" : fieldLabel(field),
    before: before === null || before === undefined ? (field === "attendance" ? "未记录" : null)
      : valueText(field, before, kind, names),
    after: after === null || after === undefined ? null : valueText(field, after, kind, names),
  }];
}

const WIPED: Record<string, string> = {
  name: "姓名", phone: "手机号", tags: "标签", password: "密码", wechat: "微信绑定", invites: "邀请码",
  sessions: "登录状态",
};

/** What else the entry says, one line each (the edited fields, the promoted count, what was wiped). */
export function detailLines(details: unknown): string[] {
  if (!isObject(details)) return [];
  const lines: string[] = [];
  for (const [key, v] of Object.entries(details)) {
    if (v === null || v === undefined) continue;
    switch (key) {
      case "fields":
        if (Array.isArray(v) && v.length) lines.push(`修改：${v.map((f) => fieldLabel(String(f))).join("、")}`);
        break;
      case "promoted":
        if (Array.isArray(v) && v.length) lines.push(`候补递补 ${v.length} 人`);
        break;
      case "signed_up": lines.push(`已报名 ${raw(v)} 人`); break;
      case "wiped":
        if (Array.isArray(v)) lines.push(`已清除：${v.map((w) => WIPED[String(w)] ?? String(w)).join("、")}`);
        break;
      case "sessions_revoked": if (v) lines.push("已退出其所有登录"); break;
      case "period": lines.push(`周期：${raw(v)}`); break;
      case "track": lines.push(`学习项目：${TRACKS[String(v)] ?? raw(v)}`); break;
      case "kind": lines.push(`类型：${v === "leave" ? "请假" : v === "makeup" ? "补学" : raw(v)}`); break;
      case "category": lines.push(`类别：${v === "app" ? "关于小程序" : v === "work" ? "关于工作" : raw(v)}`); break;
      case "file_ids": if (Array.isArray(v) && v.length) lines.push(`附件 ${v.length} 个`); break;
      case "kept": if (v) lines.push("成员已签到，出勤保持不变"); break;
      // ids the page links or names itself, and the decision the action already says
      case "session_id": case "member_id": case "org_id": case "request_id": case "decision": break;
      default: lines.push(`${key}：${raw(v)}`);
    }
  }
  return lines;
}
