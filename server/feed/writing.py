"""Writing the feed: publishing and retracting items, personal notices, and read marks.

Each write is one transaction that takes its sequence numbers inside it (server/feed/sequence.py),
the caller's when it passes `txn`. Who may call this side: the services that own what an item
shows (server/announcements.py, server/activities.py, server/study/sessions.py), notices from
server/notifications/outbox.py (every event of API.md §9 goes through it) and
server/study/rectification.py (the scan's reminders to members), handlers/feed.py for a member's read,
and server/feed/background.py for scheduled transitions. Nothing else writes `feed_*`.
"""

from __future__ import annotations

from datetime import datetime

from server.clock import to_ms
from server.context import Context
from server.errors import not_found
from server.feed.reading import get_visible_item
from server.feed.sequence import _in_transaction, _reserve
from server.feed.store import ITEMS, READS, REMOVALS
from server.ids import new_id
from server.scope import Principal

SUMMARY_LENGTH = 140


def _compute_state(published_at: datetime, expires_at: datetime | None, now: datetime) -> str:
    if expires_at is not None and expires_at <= now:
        return "deleted"
    if published_at > now:
        return "scheduled"
    return "live"


def _item_id(kind: str, ref_id: str) -> str:
    return f"{kind}:{ref_id}"


def summarise(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= SUMMARY_LENGTH else text[: SUMMARY_LENGTH - 1] + "…"


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


async def read_item(ctx: Context, principal: Principal, item_id: str) -> None:
    """The member marks an item of their feed read (idempotent); not_found for one that is not on it."""
    if await get_visible_item(ctx, principal, item_id) is None:
        raise not_found("not_found", "feed item")
    await mark_read(ctx, principal.member_id, item_id)
