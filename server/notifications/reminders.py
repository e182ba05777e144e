"""Reminders (API.md §9): `session_reminder` to a session's attendees and `activity_reminder` to an
activity's confirmed members, each template's `lead_minutes` before the start; `signup_opens` to the
members who asked (server/notifications/signup_reminders.py) once an activity's sign-up opens.

Invariant: every member is reminded at most once per occurrence (a session or activity at one start
time), whatever the number of processes, and a reminder that is due is sent as long as its start has
not passed.

How:
- One process does the work, the holder of the lease `reminders` (server/leases.py); it looks every
  TICK_SECONDS. The lease only saves the others the work: the once-only rests on the outbox, whose
  `enqueue` is a no-op for an (event, member, dedupe_key) already queued, and the dedupe key is the
  occurrence's start time.
- Due occurrences are found with one range query on (status, starts_at): the live ones whose start lies
  in (now, now + lead]. So a process that was down at the due time, or a restart, still finds a due
  reminder until the start passes; a reminder already queued for this start (`reminded_for`) is skipped.
- Each occurrence is reminded CHUNK members per transaction. Each transaction reads the occurrence (live,
  at the start found), queues its members' reminders, and last writes the occurrence (`reminding_for`, and
  `reminded_for` in the last chunk, after which ticks skip it). A cancellation or move committed before the
  transaction's snapshot is seen by the read (nothing more is queued); one committed after it makes that
  last write a write conflict, so the transaction runs again on a fresh snapshot and sees it. The write
  comes last so that the document is held for the shortest time (an organiser's edit or the attendee list
  being fixed must not wait behind the queueing, or make it start over). A moved occurrence has a new
  start, hence a new dedupe key and a new reminder when that start is due; a cancelled one is no longer
  live and never due.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from pymongo import ASCENDING, IndexModel
from pymongo.errors import InvalidOperation, PyMongoError

from server import leases, signups
from server.activities import notices
from server.activities.store import COLLECTION as ACTIVITIES
from server.clock import to_ms
from server.context import Context
from server.db import indexes, transaction
from server.notifications import signup_reminders, templates
from server.study import sessions

log = logging.getLogger("branchline.reminders")

# Reminders are due to the minute (lead_minutes); a tick of a few seconds is well inside that and costs
# one indexed range query per kind.
TICK_SECONDS = 2.0
# A holder that died is replaced within this; it renews every third of it.
LEASE_SECONDS = 15.0
LEASE = "reminders"
# Members reminded per transaction. One transaction for an org of 2,000 takes seconds on SecantusDB (the
# outbox writes a notice, a delivery and a dedupe key each) and would outlive the driver's 3 s bound;
# 200 take a few hundred milliseconds. The dedupe key makes the chunks safe to repeat: after a crash
# between two of them, the next tick goes through all again and queues only the members not yet reached.
CHUNK = 200
indexes(sessions.COLLECTION, IndexModel([("status", ASCENDING), ("starts_at", ASCENDING)]))
indexes(ACTIVITIES, IndexModel([("status", ASCENDING), ("starts_at", ASCENDING)]))


@dataclass(frozen=True)
class Kind:
    """One kind of occurrence that is reminded of."""

    event: str
    collection: str
    live: str  # the status of an occurrence that takes place
    members: Callable[[Context, dict], Awaitable[list[str]]]  # who is reminded of it
    # Queue the reminder of `doc` to `member_ids` in `txn` with `dedupe_key`; → how many were queued.
    tell: Callable[[Context, object, dict, list[str], str], Awaitable[int]]


def _when(ctx: Context, doc: dict) -> str:
    local = doc["starts_at"].astimezone(ctx.settings.tz)
    return f"{local.month}月{local.day}日 {local:%H:%M}开始"


async def _attendees(ctx: Context, session: dict) -> list[str]:
    return await sessions.current_attendees(ctx, session)


async def _tell_attendees(ctx: Context, txn, session: dict, member_ids: list[str], dedupe_key: str) -> int:
    where = sessions.place(session)
    return await sessions.tell(ctx, txn, session, "session_reminder", title=f"即将开始：{session['title']}",
                               summary=_when(ctx, session) + (f"，地点：{where}" if where else ""),
                               member_ids=member_ids, dedupe_key=dedupe_key)


async def _confirmed(ctx: Context, act: dict) -> list[str]:
    return [d["member_id"] async for d in ctx.db[signups.COLLECTION].find(
        {"activity_id": act["_id"], "status": "confirmed"}, {"member_id": 1})]


async def _tell_confirmed(ctx: Context, txn, act: dict, member_ids: list[str], dedupe_key: str) -> int:
    where = act.get("location") or ""
    return await notices.tell(ctx, txn, act, "activity_reminder", member_ids, title=f"即将开始：{act['title']}",
                              summary=_when(ctx, act) + (f"，地点：{where}" if where else ""), dedupe_key=dedupe_key)


SESSION = Kind("session_reminder", sessions.COLLECTION, "scheduled", _attendees, _tell_attendees)
ACTIVITY = Kind("activity_reminder", ACTIVITIES, "published", _confirmed, _tell_confirmed)
KINDS = (SESSION, ACTIVITY)


async def lead_minutes(ctx: Context, event: str) -> int:
    """The template's lead time, also while it is disabled or unconfigured: the reminder still lands
    in the feed then (every notification is a feed notice), at the default lead time."""
    doc = await ctx.db[templates.COLLECTION].find_one({"_id": event}, {"lead_minutes": 1})
    return (doc or {}).get("lead_minutes") or templates.DEFAULT_LEAD_MINUTES


def dedupe_key(starts_at: datetime) -> str:
    """One reminder per occurrence: its start time (a moved occurrence is a new one)."""
    return to_ms(starts_at).isoformat()


async def remind_due(ctx: Context) -> int:
    """Queue every reminder that is due now; → how many messages were queued."""
    queued = 0
    now = to_ms(ctx.now())
    for kind in KINDS:
        lead = timedelta(minutes=await lead_minutes(ctx, kind.event))
        # The whole window, not a first page: the ones already reminded are skipped here, and a page of
        # them could otherwise keep a later one out for as long as they stay in the window.
        due = [d async for d in ctx.db[kind.collection].find(
            {"status": kind.live, "starts_at": {"$gt": now, "$lte": now + lead}}, {"starts_at": 1, "reminded_for": 1})
            if d.get("reminded_for") != d["starts_at"]]
        for doc in sorted(due, key=lambda d: d["starts_at"]):
            queued += await _remind(ctx, kind, doc["_id"], doc["starts_at"])
    return queued + await signup_reminders.send_due(ctx)


async def _remind(ctx: Context, kind: Kind, ref_id: str, starts_at: datetime) -> int:
    """Remind the members of one occurrence, CHUNK members per transaction; → how many were queued."""
    occurrence = {"_id": ref_id, "status": kind.live, "starts_at": starts_at}
    doc = await ctx.db[kind.collection].find_one(occurrence)
    if doc is None:  # cancelled or moved since it was found: the move is reminded at its own time
        return 0
    members = await kind.members(ctx, doc)
    chunks = [members[i:i + CHUNK] for i in range(0, len(members), CHUNK)] or [[]]
    queued = 0
    for number, chunk in enumerate(chunks, 1):
        # The last chunk marks the occurrence reminded for this start; the others only write it (see the
        # module note: that write is what makes a concurrent move or cancellation conflict).
        mark = {"reminded_for": starts_at} if number == len(chunks) else {"reminding_for": starts_at}

        async def work(txn, chunk=chunk, mark=mark) -> int | None:
            current = await ctx.db[kind.collection].find_one(occurrence, session=txn)
            if current is None:
                return None
            done = await kind.tell(ctx, txn, current, chunk, dedupe_key(starts_at)) if chunk else 0
            await ctx.db[kind.collection].update_one(occurrence, {"$set": mark}, session=txn)
            return done

        done = await transaction(ctx, work)
        if done is None:  # cancelled or moved meanwhile: the members not reminded yet are not
            break
        queued += done
    return queued


# -- the background task ----------------------------------------------------------------------------

def start(ctx: Context) -> None:
    """Start this process's reminder task (once per application, inside the running loop); it works
    only while this process holds the lease, and gives the lease up when the process stops."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return
    if ctx.state.get("reminders.task") is None:
        ctx.state["reminders.task"] = loop.create_task(_run(ctx))


async def _run(ctx: Context) -> None:
    lease = leases.Lease(LEASE, LEASE_SECONDS)
    while await ctx.idle(TICK_SECONDS):
        try:
            if await lease.keep(ctx):
                await remind_due(ctx)
        except InvalidOperation:  # the client was closed: this application is gone
            return
        except PyMongoError as exc:
            log.warning("reminders failed: %s", exc)
    try:
        await lease.release(ctx)
    except PyMongoError as exc:
        log.warning("releasing the reminders lease failed: %s", exc)
