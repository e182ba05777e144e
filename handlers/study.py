"""Study endpoints (API.md §5): schemes, sessions, QR, check-ins, attendance, requests, self-study,
progress, compliance and exports."""

from __future__ import annotations

from handlers.base import APIHandler, idempotent
from schemas import openapi
from schemas.common import QrOut
from schemas.study import (
    AttendanceOut,
    AttendanceRoster,
    Compliance,
    DecisionIn,
    MarkIn,
    Progress,
    RequestIn,
    RequestOut,
    RequestPage,
    SchemeOut,
    SchemePut,
    SelfStudyIn,
    SelfStudyOut,
    SelfStudyPage,
    SessionCancel,
    SessionCreate,
    SessionOut,
    SessionPage,
    SessionPatch,
    StudyCheckinIn,
    StudyCheckinOut,
)
from server import spreadsheets
from server.errors import invalid
from server.study import attendance, checkins, progress, schemes, sessions

CHECKIN_ERRORS = ("session_not_found", "not_an_attendee", "checkin_not_open", "checkin_closed",
                  "session_cancelled", "qr_invalid", "qr_expired", "location_required", "location_inaccurate",
                  "outside_geofence")
PERIOD_QUERY = {"period": "2026-11 (month), 2026-Q4 (quarter) or 2026 (year); default: this month"}


class StudyHandler(APIHandler):
    def query_id(self, name: str) -> str | None:
        return self.query(name, max_length=64)


# -- scheme -----------------------------------------------------------------------------------------

class SchemeHandler(StudyHandler):
    @openapi.endpoint("The study scheme that applies to an org (its own, inherited, or the default)",
                      responses={200: SchemeOut}, errors=("not_found",))
    async def get(self, org_id: str) -> None:
        self.respond(await schemes.get(self.ctx, self.me, org_id))

    @openapi.endpoint("Set an org's own study scheme (admin); its subtree inherits it", body=SchemePut,
                      responses={200: SchemeOut}, errors=("forbidden", "not_found", "invalid_request"))
    async def put(self, org_id: str) -> None:
        self.respond(await schemes.put(self.ctx, self.me, org_id, self.decode_fields(SchemePut)))

    @openapi.endpoint("Drop an org's own scheme so it inherits again (admin)", responses={204: None},
                      errors=("forbidden", "not_found"))
    async def delete(self, org_id: str) -> None:
        await schemes.delete(self.ctx, self.me, org_id)
        self.no_content()


# -- sessions ---------------------------------------------------------------------------------------

class SessionsHandler(StudyHandler):
    @openapi.endpoint("Create a study session (organiser of org_id)", body=SessionCreate,
                      responses={201: SessionOut}, idempotent=True,
                      errors=("forbidden", "not_found", "invalid_request"))
    @idempotent
    async def post(self) -> None:
        session = await sessions.create(self.ctx, self.me, self.decode_fields(SessionCreate))
        self.respond(await sessions.session_out(self.ctx, self.me, session), status=201)

    @openapi.endpoint("Study sessions you can see, newest first", responses={200: SessionPage},
                      query={"org_id": "sessions in this org's subtree", "from": "starts at or after (RFC 3339)",
                             "to": "starts before (RFC 3339)", "limit": "1..100", "cursor": "from the last page"},
                      errors=("not_found",))
    async def get(self) -> None:
        limit, cursor = self.page_args()
        items, next_cursor = await sessions.list_visible(
            self.ctx, self.me, self.query_id("org_id"), self.query_time("from"), self.query_time("to"),
            limit, cursor)
        self.respond({"items": await sessions.sessions_out(self.ctx, self.me, items),
                      "next_cursor": next_cursor})


class SessionHandler(StudyHandler):
    @openapi.endpoint("One study session, with my_attendance for the caller", responses={200: SessionOut},
                      errors=("session_not_found",))
    async def get(self, session_id: str) -> None:
        session = await sessions.get_visible(self.ctx, self.me, session_id)
        self.respond(await sessions.session_out(self.ctx, self.me, session))

    @openapi.endpoint("Change a session (organiser); attendees only until check-in opens", body=SessionPatch,
                      responses={200: SessionOut},
                      errors=("session_not_found", "forbidden", "session_cancelled", "attendees_fixed",
                              "invalid_request"))
    async def patch(self, session_id: str) -> None:
        session = await sessions.update(self.ctx, self.me, session_id, self.decode_fields(SessionPatch))
        self.respond(await sessions.session_out(self.ctx, self.me, session))


