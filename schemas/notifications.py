"""Bodies of the notification endpoints (API.md §9)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

from schemas.common import Body, Out, line, token

Event = Literal["waitlist_promoted", "activity_cancelled", "activity_changed", "activity_reminder", "signup_opens",
                "session_scheduled", "session_changed", "session_cancelled", "session_reminder",
                "request_decided", "must_read_reminder", "warning_opened"]
WechatStatus = Literal["sent", "pending", "no_grant", "muted", "failed", "off"]
# WeChat's template ids are 43 characters of base64url; keyword keys look like thing1, time12.
TemplateId = token(64)
WechatKey = Annotated[str, msgspec.Meta(min_length=2, max_length=32, pattern=r"^[a-z_]+[0-9]{1,2}$")]
ValueName = token(32)
SubscribeAnswer = Literal["accept", "reject", "ban", "filter"]


class TemplatePut(Body):
    template_id: TemplateId
    # A WeChat template has at most 5 keywords in the console; 10 leaves room.
    fields: Annotated[dict[WechatKey, ValueName], msgspec.Meta(min_length=1, max_length=10)]
    page: line(256, min_length=0) = ""
    enabled: bool = True
    lead_minutes: Annotated[int, msgspec.Meta(ge=1, le=1440)] | None = None


class TemplateOut(Out):
    event: Event
    template_id: str | None
    page: str
    enabled: bool
    lead_minutes: int | None
    fields: dict[str, str]
    values: list[str]
    # Each value name → the kinds of WeChat keyword it may fill (`time` → date, thing, time): a key's kind
    # is its letters (`time2` → time). A PUT mapping a value to any other kind is refused.
    fits: dict[str, list[str]]


class TemplateList(Out):
    items: list[TemplateOut]


class SubscriptionsPost(Body):
    # what wx.requestSubscribeMessage answered: at most 3 templates per call on WeChat's side
    results: Annotated[dict[TemplateId, SubscribeAnswer], msgspec.Meta(min_length=1, max_length=20)]


class GrantOut(Out):
    event: Event
    template_id: str
    grants: int


class GrantList(Out):
    items: list[GrantOut]


class Preferences(Body):
    muted: Annotated[list[Event], msgspec.Meta(max_length=12)]


class PreferencesOut(Out):
    muted: list[Event]


class NotificationOut(Out):
    id: str
    event: Event
    title: str
    summary: str
    ref_kind: str
    ref_id: str
    created_at: datetime
    wechat: WechatStatus


class NotificationPage(Out):
    items: list[NotificationOut]
    next_cursor: str | None


class DeliveryOut(Out):
    member_id: str
    name: str
    event: Event
    wechat: WechatStatus
    attempts: int
    last_error: str | None
    at: datetime


class DeliveryPage(Out):
    items: list[DeliveryOut]
    next_cursor: str | None
