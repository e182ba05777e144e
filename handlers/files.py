"""File upload and download (API.md §8)."""

from __future__ import annotations

from urllib.parse import unquote

from tornado.web import GZipContentEncoding

from handlers.base import APIHandler, idempotent
from schemas import openapi
from schemas.files import FileOut
from server import files
from server.errors import ApiError

# Multipart framing around a file of the maximum size.
FRAMING = 64 * 1024


class FilesHandler(APIHandler):
    """POST /files: the body streams to disk as it arrives (stream_request_body on APIHandler)."""

    body_limit = files.MAX_FILE_SIZE + FRAMING
    too_large_code = "file_too_large"

    upload: files.Upload | None = None
    multipart: files.MultipartFile | None = None
    failure: BaseException | None = None

    async def prepare(self) -> None:
        await super().prepare()
        if self.refusal is not None:  # declared too large: the body is drained, then refused
            return
        content_type = self.request.headers.get("Content-Type", "")
        if content_type.lower().startswith("multipart/form-data"):
            self.multipart = files.MultipartFile(content_type)
        upload = files.Upload(self.ctx)
        await upload.open()
        self.upload = upload

    async def data_received(self, chunk: bytes) -> None:
        # Errors are kept for post(): raising here would drop the connection without an answer.
        if self.failure is not None or self.upload is None:
            return
        try:
            pieces = self.multipart.feed(chunk) if self.multipart is not None else [chunk]
            for piece in pieces:
                await self.upload.write(piece)
        except ApiError as exc:
            self.failure = exc
            await self.upload.discard()

    @openapi.endpoint("Upload a file (raw body with Content-Type and X-Filename, or multipart/form-data)",
                      body_media="image/*, application/pdf, text/plain, multipart/form-data, "
                                 "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                      responses={201: FileOut}, idempotent=True,
                      errors=("file_too_large", "unsupported_media_type", "invalid_request"))
    @idempotent
    async def post(self) -> None:
        if self.failure is not None:
            raise self.failure
        if self.multipart is not None:
            if not self.multipart.found or not self.multipart.complete:
                await self.upload.discard()
                raise ApiError(422, "invalid_request", "The multipart body has no complete file part.",
                               errors=[{"field": "file", "message": "missing"}])
            name, declared = self.multipart.filename, self.multipart.content_type
        else:
            name = unquote(self.request.headers.get("X-Filename", ""))
            declared = self.request.headers.get("Content-Type")
        doc = await self.upload.finish(self.me, name, declared)
        self.upload = None
        self.respond(files.file_out(doc), status=201)

    @property
    def body(self) -> bytes:
        # The idempotency fingerprint: the content hash stands for the body, which is never kept in memory.
        return self.upload.hash.hexdigest().encode() if self.upload is not None else b""

    def on_finish(self) -> None:
        self._cleanup()
        super().on_finish()

    def on_connection_close(self) -> None:
        self._cleanup()
        super().on_connection_close()

    def _cleanup(self) -> None:
        upload, self.upload = self.upload, None
        if upload is not None:
            import asyncio

            asyncio.ensure_future(upload.discard())


class FileHandler(APIHandler):
    @openapi.endpoint("Download a file (Range, ETag); its uploader and members who can see a resource using it",
                      responses={200: files.DOWNLOAD_TYPES, 206: files.DOWNLOAD_TYPES, 304: None},
                      errors=("file_not_found", "range_not_satisfiable"))
    async def get(self, file_id: str) -> None:
        # Bytes are sent as stored: no gzip, so Range offsets mean what they say.
        self._transforms = [t for t in self._transforms if not isinstance(t, GZipContentEncoding)]
        doc, path = await files.get_readable(self.ctx, self.me, file_id)
        etag = f'"{doc["sha256"]}"'
        self.set_header("Etag", etag)
        self.set_header("Accept-Ranges", "bytes")
        self.set_header("Cache-Control", "private, no-cache")
        disposition = "inline" if doc["mime"].startswith("image/") or doc["mime"] == files.PDF else "attachment"
        self.download_headers(files.content_type(doc["mime"]), doc["name"], disposition)
        if self.check_etag_header():
            self.set_status(304)
            return
        size = doc["size"]
        if_range = self.request.headers.get("If-Range")
        wanted = self.request.headers.get("Range") if if_range in (None, etag) else None
        span = files.parse_range(wanted, size)
        start, end = span if span is not None else (0, size - 1)
        if span is not None:
            self.set_status(206)
            self.set_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.set_header("Content-Length", end - start + 1)
        async for chunk in files.stream(path, start, end):
            self.write(chunk)
            await self.flush()
