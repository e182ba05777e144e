"""群心驿站 activity endpoints (API.md §6): activities, sign-ups, roster, QR check-in, feedback."""

from __future__ import annotations

from handlers.base import APIHandler, idempotent
from schemas import openapi
from schemas.activities import (
    ActivityCreate,
    ActivityOut,
    ActivityPage,
    ActivityPatch,
    CancelIn,
    CheckinIn,
    CheckinOut,
    FeedbackIn,
    FeedbackOut,
    FeedbackSummary,
    NoBody,
    Roster,
    SignupIn,
    SignupOut,
    SignupReminderOut,
)
from schemas.common import QrOut
from server.activities import checkin, feedback, lifecycle, reading, roster, signing_up
from server.errors import invalid
from server.notifications import signup_reminders

NOT_FOUND = ("activity_not_found",)
MANAGE_ERRORS = ("activity_not_found", "forbidden")


class ActivitiesHandler(APIHandler):
    @openapi.endpoint("Create an activity (draft) in an org you organise", body=ActivityCreate,
                      responses={201: ActivityOut}, idempotent=True,
                      errors=("forbidden", "not_found", "invalid_request"))
    @idempotent
    async def post(self) -> None:
        act = await lifecycle.create(self.ctx, self.me, self.decode_fields(ActivityCreate))
        self.respond(reading.activity_out(act, None), status=201)  # new: nobody has signed up

    @openapi.endpoint("Activities you can see: published in your org's ancestors or subtree, and every activity "
                      "of the orgs you organise", responses={200: ActivityPage},
                      query={"programme": "programme key", "org_id": "only this org's activities",
                             "eligible": "true: only those whose programme rules you meet",
                             "status": "draft, published or cancelled", "limit": "1..100",
                             "cursor": "from the last page"})
    async def get(self) -> None:
        limit, cursor = self.page_args()
        items, next_cursor = await reading.list_visible(
            self.ctx, self.me, programme=self.query("programme", max_length=32),
            org_id=self.query("org_id", max_length=64), eligible=bool(self.query_bool("eligible")),
            status=self.query("status", max_length=20), limit=limit, cursor=cursor)
        self.respond({"items": items, "next_cursor": next_cursor})


class ActivityHandler(APIHandler):
    @openapi.endpoint("One activity, with counts and your sign-up", responses={200: ActivityOut}, errors=NOT_FOUND)
    async def get(self, activity_id: str) -> None:
        self.respond(await reading.get_one(self.ctx, self.me, activity_id))

    @openapi.endpoint("Edit an activity (organiser); raising capacity promotes from the waitlist",
                      body=ActivityPatch, responses={200: ActivityOut},
                      errors=(*MANAGE_ERRORS, "capacity_below_confirmed", "activity_cancelled", "invalid_request"))
    async def patch(self, activity_id: str) -> None:
        act = await lifecycle.patch(self.ctx, self.me, activity_id, self.decode_fields(ActivityPatch))
        self.respond(await reading.present(self.ctx, self.me, act))


class ActivityPublishHandler(APIHandler):
    @openapi.endpoint("Publish a draft (organiser)", body=NoBody, responses={200: ActivityOut},
                      errors=(*MANAGE_ERRORS, "activity_cancelled", "invalid_request"))
    async def post(self, activity_id: str) -> None:
        if self.body:
            self.decode(NoBody)
        act = await lifecycle.publish(self.ctx, self.me, activity_id)
        self.respond(await reading.present(self.ctx, self.me, act))


class ActivityCancelHandler(APIHandler):
    @openapi.endpoint("Cancel an activity (organiser); every signed-up member is told", body=CancelIn,
                      responses={200: ActivityOut}, errors=MANAGE_ERRORS)
    async def post(self, activity_id: str) -> None:
        body = self.decode(CancelIn) if self.body else CancelIn()
        act = await lifecycle.cancel(self.ctx, self.me, activity_id, body.reason)
        self.respond(await reading.present(self.ctx, self.me, act))


