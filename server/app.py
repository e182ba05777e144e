"""What the application serves (ROUTES, the API; PAGES, the console and /docs beside it), the application
factory, and the per-process lifecycle (open client, create indexes, serve, drain, close)."""

from __future__ import annotations

import asyncio
import logging
import re
import signal

import tornado.httpserver
import tornado.web

from handlers import (
    activities,
    announcements,
    audit,
    console,
    feed,
    files,
    identity,
    members,
    notifications,
    orgs,
    personal_export,
    programmes,
    rectification,
    study,
    suggestions,
    system,
)
from handlers.base import NotFoundHandler
from server.clock import Clock
from server.config import Settings
from server.context import Context
from server.db import create_indexes, make_client
from server.security import TokenSigner

log = logging.getLogger("branchline")

# Each handler enforces its own body limit (1 MiB JSON, 20 MiB files): it drops what is over it,
# reads the rest and answers 413 with its code, since a client still sending cannot read an answer
# from a closed socket. Tornado's own limit is therefore only how much of an oversized body is
# drained (in memory nothing is kept; the body timeout bounds the time); past it Tornado closes the
# connection with a bare 400, so it sits far above every handler's limit.
DRAIN_LIMIT = 1024 * 1024 * 1024


def _route(path: str, handler: type[tornado.web.RequestHandler]) -> tuple[str, type]:
    """A path as OpenAPI writes it, each `{name}` one path segment, as the regex Tornado matches."""
    return re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", path), handler


#: Every path the API serves and the handler that answers it; anything else is NotFoundHandler's 404.
#: /openapi.json lists the paths in this order (one group per handler module, alphabetical).
ROUTES = [_route(path, handler) for path, handler in [
    # Activities (群心驿站, API.md §6): sign-ups with a waitlist, the roster, QR check-in, feedback
    ("/api/v1/activities", activities.ActivitiesHandler),
    ("/api/v1/activities/{activity_id}", activities.ActivityHandler),
    ("/api/v1/activities/{activity_id}/publish", activities.ActivityPublishHandler),
    ("/api/v1/activities/{activity_id}/cancel", activities.ActivityCancelHandler),
    ("/api/v1/activities/{activity_id}/signups", activities.SignupsHandler),
    ("/api/v1/activities/{activity_id}/signups/me", activities.MySignupHandler),
    ("/api/v1/activities/{activity_id}/signup-reminder", activities.SignupReminderHandler),
    ("/api/v1/activities/{activity_id}/qr", activities.ActivityQrHandler),
    ("/api/v1/activities/{activity_id}/qr/image", activities.ActivityQrImageHandler),
    ("/api/v1/activities/{activity_id}/checkins", activities.CheckinsHandler),
    ("/api/v1/activities/{activity_id}/feedback", activities.FeedbackHandler),

    # Announcements (API.md §7): read receipts and acknowledgements
    ("/api/v1/announcements", announcements.AnnouncementsHandler),
    ("/api/v1/announcements/{announcement_id}", announcements.AnnouncementHandler),
    ("/api/v1/announcements/{announcement_id}/read", announcements.AnnouncementReadHandler),
    ("/api/v1/announcements/{announcement_id}/ack", announcements.AnnouncementAckHandler),
    ("/api/v1/announcements/{announcement_id}/receipts", announcements.AnnouncementReceiptsHandler),
    ("/api/v1/announcements/{announcement_id}/remind", announcements.AnnouncementRemindHandler),

    # The audit log (API.md §11): read-only, for admins
    ("/api/v1/audit", audit.AuditHandler),

    # The personal feed and its sync (API.md §7)
    ("/api/v1/feed", feed.FeedHandler),
    ("/api/v1/sync", feed.SyncHandler),
    ("/api/v1/feed/{item_id}/read", feed.FeedItemReadHandler),

    # Files (API.md §8): upload, download with Range
    ("/api/v1/files", files.FilesHandler),
    ("/api/v1/files/{file_id}", files.FileHandler),

    # Sign-in (API.md §3): WeChat, password, refresh, and the signed-in member
    ("/api/v1/auth/wechat", identity.WechatLoginHandler),
    ("/api/v1/auth/bind", identity.BindHandler),
    ("/api/v1/auth/password", identity.PasswordLoginHandler),
    ("/api/v1/auth/refresh", identity.RefreshHandler),
    ("/api/v1/auth/logout", identity.LogoutHandler),
    ("/api/v1/me", identity.MeHandler),

    # Members (API.md §3–4), and importing them into an org
    ("/api/v1/members", members.MembersHandler),
    ("/api/v1/members/{member_id}", members.MemberHandler),
    ("/api/v1/members/{member_id}/roles", members.MemberRolesHandler),
    ("/api/v1/members/{member_id}/password", members.MemberPasswordHandler),
    ("/api/v1/members/{member_id}/invite", members.MemberInviteHandler),
    ("/api/v1/orgs/{org_id}/members/import", members.MemberImportHandler),
    ("/api/v1/members/{member_id}/anonymise", members.MemberAnonymiseHandler),

    # Notifications (API.md §9): WeChat templates, grants, preferences, a member's notifications, deliveries
    ("/api/v1/notification-templates", notifications.TemplatesHandler),
    ("/api/v1/notification-templates/{event}", notifications.TemplateHandler),
    ("/api/v1/me/subscriptions", notifications.SubscriptionsHandler),
    ("/api/v1/me/notification-preferences", notifications.PreferencesHandler),
    ("/api/v1/me/notifications", notifications.MyNotificationsHandler),
    ("/api/v1/notifications/deliveries", notifications.DeliveriesHandler),

    # Organisations (API.md §4)
    ("/api/v1/orgs", orgs.OrgsHandler),
    ("/api/v1/orgs/{org_id}", orgs.OrgHandler),
    ("/api/v1/orgs/{org_id}/settings", orgs.OrgSettingsHandler),

    # Members' own data (API.md §11): the export
    ("/api/v1/me/export", personal_export.MeExportHandler),

    # Programmes (群心驿站, API.md §6): who may sign up
    ("/api/v1/programmes", programmes.ProgrammesHandler),
    ("/api/v1/programmes/{key}", programmes.ProgrammeHandler),

    # Study (API.md §5): schemes, sessions, QR check-in, attendance, requests, self-study, progress
    ("/api/v1/orgs/{org_id}/study-scheme", study.SchemeHandler),
    ("/api/v1/study/sessions", study.SessionsHandler),
    ("/api/v1/study/sessions/{session_id}", study.SessionHandler),
    ("/api/v1/study/sessions/{session_id}/cancel", study.SessionCancelHandler),
    ("/api/v1/study/sessions/{session_id}/qr", study.QrHandler),
    ("/api/v1/study/sessions/{session_id}/qr/image", study.QrImageHandler),
    ("/api/v1/study/sessions/{session_id}/attendance", study.AttendanceHandler),
    ("/api/v1/study/sessions/{session_id}/attendance/{member_id}", study.MarkHandler),
    ("/api/v1/study/checkins", study.CheckinsHandler),
    ("/api/v1/study/requests", study.RequestsHandler),
    ("/api/v1/study/requests/{request_id}/approve", study.RequestDecisionHandler),
    ("/api/v1/study/requests/{request_id}/reject", study.RequestRejectHandler),
    ("/api/v1/study/self-study", study.SelfStudyHandler),
    ("/api/v1/me/study/progress", study.ProgressHandler),
    ("/api/v1/orgs/{org_id}/study/compliance", study.ComplianceHandler),
    ("/api/v1/orgs/{org_id}/study/export", study.ExportHandler),

    # Suggestions (意见建议, API.md §11)
    ("/api/v1/suggestions", suggestions.SuggestionsHandler),
    ("/api/v1/suggestions/{suggestion_id}", suggestions.SuggestionHandler),
    ("/api/v1/suggestions/{suggestion_id}/reply", suggestions.SuggestionReplyHandler),

    # Operations: liveness, readiness, metrics, and this table as OpenAPI
    ("/healthz", system.HealthHandler),
    ("/readyz", system.ReadyHandler),
    ("/metrics", system.MetricsHandler),
    ("/openapi.json", system.OpenAPIHandler),

    # Study warnings (API.md §5): scan a period, rectify (整改), close (销号)
    ("/api/v1/orgs/{org_id}/warnings/scan", rectification.ScanHandler),
    ("/api/v1/warnings", rectification.WarningsHandler),
    ("/api/v1/warnings/{warning_id}/rectify", rectification.RectifyHandler),
    ("/api/v1/warnings/{warning_id}/close", rectification.CloseHandler),
]]

