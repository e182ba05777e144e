"""The feed's background work in each process: the counter poller, scheduled publication and
expiry, and the purge of old tombstones.

Each process polls the counter every POLL_SECONDS and keeps the latest value in memory
(server/feed/sequence.py). Scheduled publication and expiry are materialised by a per-process task
whose transition is a conditional update inside a transaction that takes a sequence number, so two
processes never record one transition twice.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

from pymongo import DESCENDING
from pymongo.errors import InvalidOperation, PyMongoError

from server.context import Context
from server.feed.sequence import _ensure_counter, _in_transaction, _load_counter, _reserve, state
from server.feed.store import COUNTER, ITEMS, REMOVALS, UNIX_EPOCH
from server.feed.writing import _compute_state

log = logging.getLogger("branchline.feeds")

TOMBSTONE_DAYS = 30
POLL_SECONDS = 0.25
SCHEDULE_SECONDS = 0.5
PURGE_EVERY_SECONDS = 300
# A horizon is published this long before the tombstones below it are deleted, so a reader that
# checked an older horizon has finished before they go.
PURGE_GRACE = timedelta(seconds=120)


def start(ctx: Context) -> None:
    """Start this process's feed tasks (called once per application, inside the running loop)."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return
    st = state(ctx)
    if st.tasks:
        return
    st.tasks = [loop.create_task(_poll_counter(ctx)), loop.create_task(_materialise(ctx))]


async def _poll_counter(ctx: Context) -> None:
    try:
        await _ensure_counter(ctx)
    except InvalidOperation:
        return
    except PyMongoError as exc:
        log.warning("feed counter set-up failed: %s", exc)
    while await ctx.idle(POLL_SECONDS):
        try:
            await _load_counter(ctx)
        except InvalidOperation:  # the client was closed: this application is gone
            return
        except PyMongoError as exc:
            log.warning("feed counter poll failed: %s", exc)
            await ctx.idle(1)


async def _materialise(ctx: Context) -> None:
    last_purge = None
    while await ctx.idle(SCHEDULE_SECONDS):
        try:
            await materialise_due(ctx)
            now = ctx.now()
            if last_purge is None or (now - last_purge).total_seconds() >= PURGE_EVERY_SECONDS:
                last_purge = now
                await purge_tombstones(ctx)
        except InvalidOperation:
            return
        except PyMongoError as exc:
            log.warning("feed scheduler failed: %s", exc)
            await ctx.idle(1)


EXPIRY_MARGIN = timedelta(minutes=5)


async def materialise_due(ctx: Context) -> int:
    """Publish scheduled items whose time came and delete expired ones; each transition once.

    Two queries that use an index each, never one `$or` (SecantusDB would scan the collection
    every half second in every process). Scheduled items are few: the `state` prefix finds them.
    Expiry looks at the `expires_at` index from shortly before the last moment this process
    checked (a live item's expiry is always in the future when written, so none can appear
    earlier); the first check after start looks at every expired item once.
    """
    now = ctx.now()
    coll = ctx.db[ITEMS]
    st = state(ctx)
    due = await coll.find({"state": "scheduled", "published_at": {"$lte": now}}, {"_id": 1}).limit(200).to_list()
    # always a lower bound: without one SecantusDB walks every item without an expiry (null) too
    expiring: dict[str, Any] = {"$lte": now, "$gte": UNIX_EPOCH}
    if st.expiry_checked is not None:
        expiring = {"$lte": now, "$gt": st.expiry_checked - EXPIRY_MARGIN}
    expired = [d for d in await coll.find({"expires_at": expiring}, {"_id": 1, "state": 1}).to_list()
               if d["state"] == "live"]
    due += expired[:200]
    done = 0
    for d in due:
        item_id = d["_id"]

        async def work(txn, item_id=item_id) -> None:
            doc = await coll.find_one({"_id": item_id}, session=txn)
            if doc is None or doc["state"] == "deleted":
                return
            new_state = _compute_state(doc["published_at"], doc.get("expires_at"), ctx.now())
            if new_state == doc["state"]:
                return  # another process did it first
            now2 = ctx.now()
            update = {"state": new_state, "updated_at": now2}
            if new_state == "live":
                update["ever_live"] = True
            else:
                update.update(deleted_at=now2, deleted_reason="expired")
            # scheduled -> deleted (expired before it was published) is invisible: no sequence number
            seq = await _reserve(ctx, 1, txn) if "live" in (new_state, doc["state"]) else 0
            if seq:
                update["seq"] = seq
            await coll.update_one({"_id": item_id, "state": doc["state"]}, {"$set": update}, session=txn)

        await _in_transaction(ctx, None, work)
        done += 1
    if len(expired) <= 200:
        st.expiry_checked = now  # not before all of them were materialised (an error leaves it)
    return done


async def purge_tombstones(ctx: Context) -> None:
    """Forget tombstones older than TOMBSTONE_DAYS: first publish the horizon, later delete below it."""
    now = ctx.now()
    cutoff = now - timedelta(days=TOMBSTONE_DAYS)
    counter = await ctx.db[COUNTER].find_one({"_id": "seq"})
    if counter is None:
        return
    horizon, horizon_at = counter.get("horizon", 0), counter.get("horizon_at")
    if horizon and horizon_at is not None and now - horizon_at >= PURGE_GRACE:
        await ctx.db[ITEMS].delete_many({"state": "deleted", "seq": {"$lte": horizon},
                                         "deleted_at": {"$lt": cutoff}})
        await ctx.db[REMOVALS].delete_many({"seq": {"$lte": horizon}, "at": {"$lt": cutoff}})
    old_items = await ctx.db[ITEMS].find({"state": "deleted", "deleted_at": {"$lt": cutoff}},
                                         {"seq": 1}).sort("seq", DESCENDING).limit(1).to_list()
    old_removals = await ctx.db[REMOVALS].find({"at": {"$lt": cutoff}}, {"seq": 1}).sort(
        "seq", DESCENDING).limit(1).to_list()
    newest = max([d["seq"] for d in old_items + old_removals], default=0)
    if newest > horizon:
        await ctx.db[COUNTER].update_one({"_id": "seq"},
                                         {"$max": {"horizon": newest}, "$set": {"horizon_at": now}})
