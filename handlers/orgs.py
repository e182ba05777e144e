"""Organisation endpoints (API.md §4)."""

from __future__ import annotations

from handlers.base import APIHandler, idempotent
from schemas import openapi
from schemas.orgs import OrgCreate, OrgOut, OrgPage
from server import orgs


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
