"""The audit log endpoint (API.md §11): read-only, for admins, within their subtrees."""

from __future__ import annotations

from handlers.base import APIHandler
from schemas import openapi
from schemas.audit import AuditPage
from server import audit


class AuditHandler(APIHandler):
    @openapi.endpoint("Audit entries within the subtrees you administer, newest first (admin)",
                      responses={200: AuditPage},
                      query={"org_id": "one org's subtree", "actor_id": "entries by this member",
                             "target_id": "entries about this record (a member id, a warning id, ...)",
                             "from": "at or after this time", "to": "before this time", "limit": "1..100",
                             "cursor": "from the last page"},
                      errors=("forbidden", "not_found", "invalid_request"))
    async def get(self) -> None:
        limit, cursor = self.page_args()
        items, next_cursor = await audit.list_entries(
            self.ctx, self.me, org_id=self.query("org_id", max_length=64),
            actor_id=self.query("actor_id", max_length=64), target_id=self.query("target_id", max_length=200),
            since=self.query_time("from"), until=self.query_time("to"), limit=limit, cursor=cursor)
        self.respond({"items": items, "next_cursor": next_cursor})
