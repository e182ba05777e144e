"""Announcement endpoints (API.md §7)."""

from __future__ import annotations

from handlers.base import APIHandler, idempotent
from schemas import openapi
from schemas.announcements import (
    AnnouncementCreate,
    AnnouncementOut,
    AnnouncementPage,
    AnnouncementPatch,
    ReceiptsOut,
    RemindOut,
)
from server import announcements
from server.notifications import announcement_reminders


class AnnouncementsHandler(APIHandler):
    @openapi.endpoint("Publish an announcement to an org subtree you organise", body=AnnouncementCreate,
                      responses={201: AnnouncementOut}, idempotent=True,
                      errors=("forbidden", "not_found", "file_not_found", "invalid_request"))
    @idempotent
    async def post(self) -> None:
        doc = await announcements.create(self.ctx, self.me, self.decode_fields(AnnouncementCreate))
        self.respond(await announcements.announcement_out(self.ctx, self.me, doc), status=201)

    @openapi.endpoint("The announcements of the orgs you organise, newest first, in every status",
                      responses={200: AnnouncementPage}, errors=("forbidden", "not_found"),
                      query={"org_id": "only this org's subtree", "status": "scheduled, live, expired or retracted",
                             "limit": "1..100", "cursor": "from the last page"})
    async def get(self) -> None:
        limit, cursor = self.page_args()
        items, next_cursor = await announcements.list_for_organiser(
            self.ctx, self.me, org_id=self.query("org_id", max_length=64),
            status=self.query("status", max_length=20), limit=limit, cursor=cursor)
        self.respond({"items": items, "next_cursor": next_cursor})


class AnnouncementHandler(APIHandler):
    @openapi.endpoint("One announcement (its audience while on air; its organisers always)",
                      responses={200: AnnouncementOut}, errors=("announcement_not_found",))
    async def get(self, announcement_id: str) -> None:
        doc = await announcements.get(self.ctx, self.me, announcement_id)
        self.respond(await announcements.announcement_out(self.ctx, self.me, doc))

    @openapi.endpoint("Edit an announcement (version + 1)", body=AnnouncementPatch, responses={200: AnnouncementOut},
                      errors=("announcement_not_found", "forbidden", "file_not_found", "invalid_request"))
    async def patch(self, announcement_id: str) -> None:
        doc = await announcements.patch(self.ctx, self.me, announcement_id, self.decode_fields(AnnouncementPatch))
        self.respond(await announcements.announcement_out(self.ctx, self.me, doc))

    @openapi.endpoint("Retract an announcement", responses={204: None},
                      errors=("announcement_not_found", "forbidden"))
    async def delete(self, announcement_id: str) -> None:
        await announcements.retract(self.ctx, self.me, announcement_id)
        self.no_content()


class AnnouncementReadHandler(APIHandler):
    @openapi.endpoint("Mark an announcement read (idempotent)", responses={204: None},
                      errors=("announcement_not_found", "forbidden"))
    async def post(self, announcement_id: str) -> None:
        await announcements.mark_read(self.ctx, self.me, announcement_id)
        self.no_content()


class AnnouncementAckHandler(APIHandler):
    @openapi.endpoint("Acknowledge an announcement (implies read; idempotent)", responses={204: None},
                      errors=("announcement_not_found", "forbidden"))
    async def post(self, announcement_id: str) -> None:
        await announcements.acknowledge(self.ctx, self.me, announcement_id)
        self.no_content()


class AnnouncementReceiptsHandler(APIHandler):
    @openapi.endpoint("Read receipts: audience, read, acknowledged, and who has not read it",
                      responses={200: ReceiptsOut}, errors=("announcement_not_found", "forbidden"),
                      query={"limit": f"unread members per answer, 1..{announcements.RECEIPTS_WHOLE} (all of a "
                                      "smaller audience by default)", "cursor": "next_cursor of the last answer"})
    async def get(self, announcement_id: str) -> None:
        limit = self.query_int("limit", announcements.RECEIPTS_WHOLE, 1, announcements.RECEIPTS_WHOLE)
        self.respond(await announcements.receipts(self.ctx, self.me, announcement_id, limit,
                                                  self.query_token("cursor", "cursor")))


class AnnouncementRemindHandler(APIHandler):
    @openapi.endpoint("Remind the members who have not read it (must-read: not acknowledged); once per 24 h",
                      responses={202: RemindOut}, idempotent=True,
                      errors=("announcement_not_found", "forbidden", "announcement_not_live", "reminder_too_soon"))
    @idempotent
    async def post(self, announcement_id: str) -> None:
        queued = await announcement_reminders.remind(self.ctx, self.me, announcement_id)
        self.respond({"queued": queued}, status=202)
