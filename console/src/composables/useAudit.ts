// The audit log (API.md §11, administrators): entries within the selected org's subtree, newest first, one
// page at a time from the API's cursor, narrowed by the API to who acted, on which record and when.
import { ref } from "vue";
import { api } from "@/api/client";
import type { Schemas } from "@/api/types";
import { useCursorList } from "./useCursorList";

export type AuditEntry = Schemas["AuditEntryOut"];

export interface AuditFilter {
  orgId: string;
  actorId?: string;
  targetId?: string;
  /** RFC 3339: entries at or after. */
  from?: string;
  /** RFC 3339: entries before. */
  to?: string;
}

export function useAuditList() {
  const pageSize = ref(20);
  const list = useCursorList((f: AuditFilter, cursor: string | undefined) => api.get("/api/v1/audit", {
    query: { org_id: f.orgId, actor_id: f.actorId, target_id: f.targetId, from: f.from, to: f.to,
      limit: pageSize.value, cursor },
  }));
  return { ...list, pageSize };
}
