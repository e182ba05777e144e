"""Study sessions (API.md §5): create, list, read, update, cancel; the rotating QR; the attendee list.

Scope: a member sees sessions of their own org and its ancestors; an organiser also sees every session in
the subtrees they organise. Anything else answers 404 session_not_found.

Attendees: an explicit list, or by default every active member of the org's subtree. The list is fixed
(snapshotted) the first time anyone touches the session after its check-in window opens, by one conditional
update on `attendees_fixed: false` — concurrent first touches race on that filter and exactly one writes, so
members who join later are never counted absent and nobody is dropped who was there when it opened.

The feed (API.md §7, kind "study_session"): every session has one feed item whose audience is its attendees —
the org subtree while the default list is still open (exactly who would be fixed now), the member list once it
is explicit or fixed. Create, update and cancel write the session and its item in one transaction. Fixing the
list is a single conditional update (no transaction: a check-in burst must not queue behind it) that also sets
`feed_stale`; whoever sees `feed_stale` re-publishes the item and clears the flag in one transaction, so a
failure between the two steps is repaired by the next touch. A cancelled session stays in the feed marked
【已取消】 with its reason until its planned end, then expires out of it (a delete for sync clients).

Notifications (API.md §9, server/notifications/outbox.py), to the attendees as `current_attendees` gives them,
in the transaction of the change: `session_scheduled` on create, `session_changed` when the time or the place
changes, `session_cancelled` on cancel. `tell` is the one way they are written (reminders use it too).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.errors import PyMongoError

from server import audit, orgs, qr
from server.clock import to_ms
from server.context import Context
from server.db import indexes, transaction, update_then_get
from server.errors import ApiError, invalid, not_found
from server.feed import writing as feed_writing
from server.ids import new_id
from server.members import COLLECTION as MEMBERS
from server.notifications import outbox
from server.pagination import Keyset, page
from server.scope import Principal
from server.study import schemes

COLLECTION = "study_sessions"
ATTENDANCE = "study_attendance"
QR_PURPOSE = "study"
DEFAULT_OPEN_BEFORE = timedelta(minutes=30)
FEED_KIND = "study_session"

log = logging.getLogger("branchline.study")

indexes(
    COLLECTION,
    IndexModel([("org_path", ASCENDING), ("starts_at", DESCENDING)]),
    IndexModel([("org_id", ASCENDING), ("starts_at", DESCENDING)]),
    IndexModel([("org_id", ASCENDING), ("_id", DESCENDING)]),  # the list (list_query)
    IndexModel([("org_path", ASCENDING), ("_id", DESCENDING)]),
)
indexes(
    ATTENDANCE,
    IndexModel([("session_id", ASCENDING), ("member_id", ASCENDING)], unique=True),
    IndexModel([("member_id", ASCENDING), ("starts_at", ASCENDING)]),
    IndexModel([("org_path", ASCENDING), ("starts_at", ASCENDING)]),
)


def session_not_found() -> ApiError:
    return not_found("session_not_found", "study session")


def session_cancelled() -> ApiError:
    return ApiError(409, "session_cancelled", "This session was cancelled.")


# -- scope ------------------------------------------------------------------------------------------

def sees(principal: Principal, session: dict) -> bool:
    """Sessions of the caller's org and its ancestors, and all those of the subtrees they organise. Checked
    on the document read by `_id`: an `_id` beside an `$or` makes SecantusDB scan the whole collection."""
    return session["org_id"] in principal.org_path or principal.organises(session["org_path"])


async def get_visible(ctx: Context, principal: Principal, session_id: str) -> dict:
    """The session if the caller may see it, its attendees fixed when due; else 404 session_not_found."""
    session = await ctx.db[COLLECTION].find_one({"_id": session_id})
    if session is None or not sees(principal, session):
        raise session_not_found()
    return await fix_attendees(ctx, session)


async def get_managed(ctx: Context, principal: Principal, session_id: str) -> dict:
    session = await get_visible(ctx, principal, session_id)
    principal.require_organiser(session["org_path"], "session")
    return session


def is_cancelled(session: dict) -> bool:
    return session["status"] == "cancelled"


def require_not_cancelled(session: dict) -> None:
    if is_cancelled(session):
        raise session_cancelled()


# -- attendees --------------------------------------------------------------------------------------

def _attendee_query(session: dict) -> dict:
    """The active members of the session's subtree, on the members' (org_path, active, _id) index; what
    else decides an attendee is checked on the documents (`_attends`): SecantusDB scans the collection
    for a filter with a field beyond the index's."""
    return {"org_path": session["org_id"], "active": True}


