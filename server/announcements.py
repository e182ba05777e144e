"""Announcements (API.md §7): organisers publish to an org subtree; members read and acknowledge.

The audience is the active members whose `org_path` contains the announcement's `org_id`. An
announcement, its file references and its feed item are written in one transaction (the feed
write takes the next sync sequence number inside it, see server/feed/sequence.py). Scheduled publication
and expiry need no writes here: visibility is computed from `publish_at`/`expires_at` against
`ctx.now()`, and the feed's background task turns them into sync changes on time.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, get_args

from pymongo import ASCENDING, DESCENDING, IndexModel

from schemas.announcements import AnnouncementStatus
from server import files, orgs
from server.clock import to_ms
from server.context import Context
from server.db import indexes, transaction
from server.errors import ApiError, forbidden, invalid, not_found
from server.feed import store as feed_store
from server.feed import writing as feed_writing
from server.ids import encode_cursor, new_id
from server.members import COLLECTION as MEMBERS
from server.pagination import Keyset, cursor_position, page
from server.scope import Principal

COLLECTION = "announcements"
REF_KIND = "announcement"
RECEIPTS_WHOLE = 1000  # unread members answered at once when no smaller `limit` is asked

indexes(COLLECTION, IndexModel([("org_path", ASCENDING), ("publish_at", ASCENDING)]),
        IndexModel([("org_path", ASCENDING), ("_id", DESCENDING)]))  # the organisers' list


def _missing() -> ApiError:
    return not_found("announcement_not_found", "announcement")


def item_id(announcement_id: str) -> str:
    return f"announcement:{announcement_id}"


def on_air(doc: dict, now: datetime) -> bool:
    return doc["publish_at"] <= now and (doc["expires_at"] is None or doc["expires_at"] > now)


def audience_filter(doc: dict) -> dict:
    """The members an announcement addresses now: the active members of its org's subtree."""
    return {"org_path": doc["org_id"], "active": True}


def in_audience(principal: Principal, doc: dict) -> bool:
    return doc["org_id"] in principal.org_path


def visible(principal: Principal, doc: dict | None, now: datetime) -> bool:
    """Organisers of the org see it always (scheduled, expired); the audience while it is on air."""
    if doc is None or doc["state"] != "active":
        return False
    return principal.organises(doc["org_path"]) or (in_audience(principal, doc) and on_air(doc, now))


async def may_see(ctx: Context, principal: Principal, announcement_id: str) -> bool:
    """The rule of GET /announcements/{id}, also deciding who may download its attachments."""
    return visible(principal, await ctx.db[COLLECTION].find_one({"_id": announcement_id}), ctx.now())


files.register_visibility(REF_KIND, may_see)


def _check_times(publish_at: datetime, expires_at: datetime | None, now: datetime) -> None:
    if expires_at is not None and expires_at <= max(publish_at, now):
        raise invalid("expires_at", "expires_at must be after publish_at and in the future.")


async def _receipt(ctx: Context, member_id: str, announcement_id: str) -> dict:
    doc = await ctx.db[feed_store.READS].find_one({"_id": f"{item_id(announcement_id)}|{member_id}"})
    return {"read": doc is not None, "acked": bool(doc and doc.get("acked_at"))}


async def announcement_out(ctx: Context, principal: Principal, doc: dict) -> dict:
    receipt = await _receipt(ctx, principal.member_id, doc["_id"])
    return {"id": doc["_id"], "org_id": doc["org_id"], "title": doc["title"], "body": doc["body"],
            "pinned": doc["pinned"], "must_read": doc["must_read"], "publish_at": doc["publish_at"],
            "expires_at": doc["expires_at"], "file_ids": doc["file_ids"], "version": doc["version"],
            "read": receipt["read"], "acked": receipt["acked"], "created_at": doc["created_at"],
            "updated_at": doc["updated_at"]}


