"""Members: records, masked phones, roles scoped to subtrees, passwords and invites.

Each member stores `org_path` (their org's ancestors and the org itself) so scope filters are
one indexed `$in`. Phones are unique, stored in one form (`normalise_phone`) and never leave the
server unmasked.

Acting on another member (edit, deactivate, invite, reset a password, change roles, re-import)
goes through `require_may_manage`: the caller needs the role over the member's org *and* every
role the member holds (Principal.may_act_on), so nobody reaches power they lack through the
person who holds it.
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, get_args

from pymongo import ASCENDING, IndexModel
from pymongo.errors import DuplicateKeyError

# identity imports this module too; each uses the other only inside functions.
from schemas.common import PartyStatus
from server import audit, identity, orgs
from server.context import Context
from server.db import indexes, on_commit, transaction, update_then_get
from server.errors import ApiError, forbidden, invalid, not_found
from server.ids import new_id
from server.pagination import Keyset, page
from server.scope import Principal
from server.security import hash_password, sha256_hex

COLLECTION = "members"
INVITES = "invites"
INVITE_LIFETIME = timedelta(days=7)
# No 0/O or 1/I/L: codes are read aloud and typed on phones.
INVITE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"

indexes(
    COLLECTION,
    IndexModel([("phone", ASCENDING)], unique=True),
    IndexModel([("org_path", ASCENDING), ("_id", ASCENDING)]),
    IndexModel([("org_path", ASCENDING), ("active", ASCENDING), ("_id", ASCENDING)]),  # a subtree's active members
    IndexModel([("org_id", ASCENDING)]),
    IndexModel([("roles.org_id", ASCENDING)]),  # who organises an org (notices to organisers)
)
indexes(
    INVITES,
    IndexModel([("member_id", ASCENDING)]),
    IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=24 * 3600),
)


# The stored form of a phone: ASCII digits with an optional leading "+". People type and paste them
# with spaces and dashes ("138 0000 0001", "138-0000-0001"): those are dropped. Nothing else is
# rewritten (no country codes) and anything else, a newline included, is refused — fullmatch, unlike
# `$`, does not match before a trailing "\n".
_PHONE = re.compile(r"\+?[0-9]{6,15}")
_PHONE_SEPARATORS = str.maketrans("", "", " -")


def normalise_phone(raw: str) -> str:
    """The stored form of `raw`, or 422 invalid_request on `phone`. Every way in (POST and PATCH
    /members, import, password sign-in, the first administrator) passes through here."""
    phone = raw.translate(_PHONE_SEPARATORS)
    if _PHONE.fullmatch(phone) is None:
        raise invalid("phone", "A phone number is 6 to 15 digits with an optional leading +.")
    return phone


# What stands for the phone of an anonymised member (server/retention.py): unique, like every stored phone
# (the index), never a number anyone signs in with or imports (normalise_phone refuses it), shown as "".
REMOVED_PHONE_PREFIX = "removed:"


def removed_phone(member_id: str) -> str:
    return REMOVED_PHONE_PREFIX + member_id


def mask_phone(phone: str) -> str:
    if phone.startswith(REMOVED_PHONE_PREFIX):
        return ""
    if len(phone) < 7:
        return "*" * len(phone)
    return phone[:3] + "*" * (len(phone) - 7) + phone[-4:]


def member_out(doc: dict) -> dict:
    return {
        "id": doc["_id"],
        "name": doc["name"],
        "phone_masked": mask_phone(doc["phone"]),
        "org_id": doc["org_id"],
        "gender": doc["gender"],
        "birth_date": doc["birth_date"],
        "party_status": doc["party_status"],
        "tags": doc.get("tags", []),
        "roles": doc.get("roles", []),
        "active": doc["active"],
        "anonymised": doc.get("anonymised_at") is not None,
    }


async def get(ctx: Context, member_id: str) -> dict | None:
    return await ctx.db[COLLECTION].find_one({"_id": member_id})


async def get_active(ctx: Context, member_id: str) -> dict | None:
    return await ctx.db[COLLECTION].find_one({"_id": member_id, "active": True})


# Every request needs the caller's roles; a few seconds of caching saves a query per request on hot
# paths (sync polling). Changes in this process drop the entry at once; other processes see them
# within PRINCIPAL_TTL seconds.
PRINCIPAL_TTL = 5.0
_PRINCIPAL_CACHE_MAX = 50_000


async def principal_for(ctx: Context, member_id: str) -> Principal | None:
    """The active member as a Principal, from a short per-process cache or the database."""
    cache: dict = ctx.state.setdefault("principals", {})
    now = time.monotonic()
    hit = cache.get(member_id)
    if hit is not None and hit[0] > now:
        return hit[1]
    doc = await get_active(ctx, member_id)
    principal = Principal.from_member(doc) if doc else None
    if len(cache) >= _PRINCIPAL_CACHE_MAX:
        cache.clear()
    cache[member_id] = (now + PRINCIPAL_TTL, principal)
    return principal


def forget_principal(ctx: Context, member_id: str) -> None:
    ctx.state.get("principals", {}).pop(member_id, None)


async def _forget(ctx: Context, member_id: str) -> None:  # an on-commit hook
    forget_principal(ctx, member_id)


async def get_for_organiser(ctx: Context, principal: Principal, member_id: str) -> dict:
    """A member record the caller may manage, or their own record.

    A fellow member of the caller's own org subtree is visible but not theirs to manage (403);
    anyone else is 404, so ids outside the caller's scope reveal nothing.
    """
    doc = await get(ctx, member_id)
    if doc is None:
        raise not_found("not_found", "member")
    if principal.organises(doc["org_path"]) or doc["_id"] == principal.member_id:
        return doc
    if principal.org_id in doc["org_path"]:
        raise forbidden("Only an organiser of the member's organisation may do this.")
    raise not_found("not_found", "member")


async def role_grants(ctx: Context, doc: dict) -> list[tuple[str, list[str]]]:
    """The member's roles, each with the full path of its org: what Principal.may_act_on compares."""
    roles = doc.get("roles", [])
    if not roles:
        return []
    ids = sorted({r["org_id"] for r in roles})
    paths = {org["_id"]: orgs.full_path(org)
             async for org in ctx.db[orgs.COLLECTION].find({"_id": {"$in": ids}}, {"path": 1})}
    # A role on an org that is gone is covered only by a role on that very id.
    return [(r["role"], paths.get(r["org_id"], [r["org_id"]])) for r in roles]