def _attends(session: dict, member: dict, *, as_of_opening: bool) -> bool:
    if session.get("attendees_explicit") and member["_id"] not in session["attendees"]:
        return False
    # a snapshot taken late still leaves out members who joined after the window opened
    return not as_of_opening or member["created_at"] <= max(session["checkin_opens_at"], session["created_at"])


async def current_attendees(ctx: Context, session: dict) -> list[str]:
    """The fixed list once the window opened; before that, who would be fixed now."""
    if session["attendees_fixed"]:
        return session["attendees"]
    opened = ctx.now() >= session["checkin_opens_at"]
    if session.get("attendees_explicit"):
        session = {**session, "attendees": set(session["attendees"])}
    return [d["_id"] async for d in ctx.db[MEMBERS].find(_attendee_query(session), {"_id": 1, "created_at": 1}).sort(
        "_id", 1) if _attends(session, d, as_of_opening=opened)]


async def fix_attendees(ctx: Context, session: dict) -> dict:
    """Snapshot the attendee list once the check-in window has opened (idempotent, race-safe).

    The winner of the conditional update also marks the feed item stale; it is re-published to the fixed
    list right after (and by any later touch, should that fail)."""
    if not session.get("attendees_fixed", True) and ctx.now() >= session["checkin_opens_at"]:
        ids = await current_attendees(ctx, session)
        fixed = await update_then_get(
            ctx.db[COLLECTION], {"_id": session["_id"], "attendees_fixed": False},
            {"$set": {"attendees": ids, "attendees_fixed": True, "attendees_fixed_at": ctx.now(),
                      "feed_stale": True}})
        if fixed is None:  # someone else fixed it first: theirs stands
            fixed = await ctx.db[COLLECTION].find_one({"_id": session["_id"]})
        session = fixed
    if session.get("feed_stale"):
        session = await _refresh_feed(ctx, session)
    return session


def is_attendee(session: dict, member_id: str, member_org_path) -> bool:
    if session["attendees_fixed"] or session.get("attendees_explicit"):
        return member_id in session["attendees"]
    return session["org_id"] in member_org_path


def require_attendee(session: dict, principal: Principal) -> None:
    if not is_attendee(session, principal.member_id, principal.org_path):
        raise ApiError(403, "not_an_attendee", "You are not on this session's attendee list.")


# -- notifications ----------------------------------------------------------------------------------

# A change of one of these tells the attendees (`session_changed`).
MOVE_FIELDS = ("starts_at", "ends_at", "location")


def place(session: dict) -> str:
    return (session.get("location") or {}).get("name") or ""


async def tell(ctx: Context, txn, session: dict, event: str, *, title: str, summary: str,
               member_ids: list[str] | None = None, dedupe_key: str | None = None, **values) -> int:
    """Notify the session's attendees (or `member_ids`) of `event` in `txn`; how many were queued."""
    members = member_ids if member_ids is not None else await current_attendees(ctx, session)
    if not members:
        return 0
    return await outbox.enqueue(
        ctx, txn, event=event, member_ids=members, ref_kind=FEED_KIND, ref_id=session["_id"],
        org_id=session["org_id"], title=title, summary=summary, dedupe_key=dedupe_key,
        values={"title": session["title"], "time": session["starts_at"], "place": place(session),
                "org": await orgs.name(ctx, session["org_id"], txn=txn), **values})


