"""Idempotency-Key handling (API.md §1), shared by every POST that creates something.

A key is claimed by inserting {member, key} under a unique index: exactly one request wins.
The winner stores its final response (status < 500) on the same document; a replay with the
same body gets that response back, another body gets 422 idempotency_key_reused, and a replay
while the first is still running gets 409 request_in_progress. A 5xx releases the key so the
client may retry. Documents expire after 24 h by a TTL index.

Settling a key when the database fails (why the claim has an owner and a lease)
------------------------------------------------------------------------------
A request that fails because the database died cannot release its key, nor store its answer, on
that database; a key left "running" made every retry answer 409 for as long as the claim was
believed alive. Two mechanisms, one for each way a request can end:

- The owner is alive (the common case: the database died, the API did not). The request's fate
  (its answer, or the release) is written by a task that keeps trying until the database is back
  (`Claim.settle`, bounded by SETTLE_FOR), so the key is settled as soon as it returns: a retry
  then gets the stored answer, or claims the released key and runs. Storing the answer matters:
  the work may have committed before the database died, and running it again would do it twice.
- The owner is dead (its process was killed). The claim carries an `owner` (a nonce per request)
  and a `lease_until`, renewed every LEASE/3 while the request runs or its fate is pending; a
  claim whose lease lapsed is dead within LEASE and may be taken over. When the database was down
  longer than LEASE every lease has lapsed on its return, also those of live owners whose fate is
  about to be written, so a takeover takes two steps: the first retry that finds the lease lapsed
  marks the claim `challenged_at` and is answered 409; only a retry CHALLENGE_GRACE later, if the
  owner has written nothing since (any renewal clears the mark), takes the claim over. A live owner
  retries every RETRY_SECONDS, well within the grace, so it is never overtaken.

Every change to a claim is a conditional update on its owner (and, for a takeover, on the lease
seen), so with any number of API processes exactly one request owns a key at a time, and a late
owner never overwrites the fate written by the request that took its key over.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pymongo import ASCENDING, IndexModel
from pymongo.errors import DuplicateKeyError, InvalidOperation, PyMongoError

from server.context import Context
from server.db import indexes
from server.errors import ApiError

log = logging.getLogger("branchline.idempotency")

COLLECTION = "idempotency_keys"
KEY_LIFETIME = timedelta(hours=24)
LEASE = timedelta(seconds=3)  # a claim not renewed for this long belongs to a dead request
CHALLENGE_GRACE = timedelta(seconds=2)  # a lapsed claim is taken over this long after a retry noticed
RETRY_SECONDS = 0.2  # how often a pending fate is retried while the database is away
SETTLE_FOR = 600.0  # after this long a fate is given up; the lease then lapses and the key is taken over

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


@dataclass
class Claim:
    """This request's hold on a key: renews the lease until its fate is written (see the module note)."""

    ctx: Context
    member_id: str
    key: str
    owner: str
    _fate: dict | None = None  # the update that settles the key; None with `_pending`: the release
    _pending: asyncio.Event = field(default_factory=asyncio.Event)
    _keeper: asyncio.Task | None = None

    def hold(self) -> None:
        self._keeper = asyncio.get_running_loop().create_task(self._keep())
        _KEEPERS.add(self._keeper)  # the loop keeps only weak references to tasks
        self._keeper.add_done_callback(_KEEPERS.discard)

    async def complete(self, status: int, body: bytes, content_type: str) -> None:
        """Store the final answer (a 5xx releases the key instead). When the database cannot take it
        now, it is written as soon as it can and the error is raised (the client retries)."""
        if status >= 500:
            await self.release()
            return
        await self._settle({"$set": {"state": "done", "status": status, "body": body, "content_type": content_type},
                            "$unset": {"lease_until": "", "challenged_at": ""}})

    async def release(self) -> None:
        await self._settle(None)

    async def _settle(self, fate: dict | None) -> None:
        try:
            await self._write(fate)
        except PyMongoError:
            self._fate = fate
            self._pending.set()  # the keeper writes it once the database is back
            raise
        except BaseException:
            self._let_go()  # the lease lapses: the key is taken over within LEASE
            raise
        self._let_go()

    def _let_go(self) -> None:
        if self._keeper is not None:
            self._keeper.cancel()

    async def _write(self, fate: dict | None) -> None:
        coll = self.ctx.db[COLLECTION]
        mine = {"member_id": self.member_id, "key": self.key, "state": "running", "owner": self.owner}
        if fate is None:
            await coll.delete_one(mine)
        else:
            await coll.update_one(mine, fate)

    async def _keep(self) -> None:
        """Renew the lease while the request runs; once its fate is pending, write it until that works."""
        loop = asyncio.get_running_loop()
        give_up = loop.time() + SETTLE_FOR
        while loop.time() < give_up:
            try:
                if self._pending.is_set():
                    await self._write(self._fate)
                    return
                try:
                    await asyncio.wait_for(self._pending.wait(), LEASE.total_seconds() / 3)
                    continue
                except TimeoutError:
                    pass
                await self.ctx.db[COLLECTION].update_one(
                    {"member_id": self.member_id, "key": self.key, "state": "running", "owner": self.owner},
                    {"$set": {"lease_until": self.ctx.now() + LEASE}, "$unset": {"challenged_at": ""}})
            except InvalidOperation:  # the client was closed: this process is stopping
                return
            except PyMongoError:
                await asyncio.sleep(RETRY_SECONDS)
        log.warning("gave up settling Idempotency-Key %r of member %s", self.key, self.member_id)