async def require_may_manage(ctx: Context, principal: Principal, doc: dict, minimum: str = "organiser") -> None:
    """403 forbidden unless the caller holds `minimum` over the member's org and every role the member
    holds over the same scope. For a member already known to be visible to the caller."""
    if not principal.holds(minimum, doc["org_path"]):
        raise forbidden(f"This needs the {minimum} role over the member's organisation.")
    principal.require_may_act_on(await role_grants(ctx, doc))


async def get_to_manage(ctx: Context, principal: Principal, member_id: str, minimum: str = "organiser") -> dict:
    """The member record the caller may act on: 404 when invisible, 403 as `require_may_manage`."""
    doc = await get_for_organiser(ctx, principal, member_id)
    await require_may_manage(ctx, principal, doc, minimum)
    return doc


def _new_member(body: dict, org: dict, now) -> dict:
    return {
        "_id": new_id(),
        "name": body["name"],
        "phone": normalise_phone(body["phone"]),
        "org_id": org["_id"],
        "org_path": orgs.full_path(org),
        "gender": body["gender"],
        "birth_date": body["birth_date"],
        "party_status": body["party_status"],
        "tags": sorted(set(body.get("tags") or [])),
        "roles": [],
        "active": True,
        "password_hash": None,
        "created_at": now,
        "updated_at": now,
    }


async def create(ctx: Context, principal: Principal, body: dict) -> dict:
    org = await orgs.require_role(ctx, principal, body["org_id"], "organiser")
    doc = _new_member(body, org, ctx.now())

    async def work(txn) -> None:  # the member and its audit entry, both or neither
        try:
            await ctx.db[COLLECTION].insert_one(doc, session=txn)
        except DuplicateKeyError:
            raise ApiError(409, "phone_taken", "Another member already has this phone number.") from None
        await audit.record(ctx, actor_id=principal.member_id, action="member.create", target_kind="member",
                           target_id=doc["_id"], org_path=doc["org_path"],
                           after={"name": doc["name"], "org_id": doc["org_id"]}, txn=txn)

    await transaction(ctx, work)
    return doc


@dataclass(frozen=True)
class MemberFilter:
    """What an organiser's member list narrows to; None: any."""

    q: str | None = None  # part of a name, or a whole phone number (never part of one: phones are shown masked)
    active: bool | None = None
    party_status: str | None = None
    tag: str | None = None

    def clauses(self) -> list[dict]:
        found: list[dict] = []
        if self.q:
            try:
                found.append({"phone": normalise_phone(self.q)})
            except ApiError:
                found.append({"name": {"$regex": re.escape(self.q)}})
        if self.active is not None:
            found.append({"active": self.active})
        if self.party_status is not None:
            if self.party_status not in get_args(PartyStatus):
                raise invalid("party_status", "party_status is full, probationary or none.")
            found.append({"party_status": self.party_status})
        if self.tag:
            found.append({"tags": self.tag})
        return found


def list_query(principal: Principal, org_id: str | None, found: MemberFilter = MemberFilter()) -> Keyset:
    """The member list's query (index org_path, _id): one subtree, or each subtree the caller organises."""
    return Keyset(tuple({"org_path": org} for org in principal.list_roots(org_id)), narrow=tuple(found.clauses()))


async def list_for_organiser(ctx: Context, principal: Principal, org_id: str | None, limit: int,
                             cursor: str | None, found: MemberFilter = MemberFilter()) -> tuple[list[dict], str | None]:
    await orgs.require_lister(ctx, principal, org_id, "organiser", "Listing members needs the organiser role.")
    return await page(ctx.db[COLLECTION], list_query(principal, org_id, found), limit, cursor)


