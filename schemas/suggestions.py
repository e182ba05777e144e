"""Bodies of the suggestion endpoints (意见建议, API.md §11)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from schemas.common import Body, ContentFlag, Out, text

SuggestionCategory = Literal["app", "work"]
SuggestionStatus = Literal["open", "answered"]
SuggestionText = text(2000, min_length=1)


class SuggestionIn(Body):
    text: SuggestionText
    category: SuggestionCategory
    anonymous: bool = False


class SuggestionCreated(Out):
    id: str
    status: SuggestionStatus


class SuggestionAuthor(Out):
    member_id: str
    name: str


class SuggestionAnswer(Out):
    text: str
    answered_at: datetime


class SuggestionOut(Out):
    id: str
    org_id: str  # the author's organisation when they wrote it
    category: SuggestionCategory
    text: str
    anonymous: bool
    status: SuggestionStatus
    created_at: datetime
    author: SuggestionAuthor | None  # always null for an anonymous suggestion
    answer: SuggestionAnswer | None
    content_flag: ContentFlag = None  # WeChat's content check: "review" or "unchecked" (API.md §10)


class SuggestionPage(Out):
    items: list[SuggestionOut]
    next_cursor: str | None


class ReplyIn(Body):
    text: SuggestionText


class ReplyOut(Out):
    status: SuggestionStatus
