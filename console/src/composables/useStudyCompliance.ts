// Study compliance of an org subtree for a period (API.md §5), and its export as a file the browser
// saves (fetched with the bearer token through the API client, then handed to the browser as a download).
import { ref, shallowRef } from "vue";
import { api } from "@/api/client";
import type { Schemas } from "@/api/types";
import { saveBlob } from "@/lib/download";

export type Compliance = Schemas["Compliance"];
export type MemberCompliance = Schemas["MemberCompliance"];

export function useStudyCompliance() {
  const data = shallowRef<Compliance | null>(null);
  const loading = ref(false);
  const error = shallowRef<unknown>(null);

  async function load(orgId: string, period: string): Promise<void> {
    loading.value = true;
    error.value = null;
    try {
      data.value = await api.get("/api/v1/orgs/{org_id}/study/compliance",
        { path: { org_id: orgId }, query: { period } });
    } catch (e) {
      error.value = e;
    } finally {
      loading.value = false;
    }
  }

  return { data, loading, error, load };
}

export type ExportKind = "compliance-csv" | "attendance-csv" | "xlsx";

/** Download the period's export and let the browser save it under a Chinese file name. */
export async function downloadExport(orgId: string, orgName: string, period: string, kind: ExportKind): Promise<void> {
  const query = kind === "xlsx" ? { period, format: "xlsx" as const }
    : { period, format: "csv" as const, table: kind === "attendance-csv" ? "attendance" as const : "compliance" as const };
  const blob = await api.blob("/api/v1/orgs/{org_id}/study/export", { path: { org_id: orgId }, query });
  const label = kind === "attendance-csv" ? "考勤明细" : "学习情况";
  saveBlob(blob, `${orgName}-${label}-${period}.${kind === "xlsx" ? "xlsx" : "csv"}`);
}
