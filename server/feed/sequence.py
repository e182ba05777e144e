"""The feed's sequence: the committed counter C is such that every change with seq <= C has
committed, and no change with seq <= C can appear later.

How sync never skips a change (DESIGN.md "Sync cursors")
-------------------------------------------------------
Every write that changes what some member's feed shows runs in a MongoDB transaction that also
increments ONE counter document (`feed_counter`, `_id: "seq"`) and stamps the changed item with
the new value as its `seq`. Two transactions that both write the counter conflict: the second
one gets a WriteConflict (a TransientTransactionError) while the first is uncommitted, and
`with_transaction` retries it from the start, so it can only read the counter after the first
has committed. Hence sequence numbers are handed out in commit order: when a reader sees the
counter at C (a committed value), every change with seq <= C is already committed, and no change
with seq <= C can ever appear later. Sync serves the range (since, C] with C read before the
query, and the next token is C (or the last seq served when a page is full), so no change is
skipped; each item carries only its latest seq, so a change is served once along a token chain.
(We verified on SecantusDB with 8 concurrent writers: sequence numbers are gap-free and a reader
that reads the counter and then counts items <= it never finds one missing.)

Why not a clock or a counter read before commit: a timestamp or a counter value is taken before
the writing transaction commits, and commits do not happen in that order. Writer A takes 10,
writer B takes 11 and commits first; a reader then sees 11, hands out the token 11, and A's
change (10) commits afterwards, below the reader's token: skipped forever. With the counter
written inside the transaction, B cannot even obtain 11 until A has committed.

Each process keeps the highest committed value it knows in memory (`FeedState.latest`): the
poller (server/feed/background.py) reads the counter every POLL_SECONDS, and a write in this
process moves it at once: `_reserve` registers an on-commit hook with the transaction
(server/db.py's unit of work), so it moves when the numbers are committed, never for an attempt
that was rolled back, and no caller has to remember to.

When the database loses history (a crash of a database that acknowledged unjournaled commits, a
failover that rolls back writes not on a majority, a restored backup) the committed counter comes
back LOWER than values this process has seen and handed out in tokens, and new changes would reuse
sequence numbers that members' tokens have already passed: skipped forever, while the lost items
stay in their copies. The writes and reads of server/db.py (majority, journaled) make this
impossible for anything acknowledged; this is the defence for when it happens anyway. The counter
carries an `epoch`, and every token the epoch it was issued in. A process that finds the committed
counter below what it knows was committed (the poller reading it, or a writer's `_reserve` taking a
number at or below `latest`) records a new epoch on the counter (`_new_epoch`); every process then
follows the counter DOWN to its committed value and drops what it cached per sequence number
(`FeedState.rewind`), and every token of another epoch, or beyond the committed counter, answers 410
sync_token_expired: the app syncs again from scratch and gets exactly what is there. Long-polls
parked on such a token are woken and answered 410 too. (If every API process restarts together
with the database, none remembers the higher value: tokens beyond the counter still answer 410, but
once new changes carry the counter past a token, nothing can tell. Durable writes prevent it.)
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from server.context import Context
from server.db import on_commit, transaction
from server.feed.store import COUNTER
from server.ids import new_id

log = logging.getLogger("branchline.feeds")

WAKE_CONCURRENCY = 32


@dataclass
class FeedState:
    latest: int = 0  # highest committed seq known to this process
    epoch: str = ""  # the counter's epoch: a new one when the database lost history (module note)
    horizon: int = 0  # tokens below this are too old (tombstones purged)
    loaded: bool = False
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    unread: dict[str, tuple[int, str, frozenset]] = field(default_factory=dict)  # member → (seq, org, ids)
    unread_size: int = 0  # the ids held in `unread`, all members together (feed/reading.py bounds it)
    windows: dict[tuple[int, int], asyncio.Future] = field(default_factory=dict)
    tasks: list = field(default_factory=list)
    counter_ready: bool = False
    wake_slots: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(WAKE_CONCURRENCY))
    token_key: bytes | None = None
    expiry_checked: datetime | None = None  # expiries up to this moment were materialised (minus a margin)

    def advance(self, seq: int, horizon: int | None = None) -> None:
        if horizon is not None and horizon > self.horizon:
            self.horizon = horizon
        if seq > self.latest:
            self.latest = seq
            self._wake()

    def rewind(self, seq: int, epoch: str) -> None:
        """Follow the counter to `seq` in a new epoch, down as well as up: what was cached per
        sequence number may describe lost history, and parked long-polls must learn that their
        tokens are void."""
        self.epoch, self.latest = epoch, seq
        self.unread.clear()
        self.unread_size = 0
        self.windows.clear()
        self._wake()

    def _wake(self) -> None:
        event, self.changed = self.changed, asyncio.Event()
        event.set()  # wakes every long-poll waiting on the old event


def state(ctx: Context) -> FeedState:
    st = ctx.state.get("feeds")
    if st is None:
        st = ctx.state["feeds"] = FeedState()
    return st


async def _ensure_counter(ctx: Context) -> None:
    st = state(ctx)
    if st.counter_ready:
        return
    try:
        await ctx.db[COUNTER].update_one({"_id": "seq"},
                                         {"$setOnInsert": {"value": 0, "horizon": 0, "horizon_at": None,
                                                           "epoch": ""}},
                                         upsert=True)
    except DuplicateKeyError:
        pass
    st.counter_ready = True


async def _reserve(ctx: Context, n: int, txn) -> int:
    """Take n sequence numbers inside the caller's transaction; return the first.

    The numbers become this process's feed position once the transaction commits (`_taken`).
    """
    st = state(ctx)
    known = st.latest  # committed before the write below, so it must see at least this (see _load_counter)
    # upsert: a caller's transaction may have taken its snapshot before the counter existed
    doc = await ctx.db[COUNTER].find_one_and_update({"_id": "seq"}, {"$inc": {"value": n}}, upsert=True,
                                                    return_document=ReturnDocument.AFTER, session=txn)
    first = doc["value"] - n + 1
    epoch = doc.get("epoch", "")
    # No other commit of the counter can come between our read and our commit (it would conflict),
    # so the committed value we read, first - 1, is at least every value seen committed before it:
    # unless history was lost. Then these numbers are reused ones: void every token (same transaction).
    if first - 1 < known and epoch == st.epoch:
        log.warning("feed counter at %d below the committed %d seen: new epoch", first - 1, known)
        epoch = new_id()
        await ctx.db[COUNTER].update_one({"_id": "seq"}, {"$set": {"epoch": epoch}}, session=txn)
    on_commit(txn, lambda: _taken(ctx, doc["value"], epoch))
    return first


async def _taken(ctx: Context, seq: int, epoch: str) -> None:
    """After the commit of a transaction that took numbers up to `seq`, in the counter's `epoch`:
    the committed counter is now at least `seq`, so this process's position moves there at once
    (long-polls wake; the poller would find it within POLL_SECONDS). In another epoch than the
    process knows (this transaction or another process voided the tokens, or the process has
    already followed a later one), the counter itself is read, as the poller does (`_load_counter`):
    it follows the counter down as well as up."""
    st = state(ctx)
    if epoch == st.epoch:
        st.advance(seq)
    else:
        await _load_counter(ctx)


async def _in_transaction(ctx: Context, txn, work: Callable[[Any], Awaitable[None]]) -> None:
    """Run `work(txn)` in the caller's transaction `txn`, or in a transaction of its own (None).

    Either way the transaction (server/db.py) retries the whole of it on the write conflicts the
    shared counter produces, and the numbers it took advance this process's position on commit.
    """
    await _ensure_counter(ctx)
    if txn is not None:
        await work(txn)
    else:
        await transaction(ctx, work)


async def _current(ctx: Context) -> FeedState:
    st = state(ctx)
    if not st.loaded:
        await _load_counter(ctx)
    return st


async def _load_counter(ctx: Context) -> None:
    st = state(ctx)
    # What was known committed BEFORE the read: the read must see at least that. `st.latest` after it
    # may have moved on through a commit that the read started too early to see (not lost history).
    epoch, known = st.epoch, st.latest
    doc = await ctx.db[COUNTER].find_one({"_id": "seq"})
    if doc is not None and doc.get("epoch", "") == epoch == st.epoch and doc["value"] < known:
        log.warning("feed counter at %d below the committed %d seen: new epoch", doc["value"], known)
        await _new_epoch(ctx, epoch)
        doc = await ctx.db[COUNTER].find_one({"_id": "seq"})
    st.loaded = True
    if doc is None:
        return
    if doc.get("epoch", "") != st.epoch:
        st.rewind(doc["value"], doc.get("epoch", ""))
    st.advance(doc["value"], doc.get("horizon", 0))


async def _new_epoch(ctx: Context, seen: str) -> None:
    """Void every token issued so far (once, whichever process notices first)."""
    current: Any = seen or {"$in": ["", None]}  # counters from before epochs have none
    await ctx.db[COUNTER].update_one({"_id": "seq", "epoch": current}, {"$set": {"epoch": new_id()}})
