// Chinese words for the member and org enums the API speaks in English, shared by the members pages.
import type { Schemas } from "@/api/types";

type Member = Schemas["MemberOut"];
type Org = Schemas["OrgOut"];

export const ORG_KINDS: Record<Org["kind"], string> = {
  committee: "党委", general_branch: "党总支", branch: "党支部", group: "党小组",
};

/** Which kinds may sit under a parent kind (server/orgs.py: never above the parent; only a committee beside). */
const KIND_RANK: Record<Org["kind"], number> = { committee: 0, general_branch: 1, branch: 2, group: 3 };
export function kindsUnder(parent: Org["kind"]): Org["kind"][] {
  return (Object.keys(KIND_RANK) as Org["kind"][]).filter((k) =>
    KIND_RANK[k] > KIND_RANK[parent] || (k === "committee" && parent === "committee"));
}

export const PARTY_STATUS: Record<Member["party_status"], string> = {
  full: "正式党员", probationary: "预备党员", none: "群众",
};

export const GENDERS: Record<Member["gender"], string> = { male: "男", female: "女" };

export const ROLES: Record<"organiser" | "admin", string> = { organiser: "组织员", admin: "管理员" };
