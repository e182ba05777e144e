"""What the deliveries show: a member's own notifications, and an organiser's log of one ref's deliveries.

A delivery in `sending` (claimed, WeChat not answered yet) reads as `pending`: for the member and
the organiser it has not gone out yet. The organiser's scope is the org of the ref the deliveries
are about: `enqueue` is given it as `org_id` and keeps it on each delivery. A ref nothing was sent
about yet is looked up where refs live (REF_COLLECTIONS), so its organisers get an empty log; an
organiser outside the ref's org, or an id that names nothing, answers 404 without saying which.
"""

from __future__ import annotations

from server import announcements, orgs
from server.activities.store import COLLECTION as ACTIVITIES
from server.context import Context
from server.errors import invalid, not_found
from server.members import COLLECTION as MEMBERS
from server.notifications.events import EVENTS
from server.notifications.outbox import DELIVERIES, PENDING, SENDING
from server.pagination import Keyset, page
from server.scope import Principal
from server.study.attendance import REQUESTS
from server.study.rectification import COLLECTION as WARNINGS
from server.study.sessions import COLLECTION as SESSIONS

#: Where the refs of deliveries live (activities, study sessions, announcements, requests, warnings): each
#: document keeps its org's `org_path`.
REF_COLLECTIONS = (ACTIVITIES, SESSIONS, announcements.COLLECTION, REQUESTS, WARNINGS)


def _wechat(doc: dict) -> str:
    return PENDING if doc["wechat"] == SENDING else doc["wechat"]


def notification_out(doc: dict) -> dict:
    return {"id": doc["_id"], "event": doc["event"], "title": doc["title"], "summary": doc["summary"],
            "ref_kind": doc["ref_kind"], "ref_id": doc["ref_id"], "created_at": doc["created_at"],
            "wechat": _wechat(doc)}


def mine_query(principal: Principal) -> Keyset:
    """/me/notifications, newest first, on (member_id, _id)."""
    return Keyset(({"member_id": principal.member_id},), descending=True)


def ref_query(ref_id: str, event: str | None = None) -> Keyset:
    """One ref's delivery log (of one event), oldest first, on (ref_id[, event], _id)."""
    return Keyset(({"ref_id": ref_id, **({"event": event} if event else {})},))


async def mine(ctx: Context, principal: Principal, limit: int, cursor: str | None) -> tuple[list[dict], str | None]:
    """The member's own notifications, newest first."""
    docs, next_cursor = await page(ctx.db[DELIVERIES], mine_query(principal), limit, cursor)
    return [notification_out(d) for d in docs], next_cursor


async def _ref_org_path(ctx: Context, ref_id: str) -> list[str]:
    """The org path of the ref's org: from a delivery about it, else from the ref itself; [] for none."""
    first = await ctx.db[DELIVERIES].find_one({"ref_id": ref_id}, {"org_id": 1})
    if first is not None:
        org = await orgs.get(ctx, first["org_id"])
        return orgs.full_path(org) if org is not None else []
    for collection in REF_COLLECTIONS:
        ref = await ctx.db[collection].find_one({"_id": ref_id}, {"org_path": 1})
        if ref is not None:
            return ref.get("org_path") or []
    return []


async def for_ref(ctx: Context, principal: Principal, ref_id: str | None, event: str | None, limit: int,
                  cursor: str | None) -> tuple[list[dict], str | None]:
    """The deliveries about `ref_id` (of `event`), oldest first, for an organiser of the ref's org."""
    if ref_id is None:
        raise invalid("ref_id", "ref_id is required.")
    if event is not None and event not in EVENTS:
        raise invalid("event", f"{event!r} is not an event.")
    if not principal.organises(await _ref_org_path(ctx, ref_id)):
        raise not_found("not_found", "notifications of this ref")
    docs, next_cursor = await page(ctx.db[DELIVERIES], ref_query(ref_id, event), limit, cursor)
    names = {m["_id"]: m["name"] for m in await ctx.db[MEMBERS].find(
        {"_id": {"$in": list({d["member_id"] for d in docs})}}, {"name": 1}).to_list()}
    return [{"member_id": d["member_id"], "name": names.get(d["member_id"], ""), "event": d["event"],
             "wechat": _wechat(d), "attempts": d["attempts"], "last_error": d["last_error"],
             "at": d.get("sent_at") or d["created_at"]} for d in docs], next_cursor
