"""Bodies of the identity endpoints (API.md §3)."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from schemas.common import Body, Out, Password, Phone, line, token
from schemas.members import MemberOut

Code = token(256, alphabet=r"\x21-\x7e")  # WeChat's login code: printable ASCII
TokenText = token(2048, alphabet="A-Za-z0-9_.-")  # our refresh tokens (base64url) and bind tokens (JWT)
InviteCode = line(32, min_length=4)  # typed by hand: case and spaces are forgiven


class WechatLogin(Body):
    code: Code


class BindRequest(Body):
    bind_token: TokenText
    invite_code: InviteCode


class PasswordLogin(Body):
    phone: Phone
    password: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]


class RefreshRequest(Body):
    refresh_token: TokenText


class SignedInOut(Out, tag_field="status", tag="ok"):
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
