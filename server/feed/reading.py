"""Reading the feed: who sees an item, how it is rendered, unread counts and `/feed` pages.

Reading never puts `$or`, `$ne` or an open-ended range on a nullable field into a filter: SecantusDB
answers those with a walk of the whole collection (0.3-0.7 s at 20,000 items, measured), so
"addressed to the member" is one query per audience merged in Python (`addressed`, `_union`).
"""

from __future__ import annotations

import base64
import sys
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from pymongo import ASCENDING, DESCENDING

from server.context import Context
from server.errors import invalid
from server.feed.sequence import FeedState, state
from server.feed.store import ITEMS, READS, UNIX_EPOCH
from server.scope import Principal


def addressed(principal: Principal, extras: list[dict], orgs: list[str] | tuple[str, ...] | None = None) -> list[dict]:
    """The queries for items addressed to the member (their orgs' audiences, or them by name) that
    match one of `extras`: one per audience and alternative, each an equality on an index's leading
    keys (server/feed/store.py). `orgs`: only the audiences of those orgs, none by name.

    Never one `$or` or `$in`: SecantusDB answers a filter holding an `$or`, a `$ne`, or an `$in` next
    to a range with a scan of the whole collection (about 0.5 s at 20,000 items, growing), while these
    take a few milliseconds. The two kinds of audience never share an item."""
    audiences: list[dict] = [{"audience_org": org} for org in (principal.org_path if orgs is None else orgs)]
    if orgs is None:
        audiences.append({"members": principal.member_id})
    return [{**audience, **extra} for audience in audiences for extra in extras]


async def _union(ctx: Context, queries: list[dict], *, sort: list, key: Callable[[dict], Any],
                 want: int | None = None, reverse: bool = False, keep: Callable[[dict], bool] | None = None,
                 projection: dict | None = None) -> list[dict]:
    """The items of `queries` in `sort` order (`key`/`reverse` say the same in Python), at most `want`
    of those `keep` accepts: the first `want` of the union are among the first `want` of each query."""
    found: dict[str, dict] = {}
    for query in queries:
        cursor = ctx.db[ITEMS].find(query, projection).sort(sort)
        if want is not None:
            cursor = cursor.batch_size(want + 1)
        taken = 0
        try:
            async for doc in cursor:
                if keep is not None and not keep(doc):
                    continue
                found[doc["_id"]] = doc
                taken += 1
                if want is not None and taken >= want:
                    break
        finally:
            await cursor.close()
    docs = sorted(found.values(), key=key, reverse=reverse)
    return docs if want is None else docs[:want]


def _by_seq(doc: dict) -> int:
    return doc["seq"]


def _sees(principal: Principal, doc: dict) -> bool:
    return doc.get("audience_org") in principal.org_path or principal.member_id in doc.get("members", ())


def item_out(doc: dict, read: bool) -> dict:
    out = {"id": doc["_id"], "kind": doc["kind"], "ref_id": doc["ref_id"], "org_id": doc["org_id"],
           "title": doc["title"], "summary": doc["summary"], "pinned": doc["pinned"],
           "must_read": doc["must_read"], "published_at": doc["published_at"], "updated_at": doc["updated_at"],
           "version": doc["version"], "read": read, "expires_at": doc.get("expires_at")}
    if doc["kind"] == "notice":
        out["ref_kind"] = doc.get("ref_kind")
    return out


async def _read_ids(ctx: Context, member_id: str, item_ids: list[str]) -> set[str]:
    if not item_ids:
        return set()
    cursor = ctx.db[READS].find({"member_id": member_id, "item_id": {"$in": item_ids}}, {"item_id": 1})
    return {d["item_id"] async for d in cursor}


async def get_visible_item(ctx: Context, principal: Principal, item_id: str) -> dict | None:
    doc = await ctx.db[ITEMS].find_one({"_id": item_id, "state": {"$in": ["live", "scheduled"]}})
    if doc is None or not _sees(principal, doc) or not _on_air(doc, ctx.now()):
        return None
    return doc


def _on_air(doc: dict, now: datetime) -> bool:
    return doc["published_at"] <= now and (doc.get("expires_at") is None or doc["expires_at"] > now)


def _on_air_filters(now: datetime) -> list[dict]:
    """On the feed by time, not only by state: exact even before the scheduler has recorded the
    change (one alternative per state: an `$in` beside the range would scan). Expiry is checked in
    Python (`_not_expired`): a `$or` on it would scan the collection."""
    return [{"state": st, "published_at": {"$lte": now}} for st in ("live", "scheduled")]


def _not_expired(now: datetime) -> Callable[[dict], bool]:
    return lambda doc: doc.get("expires_at") is None or doc["expires_at"] > now


async def unread_ids(ctx: Context, principal: Principal) -> set[str]:
    """Items on the member's feed now that they have not read."""
    now = ctx.now()
    on_air = await _union(ctx, addressed(principal, _on_air_filters(now)), sort=[("_id", ASCENDING)],
                          key=lambda d: d["_id"], keep=_not_expired(now), projection={"_id": 1, "expires_at": 1})
    ids = [sys.intern(d["_id"]) for d in on_air]  # shared by every member's cached set (_remember_unread)
    if not ids:
        return set()
    read = {d["item_id"] async for d in ctx.db[READS].find(
        {"member_id": principal.member_id, "item_id": {"$in": ids}}, {"item_id": 1})}
    return set(ids) - read


