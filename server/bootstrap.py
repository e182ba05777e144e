"""The first administrator, from the environment at start-up or from `python -m server create-admin`."""

from __future__ import annotations

import logging

from pymongo.errors import DuplicateKeyError

from server import members, orgs
from server.context import Context
from server.ids import new_id
from server.security import hash_password

log = logging.getLogger("branchline.bootstrap")


async def ensure_admin(ctx: Context, phone: str, password: str, name: str, org_name: str,
                       *, only_if_none: bool = True) -> dict | None:
    """Create an admin on the root org (made if missing). With only_if_none, do nothing when one exists."""
    phone = members.normalise_phone(phone)  # 422 ApiError for a malformed phone, before anything is written
    coll = ctx.db[members.COLLECTION]
    if only_if_none and await coll.find_one({"roles.role": "admin"}) is not None:
        return None
    root = await ctx.db[orgs.COLLECTION].find_one({"parent_id": None}) or await orgs.create_root(ctx, org_name)
    grant = {"role": "admin", "org_id": root["_id"]}
    now = ctx.now()
    password_hash = await hash_password(password)
    existing = await coll.find_one({"phone": phone})
    if existing is not None:
        await coll.update_one({"_id": existing["_id"]},
                              {"$addToSet": {"roles": grant},
                               "$set": {"password_hash": password_hash, "active": True, "updated_at": now}})
        log.info("granted admin on the root organisation to an existing member")
        return await coll.find_one({"_id": existing["_id"]})
    doc = {
        "_id": new_id(), "name": name, "phone": phone, "org_id": root["_id"], "org_path": orgs.full_path(root),
        "gender": "male", "birth_date": "1970-01-01", "party_status": "full", "tags": [],
        "roles": [grant], "active": True, "password_hash": password_hash, "created_at": now, "updated_at": now,
    }
    try:
        await coll.insert_one(doc)
    except DuplicateKeyError:  # another process bootstrapped at the same moment
        return None
    log.info("created the first administrator")
    return doc
