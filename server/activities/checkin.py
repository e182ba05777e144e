"""Who is present: the check-in QR token, a member checking in, and the no-shows once the activity ended.

Only confirmed members check in, within [starts_at − 30 min, ends_at], with a current QR token. After
the end, confirmed members who never checked in are no-shows: derived on every read (`attendance`), and
written once, lazily, on the first read of the ended activity (`close_out`).
"""

from __future__ import annotations

from datetime import datetime

from server import qr, signups
from server.activities import rules
from server.activities.store import COLLECTION
from server.activities.visibility import get_managed, get_visible
from server.clock import to_ms
from server.context import Context
from server.scope import Principal

QR_PURPOSE = "activity"


async def qr_token(ctx: Context, principal: Principal, activity_id: str) -> dict:
    act = await get_managed(ctx, principal, activity_id)
    rules.require_not_cancelled(act)
    return qr.shown(act["qr_secret"], QR_PURPOSE, activity_id, ctx.now(), ctx.settings.qr_link_prefix)


async def qr_image(ctx: Context, principal: Principal, activity_id: str, fmt: str) -> bytes:
    """The current token as a QR image for the projector: svg or png."""
    return qr.image(await qr_token(ctx, principal, activity_id), fmt)


async def check_in(ctx: Context, principal: Principal, activity_id: str, token: str) -> tuple[dict, bool]:
    """→ (the check-in, created?). Checking in twice answers the first check-in."""
    act = await get_visible(ctx, principal, activity_id)
    rules.require_not_cancelled(act)
    signup = await ctx.db[signups.COLLECTION].find_one({"activity_id": activity_id,
                                                        "member_id": principal.member_id})
    rules.require_confirmed(signup)
    if signup.get("checked_in_at"):
        return {"result": "already_checked_in", "status": "present", "checked_in_at": signup["checked_in_at"]}, False
    now = to_ms(ctx.now())
    rules.require_checkin_open(act, now)
    qr.verify(act["qr_secret"], QR_PURPOSE, activity_id, qr.scanned_token(token, ctx.settings.qr_link_prefix), now)
    done = await ctx.db[signups.COLLECTION].update_one(
        {"_id": signup["_id"], "status": "confirmed", "checked_in_at": None},
        {"$set": {"checked_in_at": now, "attendance": "present"}})
    if done.modified_count != 1:  # a concurrent scan won, or the place was just cancelled
        again = await ctx.db[signups.COLLECTION].find_one({"_id": signup["_id"]})
        if again.get("checked_in_at"):
            return {"result": "already_checked_in", "status": "present",
                    "checked_in_at": again["checked_in_at"]}, False
        raise rules.not_confirmed()
    return {"result": "ok", "status": "present", "checked_in_at": now}, True


def attendance(act: dict, signup: dict, now: datetime) -> str | None:
    """present once checked in; no_show for a confirmed member of a published activity that has ended
    without them; otherwise None. Derived on every read, so it holds before the lazy close-out has
    written it and for members promoted after it (the stored mark is the record, not the source)."""
    if signup.get("checked_in_at"):
        return "present"
    if signup["status"] == "confirmed" and act["status"] == "published" and now > act["ends_at"]:
        return "no_show"
    return None


async def close_out(ctx: Context, act: dict, *, again: bool = False) -> None:
    """After the end, mark confirmed members who never checked in as no-shows (once, lazily, on the first
    read of the ended activity; `again` after an edit that promoted members or moved the end)."""
    if (act.get("closed_out") and not again) or act["status"] != "published" or ctx.now() <= act["ends_at"]:
        return
    await ctx.db[signups.COLLECTION].update_many(
        {"activity_id": act["_id"], "status": "confirmed", "checked_in_at": None, "attendance": None},
        {"$set": {"attendance": "no_show"}})
    await ctx.db[COLLECTION].update_one({"_id": act["_id"]}, {"$set": {"closed_out": True}})
    act["closed_out"] = True
