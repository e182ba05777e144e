"""The capacity mechanism of 群心驿站 activities (DESIGN.md "Capacity"): sign-ups that never overbook.

Invariants, held under any concurrency and across API processes:

1. `confirmed` sign-ups of an activity ≤ its `capacity`;
2. waitlist positions are exactly 1..n, no gaps and no repeats, re-numbered as people leave;
3. promotions take the earliest waitlisted member;
4. one sign-up document per (activity, member) — a unique index;
5. the counters on the activity (`confirmed_count`, `waitlist_count`) equal the sign-up documents.

How: every change of a sign-up's status (join, leave, promotion, capacity change, cancelling the
activity) runs in ONE MongoDB transaction that also writes the activity document (its counters and
`waitlist_seq`). Two such transactions on the same activity therefore write the same document: the
storage engine lets only one commit and the other gets a WriteConflict (TransientTransactionError),
which `with_transaction` retries from the start on a fresh snapshot. So each transaction decides on an
exact, current view of the counters and the waitlist, and a request that fails half-way (crash,
timeout, lost connection) commits nothing: counts and lists stay consistent (5). We checked that
SecantusDB reports these conflicts (200 concurrent transactions incrementing one counter: 3224 attempts,
exact result), and tests/test_activities_race.py and test_activities_failures.py hold us to it.

Positions: a waitlisted sign-up stores `seq`, taken from `activity.waitlist_seq` ($inc in the same
transaction, so seqs of one activity are distinct and increase with arrival). The visible position is
its rank: 1 + the number of waitlisted sign-ups of the activity with a smaller seq. Ranks of n distinct
numbers are exactly 1..n (2), whoever leaves; promotion takes the smallest seq, i.e. position 1 (3).
Nothing is renumbered on disk, so leaving the waitlist is one write, not n.

Inside one API process, transactions on the same activity also queue on an asyncio lock, and sign-ups
that arrive while one is running are taken together by the next transaction (group commit, `join`).
Neither is needed for correctness (the transaction is); they stop a burst of sign-ups from turning into
a storm of write conflicts and retries (measured on SecantusDB, 200 concurrent sign-ups: ~16/s racing,
~300/s serialised), and a batch costs one read and one write of the activity instead of one per member.
Across processes, the transactions alone keep the invariants (tests/test_activities_race.py runs the
races against `--processes 2` and against two servers sharing one database).
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

from server import members
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


async def _bump(ctx: Context, txn: AsyncClientSession, act: dict, inc: dict[str, int],
                set_: dict | None = None) -> None:
    """Move the activity's counters from the values this transaction read (see _Stale)."""
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


def check_window(act: dict, now: datetime) -> None:
    if act["status"] == "cancelled":
        raise conflict("activity_cancelled", "This activity has been cancelled.")
    if act["status"] != "published" or now < act["signup_opens_at"]:
        raise conflict("signup_not_open", "Sign-up for this activity has not opened yet.")
    if now >= act["signup_closes_at"]:
        raise conflict("signup_closed", "Sign-up for this activity has closed.")


@dataclass
class _Request:
    member_id: str
    answers: dict[str, str]
    visible: Callable[[dict], bool]
    admit: Callable[[dict, dict], Awaitable[None]]
    future: asyncio.Future


@dataclass
class _Queue:
    items: list[_Request] = field(default_factory=list)
    task: asyncio.Task | None = None


async def join(ctx: Context, activity_id: str, member_id: str, answers: dict[str, str], *,
               visible: Callable[[dict], bool],
               admit: Callable[[dict, dict], Awaitable[None]]) -> tuple[dict, bool, int | None]:
    """Sign a member up: (sign-up, created?, position). An existing active sign-up comes back unchanged.

    Everything is decided on the transaction's own read of the activity: `visible(act)` (else 404
    activity_not_found), then a cancelled activity is refused, then an existing sign-up is returned, then
    `admit(act, member_record)` raises for a newcomer who may not join (time window, eligibility), then
    capacity. The member records of a batch are read with one query.

    Group commit: sign-ups for one activity that arrive while its transaction is busy wait in a queue,
    and the next transaction takes them all (up to MAX_BATCH) in arrival order. Each request still gets
    its own answer or refusal; the invariants are those of one transaction, however many it serves.
    """
    queues: dict[str, _Queue] = ctx.state.setdefault("signup_queues", {})
    queue = queues.setdefault(activity_id, _Queue())
    future = asyncio.get_running_loop().create_future()
    queue.items.append(_Request(member_id, answers, visible, admit, future))
    if queue.task is None:
        queue.task = asyncio.create_task(_drain(ctx, activity_id, queue))
    return await future


MAX_BATCH = 100


