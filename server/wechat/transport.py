"""One HTTP call to WeChat's server API, bounded by `Settings.wechat_timeout_seconds`, and its two failures.

`WechatError` carries the errcode WeChat answered (it did answer: the request was refused on its
merits). `WechatUnavailable` means no answer came: WeChat was unreachable, answered 5xx or nothing
parseable, or did not answer in time. Its `maybe_delivered` says whether the request may still have
been acted on: a connection that never opened (refused, a timeout while connecting) or a 5xx from
WeChat's front end did not deliver it; a timeout after the request was written may have. Callers
that must not act twice (a message sent at most once) do not retry those.

URLs carry the access token in their query: they are never logged, and neither is `errmsg`
(it may echo what was sent).
"""

from __future__ import annotations

import json
import logging

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.simple_httpclient import HTTPTimeoutError

from server.context import Context

log = logging.getLogger("branchline.wechat")


class WechatError(Exception):
    """WeChat answered with an errcode other than 0."""

    def __init__(self, errcode: int) -> None:
        super().__init__(f"WeChat errcode {errcode}")
        self.errcode = errcode


class WechatUnavailable(Exception):
    """No usable answer from WeChat (unreachable, 5xx, timeout, busy past the retries)."""

    def __init__(self, reason: str, *, maybe_delivered: bool = False) -> None:
        super().__init__(f"WeChat unavailable: {reason}")
        self.reason = reason
        self.maybe_delivered = maybe_delivered


async def post(ctx: Context, path: str, body: dict, *, access_token: str | None = None) -> dict:
    """POST `body` as JSON to `{base}{path}` once; WeChat's JSON answer (errcode not interpreted)."""
    settings = ctx.settings
    url = f"{settings.wechat_api_base}{path}"
    if access_token is not None:
        url += f"?access_token={access_token}"
    request = HTTPRequest(url, method="POST", body=json.dumps(body, ensure_ascii=False).encode(),
                          headers={"Content-Type": "application/json"},
                          request_timeout=settings.wechat_timeout_seconds,
                          connect_timeout=settings.wechat_timeout_seconds)
    try:
        response = await AsyncHTTPClient().fetch(request, raise_error=False)
    except HTTPTimeoutError as exc:
        raise _timeout(path, exc) from None
    except (OSError, HTTPClientError) as exc:
        log.warning("wechat %s unreachable: %s", path, type(exc).__name__)
        raise WechatUnavailable("unreachable", maybe_delivered=not isinstance(exc, OSError)) from None
    if response.code == 599:
        if isinstance(response.error, HTTPTimeoutError):
            raise _timeout(path, response.error)
        log.warning("wechat %s unreachable: %s", path, type(response.error).__name__)
        raise WechatUnavailable("unreachable", maybe_delivered=not isinstance(response.error, OSError))
    if response.code >= 500:
        log.warning("wechat %s answered HTTP %s", path, response.code)
        raise WechatUnavailable(f"http {response.code}")
    try:
        data = json.loads(response.body or b"{}")
    except ValueError:
        log.warning("wechat %s answered something other than JSON", path)
        raise WechatUnavailable("bad answer", maybe_delivered=True) from None
    if not isinstance(data, dict):
        raise WechatUnavailable("bad answer", maybe_delivered=True)
    return data


def _timeout(path: str, exc: Exception) -> WechatUnavailable:
    connecting = "connecting" in str(exc)
    log.warning("wechat %s timed out %s", path, "while connecting" if connecting else "waiting for the answer")
    return WechatUnavailable("timeout", maybe_delivered=not connecting)


def errcode(data: dict) -> int:
    try:
        return int(data.get("errcode") or 0)
    except (TypeError, ValueError):
        return -1
