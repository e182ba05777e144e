"""An organiser reminds the members who have not read an announcement (API.md §9, `must_read_reminder`).

Who is reminded: the announcement's audience now (server.announcements.audience_filter) less those who
read it, or for a must-read, less those who acknowledged it.

At most once per REMIND_EVERY, also when pressed at once: a reminder is first claimed with one
conditional update of the announcement (`reminder.at` older than REMIND_EVERY, or none): of two presses
at once one matches and the other's filter no longer does (409 `reminder_too_soon`). The reminders are
then queued CHUNK members per transaction (one transaction for an audience of 2,000 would outlive the
driver's bound), with the claim's `key` as the outbox's dedupe key, and the claim is marked `done`. A
claim left not done (a failure or a crash half-way) may be claimed again after RETRY_AFTER, and the new
claim keeps the old key: members already reached are not reminded twice.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from pymongo.errors import PyMongoError

from server import announcements, orgs
from server.clock import to_ms
from server.context import Context
from server.db import transaction
from server.errors import ApiError, conflict
from server.feed import store as feed_store
from server.members import COLLECTION as MEMBERS
from server.notifications import outbox
from server.scope import Principal

log = logging.getLogger("branchline.notifications")

EVENT = "must_read_reminder"
REMIND_EVERY = timedelta(hours=24)
# A claim not marked done this long after it was made failed half-way: it may be pressed again.
RETRY_AFTER = timedelta(minutes=2)
CHUNK = 200


async def _not_reached(ctx: Context, doc: dict) -> list[str]:
    """The audience members who have not read it (for a must-read: not acknowledged it)."""
    marks = {d["member_id"]: d async for d in ctx.db[feed_store.READS].find(
        {"item_id": announcements.item_id(doc["_id"])}, {"member_id": 1, "acked_at": 1})}
    done = {m for m, mark in marks.items() if mark.get("acked_at") or not doc["must_read"]}
    return [m["_id"] async for m in ctx.db[MEMBERS].find(announcements.audience_filter(doc), {"_id": 1})
            if m["_id"] not in done]


async def _claim(ctx: Context, principal: Principal, doc: dict, now) -> str:
    """Claim this reminder; → the dedupe key of its messages. 409 reminder_too_soon when it is not due."""
    before = doc.get("reminder") or {}
    resumed = bool(before) and not before.get("done")
    key = before["key"] if resumed else now.isoformat()
    claimed = await ctx.db[announcements.COLLECTION].update_one(
        {"_id": doc["_id"], "state": "active",
         "$or": [{"reminder": None}, {"reminder.at": {"$lte": now - REMIND_EVERY}},
                 {"reminder.done": False, "reminder.at": {"$lte": now - RETRY_AFTER}}]},
        {"$set": {"reminder": {"at": now, "by": principal.member_id, "key": key, "done": False}}})
    if claimed.matched_count == 0:
        raise ApiError(409, "reminder_too_soon", "Its members were reminded less than 24 hours ago.")
    return key


async def remind(ctx: Context, principal: Principal, announcement_id: str) -> int:
    """Queue `must_read_reminder` for the members not reached; → how many. 409 within REMIND_EVERY."""
    doc = await announcements.get_managed(ctx, principal, announcement_id)
    now = to_ms(ctx.now())
    if not announcements.on_air(doc, now):
        raise conflict("announcement_not_live", "Only an announcement on air can be reminded of.")
    key = await _claim(ctx, principal, doc, now)
    members = await _not_reached(ctx, doc)
    values = {"title": doc["title"], "time": doc["publish_at"], "org": await orgs.name(ctx, doc["org_id"]),
              "note": "请确认已阅" if doc["must_read"] else "请及时阅读"}
    queued = 0
    for start in range(0, len(members), CHUNK):
        async def work(txn, chunk=members[start:start + CHUNK]) -> int:
            return await outbox.enqueue(
                ctx, txn, event=EVENT, member_ids=chunk, ref_kind=announcements.REF_KIND, ref_id=doc["_id"],
                org_id=doc["org_id"], title=f"请阅读：{doc['title']}",
                summary="请确认已阅这则通知。" if doc["must_read"] else "您还有一则通知未读。",
                values=values, dedupe_key=key)

        queued += await transaction(ctx, work)
    try:
        await ctx.db[announcements.COLLECTION].update_one({"_id": doc["_id"], "reminder.key": key},
                                                          {"$set": {"reminder.done": True}})
    except PyMongoError as exc:  # all is queued: the claim only lets a press in early, which reaches nobody new
        log.warning("marking the reminder of announcement %s done failed: %s", doc["_id"], exc)
    return queued
