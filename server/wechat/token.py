"""The access token of the server API: one for the whole deployment, kept in MongoDB.

`wechat_tokens` holds one document per appid: `{token, expires_at, stale}`. Every process reads it
there (`access_token`); WeChat hands out a token by `POST /cgi-bin/stable_token`, valid for
`expires_in` seconds (7200).

Who fetches: the process holding the lease `wechat-token` (server/leases.py), one coroutine of it at
a time (a lock: a lease is held by a process, not a coroutine), and only after reading the document
again under both, so a process that waited for the lease while another fetched
finds the new token and fetches nothing. A token is refreshed REFRESH_AHEAD before it expires:
the first process that sees it due takes the lease and fetches while the others keep using the
old one (still valid); a process that finds no valid token waits for the holder's write, up to
WAIT_SECONDS. The lease lapses LEASE_SECONDS after a holder crashed mid-fetch and the next process
takes over. So across all processes a token is fetched once per expiry, give or take a lease that
lapsed under a holder that was only slow (then two fetches; `stable_token` gives both the same
token unless forced, so nothing breaks).

When WeChat rejects a token (40001 invalid, 42001 expired), `rejected(token)` marks the document
stale, but only where it still holds that token (a conditional update): every process that saw
the same token rejected makes the same one mark, and one that saw an older token rejected, already
replaced, marks nothing. The next `access_token` then fetches under the lease with
`force_refresh: true` (WeChat's stable token is otherwise returned unchanged) exactly once. A process
never uses again a token WeChat rejected in it: its in-memory copy (and a read that raced the stale
mark) could otherwise hand the retry the very token just refused.

Neither the token nor the secret is ever logged.
"""

from __future__ import annotations

import asyncio
import collections
from datetime import datetime, timedelta

from server import leases
from server.context import Context
from server.wechat import transport
from server.wechat.transport import WechatError, WechatUnavailable

COLLECTION = "wechat_tokens"
LEASE = "wechat-token"
# Fetch a new token this long before the current one expires, so no call uses one about to lapse.
REFRESH_AHEAD = timedelta(minutes=5)
# WeChat answers stable_token within a timeout; a holder that crashed lets the lease go after this.
LEASE_FACTOR = 3
WAIT_STEP = 0.05
# This process's copy of the document, used while fresh: a read saved per call. A token another process
# saw rejected is used here until WeChat rejects it here too (once: the call is made again). The tokens
# WeChat rejected here are never used again, from the copy or from a read that raced the stale mark.
_KNOWN = "wechat.token.known"
_REFUSED = "wechat.token.refused"


def _refused(ctx: Context) -> collections.deque:
    refused = ctx.state.get(_REFUSED)
    if refused is None:
        refused = ctx.state[_REFUSED] = collections.deque(maxlen=16)  # a token lives 2 h: hours of them
    return refused


def _refreshing(ctx: Context) -> asyncio.Lock:
    lock = ctx.state.get(LEASE)
    if lock is None:
        lock = ctx.state[LEASE] = asyncio.Lock()
    return lock


def _lease_seconds(ctx: Context) -> float:
    return ctx.settings.wechat_timeout_seconds * LEASE_FACTOR


def _valid(doc: dict | None, now: datetime) -> bool:
    return doc is not None and not doc.get("stale") and doc["expires_at"] > now


def _fresh(doc: dict | None, now: datetime) -> bool:
    return _valid(doc, now) and doc["expires_at"] - REFRESH_AHEAD > now


async def access_token(ctx: Context) -> str:
    """A valid access token, from the shared cache or, by one process under the lease, from WeChat."""
    appid = ctx.settings.wechat_appid
    if not appid:
        raise WechatUnavailable("not configured")
    refused = _refused(ctx)
    known = ctx.state.get(_KNOWN)
    if _fresh(known, ctx.now()) and known["token"] not in refused:
        return known["token"]
    coll = ctx.db[COLLECTION]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + _lease_seconds(ctx) + ctx.settings.wechat_timeout_seconds
    while True:
        doc = await coll.find_one({"_id": appid})
        now = ctx.now()
        if _fresh(doc, now) and doc["token"] not in refused:
            ctx.state[_KNOWN] = doc
            return doc["token"]
        async with _refreshing(ctx):  # the lease is per process: one coroutine of it at a time
            if await leases.acquire(ctx, LEASE, _lease_seconds(ctx)) is not None:
                try:
                    ctx.state[_KNOWN] = await _refresh(ctx)
                    return ctx.state[_KNOWN]["token"]
                finally:
                    await leases.release(ctx, LEASE)
        if _valid(doc, now) and doc["token"] not in refused:
            return doc["token"]  # due for refresh, which another process is doing; still good
        if loop.time() > deadline:
            raise WechatUnavailable("no access token")
        await asyncio.sleep(WAIT_STEP)


async def _refresh(ctx: Context) -> dict:
    """Under the lease: the token another process may just have stored, or a new one from WeChat."""
    appid = ctx.settings.wechat_appid
    coll = ctx.db[COLLECTION]
    doc = await coll.find_one({"_id": appid})
    if _fresh(doc, ctx.now()) and doc["token"] not in _refused(ctx):
        return doc
    force = doc is not None and (bool(doc.get("stale")) or doc["token"] in _refused(ctx))
    answer = await transport.post(ctx, "/cgi-bin/stable_token", {
        "grant_type": "client_credential", "appid": appid, "secret": ctx.settings.wechat_secret,
        "force_refresh": force})
    code = transport.errcode(answer)
    if code == -1:
        raise WechatUnavailable("busy")
    if code != 0 or not isinstance(answer.get("access_token"), str):
        raise WechatError(code or -1)
    now = ctx.now()
    doc = {"_id": appid, "token": answer["access_token"], "stale": False, "fetched_at": now,
           "expires_at": now + timedelta(seconds=int(answer.get("expires_in") or 7200))}
    await coll.replace_one({"_id": appid}, doc, upsert=True)
    return doc


async def rejected(ctx: Context, token: str) -> None:
    """WeChat refused `token` (40001/42001): have it refreshed once, if it is still the cached one."""
    _refused(ctx).append(token)
    await ctx.db[COLLECTION].update_one({"_id": ctx.settings.wechat_appid, "token": token},
                                        {"$set": {"stale": True}})
