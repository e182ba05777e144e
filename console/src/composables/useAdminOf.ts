// Whether the signed-in member is an admin over an org (a role on it or an ancestor: API.md §3), so pages
// hide what only admins can do. The API still decides: a 403 it answers is shown as such.
import { rootsWith, useSession } from "@/auth/session";
import { useOrgScope } from "./useOrgScope";

export function useAdminOf() {
  const { member } = useSession();
  const { orgs } = useOrgScope();
  return (orgId: string | null | undefined): boolean => {
    if (!orgId) return false;
    const roots = rootsWith(member.value, "admin");
    const path = orgs.value.get(orgId)?.path ?? [];
    return roots.some((r) => r === orgId || path.includes(r));
  };
}