class SessionCancelHandler(StudyHandler):
    @openapi.endpoint("Cancel a session (organiser); its records stop counting", body=SessionCancel,
                      responses={200: SessionOut}, errors=("session_not_found", "forbidden", "session_cancelled"))
    async def post(self, session_id: str) -> None:
        body = self.decode(SessionCancel)
        session = await sessions.cancel(self.ctx, self.me, session_id, body.reason)
        self.respond(await sessions.session_out(self.ctx, self.me, session))


class QrHandler(StudyHandler):
    @openapi.endpoint("The current rotating check-in token (organiser); show it and refresh after refresh_in s",
                      responses={200: QrOut}, errors=("session_not_found", "forbidden", "session_cancelled"))
    async def get(self, session_id: str) -> None:
        self.respond(await sessions.qr_token(self.ctx, self.me, session_id))


class QrImageHandler(StudyHandler):
    @openapi.endpoint("The current check-in QR code as an image for the projector (organiser)",
                      responses={200: "image/svg+xml, image/png"}, query={"format": "svg (default) or png"},
                      errors=("session_not_found", "forbidden", "session_cancelled", "invalid_request"))
    async def get(self, session_id: str) -> None:
        fmt = (self.query("format", "svg") or "svg").lower()
        if fmt not in ("svg", "png"):
            raise invalid("format", "format is svg or png.")
        image = await sessions.qr_image(self.ctx, self.me, session_id, fmt)
        self.set_header("Content-Type", "image/svg+xml" if fmt == "svg" else "image/png")
        self.write(image)


# -- check-ins and attendance -----------------------------------------------------------------------

class CheckinsHandler(StudyHandler):
    @openapi.endpoint("Check in to a study session with the scanned QR token (and location when asked)",
                      body=StudyCheckinIn, responses={201: StudyCheckinOut, 200: StudyCheckinOut}, idempotent=True,
                      errors=CHECKIN_ERRORS)
    @idempotent
    async def post(self) -> None:
        out, created = await checkins.check_in(self.ctx, self.me, self.decode_fields(StudyCheckinIn))
        self.respond(out, status=201 if created else 200)


class AttendanceHandler(StudyHandler):
    @openapi.endpoint("Live attendance roster of a session (organiser)", responses={200: AttendanceRoster},
                      errors=("session_not_found", "forbidden"))
    async def get(self, session_id: str) -> None:
        self.respond(await attendance.roster(self.ctx, self.me, session_id))


class MarkHandler(StudyHandler):
    @openapi.endpoint("Mark a member's attendance by hand, with a reason (organiser; audited)", body=MarkIn,
                      responses={200: AttendanceOut},
                      errors=("session_not_found", "forbidden", "not_found", "session_cancelled",
                              "attendance_conflict"))
    async def put(self, session_id: str, member_id: str) -> None:
        body = self.decode(MarkIn)
        self.respond(await attendance.mark(self.ctx, self.me, session_id, member_id, body.status,
                                                 body.reason))


class RequestsHandler(StudyHandler):
    @openapi.endpoint("Ask for leave or a make-up for a session", body=RequestIn, responses={201: RequestOut},
                      idempotent=True,
                      errors=("session_not_found", "not_an_attendee", "session_cancelled", "request_pending",
                              "already_checked_in", "content_rejected"))
    @idempotent
    async def post(self) -> None:
        body = self.decode(RequestIn)
        doc = await attendance.create_request(self.ctx, self.me, body.session_id, body.kind, body.reason)
        self.respond(attendance.request_out(doc), status=201)

    @openapi.endpoint("Leave and make-up requests: your own, and those you decide as an organiser",
                      responses={200: RequestPage},
                      query={"session_id": "one session", "status": "pending, approved or rejected",
                             "org_id": "only that org's subtree (you organise it)",
                             "limit": "1..100", "cursor": "from the last page"},
                      errors=("forbidden", "not_found"))
    async def get(self) -> None:
        limit, cursor = self.page_args()
        status = self.query("status", max_length=20)
        if status is not None and status not in attendance.REQUEST_STATUSES:
            raise invalid("status", "status is pending, approved or rejected.")
        items, next_cursor = await attendance.list_requests(self.ctx, self.me, self.query_id("session_id"),
                                                                  status, limit, cursor, self.query_id("org_id"))
        self.respond({"items": [attendance.request_out(d) for d in items], "next_cursor": next_cursor})


