"""Bodies of the organisation endpoints (API.md §4)."""

from __future__ import annotations

from schemas.common import Body, Id, Name, OrgKind, Out


class OrgCreate(Body):
    name: Name
    kind: OrgKind
    parent_id: Id


class OrgOut(Out):
    id: str
    name: str
    kind: OrgKind
    parent_id: str | None
    path: list[str]


class OrgPage(Out):
    items: list[OrgOut]
    next_cursor: str | None