async def _write(ctx: Context, principal: Principal, announcement_id: str,
                 build: Callable[[dict | None], dict]) -> dict:
    """Store the announcement, its file references and its feed item in one transaction.

    `build(current)` makes the new document from the current one (None when creating); it runs
    on a fresh read inside the transaction, so concurrent edits each apply and each add a version.
    """

    async def work(txn) -> dict:
        coll = ctx.db[COLLECTION]
        current = await coll.find_one({"_id": announcement_id}, session=txn)
        if current is not None and current["state"] != "active":
            raise _missing()
        doc = build(current)
        if current is None:
            await coll.insert_one(doc, session=txn)
        else:
            await coll.replace_one({"_id": announcement_id}, doc, session=txn)
        if current is None or current["file_ids"] != doc["file_ids"]:
            await files.detach(ctx, ref_kind=REF_KIND, ref_id=announcement_id, txn=txn)
            await files.attach(ctx, principal, doc["file_ids"], ref_kind=REF_KIND, ref_id=announcement_id,
                               txn=txn)
        await feed_writing.publish_announcement(ctx, doc, txn=txn)
        return doc

    return await transaction(ctx, work)


async def create(ctx: Context, principal: Principal, body: dict) -> dict:
    org = await orgs.require_role(ctx, principal, body["org_id"], "organiser")
    now = to_ms(ctx.now())  # stored times are whole milliseconds (BSON); answer what is stored
    publish_at = to_ms(body.get("publish_at")) or now
    expires_at = to_ms(body.get("expires_at"))
    _check_times(publish_at, expires_at, now)
    new = {"_id": new_id(), "org_id": org["_id"], "org_path": orgs.full_path(org), "title": body["title"],
           "body": body["body"], "pinned": body.get("pinned", False), "must_read": body.get("must_read", False),
           "publish_at": publish_at, "expires_at": expires_at,
           "file_ids": list(dict.fromkeys(body.get("file_ids") or [])), "version": 1, "state": "active",
           "created_by": principal.member_id, "created_at": now, "updated_at": now,
           "updated_by": principal.member_id}
    return await _write(ctx, principal, new["_id"], lambda current: new)


async def get(ctx: Context, principal: Principal, announcement_id: str) -> dict:
    doc = await ctx.db[COLLECTION].find_one({"_id": announcement_id})
    if not visible(principal, doc, ctx.now()):
        raise _missing()
    return doc


STATUSES = get_args(AnnouncementStatus)


def status_of(doc: dict, now: datetime) -> str:
    if doc["state"] != "active":
        return "retracted"
    if doc["publish_at"] > now:
        return "scheduled"
    return "live" if on_air(doc, now) else "expired"


def _status_filter(status: str, now: datetime) -> dict:
    """The query for one of STATUSES, as `status_of` decides it."""
    if status == "retracted":
        return {"state": "retracted"}
    if status == "scheduled":
        return {"state": "active", "publish_at": {"$gt": now}}
    if status == "expired":
        return {"state": "active", "expires_at": {"$lte": now}}
    return {"state": "active", "publish_at": {"$lte": now},
            "$or": [{"expires_at": None}, {"expires_at": {"$gt": now}}]}


async def list_for_organiser(ctx: Context, principal: Principal, *, org_id: str | None, status: str | None,
                             limit: int, cursor: str | None) -> tuple[list[dict], str | None]:
    """The announcements of the orgs the caller organises (or of `org_id`'s subtree), newest first,
    whatever their status: the organisers' view; members learn of announcements through the feed."""
    await orgs.require_lister(ctx, principal, org_id, "organiser", "Listing announcements needs the organiser role.")
    if status is not None and status not in STATUSES:
        raise invalid("status", f"status must be one of {', '.join(STATUSES)}.")
    now = ctx.now()
    docs, next_cursor = await page(ctx.db[COLLECTION], list_query(principal, org_id, status, now), limit, cursor)
    return [summary_out(doc, now) for doc in docs], next_cursor


def list_query(principal: Principal, org_id: str | None, status: str | None, now: datetime) -> Keyset:
    """The organisers' list (index org_path, _id descending), newest first; a status narrows it."""
    return Keyset(tuple({"org_path": org} for org in principal.list_roots(org_id)), descending=True,
                  narrow=(_status_filter(status, now),) if status else ())


def summary_out(doc: dict, now: datetime) -> dict:
    return {"id": doc["_id"], "org_id": doc["org_id"], "title": doc["title"], "pinned": doc["pinned"],
            "must_read": doc["must_read"], "publish_at": doc["publish_at"], "expires_at": doc["expires_at"],
            "file_count": len(doc["file_ids"]), "version": doc["version"], "status": status_of(doc, now),
            "created_at": doc["created_at"], "updated_at": doc["updated_at"]}


async def get_managed(ctx: Context, principal: Principal, announcement_id: str) -> dict:
    """The announcement for one of its organisers: 404 out of sight, 403 for a member of its audience."""
    doc = await get(ctx, principal, announcement_id)
    principal.require_organiser(doc["org_path"], "announcement")
    return doc


