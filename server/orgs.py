"""The organisation tree. Each org stores `path`: its ancestor ids, root first."""

from __future__ import annotations

from pymongo import ASCENDING, IndexModel

from server.context import Context
from server.db import indexes
from server.errors import ApiError, forbidden, not_found
from server.ids import new_id
from server.pagination import page
from server.scope import Principal

COLLECTION = "orgs"

indexes(COLLECTION, IndexModel([("parent_id", ASCENDING)]), IndexModel([("path", ASCENDING)]))

# A child sits below its parent: committee > general_branch > branch > group (committees may nest).
KIND_RANK = {"committee": 0, "general_branch": 1, "branch": 2, "group": 3}


def full_path(org: dict) -> list[str]:
    """The org's ancestors and the org itself: what a member of it stores as `org_path`."""
    return [*org["path"], org["_id"]]


def org_out(org: dict) -> dict:
    return {"id": org["_id"], "name": org["name"], "kind": org["kind"],
            "parent_id": org["parent_id"], "path": org["path"]}


async def get(ctx: Context, org_id: str) -> dict | None:
    return await ctx.db[COLLECTION].find_one({"_id": org_id})


async def name(ctx: Context, org_id: str, *, txn=None) -> str:
    """The org's name ("" for one that is gone), as notifications show it."""
    org = await ctx.db[COLLECTION].find_one({"_id": org_id}, {"name": 1}, session=txn)
    return org["name"] if org else ""


async def visibility_filter(ctx: Context, principal: Principal) -> dict:
    """Orgs the caller may see: the ancestors and subtree of their own org and of each org they hold a role on."""
    roots = list(dict.fromkeys([principal.org_id, *principal.role_orgs()]))
    ancestors = set(principal.org_path)
    role_orgs = [r for r in roots if r != principal.org_id]
    if role_orgs:
        async for org in ctx.db[COLLECTION].find({"_id": {"$in": role_orgs}}, {"path": 1}):
            ancestors.update(org["path"])
    return {"$or": [{"_id": {"$in": sorted(ancestors | set(roots))}}, {"path": {"$in": roots}}]}


async def get_visible(ctx: Context, principal: Principal, org_id: str) -> dict:
    """The org if the caller may see it; otherwise 404 without revealing whether it exists."""
    query = {"$and": [{"_id": org_id}, await visibility_filter(ctx, principal)]}
    org = await ctx.db[COLLECTION].find_one(query)
    if org is None:
        raise not_found("not_found", "organisation")
    return org


async def require_role(ctx: Context, principal: Principal, org_id: str, minimum: str) -> dict:
    """The org if the caller holds `minimum` on it (or above it): 404 when invisible, 403 when visible only."""
    org = await get_visible(ctx, principal, org_id)
    if not principal.holds(minimum, full_path(org)):
        raise forbidden(f"This needs the {minimum} role on this organisation.")
    return org


async def require_lister(ctx: Context, principal: Principal, org_id: str | None, minimum: str, refusal: str) -> None:
    """May the caller read a list over org subtrees: `minimum` on `org_id` when one is asked for (404 when
    invisible, 403 when visible only), else `minimum` somewhere (403 `refusal`)."""
    if org_id is not None:
        await require_role(ctx, principal, org_id, minimum)
    elif not principal.role_orgs(minimum):
        raise forbidden(refusal)


async def create(ctx: Context, principal: Principal, name: str, kind: str, parent_id: str) -> dict:
    parent = await require_role(ctx, principal, parent_id, "admin")
    parent_rank, rank = KIND_RANK[parent["kind"]], KIND_RANK[kind]
    if rank < parent_rank or (rank == parent_rank and kind != "committee"):
        raise ApiError(422, "invalid_request", f"A {kind} cannot sit under a {parent['kind']}.",
                       errors=[{"field": "kind", "message": f"not allowed under a {parent['kind']}"}])
    org = {"_id": new_id(), "name": name, "kind": kind, "parent_id": parent["_id"],
           "path": full_path(parent), "created_at": ctx.now(), "created_by": principal.member_id}
    await ctx.db[COLLECTION].insert_one(org)
    return org


async def list_visible(ctx: Context, principal: Principal, parent_id: str | None,
                       limit: int, cursor: str | None) -> tuple[list[dict], str | None]:
    query = await visibility_filter(ctx, principal)
    if parent_id is not None:
        query = {"$and": [query, {"parent_id": parent_id}]}
    return await page(ctx.db[COLLECTION], query, limit, cursor)


async def create_root(ctx: Context, name: str) -> dict:
    org = {"_id": new_id(), "name": name, "kind": "committee", "parent_id": None, "path": [],
           "created_at": ctx.now(), "created_by": None}
    await ctx.db[COLLECTION].insert_one(org)
    return org


async def require_root_admin(ctx: Context, principal: Principal, what: str) -> None:
    """403 unless the caller is an admin of the root org: for what the whole tree shares (`what` says it)."""
    admin_orgs = principal.role_orgs("admin")
    if not admin_orgs:
        raise forbidden(f"Editing {what} needs the admin role.")
    root = await ctx.db[COLLECTION].find_one({"_id": {"$in": admin_orgs}, "parent_id": None})
    if root is None:
        raise forbidden(f"{what[0].upper()}{what[1:]} are shared by the whole tree: editing them needs the admin "
                        "role on the root.")