# -- the feed item ----------------------------------------------------------------------------------

def feed_audience(session: dict) -> list[str] | None:
    """The attendees: by name once listed or fixed; until then the org subtree (None), which is who
    would be fixed now (active members of the subtree)."""
    if session["attendees_fixed"] or session.get("attendees_explicit"):
        return list(session["attendees"])
    return None


def feed_summary(ctx: Context, session: dict) -> str:
    """When and where, in the org time zone; for a cancelled session, that and why."""
    tz = ctx.settings.tz
    start, end = session["starts_at"].astimezone(tz), session["ends_at"].astimezone(tz)
    when = f"{start:%Y-%m-%d %H:%M}–" + (f"{end:%H:%M}" if end.date() == start.date() else f"{end:%Y-%m-%d %H:%M}")
    parts = [when]
    if session.get("location"):
        parts.append(session["location"]["name"])
    text = " · ".join(parts)
    if is_cancelled(session):
        reason = session.get("cancel_reason")
        return f"已取消（原定 {text}）" + (f"。原因：{reason}" if reason else "")
    return text


async def publish_feed(ctx: Context, session: dict, txn) -> None:
    """Write the session's feed item as the session now is, inside the caller's transaction `txn`."""
    cancelled = is_cancelled(session)
    await feed_writing.publish_item(
        ctx, kind=FEED_KIND, ref_id=session["_id"], org_id=session["org_id"],
        title=f"【已取消】{session['title']}" if cancelled else session["title"],
        summary=feed_summary(ctx, session), published_at=session["created_at"],
        member_ids=feed_audience(session), expires_at=session["ends_at"] if cancelled else None, txn=txn)


async def _refresh_feed(ctx: Context, session: dict) -> dict:
    """Re-publish a session whose feed item is stale and clear the flag, in one transaction."""
    async def work(txn) -> dict | None:
        current = await ctx.db[COLLECTION].find_one({"_id": session["_id"]}, session=txn)
        if current is None or not current.get("feed_stale"):
            return current  # another request did it
        await publish_feed(ctx, current, txn)
        await ctx.db[COLLECTION].update_one({"_id": session["_id"]}, {"$set": {"feed_stale": False}}, session=txn)
        current["feed_stale"] = False
        return current

    try:
        return await transaction(ctx, work) or session
    except PyMongoError as exc:  # the flag stays set: the next touch tries again
        log.warning("re-publishing the feed item of study session %s failed: %s", session["_id"], exc)
        return session


# -- output -----------------------------------------------------------------------------------------

def attendance_brief(record: dict | None) -> dict | None:
    if record is None:
        return None
    return {"status": record["status"], "checked_in_at": record.get("checked_in_at"),
            "source": record.get("source"), "offline": record.get("offline", False)}


_LOOKUP = object()


async def sessions_out(ctx: Context, principal: Principal, sessions: list[dict]) -> list[dict]:
    """Several sessions, with the caller's records read in one query."""
    # One indexed lookup per session: SecantusDB may answer a long session_id $in with a collection scan.
    records = [await ctx.db[ATTENDANCE].find_one({"session_id": s["_id"], "member_id": principal.member_id})
               for s in sessions]
    mine = {r["session_id"]: r for r in records if r is not None}
    return [await session_out(ctx, principal, s, record=mine.get(s["_id"])) for s in sessions]