async def _drain(ctx: Context, activity_id: str, queue: _Queue) -> None:
    batch: list[_Request] = []
    try:
        while queue.items:
            batch, queue.items = queue.items[:MAX_BATCH], queue.items[MAX_BATCH:]
            try:
                results = await in_transaction(ctx, activity_id,
                                               lambda txn, b=batch: _join_batch(ctx, txn, activity_id, b))
            except Exception as exc:  # the database failed: every request of this batch hears it
                results = [exc] * len(batch)
            for request, result in zip(batch, results, strict=True):
                if request.future.done():
                    continue
                if isinstance(result, Exception):
                    request.future.set_exception(result)
                else:
                    request.future.set_result(result)
    finally:
        leftover, queue.items, queue.task = [*batch, *queue.items], [], None
        ctx.state["signup_queues"].pop(activity_id, None)
        for request in leftover:  # only when the task is cancelled (the process is stopping)
            if not request.future.done():
                request.future.set_exception(ApiError(503, "service_unavailable", "The server is stopping."))


async def _join_batch(ctx: Context, txn: AsyncClientSession, activity_id: str,
                      batch: list[_Request]) -> list[tuple[dict, bool, int | None] | ApiError]:
    """One transaction for a batch of sign-ups; a refusal is that request's result, not the batch's."""
    coll = ctx.db[COLLECTION]
    act = await ctx.db[ACTIVITIES].find_one({"_id": activity_id}, session=txn)
    mine = {d["member_id"]: d for d in await coll.find(
        {"activity_id": activity_id, "member_id": {"$in": list({r.member_id for r in batch})}},
        session=txn).to_list()}
    records = {d["_id"]: d for d in await ctx.db[members.COLLECTION].find(
        {"_id": {"$in": list({r.member_id for r in batch})}}, session=txn).to_list()}
    positions: dict[str, int | None] = {}
    inserts: list[dict] = []
    reuses: list[dict] = []
    now = now_ms(ctx)
    confirmed, waiting, seq = (act["confirmed_count"], act["waitlist_count"], act.get("waitlist_seq", 0)) \
        if act else (0, 0, 0)
    results: list[tuple[dict, bool, int | None] | ApiError] = []
    for request in batch:
        try:
            if act is None or not request.visible(act):
                raise ApiError(404, "activity_not_found", "No such activity.")
            if act["status"] == "cancelled":
                raise conflict("activity_cancelled", "This activity has been cancelled.")
            existing = mine.get(request.member_id)
            if existing is not None and existing["status"] in ACTIVE:
                if request.member_id not in positions:  # a sign-up from before this batch
                    positions[request.member_id] = (await position(ctx, existing, txn)
                                                    if existing["status"] == "waitlisted" else None)
                results.append((existing, False, positions[request.member_id]))
                continue
            await request.admit(act, records.get(request.member_id) or {})
            fields: dict[str, Any] = {"answers": request.answers, "signed_up_at": now, "cancelled_at": None,
                                      "checked_in_at": None, "attendance": None}
            if confirmed < act["capacity"]:
                confirmed += 1
                fields.update(status="confirmed", seq=None, confirmed_at=now)
                pos = None
            elif act["waitlist"]:
                waiting += 1
                seq += 1
                fields.update(status="waitlisted", seq=seq, confirmed_at=None)
                # The newcomer has the largest seq of all: its rank is the waitlist's new length.
                pos = waiting
            else:
                raise conflict("activity_full", "This activity is full and has no waitlist.")
            if existing is None:  # first sign-up; the unique index refuses a twin from another process
                doc = {"_id": new_id(), "activity_id": activity_id, "member_id": request.member_id,
                       "org_path": act["org_path"], "feedback_given": False, **fields}
                inserts.append(doc)
            else:  # signing up again after cancelling: the same document, at the end of the queue
                doc = {**existing, **fields}
                reuses.append(doc)
            mine[request.member_id], positions[request.member_id] = doc, pos
            results.append((doc, True, pos))
        except ApiError as refusal:
            results.append(refusal)
    if inserts or reuses:
        await _bump(ctx, txn, act, {"confirmed_count": confirmed - act["confirmed_count"],
                                        "waitlist_count": waiting - act["waitlist_count"],
                                        "waitlist_seq": seq - act.get("waitlist_seq", 0)})
        if inserts:
            await coll.insert_many(inserts, session=txn)
        for doc in reuses:
            changed = {k: doc[k] for k in ("answers", "signed_up_at", "cancelled_at", "checked_in_at", "attendance",
                                           "status", "seq", "confirmed_at")}
            done = await coll.update_one({"_id": doc["_id"], "status": "cancelled"}, {"$set": changed},
                                         session=txn)
            if done.modified_count != 1:
                raise _Stale()
    return results


