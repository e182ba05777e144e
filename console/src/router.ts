// The console's routes, one block per area. Page engineers: add your area's routes in its block, each
// page a lazy import (its own chunk), with `meta.title` (the tab and breadcrumb) and `meta.roles` (who
// may open it: "organiser" covers admins too; "admin" only admins). Link to other areas through PATHS,
// never through a literal path. The sidebar (AREAS) shows an area once a route answers its path.
import { createRouter, createWebHistory, type RouteLocationNormalized, type RouteRecordRaw } from "vue-router";
import { type Role, useSession } from "@/auth/session";

declare module "vue-router" {
  interface RouteMeta {
    /** Shown in the browser tab and the header: "工作台". */
    title?: string;
    /** Who may open the page; absent on the public pages (sign-in and the error pages). */
    roles?: Role[];
    /** Pages anyone may open, signed in or not. */
    public?: boolean;
  }
}

/** Every area's path: link with these (`router.push(PATHS.members)`), so a moved page moves everywhere. */
export const PATHS = {
  login: "/login",
  noAccess: "/no-access",
  forbidden: "/forbidden",
  dashboard: "/",
  members: "/members",
  study: "/study",
  studySessions: "/study/sessions",
  studyRequests: "/study/requests",
  studyCompliance: "/study/compliance",
  studyScheme: "/study/scheme",
  activities: "/activities",
  announcements: "/announcements",
  warnings: "/warnings",
  suggestions: "/suggestions",
  audit: "/audit",
  notificationTemplates: "/notifications/templates",
  projector: "/projector",
  /** `${PATHS.projectorSession}/${sessionId}`: the projector page of a study session. */
  projectorSession: "/projector/session",
  /** `${PATHS.projectorActivity}/${activityId}`: the projector page of an activity. */
  projectorActivity: "/projector/activity",
} as const;

/** The sidebar: one entry per area, in this order; an entry shows once its path has a route. */
export interface Area {
  title: string;
  path: string;
  icon: "dashboard" | "members" | "study" | "activities" | "announcements" | "warnings" | "suggestions" | "audit" | "notifications";
  children?: { title: string; path: string }[];
}

export const AREAS: Area[] = [
  { title: "工作台", path: PATHS.dashboard, icon: "dashboard" },
  { title: "组织与成员", path: PATHS.members, icon: "members" },
  {
    title: "学习", path: PATHS.study, icon: "study", children: [
      { title: "学习安排", path: PATHS.studySessions },
      { title: "请假与补学", path: PATHS.studyRequests },
      { title: "学习情况", path: PATHS.studyCompliance },
      { title: "学习制度", path: PATHS.studyScheme },
    ],
  },
  { title: "群心驿站活动", path: PATHS.activities, icon: "activities" },
  { title: "公告", path: PATHS.announcements, icon: "announcements" },
  { title: "预警", path: PATHS.warnings, icon: "warnings" },
  { title: "意见建议", path: PATHS.suggestions, icon: "suggestions" },
  { title: "消息模板", path: PATHS.notificationTemplates, icon: "notifications" },
  { title: "审计日志", path: PATHS.audit, icon: "audit" },
];

const ORGANISER: Role[] = ["organiser"];
const ADMIN: Role[] = ["admin"];

