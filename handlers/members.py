"""Member endpoints (API.md §3–4)."""

from __future__ import annotations

from handlers.base import APIHandler, idempotent
from schemas import openapi
from schemas.identity import InviteOut, PasswordChange
from schemas.members import ImportResult, MemberCreate, MemberOut, MemberPage, MemberPatch, RolesPut
from server import member_import, members, retention

IMPORT_LIMIT = 5 * 1024 * 1024


class MembersHandler(APIHandler):
    @openapi.endpoint("Add a member to an org you organise", body=MemberCreate, responses={201: MemberOut},
                      idempotent=True, errors=("phone_taken", "forbidden", "not_found"))
    @idempotent
    async def post(self) -> None:
        doc = await members.create(self.ctx, self.me, self.decode_fields(MemberCreate, dates_as_text=True))
        self.respond(members.member_out(doc), status=201)

    @openapi.endpoint("Members of an org subtree you organise", responses={200: MemberPage},
                      query={"org_id": "org subtree", "q": "part of a name, or a whole phone number",
                             "active": "true or false", "party_status": "full, probationary or none",
                             "tag": "members with this tag", "limit": "1..100", "cursor": "from the last page"},
                      errors=("forbidden", "not_found"))
    async def get(self) -> None:
        limit, cursor = self.page_args()
        found = members.MemberFilter(q=self.query("q", max_length=40), active=self.query_bool("active"),
                                     party_status=self.query("party_status", max_length=20),
                                     tag=self.query("tag", max_length=40))
        items, next_cursor = await members.list_for_organiser(self.ctx, self.me, self.query("org_id", max_length=64),
                                                              limit, cursor, found)
        self.respond({"items": [members.member_out(m) for m in items], "next_cursor": next_cursor})


class MemberHandler(APIHandler):
    @openapi.endpoint("One member", responses={200: MemberOut}, errors=("forbidden", "not_found"))
    async def get(self, member_id: str) -> None:
        self.respond(members.member_out(await members.get_for_organiser(self.ctx, self.me, member_id)))

    @openapi.endpoint("Edit a member (organiser)", body=MemberPatch, responses={200: MemberOut},
                      errors=("phone_taken", "forbidden", "not_found"))
    async def patch(self, member_id: str) -> None:
        changes = self.decode_fields(MemberPatch, dates_as_text=True)
        self.respond(members.member_out(await members.patch(self.ctx, self.me, member_id, changes)))


class MemberRolesHandler(APIHandler):
    @openapi.endpoint("Replace a member's roles (admin)", body=RolesPut, responses={200: MemberOut},
                      errors=("forbidden", "not_found"))
    async def put(self, member_id: str) -> None:
        body = self.decode_fields(RolesPut)
        self.respond(members.member_out(await members.set_roles(self.ctx, self.me, member_id, body["roles"])))


class MemberPasswordHandler(APIHandler):
    @openapi.endpoint("Set a password (the member, or an admin)", body=PasswordChange, responses={204: None},
                      errors=("forbidden", "not_found"))
    async def put(self, member_id: str) -> None:
        body = self.decode(PasswordChange)
        await members.set_password(self.ctx, self.me, member_id, body.password)
        self.no_content()


class MemberInviteHandler(APIHandler):
    @openapi.endpoint("Issue a single-use 7-day invite code for WeChat binding", responses={201: InviteOut},
                      idempotent=True, errors=("forbidden", "not_found", "member_inactive"))
    @idempotent
    async def post(self, member_id: str) -> None:
        code, expires_at = await members.create_invite(self.ctx, self.me, member_id)
        self.respond({"invite_code": code, "expires_at": expires_at}, status=201)


class MemberImportHandler(APIHandler):
    body_limit = IMPORT_LIMIT

    @openapi.endpoint("Import members from CSV or xlsx", responses={200: ImportResult},
                      body_media="text/csv, application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                      errors=("unsupported_media_type", "invalid_request", "forbidden"))
    async def post(self, org_id: str) -> None:
        result = await member_import.run(self.ctx, self.me, org_id,
                                         self.request.headers.get("Content-Type", ""), self.body)
        self.respond(result)


class MemberAnonymiseHandler(APIHandler):
    @openapi.endpoint("Anonymise a deactivated member (admin): name replaced, phone removed, WeChat unbound, "
                      "sessions revoked; their attendance and the counts branches report stay",
                      responses={200: MemberOut}, errors=("forbidden", "not_found", "member_active"))
    async def post(self, member_id: str) -> None:
        self.respond(members.member_out(await retention.anonymise(self.ctx, self.me, member_id)))
