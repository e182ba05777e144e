"""`signup_opens` (API.md §9): a member asks to be told when an activity's sign-up opens, and is told once.

A request is one document per (activity, member) in `signup_reminders`, `waiting` until it is sent
(`sent`, with the opening time it was sent for). Asking again while waiting changes nothing; asking
after it was sent is possible only when the opening moved later, and waits again for the new time.

Sending (`send_due`, by the lease holder of server/notifications/reminders.py): the activities with a
waiting request are few (only those whose sign-up has not opened and that someone asked about), found
on the (state, activity_id) index; each is read, and once its sign-up has opened its waiting requests are
marked sent and `signup_opens` queued, 200 requests per transaction, with the opening time as the dedupe
key (the outbox queues one per member and key, so a second sender queues nothing). The opening time is read from
the activity when it is due, never copied, so a moved opening is simply later or earlier. A cancelled
activity, or one whose sign-up closed before anyone sent, drops its requests.
"""

from __future__ import annotations

from datetime import datetime

from pymongo import ASCENDING, IndexModel
from pymongo.errors import DuplicateKeyError

from server import members, orgs
from server.activities import rules
from server.activities.store import COLLECTION as ACTIVITIES
from server.activities.visibility import get_visible
from server.clock import to_ms
from server.context import Context
from server.db import find_in, indexes, transaction
from server.errors import conflict
from server.notifications import outbox
from server.scope import Principal

COLLECTION = "signup_reminders"
EVENT = "signup_opens"
# Requests sent per transaction (the outbox writes a notice, a delivery and a dedupe key for each).
CHUNK_SENT = 200

indexes(COLLECTION, IndexModel([("state", ASCENDING), ("activity_id", ASCENDING)]),
        IndexModel([("member_id", ASCENDING)]))  # the member's export


def _key(activity_id: str, member_id: str) -> str:
    return f"{activity_id}|{member_id}"


def _out(act: dict, doc: dict | None) -> dict:
    return {"activity_id": act["_id"], "signup_opens_at": act["signup_opens_at"],
            "state": doc["state"] if doc else "none"}


async def get(ctx: Context, principal: Principal, activity_id: str) -> dict:
    act = await get_visible(ctx, principal, activity_id)
    return _out(act, await ctx.db[COLLECTION].find_one({"_id": _key(activity_id, principal.member_id)}))


async def ask(ctx: Context, principal: Principal, activity_id: str) -> dict:
    """Ask to be told when sign-up opens (idempotent). Refused when it is open already, closed, or the
    member may not sign up (not published, cancelled, not eligible) — as a sign-up would be."""
    act = await get_visible(ctx, principal, activity_id)
    rules.require_not_cancelled(act)
    rules.require_published(act)
    now = to_ms(ctx.now())
    if now >= act["signup_closes_at"]:
        raise conflict("signup_closed", "Sign-up for this activity has closed.")
    if now >= act["signup_opens_at"]:
        raise conflict("signup_already_open", "Sign-up for this activity is open: sign up now.")
    member = await ctx.db[members.COLLECTION].find_one({"_id": principal.member_id})
    await rules.require_eligible(ctx, act, member)
    key = _key(activity_id, principal.member_id)
    try:
        # Sign-up has not opened (checked above), so whatever was sent before was for an earlier opening.
        await ctx.db[COLLECTION].update_one(
            {"_id": key}, {"$set": {"state": "waiting", "activity_id": activity_id, "member_id": principal.member_id},
                           "$setOnInsert": {"asked_at": now}}, upsert=True)
    except DuplicateKeyError:
        pass  # a concurrent ask of the same member inserted it: waiting either way
    return _out(act, await ctx.db[COLLECTION].find_one({"_id": key}))


async def withdraw(ctx: Context, principal: Principal, activity_id: str) -> None:
    """No longer be told (idempotent)."""
    await get_visible(ctx, principal, activity_id)
    await ctx.db[COLLECTION].delete_one({"_id": _key(activity_id, principal.member_id), "state": "waiting"})


async def send_due(ctx: Context) -> int:
    """Queue `signup_opens` for every activity whose sign-up has opened; → how many messages."""
    now = to_ms(ctx.now())
    queued = 0
    ids = await ctx.db[COLLECTION].distinct("activity_id", {"state": "waiting"})
    found = {a["_id"]: a for a in await find_in(ctx.db[ACTIVITIES], "_id", ids,
                                                {"status": 1, "signup_opens_at": 1, "signup_closes_at": 1})}
    for activity_id in ids:
        act = found.get(activity_id)
        if act is None or act["status"] == "cancelled" or now >= act["signup_closes_at"]:
            await ctx.db[COLLECTION].update_many({"activity_id": activity_id, "state": "waiting"},
                                                 {"$set": {"state": "dropped"}})
        elif act["status"] == "published" and now >= act["signup_opens_at"]:
            queued += await _send(ctx, activity_id, act["signup_opens_at"])
    return queued


async def _send(ctx: Context, activity_id: str, opens_at: datetime) -> int:
    """Send the waiting requests of one activity, CHUNK_SENT per transaction; → how many were queued."""
    waiting = [d async for d in ctx.db[COLLECTION].find({"activity_id": activity_id, "state": "waiting"},
                                                         {"member_id": 1})]
    queued = 0
    for start in range(0, len(waiting), CHUNK_SENT):
        chunk = waiting[start:start + CHUNK_SENT]

        async def work(txn, chunk=chunk) -> int | None:
            # The activity as of this snapshot: a moved opening or a cancellation committed before it stops
            # the sending (one racing it may still see its members told; its cancellation follows). The
            # dedupe key, the opening time, keeps a repeated chunk from sending twice.
            act = await ctx.db[ACTIVITIES].find_one({"_id": activity_id}, session=txn)
            if act["status"] != "published" or act["signup_opens_at"] != opens_at:
                return None
            marked = await ctx.db[COLLECTION].update_many(
                {"_id": {"$in": [d["_id"] for d in chunk]}, "state": "waiting"},
                {"$set": {"state": "sent", "sent_for": opens_at, "sent_at": to_ms(ctx.now())}}, session=txn)
            if marked.modified_count == 0:
                return 0
            return await outbox.enqueue(
                ctx, txn, event=EVENT, member_ids=[d["member_id"] for d in chunk], ref_kind="activity",
                ref_id=activity_id, org_id=act["org_id"], title=f"开始报名：{act['title']}",
                summary="您关注的活动已开始报名。",
                values={"title": act["title"], "time": act["starts_at"], "opens_at": opens_at,
                        "place": act.get("location") or "", "org": await orgs.name(ctx, act["org_id"], txn=txn)},
                dedupe_key=opens_at.isoformat())

        done = await transaction(ctx, work)
        if done is None:
            break
        queued += done
    return queued
