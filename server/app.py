"""Application factory and the per-process lifecycle (open client, create indexes, serve, drain, close)."""

from __future__ import annotations

import asyncio
import logging
import signal

import tornado.httpserver
import tornado.web

from handlers import all_routes
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


def make_app(ctx: Context) -> tornado.web.Application:
    routes = all_routes()
    # per-process feed tasks: counter watcher, scheduled publication/expiry
    from server.feed import background as feed_background

    feed_background.start(ctx)
    return tornado.web.Application(
        routes,
        ctx=ctx,
        signer=TokenSigner(ctx.settings),
        routes=routes,
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
