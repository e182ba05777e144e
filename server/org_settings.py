"""An org's settings (API.md §11), inherited down the tree like the study scheme: an org without its own
value takes the nearest ancestor's, and the root falls back to DEFAULTS.

`member_warnings`: whether a warning scan opens warnings for single members behind their scheme. Off by
default: the rules on "指尖上的形式主义" forbid turning a study app into a tool for judging people, so the
shipped behaviour warns about branches (sessions not held), never about members, until an admin of the
org decides otherwise for their org.
"""

from __future__ import annotations

from collections.abc import Iterable

from pymongo import ASCENDING, IndexModel

from server import audit, orgs
from server.context import Context
from server.db import indexes, transaction
from server.scope import Principal

COLLECTION = "org_settings"  # _id = org id; org_path = the org's ancestors and itself

indexes(COLLECTION, IndexModel([("org_path", ASCENDING)]))

DEFAULTS = {"member_warnings": False}
FIELDS = tuple(DEFAULTS)


def _effective(path: Iterable[str], stored: dict[str, dict]) -> dict:
    """The value of each setting for an org whose path (ancestors, then itself) is `path`."""
    found = dict(DEFAULTS)
    for field in FIELDS:
        for org_id in reversed(list(path)):
            if field in stored.get(org_id, {}):
                found[field] = stored[org_id][field]
                break
    return found


def settings_out(org_id: str, stored: dict[str, dict], path: list[str]) -> dict:
    own = stored.get(org_id, {})
    return {"org_id": org_id, **_effective(path, stored), "own": {k: own[k] for k in FIELDS if k in own}}


async def _stored(ctx: Context, query: dict) -> dict[str, dict]:
    return {d["_id"]: d async for d in ctx.db[COLLECTION].find(query)}


async def get(ctx: Context, principal: Principal, org_id: str) -> dict:
    """The org's settings as they apply (any member who can see the org may read them)."""
    org = await orgs.get_visible(ctx, principal, org_id)
    path = orgs.full_path(org)
    return settings_out(org["_id"], await _stored(ctx, {"_id": {"$in": path}}), path)


async def put(ctx: Context, principal: Principal, org_id: str, changes: dict) -> dict:
    """Set the org's own values (admin of the org); the change and its audit entry are one transaction."""
    org = await orgs.require_role(ctx, principal, org_id, "admin")
    path = orgs.full_path(org)

    async def work(txn) -> None:
        before = await ctx.db[COLLECTION].find_one({"_id": org["_id"]}, session=txn) or {}
        await ctx.db[COLLECTION].update_one(
            {"_id": org["_id"]},
            {"$set": {**changes, "org_path": path, "updated_at": ctx.now(), "updated_by": principal.member_id}},
            upsert=True, session=txn)
        await audit.record(ctx, actor_id=principal.member_id, action="org.settings", target_kind="org",
                           target_id=org["_id"], org_path=path, before={k: before.get(k) for k in changes},
                           after=changes, txn=txn)

    await transaction(ctx, work)
    return await get(ctx, principal, org_id)


async def members_warned(ctx: Context, org: dict, member_paths: dict[str, list[str]]) -> set[str]:
    """Of the members given (id → org_path) within `org`'s subtree, those whose org has member warnings on."""
    path = orgs.full_path(org)
    stored = await _stored(ctx, {"$or": [{"_id": {"$in": path}}, {"org_path": org["_id"]}]})
    return {m for m, p in member_paths.items() if _effective(p, stored)["member_warnings"]}
