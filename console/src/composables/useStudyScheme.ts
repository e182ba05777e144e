// An org's study scheme (API.md §5): the one that applies (its own, inherited from an ancestor, or the
// shipped default), setting the org's own (admins) and dropping it to inherit again.
import { useLoader } from "./useLoader";
import { api } from "@/api/client";
import type { Schemas } from "@/api/types";

export type Scheme = Schemas["SchemeOut"];
export type Track = Schemas["Track"];

export const KIND_LABELS: Record<Track["kind"], string> = { session: "集中学习", self_study: "个人自学" };
export const PERIOD_LABELS: Record<Track["period"], string> = { month: "每月", quarter: "每季度", year: "每年" };

export function getScheme(orgId: string): Promise<Scheme> {
  return api.get("/api/v1/orgs/{org_id}/study-scheme", { path: { org_id: orgId } });
}

export function useStudyScheme() {
  let orgId = "";
  const { data: scheme, loading, error, reload } = useLoader(() => getScheme(orgId), { immediate: false });

  function load(org: string): Promise<void> {
    orgId = org;
    return reload();
  }

  return {
    scheme, loading, error, load,
    async save(name: string, tracks: Track[]): Promise<void> {
      scheme.value = await api.put("/api/v1/orgs/{org_id}/study-scheme",
        { path: { org_id: orgId }, body: { name, tracks } });
    },
    async resetToInherited(): Promise<void> {
      await api.delete("/api/v1/orgs/{org_id}/study-scheme", { path: { org_id: orgId } });
      await load(orgId);
    },
  };
}
