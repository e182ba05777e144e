"""What is kept and for how long (API.md §11, DESIGN.md "Privacy"): check-in locations are dropped after a
period, and an admin can anonymise a member who has left.

Locations. A study check-in keeps the member's location fix on their attendance record, and only when
the session asked for one (server/study/checkins.py; check-in events only note that one came, and
activity check-ins take none). The fix is evidence for a while, then no longer needed:
`drop_old_locations` removes it from records checked in more than `location_retention_days` ago
(BRANCHLINE_LOCATION_RETENTION_DAYS, default 90), leaving `location_dropped_at`. The record itself, its
status and times, is attendance and is kept, as are the audit entries. Each process runs the sweep every
`retention_sweep_seconds`; it is an indexed query (records that still hold a location, by check-in
time), so a sweep that finds nothing costs one index probe, and two processes sweeping at once do the
same idempotent update. The same sweep deletes the notification outbox's week-old dedupe keys, which
name members too (server/notifications/outbox.py `purge_dedupe`).

Anonymisation. A deactivated member's personal fields are wiped by an admin of their org: the name is
replaced, the phone removed (server.members.removed_phone), the WeChat identity unbound, sign-in
sessions revoked, the password and unused invites deleted. What branches report stays right, because
nothing they count is touched: attendance records, check-in events, self-study entries, sign-ups and
feedback keep their member id (now naming nobody), and gender, birth date and party status stay for
the statistics that group by them. Warnings, which keep the name as of their scan, take the new one. The audit
log keeps its entries (append-only; phones there are masked).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from pymongo import ASCENDING, IndexModel
from pymongo.errors import InvalidOperation, PyMongoError

from server import audit, identity, members
from server.context import Context
from server.db import indexes, on_commit, transaction, update_then_get
from server.errors import ApiError
from server.notifications import outbox
from server.scope import Principal
from server.study import rectification
from server.study.sessions import ATTENDANCE

log = logging.getLogger("branchline.retention")

ANONYMOUS_NAME = "已注销成员"

# Records that still hold a location (every fix has a latitude in -90..90; records without one have no
# key in this index's range), by check-in time: the sweep reads only what it will change.
indexes(ATTENDANCE, IndexModel([("location.lat", ASCENDING), ("checked_in_at", ASCENDING)]))
_HOLDS_LOCATION = {"$gte": -90.0, "$lte": 90.0}


async def drop_old_locations(ctx: Context) -> int:
    """Remove the location from attendance records checked in before the retention period; how many."""
    now = ctx.now()
    cutoff = now - timedelta(days=ctx.settings.location_retention_days)
    done = await ctx.db[ATTENDANCE].update_many(
        {"location.lat": _HOLDS_LOCATION, "checked_in_at": {"$lt": cutoff}},
        {"$unset": {"location": ""}, "$set": {"location_dropped_at": now}})
    return done.modified_count


def start(ctx: Context) -> None:
    """Start this process's retention sweep (once per application, inside the running loop)."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return
    state = ctx.state.setdefault("retention", {"sweeps": 0, "task": None})
    if state["task"] is None:
        state["task"] = loop.create_task(_sweep_forever(ctx, state))


async def _sweep_forever(ctx: Context, state: dict) -> None:
    while True:
        try:
            await drop_old_locations(ctx)
            await outbox.purge_dedupe(ctx)
            state["sweeps"] += 1
        except InvalidOperation:  # the client was closed: this application is gone
            return
        except PyMongoError as exc:
            log.warning("retention sweep failed: %s", exc)
        if not await ctx.idle(ctx.settings.retention_sweep_seconds):
            return


async def anonymise(ctx: Context, principal: Principal, member_id: str) -> dict:
    """Wipe a deactivated member's personal fields (admin of their org, holding every role they hold)."""
    doc = await members.get_to_manage(ctx, principal, member_id, "admin")
    if doc["active"]:
        raise ApiError(409, "member_active", "Deactivate the member before anonymising them.")
    if doc.get("anonymised_at") is not None:
        return doc

    async def work(txn) -> dict:
        now = ctx.now()
        new = await update_then_get(
            ctx.db[members.COLLECTION], {"_id": member_id, "active": False},
            {"$set": {"name": ANONYMOUS_NAME, "phone": members.removed_phone(member_id), "tags": [],
                      "password_hash": None, "anonymised_at": now, "updated_at": now}}, txn=txn)
        if new is None:  # reactivated meanwhile
            raise ApiError(409, "member_active", "Deactivate the member before anonymising them.")
        await ctx.db[identity.IDENTITIES].delete_many({"member_id": member_id}, session=txn)
        await ctx.db[members.INVITES].delete_many({"member_id": member_id}, session=txn)
        await identity.revoke_sessions(ctx, member_id, txn=txn)
        await rectification.rename_member(ctx, member_id, ANONYMOUS_NAME, txn=txn)
        await audit.record(ctx, actor_id=principal.member_id, action="member.anonymise", target_kind="member",
                           target_id=member_id, org_path=doc["org_path"],
                           before={"anonymised": False}, after={"anonymised": True},
                           details={"wiped": ["name", "phone", "tags", "password", "wechat", "invites",
                                              "sessions"]}, txn=txn)
        on_commit(txn, lambda: _forget(ctx, member_id))
        return new

    return await transaction(ctx, work)


async def _forget(ctx: Context, member_id: str) -> None:
    members.forget_principal(ctx, member_id)
