"""An organiser reminds the members who have not read an announcement (API.md §9, `must_read_reminder`).

Who is reminded: the announcement's audience now (server.announcements.audience_filter) less those who
read it, or for a must-read, less those who acknowledged it. At most once per REMIND_EVERY: the
transaction that queues the reminders first moves the announcement's `reminded_at` with a conditional
update. Two presses at once both write that one document, so one of the transactions conflicts and runs
again on a fresh snapshot, where the condition no longer holds: exactly one is queued, the other is
409 `reminder_too_soon`.
"""

from __future__ import annotations

from datetime import timedelta

from server import announcements, orgs
from server.clock import to_ms
from server.context import Context
from server.db import transaction
from server.errors import ApiError, conflict
from server.feed import store as feed_store
from server.members import COLLECTION as MEMBERS
from server.notifications import outbox
from server.scope import Principal

EVENT = "must_read_reminder"
REMIND_EVERY = timedelta(hours=24)


async def _not_reached(ctx: Context, doc: dict, txn) -> list[str]:
    """The audience members who have not read it (for a must-read: not acknowledged it)."""
    marks = {d["member_id"]: d async for d in ctx.db[feed_store.READS].find(
        {"item_id": announcements.item_id(doc["_id"])}, {"member_id": 1, "acked_at": 1}, session=txn)}
    done = {m for m, mark in marks.items() if mark.get("acked_at") or not doc["must_read"]}
    return [m["_id"] async for m in ctx.db[MEMBERS].find(announcements.audience_filter(doc), {"_id": 1},
                                                          session=txn) if m["_id"] not in done]


async def remind(ctx: Context, principal: Principal, announcement_id: str) -> int:
    """Queue `must_read_reminder` for the members not reached; → how many. 409 within REMIND_EVERY."""
    doc = await announcements.get_managed(ctx, principal, announcement_id)
    now = to_ms(ctx.now())
    if not announcements.on_air(doc, now):
        raise conflict("announcement_not_live", "Only an announcement on air can be reminded of.")

    async def work(txn) -> int:
        moved = await ctx.db[announcements.COLLECTION].update_one(
            {"_id": doc["_id"], "state": "active",
             "$or": [{"reminded_at": None}, {"reminded_at": {"$lte": now - REMIND_EVERY}}]},
            {"$set": {"reminded_at": now, "reminded_by": principal.member_id}}, session=txn)
        if moved.matched_count == 0:
            raise ApiError(409, "reminder_too_soon", "Its members were reminded less than 24 hours ago.")
        current = await ctx.db[announcements.COLLECTION].find_one({"_id": doc["_id"]}, session=txn)
        members = await _not_reached(ctx, current, txn)
        return await outbox.enqueue(
            ctx, txn, event=EVENT, member_ids=members, ref_kind=announcements.REF_KIND, ref_id=doc["_id"],
            org_id=doc["org_id"], title=f"请阅读：{current['title']}",
            summary="请确认已阅这则通知。" if current["must_read"] else "您还有一则通知未读。",
            values={"title": current["title"], "time": current["publish_at"],
                    "org": await orgs.name(ctx, doc["org_id"], txn=txn),
                    "note": "请确认已阅" if current["must_read"] else "请及时阅读"},
            dedupe_key=now.isoformat())

    return await transaction(ctx, work)
