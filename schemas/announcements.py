"""Bodies of the announcement endpoints (API.md §7)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

from schemas.common import Body, FileIds, Id, Out, ShortText, Timestamp, text

AnnouncementText = text(20000, min_length=1)


class AnnouncementCreate(Body):
    org_id: Id
    title: ShortText
    body: AnnouncementText
    pinned: bool = False
    must_read: bool = False
    publish_at: Timestamp | None = None
    expires_at: Timestamp | None = None
    file_ids: FileIds = []


class AnnouncementPatch(Body):
    title: ShortText | msgspec.UnsetType = msgspec.UNSET
    body: AnnouncementText | msgspec.UnsetType = msgspec.UNSET
    pinned: bool | msgspec.UnsetType = msgspec.UNSET
    must_read: bool | msgspec.UnsetType = msgspec.UNSET
    publish_at: Timestamp | None | msgspec.UnsetType = msgspec.UNSET
    expires_at: Timestamp | None | msgspec.UnsetType = msgspec.UNSET
    file_ids: FileIds | msgspec.UnsetType = msgspec.UNSET


class AnnouncementOut(Out):
    id: str
    org_id: str
    title: str
    body: str
    pinned: bool
    must_read: bool
    publish_at: datetime
    expires_at: datetime | None
    file_ids: list[str]
    version: int
    read: bool
    acked: bool
    created_at: datetime
    updated_at: datetime


#: What an organiser's list calls an announcement, in the order of its life.
AnnouncementStatus = Literal["scheduled", "live", "expired", "retracted"]


class AnnouncementSummary(Out):
    """An announcement in the organisers' list: its status instead of its body and the caller's receipt."""

    id: str
    org_id: str
    title: str
    pinned: bool
    must_read: bool
    publish_at: datetime
    expires_at: datetime | None
    file_count: int
    version: int
    status: AnnouncementStatus
    created_at: datetime
    updated_at: datetime


class AnnouncementPage(Out, kw_only=True):
    items: list[AnnouncementSummary]
    next_cursor: str | None


class MemberRef(Out):
    member_id: str
    name: str


class ReceiptsOut(Out):
    audience: int
    read: int
    acked: int
    unread_members: list[MemberRef]  # at most `limit` (default 1,000)
    next_cursor: str | None = None  # sent only when more unread members remain


class RemindOut(Out):
    queued: int  # the members reminded: the audience who have not read it (a must-read: not acknowledged)
