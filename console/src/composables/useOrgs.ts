// Creating an organisation (admins of the parent, API.md §4); the org switcher's tree is then reloaded so
// the new org shows everywhere.
import { api } from "@/api/client";
import type { Schemas } from "@/api/types";
import { useOrgScope } from "./useOrgScope";

export type OrgCreate = Schemas["OrgCreate"];

export async function createOrg(body: OrgCreate): Promise<Schemas["OrgOut"]> {
  const org = await api.post("/api/v1/orgs", { body });
  await useOrgScope().ensureLoaded(true);
  return org;
}
