"""The personal feed and its sync (API.md §7)."""

from __future__ import annotations

import hashlib

import msgspec

from handlers.base import APIHandler
from schemas import openapi
from schemas.feed import FeedPage, SyncOut
from server.feed import reading as feed_reading
from server.feed import sync as feed_sync
from server.feed import writing as feed_writing

_encoder = msgspec.json.Encoder()


class FeedHandler(APIHandler):
    @openapi.endpoint("My feed, newest first, pinned items first on the first page (ETag / 304)",
                      responses={200: FeedPage, 304: None},
                      query={"limit": "1..100 (default 20)", "before": "next_before of the previous page"},
                      errors=("invalid_request",))
    async def get(self) -> None:
        limit = self.query_int("limit", 20, 1, 100)
        page = await feed_reading.feed_page(self.ctx, self.me, limit, self.query_token("before", "cursor"))
        body = _encoder.encode(page)
        self.set_header("Etag", f'W/"f{hashlib.sha1(body).hexdigest()[:24]}"')
        if self.check_etag_header():
            self.set_status(304)
            return
        self.write(body)


class SyncHandler(APIHandler):
    @openapi.endpoint("Sync my feed: the whole feed in pages without `since`, then changes; long-poll with `timeout`",
                      responses={200: SyncOut, 304: None},
                      query={"since": "next_since of the previous answer", "limit": "1..200 (default 100)",
                             "timeout": "0..30 seconds to wait for a change"},
                      errors=("sync_token_expired", "invalid_request"))
    async def get(self) -> None:
        limit = self.query_int("limit", feed_sync.MAX_LIMIT // 2, 1, feed_sync.MAX_LIMIT)
        timeout = self.query_int("timeout", 0, 0, feed_sync.MAX_TIMEOUT)
        since = self.query_token("since", "sync token", max_length=2048, dots=True)
        result = await feed_sync.sync_wait(self.ctx, self.me, since, limit, timeout)
        if not result.changes and not result.has_more:
            self.set_header("Etag", result.etag())
            if self.check_etag_header():
                self.set_status(304)
                return
        self.respond(result.payload())


class FeedItemReadHandler(APIHandler):
    @openapi.endpoint("Mark any item of my feed read (idempotent)", responses={204: None},
                      errors=("not_found",))
    async def post(self, item_id: str) -> None:
        await feed_writing.read_item(self.ctx, self.me, item_id)
        self.no_content()
