"""Member check-ins and self-study (API.md §5).

Check-in (pretix-style redeem): the session must be visible (404 session_not_found), not cancelled (409),
the caller an attendee (403 not_an_attendee), the moment inside the check-in window (409 checkin_not_open /
checkin_closed), the rotating QR token valid at that moment (422 qr_invalid / qr_expired) and, when the
session asks for "geo", a location fix inside the fence (422 location_required / outside_geofence).
A fix's accuracy is the client's own claim: one less precise than the fence is wide cannot place anyone
inside it, so it is refused (422 location_inaccurate) rather than allowed to widen the fence by its
accuracy. The record is then inserted under the unique (session, member) index: however many requests
race, one insert wins (created) and the rest read the winner (already_checked_in). Every attempt,
accepted or refused, is appended to the event log with its source and method.

Offline scans carry `client_time`: the rules above are applied at `client_time` instead of now, provided the
request arrives within 24 h of it; such records are flagged `offline` for the organiser.

Self-study: at most 240 minutes per member per day (the day in the org time zone, the entry's `date`),
held under concurrent posts by a per-member-per-day counter moved only by a conditional `$inc`, in one
transaction with the entry (a failed entry takes no minutes).
"""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.errors import DuplicateKeyError

from server import content_check, qr
from server.clock import to_ms
from server.context import Context
from server.db import indexes, transaction
from server.errors import ApiError, invalid
from server.ids import new_id
from server.pagination import Keyset, page
from server.scope import Principal
from server.study import attendance, schemes, sessions
from server.study.sessions import ATTENDANCE, QR_PURPOSE
from server.study.sessions import COLLECTION as SESSIONS

OFFLINE_LIMIT = timedelta(hours=24)
CLOCK_SKEW = timedelta(minutes=2)  # a phone's clock may run a little ahead of ours
EARTH_RADIUS_M = 6371008.8  # mean Earth radius (IUGG)
DAILY_CAP_MINUTES = 240
BACKDATE_DAYS = 31
SELF_STUDY = "study_self_study"
DAILY = "study_daily_minutes"  # _id = "<member>:<YYYY-MM-DD>", minutes

indexes(SELF_STUDY, IndexModel([("member_id", ASCENDING), ("date", ASCENDING)]),
        IndexModel([("member_id", ASCENDING), ("_id", DESCENDING)]),  # the member's list (self_study_query)
        IndexModel([("member_org_path", ASCENDING), ("date", ASCENDING)]))


