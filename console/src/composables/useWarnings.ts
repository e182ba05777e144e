// Study warnings of the selected org's subtree (API.md §5): lists by status from the API's cursor, the
// period scan (admins), 整改 with a note and files (each file uploaded first, then one rectify call) and
// 销号 (admins). Also what the list needs to read well: track names from the org's scheme and the names of
// the people in each warning's history.
import { ref } from "vue";
import { api } from "@/api/client";
import type { Schemas } from "@/api/types";
import { useCursorList } from "./useCursorList";

export type Warning = Schemas["WarningOut"];
export type WarningStatus = Warning["status"];
export type WarningStep = Schemas["WarningStep"];

export const STATUS_LABELS: Record<WarningStatus, string> = { open: "待整改", rectifying: "整改中", closed: "已销号" };

/** One page of an org subtree's warnings at a time, of one status or all. */
export function useWarningList() {
  const pageSize = ref(20);
  const list = useCursorList((q: { orgId: string; status?: WarningStatus }, cursor: string | undefined) =>
    api.get("/api/v1/warnings", { query: { org_id: q.orgId, status: q.status, limit: pageSize.value, cursor } }));
  return { ...list, pageSize };
}

export function scanPeriod(orgId: string, period: string): Promise<Schemas["ScanOut"]> {
  return api.post("/api/v1/orgs/{org_id}/warnings/scan", { path: { org_id: orgId }, query: { period } });
}

/** Upload each file (POST /files), then report the rectification with their ids. */
export async function rectify(id: string, note: string, files: File[],
  onUploaded: (done: number) => void = () => undefined): Promise<Warning> {
  const fileIds: string[] = [];
  for (const file of files) {
    const uploaded = await api.upload("/api/v1/files", file, file.type || "application/octet-stream", {
      headers: { "X-Filename": encodeURIComponent(file.name) },
    });
    fileIds.push(uploaded.id);
    onUploaded(fileIds.length);
  }
  return api.post("/api/v1/warnings/{warning_id}/rectify", {
    path: { warning_id: id }, body: { note, file_ids: fileIds },
  });
}

export function closeWarning(id: string, note: string): Promise<Warning> {
  return api.post("/api/v1/warnings/{warning_id}/close", { path: { warning_id: id }, body: { note } });
}

const EXTENSIONS: Record<string, string> = {
  "image/png": ".png", "image/jpeg": ".jpg", "image/gif": ".gif", "image/webp": ".webp", "application/pdf": ".pdf",
  "text/plain": ".txt", "application/msword": ".doc", "application/vnd.ms-excel": ".xls",
  "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ".docx",
  "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": ".xlsx",
  "application/vnd.openxmlformats-officedocument.presentationml.presentation": ".pptx",
};

/** A rectification file, saved as `name` with the extension of its type (the step keeps ids, not names). */
export async function downloadFile(fileId: string, name: string): Promise<void> {
  const blob = await api.blob("/api/v1/files/{file_id}", { path: { file_id: fileId } });
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = name + (EXTENSIONS[blob.type.split(";")[0]] ?? "");
  a.click();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** Track key → name, from the scheme that applies to the org (the default names when it cannot be read). */
export async function trackNames(orgId: string): Promise<Record<string, string>> {
  const names: Record<string, string> = {
    branch_assembly: "支部党员大会", group_meeting: "党小组会", party_lecture: "党课", self_study: "个人自学",
  };
  try {
    const scheme = await api.get("/api/v1/orgs/{org_id}/study-scheme", { path: { org_id: orgId } });
    for (const t of scheme.tracks) names[t.key] = t.name;
  } catch {
    // keep the default names: the list is still readable
  }
  return names;
}
