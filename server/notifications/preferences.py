"""Which events a member has muted (API.md §9): a muted event still lands in the feed, never in WeChat.

`notification_preferences` holds `{_id: member_id, muted: [event]}`; no document means nothing muted.
"""

from __future__ import annotations

from server.context import Context
from server.db import find_in
from server.notifications.events import EVENTS

COLLECTION = "notification_preferences"


async def get(ctx: Context, member_id: str) -> dict:
    doc = await ctx.db[COLLECTION].find_one({"_id": member_id})
    return {"muted": (doc or {}).get("muted", [])}


async def put(ctx: Context, member_id: str, muted: list[str]) -> dict:
    """Replace the member's muted events (each one of EVENTS: the body's schema admits no other)."""
    muted = [e for e in EVENTS if e in set(muted)]  # one order, no repeats
    await ctx.db[COLLECTION].update_one({"_id": member_id}, {"$set": {"muted": muted, "updated_at": ctx.now()}},
                                        upsert=True)
    return {"muted": muted}


async def muted_among(ctx: Context, member_ids: list[str], event: str, *, txn=None) -> set[str]:
    """The members of `member_ids` who muted `event`."""
    docs = await find_in(ctx.db[COLLECTION], "_id", member_ids, txn=txn)
    return {d["_id"] for d in docs if event in d.get("muted", [])}
