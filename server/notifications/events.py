"""The events of API.md §9: their stable keys, the values each offers a template, and how a value is
cut to the WeChat field it is put in.

A template in the WeChat console has keywords whose keys name their kind (`thing1`, `time2`,
`phrase3`): the kind sets what WeChat accepts (FIELD_LIMITS). An event offers values by name
(`title`, `time`, `place`, ...), each of a kind of its own; the configuration maps each WeChat key to
one value name (server/notifications/templates.py), and `render` writes the value in the key's kind.
A value goes only into keys of a kind that can show it (COMPATIBLE): a time into `time`, `date` or
`thing`, a text into `thing`, `phrase` or `name`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

# Value kinds, as the services give them: text ("thing"), a short word ("phrase"), a moment ("time"), a count.
THING, PHRASE, TIME, NUMBER = "thing", "phrase", "time", "number"


@dataclass(frozen=True)
class Event:
    key: str
    values: dict[str, str]  # value name -> kind
    reminder: bool = False  # sent `lead_minutes` before a start: the template says how long
    # A notice in the feed. Not for the changes of a study session: its own feed item already shows
    # them to the same attendees (new, moved, 【已取消】), and a notice beside it would say it twice.
    notice: bool = True


_ACTIVITY = {"title": THING, "time": TIME, "place": THING, "org": THING}
_SESSION = {"title": THING, "time": TIME, "place": THING, "org": THING}

EVENTS: dict[str, Event] = {e.key: e for e in [
    Event("waitlist_promoted", {**_ACTIVITY, "result": PHRASE}),
    Event("activity_cancelled", {**_ACTIVITY, "reason": THING}),
    Event("activity_changed", {**_ACTIVITY, "note": THING}),
    Event("activity_reminder", dict(_ACTIVITY), reminder=True),
    Event("signup_opens", {**_ACTIVITY, "opens_at": TIME}),
    Event("session_scheduled", dict(_SESSION), notice=False),
    Event("session_changed", {**_SESSION, "note": THING}, notice=False),
    Event("session_cancelled", {**_SESSION, "reason": THING}, notice=False),
    Event("session_reminder", dict(_SESSION), reminder=True),
    Event("request_decided", {"title": THING, "result": PHRASE, "reason": THING, "time": TIME, "org": THING}),
    Event("must_read_reminder", {"title": THING, "time": TIME, "org": THING, "note": THING}),
    Event("warning_opened", {"title": THING, "period": THING, "count": NUMBER, "org": THING, "time": TIME}),
]}

# What WeChat accepts in a keyword of each kind (its 订阅消息 documentation): the longest value in
# characters, and for time and date the only format.
FIELD_LIMITS = {"thing": 20, "phrase": 5, "name": 10, "character_string": 32, "number": 32, "letter": 32,
                "symbol": 5, "time": 0, "date": 0}
COMPATIBLE = {
    THING: {"thing", "phrase", "name"},
    PHRASE: {"phrase", "thing"},
    TIME: {"time", "date", "thing"},
    NUMBER: {"number", "character_string", "thing"},
}
_KEY = re.compile(r"([a-z_]+?)([0-9]{1,2})")
# Shown for a value the event did not have this time (an activity without a place); never empty:
# WeChat refuses an empty keyword with 47003.
MISSING = "无"


def key_kind(wechat_key: str) -> str | None:
    """The kind of a WeChat keyword key (`thing1` -> thing), or None for one that is not a WeChat key."""
    match = _KEY.fullmatch(wechat_key)
    return match.group(1) if match and match.group(1) in FIELD_LIMITS else None


def mapping_problem(event: Event, wechat_key: str, value_name: str) -> str | None:
    """Why `value_name` cannot fill `wechat_key` for this event, or None when it can."""
    kind = key_kind(wechat_key)
    if kind is None:
        return f"{wechat_key!r} is not a WeChat keyword key (thing1, time2, phrase3, ...)."
    if value_name not in event.values:
        return f"{event.key} offers no value {value_name!r} (it offers {', '.join(event.values)})."
    if kind not in COMPATIBLE[event.values[value_name]]:
        return f"{value_name!r} ({event.values[value_name]}) cannot fill a {kind} keyword."
    return None


def format_time(moment: datetime, tz: ZoneInfo) -> str:
    """WeChat's time keyword: `YYYY年M月D日 HH:mm` in the organisation's time zone."""
    local = moment.astimezone(tz)
    return f"{local.year}年{local.month}月{local.day}日 {local:%H:%M}"


def format_date(moment: datetime, tz: ZoneInfo) -> str:
    local = moment.astimezone(tz)
    return f"{local.year}年{local.month}月{local.day}日"


def render_value(kind: str, value, tz: ZoneInfo) -> str:
    """`value` written as a keyword of `kind` accepts it, cut to WeChat's limit."""
    if value is None or value == "":
        return MISSING
    if isinstance(value, datetime):
        if kind == "date":
            return format_date(value, tz)
        text = format_time(value, tz)
        return text if kind == "time" else _cut(text, FIELD_LIMITS.get(kind, 20))
    text = " ".join(str(value).split())
    if kind == "number":
        digits = re.sub(r"[^0-9.]", "", text)
        return digits[: FIELD_LIMITS["number"]] or "0"
    if kind == "character_string":
        text = re.sub(r"[^0-9A-Za-z_\-.:/ ]", "", text)
    # only thing and name keywords take a symbol: the others are cut without the "…"
    return _cut(text, FIELD_LIMITS.get(kind, 20), ellipsis=kind in ("thing", "name")) or MISSING


def _cut(text: str, limit: int, ellipsis: bool = True) -> str:
    if limit <= 0 or len(text) <= limit:
        return text
    return text[: limit - 1] + "…" if ellipsis else text[:limit]


def render(fields: dict[str, str], values: dict, tz: ZoneInfo) -> dict:
    """The `data` of subscribe/send: each configured WeChat key with its value cut to the key's kind."""
    return {key: {"value": render_value(key_kind(key) or "thing", values.get(name), tz)}
            for key, name in fields.items()}
