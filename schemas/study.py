"""Bodies of the study endpoints (API.md §5): schemes, sessions, check-ins, requests, self-study,
progress, compliance and warnings."""

from __future__ import annotations

from datetime import date as Date
from datetime import datetime
from typing import Annotated, Literal

import msgspec

from schemas.common import (
    Body,
    ContentFlag,
    FileIds,
    Id,
    LongText,
    Name,
    Out,
    QrToken,
    ShortText,
    Timestamp,
    line,
    text,
    whole,
)

TrackKey = Annotated[str, msgspec.Meta(pattern=whole(r"[a-z][a-z0-9_]{0,39}"), description="a-z, 0-9, _")]
TrackKind = Literal["session", "self_study"]
PeriodKind = Literal["month", "quarter", "year"]
AttendanceStatus = Literal["present", "late", "leave", "absent"]
RequestKind = Literal["leave", "makeup"]
RequestStatus = Literal["pending", "approved", "rejected"]
WarningStatus = Literal["open", "rectifying", "closed"]
Method = Literal["qr", "geo"]
Reason = text(500, min_length=1)
Note = text(2000)
WarningNote = text(2000, min_length=1)
DeviceId = line(100)
Latitude = Annotated[float, msgspec.Meta(ge=-90, le=90)]
Longitude = Annotated[float, msgspec.Meta(ge=-180, le=180)]


# -- scheme ---------------------------------------------------------------------------------------

class Track(Body):
    key: TrackKey
    name: Name
    kind: TrackKind
    period: PeriodKind
    min_count: Annotated[int, msgspec.Meta(ge=0, le=1000)] = 0
    min_minutes: Annotated[int, msgspec.Meta(ge=0, le=100000)] = 0


class SchemePut(Body):
    name: Name
    tracks: Annotated[list[Track], msgspec.Meta(min_length=1, max_length=20)]


class TrackOut(Out):
    key: str
    name: str
    kind: TrackKind
    period: PeriodKind
    min_count: int
    min_minutes: int


class SchemeOut(Out, kw_only=True):
    org_id: str
    name: str
    tracks: list[TrackOut]
    inherited_from: str | None = None  # org whose scheme applies; null: the shipped default
    is_default: bool = False


# -- sessions -------------------------------------------------------------------------------------

class LocationIn(Body):
    name: ShortText
    lat: Latitude
    lng: Longitude
    radius_m: Annotated[float, msgspec.Meta(gt=0, le=50000)]


class LocationOut(Out):
    name: str
    lat: float
    lng: float
    radius_m: float


Attendees = Annotated[list[Id], msgspec.Meta(min_length=1, max_length=5000)]
Methods = Annotated[list[Method], msgspec.Meta(min_length=1, max_length=2)]


class SessionCreate(Body, kw_only=True):
    org_id: Id
    track: TrackKey
    title: ShortText
    agenda: LongText | None = None
    starts_at: Timestamp
    ends_at: Timestamp
    checkin_opens_at: Timestamp | None = None
    checkin_closes_at: Timestamp | None = None
    late_after: Timestamp | None = None
    location: LocationIn | None = None
    methods: Methods = msgspec.field(default_factory=lambda: ["qr"])
    attendees: Attendees | None = None


class SessionPatch(Body):
    title: ShortText | msgspec.UnsetType = msgspec.UNSET
    agenda: LongText | None | msgspec.UnsetType = msgspec.UNSET
    starts_at: Timestamp | msgspec.UnsetType = msgspec.UNSET
    ends_at: Timestamp | msgspec.UnsetType = msgspec.UNSET
    checkin_opens_at: Timestamp | msgspec.UnsetType = msgspec.UNSET
    checkin_closes_at: Timestamp | msgspec.UnsetType = msgspec.UNSET
    late_after: Timestamp | msgspec.UnsetType = msgspec.UNSET
    location: LocationIn | None | msgspec.UnsetType = msgspec.UNSET
    methods: Methods | msgspec.UnsetType = msgspec.UNSET
    attendees: Attendees | msgspec.UnsetType = msgspec.UNSET


class SessionCancel(Body):
    reason: Reason


class MyAttendance(Out):
    status: AttendanceStatus
    checked_in_at: datetime | None = None
    source: str | None = None
    offline: bool = False


