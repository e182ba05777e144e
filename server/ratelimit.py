"""Rate limits kept in MongoDB, so every API process shares one count.

Two kinds. Windows (`hit`, `check`, `count`): at most N events in a bucket per window, the window
starting at the bucket's first event — not at clock boundaries, which split a burst in two and let
twice the limit through; used for sign-in attempts per client address. Backoff (`Backoff`,
`held_back`, `fail`, `forget`): after a few failures a bucket must wait, twice as long after each
further failure, until a success clears it; used per (phone, client address) so a guesser slows
down without locking out the person who owns the phone, who signs in from elsewhere.

Records carry `expires_at` against our clock (tests move it); the TTL index only tidies up, a
minute late and on the machine's clock, so reads check `expires_at` themselves.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from pymongo import ASCENDING, IndexModel

from server.context import Context
from server.db import indexes
from server.errors import ApiError

COLLECTION = "rate_limits"

indexes(COLLECTION, IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0))


def _limited(until: datetime, now: datetime) -> ApiError:
    return ApiError(429, "rate_limited", "Too many attempts; try again later.",
                    headers={"Retry-After": str(max(1, math.ceil((until - now).total_seconds())))})


async def _count(ctx: Context, bucket: str, window: timedelta) -> dict:
    """Count one event in `bucket`'s window (opening a new one when the last has ended); the record."""
    now = ctx.now()
    coll = ctx.db[COLLECTION]
    key = {"_id": bucket}
    # update_one + find_one, not find_one_and_update (a collection scan on SecantusDB); the count read
    # back may include concurrent hits, which only makes the limit stricter.
    counted = await coll.update_one({**key, "expires_at": {"$gt": now}}, {"$inc": {"count": 1}})
    if counted.matched_count == 0:
        # Only an ended window is removed, so concurrent openers all count into the one that wins.
        await coll.delete_one({**key, "expires_at": {"$lte": now}})
        await coll.update_one(key, {"$inc": {"count": 1}, "$setOnInsert": {"expires_at": now + window}},
                              upsert=True)
    return await coll.find_one(key) or {"count": 1, "expires_at": now + window}


async def count(ctx: Context, bucket: str, window: timedelta) -> int:
    """Count one event in `bucket`; the number in its window so far, this one included."""
    return (await _count(ctx, bucket, window))["count"]


async def hit(ctx: Context, bucket: str, limit: int, window: timedelta) -> None:
    """Count one event in `bucket`; raise 429 rate_limited once more than `limit` fall in the window."""
    doc = await _count(ctx, bucket, window)
    if doc["count"] > limit:
        raise _limited(doc["expires_at"], ctx.now())


async def check(ctx: Context, bucket: str, limit: int, window: timedelta) -> None:
    """Raise 429 when `bucket` is already at `limit` in its window, without counting this call."""
    now = ctx.now()
    doc = await ctx.db[COLLECTION].find_one({"_id": bucket})
    if doc and doc["expires_at"] > now and doc["count"] >= limit:
        raise _limited(doc["expires_at"], now)


@dataclass(frozen=True)
class Backoff:
    free: int  # failures allowed before the first wait
    first: timedelta  # the wait after failure number `free`; it doubles with each further failure
    longest: timedelta
    memory: timedelta  # failures are forgotten this long after the last one

    def wait(self, failures: int) -> timedelta:
        if failures < self.free:
            return timedelta(0)
        return min(self.first * 2 ** min(failures - self.free, 32), self.longest)


def _backoff_key(bucket: str) -> dict:
    return {"_id": f"backoff:{bucket}"}


async def _current(ctx: Context, bucket: str, now: datetime) -> dict | None:
    """The bucket's record unless forgotten."""
    doc = await ctx.db[COLLECTION].find_one(_backoff_key(bucket))
    return doc if doc is not None and doc["expires_at"] > now else None


async def held_back(ctx: Context, bucket: str) -> None:
    """Raise 429 with Retry-After while `bucket` is waiting out its failures."""
    now = ctx.now()
    doc = await _current(ctx, bucket, now)
    if doc is not None and doc.get("locked_until") is not None and doc["locked_until"] > now:
        raise _limited(doc["locked_until"], now)


async def fail(ctx: Context, bucket: str, policy: Backoff) -> None:
    """Count one failure in `bucket` and start its wait when `policy` says so."""
    now = ctx.now()
    key = _backoff_key(bucket)
    await ctx.db[COLLECTION].delete_one({**key, "expires_at": {"$lte": now}})  # forgotten: start from zero
    await ctx.db[COLLECTION].update_one(
        key, {"$inc": {"failures": 1}, "$set": {"expires_at": now + policy.memory}}, upsert=True)
    doc = await ctx.db[COLLECTION].find_one(key)
    wait = policy.wait(doc["failures"] if doc is not None else 1)
    if wait:
        await ctx.db[COLLECTION].update_one(key, {"$max": {"locked_until": now + wait}})


async def forget(ctx: Context, bucket: str) -> None:
    """Clear `bucket`'s failures (after a success)."""
    await ctx.db[COLLECTION].delete_one(_backoff_key(bucket))
