"""The personal feed: announcements, activities, study sessions and notices, and what sync reads.

One document per feed item in `feed_items`. Its audience is either an org subtree (`audience_org`:
a member sees it when that org is in their `org_path`) or an explicit list of `members`.
When a live item's audience shrinks, `feed_removals` records each member or org that lost it, with
its own sequence number, so they get exactly one delete (later edits of the item send them nothing).

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

Tombstones (retraction, expiry, leaving the audience) are the same item documents with
`state: "deleted"`, kept TOMBSTONE_DAYS; older tokens answer 410 sync_token_expired (`horizon`).
Scheduled publication and expiry are materialised by a per-process background task whose
transition is a conditional update inside the same kind of transaction, so two processes never
record one transition twice. Each process polls the counter every POLL_SECONDS and keeps the
latest value in memory (`FeedState.latest`): an up-to-date sync token is answered without touching
the database, and long-polls wake as soon as the counter moves, whichever process wrote. A write
in this process moves it at once: `_reserve` registers an on-commit hook with the transaction
(server/db.py's unit of work), so it moves when the numbers are committed, never for an attempt
that was rolled back, and no caller has to remember to. Woken polls share one read of what
changed (`_window`) and bring each member's cached unread set forward from it, so a thousand
parked polls cost a few queries, not thousands.

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

Reading never puts `$or`, `$ne` or an open-ended range on a nullable field into a filter: SecantusDB
answers those with a walk of the whole collection (0.3-0.7 s at 20,000 items, measured), so
"addressed to the member" is one query per kind of audience merged in Python (`_addressed`).
Sync tokens are signed (`encode_token`): the org, positions and org lists in them decide whose
item ids a sync names, so a client cannot write its own.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument
from pymongo.errors import DuplicateKeyError, InvalidOperation, PyMongoError

from server.context import Context
from server.db import indexes, on_commit, transaction
from server.errors import ApiError, invalid, not_found
from server.ids import new_id
from server.scope import Principal

log = logging.getLogger("branchline.feeds")

ITEMS = "feed_items"
REMOVALS = "feed_removals"
READS = "feed_reads"
COUNTER = "feed_counter"

KINDS = ("announcement", "activity", "study_session", "notice")
TOMBSTONE_DAYS = 30
POLL_SECONDS = 0.25
SCHEDULE_SECONDS = 0.5
PURGE_EVERY_SECONDS = 300
# A horizon is published this long before the tombstones below it are deleted, so a reader that
# checked an older horizon has finished before they go.
PURGE_GRACE = timedelta(seconds=120)
SUMMARY_LENGTH = 140
MAX_LIMIT = 200
MAX_TIMEOUT = 30
WAKE_CONCURRENCY = 32

indexes(
    ITEMS,
    IndexModel([("audience_org", ASCENDING), ("seq", ASCENDING)]),
    IndexModel([("members", ASCENDING), ("seq", ASCENDING)]),
    IndexModel([("seq", ASCENDING)]),
    IndexModel([("kind", ASCENDING), ("ref_id", ASCENDING)]),
    IndexModel([("state", ASCENDING), ("published_at", ASCENDING)]),
    IndexModel([("state", ASCENDING), ("expires_at", ASCENDING)]),
    IndexModel([("state", ASCENDING), ("deleted_at", ASCENDING)]),
    IndexModel([("expires_at", ASCENDING)]),
)
indexes(REMOVALS, IndexModel([("member_id", ASCENDING), ("seq", ASCENDING)], sparse=True),
        IndexModel([("org_id", ASCENDING), ("seq", ASCENDING)], sparse=True), IndexModel([("seq", ASCENDING)]),
        IndexModel([("at", ASCENDING)]))
indexes(READS, IndexModel([("member_id", ASCENDING), ("item_id", ASCENDING)]),
        IndexModel([("item_id", ASCENDING)]), IndexModel([("seq", ASCENDING)]))


# -- per-process state ----------------------------------------------------------------------------


@dataclass
class FeedState:
    latest: int = 0  # highest committed seq known to this process
    epoch: str = ""  # the counter's epoch: a new one when the database lost history (module note)
    horizon: int = 0  # tokens below this are too old (tombstones purged)
    loaded: bool = False
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    unread: dict[str, tuple[int, str, frozenset]] = field(default_factory=dict)  # member → (seq, org, ids)
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


# -- writing: one transaction per change, the counter inside it ---------------------------------


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
    # upsert: a caller's transaction may have taken its snapshot before the counter existed
    doc = await ctx.db[COUNTER].find_one_and_update({"_id": "seq"}, {"$inc": {"value": n}}, upsert=True,
                                                    return_document=ReturnDocument.AFTER, session=txn)
    first = doc["value"] - n + 1
    epoch = doc.get("epoch", "")
    st = state(ctx)
    # No other commit of the counter can come between our read and our commit (it would conflict),
    # so the committed value we read, first - 1, is at least every value we saw committed: unless
    # history was lost. Then these numbers are reused ones: void every token (same transaction).
    if first - 1 < st.latest and epoch == st.epoch:
        log.warning("feed counter at %d below the committed %d seen: new epoch", first - 1, st.latest)
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


def _compute_state(published_at: datetime, expires_at: datetime | None, now: datetime) -> str:
    if expires_at is not None and expires_at <= now:
        return "deleted"
    if published_at > now:
        return "scheduled"
    return "live"


def to_ms(moment: datetime | None) -> datetime | None:
    """BSON keeps milliseconds: compare and store at that precision."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        raise ValueError("feed times must be timezone-aware")
    return moment.astimezone(UTC).replace(microsecond=moment.microsecond // 1000 * 1000)


def _item_id(kind: str, ref_id: str) -> str:
    return f"{kind}:{ref_id}"


def summarise(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= SUMMARY_LENGTH else text[: SUMMARY_LENGTH - 1] + "…"


_CONTENT = ("org_id", "title", "summary", "pinned", "must_read", "published_at", "expires_at",
            "audience_org", "members")


async def _upsert(ctx: Context, *, kind: str, ref_id: str, org_id: str, title: str, summary: str,
                  published_at: datetime, member_ids: list[str] | None, pinned: bool, must_read: bool,
                  expires_at: datetime | None, version: int | None, txn) -> None:
    if kind not in ("announcement", "activity", "study_session"):
        raise ValueError(f"publish_item kind must be announcement, activity or study_session, not {kind!r}")
    item_id = _item_id(kind, ref_id)
    published_at, expires_at = to_ms(published_at), to_ms(expires_at)
    members = sorted(set(member_ids)) if member_ids is not None else []
    audience_org = None if member_ids is not None else org_id
    wanted = {"org_id": org_id, "title": title, "summary": summarise(summary), "pinned": pinned,
              "must_read": must_read, "published_at": published_at, "expires_at": expires_at,
              "audience_org": audience_org, "members": members}

    async def work(txn) -> None:
        now = ctx.now()
        coll = ctx.db[ITEMS]
        old = await coll.find_one({"_id": item_id}, session=txn)
        new_state = _compute_state(published_at, expires_at, now)
        if old is not None:
            same = all(old.get(k) == v for k, v in wanted.items())
            if same and old["state"] == new_state and version in (None, old["version"]):
                return  # nothing has changed
        # Only a change to or from "live" is something a member can see. Editing an item nobody can
        # see (scheduled, expired, retracted) takes no sequence number, so nobody is sent a second
        # delete for it; its new content goes out when (if) it goes live.
        visible_change = new_state == "live" or (old is not None and old["state"] == "live")
        doc = {**wanted, "kind": kind, "ref_id": ref_id, "state": new_state, "updated_at": now,
               "ever_live": new_state == "live" or bool(old and old.get("ever_live"))}
        if new_state != "deleted":
            doc.update(deleted_at=None, deleted_reason=None)
        elif old is None or old["state"] != "deleted":
            doc.update(deleted_at=now, deleted_reason="expired")
        # Who had it and no longer will: each gets one delete, recorded with its own sequence number.
        was_live = old is not None and old["state"] == "live"
        lost_members = sorted(set(old.get("members", [])) - set(members)) if was_live else []
        lost_orgs = ([old["audience_org"]] if was_live and old.get("audience_org")
                     and old["audience_org"] != audience_org else [])
        removals = [{"member_id": m} for m in lost_members] + [{"org_id": o} for o in lost_orgs]
        seq = await _reserve(ctx, 1 + len(removals), txn) if visible_change else 0
        if visible_change:
            doc["seq"] = seq
        if removals:
            await ctx.db[REMOVALS].insert_many(
                [{"_id": new_id(), "item_id": item_id, "seq": seq + 1 + i, "at": now, **r}
                 for i, r in enumerate(removals)], session=txn)
        if old is None:
            doc.update(_id=item_id, version=version or 1, created_at=now, seq=seq,
                       deleted_at=doc.get("deleted_at"), deleted_reason=doc.get("deleted_reason"))
            await coll.insert_one(doc, session=txn)
            return
        doc["version"] = version if version is not None else old["version"] + 1
        await coll.update_one({"_id": item_id}, {"$set": doc}, session=txn)

    await _in_transaction(ctx, txn, work)


async def publish_item(ctx: Context, *, kind: str, ref_id: str, org_id: str, title: str, summary: str,
                       published_at, member_ids: list[str] | None = None, pinned: bool = False,
                       must_read: bool = False, expires_at=None, txn=None) -> None:
    """Create or update the feed item of an activity or study session (or announcement).

    Audience: active members of the org subtree (their `org_path` contains `org_id`), or exactly
    `member_ids` when given. A re-publish that changes anything bumps `version`; one that changes
    nothing records nothing. A `published_at` in the future makes it appear then.
    """
    await _upsert(ctx, kind=kind, ref_id=ref_id, org_id=org_id, title=title, summary=summary,
                  published_at=published_at, member_ids=member_ids, pinned=pinned, must_read=must_read,
                  expires_at=expires_at, version=None, txn=txn)


async def publish_announcement(ctx: Context, announcement: dict, *, txn=None) -> None:
    """The feed item of an announcement; its version is the announcement's own."""
    await _upsert(ctx, kind="announcement", ref_id=announcement["_id"], org_id=announcement["org_id"],
                  title=announcement["title"], summary=announcement["body"],
                  published_at=announcement["publish_at"], member_ids=None, pinned=announcement["pinned"],
                  must_read=announcement["must_read"], expires_at=announcement["expires_at"],
                  version=announcement["version"], txn=txn)


async def retract_item(ctx: Context, *, kind: str, ref_id: str, txn=None) -> None:
    """Delete the item(s) for `kind`/`ref_id` for everyone who had them (a tombstone each)."""

    async def work(txn) -> None:
        coll = ctx.db[ITEMS]
        # equality on the indexed keys only: SecantusDB scans the collection for `$ne`
        docs = [d for d in await coll.find({"kind": kind, "ref_id": ref_id}, {"state": 1}, session=txn).to_list()
                if d["state"] != "deleted"]
        if not docs:
            return
        now = ctx.now()
        gone = {"state": "deleted", "updated_at": now, "deleted_at": now, "deleted_reason": "retracted"}
        hidden = [d["_id"] for d in docs if d["state"] != "live"]  # members no longer have these
        if hidden:
            await coll.update_many({"_id": {"$in": hidden}}, {"$set": gone}, session=txn)
        live = sorted(d["_id"] for d in docs if d["state"] == "live")
        if not live:
            return
        first = await _reserve(ctx, len(live), txn)
        for offset, item_id in enumerate(live):
            await coll.update_one({"_id": item_id}, {"$set": {**gone, "seq": first + offset}}, session=txn)

    await _in_transaction(ctx, txn, work)


async def notify(ctx: Context, member_ids: list[str], *, title: str, summary: str, ref_kind: str, ref_id: str,
                 org_id: str, txn=None) -> None:
    """A personal notice in each member's feed (waitlist promotion, cancellation, decisions, warnings)."""
    members = list(dict.fromkeys(member_ids))
    if not members:
        return

    async def work(txn) -> None:
        first = await _reserve(ctx, len(members), txn)
        now = ctx.now()
        docs = [{"_id": new_id(), "kind": "notice", "ref_kind": ref_kind, "ref_id": ref_id, "org_id": org_id,
                 "audience_org": None, "members": [m],
                 "title": title, "summary": summarise(summary), "pinned": False, "must_read": False,
                 "published_at": now, "expires_at": None, "state": "live", "ever_live": True,
                 "seq": first + i, "version": 1, "created_at": now, "updated_at": now,
                 "deleted_at": None, "deleted_reason": None}
                for i, m in enumerate(members)]
        await ctx.db[ITEMS].insert_many(docs, session=txn)

    await _in_transaction(ctx, txn, work)


# -- reading: visibility, read marks, rendering -------------------------------------------------


async def _addressed(ctx: Context, principal: Principal, extra: dict, *, sort: list, key: Callable[[dict], Any],
                     want: int | None = None, reverse: bool = False, keep: Callable[[dict], bool] | None = None,
                     projection: dict | None = None, orgs: list[str] | None = None) -> list[dict]:
    """Items addressed to the member (their org subtree's, or them by name) that match `extra`, in
    `sort` order (`key`/`reverse` say the same in Python), at most `want` of those `keep` accepts.

    One query per kind of audience, merged here, never one `$or`: SecantusDB answers a filter
    holding any `$or` (or `$ne`) with a scan of the whole collection (about 0.5 s at 20,000 items,
    growing), while these equality/`$in` filters on indexed keys take a few milliseconds. The two
    audiences never share an item (an item has an org audience or a named one). `orgs`: only items
    of those orgs' audiences.
    """
    queries = [{"audience_org": {"$in": list(principal.org_path if orgs is None else orgs)}, **extra}]
    if orgs is None:
        queries.append({"members": principal.member_id, **extra})
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


def _read_key(item_id: str, member_id: str) -> str:
    return f"{item_id}|{member_id}"


async def mark_read(ctx: Context, member_id: str, item_id: str, *, ack: bool = False) -> None:
    """Record that the member read (and maybe acknowledged) an item; idempotent.

    The first read also takes a sequence number (stored on the read), so every process's cached
    unread counts (kept per counter value) are refreshed; the item itself does not change.
    """
    key = _read_key(item_id, member_id)
    existing = await ctx.db[READS].find_one({"_id": key})
    if existing is not None and (not ack or existing.get("acked_at")):
        return

    async def work(txn) -> None:
        now = ctx.now()
        current = await ctx.db[READS].find_one({"_id": key}, session=txn)
        if current is not None and (not ack or current.get("acked_at")):
            return
        if current is not None:  # an acknowledgement of something read: no unread count changes
            await ctx.db[READS].update_one({"_id": key}, {"$set": {"acked_at": now}}, session=txn)
            return
        seq = await _reserve(ctx, 1, txn)
        await ctx.db[READS].insert_one({"_id": key, "item_id": item_id, "member_id": member_id, "read_at": now,
                                        "acked_at": now if ack else None, "seq": seq}, session=txn)

    await _in_transaction(ctx, None, work)


async def get_visible_item(ctx: Context, principal: Principal, item_id: str) -> dict | None:
    doc = await ctx.db[ITEMS].find_one({"_id": item_id, "state": {"$in": ["live", "scheduled"]}})
    if doc is None or not _sees(principal, doc) or not _on_air(doc, ctx.now()):
        return None
    return doc


async def read_item(ctx: Context, principal: Principal, item_id: str) -> None:
    """The member marks an item of their feed read (idempotent); not_found for one that is not on it."""
    if await get_visible_item(ctx, principal, item_id) is None:
        raise not_found("not_found", "feed item")
    await mark_read(ctx, principal.member_id, item_id)


def _on_air(doc: dict, now: datetime) -> bool:
    return doc["published_at"] <= now and (doc.get("expires_at") is None or doc["expires_at"] > now)


def _on_air_filter(now: datetime) -> dict:
    """On the feed by time, not only by state: exact even before the scheduler has recorded the
    change. Expiry is checked in Python (`_not_expired`): a `$or` on it would scan the collection."""
    return {"state": {"$in": ["live", "scheduled"]}, "published_at": {"$lte": now}}


def _not_expired(now: datetime) -> Callable[[dict], bool]:
    return lambda doc: doc.get("expires_at") is None or doc["expires_at"] > now


async def unread_ids(ctx: Context, principal: Principal) -> set[str]:
    """Items on the member's feed now that they have not read."""
    now = ctx.now()
    ids = [d["_id"] for d in await _addressed(ctx, principal, _on_air_filter(now), sort=[("_id", ASCENDING)],
                                              key=lambda d: d["_id"], keep=_not_expired(now),
                                              projection={"_id": 1, "expires_at": 1})]
    if not ids:
        return set()
    read = {d["item_id"] async for d in ctx.db[READS].find(
        {"member_id": principal.member_id, "item_id": {"$in": ids}}, {"item_id": 1})}
    return set(ids) - read


async def unread_count(ctx: Context, principal: Principal) -> int:
    return len(await unread_ids(ctx, principal))


def _remember_unread(st: FeedState, principal: Principal, seq: int, unread: frozenset) -> None:
    if len(st.unread) > 100_000:
        st.unread.clear()
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
        millis = (doc["published_at"] - _EPOCH) // timedelta(milliseconds=1)
        raw = f"{phase}|{millis}|{doc['_id']}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


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
        return phase, (_EPOCH + timedelta(milliseconds=int(millis)), item_id)
    except (ValueError, UnicodeDecodeError, OverflowError):
        raise invalid("before", "Malformed cursor.") from None


def _after(position: tuple[datetime, str] | None) -> Callable[[dict], bool]:
    """Strictly after the cursor in (published_at, _id) descending order (the tie checked here)."""
    if position is None:
        return lambda doc: True
    stamp, item_id = position
    return lambda doc: doc["published_at"] < stamp or doc["_id"] < item_id


async def feed_page(ctx: Context, principal: Principal, limit: int, before: str | None) -> dict:
    """Newest first; pinned items first (all of them, over as many pages as they need), then the rest.

    Each page holds at most `limit` items and `next_before` continues exactly where it stopped, also
    when pinned items fill a page (the cursor carries the phase).
    """
    now = ctx.now()
    order = [("published_at", DESCENDING), ("_id", DESCENDING)]
    phase, position = ("p", None) if before is None else _decode_before(before)
    live = _not_expired(now)

    async def page(pinned: bool, position: tuple[datetime, str] | None, want: int) -> list[dict]:
        extra = _on_air_filter(now if position is None else min(now, position[0]))
        after = _after(position)
        return await _addressed(ctx, principal, {**extra, "pinned": pinned}, sort=order,
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


# -- GET /sync ------------------------------------------------------------------------------------


class Token(msgspec.Struct, array_like=True):
    m: str  # member
    o: str  # the member's org when issued (a move changes what they may see)
    s: int  # position: every change with seq <= s is delivered (or not due in this mode)
    b: int  # base: below it, only items in `x` still need delivering
    x: str | list[str] | None = None  # None: plain changes; "*": first snapshot; [orgs]: newly visible orgs
    d: list[str] | None = None  # after a move: orgs whose items still need a delete (before anything else)
    k: str = ""  # ... the last item id deleted so far (they go in _id order)
    e: str = ""  # the counter's epoch when issued (set by encode_token)


_token_encoder = msgspec.json.Encoder()
_token_decoder = msgspec.json.Decoder(Token)


def _token_key(ctx: Context) -> bytes:
    st = state(ctx)
    if st.token_key is None:
        secret = (ctx.settings.jwt_secret or "").encode()
        st.token_key = hashlib.sha256(b"branchline sync token\0" + secret).digest()
    return st.token_key


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode((text + "=" * (-len(text) % 4)).encode())


def encode_token(ctx: Context, token: Token) -> str:
    """The token, signed: its org, orgs to add or delete and positions decide which items' ids a
    sync names, so a client must not be able to write its own (every API process shares the key)."""
    body = _token_encoder.encode(msgspec.structs.replace(token, e=state(ctx).epoch))
    mac = hmac.new(_token_key(ctx), body, hashlib.sha256).digest()[:16]
    return f"{_b64(body)}.{_b64(mac)}"


def decode_token(ctx: Context, raw: str) -> Token:
    body_text, dot, mac_text = raw.partition(".")
    if not dot:  # unsigned, as tokens were issued before they were signed: sync again from scratch
        try:
            _token_decoder.decode(_unb64(body_text))
        except (ValueError, msgspec.DecodeError):
            raise invalid("since", "Malformed sync token.") from None
        raise _expired()
    try:
        body = _unb64(body_text)
        if not hmac.compare_digest(_unb64(mac_text), hmac.new(_token_key(ctx), body, hashlib.sha256).digest()[:16]):
            raise ValueError("bad signature")
        token = _token_decoder.decode(body)
    except (ValueError, msgspec.DecodeError):
        raise invalid("since", "Malformed sync token.") from None
    if token.s < 0 or token.b < 0:
        raise invalid("since", "Malformed sync token.")
    return token


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


def _expired() -> ApiError:
    return ApiError(410, "sync_token_expired", "This sync token is too old; sync again without `since`.")


async def _current(ctx: Context) -> FeedState:
    st = state(ctx)
    if not st.loaded:
        await _load_counter(ctx)
    return st


def _void(st: FeedState, token: Token) -> bool:
    """Issued in another epoch, or beyond the committed counter: it describes lost history."""
    return token.e != st.epoch or max(token.s, token.b) > st.latest


async def _load_counter(ctx: Context) -> None:
    st = state(ctx)
    doc = await ctx.db[COUNTER].find_one({"_id": "seq"})
    if doc is not None and doc.get("epoch", "") == st.epoch and doc["value"] < st.latest:
        log.warning("feed counter at %d below the committed %d seen: new epoch", doc["value"], st.latest)
        await _new_epoch(ctx, st.epoch)
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
    docs = await _changed_items(ctx, principal, token, latest, room + 1)
    # audiences the member lost (only those after the token's base: earlier ones they never had)
    lost = await _lost_audiences(ctx, principal, max(token.s, token.b), latest, room + 1)
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


async def _changed_items(ctx: Context, principal: Principal, token: Token, latest: int, want: int) -> list[dict]:
    """The member's items to send for the token, in seq order, at most `want`.

    Plain: everything addressed to them that changed in (s, latest]. First snapshot ("*"): the
    live items up to latest, plus whatever changed after the base b (tombstones included). After a
    move ([orgs]): the live items of the newly visible orgs, plus whatever changed after b. Written
    as a union of `$or`-free queries (see `_addressed`), each limited to `want`: the first `want`
    of the union are among the first `want` of its parts.
    """
    window = {"$gt": token.s, "$lte": latest}
    after_base = {"seq": {"$gt": max(token.s, token.b), "$lte": latest}, "ever_live": True}
    found: dict[str, dict] = {}
    parts: list[tuple[dict, list[str] | None]] = [(after_base, None)]
    if token.x == "*":
        parts.append(({"seq": window, "ever_live": True, "state": "live"}, None))
    elif token.x:
        gained = [o for o in token.x if o in principal.org_path]
        parts.append(({"seq": window, "ever_live": True, "state": "live"}, gained))
    for extra, orgs in parts:
        for doc in await _addressed(ctx, principal, extra, sort=[("seq", ASCENDING)], key=_by_seq, want=want,
                                    orgs=orgs):
            found[doc["_id"]] = doc
    return sorted(found.values(), key=_by_seq)[:want]


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


# -- background: counter watcher, scheduled publication and expiry, tombstone purge ------------


def start(ctx: Context) -> None:
    """Start this process's feed tasks (called once per application, inside the running loop)."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return
    st = state(ctx)
    if st.tasks:
        return
    st.tasks = [loop.create_task(_poll_counter(ctx)), loop.create_task(_materialise(ctx))]


async def _sleep(ctx: Context, seconds: float) -> bool:
    """Sleep unless the process is stopping; False when it is."""
    try:
        await asyncio.wait_for(ctx.stopping.wait(), seconds)
        return False
    except TimeoutError:
        return True


async def _poll_counter(ctx: Context) -> None:
    try:
        await _ensure_counter(ctx)
    except InvalidOperation:
        return
    except PyMongoError as exc:
        log.warning("feed counter set-up failed: %s", exc)
    while await _sleep(ctx, POLL_SECONDS):
        try:
            await _load_counter(ctx)
        except InvalidOperation:  # the client was closed: this application is gone
            return
        except PyMongoError as exc:
            log.warning("feed counter poll failed: %s", exc)
            await _sleep(ctx, 1)


async def _materialise(ctx: Context) -> None:
    last_purge = None
    while await _sleep(ctx, SCHEDULE_SECONDS):
        try:
            await materialise_due(ctx)
            now = ctx.now()
            if last_purge is None or (now - last_purge).total_seconds() >= PURGE_EVERY_SECONDS:
                last_purge = now
                await purge_tombstones(ctx)
        except InvalidOperation:
            return
        except PyMongoError as exc:
            log.warning("feed scheduler failed: %s", exc)
            await _sleep(ctx, 1)


EXPIRY_MARGIN = timedelta(minutes=5)


async def materialise_due(ctx: Context) -> int:
    """Publish scheduled items whose time came and delete expired ones; each transition once.

    Two queries that use an index each, never one `$or` (SecantusDB would scan the collection
    every half second in every process). Scheduled items are few: the `state` prefix finds them.
    Expiry looks at the `expires_at` index from shortly before the last moment this process
    checked (a live item's expiry is always in the future when written, so none can appear
    earlier); the first check after start looks at every expired item once.
    """
    now = ctx.now()
    coll = ctx.db[ITEMS]
    st = state(ctx)
    due = await coll.find({"state": "scheduled", "published_at": {"$lte": now}}, {"_id": 1}).limit(200).to_list()
    # always a lower bound: without one SecantusDB walks every item without an expiry (null) too
    expiring: dict[str, Any] = {"$lte": now, "$gte": _EPOCH}
    if st.expiry_checked is not None:
        expiring = {"$lte": now, "$gt": st.expiry_checked - EXPIRY_MARGIN}
    expired = [d for d in await coll.find({"expires_at": expiring}, {"_id": 1, "state": 1}).to_list()
               if d["state"] == "live"]
    due += expired[:200]
    done = 0
    for d in due:
        item_id = d["_id"]

        async def work(txn, item_id=item_id) -> None:
            doc = await coll.find_one({"_id": item_id}, session=txn)
            if doc is None or doc["state"] == "deleted":
                return
            new_state = _compute_state(doc["published_at"], doc.get("expires_at"), ctx.now())
            if new_state == doc["state"]:
                return  # another process did it first
            now2 = ctx.now()
            update = {"state": new_state, "updated_at": now2}
            if new_state == "live":
                update["ever_live"] = True
            else:
                update.update(deleted_at=now2, deleted_reason="expired")
            # scheduled -> deleted (expired before it was published) is invisible: no sequence number
            seq = await _reserve(ctx, 1, txn) if "live" in (new_state, doc["state"]) else 0
            if seq:
                update["seq"] = seq
            await coll.update_one({"_id": item_id, "state": doc["state"]}, {"$set": update}, session=txn)

        await _in_transaction(ctx, None, work)
        done += 1
    if len(expired) <= 200:
        st.expiry_checked = now  # not before all of them were materialised (an error leaves it)
    return done


async def purge_tombstones(ctx: Context) -> None:
    """Forget tombstones older than TOMBSTONE_DAYS: first publish the horizon, later delete below it."""
    now = ctx.now()
    cutoff = now - timedelta(days=TOMBSTONE_DAYS)
    counter = await ctx.db[COUNTER].find_one({"_id": "seq"})
    if counter is None:
        return
    horizon, horizon_at = counter.get("horizon", 0), counter.get("horizon_at")
    if horizon and horizon_at is not None and now - horizon_at >= PURGE_GRACE:
        await ctx.db[ITEMS].delete_many({"state": "deleted", "seq": {"$lte": horizon},
                                         "deleted_at": {"$lt": cutoff}})
        await ctx.db[REMOVALS].delete_many({"seq": {"$lte": horizon}, "at": {"$lt": cutoff}})
    old_items = await ctx.db[ITEMS].find({"state": "deleted", "deleted_at": {"$lt": cutoff}},
                                         {"seq": 1}).sort("seq", DESCENDING).limit(1).to_list()
    old_removals = await ctx.db[REMOVALS].find({"at": {"$lt": cutoff}}, {"seq": 1}).sort(
        "seq", DESCENDING).limit(1).to_list()
    newest = max([d["seq"] for d in old_items + old_removals], default=0)
    if newest > horizon:
        await ctx.db[COUNTER].update_one({"_id": "seq"},
                                         {"$max": {"horizon": newest}, "$set": {"horizon_at": now}})