class SignupsHandler(APIHandler):
    @openapi.endpoint("Sign up: 201 confirmed or waitlisted with a position; 200 with the sign-up you already have",
                      body=SignupIn, responses={201: SignupOut, 200: SignupOut}, idempotent=True,
                      errors=("activity_not_found", "not_eligible", "signup_not_open", "signup_closed",
                              "activity_full", "activity_cancelled"))
    @idempotent
    async def post(self, activity_id: str) -> None:
        body = self.decode(SignupIn) if self.body else SignupIn()
        out, created = await signing_up.sign_up(self.ctx, self.me, activity_id, body.answers)
        self.respond(out, status=201 if created else 200)

    @openapi.endpoint("Roster (organiser): confirmed, waitlisted and cancelled, as JSON, CSV or xlsx",
                      responses={200: Roster}, query={"format": "csv or xlsx for a file; JSON without it"},
                      errors=MANAGE_ERRORS)
    async def get(self, activity_id: str) -> None:
        data = await roster.roster(self.ctx, self.me, activity_id)
        wanted = self.query("format", max_length=10)
        if wanted is None or wanted.lower() == "json":
            self.respond(data)
            return
        self.send_file(*roster.roster_file(self.ctx, data, wanted))


class MySignupHandler(APIHandler):
    @openapi.endpoint("Cancel your sign-up; the first waitlisted member is confirmed at once", responses={204: None},
                      errors=("activity_not_found", "signup_not_found", "activity_cancelled",
                              "cancel_deadline_passed"))
    async def delete(self, activity_id: str) -> None:
        await signing_up.leave(self.ctx, self.me, activity_id)
        self.no_content()


class ActivityQrHandler(APIHandler):
    @openapi.endpoint("The current check-in QR token (organiser); it rotates every 15 s", responses={200: QrOut},
                      errors=(*MANAGE_ERRORS, "activity_cancelled"))
    async def get(self, activity_id: str) -> None:
        self.respond(await checkin.qr_token(self.ctx, self.me, activity_id))


class ActivityQrImageHandler(APIHandler):
    @openapi.endpoint("The current check-in QR code as an image for the projector (organiser)",
                      responses={200: "image/svg+xml, image/png"}, query={"format": "svg (default) or png"},
                      errors=(*MANAGE_ERRORS, "activity_cancelled", "invalid_request"))
    async def get(self, activity_id: str) -> None:
        fmt = (self.query("format", "svg", max_length=10) or "svg").lower()
        if fmt not in ("svg", "png"):
            raise invalid("format", "format is svg or png.")
        image = await checkin.qr_image(self.ctx, self.me, activity_id, fmt)
        self.set_header("Content-Type", "image/svg+xml" if fmt == "svg" else "image/png")
        self.write(image)


class CheckinsHandler(APIHandler):
    @openapi.endpoint("Check in with the QR token (confirmed members)", body=CheckinIn,
                      responses={201: CheckinOut, 200: CheckinOut}, idempotent=True,
                      errors=("activity_not_found", "not_confirmed", "checkin_not_open", "checkin_closed",
                              "activity_cancelled", "qr_invalid", "qr_expired"))
    @idempotent
    async def post(self, activity_id: str) -> None:
        body = self.decode(CheckinIn)
        out, created = await checkin.check_in(self.ctx, self.me, activity_id, body.qr_token)
        self.respond(out, status=201 if created else 200)


class FeedbackHandler(APIHandler):
    @openapi.endpoint("Leave feedback once (members who checked in)", body=FeedbackIn, responses={201: FeedbackOut},
                      idempotent=True, errors=("activity_not_found", "not_attended", "feedback_exists",
                                                 "content_rejected"))
    @idempotent
    async def post(self, activity_id: str) -> None:
        body = self.decode(FeedbackIn)
        self.respond(await feedback.give_feedback(self.ctx, self.me, activity_id, body.rating, body.comment),
                     status=201)

    @openapi.endpoint("Ratings and comments (organiser)", responses={200: FeedbackSummary}, errors=MANAGE_ERRORS)
    async def get(self, activity_id: str) -> None:
        self.respond(await feedback.feedback_summary(self.ctx, self.me, activity_id))


class SignupReminderHandler(APIHandler):
    @openapi.endpoint("Whether you asked to be told when sign-up opens", responses={200: SignupReminderOut},
                      errors=NOT_FOUND)
    async def get(self, activity_id: str) -> None:
        self.respond(await signup_reminders.get(self.ctx, self.me, activity_id))

    @openapi.endpoint("Be told once when sign-up opens (signup_opens; idempotent)", responses={200: SignupReminderOut},
                      errors=("activity_not_found", "activity_cancelled", "signup_not_open", "signup_already_open",
                              "signup_closed", "not_eligible"))
    async def put(self, activity_id: str) -> None:
        self.respond(await signup_reminders.ask(self.ctx, self.me, activity_id))

    @openapi.endpoint("No longer be told when sign-up opens (idempotent)", responses={204: None}, errors=NOT_FOUND)
    async def delete(self, activity_id: str) -> None:
        await signup_reminders.withdraw(self.ctx, self.me, activity_id)
        self.no_content()