async def patch(ctx: Context, principal: Principal, member_id: str, changes: dict) -> dict:
    doc = await get_to_manage(ctx, principal, member_id)
    if doc["_id"] == principal.member_id and ({"org_id", "active"} & changes.keys()):
        raise forbidden("You cannot change your own organisation or active flag.")
    if "phone" in changes:
        changes = {**changes, "phone": normalise_phone(changes["phone"])}
    update = dict(changes)
    if "org_id" in update:
        target = await orgs.require_role(ctx, principal, update["org_id"], "organiser")
        update["org_path"] = orgs.full_path(target)
    if "tags" in update:
        update["tags"] = sorted(set(update["tags"]))
    update["updated_at"] = ctx.now()
    before = {k: doc.get(k) for k in changes}  # server.audit masks the phone numbers
    action = "member.deactivate" if changes.get("active") is False else "member.update"

    async def work(txn) -> dict:  # the change, the revoked sessions and the audit entry, all or nothing
        try:
            new = await update_then_get(ctx.db[COLLECTION], {"_id": member_id}, {"$set": update}, txn=txn)
        except DuplicateKeyError:
            raise ApiError(409, "phone_taken", "Another member already has this phone number.") from None
        if new is None:
            raise not_found("not_found", "member")
        if changes.get("active") is False:  # refresh refuses inactive members, but reactivation must not revive them
            await identity.revoke_sessions(ctx, member_id, txn=txn)
        await audit.record(ctx, actor_id=principal.member_id, action=action, target_kind="member",
                           target_id=member_id, org_path=new["org_path"], before=before, after=changes, txn=txn)
        on_commit(txn, lambda: _forget(ctx, member_id))
        return new

    return await transaction(ctx, work)


async def set_roles(ctx: Context, principal: Principal, member_id: str, roles: list[dict]) -> dict:
    doc = await get_for_organiser(ctx, principal, member_id)
    if doc["_id"] == principal.member_id:
        raise forbidden("Roles are changed by another administrator.")
    await require_may_manage(ctx, principal, doc, "admin")  # also: no removing roles one does not hold
    for grant in roles:  # nobody grants power above their own
        await orgs.require_role(ctx, principal, grant["org_id"], "admin")
    unique = [dict(t) for t in dict.fromkeys(tuple(sorted(g.items())) for g in roles)]

    async def work(txn) -> dict:
        new = await update_then_get(ctx.db[COLLECTION], {"_id": member_id},
                                    {"$set": {"roles": unique, "updated_at": ctx.now()}}, txn=txn)
        await audit.record(ctx, actor_id=principal.member_id, action="member.roles", target_kind="member",
                           target_id=member_id, org_path=doc["org_path"],
                           before=doc.get("roles", []), after=unique, txn=txn)
        on_commit(txn, lambda: _forget(ctx, member_id))
        return new

    return await transaction(ctx, work)


async def set_password(ctx: Context, principal: Principal, member_id: str, password: str) -> None:
    doc = await get_for_organiser(ctx, principal, member_id)
    if doc["_id"] != principal.member_id:
        await require_may_manage(ctx, principal, doc, "admin")
    password_hash = await hash_password(password)

    async def work(txn) -> None:
        await ctx.db[COLLECTION].update_one(
            {"_id": member_id}, {"$set": {"password_hash": password_hash, "updated_at": ctx.now()}}, session=txn)
        # With the new hash, so no sign-in with the old password can start a session that survives.
        await identity.revoke_sessions(ctx, member_id, txn=txn)
        if doc["_id"] != principal.member_id:
            await audit.record(ctx, actor_id=principal.member_id, action="member.password",
                               target_kind="member", target_id=member_id, org_path=doc["org_path"],
                               before={"password_set": doc.get("password_hash") is not None},
                               after={"password_set": True}, details={"sessions_revoked": True}, txn=txn)

    await transaction(ctx, work)


async def create_invite(ctx: Context, principal: Principal, member_id: str) -> tuple[str, Any]:
    """A single-use, 7-day code that binds a WeChat identity to this member. Older unused codes die."""
    doc = await get_to_manage(ctx, principal, member_id)
    if not doc["active"]:
        raise ApiError(409, "member_inactive", "This member is not active.")
    code = "".join(secrets.choice(INVITE_ALPHABET) for _ in range(8))
    now = ctx.now()
    expires_at = now + INVITE_LIFETIME

    async def work(txn) -> None:  # the old codes die with the new one's birth, never without it
        await ctx.db[INVITES].delete_many({"member_id": member_id, "used_at": None}, session=txn)
        await ctx.db[INVITES].insert_one({"_id": sha256_hex(code), "member_id": member_id, "created_at": now,
                                          "expires_at": expires_at, "used_at": None,
                                          "created_by": principal.member_id}, session=txn)
        await audit.record(ctx, actor_id=principal.member_id, action="member.invite", target_kind="member",
                           target_id=member_id, org_path=doc["org_path"], txn=txn)

    await transaction(ctx, work)
    return code, expires_at
