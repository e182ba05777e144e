"""The MongoDB client, the index registry, and helpers shared by every service.

One AsyncMongoClient per process, created inside the running loop (after any fork) and
closed on shutdown. Services declare the indexes they need with `indexes(...)` at import
time; `create_indexes` builds them all at start-up.

Durability: the client carries the write concern `{w: "majority", j: true}` and the read concern
"majority", so every write the API acknowledges (single writes and transaction commits alike, which
inherit the client's concerns) is journaled, and on a replica set on a majority that survives a
failover; reads, including those inside transactions, see only majority-committed data, never a
write a failover may roll back (the feed counter relies on this: server/feed/sequence.py). The embedded
SecantusDB honours `j` only when started with `--sync-on-commit` (server/embedded.py).

The unit of work
----------------
Every transaction runs through `transaction(ctx, work)`: it opens the database session (`txn`,
the only name it has in this code; "session" means a study session) and runs `work(txn)` with
PyMongo's `with_transaction`, which aborts on any error and runs the whole of `work` again, on a
fresh snapshot, after a transient one (a write conflict, say: the feed counter and the sign-up
transactions rely on it). So `work` may run several times, and each attempt but the last is
rolled back: it must have no effect outside the database except through `on_commit(txn, hook)`.
A hook runs once, after the commit succeeded, and only the hooks registered by the attempt that
committed run; those of an attempt that was rolled back (retried or failed) are dropped with its
writes. That is what keeps the process's knowledge of the database in step with what is in it:
the feed position (server/feed/sequence.py) is advanced by a hook, never by a caller remembering to.
Hooks run in the order they were registered; one that fails is logged and the others still run,
since the work has committed and the caller must hear so.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from pymongo import AsyncMongoClient, IndexModel, errors
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from server.config import Settings
from server.context import Context

log = logging.getLogger("branchline.db")
T = TypeVar("T")

# Errors that mean "the database cannot be reached right now", answered 503 database_unavailable.
UNAVAILABLE_ERRORS = (errors.AutoReconnect, errors.ConnectionFailure, errors.ExecutionTimeout,
                      errors.NetworkTimeout, errors.ServerSelectionTimeoutError, errors.WTimeoutError)

# Every write acknowledged only once journaled (on a majority); reads see only majority-committed data.
DURABLE = {"w": "majority", "journal": True, "readConcernLevel": "majority"}

_INDEXES: dict[str, list[IndexModel]] = {}


def indexes(collection: str, *models: IndexModel) -> None:
    """Declare indexes for a collection; called at import time by the owning service module."""
    _INDEXES.setdefault(collection, []).extend(models)


#: The modules that declare indexes at import time (`indexes(...)` at module level). Not every one is
#: imported before start-up creates the indexes (most are reached only through handlers), so
#: `declare_all` imports them; a new module that declares indexes is added here.
INDEXED_MODULES = (
    "server.activities.store",
    "server.announcements",
    "server.audit",
    "server.feed.store",
    "server.files",
    "server.idempotency",
    "server.identity",
    "server.members",
    "server.notifications.outbox",
    "server.notifications.reminders",
    "server.notifications.signup_reminders",
    "server.org_settings",
    "server.orgs",
    "server.ratelimit",
    "server.retention",
    "server.signups",
    "server.study.attendance",
    "server.study.checkins",
    "server.study.rectification",
    "server.study.schemes",
    "server.study.sessions",
    "server.suggestions",
)


def declare_all() -> None:
    """Import every module of INDEXED_MODULES, so that all indexes are declared."""
    for name in INDEXED_MODULES:
        importlib.import_module(name)


async def create_indexes(db: AsyncDatabase) -> None:
    declare_all()
    for collection, models in _INDEXES.items():
        await db[collection].create_indexes(models)


def make_client(settings: Settings, uri: str) -> AsyncMongoClient:
    return AsyncMongoClient(
        uri,
        tz_aware=True,
        **DURABLE,
        timeoutMS=settings.mongo_timeout_ms,
        serverSelectionTimeoutMS=settings.mongo_server_selection_ms,
        connectTimeoutMS=settings.mongo_server_selection_ms,
        appname="branchline",
    )


# -- the unit of work (module note) ---------------------------------------------------------------

Hook = Callable[[], Awaitable[None]]

# The hooks of each running transaction's current attempt, by its session; removed when it ends.
_HOOKS: dict[AsyncClientSession, list[Hook]] = {}


async def transaction(ctx: Context, work: Callable[[AsyncClientSession], Awaitable[T]]) -> T:
    """Run `work(txn)` in one transaction, retried as `with_transaction` retries; return its result.

    After the commit, the hooks the committed attempt registered with `on_commit` run, then the
    result is returned. `work` must not commit or abort the transaction itself.
    """
    hooks: list[Hook] = []

    async def attempt(txn: AsyncClientSession) -> T:
        hooks.clear()  # a new attempt: the one before was rolled back, and its hooks with it
        result = await work(txn)
        if not txn.in_transaction:
            raise RuntimeError("the work of db.transaction ended its transaction itself")
        return result

    async with ctx.client.start_session() as txn:
        _HOOKS[txn] = hooks
        try:
            result = await txn.with_transaction(attempt)
        finally:
            del _HOOKS[txn]
    for hook in hooks:
        try:
            await hook()
        except Exception:
            log.exception("on-commit hook failed (the transaction had committed)")
    return result


def on_commit(txn: AsyncClientSession, hook: Hook) -> None:
    """Run `hook()` once this attempt of `txn`'s transaction has committed; never if it is rolled back."""
    hooks = _HOOKS.get(txn)
    if hooks is None:
        raise RuntimeError("on_commit outside db.transaction")
    hooks.append(hook)


# -- small helpers -------------------------------------------------------------------------------


async def update_then_get(collection, query: dict, update: dict, *, txn=None) -> dict | None:
    """Apply `update` to the document matching `query` and return it as it is afterwards, or None.

    Used instead of find_one_and_update, which SecantusDB runs as a collection scan (about 70 ms
    at 5,000 documents and growing) while update_one and find_one use the indexes. The update is
    atomic; the read after it may include a concurrent change made in between, which callers accept.
    """
    result = await collection.update_one(query, update, session=txn)
    if result.matched_count == 0:
        return None
    key = {"_id": query["_id"]} if "_id" in query and not isinstance(query["_id"], dict) else query
    return await collection.find_one(key, session=txn)


# SecantusDB answers `{_id: {$in: [...]}}` from the index for tens of values, by a scan for thousands:
# 2,000 ids took 3 s, forty queries of 50 took 0.16 s (measured for the notification outbox).
IN_CHUNK = 50


async def find_in(collection, field: str, values: list, projection: dict | None = None, *, txn=None,
                  chunk: int = IN_CHUNK) -> list[dict]:
    """The documents whose `field` is one of `values`, found `chunk` values at a time (see above; a caller
    with its own measurement passes its own size)."""
    found: list[dict] = []
    for start in range(0, len(values), chunk):
        found += await collection.find({field: {"$in": values[start:start + chunk]}}, projection,
                                       session=txn).to_list()
    return found