def distance_m(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    """Great-circle distance by the haversine formula, in metres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lng2 - lng1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def _already(record: dict) -> dict:
    return {"result": "already_checked_in", **attendance.attendance_out(record)}


def _check_rules(session: dict, principal: Principal, body: dict, now: datetime,
                 link_prefix: str) -> tuple[datetime, bool]:
    """Apply the rules that need no database; returns (the moment judged, offline)."""
    sessions.require_not_cancelled(session)
    sessions.require_attendee(session, principal)
    client_time = body.get("client_time")
    offline = client_time is not None
    at = now
    if offline:
        at = to_ms(client_time)
        if at > now + CLOCK_SKEW:
            raise invalid("client_time", "client_time lies in the future.")
        if now - at > OFFLINE_LIMIT:
            raise ApiError(409, "checkin_closed", "An offline check-in must reach us within 24 h of the scan.")
    if at < session["checkin_opens_at"]:
        raise ApiError(409, "checkin_not_open", "Check-in has not opened yet.")
    if at > session["checkin_closes_at"]:
        raise ApiError(409, "checkin_closed", "Check-in has closed.")
    token = body.get("qr_token")
    if not token:
        raise ApiError(422, "qr_invalid", "Scan the QR code shown at the session.")
    qr.verify(session["qr_secret"], QR_PURPOSE, session["_id"], qr.scanned_token(token, link_prefix), at)
    if "geo" in session["methods"]:
        fix, fence = body.get("location"), session["location"]
        if fix is None:
            raise ApiError(422, "location_required", "This session checks your location; allow it and retry.")
        if fix.get("accuracy", 0) > fence["radius_m"]:
            raise ApiError(422, "location_inaccurate", "Your location is too imprecise for this session's "
                                                      "place; wait for a better fix and retry.")
        if distance_m(fix["lat"], fix["lng"], fence["lat"], fence["lng"]) > fence["radius_m"]:
            raise ApiError(422, "outside_geofence", "You are not at the session's place.")
    return at, offline


async def check_in(ctx: Context, principal: Principal, body: dict) -> tuple[dict, bool]:
    """→ (the attendance answer, created?): False when the member had already checked in."""
    now = to_ms(ctx.now())
    session_id = body["session_id"]
    session: dict | None = None
    method = "qr"
    log: dict[str, Any] = {"client_time": body.get("client_time"), "offline": body.get("client_time") is not None,
                           "device_id": body.get("device_id"), "location": body.get("location")}
    try:
        session = await sessions.get_visible(ctx, principal, session_id)
        method = "+".join(session["methods"])
        try:
            at, offline = _check_rules(session, principal, body, now, ctx.settings.qr_link_prefix)
        except ApiError as exc:
            if exc.code in ("checkin_closed", "qr_expired", "qr_invalid", "checkin_not_open",
                            "location_required", "location_inaccurate", "outside_geofence"):
                # A retry after a success answers with the first record, whatever the clock says now.
                record = await ctx.db[ATTENDANCE].find_one({"session_id": session_id,
                                                           "member_id": principal.member_id})
                if record is not None and record["status"] in attendance.ATTENDED:
                    await _log(ctx, session, session_id, principal, method, "already_checked_in", log)
                    return _already(record), False
            raise
        out, created = await _record(ctx, principal, session, at, offline, method, body, now)
    except ApiError as exc:
        await _log(ctx, session, session_id, principal, method, exc.code, log)
        raise
    await _log(ctx, session, session_id, principal, method, out["result"], log, status=out["status"])
    return out, created


async def _log(ctx: Context, session: dict | None, session_id: str, principal: Principal, method: str,
               result: str, log: dict, status: str | None = None) -> None:
    await attendance.log_event(ctx, session=session, session_id=session_id, member_id=principal.member_id,
                                     source="member", method=method, result=result, status=status,
                                     actor_id=principal.member_id, **log)


async def _record(ctx: Context, principal: Principal, session: dict, at: datetime, offline: bool, method: str,
                  body: dict, now: datetime) -> tuple[dict, bool]:
    status = "late" if at > session["late_after"] else "present"
    checkin = {"status": status, "checked_in_at": at, "received_at": now, "source": "member", "method": method,
               "offline": offline, "device_id": body.get("device_id"), "reason": None, "updated_at": now}
    if "geo" in session["methods"] and body.get("location") is not None:
        checkin["location"] = body["location"]
    record = {"_id": new_id(), **attendance.record_fields(session, principal.member_id, principal.org_path),
              **checkin, "created_at": now}
    try:
        await ctx.db[ATTENDANCE].insert_one(record)
    except DuplicateKeyError:
        pass
    else:
        await _follow_session(ctx, session, record)
        return {"result": "ok", **attendance.attendance_out(record)}, True
    key = {"session_id": session["_id"], "member_id": principal.member_id}
    # An earlier leave/absent mark is superseded by really turning up; a present/late record stands.
    upgraded = await ctx.db[ATTENDANCE].update_one({**key, "status": {"$in": ["leave", "absent"]}},
                                                   {"$set": checkin})
    first = await ctx.db[ATTENDANCE].find_one(key)
    if upgraded.modified_count:
        return {"result": "ok", **attendance.attendance_out(first)}, True
    return _already(first), False


async def _follow_session(ctx: Context, session: dict, record: dict) -> None:
    """A cancellation or a move that committed between our read of the session and our insert has already
    updated the session's records and missed this one: bring it in line, so it never counts for a cancelled
    session nor in the wrong period."""
    now = await ctx.db[SESSIONS].find_one({"_id": session["_id"]}, {"status": 1, "starts_at": 1, "ends_at": 1})
    if now is None:
        return
    fields = attendance.record_fields({**session, **now}, record["member_id"], record["member_org_path"])
    changed = {k: fields[k] for k in ("cancelled", "starts_at", "minutes") if fields[k] != record[k]}
    if changed:
        await ctx.db[ATTENDANCE].update_one({"_id": record["_id"]}, {"$set": changed})
        record.update(changed)


# -- self-study -------------------------------------------------------------------------------------

def self_study_out(doc: dict, day_total: int | None = None) -> dict:
    return {"id": doc["_id"], "track": doc["track"], "minutes": doc["minutes"], "material": doc["material"],
            "note": doc.get("note"), "content_flag": doc.get("content_flag"), "date": date.fromisoformat(doc["date"]),
            "day_total_minutes": day_total if day_total is not None else doc.get("day_total_minutes", 0),
            "created_at": doc["created_at"]}


async def log_self_study(ctx: Context, principal: Principal, track: str, minutes: int, material: str,
                         note: str | None, day: date) -> dict:
    scheme = await schemes.effective(ctx, principal.org_path)
    spec = schemes.track(scheme, track)
    if spec is None or spec["kind"] != "self_study":
        raise invalid("track", f"{track!r} is not a self-study track of the scheme {scheme['name']!r}.")
    today = ctx.now().astimezone(ctx.settings.tz).date()
    if day > today:
        raise invalid("date", "date lies in the future.")
    if day < today - timedelta(days=BACKDATE_DAYS):
        raise invalid("date", f"Self-study is logged within {BACKDATE_DAYS} days.")
    flag = await content_check.check(ctx, principal, note, "note")
    doc = {"_id": new_id(), "member_id": principal.member_id, "member_org_path": list(principal.org_path),
           "track": track, "minutes": minutes, "material": material, "note": note, "content_flag": flag,
           "date": day.isoformat(),
           "day_total_minutes": 0, "created_at": to_ms(ctx.now())}  # as stored: to the ms
    counter = f"{principal.member_id}:{day.isoformat()}"
    await _open_day(ctx, counter)

    async def work(txn) -> None:
        doc["day_total_minutes"] = await _take_minutes(ctx, counter, day.isoformat(), minutes, txn)
        await ctx.db[SELF_STUDY].insert_one(doc, session=txn)

    await transaction(ctx, work)
    return doc


async def _open_day(ctx: Context, counter: str) -> None:
    """Make sure the member's counter for the day exists (at 0 minutes when new): harmless on its own, and it
    lets the transaction below claim minutes with a plain conditional update instead of an upsert."""
    try:
        await ctx.db[DAILY].update_one({"_id": counter}, {"$setOnInsert": {"minutes": 0}}, upsert=True)
    except DuplicateKeyError:  # a concurrent first entry of the day created it
        pass


async def _take_minutes(ctx: Context, counter: str, day: str, minutes: int, txn) -> int:
    """Add `minutes` to the member's day unless that passes the cap; the new day total. Inside the caller's
    transaction with the entry itself, so the minutes are taken if and only if the entry is written.
    Race-safe: the filter `minutes <= cap - m` and the `$inc` are one atomic update, and concurrent entries
    of the same day conflict on the counter and are run again by the driver."""
    coll = ctx.db[DAILY]
    taken = await coll.update_one({"_id": counter, "minutes": {"$lte": DAILY_CAP_MINUTES - minutes}},
                                  {"$inc": {"minutes": minutes}}, session=txn)
    used = await coll.find_one({"_id": counter}, session=txn)
    if taken.matched_count != 1:
        left = max(0, DAILY_CAP_MINUTES - (used["minutes"] if used else 0))
        raise ApiError(422, "daily_cap_exceeded",
                       f"At most {DAILY_CAP_MINUTES} minutes of self-study a day; {left} left for {day}.",
                       errors=[{"field": "minutes", "message": f"at most {left} more today"}])
    return used["minutes"]


async def list_self_study(ctx: Context, principal: Principal, limit: int,
                          cursor: str | None) -> tuple[list[dict], str | None]:
    return await page(ctx.db[SELF_STUDY], self_study_query(principal), limit, cursor)


def self_study_query(principal: Principal) -> Keyset:
    """The member's self-study log, newest first."""
    return Keyset(({"member_id": principal.member_id},), descending=True)
