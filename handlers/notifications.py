"""Notification endpoints (API.md §9): templates, grants, preferences, and the deliveries."""

from __future__ import annotations

from handlers.base import APIHandler
from schemas import openapi
from schemas.notifications import (
    DeliveryPage,
    GrantList,
    NotificationPage,
    Preferences,
    PreferencesOut,
    SubscriptionsPost,
    TemplateList,
    TemplateOut,
    TemplatePut,
)
from server.notifications import deliveries, grants, preferences, templates


class TemplatesHandler(APIHandler):
    @openapi.endpoint("Every event's WeChat template (what the app passes to wx.requestSubscribeMessage)",
                      responses={200: TemplateList})
    async def get(self) -> None:
        self.respond({"items": await templates.list_all(self.ctx)})


class TemplateHandler(APIHandler):
    @openapi.endpoint("Configure an event's WeChat template (admin of the root organisation)", body=TemplatePut,
                      responses={200: TemplateOut}, errors=("forbidden", "not_found", "invalid_request"))
    async def put(self, event: str) -> None:
        self.respond(await templates.put(self.ctx, self.me, event, self.decode_fields(TemplatePut)))


class SubscriptionsHandler(APIHandler):
    @openapi.endpoint("Report what wx.requestSubscribeMessage answered: each accept is one grant",
                      body=SubscriptionsPost, responses={200: GrantList})
    async def post(self) -> None:
        body = self.decode(SubscriptionsPost)
        self.respond({"items": await grants.record(self.ctx, self.me, body.results)})

    @openapi.endpoint("Your grants per enabled event and template", responses={200: GrantList})
    async def get(self) -> None:
        self.respond({"items": await grants.summary(self.ctx, self.me.member_id)})


class PreferencesHandler(APIHandler):
    @openapi.endpoint("The events you muted (still in the feed, never in WeChat)", responses={200: PreferencesOut})
    async def get(self) -> None:
        self.respond(await preferences.get(self.ctx, self.me.member_id))

    @openapi.endpoint("Mute events (the list replaces the last one)", body=Preferences,
                      responses={200: PreferencesOut}, errors=("invalid_request",))
    async def put(self) -> None:
        body = self.decode(Preferences)
        self.respond(await preferences.put(self.ctx, self.me.member_id, list(body.muted)))


class MyNotificationsHandler(APIHandler):
    @openapi.endpoint("Your notifications, newest first, with how each went to WeChat",
                      responses={200: NotificationPage}, query={"limit": "1..100", "cursor": "from the last page"})
    async def get(self) -> None:
        limit, cursor = self.page_args()
        items, next_cursor = await deliveries.mine(self.ctx, self.me, limit, cursor)
        self.respond({"items": items, "next_cursor": next_cursor})


class DeliveriesHandler(APIHandler):
    @openapi.endpoint("The delivery log of what one activity, session, announcement, request or warning caused "
                      "(organisers of its org)", responses={200: DeliveryPage}, errors=("not_found",),
                      query={"ref_id": "the activity, session, announcement, request or warning",
                             "event": "only this event", "limit": "1..100", "cursor": "from the last page"})
    async def get(self) -> None:
        limit, cursor = self.page_args()
        items, next_cursor = await deliveries.for_ref(
            self.ctx, self.me, self.query_token("ref_id", "ref_id", max_length=64),
            self.query("event", max_length=32), limit, cursor)
        self.respond({"items": items, "next_cursor": next_cursor})
