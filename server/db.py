"""The MongoDB client, the index registry, and helpers shared by every service.

One AsyncMongoClient per process, created inside the running loop (after any fork) and
closed on shutdown. Services declare the indexes they need with `indexes(...)` at import
time; `create_indexes` builds them all at start-up.

Durability: the client carries the write concern `{w: "majority", j: true}` and the read concern
"majority", so every write the API acknowledges (single writes and transaction commits alike, which
inherit the client's concerns) is journaled, and on a replica set on a majority that survives a
failover; reads, including those inside transactions, see only majority-committed data, never a
write a failover may roll back (the feed counter relies on this: server/feeds.py). The embedded
SecantusDB honours `j` only when started with `--sync-on-commit` (server/embedded.py).
"""

from __future__ import annotations

import importlib
from typing import Any

from pymongo import AsyncMongoClient, IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import (
    AutoReconnect,
    ConnectionFailure,
    ExecutionTimeout,
    NetworkTimeout,
    ServerSelectionTimeoutError,
    WTimeoutError,
)

from server.config import Settings

# Errors that mean "the database cannot be reached right now", answered 503 database_unavailable.
UNAVAILABLE_ERRORS = (
    AutoReconnect,
    ConnectionFailure,
    ExecutionTimeout,
    NetworkTimeout,
    ServerSelectionTimeoutError,
    WTimeoutError,
)

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
    "server.activities",
    "server.announcements",
    "server.audit",
    "server.feeds",
    "server.files",
    "server.idempotency",
    "server.identity",
    "server.members",
    "server.orgs",
    "server.ratelimit",
    "server.signups",
    "server.study_attendance",
    "server.study_checkins",
    "server.study_scheme",
    "server.study_sessions",
    "server.warnings",
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


async def update_then_get(collection, query: dict, update: dict, *, session=None) -> dict | None:
    """Apply `update` to the document matching `query` and return it as it is afterwards, or None.

    Used instead of find_one_and_update, which SecantusDB runs as a collection scan (about 70 ms
    at 5,000 documents and growing) while update_one and find_one use the indexes. The update is
    atomic; the read after it may include a concurrent change made in between, which callers accept.
    """
    result = await collection.update_one(query, update, session=session)
    if result.matched_count == 0:
        return None
    key = {"_id": query["_id"]} if "_id" in query and not isinstance(query["_id"], dict) else query
    return await collection.find_one(key, session=session)


def without_id(doc: dict[str, Any] | None) -> dict[str, Any] | None:
    if doc is None:
        return None
    out = dict(doc)
    out["id"] = out.pop("_id")
    return out