async def leave(ctx: Context, activity_id: str, member_id: str,
                notify_promoted: Callable[[AsyncClientSession, dict, list[str]], Awaitable[None]]) -> list[str]:
    """Cancel the member's sign-up; a freed place goes to the earliest waitlisted member at once.

    Returns the promoted member ids (zero or one). A sign-up already cancelled stays as it is (DELETE is
    idempotent: a client retrying after a lost answer gets 204 again); none at all is 404 signup_not_found.
    """

    async def work(txn: AsyncClientSession) -> list[str]:
        coll = ctx.db[COLLECTION]
        # (Filter on the unique pair only: SecantusDB plans `status: {$in}` beside it as a scan.)
        mine = await coll.find_one({"activity_id": activity_id, "member_id": member_id}, session=txn)
        if mine is None:
            raise ApiError(404, "signup_not_found", "You have not signed up for this activity.")
        if mine["status"] not in ACTIVE:  # already cancelled: a retried DELETE answers 204 again
            return []
        act = await ctx.db[ACTIVITIES].find_one({"_id": activity_id}, session=txn)
        now = now_ms(ctx)
        if act["status"] == "cancelled":
            raise conflict("activity_cancelled", "This activity has been cancelled.")
        if mine["status"] == "confirmed" and now > (act.get("cancel_deadline") or act["starts_at"]):
            raise conflict("cancel_deadline_passed", "The deadline for cancelling has passed.")
        if mine.get("checked_in_at"):  # attendance is evidence: it is not withdrawn by leaving
            raise conflict("cancel_deadline_passed", "You have checked in; the sign-up can no longer be cancelled.")
        await coll.update_one({"_id": mine["_id"], "status": mine["status"]},
                              {"$set": {"status": "cancelled", "seq": None, "cancelled_at": now}}, session=txn)
        if mine["status"] == "waitlisted":
            await _bump(ctx, txn, act, {"waitlist_count": -1})
            return []
        promoted = await _promote(ctx, txn, act, 1, now)
        if promoted:
            await _bump(ctx, txn, act, {"waitlist_count": -len(promoted)})
            await notify_promoted(txn, act, promoted)
        else:
            await _bump(ctx, txn, act, {"confirmed_count": -1})
        return promoted

    return await in_transaction(ctx, activity_id, work)


async def _promote(ctx: Context, txn: AsyncClientSession, act: dict, places: int, now: datetime) -> list[str]:
    """Confirm the `places` earliest waitlisted sign-ups (smallest seq); return their member ids."""
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


async def apply_changes(ctx: Context, activity_id: str, changes: dict,
                          check: Callable[[dict], None],
                          after: Callable[[AsyncClientSession, dict, list[str]], Awaitable[None]]
                          ) -> tuple[dict, list[str]]:
    """Apply `changes` to the activity (any fields, capacity included) with promotion from the waitlist.

    `check(current_activity)` validates the merged result and raises; lowering the capacity below the
    confirmed count is refused with 409 capacity_below_confirmed.
    """

    async def work(txn: AsyncClientSession) -> tuple[dict, list[str]]:
        act = await ctx.db[ACTIVITIES].find_one({"_id": activity_id}, session=txn)
        if act["status"] == "cancelled":
            raise conflict("activity_cancelled", "This activity has been cancelled.")
        check(act)
        capacity = changes.get("capacity", act["capacity"])
        if capacity < act["confirmed_count"]:
            raise conflict("capacity_below_confirmed",
                           f"{act['confirmed_count']} members are confirmed; the capacity cannot go below that.")
        now = now_ms(ctx)
        promoted = await _promote(ctx, txn, act, capacity - act["confirmed_count"], now)
        await _bump(ctx, txn, act, {"confirmed_count": len(promoted), "waitlist_count": -len(promoted)},
                    {**changes, "updated_at": now})
        new = {**act, **changes, "updated_at": now, "confirmed_count": act["confirmed_count"] + len(promoted),
               "waitlist_count": act["waitlist_count"] - len(promoted)}
        await after(txn, new, promoted)
        return new, promoted

    return await in_transaction(ctx, activity_id, work)


async def cancel_activity(ctx: Context, activity_id: str, reason: str,
                          after: Callable[[AsyncClientSession, dict, list[str]], Awaitable[None]]) -> tuple[dict, bool]:
    """Cancel the activity; `after` gets every member still signed up. (activity, changed?)"""

    async def work(txn: AsyncClientSession) -> tuple[dict, bool]:
        act = await ctx.db[ACTIVITIES].find_one({"_id": activity_id}, session=txn)
        if act["status"] == "cancelled":
            return act, False
        now = now_ms(ctx)
        signed = await ctx.db[COLLECTION].find({"activity_id": activity_id, "status": {"$in": list(ACTIVE)}},
                                               {"member_id": 1}, session=txn).to_list()
        update = {"status": "cancelled", "cancelled_at": now, "cancel_reason": reason, "updated_at": now}
        await _bump(ctx, txn, act, {}, update)
        new = {**act, **update}
        await after(txn, new, [s["member_id"] for s in signed])
        return new, True

    return await in_transaction(ctx, activity_id, work)


async def counts_consistent(ctx: Context, activity_id: str) -> bool:
    """True when the activity's counters equal its sign-up documents (used by tests and the bench)."""
    act = await ctx.db[ACTIVITIES].find_one({"_id": activity_id})
    confirmed = await ctx.db[COLLECTION].count_documents({"activity_id": activity_id, "status": "confirmed"})
    waitlisted = await ctx.db[COLLECTION].count_documents({"activity_id": activity_id, "status": "waitlisted"})
    return (act["confirmed_count"], act["waitlist_count"]) == (confirmed, waitlisted)
