"""The capacity mechanism of 群心驿站 activities (DESIGN.md "Capacity"): sign-ups that never overbook.

Invariants, held under any concurrency and across API processes:

1. `confirmed` sign-ups of an activity ≤ its `capacity`;
2. waitlist positions are exactly 1..n, no gaps and no repeats, re-numbered as people leave;
3. promotions take the earliest waitlisted member;
4. one sign-up document per (activity, member) — a unique index;
5. the counters on the activity (`confirmed_count`, `waitlist_count`) equal the sign-up documents.

How: every change of a sign-up's status (join, leave, promotion, capacity change, cancelling the
activity) runs in ONE MongoDB transaction (`in_transaction`) that also writes the activity document
(`write_activity`: its counters and `waitlist_seq`). Two such transactions on the same activity
therefore write the same document: the storage engine lets only one commit and the other gets a
WriteConflict (TransientTransactionError), which `with_transaction` retries from the start on a
fresh snapshot. So each transaction decides on an exact, current view of the counters and the
waitlist, and a request that fails half-way (crash, timeout, lost connection) commits nothing:
counts and lists stay consistent (5). We checked that
SecantusDB reports these conflicts (200 concurrent transactions incrementing one counter: 3224 attempts,
exact result), and tests/test_activities_race.py and test_activities_failures.py hold us to it.

Positions: a waitlisted sign-up stores `seq`, taken from `activity.waitlist_seq` ($inc in the same
transaction, so seqs of one activity are distinct and increase with arrival). The visible position is
its rank: 1 + the number of waitlisted sign-ups of the activity with a smaller seq. Ranks of n distinct
numbers are exactly 1..n (2), whoever leaves; promotion takes the smallest seq, i.e. position 1 (3).
Nothing is renumbered on disk, so leaving the waitlist is one write, not n.

Inside one API process, transactions on the same activity also queue on an asyncio lock, and sign-ups
that arrive while one is running are taken together by the next transaction (group commit: `join`,
which gives the places of a `Batch`). Neither is needed for correctness (the transaction is); they
stop a burst of sign-ups from turning into a storm of write conflicts and retries (measured on
SecantusDB, 200 concurrent sign-ups: ~16/s racing, ~300/s serialised), and a batch costs one read and
one write of the activity instead of one per member. Across processes, the transactions alone keep the
invariants (tests/test_activities_race.py runs the races against `--processes 2` and against two
servers sharing one database).

This module is the mechanism only. The operations (sign up, leave, edit, cancel) and their rules are
in server/activities/, each read top-down: open the activity's transaction here, check the rules on
what it read, and change places only through `Batch`, `release` and `change`, which keep (1)-(5) and
write the activity document.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import DuplicateKeyError, OperationFailure

from server.context import Context
from server.db import indexes, transaction
from server.errors import ApiError, conflict
from server.ids import new_id

ACTIVITIES = "activities"
COLLECTION = "activity_signups"
ACTIVE = ("confirmed", "waitlisted")

indexes(
    COLLECTION,
    IndexModel([("activity_id", ASCENDING), ("member_id", ASCENDING)], unique=True),
    IndexModel([("activity_id", ASCENDING), ("status", ASCENDING), ("seq", ASCENDING)]),
    IndexModel([("member_id", ASCENDING), ("status", ASCENDING)]),
)


class _Stale(OperationFailure):
    """The activity document changed under a transaction without a write conflict: retry it.

    Never expected with snapshot isolation; the conditional update makes the counters safe even on a
    server that failed to report the conflict.
    """

    def __init__(self) -> None:
        super().__init__("activity changed during the transaction", code=112,
                         details={"errorLabels": ["TransientTransactionError"]})


def now_ms(ctx: Context) -> datetime:
    """The time as MongoDB stores it (milliseconds), so what a response says is what a later read says."""
    now = ctx.now()
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def _lock(ctx: Context, activity_id: str) -> asyncio.Lock:
    locks: weakref.WeakValueDictionary = ctx.state.setdefault("activity_locks", weakref.WeakValueDictionary())
    lock = locks.get(activity_id)
    if lock is None:
        lock = locks[activity_id] = asyncio.Lock()
    return lock


async def in_transaction(ctx: Context, activity_id: str,
                         work: Callable[[AsyncClientSession], Awaitable[Any]]) -> Any:
    """Run `work(txn)` in a transaction (server/db.py), queued behind others on this activity in this process."""
    async with _lock(ctx, activity_id):
        for attempt in range(3):
            try:
                return await transaction(ctx, work)
            except DuplicateKeyError:
                # Another process inserted this member's sign-up and committed first: run again,
                # the next snapshot sees it.
                if attempt == 2:
                    raise
    raise AssertionError("unreachable")


async def write_activity(ctx: Context, txn: AsyncClientSession, act: dict, inc: dict[str, int] | None = None,
                         set_: dict | None = None) -> None:
    """Write the activity document in this transaction, from the counters it read (see _Stale).

    Every transaction that changes sign-ups or the activity writes it, with the counters moved or not:
    that write is what makes two transactions on one activity conflict, so that only one commits.
    """
    guard = {"_id": act["_id"], "confirmed_count": act["confirmed_count"], "waitlist_count": act["waitlist_count"],
             "waitlist_seq": act.get("waitlist_seq", 0)}
    update: dict[str, Any] = {"$inc": inc} if inc else {}
    if set_:
        update["$set"] = set_
    result = await ctx.db[ACTIVITIES].update_one(guard, update, session=txn)
    if result.matched_count != 1:
        raise _Stale()


async def position(ctx: Context, signup: dict, txn: AsyncClientSession | None = None) -> int:
    """1 + the waitlisted sign-ups of the activity with a smaller seq (see the module docstring)."""
    ahead = await ctx.db[COLLECTION].count_documents(
        {"activity_id": signup["activity_id"], "status": "waitlisted", "seq": {"$lt": signup["seq"]}},
        session=txn)
    return ahead + 1


# -- group commit: the places of a batch of sign-ups ------------------------------------------------

MAX_BATCH = 100


@dataclass
class _Waiting:
    request: Any
    future: asyncio.Future


@dataclass
class _Queue:
    work: Callable[[AsyncClientSession, list[Any]], Awaitable[list[Any]]]
    items: list[_Waiting] = field(default_factory=list)
    task: asyncio.Task | None = None


async def join(ctx: Context, activity_id: str, request: Any,
               work: Callable[[AsyncClientSession, list[Any]], Awaitable[list[Any]]]) -> Any:
    """Queue `request` for the next transaction on the activity, and return what that decided for it.

    Group commit: sign-ups for one activity that arrive while its transaction is busy wait in a queue,
    and the next transaction takes them all (up to MAX_BATCH) in arrival order: it runs
    `work(txn, requests)` once, which returns one result per request, or the ApiError refusing it
    (that request's answer, not the batch's). `work` gives places through a `Batch`; the invariants
    are those of one transaction, however many requests it serves. The queue runs the `work` of the
    request that started it: every request of an activity comes with the same one (sign-up, in
    server/activities/signing_up.py).
    """
    queues: dict[str, _Queue] = ctx.state.setdefault("signup_queues", {})
    queue = queues.setdefault(activity_id, _Queue(work))
    future = asyncio.get_running_loop().create_future()
    queue.items.append(_Waiting(request, future))
    if queue.task is None:
        queue.task = asyncio.create_task(_drain(ctx, activity_id, queue))
    return await future


async def _drain(ctx: Context, activity_id: str, queue: _Queue) -> None:
    batch: list[_Waiting] = []
    try:
        while queue.items:
            batch, queue.items = queue.items[:MAX_BATCH], queue.items[MAX_BATCH:]
            requests = [waiting.request for waiting in batch]
            try:
                results = await in_transaction(ctx, activity_id, lambda txn, r=requests: queue.work(txn, r))
            except Exception as exc:  # the database failed: every request of this batch hears it
                results = [exc] * len(batch)
            for waiting, result in zip(batch, results, strict=True):
                if waiting.future.done():
                    continue
                if isinstance(result, Exception):
                    waiting.future.set_exception(result)
                else:
                    waiting.future.set_result(result)
    finally:
        leftover, queue.items, queue.task = [*batch, *queue.items], [], None
        ctx.state["signup_queues"].pop(activity_id, None)
        for waiting in leftover:  # only when the task is cancelled (the process is stopping)
            if not waiting.future.done():
                waiting.future.set_exception(ApiError(503, "service_unavailable", "The server is stopping."))


class Batch:
    """The places one transaction gives for one activity: what it read, and the sign-ups it makes.

    `read` reads the activity and the sign-ups of the batch's members; `active` and `place` answer
    from that read and the places given so far; `write` moves the counters once and writes the
    sign-ups, all in the batch's transaction.
    """

    def __init__(self, ctx: Context, txn: AsyncClientSession, act: dict | None, signups: dict[str, dict]) -> None:
        self.ctx, self.txn, self.activity = ctx, txn, act
        self.now = now_ms(ctx)
        self._signups = signups
        self._positions: dict[str, int | None] = {}
        self._confirmed, self._waiting, self._seq = (
            (act["confirmed_count"], act["waitlist_count"], act.get("waitlist_seq", 0)) if act else (0, 0, 0))
        self._inserts: list[dict] = []
        self._reuses: list[dict] = []

    @classmethod
    async def read(cls, ctx: Context, txn: AsyncClientSession, activity_id: str, member_ids: list[str]) -> Batch:
        act = await ctx.db[ACTIVITIES].find_one({"_id": activity_id}, session=txn)
        signups = {d["member_id"]: d for d in await ctx.db[COLLECTION].find(
            {"activity_id": activity_id, "member_id": {"$in": list(set(member_ids))}}, session=txn).to_list()}
        return cls(ctx, txn, act, signups)

    async def active(self, member_id: str) -> tuple[dict, int | None] | None:
        """The member's confirmed or waitlisted sign-up and its position (one given earlier in this batch
        included), or None."""
        signup = self._signups.get(member_id)
        if signup is None or signup["status"] not in ACTIVE:
            return None
        if member_id not in self._positions:  # a sign-up from before this batch
            self._positions[member_id] = (await position(self.ctx, signup, self.txn)
                                          if signup["status"] == "waitlisted" else None)
        return signup, self._positions[member_id]

    def place(self, member_id: str, answers: dict[str, str]) -> tuple[dict, int | None]:
        """A confirmed place while there is room, else the end of the waitlist (→ the sign-up and its
        position), else 409 activity_full."""
        act, now = self.activity, self.now
        fields: dict[str, Any] = {"answers": answers, "signed_up_at": now, "cancelled_at": None,
                                  "checked_in_at": None, "attendance": None}
        if self._confirmed < act["capacity"]:
            self._confirmed += 1
            fields.update(status="confirmed", seq=None, confirmed_at=now)
            pos = None
        elif act["waitlist"]:
            self._waiting += 1
            self._seq += 1
            fields.update(status="waitlisted", seq=self._seq, confirmed_at=None)
            # The newcomer has the largest seq of all: its rank is the waitlist's new length.
            pos = self._waiting
        else:
            raise conflict("activity_full", "This activity is full and has no waitlist.")
        existing = self._signups.get(member_id)
        if existing is None:  # first sign-up; the unique index refuses a twin from another process
            doc = {"_id": new_id(), "activity_id": act["_id"], "member_id": member_id,
                   "org_path": act["org_path"], "feedback_given": False, **fields}
            self._inserts.append(doc)
        else:  # signing up again after cancelling: the same document, at the end of the queue
            doc = {**existing, **fields}
            self._reuses.append(doc)
        self._signups[member_id], self._positions[member_id] = doc, pos
        return doc, pos

    async def write(self) -> None:
        if not (self._inserts or self._reuses):
            return
        act, coll = self.activity, self.ctx.db[COLLECTION]
        await write_activity(self.ctx, self.txn, act, {"confirmed_count": self._confirmed - act["confirmed_count"],
                                                       "waitlist_count": self._waiting - act["waitlist_count"],
                                                       "waitlist_seq": self._seq - act.get("waitlist_seq", 0)})
        if self._inserts:
            await coll.insert_many(self._inserts, session=self.txn)
        for doc in self._reuses:
            changed = {k: doc[k] for k in ("answers", "signed_up_at", "cancelled_at", "checked_in_at", "attendance",
                                           "status", "seq", "confirmed_at")}
            done = await coll.update_one({"_id": doc["_id"], "status": "cancelled"}, {"$set": changed},
                                         session=self.txn)
            if done.modified_count != 1:
                raise _Stale()


# -- leaving, promotion, capacity ------------------------------------------------------------------

async def release(ctx: Context, txn: AsyncClientSession, act: dict, signup: dict, now: datetime) -> list[str]:
    """Cancel an active sign-up; a confirmed place it frees goes to the earliest waitlisted member at once.

    Returns the promoted member ids (zero or one).
    """
    await ctx.db[COLLECTION].update_one({"_id": signup["_id"], "status": signup["status"]},
                                        {"$set": {"status": "cancelled", "seq": None, "cancelled_at": now}},
                                        session=txn)
    if signup["status"] == "waitlisted":
        await write_activity(ctx, txn, act, {"waitlist_count": -1})
        return []
    promoted = await promote(ctx, txn, act, 1, now)
    if promoted:
        await write_activity(ctx, txn, act, {"waitlist_count": -len(promoted)})
    else:
        await write_activity(ctx, txn, act, {"confirmed_count": -1})
    return promoted


async def promote(ctx: Context, txn: AsyncClientSession, act: dict, places: int, now: datetime) -> list[str]:
    """Confirm the `places` earliest waitlisted sign-ups (smallest seq); return their member ids.

    The caller moves the counters (`write_activity`) in the same transaction.
    """
    if places <= 0 or act["waitlist_count"] <= 0:
        return []
    coll = ctx.db[COLLECTION]
    chosen = await coll.find({"activity_id": act["_id"], "status": "waitlisted"}, {"member_id": 1},
                             session=txn).sort("seq", ASCENDING).limit(places).to_list()
    if not chosen:
        return []
    result = await coll.update_many({"_id": {"$in": [c["_id"] for c in chosen]}, "status": "waitlisted"},
                                    {"$set": {"status": "confirmed", "seq": None, "confirmed_at": now,
                                              "promoted_at": now}}, session=txn)
    if result.modified_count != len(chosen):
        raise _Stale()
    return [c["member_id"] for c in chosen]


async def change(ctx: Context, txn: AsyncClientSession, act: dict, changes: dict) -> tuple[dict, list[str]]:
    """Write `changes` (any fields, capacity included) to the activity `act` read in this transaction.

    A capacity below the confirmed count is refused with 409 capacity_below_confirmed (1); places it
    adds go at once to the earliest waitlisted. → (the activity as it now is, the promoted member ids).
    """
    capacity = changes.get("capacity", act["capacity"])
    if capacity < act["confirmed_count"]:
        raise conflict("capacity_below_confirmed",
                       f"{act['confirmed_count']} members are confirmed; the capacity cannot go below that.")
    now = now_ms(ctx)
    promoted = await promote(ctx, txn, act, capacity - act["confirmed_count"], now)
    await write_activity(ctx, txn, act, {"confirmed_count": len(promoted), "waitlist_count": -len(promoted)},
                         {**changes, "updated_at": now})
    return {**act, **changes, "updated_at": now, "confirmed_count": act["confirmed_count"] + len(promoted),
            "waitlist_count": act["waitlist_count"] - len(promoted)}, promoted
