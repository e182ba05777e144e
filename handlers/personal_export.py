"""GET /me/export (API.md §11): the caller's own data as a zip, streamed."""

from __future__ import annotations

from tornado.iostream import StreamClosedError

from handlers.base import APIHandler
from schemas import openapi
from server import personal_export


class MeExportHandler(APIHandler):
    @openapi.endpoint("Everything the server holds about you: a zip with one JSON file per kind of record "
                      "(and manifest.json: the counts, and what is kept out and why)",
                      responses={200: "application/zip"}, errors=("rate_limited",))
    async def get(self) -> None:
        chunks = await personal_export.start(self.ctx, self.me)  # 429 here, before anything is sent
        self.download_headers("application/zip", f"branchline-export-{self.me.member_id}.zip")
        try:
            async for chunk in chunks:
                self.write(chunk)
                await self.flush()  # to the client now: memory holds one chunk, not the archive
        except StreamClosedError:  # the client went away: stop reading their records, nothing to answer
            pass
        finally:
            await chunks.aclose()
