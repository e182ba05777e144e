"""Bodies of the identity endpoints (API.md §3)."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from schemas.common import Body, Out, Password, Phone
from schemas.members import MemberOut

Code = Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
TokenText = Annotated[str, msgspec.Meta(min_length=1, max_length=2048)]


class WechatLogin(Body):
    code: Code


class BindRequest(Body):
    bind_token: TokenText
    invite_code: Annotated[str, msgspec.Meta(min_length=4, max_length=32)]


class PasswordLogin(Body):
    phone: Phone
    password: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]


class RefreshRequest(Body):
    refresh_token: TokenText


class SessionOut(Out, tag_field="status", tag="ok"):
    """Signed in: `status` is "ok"."""

    access_token: str
    refresh_token: str
    expires_in: int
    token_type: Literal["Bearer"]
    member: MemberOut


class BindRequiredOut(Out, tag_field="status", tag="bind_required"):
    """The WeChat identity is not bound yet: `status` is "bind_required"."""

    bind_token: str
    expires_in: int


class InviteOut(Out):
    invite_code: str
    expires_at: str


class PasswordChange(Body):
    password: Password
