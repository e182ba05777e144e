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
- Each occurrence is reminded in one transaction that first writes `reminded_for` with a conditional
  update on the status and the start read: a cancellation or move committed meanwhile makes it match
  nothing (no reminder), and one committing concurrently conflicts on that document, so the transaction
  runs again and sees it. A moved occurrence has a new start, hence a new dedupe key and a new reminder
  when that start is due; a cancelled one is no longer live and never due.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from pymongo import ASCENDING, IndexModel
from pymongo.errors import InvalidOperation, PyMongoError

from server import leases, orgs, signups
from server.activities.store import COLLECTION as ACTIVITIES
from server.clock import to_ms
from server.context import Context
from server.db import indexes, transaction, update_then_get
from server.notifications import outbox, signup_reminders, templates
from server.study import sessions

log = logging.getLogger("branchline.reminders")

# Reminders are due to the minute (lead_minutes); a tick of a few seconds is well inside that and costs
# one indexed range query per kind.
TICK_SECONDS = 2.0
# A holder that died is replaced within this; it renews every third of it.
LEASE_SECONDS = 15.0
LEASE = "reminders"
indexes(sessions.COLLECTION, IndexModel([("status", ASCENDING), ("starts_at", ASCENDING)]))
indexes(ACTIVITIES, IndexModel([("status", ASCENDING), ("starts_at", ASCENDING)]))


@dataclass(frozen=True)
class Kind:
    """One kind of occurrence that is reminded of."""

    event: str
    collection: str
    live: str  # the status of an occurrence that takes place
    ref_kind: str
    recipients: Callable[[Context, dict, object], Awaitable[list[str]]]
    words: Callable[[Context, dict], tuple[str, str, dict]]  # (title, summary, values)


async def _attendees(ctx: Context, session: dict, txn) -> list[str]:
    # Read outside the transaction, as every reader of the attendee list does (server/study/sessions.py).
    return await sessions.current_attendees(ctx, session)


async def _confirmed(ctx: Context, act: dict, txn) -> list[str]:
    return [d["member_id"] async for d in ctx.db[signups.COLLECTION].find(
        {"activity_id": act["_id"], "status": "confirmed"}, {"member_id": 1}, session=txn)]


def _local(ctx: Context, moment: datetime) -> str:
    return moment.astimezone(ctx.settings.tz).strftime("%m月%d日 %H:%M")


def _session_words(ctx: Context, session: dict) -> tuple[str, str, dict]:
    place = (session.get("location") or {}).get("name")
    summary = f"{_local(ctx, session['starts_at'])}开始" + (f"，地点：{place}" if place else "")
    return (f"即将开始：{session['title']}", summary,
            {"title": session["title"], "time": session["starts_at"], "place": place or ""})


def _activity_words(ctx: Context, act: dict) -> tuple[str, str, dict]:
    place = act.get("location") or ""
    summary = f"{_local(ctx, act['starts_at'])}开始" + (f"，地点：{place}" if place else "")
    return (f"即将开始：{act['title']}", summary, {"title": act["title"], "time": act["starts_at"], "place": place})


SESSION = Kind("session_reminder", sessions.COLLECTION, "scheduled", sessions.FEED_KIND, _attendees, _session_words)
ACTIVITY = Kind("activity_reminder", ACTIVITIES, "published", "activity", _confirmed, _activity_words)
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
    async def work(txn) -> int:
        doc = await update_then_get(ctx.db[kind.collection], {"_id": ref_id, "status": kind.live,
                                                              "starts_at": starts_at},
                                    {"$set": {"reminded_for": starts_at}}, txn=txn)
        if doc is None:  # cancelled or moved since it was read: the move is reminded at its own time
            return 0
        title, summary, values = kind.words(ctx, doc)
        values["org"] = await orgs.name(ctx, doc["org_id"], txn=txn)
        return await outbox.enqueue(
            ctx, txn, event=kind.event, member_ids=await kind.recipients(ctx, doc, txn), ref_kind=kind.ref_kind,
            ref_id=ref_id, org_id=doc["org_id"], title=title, summary=summary, values=values,
            dedupe_key=dedupe_key(starts_at))

    return await transaction(ctx, work)


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


async def _sleep(ctx: Context, seconds: float) -> bool:
    """Sleep unless the process is stopping; False when it is."""
    try:
        await asyncio.wait_for(ctx.stopping.wait(), seconds)
        return False
    except TimeoutError:
        return True


async def _run(ctx: Context) -> None:
    lease = leases.Lease(LEASE, LEASE_SECONDS)
    while await _sleep(ctx, TICK_SECONDS):
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