#: The pages served beside the API (handlers/console.py): the organisers' console and the API reference.
#: Not API operations, so kept out of ROUTES and of /openapi.json.
PAGES = [
    ("/", console.RedirectHandler),
    ("/console", console.RedirectHandler),
    ("/console/(?P<path>.*)", console.ConsoleHandler),
    ("/docs", console.DocsHandler),
]


def make_app(ctx: Context) -> tornado.web.Application:
    # per-process tasks: the feed's counter watcher and scheduled publication/expiry; the notification
    # sender and the reminders (each works only in the process holding its lease); the location
    # retention sweep
    from server import retention
    from server.feed import background as feed_background
    from server.notifications import reminders
    from server.notifications import sender as notification_sender

    feed_background.start(ctx)
    notification_sender.start(ctx)
    reminders.start(ctx)
    retention.start(ctx)
    return tornado.web.Application(
        ROUTES + PAGES,
        ctx=ctx,
        signer=TokenSigner(ctx.settings),
        routes=ROUTES,  # for /openapi.json
        default_handler_class=NotFoundHandler,
        compress_response=True,
        xsrf_cookies=False,
    )


def make_context(settings: Settings, uri: str, clock: Clock | None = None) -> Context:
    client = make_client(settings, uri)
    return Context(settings=settings, client=client, db=client[settings.db_name], clock=clock or Clock())


async def start_http(app: tornado.web.Application, settings: Settings, sockets=None,
                     port: int | None = None) -> tornado.httpserver.HTTPServer:
    server = tornado.httpserver.HTTPServer(app, xheaders=settings.trust_proxy, max_body_size=DRAIN_LIMIT,
                                           idle_connection_timeout=75, body_timeout=settings.body_timeout_seconds)
    if sockets is not None:
        server.add_sockets(sockets)
    else:
        server.listen(port if port is not None else settings.port, settings.host)
    return server


async def serve(settings: Settings, uri: str, sockets, *, create_schema: bool = True) -> None:
    """Run one API process until SIGTERM/SIGINT, then stop accepting and drain in-flight requests."""
    ctx = make_context(settings, uri)  # created inside the running loop, after any fork
    if create_schema:
        await create_indexes(ctx.db)
    app = make_app(ctx)
    server = await start_http(app, settings, sockets)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutting down: no new connections, draining in-flight requests")
    await drain(server, ctx)
    await ctx.client.close()


async def drain(server: tornado.httpserver.HTTPServer, ctx: Context) -> None:
    """Stop accepting, let in-flight requests finish (bounded by the grace period), then close."""
    server.stop()
    ctx.stopping.set()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + ctx.settings.shutdown_grace_seconds
    while ctx.inflight and loop.time() < deadline:
        await asyncio.sleep(0.05)
    if ctx.inflight:
        log.warning("%d requests still running after the grace period; closing", len(ctx.inflight))
    await server.close_all_connections()
