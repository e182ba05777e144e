"""The server-API calls Branchline makes (API.md §9, §10), each bounded in time, with WeChat's errors handled once.

For every call:
- 40001 (invalid token) and 42001 (expired token): the token is reported rejected (server/wechat/token.py
  refreshes it once across processes) and the call is made again, once.
- -1 (busy) and answers that did not come (unreachable, 5xx, timeout): made again after BACKOFF, doubling,
  up to ATTEMPTS in all, then `WechatUnavailable`. A call that must not act twice (`subscribe_send`)
  is not made again after a timeout that may have delivered it: it raises `WechatUnavailable` with
  `maybe_delivered` and the caller decides.
- any other errcode: `WechatError(errcode)`.
Each attempt waits at most `Settings.wechat_timeout_seconds`, so a call takes at most about
ATTEMPTS times that, plus the backoff.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from server.context import Context
from server.wechat import token as wechat_token
from server.wechat import transport
from server.wechat.transport import WechatError, WechatUnavailable

__all__ = ["WechatError", "WechatUnavailable", "call", "msg_sec_check", "subscribe_send"]

TOKEN_REJECTED = {40001, 42001}
BUSY = -1
ATTEMPTS = 3
BACKOFF = 0.2  # seconds before the second attempt; doubled before each next one
SUGGESTIONS = {"pass", "review", "risky"}


async def call(ctx: Context, path: str, body: dict, *, retry_maybe_delivered: bool = True,
               on_retry: Callable[[str], None] | None = None) -> dict:
    """POST `body` to `path` with the access token; WeChat's answer when errcode is 0 (see the module note)."""
    refreshed = False
    failures = 0
    while True:
        access_token = await wechat_token.access_token(ctx)
        try:
            answer = await transport.post(ctx, path, body, access_token=access_token)
            code = transport.errcode(answer)
            if code == 0:
                return answer
            if code in TOKEN_REJECTED and not refreshed:
                refreshed = True
                await wechat_token.rejected(ctx, access_token)
                continue
            if code != BUSY:
                raise WechatError(code)
            failure = WechatUnavailable("busy")
        except WechatUnavailable as exc:
            if exc.maybe_delivered and not retry_maybe_delivered:
                raise
            failure = exc
        failures += 1
        if failures >= ATTEMPTS:
            raise failure
        if on_retry is not None:
            on_retry(failure.reason)
        await asyncio.sleep(BACKOFF * 2 ** (failures - 1))


async def subscribe_send(ctx: Context, openid: str, template_id: str, page: str, data: dict, *,
                         on_retry: Callable[[str], None] | None = None) -> None:
    """Send one subscription message (`data` already cut to the template's field limits)."""
    body = {"touser": openid, "template_id": template_id, "data": data, "lang": "zh_CN"}
    if page:
        body["page"] = page
    await call(ctx, "/cgi-bin/message/subscribe/send", body, retry_maybe_delivered=False, on_retry=on_retry)


async def msg_sec_check(ctx: Context, openid: str, content: str, scene: int) -> str:
    """WeChat's verdict on member text (v2): "pass", "review" or "risky".

    `scene`: 1 profile, 2 comment, 3 forum, 4 social log (WeChat's numbering). Raises
    `WechatUnavailable` when no verdict came (the caller stores the text flagged unchecked).
    """
    answer = await call(ctx, "/wxa/msg_sec_check",
                        {"content": content, "version": 2, "scene": scene, "openid": openid})
    suggest = (answer.get("result") or {}).get("suggest")
    return suggest if suggest in SUGGESTIONS else "review"
