"""Bodies of the 群心驿站 endpoints (API.md §6): programmes, activities, sign-ups, check-ins, feedback."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

from schemas.common import (
    Body,
    ContentFlag,
    Gender,
    Id,
    Name,
    Out,
    PartyStatus,
    QrToken,
    ShortText,
    Tag,
    Timestamp,
    line,
    text,
    whole,
)

ProgrammeKey = Annotated[str, msgspec.Meta(pattern=whole(r"[a-z][a-z0-9_]{0,31}"), description="a-z, 0-9, _")]
Age = Annotated[int, msgspec.Meta(ge=0, le=150)]
TagList = Annotated[list[Tag], msgspec.Meta(max_length=20)]
Description = text(5000)
Title = line(200)
Capacity = Annotated[int, msgspec.Meta(ge=1, le=100000)]
ActivityStatus = Literal["draft", "published", "cancelled"]
SignupStatus = Literal["confirmed", "waitlisted", "cancelled"]
Attendance = Literal["present", "no_show"]
AnswerKey = line(64)
AnswerText = text(1000)
CancelReason = text(500)
Comment = text(2000)
Answers = Annotated[dict[AnswerKey, AnswerText], msgspec.Meta(max_length=20)]


# -- programmes -----------------------------------------------------------------------------------

class Rules(Body, kw_only=True):
    """Eligibility, all conditions must hold. Ages are whole years on the activity's start day (org time zone)."""

    tags_any: TagList = []
    tags_all: TagList = []
    gender: Gender | None = None
    min_age: Age | None = None
    max_age: Age | None = None
    party_status: Annotated[list[PartyStatus], msgspec.Meta(max_length=3)] = []


class ProgrammePut(Body, kw_only=True):
    name: Name
    description: Description = ""
    rules: Rules = msgspec.field(default_factory=Rules)
    active: bool = True


class RulesOut(Out, kw_only=True):
    tags_any: list[str]
    tags_all: list[str]
    gender: Gender | None
    min_age: int | None
    max_age: int | None
    party_status: list[PartyStatus]


class ProgrammeOut(Out, kw_only=True):
    key: str
    name: str
    description: str
    rules: RulesOut
    active: bool


class ProgrammePage(Out, kw_only=True):
    items: list[ProgrammeOut]
    next_cursor: str | None


# -- activities -----------------------------------------------------------------------------------

class ActivityCreate(Body, kw_only=True):
    programme: ProgrammeKey
    org_id: Id
    title: Title
    description: Description = ""
    location: ShortText | None = None
    starts_at: Timestamp
    ends_at: Timestamp
    signup_opens_at: Timestamp
    signup_closes_at: Timestamp
    cancel_deadline: Timestamp | None = None
    capacity: Capacity
    waitlist: bool = False
    cover_file_id: Id | None = None


class ActivityPatch(Body, kw_only=True):
    """Partial update; `null` clears the optional fields (location, cancel_deadline, cover_file_id)."""

    programme: ProgrammeKey | msgspec.UnsetType = msgspec.UNSET
    title: Title | msgspec.UnsetType = msgspec.UNSET
    description: Description | msgspec.UnsetType = msgspec.UNSET
    location: ShortText | None | msgspec.UnsetType = msgspec.UNSET
    starts_at: Timestamp | msgspec.UnsetType = msgspec.UNSET
    ends_at: Timestamp | msgspec.UnsetType = msgspec.UNSET
    signup_opens_at: Timestamp | msgspec.UnsetType = msgspec.UNSET
    signup_closes_at: Timestamp | msgspec.UnsetType = msgspec.UNSET
    cancel_deadline: Timestamp | None | msgspec.UnsetType = msgspec.UNSET
    capacity: Capacity | msgspec.UnsetType = msgspec.UNSET
    waitlist: bool | msgspec.UnsetType = msgspec.UNSET
    cover_file_id: Id | None | msgspec.UnsetType = msgspec.UNSET


class NoBody(Body, kw_only=True):
    """An action without parameters: an empty body or `{}`; any field is refused (API.md §1)."""


class CancelIn(Body, kw_only=True):
    reason: CancelReason = ""


class MySignup(Out, kw_only=True, omit_defaults=True):
    status: SignupStatus
    position: int | None = None  # only while waitlisted: 1..waitlist_count
    checked_in_at: datetime | None = None
    attendance: Attendance | None = None
    feedback_given: bool = False


class ActivityOut(Out, kw_only=True):
    id: str
    programme: str
    org_id: str
    title: str
    description: str
    location: str | None
    starts_at: datetime
    ends_at: datetime
    signup_opens_at: datetime
    signup_closes_at: datetime
    cancel_deadline: datetime
    capacity: int
    waitlist: bool
    cover_file_id: str | None
    status: ActivityStatus
    confirmed_count: int
    waitlist_count: int
    my_signup: MySignup | None
    created_at: datetime
    published_at: datetime | None
    cancelled_at: datetime | None


class ActivityPage(Out, kw_only=True):
    items: list[ActivityOut]
    next_cursor: str | None


# -- sign-ups -------------------------------------------------------------------------------------

class SignupIn(Body, kw_only=True):
    answers: Answers = {}


class SignupOut(Out, kw_only=True, omit_defaults=True):
    status: SignupStatus
    position: int | None = None


class RosterEntry(Out, kw_only=True):
    member_id: str
    name: str
    phone_masked: str
    status: SignupStatus
    position: int | None
    signed_up_at: datetime
    confirmed_at: datetime | None
    cancelled_at: datetime | None
    checked_in_at: datetime | None
    attendance: Attendance | None
    answers: dict[str, str]


class RosterCounts(Out, kw_only=True):
    confirmed: int
    waitlisted: int
    cancelled: int
    present: int
    no_show: int


class Roster(Out, kw_only=True):
    activity_id: str
    capacity: int
    counts: RosterCounts
    confirmed: list[RosterEntry]
    waitlisted: list[RosterEntry]
    cancelled: list[RosterEntry]


# -- on the day -----------------------------------------------------------------------------------

class CheckinIn(Body, kw_only=True):
    qr_token: QrToken


class CheckinOut(Out, kw_only=True):
    """As for study check-ins (API.md §5): an activity has no late arrivals, so status is always present."""

    result: Literal["ok", "already_checked_in"]
    status: Literal["present"]
    checked_in_at: datetime


class FeedbackIn(Body, kw_only=True):
    rating: Annotated[int, msgspec.Meta(ge=1, le=5)]
    comment: Comment = ""


class FeedbackOut(Out, kw_only=True):
    id: str
    activity_id: str
    rating: int
    comment: str
    content_flag: ContentFlag = None
    created_at: datetime


class FeedbackSummary(Out, kw_only=True):
    activity_id: str
    count: int
    average: float | None
    ratings: dict[str, int]
    comments: list[FeedbackOut]


class SignupReminderOut(Out, kw_only=True):
    """A member's request to be told when sign-up opens (`signup_opens`): waiting, sent, or none asked."""

    activity_id: str
    signup_opens_at: datetime
    state: Literal["none", "waiting", "sent", "dropped"]