async def session_out(ctx: Context, principal: Principal, session: dict, *, record: Any = _LOOKUP) -> dict:
    organiser = principal.organises(session["org_path"])
    if session["attendees_fixed"] or session.get("attendees_explicit"):
        count = len(session["attendees"])
    else:
        count = await ctx.db[MEMBERS].count_documents(_attendee_query(session))
    out = {
        "id": session["_id"], "org_id": session["org_id"], "track": session["track"], "title": session["title"],
        "agenda": session.get("agenda"), "starts_at": session["starts_at"], "ends_at": session["ends_at"],
        "checkin_opens_at": session["checkin_opens_at"], "checkin_closes_at": session["checkin_closes_at"],
        "late_after": session["late_after"], "location": session.get("location"), "methods": session["methods"],
        "status": session["status"], "cancel_reason": session.get("cancel_reason"),
        "attendees_fixed": session["attendees_fixed"], "attendee_count": count,
        "attendees": (await current_attendees(ctx, session)) if organiser else None,
        "created_at": session["created_at"],
    }
    if record is _LOOKUP:
        record = await ctx.db[ATTENDANCE].find_one({"session_id": session["_id"], "member_id": principal.member_id})
    mine = attendance_brief(record)
    if (mine is None and ctx.now() > session["checkin_closes_at"] and not is_cancelled(session)
            and is_attendee(session, principal.member_id, principal.org_path)):
        mine = {"status": "absent", "checked_in_at": None, "source": None, "offline": False}
    out["my_attendance"] = mine
    return out


# -- create, update, cancel -------------------------------------------------------------------------

def _times(values: dict) -> dict:
    """Fill the window defaults and check the order of the times; all UTC."""
    starts, ends = to_ms(values["starts_at"]), to_ms(values["ends_at"])
    opens = to_ms(values["checkin_opens_at"]) if values.get("checkin_opens_at") else starts - DEFAULT_OPEN_BEFORE
    closes = to_ms(values["checkin_closes_at"]) if values.get("checkin_closes_at") else ends
    late = to_ms(values["late_after"]) if values.get("late_after") else starts
    if ends <= starts:
        raise invalid("ends_at", "ends_at must be after starts_at.")
    if closes <= opens:
        raise invalid("checkin_closes_at", "The check-in window must close after it opens.")
    if not opens <= late <= closes:
        raise invalid("late_after", "late_after must lie inside the check-in window.")
    if ends - starts > timedelta(days=7):
        raise invalid("ends_at", "A session lasts at most 7 days.")
    return {"starts_at": starts, "ends_at": ends, "checkin_opens_at": opens, "checkin_closes_at": closes,
            "late_after": late}


def _methods(methods: list[str], location: dict | None) -> list[str]:
    ordered = [m for m in ("qr", "geo") if m in methods]
    if "qr" not in ordered:
        raise invalid("methods", 'methods must include "qr".')
    if "geo" in ordered and location is None:
        raise invalid("location", 'A session checked by "geo" needs a location with a radius.')
    return ordered


async def _explicit_attendees(ctx: Context, org_id: str, ids: list[str]) -> list[str]:
    unique = list(dict.fromkeys(ids))
    found = await ctx.db[MEMBERS].find({"_id": {"$in": unique}, "active": True, "org_path": org_id},
                                       {"_id": 1}).to_list()
    found_ids = {d["_id"] for d in found}
    missing = [i for i in unique if i not in found_ids]
    if missing:
        raise invalid("attendees", f"Not active members of this organisation: {', '.join(missing[:5])}")
    return unique


async def _require_session_track(ctx: Context, org: dict, key: str) -> dict:
    scheme = await schemes.effective(ctx, orgs.full_path(org))
    track = schemes.track(scheme, key)
    if track is None or track["kind"] != "session":
        raise invalid("track", f"{key!r} is not a session track of the scheme {scheme['name']!r}.")
    return track


