"""Bodies of the member endpoints (API.md §3–4)."""

from __future__ import annotations

from typing import Annotated

import msgspec

from schemas.common import Body, Day, Gender, Id, Name, Out, PartyStatus, Phone, Role, Tag

Tags = Annotated[list[Tag], msgspec.Meta(max_length=20)]


class RoleGrant(Out):
    role: Role
    org_id: str


class RoleGrantIn(Body):
    role: Role
    org_id: Id


class MemberCreate(Body):
    name: Name
    phone: Phone
    org_id: Id
    gender: Gender
    birth_date: Day
    party_status: PartyStatus
    tags: Tags = []


class MemberPatch(Body):
    """Organiser edits. Roles have their own endpoint; a member cannot edit their own org or active flag."""

    name: Name | msgspec.UnsetType = msgspec.UNSET
    phone: Phone | msgspec.UnsetType = msgspec.UNSET
    org_id: Id | msgspec.UnsetType = msgspec.UNSET
    gender: Gender | msgspec.UnsetType = msgspec.UNSET
    birth_date: Day | msgspec.UnsetType = msgspec.UNSET
    party_status: PartyStatus | msgspec.UnsetType = msgspec.UNSET
    tags: Tags | msgspec.UnsetType = msgspec.UNSET
    active: bool | msgspec.UnsetType = msgspec.UNSET


class RolesPut(Body):
    roles: Annotated[list[RoleGrantIn], msgspec.Meta(max_length=20)]


class MemberOut(Out):
    id: str
    name: str
    phone_masked: str
    org_id: str
    gender: Gender
    birth_date: str
    party_status: PartyStatus
    tags: list[str]
    roles: list[RoleGrant]
    active: bool
    anonymised: bool  # personal fields wiped by an admin (POST /members/{id}/anonymise); implies not active


class MemberPage(Out):
    items: list[MemberOut]
    next_cursor: str | None


class ImportRowError(Out):
    row: int
    message: str


class ImportResult(Out):
    created: int
    updated: int
    errors: list[ImportRowError]
