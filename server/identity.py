"""Sign-in: WeChat login and binding, staff passwords, refresh rotation with family revocation.

Refresh tokens are random, stored only as sha256, rotated on every use. Presenting a token that
was already rotated means it leaked: the whole family (every token descended from one sign-in)
is revoked and the caller gets 401 refresh_token_reused.
"""

from __future__ import annotations

from datetime import timedelta

from pymongo import ASCENDING, IndexModel

from server import members, ratelimit, wechat
from server.context import Context
from server.db import indexes
from server.errors import ApiError
from server.ids import new_id
from server.security import TokenSigner, random_token, sha256_hex, verify_password

REFRESH = "refresh_tokens"
IDENTITIES = "wechat_identities"
BIND_TOKEN_SECONDS = 600

# Failed passwords per phone, and attempts per client address (offices share one NAT address).
PHONE_FAILURES = (5, timedelta(minutes=15))
ADDRESS_ATTEMPTS = (100, timedelta(minutes=10))
BIND_ATTEMPTS = (300, timedelta(minutes=10))  # a whole branch may bind at one meeting, behind one NAT

indexes(
    REFRESH,
    IndexModel([("family", ASCENDING)]),
    IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0),
)
indexes(IDENTITIES, IndexModel([("member_id", ASCENDING)], unique=True))


def _unauthenticated(detail: str = "Sign in again.") -> ApiError:
    return ApiError(401, "unauthenticated", detail)


async def issue_session(ctx: Context, signer: TokenSigner, member: dict, family: str | None = None) -> dict:
    now = ctx.now()
    refresh = random_token()
    await ctx.db[REFRESH].insert_one({
        "_id": sha256_hex(refresh),
        "family": family or new_id(),
        "member_id": member["_id"],
        "created_at": now,
        "expires_at": now + timedelta(days=ctx.settings.refresh_token_days),
        "rotated_at": None,
        "revoked": False,
    })
    seconds = ctx.settings.access_token_seconds
    return {"status": "ok", "access_token": signer.issue(member["_id"], now, seconds),
            "refresh_token": refresh, "expires_in": seconds, "token_type": "Bearer",
            "member": members.member_out(member)}


async def wechat_login(ctx: Context, signer: TokenSigner, code: str, address: str) -> dict:
    await ratelimit.hit(ctx, f"wechat:addr:{address}", 600, timedelta(minutes=1))
    openid, unionid = await wechat.code_to_identity(ctx.settings, code)
    identity = await ctx.db[IDENTITIES].find_one({"_id": openid})
    if identity is not None:
        member = await members.get_active(ctx, identity["member_id"])
        if member is not None:
            return await issue_session(ctx, signer, member)
    bind_token = signer.issue(openid, ctx.now(), BIND_TOKEN_SECONDS, typ="bind", unionid=unionid)
    return {"status": "bind_required", "bind_token": bind_token, "expires_in": BIND_TOKEN_SECONDS}


async def bind(ctx: Context, signer: TokenSigner, bind_token: str, invite_code: str, address: str) -> dict:
    await ratelimit.hit(ctx, f"bind:addr:{address}", *BIND_ATTEMPTS)
    claims = signer.verify(bind_token, ctx.now(), typ="bind")
    openid = claims["sub"]
    code_hash = sha256_hex(invite_code.strip().upper())

    async def consume_and_bind(session) -> dict:
        now = ctx.now()
        used = await ctx.db[members.INVITES].update_one(
            {"_id": code_hash, "used_at": None, "expires_at": {"$gt": now}},
            {"$set": {"used_at": now}}, session=session)
        invite = await ctx.db[members.INVITES].find_one({"_id": code_hash}, session=session) \
            if used.modified_count == 1 else None
        if invite is None:
            raise ApiError(422, "invite_code_invalid", "The invite code is wrong, used or expired.",
                           errors=[{"field": "invite_code", "message": "wrong, used or expired"}])
        member = await ctx.db[members.COLLECTION].find_one(
            {"_id": invite["member_id"], "active": True}, session=session)
        if member is None:
            raise ApiError(422, "invite_code_invalid", "The invite code is wrong, used or expired.")
        # One WeChat identity per member and one member per identity: the invite decides.
        await ctx.db[IDENTITIES].delete_many(
            {"$or": [{"member_id": member["_id"]}, {"_id": openid}]}, session=session)
        await ctx.db[IDENTITIES].insert_one(
            {"_id": openid, "member_id": member["_id"], "unionid": claims.get("unionid"), "bound_at": now},
            session=session)
        return member

    async with ctx.client.start_session() as session:
        member = await session.with_transaction(consume_and_bind)
    return await issue_session(ctx, signer, member)


async def password_login(ctx: Context, signer: TokenSigner, phone: str, password: str, address: str) -> dict:
    await ratelimit.hit(ctx, f"password:addr:{address}", *ADDRESS_ATTEMPTS)
    await ratelimit.check(ctx, f"password:phone:{phone}", *PHONE_FAILURES)
    member = await ctx.db[members.COLLECTION].find_one({"phone": phone, "active": True})
    if not await verify_password(member and member.get("password_hash"), password):
        await ratelimit.hit(ctx, f"password:phone:{phone}", PHONE_FAILURES[0] + 1, PHONE_FAILURES[1])
        raise ApiError(401, "invalid_credentials", "The phone number or password is wrong.")
    return await issue_session(ctx, signer, member)


async def refresh(ctx: Context, signer: TokenSigner, token: str) -> dict:
    now = ctx.now()
    token_hash = sha256_hex(token)
    # A conditional update_one is the atomic claim: exactly one presenter of a token rotates it.
    claimed = await ctx.db[REFRESH].update_one(
        {"_id": token_hash, "rotated_at": None, "revoked": False}, {"$set": {"rotated_at": now}})
    current = await ctx.db[REFRESH].find_one({"_id": token_hash}) if claimed.modified_count == 1 else None
    if current is None:
        seen = await ctx.db[REFRESH].find_one({"_id": token_hash})
        if seen is not None and seen["rotated_at"] is not None:
            await ctx.db[REFRESH].update_many({"family": seen["family"]}, {"$set": {"revoked": True}})
            raise ApiError(401, "refresh_token_reused",
                           "This refresh token was already used; every session from it is signed out.")
        raise _unauthenticated()
    if current["expires_at"] <= now:
        raise _unauthenticated()
    member = await members.get_active(ctx, current["member_id"])
    if member is None:
        raise _unauthenticated()
    return await issue_session(ctx, signer, member, family=current["family"])


async def logout(ctx: Context, member_id: str, token: str) -> None:
    """Revoke the family of this refresh token when it is the caller's; silent otherwise (idempotent)."""
    doc = await ctx.db[REFRESH].find_one({"_id": sha256_hex(token), "member_id": member_id})
    if doc is not None:
        await ctx.db[REFRESH].update_many({"family": doc["family"]}, {"$set": {"revoked": True}})