async def create(ctx: Context, principal: Principal, body: dict) -> dict:
    org = await orgs.require_role(ctx, principal, body["org_id"], "organiser")
    await _require_session_track(ctx, org, body["track"])
    times = _times(body)
    attendees = body.get("attendees")
    now = to_ms(ctx.now())
    session = {
        "_id": new_id(), "org_id": org["_id"], "org_path": orgs.full_path(org), "track": body["track"],
        "title": body["title"], "agenda": body.get("agenda"), **times,
        "location": body.get("location"), "methods": _methods(body["methods"], body.get("location")),
        "attendees_explicit": attendees is not None,
        "attendees": await _explicit_attendees(ctx, org["_id"], attendees) if attendees is not None else [],
        "attendees_fixed": False, "status": "scheduled", "qr_secret": qr.new_secret(),
        "created_at": now, "created_by": principal.member_id, "updated_at": now, "feed_stale": False,
    }
    if now >= session["checkin_opens_at"]:  # created with its window already open: fixed from the start
        session.update(attendees=await current_attendees(ctx, session), attendees_fixed=True,
                       attendees_fixed_at=now)

    async def work(txn) -> None:
        await ctx.db[COLLECTION].insert_one(session, session=txn)
        await publish_feed(ctx, session, txn)
        await tell(ctx, txn, session, "session_scheduled", title=f"学习安排：{session['title']}",
                   summary=feed_summary(ctx, session))

    await transaction(ctx, work)
    return session


async def update(ctx: Context, principal: Principal, session_id: str, changes: dict) -> dict:
    session = await get_managed(ctx, principal, session_id)
    require_not_cancelled(session)
    merged = {**session, **changes}
    update: dict[str, Any] = {k: v for k, v in changes.items() if k in ("title", "agenda", "location")}
    if {"starts_at", "ends_at", "checkin_opens_at", "checkin_closes_at", "late_after"} & changes.keys():
        # Defaults follow the new start/end unless the window times are given too.
        for key, follows in (("checkin_opens_at", "starts_at"), ("checkin_closes_at", "ends_at"),
                             ("late_after", "starts_at")):
            if key not in changes and follows in changes and session[key] == _default(session, key):
                merged[key] = None
        update.update(_times(merged))
    if "methods" in changes or "location" in changes:
        update["methods"] = _methods(merged["methods"], merged.get("location"))
    if "attendees" in changes:
        if session["attendees_fixed"]:
            raise ApiError(409, "attendees_fixed", "The attendee list was fixed when check-in opened.")
        update["attendees"] = await _explicit_attendees(ctx, session["org_id"], changes["attendees"])
        update["attendees_explicit"] = True
    update["updated_at"] = ctx.now()

    async def work(txn) -> dict:
        new = await update_then_get(
            ctx.db[COLLECTION], {"_id": session_id, "status": "scheduled",
                                 **({"attendees_fixed": False} if "attendees" in changes else {})},
            {"$set": update}, txn=txn)
        if new is None:
            raise ApiError(409, "session_changed", "The session changed meanwhile (cancelled or opened); reload it.")
        if "starts_at" in update or "ends_at" in update:
            await ctx.db[ATTENDANCE].update_many({"session_id": session_id}, {"$set": {
                "starts_at": new["starts_at"], "minutes": minutes(new)}}, session=txn)
        await audit.record(ctx, actor_id=principal.member_id, action="study.session.update",
                           target_kind="study_session", target_id=session_id, org_path=session["org_path"],
                           details={"fields": sorted(changes)}, txn=txn)
        await publish_feed(ctx, new, txn)
        moved = [k for k in MOVE_FIELDS if session.get(k) != new.get(k)]
        if moved:
            note = "地点变更" if moved == ["location"] else "时间变更" if "location" not in moved else "时间和地点变更"
            await tell(ctx, txn, new, "session_changed", title=f"学习{note}：{new['title']}",
                       summary=f"{note}：{feed_summary(ctx, new)}", note=note)
        return new

    new = await transaction(ctx, work)
    if "starts_at" in update or "ends_at" in update:
        # As for a cancellation: a check-in that read the old times may insert after the transaction's
        # snapshot; sweep again now it has committed (later ones correct themselves after their insert).
        try:
            await ctx.db[ATTENDANCE].update_many(
                {"session_id": session_id, "$or": [{"starts_at": {"$ne": new["starts_at"]}},
                                                   {"minutes": {"$ne": minutes(new)}}]},
                {"$set": {"starts_at": new["starts_at"], "minutes": minutes(new)}})
        except PyMongoError as exc:
            log.warning("sweeping the records of moved study session %s failed: %s", session_id, exc)
    return await fix_attendees(ctx, new)


