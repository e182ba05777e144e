"""Sign-in endpoints and /me (API.md §3)."""

from __future__ import annotations

from handlers.base import APIHandler
from schemas import openapi
from schemas.identity import (
    BindRequest,
    BindRequiredOut,
    PasswordLogin,
    RefreshRequest,
    SignedInOut,
    WechatLogin,
)
from schemas.members import MemberOut
from server import identity, members


class WechatLoginHandler(APIHandler):
    auth_required = False

    @openapi.endpoint("Sign in with a WeChat login code", body=WechatLogin,
                      responses={200: SignedInOut | BindRequiredOut}, auth=False,
                      errors=("wechat_code_invalid", "rate_limited", "wechat_unavailable"))
    async def post(self) -> None:
        body = self.decode(WechatLogin)
        self.respond(await identity.wechat_login(self.ctx, self.signer, body.code, self.client_address))


class BindHandler(APIHandler):
    auth_required = False

    @openapi.endpoint("Bind a WeChat identity to a member with an invite code", body=BindRequest,
                      responses={200: SignedInOut}, auth=False,
                      errors=("unauthenticated", "invite_code_invalid", "rate_limited"))
    async def post(self) -> None:
        body = self.decode(BindRequest)
        self.respond(await identity.bind(self.ctx, self.signer, body.bind_token, body.invite_code,
                                         self.client_address))


class PasswordLoginHandler(APIHandler):
    auth_required = False

    @openapi.endpoint("Staff sign-in with phone and password", body=PasswordLogin, responses={200: SignedInOut},
                      auth=False, errors=("invalid_credentials", "rate_limited"))
    async def post(self) -> None:
        body = self.decode(PasswordLogin)
        self.respond(await identity.password_login(self.ctx, self.signer, body.phone, body.password,
                                                   self.client_address))


class RefreshHandler(APIHandler):
    auth_required = False

    @openapi.endpoint("Exchange a refresh token for a new pair", body=RefreshRequest, responses={200: SignedInOut},
                      auth=False, errors=("unauthenticated", "refresh_token_reused"))
    async def post(self) -> None:
        body = self.decode(RefreshRequest)
        self.respond(await identity.refresh(self.ctx, self.signer, body.refresh_token))


class LogoutHandler(APIHandler):
    @openapi.endpoint("Sign out: revoke the refresh token's family", body=RefreshRequest, responses={204: None})
    async def post(self) -> None:
        body = self.decode(RefreshRequest)
        await identity.logout(self.ctx, self.me.member_id, body.refresh_token)
        self.no_content()


class MeHandler(APIHandler):
    @openapi.endpoint("The signed-in member, with roles", responses={200: MemberOut})
    async def get(self) -> None:
        self.respond(members.member_out(await members.get(self.ctx, self.me.member_id)))
