"""Study warning endpoints (API.md §5): scan a period, list, rectify (整改), close (销号)."""

from __future__ import annotations

from handlers.base import APIHandler, idempotent
from schemas import openapi
from schemas.study import CloseIn, RectifyIn, ScanOut, WarningOut, WarningPage
from server.study import rectification


class ScanHandler(APIHandler):
    @openapi.endpoint("Create one warning per member or branch behind its scheme for a period (admin); "
                      "a re-scan creates none twice", responses={200: ScanOut}, idempotent=True,
                      query={"period": "2026-11, 2026-Q4 or 2026"},
                      errors=("forbidden", "not_found", "invalid_request"))
    @idempotent
    async def post(self, org_id: str) -> None:
        self.respond(await rectification.scan(self.ctx, self.me, org_id, self.query("period", max_length=10)))


class WarningsHandler(APIHandler):
    @openapi.endpoint("Warnings in the subtrees you organise, newest first", responses={200: WarningPage},
                      query={"org_id": "one org's subtree", "status": "open, rectifying or closed",
                             "limit": "1..100", "cursor": "from the last page"},
                      errors=("forbidden", "not_found", "invalid_request"))
    async def get(self) -> None:
        limit, cursor = self.page_args()
        items, next_cursor = await rectification.list_warnings(
            self.ctx, self.me, self.query("org_id", max_length=64), self.query("status", max_length=20),
            limit, cursor)
        self.respond({"items": [rectification.warning_out(w) for w in items], "next_cursor": next_cursor})


class RectifyHandler(APIHandler):
    @openapi.endpoint("Report rectification (整改) with a note and files you uploaded (organiser); the files "
                      "are readable by organisers of the warning's org only", body=RectifyIn,
                      responses={200: WarningOut},
                      errors=("warning_not_found", "forbidden", "warning_not_open", "file_not_found",
                              "invalid_request"))
    async def post(self, warning_id: str) -> None:
        body = self.decode(RectifyIn)
        self.respond(rectification.warning_out(
            await rectification.rectify(self.ctx, self.me, warning_id, body.note, body.file_ids)))


class CloseHandler(APIHandler):
    @openapi.endpoint("Close (销号) a rectified warning (admin)", body=CloseIn, responses={200: WarningOut},
                      errors=("warning_not_found", "forbidden", "warning_not_rectifying"))
    async def post(self, warning_id: str) -> None:
        body = self.decode(CloseIn)
        self.respond(rectification.warning_out(await rectification.close(self.ctx, self.me, warning_id, body.note)))
