"""Sign-in: WeChat login and binding, staff passwords, refresh rotation with family revocation.

Refresh tokens are random, stored only as sha256, rotated on every use. Presenting a token that
was already rotated means it leaked: the whole family (every token descended from one sign-in)
is revoked and the caller gets 401 refresh_token_reused. A password change or reset, and a
deactivation, revoke every family of the member (`revoke_sessions`).

An invite is checked again when used (its issuer must still be allowed to act on the member).
A bind token is single use: its jti is claimed in the bind's transaction, so a token that
leaks after binding (a shared screen, a log) cannot bind the same WeChat identity again.

Passwords: wrong guesses hold back the (phone, client address) that made them, with a wait that
doubles after each further failure; the right password from another address still gets in, so
knowing a staff phone is not enough to lock its owner out. See PASSWORD_BACKOFF.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pymongo import ASCENDING, IndexModel
from pymongo.errors import DuplicateKeyError

from server import members, ratelimit
from server.context import Context
from server.db import indexes, transaction
from server.errors import ApiError
from server.ids import new_id
from server.scope import Principal
from server.security import TokenSigner, random_token, sha256_hex, verify_password
from server.wechat.login import code_to_identity

REFRESH = "refresh_tokens"
IDENTITIES = "wechat_identities"
USED_BIND_TOKENS = "used_bind_tokens"
BIND_TOKEN_SECONDS = 600

# Attempts per client address, whatever the phone (offices share one NAT address).
ADDRESS_ATTEMPTS = (100, timedelta(minutes=10))
# Failures per (phone, address): five free, then waits of 1, 2, 4 ... minutes up to an hour, until
# a success from that address or a day without failures. One address gets about 11 guesses at a
# phone in the first hour and then one an hour.
PASSWORD_BACKOFF = ratelimit.Backoff(free=5, first=timedelta(minutes=1), longest=timedelta(hours=1),
                                     memory=timedelta(days=1))
# Failures per phone from all addresses together. Backoff alone leaves guessing unbounded for an
# attacker with many addresses; this ceiling caps it at 2,400 a day per phone. It does lock the owner
# out too, until the hour ends, but reaching it takes some ten addresses guessing together — a
# distributed attack — instead of anyone who knows the phone: that trade is the one we chose.
PHONE_FAILURE_CEILING = (100, timedelta(hours=1))
BIND_ATTEMPTS = (300, timedelta(minutes=10))  # a whole branch may bind at one meeting, behind one NAT

indexes(
    REFRESH,
    IndexModel([("family", ASCENDING)]),
    IndexModel([("member_id", ASCENDING)]),  # revoke_sessions
    IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0),
)
indexes(IDENTITIES, IndexModel([("member_id", ASCENDING)], unique=True))
# _id is the token's jti; a claim outlives the token by the TTL monitor's delay, never less.
indexes(USED_BIND_TOKENS, IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0))


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
    openid, unionid = await code_to_identity(ctx.settings, code)
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

    async def consume_and_bind(txn) -> dict:
        now = ctx.now()
        await _claim_bind_token(ctx, claims, txn)
        used = await ctx.db[members.INVITES].update_one(
            {"_id": code_hash, "used_at": None, "expires_at": {"$gt": now}},
            {"$set": {"used_at": now}}, session=txn)
        invite = await ctx.db[members.INVITES].find_one({"_id": code_hash}, session=txn) \
            if used.modified_count == 1 else None
        if invite is None:
            raise ApiError(422, "invite_code_invalid", "The invite code is wrong, used or expired.",
                           errors=[{"field": "invite_code", "message": "wrong, used or expired"}])
        member = await ctx.db[members.COLLECTION].find_one(
            {"_id": invite["member_id"], "active": True}, session=txn)
        if member is None or not await _issuer_may_still_act(ctx, invite, member):
            raise ApiError(422, "invite_code_invalid", "The invite code is wrong, used or expired.")
        # One WeChat identity per member and one member per identity: the invite decides.
        await ctx.db[IDENTITIES].delete_many(
            {"$or": [{"member_id": member["_id"]}, {"_id": openid}]}, session=txn)
        await ctx.db[IDENTITIES].insert_one(
            {"_id": openid, "member_id": member["_id"], "unionid": claims.get("unionid"), "bound_at": now},
            session=txn)
        return member

    member = await transaction(ctx, consume_and_bind)
    return await issue_session(ctx, signer, member)


async def _issuer_may_still_act(ctx: Context, invite: dict, member: dict) -> bool:
    """An invite acts on its member when it is used, so its issuer must still be allowed to: a code
    made before the member became an administrator cannot bind its issuer's WeChat to them."""
    issuer = await members.get_active(ctx, invite.get("created_by") or "")
    if issuer is None:
        return False
    try:
        await members.require_may_manage(ctx, Principal.from_member(issuer), member)
    except ApiError:
        return False
    return True


async def _claim_bind_token(ctx: Context, claims: dict, txn) -> None:
    """401 when this bind token was already used. Inside the bind's transaction: a bind that fails
    (a mistyped invite code) leaves the token usable."""
    try:
        await ctx.db[USED_BIND_TOKENS].insert_one(
            {"_id": claims["jti"], "expires_at": datetime.fromtimestamp(claims["exp"], UTC)}, session=txn)
    except DuplicateKeyError:
        raise _unauthenticated("This bind token was already used; sign in with WeChat again.") from None


async def password_login(ctx: Context, signer: TokenSigner, phone: str, password: str, address: str) -> dict:
    phone = members.normalise_phone(phone)  # one phone, one count, however it is written
    pair = f"password:{phone}:{address}"
    await ratelimit.hit(ctx, f"password:addr:{address}", *ADDRESS_ATTEMPTS)
    await ratelimit.held_back(ctx, pair)
    await ratelimit.check(ctx, f"password:phone:{phone}", *PHONE_FAILURE_CEILING)
    member = await ctx.db[members.COLLECTION].find_one({"phone": phone, "active": True})
    if not await verify_password(member and member.get("password_hash"), password):
        await ratelimit.fail(ctx, pair, PASSWORD_BACKOFF)
        await ratelimit.count(ctx, f"password:phone:{phone}", PHONE_FAILURE_CEILING[1])
        raise ApiError(401, "invalid_credentials", "The phone number or password is wrong.")
    await ratelimit.forget(ctx, pair)
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


async def revoke_sessions(ctx: Context, member_id: str, txn=None) -> None:
    """Revoke every refresh family of the member. Their access tokens live on for at most
    `access_token_seconds` (≤ 15 min); a deactivated member is refused sooner, by principal_for."""
    await ctx.db[REFRESH].update_many({"member_id": member_id, "revoked": False}, {"$set": {"revoked": True}},
                                      session=txn)