class RequestDecisionHandler(StudyHandler):
    approve = True

    @openapi.endpoint("Decide a leave or make-up request (organiser); approval sets leave or present",
                      body=DecisionIn, responses={200: RequestOut},
                      errors=("request_not_found", "forbidden", "request_not_pending", "session_cancelled",
                              "attendance_conflict"))
    async def post(self, request_id: str) -> None:
        body = self.decode(DecisionIn) if self.body.strip() else DecisionIn()  # the note is optional
        doc = await attendance.decide(self.ctx, self.me, request_id, self.approve, body.note)
        self.respond(attendance.request_out(doc))


class RequestRejectHandler(RequestDecisionHandler):
    approve = False


# -- self-study, progress, compliance, export -------------------------------------------------------

class SelfStudyHandler(StudyHandler):
    @openapi.endpoint("Log self-study (at most 240 minutes a day)", body=SelfStudyIn, responses={201: SelfStudyOut},
                      idempotent=True, errors=("daily_cap_exceeded", "invalid_request", "content_rejected"))
    @idempotent
    async def post(self) -> None:
        body = self.decode(SelfStudyIn)
        doc = await checkins.log_self_study(self.ctx, self.me, body.track, body.minutes, body.material,
                                                  body.note, body.date)
        self.respond(checkins.self_study_out(doc), status=201)

    @openapi.endpoint("Your own self-study entries, newest first", responses={200: SelfStudyPage},
                      query={"limit": "1..100", "cursor": "from the last page"})
    async def get(self) -> None:
        limit, cursor = self.page_args()
        items, next_cursor = await checkins.list_self_study(self.ctx, self.me, limit, cursor)
        self.respond({"items": [checkins.self_study_out(d) for d in items], "next_cursor": next_cursor})


class ProgressHandler(StudyHandler):
    @openapi.endpoint("Your progress against your org's scheme for a period", responses={200: Progress},
                      query=PERIOD_QUERY, errors=("invalid_request",))
    async def get(self) -> None:
        self.respond(await progress.my_progress(self.ctx, self.me, self.query("period", max_length=10)))


class ComplianceHandler(StudyHandler):
    @openapi.endpoint("Compliance of an org subtree for a period (organiser)", responses={200: Compliance},
                      query=PERIOD_QUERY, errors=("invalid_request", "forbidden", "not_found"))
    async def get(self, org_id: str) -> None:
        self.respond(await progress.compliance(self.ctx, self.me, org_id, self.query("period", max_length=10)))


class ExportHandler(StudyHandler):
    @openapi.endpoint("Export a period's compliance and attendance, Chinese headers (organiser)",
                      responses={200: f"{spreadsheets.CSV_MIME}, {spreadsheets.XLSX_MIME}"},
                      query={**PERIOD_QUERY, "format": "csv (default) or xlsx (both tables as sheets)",
                             "table": "for csv: compliance (default) or attendance"},
                      errors=("invalid_request", "forbidden", "not_found"))
    async def get(self, org_id: str) -> None:
        fmt = spreadsheets.file_format(self.query("format", max_length=10))
        table = self.query("table", "compliance", max_length=20)
        if table not in ("compliance", "attendance"):
            raise invalid("table", "table is compliance or attendance.")
        body, mime, filename = await progress.export(self.ctx, self.me, org_id,
                                                           self.query("period", max_length=10), fmt, table)
        self.send_file(body, mime, filename)
