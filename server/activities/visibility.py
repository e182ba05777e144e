"""Who sees an activity, and who manages it.

Members see published activities (and those published, then cancelled) of their org's ancestors or
subtree; organisers see every activity, drafts too, within the orgs they organise. Anything out of the
caller's scope answers 404 activity_not_found, never revealing that it exists; visible but not theirs
to manage answers 403 forbidden.
"""

from __future__ import annotations

from server import files
from server.activities.store import COLLECTION
from server.context import Context
from server.errors import ApiError
from server.scope import Principal


def activity_not_found() -> ApiError:
    return ApiError(404, "activity_not_found", "No such activity.")


def visible_branches(principal: Principal) -> tuple[dict, ...]:
    """What the caller sees (`sees`) as a union of equality filters, one per index (server/pagination.py):
    listed (published, or published then cancelled) activities of each ancestor org (org_id, listed, _id)
    and of the subtree (org_path, listed, _id), and every activity, drafts too, of each subtree the
    caller organises (org_path, _id)."""
    listed = [{"org_id": org, "listed": True} for org in principal.org_path]
    listed.append({"org_path": principal.org_id, "listed": True})
    return (*listed, *({"org_path": org} for org in principal.role_orgs()))


def sees(principal: Principal, act: dict) -> bool:
    """Whether the caller sees an activity already read: by `_id`, then this, because SecantusDB answers
    an `_id` beside an `$or` with a scan of the whole collection (about 1 s at 20,000 documents)."""
    if principal.organises(act["org_path"]):
        return True
    return bool(act.get("listed")) and (act["org_id"] in principal.org_path or principal.org_id in act["org_path"])


async def _find_visible(ctx: Context, principal: Principal, activity_id: str, projection=None) -> dict | None:
    if projection is not None:
        projection = {**projection, "org_id": 1, "org_path": 1, "listed": 1}
    act = await ctx.db[COLLECTION].find_one({"_id": activity_id}, projection)
    return act if act is not None and sees(principal, act) else None


async def get_visible(ctx: Context, principal: Principal, activity_id: str) -> dict:
    act = await _find_visible(ctx, principal, activity_id)
    if act is None:
        raise activity_not_found()
    return act


async def may_see(ctx: Context, principal: Principal, activity_id: str) -> bool:
    """The rule of GET /activities/{id}, also deciding who may download the activity's cover."""
    return await _find_visible(ctx, principal, activity_id, {"_id": 1}) is not None


files.register_visibility("activity", may_see)


async def get_managed(ctx: Context, principal: Principal, activity_id: str) -> dict:
    act = await get_visible(ctx, principal, activity_id)
    principal.require_organiser(act["org_path"], "activity")
    return act