async def patch(ctx: Context, principal: Principal, announcement_id: str, changes: dict[str, Any]) -> dict:
    """Edit; every edit is a new version (and a sync upsert with that version)."""
    await get_managed(ctx, principal, announcement_id)
    now = to_ms(ctx.now())
    changes = {k: to_ms(v) if k in ("publish_at", "expires_at") else v for k, v in changes.items()}

    def build(current: dict | None) -> dict:
        if current is None:
            raise _missing()
        doc = dict(current)
        for key in ("title", "body", "pinned", "must_read", "expires_at"):
            if key in changes:
                doc[key] = changes[key]
        if "publish_at" in changes:
            doc["publish_at"] = changes["publish_at"] or now
        if "file_ids" in changes:
            doc["file_ids"] = list(dict.fromkeys(changes["file_ids"]))
        if "publish_at" in changes or "expires_at" in changes:
            _check_times(doc["publish_at"], doc["expires_at"], now)
        doc.update(version=current["version"] + 1, updated_at=now, updated_by=principal.member_id)
        return doc

    return await _write(ctx, principal, announcement_id, build)


async def retract(ctx: Context, principal: Principal, announcement_id: str) -> None:
    """Withdraw it: gone for every member (a sync delete), its files no longer shared through it."""
    doc = await get_managed(ctx, principal, announcement_id)

    async def work(txn) -> None:
        result = await ctx.db[COLLECTION].update_one(
            {"_id": doc["_id"], "state": "active"},
            {"$set": {"state": "retracted", "updated_at": ctx.now(), "updated_by": principal.member_id}},
            session=txn)
        if result.matched_count == 0:
            raise _missing()
        await files.detach(ctx, ref_kind=REF_KIND, ref_id=doc["_id"], txn=txn)
        await feed_writing.retract_item(ctx, kind="announcement", ref_id=doc["_id"], txn=txn)

    await transaction(ctx, work)


async def _for_audience(ctx: Context, principal: Principal, announcement_id: str) -> dict:
    doc = await get(ctx, principal, announcement_id)
    if not in_audience(principal, doc):
        raise forbidden("Only members of the announcement's audience read or acknowledge it.")
    if not on_air(doc, ctx.now()):
        raise _missing()
    return doc


async def mark_read(ctx: Context, principal: Principal, announcement_id: str) -> None:
    doc = await _for_audience(ctx, principal, announcement_id)
    await feed_writing.mark_read(ctx, principal.member_id, item_id(doc["_id"]))


async def acknowledge(ctx: Context, principal: Principal, announcement_id: str) -> None:
    """Acknowledge (确认已阅): implies read."""
    doc = await _for_audience(ctx, principal, announcement_id)
    await feed_writing.mark_read(ctx, principal.member_id, item_id(doc["_id"]), ack=True)


async def receipts(ctx: Context, principal: Principal, announcement_id: str, limit: int = RECEIPTS_WHOLE,
                   cursor: str | None = None) -> dict:
    """Counts over the current audience (active members of the subtree) and who has not read it: at most
    `limit` of them in `_id` order after `cursor`, and `next_cursor` only when more remain (up to
    RECEIPTS_WHOLE unread members come whole, as before). One pass over the audience, keeping only
    the page."""
    doc = await get_managed(ctx, principal, announcement_id)
    after = cursor_position(cursor)
    marks = {d["member_id"]: d async for d in ctx.db[feed_store.READS].find(
        {"item_id": item_id(doc["_id"])}, {"member_id": 1, "acked_at": 1})}
    audience = read = acked = 0
    unread: list[dict] = []
    # on the (org_path, active, _id) index
    async for member in ctx.db[MEMBERS].find(audience_filter(doc), {"name": 1}).sort("_id", ASCENDING):
        audience += 1
        mark = marks.get(member["_id"])
        if mark is None:
            if (after is None or member["_id"] > after) and len(unread) <= limit:
                unread.append({"member_id": member["_id"], "name": member["name"]})
            continue
        read += 1
        acked += 1 if mark.get("acked_at") else 0
    out = {"audience": audience, "read": read, "acked": acked, "unread_members": unread[:limit]}
    if len(unread) > limit:  # only then: a whole list keeps the shape it always had
        out["next_cursor"] = encode_cursor(unread[limit - 1]["member_id"])
    return out
