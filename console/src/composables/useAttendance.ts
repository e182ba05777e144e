// A session's attendance roster (API.md §5): who is present, late, on leave or absent, and marking a
// member by hand with a reason (recorded with source "organiser" and audited by the server).
import { useLoader } from "./useLoader";
import { api } from "@/api/client";
import type { Schemas } from "@/api/types";

export type Roster = Schemas["AttendanceRoster"];
export type RosterEntry = Schemas["AttendanceEntry"];
export type AttendanceStatus = RosterEntry["status"];

export const STATUS_LABELS: Record<AttendanceStatus, string> = {
  present: "已签到", late: "迟到", leave: "请假", absent: "缺勤",
};
export const STATUS_TAGS: Record<AttendanceStatus, "success" | "warning" | "info" | "danger"> = {
  present: "success", late: "warning", leave: "info", absent: "danger",
};
export const SOURCE_LABELS: Record<string, string> = {
  member: "本人签到", organiser: "组织者标记", request: "审批", system: "系统",
};

export function getRoster(sessionId: string): Promise<Roster> {
  return api.get("/api/v1/study/sessions/{session_id}/attendance", { path: { session_id: sessionId } });
}

/** Everyone on the roster, in one list, in the order present, late, leave, absent. */
export function everyone(r: Roster): RosterEntry[] {
  return [...r.present, ...r.late, ...r.leave, ...r.absent];
}

export function useRoster(sessionId: string) {
  const { data: roster, loading, error, reload: load } = useLoader(() => getRoster(sessionId), { immediate: false });

  async function mark(memberId: string, status: AttendanceStatus, reason: string): Promise<void> {
    await api.put("/api/v1/study/sessions/{session_id}/attendance/{member_id}", {
      path: { session_id: sessionId, member_id: memberId }, body: { status, reason },
    });
    await load();
  }

  return { roster, loading, error, load, mark };
}
