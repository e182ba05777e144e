// An org's settings (API.md §11): what applies to it (its own value, else the nearest ancestor's, else the
// default: member-level warnings off) and, for its administrators, setting its own value.
import { api } from "@/api/client";
import type { Schemas } from "@/api/types";
import { useLoader } from "./useLoader";

export type OrgSettings = Schemas["OrgSettingsOut"];

export function useOrgSettings(orgId: () => string) {
  return useLoader(() => api.get("/api/v1/orgs/{org_id}/settings", { path: { org_id: orgId() } }));
}

export function putOrgSettings(orgId: string, body: Schemas["OrgSettingsIn"]): Promise<OrgSettings> {
  return api.put("/api/v1/orgs/{org_id}/settings", { path: { org_id: orgId }, body });
}
