"""Fixed-window rate limits kept in MongoDB, so every API process shares one count.

Used for logins (per phone and per client address) so a password cannot be brute-forced.
"""

from __future__ import annotations

import math
from datetime import timedelta

from pymongo import ASCENDING, IndexModel

from server.context import Context
from server.db import indexes
from server.errors import ApiError

COLLECTION = "rate_limits"

indexes(COLLECTION, IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0))


async def hit(ctx: Context, bucket: str, limit: int, window: timedelta) -> None:
    """Count one event in `bucket`; raise 429 rate_limited once more than `limit` fall in the window."""
    now = ctx.now()
    seconds = int(window.total_seconds())
    window_start = int(now.timestamp()) // seconds * seconds
    key = {"_id": f"{bucket}:{window_start}"}
    # update_one + find_one, not find_one_and_update (a collection scan on SecantusDB); the count read
    # back may include concurrent hits, which only makes the limit stricter.
    await ctx.db[COLLECTION].update_one(key, {"$inc": {"count": 1}, "$setOnInsert": {"expires_at": now + window}},
                                        upsert=True)
    doc = await ctx.db[COLLECTION].find_one(key)
    if doc is not None and doc["count"] > limit:
        retry_after = max(1, math.ceil(window_start + seconds - now.timestamp()))
        raise ApiError(429, "rate_limited", "Too many attempts; try again later.",
                       headers={"Retry-After": str(retry_after)})


async def check(ctx: Context, bucket: str, limit: int, window: timedelta) -> None:
    """Raise 429 when `bucket` is already over `limit`, without counting this call."""
    now = ctx.now()
    seconds = int(window.total_seconds())
    window_start = int(now.timestamp()) // seconds * seconds
    doc = await ctx.db[COLLECTION].find_one({"_id": f"{bucket}:{window_start}"})
    if doc and doc["count"] >= limit:
        retry_after = max(1, math.ceil(window_start + seconds - now.timestamp()))
        raise ApiError(429, "rate_limited", "Too many attempts; try again later.",
                       headers={"Retry-After": str(retry_after)})
