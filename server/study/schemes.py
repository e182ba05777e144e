"""Study schemes as data (API.md §5): each org may store its own scheme; an org without one inherits
the nearest ancestor's, and the root falls back to the shipped default "四个五".

The default's numbers are an example: every organ sets its own from its own documents (PUT by an admin).
A scheme is a list of tracks; a track is met in a period when its count and minutes reach the minimums.
The default counts sessions attended and self-study entries, never minutes (every `min_minutes` is 0): the
2026 measures for government apps forbid study duration as an evaluation criterion. Minutes are still
logged and shown to the member as their own record; an admin who sets a minimum does so knowingly.
"""

from __future__ import annotations

from collections.abc import Iterable

from pymongo import ASCENDING, IndexModel

from server import audit, orgs
from server.context import Context
from server.db import indexes, transaction
from server.errors import invalid
from server.scope import Principal

COLLECTION = "study_schemes"  # _id = org id; org_path = the org's ancestors and itself

indexes(COLLECTION, IndexModel([("org_path", ASCENDING)]))

DEFAULT_SCHEME = {
    "name": "四个五",
    "tracks": [
        {"key": "branch_assembly", "name": "支部党员大会", "kind": "session", "period": "quarter",
         "min_count": 1, "min_minutes": 0},
        {"key": "group_meeting", "name": "党小组会", "kind": "session", "period": "month",
         "min_count": 1, "min_minutes": 0},
        {"key": "party_lecture", "name": "党课", "kind": "session", "period": "year",
         "min_count": 4, "min_minutes": 0},
        {"key": "self_study", "name": "个人自学", "kind": "self_study", "period": "month",
         "min_count": 5, "min_minutes": 0},
    ],
}


def scheme_out(org_id: str, scheme: dict) -> dict:
    return {"org_id": org_id, "name": scheme["name"], "tracks": scheme["tracks"],
            "inherited_from": scheme.get("org_id"), "is_default": scheme.get("org_id") is None}


def nearest(path: Iterable[str], stored: dict[str, dict]) -> dict:
    """The scheme for an org whose path (ancestors, then itself) is `path`: the deepest stored one, else default."""
    for org_id in reversed(list(path)):
        if org_id in stored:
            return stored[org_id]
    return DEFAULT_SCHEME


async def stored_for(ctx: Context, org_ids: Iterable[str]) -> dict[str, dict]:
    ids = list(dict.fromkeys(org_ids))
    docs = await ctx.db[COLLECTION].find({"_id": {"$in": ids}}).to_list()
    return {d["_id"]: {"org_id": d["_id"], "name": d["name"], "tracks": d["tracks"]} for d in docs}


async def effective(ctx: Context, org_path: Iterable[str]) -> dict:
    path = list(org_path)
    return nearest(path, await stored_for(ctx, path))


async def for_subtree(ctx: Context, org: dict) -> dict[str, dict]:
    """Stored schemes that can apply within `org`'s subtree: its ancestors', its own, its descendants'."""
    ids = orgs.full_path(org)
    docs = await ctx.db[COLLECTION].find({"$or": [{"_id": {"$in": ids}}, {"org_path": org["_id"]}]}).to_list()
    return {d["_id"]: {"org_id": d["_id"], "name": d["name"], "tracks": d["tracks"]} for d in docs}


def track(scheme: dict, key: str) -> dict | None:
    return next((t for t in scheme["tracks"] if t["key"] == key), None)


async def get(ctx: Context, principal: Principal, org_id: str) -> dict:
    org = await orgs.get_visible(ctx, principal, org_id)
    return scheme_out(org["_id"], await effective(ctx, orgs.full_path(org)))


async def put(ctx: Context, principal: Principal, org_id: str, body: dict) -> dict:
    """Store the org's own scheme and its audit entry in one transaction (both or neither)."""
    org = await orgs.require_role(ctx, principal, org_id, "admin")
    keys = [t["key"] for t in body["tracks"]]
    if len(set(keys)) != len(keys):
        raise invalid("tracks", "Track keys must be unique.")

    async def work(txn) -> None:
        before = await ctx.db[COLLECTION].find_one({"_id": org["_id"]}, session=txn)
        doc = {"name": body["name"], "tracks": body["tracks"], "org_path": orgs.full_path(org),
               "updated_at": ctx.now(), "updated_by": principal.member_id}
        await ctx.db[COLLECTION].update_one({"_id": org["_id"]}, {"$set": doc}, upsert=True, session=txn)
        await audit.record(ctx, actor_id=principal.member_id, action="study.scheme.put", target_kind="org",
                           target_id=org["_id"], org_path=orgs.full_path(org), txn=txn,
                           before=before and {"name": before["name"], "tracks": before["tracks"]},
                           after={"name": body["name"], "tracks": body["tracks"]})

    await transaction(ctx, work)
    return scheme_out(org["_id"], {"org_id": org["_id"], "name": body["name"], "tracks": body["tracks"]})


async def delete(ctx: Context, principal: Principal, org_id: str) -> None:
    """Drop the org's own scheme so it inherits again; the delete and its audit entry are one transaction.
    (A read and delete_one, not find_one_and_delete: SecantusDB runs findAndModify as a collection scan.)"""
    org = await orgs.require_role(ctx, principal, org_id, "admin")

    async def work(txn) -> None:
        before = await ctx.db[COLLECTION].find_one({"_id": org["_id"]}, session=txn)
        if before is None:
            return
        await ctx.db[COLLECTION].delete_one({"_id": org["_id"]}, session=txn)
        await audit.record(ctx, actor_id=principal.member_id, action="study.scheme.delete", target_kind="org",
                           target_id=org["_id"], org_path=orgs.full_path(org), txn=txn,
                           before={"name": before["name"], "tracks": before["tracks"]})

    await transaction(ctx, work)
