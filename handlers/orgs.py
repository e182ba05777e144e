"""Organisation endpoints (API.md §4)."""

from __future__ import annotations

from handlers.base import APIHandler, idempotent
from schemas import openapi
from schemas.orgs import OrgCreate, OrgOut, OrgPage, OrgSettingsIn, OrgSettingsOut
from server import org_settings, orgs


class OrgsHandler(APIHandler):
    @openapi.endpoint("Create an organisation under a parent you administer", body=OrgCreate,
                      responses={201: OrgOut}, idempotent=True, errors=("forbidden", "not_found"))
    @idempotent
    async def post(self) -> None:
        body = self.decode(OrgCreate)
        org = await orgs.create(self.ctx, self.me, body.name, body.kind, body.parent_id)
        self.respond(orgs.org_out(org), status=201)

    @openapi.endpoint("Organisations you can see (your org's ancestors and subtree)", responses={200: OrgPage},
                      query={"parent_id": "only children of this org", "limit": "1..100",
                             "cursor": "from the last page"})
    async def get(self) -> None:
        limit, cursor = self.page_args()
        items, next_cursor = await orgs.list_visible(self.ctx, self.me, self.query("parent_id", max_length=64),
                                                     limit, cursor)
        self.respond({"items": [orgs.org_out(o) for o in items], "next_cursor": next_cursor})


class OrgHandler(APIHandler):
    @openapi.endpoint("One organisation", responses={200: OrgOut}, errors=("not_found",))
    async def get(self, org_id: str) -> None:
        self.respond(orgs.org_out(await orgs.get_visible(self.ctx, self.me, org_id)))


class OrgSettingsHandler(APIHandler):
    @openapi.endpoint("The org's settings as they apply (inherited from ancestors; member warnings off by default)",
                      responses={200: OrgSettingsOut}, errors=("not_found",))
    async def get(self, org_id: str) -> None:
        self.respond(await org_settings.get(self.ctx, self.me, org_id))

    @openapi.endpoint("Set the org's own settings (admin of the org; audited)", body=OrgSettingsIn,
                      responses={200: OrgSettingsOut}, errors=("forbidden", "not_found"))
    async def put(self, org_id: str) -> None:
        self.respond(await org_settings.put(self.ctx, self.me, org_id, self.decode_fields(OrgSettingsIn)))