def _default(session: dict, key: str) -> datetime:
    return {"checkin_opens_at": session["starts_at"] - DEFAULT_OPEN_BEFORE,
            "checkin_closes_at": session["ends_at"], "late_after": session["starts_at"]}[key]


def minutes(session: dict) -> int:
    """How long the session lasts, as its attendance records count it."""
    return int((session["ends_at"] - session["starts_at"]).total_seconds() // 60)


async def cancel(ctx: Context, principal: Principal, session_id: str, reason: str) -> dict:
    session = await get_managed(ctx, principal, session_id)
    require_not_cancelled(session)
    async def work(txn) -> dict:
        now = ctx.now()
        new = await update_then_get(
            ctx.db[COLLECTION], {"_id": session_id, "status": "scheduled"},
            {"$set": {"status": "cancelled", "cancel_reason": reason, "cancelled_at": now,
                      "cancelled_by": principal.member_id, "updated_at": now}}, txn=txn)
        if new is None:
            raise session_cancelled()
        await ctx.db[ATTENDANCE].update_many({"session_id": session_id}, {"$set": {"cancelled": True}}, session=txn)
        await audit.record(ctx, actor_id=principal.member_id, action="study.session.cancel",
                           target_kind="study_session", target_id=session_id, org_path=session["org_path"],
                           reason=reason, txn=txn)
        await publish_feed(ctx, new, txn)
        await tell(ctx, txn, new, "session_cancelled", title=f"学习取消：{new['title']}",
                   summary=feed_summary(ctx, new), reason=reason)
        return new

    cancelled = await transaction(ctx, work)
    # A check-in that read the session before the cancellation may insert its record after the transaction's
    # snapshot: sweep again now it has committed. Any record inserted later is caught by the check-in itself,
    # which reads the session's status after its insert (checkins._follow_session).
    try:
        await ctx.db[ATTENDANCE].update_many({"session_id": session_id, "cancelled": False},
                                             {"$set": {"cancelled": True}})
    except PyMongoError as exc:
        log.warning("sweeping the records of cancelled study session %s failed: %s", session_id, exc)
    return cancelled


def list_query(principal: Principal, org_id: str | None = None, start: datetime | None = None,
               end: datetime | None = None) -> Keyset:
    """The session list, newest first: what the caller `sees`, as one equality branch per index
    (server/pagination.py)."""
    branches = [{"org_id": org} for org in principal.org_path]
    branches += [{"org_path": org} for org in principal.role_orgs()]
    narrow: list[dict] = [{"org_path": org_id}] if org_id is not None else []
    window = {**({"$gte": to_ms(start)} if start is not None else {}),
              **({"$lt": to_ms(end)} if end is not None else {})}
    if window:
        narrow.append({"starts_at": window})
    return Keyset(tuple(branches), descending=True, narrow=tuple(narrow))


async def list_visible(ctx: Context, principal: Principal, org_id: str | None, start: datetime | None,
                       end: datetime | None, limit: int, cursor: str | None) -> tuple[list[dict], str | None]:
    if org_id is not None:
        org_id = (await orgs.get_visible(ctx, principal, org_id))["_id"]
    docs, next_cursor = await page(ctx.db[COLLECTION], list_query(principal, org_id, start, end), limit, cursor)
    return [await fix_attendees(ctx, d) for d in docs], next_cursor


# -- QR ---------------------------------------------------------------------------------------------

async def qr_token(ctx: Context, principal: Principal, session_id: str) -> dict:
    session = await get_managed(ctx, principal, session_id)
    require_not_cancelled(session)
    return qr.shown(session["qr_secret"], QR_PURPOSE, session["_id"], ctx.now(), ctx.settings.qr_link_prefix)


async def qr_image(ctx: Context, principal: Principal, session_id: str, fmt: str) -> bytes:
    return qr.image(await qr_token(ctx, principal, session_id), fmt)