class SessionOut(Out, kw_only=True):
    id: str
    org_id: str
    track: str
    title: str
    agenda: str | None
    starts_at: datetime
    ends_at: datetime
    checkin_opens_at: datetime
    checkin_closes_at: datetime
    late_after: datetime
    location: LocationOut | None
    methods: list[str]
    status: Literal["scheduled", "cancelled"]
    cancel_reason: str | None = None
    attendees_fixed: bool
    attendee_count: int
    attendees: list[str] | None = None  # organisers only
    my_attendance: MyAttendance | None = None
    created_at: datetime


class SessionPage(Out):
    items: list[SessionOut]
    next_cursor: str | None


# -- check-ins ------------------------------------------------------------------------------------

class Fix(Body):
    lat: Latitude
    lng: Longitude
    accuracy: Annotated[float, msgspec.Meta(ge=0, le=5000)] = 0


class StudyCheckinIn(Body):
    session_id: Id
    qr_token: QrToken | None = None
    location: Fix | None = None
    client_time: Timestamp | None = None
    device_id: DeviceId | None = None


class StudyCheckinOut(Out):
    result: Literal["ok", "already_checked_in"]
    status: AttendanceStatus
    checked_in_at: datetime | None
    session_id: str
    member_id: str
    source: str
    method: str
    offline: bool
    reason: str | None = None


# -- attendance, requests -------------------------------------------------------------------------

class AttendanceEntry(Out):
    member_id: str
    name: str
    org_id: str | None
    status: AttendanceStatus
    checked_in_at: datetime | None = None
    source: str | None = None
    method: str | None = None
    offline: bool = False
    reason: str | None = None


class AttendanceCounts(Out):
    present: int
    late: int
    leave: int
    absent: int


class AttendanceRoster(Out):
    session_id: str
    attendees_fixed: bool
    counts: AttendanceCounts
    present: list[AttendanceEntry]
    late: list[AttendanceEntry]
    leave: list[AttendanceEntry]
    absent: list[AttendanceEntry]


class MarkIn(Body):
    status: AttendanceStatus
    reason: Reason


class AttendanceOut(Out):
    session_id: str
    member_id: str
    status: AttendanceStatus
    checked_in_at: datetime | None
    source: str
    method: str
    offline: bool
    reason: str | None = None


class RequestIn(Body):
    session_id: Id
    kind: RequestKind
    reason: Reason


class DecisionIn(Body):
    note: Note | None = None


class RequestOut(Out, kw_only=True):
    id: str
    session_id: str
    member_id: str
    kind: RequestKind
    reason: str
    content_flag: ContentFlag = None
    status: RequestStatus
    note: str | None = None
    created_at: datetime
    decided_at: datetime | None = None


class RequestPage(Out):
    items: list[RequestOut]
    next_cursor: str | None


# -- self-study, progress, compliance -------------------------------------------------------------

class SelfStudyIn(Body, kw_only=True):
    track: TrackKey
    minutes: Annotated[int, msgspec.Meta(ge=1, le=240)]
    material: ShortText
    note: Note | None = None
    date: Date


class SelfStudyOut(Out):
    id: str
    track: str
    minutes: int
    material: str
    note: str | None
    date: Date
    day_total_minutes: int
    created_at: datetime
    content_flag: ContentFlag = None


class SelfStudyPage(Out):
    items: list[SelfStudyOut]
    next_cursor: str | None


class TrackProgress(Out):
    key: str
    name: str
    kind: TrackKind
    required_count: int
    done_count: int
    required_minutes: int
    done_minutes: int
    complete: bool


class Progress(Out):
    period: str
    scheme: str
    tracks: list[TrackProgress]
    complete: bool


class OrgCompliance(Out):
    org_id: str
    name: str
    members: int
    complete_members: int
    rate: float


class MemberCompliance(Out):
    member_id: str
    name: str
    org_id: str
    complete: bool
    tracks: list[TrackProgress]


class Compliance(Out):
    period: str
    orgs: list[OrgCompliance]
    members: list[MemberCompliance]


# -- warnings -------------------------------------------------------------------------------------

class ScanOut(Out):
    created: int
    period: str


class RectifyIn(Body):
    note: WarningNote
    file_ids: FileIds = []


class CloseIn(Body):
    note: WarningNote


class WarningStep(Out):
    status: WarningStatus
    at: datetime
    by: str | None
    note: str | None = None
    file_ids: list[str] = []


class WarningOut(Out, kw_only=True):
    id: str
    org_id: str
    member_id: str | None
    member_name: str | None = None
    period: str
    track: str
    reason: str
    status: WarningStatus
    history: list[WarningStep]
    created_at: datetime


class WarningPage(Out):
    items: list[WarningOut]
    next_cursor: str | None