async def unread_count(ctx: Context, principal: Principal) -> int:
    return len(await unread_ids(ctx, principal))


# The unread cache holds members × their unread items: bounded in members and in ids (about 50 MB at the
# bound, the ids being interned, so members share each id's string: docs/scaling.md).
UNREAD_CACHE_MEMBERS = 100_000
UNREAD_CACHE_IDS = 2_000_000


def _remember_unread(st: FeedState, principal: Principal, seq: int, unread: frozenset) -> None:
    old = st.unread.get(principal.member_id)
    st.unread_size += len(unread) - (len(old[2]) if old else 0)
    if len(st.unread) > UNREAD_CACHE_MEMBERS or st.unread_size > UNREAD_CACHE_IDS:
        st.unread.clear()
        st.unread_size = len(unread)
    st.unread[principal.member_id] = (seq, principal.org_id, unread)


async def _cached_unread(ctx: Context, principal: Principal, seq: int) -> int:
    """Unread count, cached per member for one counter value (every feed change or read moves it)."""
    st = state(ctx)
    hit = st.unread.get(principal.member_id)
    if hit is not None and hit[0] == seq and hit[1] == principal.org_id:
        return len(hit[2])
    unread = frozenset(await unread_ids(ctx, principal))
    _remember_unread(st, principal, seq, unread)
    return len(unread)


# -- GET /feed ------------------------------------------------------------------------------------


def _encode_before(phase: str, doc: dict | None) -> str:
    """A feed cursor: the phase ("p": pinned items, then the unpinned ones; "u": unpinned only) and
    the last item served in it, in whole milliseconds (what BSON stores) so it compares exactly;
    no item: from the top of that phase."""
    if doc is None:
        raw = f"{phase}||"
    else:
        millis = (doc["published_at"] - UNIX_EPOCH) // timedelta(milliseconds=1)
        raw = f"{phase}|{millis}|{doc['_id']}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_before(before: str) -> tuple[str, tuple[datetime, str] | None]:
    try:
        raw = base64.urlsafe_b64decode((before + "=" * (-len(before) % 4)).encode()).decode()
        parts = raw.split("|", 2)
        if len(parts) == 2:  # cursors issued before phases existed: unpinned items
            parts = ["u", *parts]
        phase, millis, item_id = parts
        if phase not in ("p", "u"):
            raise ValueError(phase)
        if not millis and not item_id:
            return phase, None
        # As we issue them: ASCII digits (a number too large for a datetime overflows below) and an
        # item id without control characters.
        if not (millis.isascii() and millis.isdigit() and item_id.isascii() and item_id.isprintable()):
            raise ValueError(before)
        return phase, (UNIX_EPOCH + timedelta(milliseconds=int(millis)), item_id)
    except (ValueError, UnicodeDecodeError, OverflowError):
        raise invalid("before", "Malformed cursor.") from None


def _after(position: tuple[datetime, str] | None) -> Callable[[dict], bool]:
    """Strictly after the cursor in (published_at, _id) descending order (the tie checked here)."""
    if position is None:
        return lambda doc: True
    stamp, item_id = position
    return lambda doc: doc["published_at"] < stamp or doc["_id"] < item_id


FEED_ORDER = [("published_at", DESCENDING), ("_id", DESCENDING)]


def feed_queries(principal: Principal, now: datetime, pinned: bool, position: tuple[datetime, str] | None
                 ) -> list[dict]:
    """One phase of a `/feed` page, walked in FEED_ORDER on (audience, state, pinned, published_at, _id)
    from the cursor's time down (the tie at that time is checked in Python, `_after`)."""
    on_air = _on_air_filters(now if position is None else min(now, position[0]))
    return addressed(principal, [{**alternative, "pinned": pinned} for alternative in on_air])


async def feed_page(ctx: Context, principal: Principal, limit: int, before: str | None) -> dict:
    """Newest first; pinned items first (all of them, over as many pages as they need), then the rest.

    Each page holds at most `limit` items and `next_before` continues exactly where it stopped, also
    when pinned items fill a page (the cursor carries the phase).
    """
    now = ctx.now()
    phase, position = ("p", None) if before is None else _decode_before(before)
    live = _not_expired(now)

    async def page(pinned: bool, position: tuple[datetime, str] | None, want: int) -> list[dict]:
        after = _after(position)
        return await _union(ctx, feed_queries(principal, now, pinned, position), sort=FEED_ORDER,
                            key=lambda d: (d["published_at"], d["_id"]), reverse=True, want=want,
                            keep=lambda d: live(d) and after(d))

    items: list[dict] = []
    next_before = None
    if phase == "p":
        pinned = await page(True, position, limit + 1)
        if len(pinned) > limit:
            items = pinned[:limit]
            next_before = _encode_before("p", items[-1])
        else:
            items, position = pinned, None
    if next_before is None:
        room = limit - len(items)
        rest = await page(False, position, room + 1 if room > 0 else 1)
        if room <= 0:  # pinned items filled the page: the unpinned ones start on the next
            next_before = _encode_before("u", None) if rest else None
        else:
            items.extend(rest[:room])
            next_before = _encode_before("u", rest[room - 1]) if len(rest) > room else None
    read = await _read_ids(ctx, principal.member_id, [d["_id"] for d in items])
    return {"items": [item_out(d, d["_id"] in read) for d in items], "next_before": next_before}
