"""The Activity answer (API.md §6): an activity with its counts and the caller's own sign-up; one
activity, and the lists a caller sees."""

from __future__ import annotations

from typing import Any, get_args

from schemas.activities import ActivityStatus
from server import members, programmes, signups
from server.activities.checkin import attendance, close_out
from server.activities.rules import cancel_deadline
from server.activities.store import COLLECTION
from server.activities.visibility import get_visible, visible_branches
from server.context import Context
from server.errors import invalid
from server.pagination import Keyset, page
from server.scope import Principal


def activity_out(act: dict, my_signup: dict | None) -> dict:
    return {
        "id": act["_id"], "programme": act["programme"], "org_id": act["org_id"], "title": act["title"],
        "description": act["description"], "location": act.get("location"),
        "starts_at": act["starts_at"], "ends_at": act["ends_at"],
        "signup_opens_at": act["signup_opens_at"], "signup_closes_at": act["signup_closes_at"],
        "cancel_deadline": cancel_deadline(act),
        "capacity": act["capacity"], "waitlist": act["waitlist"], "cover_file_id": act.get("cover_file_id"),
        "status": act["status"], "confirmed_count": act["confirmed_count"], "waitlist_count": act["waitlist_count"],
        "my_signup": my_signup, "created_at": act["created_at"], "published_at": act.get("published_at"),
        "cancelled_at": act.get("cancelled_at"),
    }


async def _my_signup(ctx: Context, act: dict, signup: dict | None) -> dict | None:
    if signup is None:
        return None
    out: dict[str, Any] = {"status": signup["status"]}
    if signup["status"] == "waitlisted":
        out["position"] = await signups.position(ctx, signup)
    if signup.get("checked_in_at"):
        out["checked_in_at"] = signup["checked_in_at"]
    marked = attendance(act, signup, ctx.now())
    if marked:
        out["attendance"] = marked
    if signup.get("feedback_given"):
        out["feedback_given"] = True
    return out


async def present(ctx: Context, principal: Principal, act: dict) -> dict:
    """The Activity answer for `principal`: counts and the caller's own sign-up (API.md §6)."""
    signup = await ctx.db[signups.COLLECTION].find_one({"activity_id": act["_id"],
                                                        "member_id": principal.member_id})
    return activity_out(act, await _my_signup(ctx, act, signup))


async def get_one(ctx: Context, principal: Principal, activity_id: str) -> dict:
    act = await get_visible(ctx, principal, activity_id)
    await close_out(ctx, act)
    return await present(ctx, principal, act)


def list_query(principal: Principal, narrow: list[dict] | tuple[dict, ...] = ()) -> Keyset:
    """The activity list, newest first: the visible activities, narrowed by the list's filters."""
    return Keyset(visible_branches(principal), descending=True, narrow=tuple(narrow))


async def list_visible(ctx: Context, principal: Principal, *, programme: str | None, org_id: str | None,
                       eligible: bool, status: str | None, limit: int, cursor: str | None
                       ) -> tuple[list[dict], str | None]:
    clauses: list[dict] = []
    if programme:
        clauses.append({"programme": programme})
    if org_id:
        clauses.append({"org_id": org_id})
    if status:
        if status not in get_args(ActivityStatus):
            raise invalid("status", "status must be draft, published or cancelled.")
        clauses.append({"status": status})
    if eligible:
        member = await members.get(ctx, principal.member_id)
        await programmes.ensure_defaults(ctx)
        every = await ctx.db[programmes.COLLECTION].find({}).to_list()
        clauses.append(programmes.eligible_filter(every, member, ctx.settings.tz))
    items, next_cursor = await page(ctx.db[COLLECTION], list_query(principal, clauses), limit, cursor)
    for act in items:  # an activity that has ended gets its no-shows written on first sight
        await close_out(ctx, act)
    mine = {s["activity_id"]: s for s in await ctx.db[signups.COLLECTION].find(
        {"member_id": principal.member_id, "activity_id": {"$in": [a["_id"] for a in items]}}).to_list()}
    return [activity_out(a, await _my_signup(ctx, a, mine.get(a["_id"]))) for a in items], next_cursor
