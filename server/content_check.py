"""Content checks of members' free text (API.md §10): one call for every service that stores such text
(activity feedback comments, request reasons, self-study notes, suggestions).

With `BRANCHLINE_CONTENT_CHECK=wechat` the text goes through WeChat's `msg_sec_check` (version 2, with
the writer's openid): `risky` is refused (422 `content_rejected`, nothing stored), `review` is stored
flagged "review" for the organisers who read it, and no verdict (WeChat unreachable, slow past its
bound, or busy past the retries) stores it flagged "unchecked" rather than losing what the member wrote.
A writer without a bound WeChat identity (staff who sign in with a password) cannot be checked (v2
needs an openid of someone who used the mini-program): their text is stored flagged "unchecked" too, so
organisers see exactly which texts WeChat has not passed. With the check off (the default), or for
empty text, nothing is flagged.

The flag is stored on the record as `content_flag` (None, "review" or "unchecked") and shown to the
organisers who read the text.
"""

from __future__ import annotations

import logging
from typing import Literal

from server.context import Context
from server.errors import ApiError
from server.identity import IDENTITIES
from server.scope import Principal
from server.wechat import api as wechat_api
from server.wechat.transport import WechatUnavailable

log = logging.getLogger("branchline.content_check")

Flag = Literal["review", "unchecked"] | None
# WeChat's scenes for msg_sec_check v2: 1 profile, 2 comment, 3 forum, 4 social log.
# The keys are the body fields checked (`text`: a suggestion's).
SCENES = {"comment": 2, "reason": 1, "note": 4, "text": 3}


async def check(ctx: Context, principal: Principal, text: str | None, field: str) -> Flag:
    """The flag to store with `text`, which `principal` wrote into `field` (a key of SCENES); raises
    422 content_rejected for text WeChat calls risky."""
    if ctx.settings.content_check != "wechat" or not text or not text.strip():
        return None
    identity = await ctx.db[IDENTITIES].find_one({"member_id": principal.member_id}, {"_id": 1})
    if identity is None or not ctx.settings.wechat_appid:
        return "unchecked"
    try:
        verdict = await wechat_api.msg_sec_check(ctx, identity["_id"], text, SCENES[field])
    except WechatUnavailable as exc:
        log.warning("content check unavailable, text stored unchecked: %s", exc.reason)
        return "unchecked"
    if verdict == "risky":
        raise ApiError(422, "content_rejected", "This text cannot be published; please reword it.",
                       errors=[{"field": field, "message": "WeChat's content check refused this text."}])
    return "review" if verdict == "review" else None