_KEEPERS: set[asyncio.Task] = set()


def _new_owner() -> str:
    return f"{os.getpid()}-{os.urandom(8).hex()}"


async def claim(ctx: Context, member_id: str, key: str, request_hash: str) -> Replay | Claim:
    """Claim the key for this request (→ a Claim to hold), or → the Replay of the earlier response."""
    validate_key(key)
    coll = ctx.db[COLLECTION]
    now = ctx.now()
    owner = _new_owner()
    try:
        await coll.insert_one({"member_id": member_id, "key": key, "hash": request_hash, "state": "running",
                               "owner": owner, "lease_until": now + LEASE, "created_at": now})
        return _held(ctx, member_id, key, owner)
    except DuplicateKeyError:
        pass
    existing = await coll.find_one({"member_id": member_id, "key": key})
    if existing is None:  # expired or released between the insert and the read: claim again
        return await claim(ctx, member_id, key, request_hash)
    if existing["hash"] != request_hash:
        raise ApiError(422, "idempotency_key_reused",
                       "This Idempotency-Key was used with another request body.")
    if existing["state"] == "done":
        return Replay(existing["status"], existing["body"], existing["content_type"])
    if await _take_over(ctx, existing, owner, now):
        return _held(ctx, member_id, key, owner)
    raise ApiError(409, "request_in_progress", "A request with this Idempotency-Key is still running.")


def _held(ctx: Context, member_id: str, key: str, owner: str) -> Claim:
    held = Claim(ctx, member_id, key, owner)
    held.hold()
    return held


async def _take_over(ctx: Context, existing: dict, owner: str, now: datetime) -> bool:
    """A running claim whose lease lapsed: challenge it, or take it over once the challenge is old."""
    coll = ctx.db[COLLECTION]
    # claims written before leases existed have none: they counted as alive for 60 s
    lease_until = existing.get("lease_until") or existing["created_at"] + timedelta(seconds=60)
    if lease_until > now:
        return False
    seen = {"_id": existing["_id"], "state": "running", "owner": existing.get("owner"), "lease_until":
            existing.get("lease_until")}
    challenged = existing.get("challenged_at")
    if challenged is None:
        await coll.update_one({**seen, "challenged_at": None}, {"$set": {"challenged_at": now}})
        return False
    if now - challenged < CHALLENGE_GRACE:
        return False
    taken = await coll.update_one({**seen, "challenged_at": challenged},
                                  {"$set": {"owner": owner, "lease_until": now + LEASE},
                                   "$unset": {"challenged_at": ""}})
    return taken.modified_count == 1
