"""Who the caller is and what they may reach: roles apply to an org and its whole subtree.

Every org stores `path` (its ancestor ids, root first); every member stores `org_path`
(the org's path plus the org itself). "X is within org R" is then `R in X.org_path`.
admin ⊃ organiser ⊃ member.

Reaching a member's org is not enough to act on them: `may_act_on` also asks that the caller hold
every role the member holds, over the same scope. Otherwise an organiser of a branch could invite,
edit or deactivate a root administrator who sits in it — and, through the invite, become them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from server.errors import forbidden

ROLE_RANK = {"organiser": 1, "admin": 2}


@dataclass(frozen=True)
class Principal:
    member_id: str
    name: str
    org_id: str
    org_path: tuple[str, ...]  # ancestors of the member's org, then the org itself
    roles: tuple[tuple[str, str], ...]  # (role, org_id)

    @classmethod
    def from_member(cls, doc: dict) -> Principal:
        return cls(
            member_id=doc["_id"],
            name=doc["name"],
            org_id=doc["org_id"],
            org_path=tuple(doc["org_path"]),
            roles=tuple((r["role"], r["org_id"]) for r in doc.get("roles", [])),
        )

    def role_orgs(self, minimum: str = "organiser") -> list[str]:
        """Org ids where the caller holds `minimum` or a stronger role."""
        need = ROLE_RANK[minimum]
        return [org for role, org in self.roles if ROLE_RANK[role] >= need]

    def list_roots(self, org_id: str | None, minimum: str = "organiser") -> list[str]:
        """The subtrees a list covers: `org_id`'s when one is asked for (orgs.require_lister checks it),
        else each org where the caller holds `minimum`."""
        return [org_id] if org_id is not None else self.role_orgs(minimum)

    def holds(self, minimum: str, target_path: list[str] | tuple[str, ...]) -> bool:
        """True when the caller holds `minimum` on an org in `target_path` (a path ending in the target)."""
        orgs = self.role_orgs(minimum)
        return any(org in target_path for org in orgs)

    def organises(self, target_path) -> bool:
        return self.holds("organiser", target_path)

    def require_organiser(self, target_path, what: str) -> None:
        """403 forbidden unless the caller organises `target_path`: for a resource already known to be
        visible to them (an invisible one answers 404 before this)."""
        if not self.organises(target_path):
            raise forbidden(f"Only an organiser of the {what}'s organisation may do this.")

    def may_act_on(self, target_grants: Iterable[tuple[str, Sequence[str]]]) -> bool:
        """True when, for every role the target holds, the caller holds that role or a stronger one on
        the role's org or an ancestor of it. `target_grants` pairs each of the target's roles with the
        full path of its org (ancestors, then the org). A target without roles, or oneself, passes."""
        return all(self.holds(role, org_path) for role, org_path in target_grants)

    def require_may_act_on(self, target_grants: Iterable[tuple[str, Sequence[str]]]) -> None:
        """403 forbidden unless `may_act_on`: for a member already known to be visible to the caller."""
        if not self.may_act_on(target_grants):
            raise forbidden("This member holds a role you do not hold over the same organisation.")

    @property
    def is_staff(self) -> bool:
        return bool(self.roles)

