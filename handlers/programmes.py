"""群心驿站 programme endpoints (API.md §6)."""

from __future__ import annotations

import msgspec

from handlers.base import APIHandler
from schemas import openapi
from schemas.activities import ProgrammeKey, ProgrammeOut, ProgrammePage, ProgrammePut
from server import programmes
from server.errors import invalid


class ProgrammesHandler(APIHandler):
    @openapi.endpoint("Programmes and their eligibility rules", responses={200: ProgrammePage},
                      query={"limit": "1..100", "cursor": "from the last page"})
    async def get(self) -> None:
        limit, cursor = self.page_args()
        items, next_cursor = await programmes.list_all(self.ctx, limit, cursor)
        self.respond({"items": [programmes.programme_out(p) for p in items], "next_cursor": next_cursor})


class ProgrammeHandler(APIHandler):
    @openapi.endpoint("Create or replace a programme (admin of the root organisation)", body=ProgrammePut,
                      responses={200: ProgrammeOut}, errors=("forbidden", "invalid_request"))
    async def put(self, key: str) -> None:
        try:
            msgspec.convert(key, ProgrammeKey)
        except msgspec.ValidationError:
            raise invalid("key", "a-z, 0-9 and _, starting with a letter, at most 32 characters") from None
        doc = await programmes.put(self.ctx, self.me, key, self.decode_fields(ProgrammePut))
        self.respond(programmes.programme_out(doc))
