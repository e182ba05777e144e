"""Keyset pagination by `_id` for list endpoints (API.md §1: limit 1..100, opaque cursor)."""

from __future__ import annotations

import re
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection

from server.errors import invalid
from server.ids import decode_cursor, encode_cursor

# A cursor holds the last `_id` served; ours are ObjectId hex or short keys (programmes).
_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


async def page(
    collection: AsyncCollection,
    query: dict[str, Any],
    limit: int,
    cursor: str | None,
    *,
    descending: bool = False,
    projection: dict[str, Any] | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    """Return up to `limit` documents after `cursor` ordered by `_id`, and the next cursor."""
    if cursor:
        after = decode_cursor(cursor)
        if not _ID.fullmatch(after):
            raise invalid("cursor", "Malformed cursor.")
        query = {"$and": [query, {"_id": {"$lt" if descending else "$gt": after}}]}
    docs = await (
        collection.find(query, projection)
        .sort("_id", -1 if descending else 1)
        .limit(limit + 1)
        .to_list()
    )
    next_cursor = encode_cursor(docs[limit - 1]["_id"]) if len(docs) > limit else None
    return docs[:limit], next_cursor
