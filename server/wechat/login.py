"""WeChat mini-program login: `jscode2session`, with every WeChat error mapped to our contract.

`session_key` is never stored or returned: we only need the openid (and unionid when present).
"""

from __future__ import annotations

import json
import logging
from urllib.parse import urlencode

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

from server.config import Settings
from server.errors import ApiError

log = logging.getLogger("branchline.wechat.login")

CODE_INVALID = {40029, 40163, 40226}  # invalid code, code already used, code from a blocked user
RATE_LIMITED = 45011
BUSY = -1


def _unavailable() -> ApiError:
    return ApiError(503, "wechat_unavailable", "WeChat login is unavailable right now; try again shortly.",
                    headers={"Retry-After": "5"})


async def code_to_identity(settings: Settings, code: str) -> tuple[str, str | None]:
    """Exchange a login code for (openid, unionid)."""
    query = urlencode({"appid": settings.wechat_appid, "secret": settings.wechat_secret,
                       "js_code": code, "grant_type": "authorization_code"})
    request = HTTPRequest(f"{settings.wechat_api_base}/sns/jscode2session?{query}",
                          request_timeout=settings.wechat_timeout_seconds,
                          connect_timeout=settings.wechat_timeout_seconds)
    try:
        response = await AsyncHTTPClient().fetch(request, raise_error=False)
    except (OSError, HTTPClientError) as exc:
        log.warning("wechat unreachable: %s", type(exc).__name__)
        raise _unavailable() from None
    if response.code == 599 or response.code >= 500:  # 599: timeout or connection error
        log.warning("wechat answered %s", response.code)
        raise _unavailable()
    try:
        data = json.loads(response.body or b"{}")
    except ValueError:
        raise _unavailable() from None
    errcode = data.get("errcode") or 0
    if errcode in CODE_INVALID:
        raise ApiError(401, "wechat_code_invalid", "The WeChat login code is invalid or already used.")
    if errcode == RATE_LIMITED:
        raise ApiError(429, "rate_limited", "WeChat is limiting logins; try again in a minute.",
                       headers={"Retry-After": "60"})
    if errcode != 0 or not data.get("openid"):
        log.warning("wechat errcode %s", errcode)  # errmsg may echo the code: not logged
        raise _unavailable()
    return data["openid"], data.get("unionid")
