"""The unit of work (server/db.py): on-commit hooks run once, after the commit, for the attempt that
committed; never for a transaction that aborts or an attempt that was retried. The feed position hangs on it."""

from __future__ import annotations

import asyncio

import pytest
from pymongo.errors import OperationFailure

from server.db import on_commit, transaction
from server.feed import sequence as feed_sequence
from server.feed import store as feed_store
from server.feed import writing as feed_writing

PROBE = "uow_probe"


def _write_conflict() -> OperationFailure:
    """What a write conflict looks like to `with_transaction`: retry the whole transaction."""
    return OperationFailure("simulated write conflict", code=112,
                            details={"errorLabels": ["TransientTransactionError"]})


def test_a_hook_registered_in_a_transaction_that_aborts_never_runs(api):
    db = api.ctx.db
    events: list[str] = []

    async def scenario():
        async def hook() -> None:
            events.append("hook")

        async def work(txn) -> None:
            await db[PROBE].insert_one({"_id": "aborted"}, session=txn)
            on_commit(txn, hook)
            raise ValueError("the work fails")

        with pytest.raises(ValueError, match="the work fails"):
            await transaction(api.ctx, work)
        events.append("raised")
        return await db[PROBE].find_one({"_id": "aborted"})

    assert api.run(scenario()) is None  # rolled back
    assert events == ["raised"]


def test_a_hook_of_a_retried_attempt_is_dropped_and_the_committed_one_runs_once_after_the_commit(api):
    db = api.ctx.db
    events: list[object] = []

    async def scenario():
        async def hook(attempt: int) -> None:
            # Read outside the transaction: before the commit the insert would not be visible.
            events.append(("hook", attempt, await db[PROBE].find_one({"_id": "retried"})))

        async def work(txn) -> str:
            attempt = sum(1 for e in events if e[0] == "attempt") + 1
            events.append(("attempt", attempt))
            await db[PROBE].insert_one({"_id": "retried", "attempt": attempt}, session=txn)
            on_commit(txn, lambda: hook(attempt))
            if attempt == 1:
                raise _write_conflict()
            return "done"

        result = await transaction(api.ctx, work)
        events.append(("returned", result))

    api.run(scenario())
    assert events == [("attempt", 1), ("attempt", 2),
                      ("hook", 2, {"_id": "retried", "attempt": 2}),
                      ("returned", "done")]


def test_the_feed_position_moves_on_commit_only(api):
    """A notice written in an aborted transaction moves neither the counter nor this process's position;
    one that commits has moved the position by the time its transaction returns, with nobody calling more."""
    ctx = api.ctx
    st = feed_sequence.state(ctx)

    async def counter() -> int:
        doc = await ctx.db[feed_store.COUNTER].find_one({"_id": "seq"})
        return doc["value"] if doc else 0

    async def notice(txn) -> None:
        await feed_writing.notify(ctx, ["m-uow"], title="t", summary="s", ref_kind="activity", ref_id="a-uow",
                           org_id="o-uow", txn=txn)

    async def scenario():
        await transaction(ctx, notice)  # the counter exists and the position is known from here on
        before = await counter()
        assert st.latest == before

        async def aborted(txn) -> None:
            await notice(txn)
            raise ValueError("abort")

        with pytest.raises(ValueError):
            await transaction(ctx, aborted)
        assert (await counter(), st.latest) == (before, before)

        await transaction(ctx, notice)
        latest = st.latest  # moved by the hook (the poller would catch up only within POLL_SECONDS)
        assert latest == before + 1 == await counter()

    api.run(scenario())


def test_a_counter_read_overtaken_by_a_commit_is_not_lost_history(api):
    """The poller reads the counter while writers commit: a read that started before a commit returns
    the older value after the commit's hook has moved the position. That is not the database losing
    history, and must never start a new epoch (which answers every member's token 410)."""
    ctx = api.ctx
    st = feed_sequence.state(ctx)

    async def notice(txn) -> None:
        await feed_writing.notify(ctx, ["m-race"], title="t", summary="s", ref_kind="activity", ref_id="a-race",
                                  org_id="o-race", txn=txn)

    async def scenario():
        await transaction(ctx, notice)
        epoch = st.epoch

        async def writer() -> None:
            for _ in range(15):
                await transaction(ctx, notice)

        async def poller(stop: asyncio.Event) -> None:
            while not stop.is_set():
                await feed_sequence._load_counter(ctx)

        stop = asyncio.Event()
        pollers = [asyncio.create_task(poller(stop)) for _ in range(4)]
        await asyncio.gather(*(writer() for _ in range(4)))
        stop.set()
        await asyncio.gather(*pollers)
        counter = await ctx.db[feed_store.COUNTER].find_one({"_id": "seq"})
        return epoch, st.epoch, counter.get("epoch", ""), counter["value"], st.latest

    before, now, stored, value, latest = api.run(scenario())
    assert (now, stored) == (before, before)
    assert value == latest == 61
