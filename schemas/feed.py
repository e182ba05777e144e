"""Bodies of the feed and sync endpoints (API.md §7)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from schemas.common import Out

FeedKind = Literal["announcement", "activity", "study_session", "notice"]


class FeedItemOut(Out):
    id: str
    kind: FeedKind
    ref_id: str
    org_id: str
    title: str
    summary: str
    pinned: bool
    must_read: bool
    published_at: datetime
    updated_at: datetime
    version: int
    read: bool
    expires_at: datetime | None = None
    ref_kind: str | None = None  # notices: what they are about ("activity", "study_session", ...)


class FeedPage(Out):
    items: list[FeedItemOut]
    next_before: str | None


class UpsertChange(Out, tag_field="op", tag="upsert"):
    item: FeedItemOut


class DeleteChange(Out, tag_field="op", tag="delete"):
    id: str


class SyncOut(Out):
    changes: list[UpsertChange | DeleteChange]
    next_since: str
    has_more: bool
    unread_count: int
