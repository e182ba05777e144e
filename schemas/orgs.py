"""Bodies of the organisation endpoints (API.md §4)."""

from __future__ import annotations

import msgspec

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


class OrgSettingsIn(Body):
    """The org's own settings; a field left out keeps its current value."""

    member_warnings: bool | msgspec.UnsetType = msgspec.UNSET


class OrgSettingsValues(Out):
    member_warnings: bool | msgspec.UnsetType = msgspec.UNSET


class OrgSettingsOut(Out):
    org_id: str
    member_warnings: bool  # as it applies to the org (its own value, else the nearest ancestor's, else off)
    own: OrgSettingsValues  # the values set on this org itself