export const routes: RouteRecordRaw[] = [
  { path: PATHS.login, name: "login", component: () => import("@/views/Login.vue"),
    meta: { title: "登录", public: true } },
  { path: PATHS.noAccess, name: "no-access", component: () => import("@/views/NoAccess.vue"),
    meta: { title: "无权访问", public: true } },

  // Full-screen pages without the sidebar (投影签到: views/projector/).
  { path: `${PATHS.projector}/:kind(session|activity)/:id`, name: "projector",
    component: () => import("@/views/projector/ProjectorPage.vue"),
    meta: { title: "投影签到", roles: ORGANISER } },

  {
    path: "/",
    component: () => import("@/layout/AdminLayout.vue"), // its own chunk: the sign-in page does not need it
    children: [
      // 工作台 (views/dashboard/)
      { path: "", name: "dashboard", component: () => import("@/views/dashboard/DashboardPage.vue"),
        meta: { title: "工作台", roles: ORGANISER } },

      // 组织与成员 (views/members/)
      { path: PATHS.members, name: "members", component: () => import("@/views/members/MembersPage.vue"),
        meta: { title: "组织与成员", roles: ORGANISER } },

      // 学习 (views/study/)
      { path: PATHS.study, redirect: PATHS.studySessions },
      { path: PATHS.studySessions, name: "study-sessions", component: () => import("@/views/study/SessionsPage.vue"),
        meta: { title: "学习安排", roles: ORGANISER } },
      { path: `${PATHS.studySessions}/:id`, name: "study-session", component: () => import("@/views/study/SessionPage.vue"),
        meta: { title: "签到情况", roles: ORGANISER } },
      { path: PATHS.studyRequests, name: "study-requests", component: () => import("@/views/study/RequestsPage.vue"),
        meta: { title: "请假与补学", roles: ORGANISER } },
      { path: PATHS.studyCompliance, name: "study-compliance",
        component: () => import("@/views/study/CompliancePage.vue"), meta: { title: "学习情况", roles: ORGANISER } },
      { path: PATHS.studyScheme, name: "study-scheme", component: () => import("@/views/study/SchemePage.vue"),
        meta: { title: "学习制度", roles: ORGANISER } },

      // 群心驿站活动 (views/activities/)
      { path: PATHS.activities, name: "activities", component: () => import("@/views/activities/ActivitiesPage.vue"),
        meta: { title: "群心驿站活动", roles: ORGANISER } },
      { path: `${PATHS.activities}/programmes`, name: "activity-programmes",
        component: () => import("@/views/activities/ProgrammesPage.vue"),
        meta: { title: "活动项目与报名条件", roles: ORGANISER } },
      { path: `${PATHS.activities}/new`, name: "activity-new",
        component: () => import("@/views/activities/ActivityFormPage.vue"), meta: { title: "新建活动", roles: ORGANISER } },
      { path: `${PATHS.activities}/:id`, name: "activity", component: () => import("@/views/activities/ActivityDetailPage.vue"),
        meta: { title: "活动详情", roles: ORGANISER } },
      { path: `${PATHS.activities}/:id/edit`, name: "activity-edit",
        component: () => import("@/views/activities/ActivityFormPage.vue"), meta: { title: "编辑活动", roles: ORGANISER } },

      // 公告 (views/announcements/)
      { path: PATHS.announcements, name: "announcements",
        component: () => import("@/views/announcements/AnnouncementsPage.vue"), meta: { title: "公告", roles: ORGANISER } },
      { path: `${PATHS.announcements}/new`, name: "announcement-new",
        component: () => import("@/views/announcements/AnnouncementFormPage.vue"),
        meta: { title: "发布公告", roles: ORGANISER } },
      { path: `${PATHS.announcements}/:id`, name: "announcement",
        component: () => import("@/views/announcements/AnnouncementDetailPage.vue"),
        meta: { title: "公告详情", roles: ORGANISER } },
      { path: `${PATHS.announcements}/:id/edit`, name: "announcement-edit",
        component: () => import("@/views/announcements/AnnouncementFormPage.vue"),
        meta: { title: "编辑公告", roles: ORGANISER } },

      // 预警 (views/warnings/)
      { path: PATHS.warnings, name: "warnings", component: () => import("@/views/warnings/WarningsPage.vue"),
        meta: { title: "预警", roles: ORGANISER } },

      // 意见建议 (views/suggestions/)
      { path: PATHS.suggestions, name: "suggestions", component: () => import("@/views/suggestions/SuggestionsPage.vue"),
        meta: { title: "意见建议", roles: ORGANISER } },

      // 消息模板 (views/notifications/): administrators (those of the top org edit them)
      { path: PATHS.notificationTemplates, name: "notification-templates",
        component: () => import("@/views/notifications/TemplatesPage.vue"), meta: { title: "消息模板", roles: ADMIN } },

      // 审计日志 (views/audit/): administrators only
      { path: PATHS.audit, name: "audit", component: () => import("@/views/audit/AuditPage.vue"),
        meta: { title: "审计日志", roles: ADMIN } },

      // Inside the console: someone signed out is asked to sign in first, then sees the page.
      { path: PATHS.forbidden, name: "forbidden", component: () => import("@/views/Forbidden.vue"),
        meta: { title: "没有权限", roles: ORGANISER } },
      { path: "/:pathMatch(.*)*", name: "not-found", component: () => import("@/views/NotFound.vue"),
        meta: { title: "页面不存在", roles: ORGANISER } },
    ],
  },
];

export const router = createRouter({
  history: createWebHistory(import.meta.env.BASE_URL),
  routes,
});

/** Whether the signed-in member may open a page of these roles ("organiser" covers admins too). */
export function allowed(roles: Role[] | undefined): boolean {
  const { hasConsoleAccess, isAdmin } = useSession();
  if (!roles) return true;
  return roles.includes("organiser") ? hasConsoleAccess.value : roles.includes("admin") ? isAdmin.value : true;
}

/** Where a navigation must go instead, or true: sign-in first, then console access, then the page's roles. */
export function guard(to: RouteLocationNormalized): true | { path: string; query?: Record<string, string> } {
  const { signedIn, hasConsoleAccess } = useSession();
  if (to.meta.public) {
    if (to.name === "login" && signedIn.value) return { path: PATHS.dashboard };
    return true;
  }
  if (!signedIn.value) return { path: PATHS.login, query: to.fullPath !== "/" ? { redirect: to.fullPath } : {} };
  if (!hasConsoleAccess.value) return { path: PATHS.noAccess };
  if (!allowed(to.meta.roles)) return { path: PATHS.forbidden };
  return true;
}

router.beforeEach((to) => guard(to));
router.afterEach((to) => {
  document.title = to.meta.title ? `${to.meta.title} · 党建管理后台` : "党建管理后台";
});

/** Whether an area has a page yet (its path is not the not-found route) that the signed-in member may open. */
export function hasPage(path: string): boolean {
  const found = router.resolve(path);
  return found.name !== "not-found" && allowed(found.meta.roles);
}
