"""An activity's life: create (a draft), edit, publish, cancel (draft → published → cancelled).

Edits, publication and cancellation run in the activity's transaction (server/signups.py), so they
never interleave with sign-ups: a capacity change promotes from the waitlist or is refused on the
counts as they are, and cancelling tells exactly the members signed up at that moment.
"""

from __future__ import annotations

from pymongo.asynchronous.client_session import AsyncClientSession

from server import audit, files, orgs, programmes, qr, signups
from server.activities import notices, rules
from server.activities.checkin import close_out
from server.activities.store import COLLECTION
from server.activities.visibility import get_managed
from server.clock import to_ms
from server.context import Context
from server.ids import new_id
from server.scope import Principal

EDITABLE = ("programme", "title", "description", "location", "starts_at", "ends_at", "signup_opens_at",
            "signup_closes_at", "cancel_deadline", "capacity", "waitlist", "cover_file_id")


def _normalise(fields: dict) -> dict:
    out = dict(fields)
    for key in ("starts_at", "ends_at", "signup_opens_at", "signup_closes_at", "cancel_deadline"):
        if key in out:
            out[key] = to_ms(out[key])
    return out


async def create(ctx: Context, principal: Principal, body: dict) -> dict:
    org = await orgs.require_role(ctx, principal, body["org_id"], "organiser")
    await programmes.require_active(ctx, body["programme"])
    fields = _normalise({k: body.get(k) for k in EDITABLE})
    now = to_ms(ctx.now())
    act = {"_id": new_id(), **fields, "org_id": org["_id"], "org_path": orgs.full_path(org),
           "status": "draft", "listed": False, "confirmed_count": 0, "waitlist_count": 0, "waitlist_seq": 0,
           "qr_secret": qr.new_secret(), "created_at": now, "created_by": principal.member_id, "updated_at": now,
           "published_at": None, "cancelled_at": None, "closed_out": False}
    rules.require_times_in_order(act)
    if act["cover_file_id"]:
        await _attach_cover(ctx, principal, act)
    await ctx.db[COLLECTION].insert_one(act)
    return act


async def _attach_cover(ctx: Context, principal: Principal, act: dict,
                        txn: AsyncClientSession | None = None) -> None:
    """The cover image is a file (API.md §8) the organiser uploaded; members who see the activity may fetch it."""
    await files.detach(ctx, ref_kind="activity", ref_id=act["_id"], txn=txn)
    if act.get("cover_file_id"):
        await files.attach(ctx, principal, [act["cover_file_id"]], ref_kind="activity", ref_id=act["_id"],
                           txn=txn)


async def patch(ctx: Context, principal: Principal, activity_id: str, changes: dict) -> dict:
    """Partial update. A raised capacity promotes from the waitlist at once; one below the confirmed
    count is refused (409 capacity_below_confirmed)."""
    await get_managed(ctx, principal, activity_id)
    changes = _normalise({k: v for k, v in changes.items() if k in EDITABLE})
    if "programme" in changes:
        await programmes.require_active(ctx, changes["programme"])
    stored = {**changes, "closed_out": False} if "ends_at" in changes else changes

    async def work(txn: AsyncClientSession) -> tuple[dict, list[str]]:
        before = await ctx.db[COLLECTION].find_one({"_id": activity_id}, session=txn)
        rules.require_not_cancelled(before)
        rules.require_times_in_order({**before, **changes})
        act, promoted = await signups.change(ctx, txn, before, stored)
        if "ends_at" in changes:  # a moved end: no-shows are judged against the new one
            await ctx.db[signups.COLLECTION].update_many(
                {"activity_id": activity_id, "attendance": "no_show"}, {"$set": {"attendance": None}},
                session=txn)
        if "cover_file_id" in changes:
            await _attach_cover(ctx, principal, act, txn)
        if act["status"] == "published" and notices.FEED_FIELDS & changes.keys():
            await notices.publish_feed(ctx, act, txn)
        await notices.tell_promoted(ctx, txn, act, promoted)
        if act["status"] == "published" and changes.keys() & set(notices.MOVE_FIELDS):
            confirmed = [s["member_id"] for s in await ctx.db[signups.COLLECTION].find(
                {"activity_id": activity_id, "status": "confirmed"}, {"member_id": 1}, session=txn).to_list()]
            await notices.tell_moved(ctx, txn, before, act, [m for m in confirmed if m not in promoted])
        await audit.record(ctx, actor_id=principal.member_id, action="activity.update", target_kind="activity",
                           target_id=activity_id, org_path=act["org_path"],
                           details={"fields": sorted(changes), "promoted": promoted}, txn=txn)
        return act, promoted

    act, promoted = await signups.in_transaction(ctx, activity_id, work)
    if promoted or "ends_at" in changes:  # members confirmed (or an end moved) after the activity ended
        await close_out(ctx, act, again=True)
    return act


async def publish(ctx: Context, principal: Principal, activity_id: str) -> dict:
    """Draft → published, and the activity's item in the feed of its org subtree, in one transaction.
    Publishing twice answers the published activity."""
    await get_managed(ctx, principal, activity_id)

    async def work(txn: AsyncClientSession) -> dict:
        act = await ctx.db[COLLECTION].find_one({"_id": activity_id}, session=txn)
        rules.require_not_cancelled(act)
        if act["status"] == "published":
            return act
        now = to_ms(ctx.now())
        published = {"status": "published", "listed": True, "published_at": now, "updated_at": now}
        await ctx.db[COLLECTION].update_one({"_id": activity_id}, {"$set": published}, session=txn)
        act = {**act, **published}
        await notices.publish_feed(ctx, act, txn)
        return act

    return await signups.in_transaction(ctx, activity_id, work)


async def cancel(ctx: Context, principal: Principal, activity_id: str, reason: str) -> dict:
    """Cancel the activity; every member still signed up is told. Cancelling twice answers the cancelled
    activity."""
    await get_managed(ctx, principal, activity_id)

    async def work(txn: AsyncClientSession) -> dict:
        act = await ctx.db[COLLECTION].find_one({"_id": activity_id}, session=txn)
        if rules.cancelled(act):
            return act
        now = to_ms(ctx.now())
        signed_up = [s["member_id"] for s in await ctx.db[signups.COLLECTION].find(
            {"activity_id": activity_id, "status": {"$in": list(signups.ACTIVE)}}, {"member_id": 1},
            session=txn).to_list()]
        cancelling = {"status": "cancelled", "cancelled_at": now, "cancel_reason": reason, "updated_at": now}
        await signups.write_activity(ctx, txn, act, set_=cancelling)
        act = {**act, **cancelling}
        if act.get("published_at"):  # members saw it: their feed item now says it is cancelled
            await notices.publish_feed(ctx, act, txn)
        await notices.tell_cancelled(ctx, txn, act, signed_up)
        await audit.record(ctx, actor_id=principal.member_id, action="activity.cancel", target_kind="activity",
                           target_id=activity_id, org_path=act["org_path"],
                           details={"signed_up": len(signed_up)}, reason=reason or None, txn=txn)
        return act

    return await signups.in_transaction(ctx, activity_id, work)
