"""Sync (API.md §7): the changes after a token, moves between orgs, long-polls.

Sync serves the range (since, C] with C the committed counter read before the query
(server/feed/sequence.py). Tombstones (retraction, expiry, leaving the audience) are the same item
documents with `state: "deleted"`, kept TOMBSTONE_DAYS; older tokens answer 410 sync_token_expired
(`horizon`). An up-to-date token is answered from the process's position without touching the
database, and long-polls wake as soon as the counter moves, whichever process wrote. Woken polls
share one read of what changed (`_window`) and bring each member's cached unread set forward from
it, so a thousand parked polls cost a few queries, not thousands.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass

from pymongo import ASCENDING

from server.context import Context
from server.errors import invalid
from server.feed.reading import (
    _by_seq,
    _cached_unread,
    _read_ids,
    _remember_unread,
    _sees,
    _union,
    addressed,
    item_out,
)
from server.feed.sequence import _current, _load_counter, state
from server.feed.store import ITEMS, READS, REMOVALS
from server.feed.tokens import Token, _expired, _void, decode_token, encode_token
from server.scope import Principal

MAX_LIMIT = 200
MAX_TIMEOUT = 30


@dataclass
class SyncResult:
    changes: list[dict]
    next_since: str
    has_more: bool
    unread_count: int

    def payload(self) -> dict:
        return {"changes": self.changes, "next_since": self.next_since, "has_more": self.has_more,
                "unread_count": self.unread_count}

    def etag(self) -> str:
        digest = hashlib.sha1(f"{self.next_since}|{self.unread_count}".encode()).hexdigest()[:20]
        return f'W/"s{digest}"'


async def _moved(ctx: Context, principal: Principal, token: Token) -> Token:
    """The member changed org since the token: first delete what they no longer see (paged, `d`/`k`),
    then deliver what they now see (`x`), then carry on."""
    if token.x is not None or token.d is not None:
        raise _expired()  # moved in the middle of a snapshot or of another move: start again
    from server import orgs  # noqa: PLC0415 (orgs imports nothing of ours; keep the import local)

    old_org = await orgs.get(ctx, token.o)
    old_path = orgs.full_path(old_org) if old_org else [token.o]
    dropped = [o for o in old_path if o not in principal.org_path] or None
    gained = [o for o in principal.org_path if o not in old_path]
    if not gained:
        return Token(principal.member_id, principal.org_id, token.s, token.s, None, dropped)
    return Token(principal.member_id, principal.org_id, 0, token.s, gained, dropped)


async def _dropped_page(ctx: Context, principal: Principal, token: Token, limit: int) -> tuple[list[dict], Token]:
    """Deletes for the items of the orgs a move took away, at most `limit`, in _id order.

    The client may hold such an item if it was live at the token's position (seq <= b), or, if it
    changed after that, an earlier version; a tombstone at or below b it already had. Items are
    only ever re-stamped upwards, so one that moves from the first group to the second while we
    page is still found, and an id already passed is never sent again. An item such an org lost
    after b (its audience became a list of names) is found by its removal record: the member
    may still hold it, and no later change of it will reach them.
    """
    base = {"audience_org": {"$in": token.d}, "ever_live": True, "_id": {"$gt": token.k}}
    ids: set[str] = set()
    for extra in ({"state": "live", "seq": {"$lte": token.b}}, {"seq": {"$gt": token.b}}):  # no `$or`: a scan
        ids.update(d["_id"] for d in await ctx.db[ITEMS].find({**base, **extra}, {"_id": 1}).sort(
            "_id", ASCENDING).limit(limit + 1).to_list())
    lost: set[str] = set()
    for org in token.d:  # one equality query each (`$in` on the sparse index scans)
        lost.update(r["item_id"] for r in await ctx.db[REMOVALS].find(
            {"org_id": org, "seq": {"$gt": token.b}}, {"item_id": 1}).to_list() if r["item_id"] > token.k)
    if lost - ids:
        current = await _current_items(ctx, sorted(lost - ids))
        ids.update(i for i in lost - ids if _lost(principal, current.get(i))
                   and (current.get(i) or {}).get("audience_org") not in token.d)
    docs = sorted(ids)[: limit + 1]
    changes = [{"op": "delete", "id": i} for i in docs[:limit]]
    if len(docs) > limit:
        return changes, Token(token.m, token.o, token.s, token.b, token.x, token.d, docs[limit - 1])
    return changes, Token(token.m, token.o, token.s, token.b, token.x)


async def sync(ctx: Context, principal: Principal, since: str | None, limit: int) -> SyncResult:
    """One sync step (API.md §7). Never blocks; `sync_wait` adds the long-poll."""
    st = await _current(ctx)
    if since is None:
        token = Token(principal.member_id, principal.org_id, 0, st.latest, "*")
    else:
        token = decode_token(ctx, since)
        if token.m != principal.member_id:
            raise invalid("since", "This sync token belongs to another member.")
        if _void(st, token):
            # Perhaps issued by another process that saw a newer counter (or epoch) than ours: catch
            # up first. Still void: the history it describes was lost (module note).
            await _load_counter(ctx)
            if _void(st, token):
                raise _expired()
    latest = st.latest  # read before any query: every change <= latest is committed
    if token.b < st.horizon and token.x != "*":
        raise _expired()
    prefix: list[dict] = []
    if token.o != principal.org_id:
        token = await _moved(ctx, principal, token)
    if token.d is not None:
        prefix, token = await _dropped_page(ctx, principal, token, limit)
        if token.d is not None or len(prefix) >= limit:
            return SyncResult(prefix, encode_token(ctx, token), True, await _cached_unread(ctx, principal, latest))
    if token.x is None and token.s >= latest and not prefix:
        # The commonest request: nothing new. No query (the unread count is cached per counter value).
        return SyncResult([], encode_token(ctx, Token(token.m, token.o, latest, latest)), False,
                          await _cached_unread(ctx, principal, latest))
    room = limit - len(prefix)
    docs, upto = await _changed_items(ctx, principal, token, latest, room + 1)
    # audiences the member lost (only those after the token's base: earlier ones they never had), in the
    # same range: past `upto` an item not read yet could come first
    lost = await _lost_audiences(ctx, principal, max(token.s, token.b), upto, room + 1)
    merged = sorted([(d["seq"], d, None) for d in docs] + [(r["seq"], None, r) for r in lost],
                    key=lambda entry: entry[0])
    has_more = len(merged) > room
    merged = merged[:room]
    current = await _current_items(ctx, [r["item_id"] for _, _, r in merged if r is not None])
    live = [d for _, d, _ in merged if d is not None and d["state"] == "live" and _sees(principal, d)]
    read = await _read_ids(ctx, principal.member_id, [d["_id"] for d in live])
    changes = list(prefix)
    for _, d, removal in merged:
        if removal is not None:
            if _lost(principal, current.get(removal["item_id"])):
                changes.append({"op": "delete", "id": removal["item_id"]})
        elif d["state"] == "live" and _sees(principal, d):
            changes.append({"op": "upsert", "item": item_out(d, d["_id"] in read)})
        else:
            changes.append({"op": "delete", "id": d["_id"]})
    if has_more:
        nxt = Token(principal.member_id, principal.org_id, merged[-1][0], token.b, token.x)
    else:
        nxt = Token(principal.member_id, principal.org_id, latest, latest)
    return SyncResult(changes, encode_token(ctx, nxt), has_more, await _cached_unread(ctx, principal, latest))


def changed_queries(principal: Principal, token: Token, upto: int) -> list[dict]:
    """The queries for the member's items to send for the token up to `upto`, each walked in seq order
    on (audience, ever_live, seq) or (audience, state, seq) (server/feed/store.py).

    Plain: everything addressed to them that changed in (s, upto]. First snapshot ("*"): the live
    items up to it, plus whatever changed after the base b (tombstones included). After a move
    ([orgs]): the live items of the newly visible orgs, plus whatever changed after b. A union of
    `$or`-free equality queries (see `reading.addressed`); live implies ever_live.
    """
    window = {"$gt": token.s, "$lte": upto}
    queries = addressed(principal, [{"ever_live": True, "seq": {"$gt": max(token.s, token.b), "$lte": upto}}])
    if token.x == "*":
        queries += addressed(principal, [{"state": "live", "seq": window}])
    elif token.x:
        gained = [o for o in token.x if o in principal.org_path]
        queries += addressed(principal, [{"state": "live", "seq": window}], orgs=gained)
    return queries


FIRST_WINDOW = 2  # × the page: the first range of sequence numbers a sync page reads (then doubled)


async def _changed_items(ctx: Context, principal: Principal, token: Token, latest: int,
                         want: int) -> tuple[list[dict], int]:
    """The member's items to send for the token (`changed_queries`), in seq order, at most `want`, and
    the position up to which they are complete.

    Read in growing ranges of sequence numbers from the token on, until `want` are found or `latest`
    is reached: SecantusDB examines every document a query's bounds admit, whatever its limit, so an
    open range to `latest` would make each page of a long first sync cost all the pages after it.
    (On MongoDB the first range is nearly always enough.) The first `want` of the union are among the
    first `want` of its parts."""
    found: list[dict] = []
    start, span = token, FIRST_WINDOW * want
    while True:
        upto = min(latest, start.s + span)
        found += await _union(ctx, changed_queries(principal, start, upto), sort=[("seq", ASCENDING)],
                              key=_by_seq, want=want - len(found))
        if len(found) >= want or upto >= latest:
            return found[:want], upto
        start, span = Token(token.m, token.o, upto, token.b, token.x), span * 2


async def _lost_audiences(ctx: Context, principal: Principal, after: int, latest: int, want: int) -> list[dict]:
    """Removal records for the member (by name, or for an org of their path) in (after, latest]; one
    equality query each (an `$or` or an `$in` on the sparse index scans the collection)."""
    window = {"$gt": after, "$lte": latest}
    queries = [{"member_id": principal.member_id, "seq": window}]
    queries += [{"org_id": org, "seq": window} for org in principal.org_path]
    found: dict[str, dict] = {}
    for query in queries:
        found.update((r["_id"], r) for r in await ctx.db[REMOVALS].find(query).sort(
            "seq", ASCENDING).limit(want).to_list())
    return sorted(found.values(), key=_by_seq)[:want]


async def _current_items(ctx: Context, item_ids: list[str]) -> dict[str, dict]:
    if not item_ids:
        return {}
    return {d["_id"]: d async for d in ctx.db[ITEMS].find({"_id": {"$in": sorted(set(item_ids))}})}


def _lost(principal: Principal, item: dict | None) -> bool:
    """A removal means a delete unless the member is (again) in the item's audience: then the item's
    own change, which is later than the removal or on an earlier page, says what they should have."""
    return item is None or not _sees(principal, item)


# -- waking long-polls: one shared read of what changed ------------------------------------------

WINDOW_MAX = 2000  # at most this many sequence numbers in a shared window
WINDOW_READS_MAX = 50_000


@dataclass
class Window:
    """Everything that changed in (start, end]: the items, the audiences lost (with those items as
    they are now), the reads taken, and who has read those items."""

    items: list[dict]
    lost: list[dict]
    lost_items: dict[str, dict]
    reads: list[dict]
    readers: dict[str, set[str]]


async def _fetch_window(ctx: Context, start: int, end: int) -> Window | None:
    items = await ctx.db[ITEMS].find({"seq": {"$gt": start, "$lte": end}, "ever_live": True}).sort(
        "seq", ASCENDING).to_list()
    lost = await ctx.db[REMOVALS].find({"seq": {"$gt": start, "$lte": end}}).sort("seq", ASCENDING).to_list()
    lost_items = await _current_items(ctx, [r["item_id"] for r in lost])
    reads = await ctx.db[READS].find({"seq": {"$gt": start, "$lte": end}},
                                     {"member_id": 1, "item_id": 1}).to_list()
    readers: dict[str, set[str]] = {}
    if items:
        cursor = ctx.db[READS].find({"item_id": {"$in": [d["_id"] for d in items]}},
                                    {"member_id": 1, "item_id": 1}).limit(WINDOW_READS_MAX + 1)
        async for r in cursor:
            readers.setdefault(r["item_id"], set()).add(r["member_id"])
        if sum(len(v) for v in readers.values()) > WINDOW_READS_MAX:
            return None
    return Window(items, lost, lost_items, reads, readers)


async def _window(ctx: Context, start: int, end: int) -> Window | None:
    """The changes in (start, end], read once per process however many waiters need them."""
    if end - start > WINDOW_MAX:
        return None
    st = state(ctx)
    key = (start, end)
    future = st.windows.get(key)
    if future is None:
        if len(st.windows) > 16:
            st.windows.clear()
        future = st.windows[key] = asyncio.ensure_future(_fetch_window(ctx, start, end))
    try:
        return await asyncio.shield(future)
    except Exception:
        if st.windows.get(key) is future:
            st.windows.pop(key, None)  # a failed read is not kept for the next waiter
        raise


async def _sync_from_window(ctx: Context, principal: Principal, token: Token, limit: int) -> SyncResult | None:
    """A plain, up-to-date token woken by a change: answer from the shared window, no query of our own.

    None when this does not apply (snapshot or move in progress, too much changed, no unread
    state at the token's position); the caller then runs the ordinary `sync`.
    """
    st = state(ctx)
    latest = st.latest
    if (token.x is not None or token.d is not None or token.o != principal.org_id or token.b < st.horizon
            or latest <= token.s):
        return None
    cached = st.unread.get(principal.member_id)
    # the member's unread set as of the token (to bring forward), or already as of `latest` (another
    # of their devices was woken first)
    if cached is None or cached[1] != principal.org_id or cached[0] not in (token.s, latest):
        return None
    window = await _window(ctx, token.s, latest)
    if window is None:
        return None
    # the same selection as the sync query: items addressed to the member, audiences they lost
    mine = [(d["seq"], d, None) for d in window.items if _sees(principal, d)]
    mine += [(r["seq"], None, r) for r in window.lost
             if r.get("member_id") == principal.member_id or r.get("org_id") in principal.org_path]
    if len(mine) > limit:
        return None
    mine.sort(key=lambda entry: entry[0])
    unread = set(cached[2])
    changes = []
    for _, d, removal in mine:
        if removal is not None:
            if _lost(principal, window.lost_items.get(removal["item_id"])):
                unread.discard(removal["item_id"])
                changes.append({"op": "delete", "id": removal["item_id"]})
            continue
        unread.discard(d["_id"])
        if d["state"] == "live":
            read = principal.member_id in window.readers.get(d["_id"], ())
            changes.append({"op": "upsert", "item": item_out(d, read)})
            if not read:
                unread.add(d["_id"])
        else:
            changes.append({"op": "delete", "id": d["_id"]})
    unread.difference_update(r["item_id"] for r in window.reads if r["member_id"] == principal.member_id)
    if cached[0] == latest:
        unread = set(cached[2])  # already brought forward (the same window applied once)
    else:
        _remember_unread(st, principal, latest, frozenset(unread))
    nxt = Token(principal.member_id, principal.org_id, latest, latest)
    return SyncResult(changes, encode_token(ctx, nxt), False, len(unread))


async def sync_wait(ctx: Context, principal: Principal, since: str | None, limit: int,
                    timeout: float) -> SyncResult:
    """Sync, long-polling up to `timeout` seconds while nothing changed for this member."""
    result = await sync(ctx, principal, since, limit)
    if result.changes or result.has_more or timeout <= 0:
        return result
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    st = state(ctx)
    while not ctx.stopping.is_set():
        remaining = deadline - loop.time()
        if remaining <= 0:
            break
        token = decode_token(ctx, result.next_since)
        if _void(st, token):
            raise _expired()  # the counter went back (lost history) while we waited
        if st.latest <= token.s:
            event = st.changed
            try:
                await asyncio.wait_for(_first(event.wait(), ctx.stopping.wait()), remaining)
            except TimeoutError:
                break
        if st.latest <= token.s:
            continue
        # A change wakes every waiter of this process at once; a bounded number query at a time, so
        # a thousand parked polls do not exhaust the connection pool.
        async with st.wake_slots:
            shared = await _sync_from_window(ctx, principal, token, limit)
            result = shared or await sync(ctx, principal, result.next_since, limit)
        if result.changes or result.has_more:
            return result
    return result


async def _first(*aws) -> None:
    tasks = [asyncio.ensure_future(a) for a in aws]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()
