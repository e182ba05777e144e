"""Idempotency-Key handling (API.md §1), shared by every POST that creates something.

A key is claimed by inserting {member, key} under a unique index: exactly one request wins.
The winner stores its final response (status < 500) on the same document; a replay with the
same body gets that response back, another body gets 422 idempotency_key_reused, and a replay
while the first is still running gets 409 request_in_progress. A 5xx releases the key so the
client may retry. Documents expire after 24 h by a TTL index.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta

from pymongo import ASCENDING, IndexModel
from pymongo.errors import DuplicateKeyError

from server.context import Context
from server.db import indexes
from server.errors import ApiError

COLLECTION = "idempotency_keys"
KEY_LIFETIME = timedelta(hours=24)
# A claim still "running" after this long belongs to a request that died; it may be taken over.
ABANDONED_AFTER = timedelta(seconds=60)

indexes(
    COLLECTION,
    IndexModel([("member_id", ASCENDING), ("key", ASCENDING)], unique=True),
    IndexModel([("created_at", ASCENDING)], expireAfterSeconds=int(KEY_LIFETIME.total_seconds())),
)


@dataclass
class Replay:
    status: int
    body: bytes
    content_type: str


def fingerprint(method: str, path: str, body: bytes) -> str:
    return hashlib.sha256(method.encode() + b"\0" + path.encode() + b"\0" + body).hexdigest()


def validate_key(key: str) -> None:
    if not 1 <= len(key) <= 64 or not key.isprintable():
        raise ApiError(422, "invalid_request", "Idempotency-Key must be 1..64 printable characters.",
                       errors=[{"field": "Idempotency-Key", "message": "1..64 printable characters"}])


async def claim(ctx: Context, member_id: str, key: str, request_hash: str) -> Replay | None:
    """Claim the key for this request; return a Replay when an earlier response must be sent."""
    validate_key(key)
    coll = ctx.db[COLLECTION]
    now = ctx.now()
    try:
        await coll.insert_one({"member_id": member_id, "key": key, "hash": request_hash,
                               "state": "running", "created_at": now})
        return None
    except DuplicateKeyError:
        pass
    existing = await coll.find_one({"member_id": member_id, "key": key})
    if existing is None:  # expired between the insert and the read: claim again
        return await claim(ctx, member_id, key, request_hash)
    if existing["hash"] != request_hash:
        raise ApiError(422, "idempotency_key_reused",
                       "This Idempotency-Key was used with another request body.")
    if existing["state"] == "done":
        return Replay(existing["status"], existing["body"], existing["content_type"])
    if now - existing["created_at"] > ABANDONED_AFTER:
        taken = await coll.update_one(
            {"_id": existing["_id"], "state": "running", "created_at": existing["created_at"]},
            {"$set": {"created_at": now}},
        )
        if taken.modified_count == 1:
            return None
    raise ApiError(409, "request_in_progress", "A request with this Idempotency-Key is still running.")


async def complete(ctx: Context, member_id: str, key: str, status: int, body: bytes, content_type: str) -> None:
    coll = ctx.db[COLLECTION]
    if status >= 500:
        await coll.delete_one({"member_id": member_id, "key": key, "state": "running"})
        return
    await coll.update_one(
        {"member_id": member_id, "key": key},
        {"$set": {"state": "done", "status": status, "body": body, "content_type": content_type}},
    )


async def release(ctx: Context, member_id: str, key: str) -> None:
    await ctx.db[COLLECTION].delete_one({"member_id": member_id, "key": key, "state": "running"})
