"""Shared body types: the base classes, problem+json, and small value types."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

import msgspec


class Body(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A request body: unknown fields are rejected (API.md §1)."""


class Out(msgspec.Struct, kw_only=True):
    """A response body."""


class FieldError(Out):
    field: str
    message: str


class Problem(Out):
    """RFC 9457 problem details; `code` is the stable constant clients switch on."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    errors: list[FieldError] | None = None
    request_id: str | None = None


class Status(Out):
    status: str


Name = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
ShortText = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
LongText = Annotated[str, msgspec.Meta(max_length=20000)]
Id = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
# Phones as people write them; server.members.normalise_phone makes the stored form (and counts the
# digits). msgspec matches with re.search, where `$` also matches before a final "\n": `(?!\n)` closes
# that gap. Not \A..\Z, which the OpenAPI document would carry to ECMA-262 validators that lack them.
Phone = Annotated[str, msgspec.Meta(min_length=6, max_length=32, pattern=r"^\+?[0-9][0-9 -]*$(?!\n)",
                                    description="6 to 15 digits, optional leading +; spaces and dashes are ignored")]
Password = Annotated[str, msgspec.Meta(min_length=10, max_length=128)]
Tag = Annotated[str, msgspec.Meta(min_length=1, max_length=40)]
Gender = Literal["male", "female"]
PartyStatus = Literal["full", "probationary", "none"]
Role = Literal["organiser", "admin"]
OrgKind = Literal["committee", "general_branch", "branch", "group"]
Timestamp = datetime
Day = date
