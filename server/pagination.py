"""Keyset pagination by `_id` for list endpoints (API.md §1: limit 1..100, opaque cursor).

A list's query is a `Keyset`: a union of branches, each an equality filter on the leading keys of an
index whose next key is `_id`, so every branch is served by walking that index from the cursor on
(equality, then sort, then the cursor's range). The branches are queried one by one and merged here,
never as one `$or`/`$in`: MongoDB would serve those too, but SecantusDB, the embedded database, answers
any filter holding an `$or`, an `$in` next to a range, a `$and` or a field outside the index with a
scan of the whole collection and an in-memory sort (docs/scaling.md). `narrow` holds the optional
filters a list offers (a name, a status): checked on the fetched documents, not by the index.

Each service builds its Keyset in one function (`members.list_query`, ...) that the list and
tests/test_query_plans.py both call, so the test reads the plan of the query that runs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection

from server.errors import invalid
from server.ids import decode_cursor, encode_cursor

# A cursor holds the last `_id` served; ours are ObjectId hex or short keys (programmes).
_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


@dataclass(frozen=True)
class Keyset:
    """One list's query: the union of `branches` (equality filters), ordered by `_id`."""

    branches: tuple[dict[str, Any], ...]
    descending: bool = False
    narrow: tuple[dict[str, Any], ...] = field(default=())

    @property
    def sort(self) -> list[tuple[str, int]]:
        return [("_id", -1 if self.descending else 1)]

    def queries(self, after: str | None = None) -> list[dict[str, Any]]:
        """The filter of each branch, starting after `after` (the last `_id` served): one flat
        document each, the cursor's range beside the equalities (a `$and` around it defeats the index
        on SecantusDB)."""
        rest = {} if after is None else {"_id": {"$lt" if self.descending else "$gt": after}}
        return [combine(branch, *self.narrow, rest) for branch in self.branches]


def combine(*clauses: dict[str, Any]) -> dict[str, Any]:
    """All of `clauses` as one flat filter; only a field two of them name (a narrowing on the scope's
    own field, two `$or`s) goes into a `$and`, which still means all of them."""
    flat: dict[str, Any] = {}
    clashing: list[dict[str, Any]] = []
    for clause in clauses:
        for key, value in clause.items():
            if key in flat or key == "$and":
                clashing.append({key: value})
            else:
                flat[key] = value
    if clashing:
        flat["$and"] = clashing
    return flat


def cursor_position(cursor: str | None) -> str | None:
    """The `_id` a cursor carries, or 422 on `cursor`."""
    if not cursor:
        return None
    after = decode_cursor(cursor)
    if not _ID.fullmatch(after):
        raise invalid("cursor", "Malformed cursor.")
    return after


async def page(
    collection: AsyncCollection,
    query: Keyset | dict[str, Any],
    limit: int,
    cursor: str | None,
    *,
    descending: bool = False,
    projection: dict[str, Any] | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    """Return up to `limit` documents after `cursor` ordered by `_id`, and the next cursor.

    `query` is a Keyset, or one equality filter (a Keyset of one branch ordered as `descending` says).
    The first `limit + 1` of the union are among the first `limit + 1` of each branch.
    """
    keyset = query if isinstance(query, Keyset) else Keyset((query,), descending)
    found: dict[Any, dict[str, Any]] = {}
    for branch in keyset.queries(cursor_position(cursor)):
        for doc in await collection.find(branch, projection).sort(keyset.sort).limit(limit + 1).to_list():
            found[doc["_id"]] = doc
    docs = sorted(found.values(), key=lambda d: d["_id"], reverse=keyset.descending)[: limit + 1]
    next_cursor = encode_cursor(docs[limit - 1]["_id"]) if len(docs) > limit else None
    return docs[:limit], next_cursor
