"""Files (API.md §8): streamed uploads checked by content, content-addressed storage, scoped downloads.

An upload is written chunk by chunk (aiofiles) to a temporary file while its sha256 is computed,
so the body is never held in memory. When it is complete its type is sniffed from the content
(filetype, a ZIP directory check for Office documents, a UTF-8 check for plain text) and compared
with the declared type; the bytes then move to `data_dir/files/ab/cd/<sha256>` unless that blob
already exists (deduplication). Each upload gets its own file record (id, name, uploader).

Who may download: the uploader, and members who can see a resource that references the file.
Resources record references with `attach(...)`, and each `ref_kind` registers its service's "may see"
function with `register_visibility`: the very rule that resource's own GET applies, so a file is never
more or less visible than what uses it. This module keeps no scope rules of its own.
"""

from __future__ import annotations

import codecs
import hashlib
import re
import uuid
import zipfile
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiofiles
import aiofiles.os
import filetype
from pymongo import ASCENDING, IndexModel

from server.context import Context
from server.db import indexes
from server.errors import ApiError, not_found
from server.ids import new_id
from server.scope import Principal

FILES = "files"
REFS = "file_refs"
MAX_FILE_SIZE = 20 * 1024 * 1024
SNIFF_BYTES = 8192
CHUNK = 64 * 1024

indexes(FILES, IndexModel([("uploader_id", ASCENDING)]), IndexModel([("sha256", ASCENDING)]))
indexes(REFS, IndexModel([("file_id", ASCENDING)]), IndexModel([("ref_kind", ASCENDING), ("ref_id", ASCENDING)]))

IMAGES = {"image/jpeg", "image/png", "image/gif", "image/webp", "image/bmp", "image/tiff", "image/heic",
          "image/avif"}
OOXML = {
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "word/",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xl/",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": "ppt/",
}
OLE = {"application/msword", "application/vnd.ms-excel", "application/vnd.ms-powerpoint"}
ODF = {"application/vnd.oasis.opendocument.text", "application/vnd.oasis.opendocument.spreadsheet",
       "application/vnd.oasis.opendocument.presentation"}
PDF = "application/pdf"
TEXT = "text/plain"
ALLOWED = IMAGES | set(OOXML) | OLE | ODF | {PDF, TEXT}
DOWNLOAD_TYPES = ", ".join(sorted(ALLOWED | {"application/octet-stream"}))  # what GET /files/{id} answers
ALIASES = {"image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg", "image/x-ms-bmp": "image/bmp",
           "application/x-pdf": PDF}
UNDECLARED = {"", "application/octet-stream", "binary/octet-stream", "multipart/form-data"}
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_CONTROL = re.compile(rb"[\x00-\x08\x0b\x0e-\x1a\x1c-\x1f\x7f]")


def files_dir(ctx: Context) -> Path:
    return Path(ctx.settings.data_dir) / "files"


def blob_path(ctx: Context, sha256: str) -> Path:
    return files_dir(ctx) / sha256[:2] / sha256[2:4] / sha256


def _unsupported(detail: str) -> ApiError:
    return ApiError(415, "unsupported_media_type", detail)


def too_large() -> ApiError:
    return ApiError(413, "file_too_large", f"Files are limited to {MAX_FILE_SIZE // (1024 * 1024)} MiB.")


def normalise_mime(value: str | None) -> str:
    mime = (value or "").split(";", 1)[0].strip().lower()
    return ALIASES.get(mime, mime)


def clean_name(name: str | None) -> str:
    name = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch.isprintable()).strip()
    return name[:200] or "file"


class Upload:
    """One upload in progress: bytes go to a temporary file as they arrive."""

    def __init__(self, ctx: Context, limit: int = MAX_FILE_SIZE) -> None:
        self.ctx = ctx
        self.limit = limit
        self.size = 0
        self.hash = hashlib.sha256()
        self.head = b""
        self.text_ok = True
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self._file = None
        self.temp_path = files_dir(ctx) / "tmp" / f"{uuid.uuid4().hex}.part"

    async def open(self) -> None:
        await aiofiles.os.makedirs(self.temp_path.parent, exist_ok=True)
        self._file = await aiofiles.open(self.temp_path, "wb")

    async def write(self, data: bytes) -> None:
        if not data:
            return
        self.size += len(data)
        if self.size > self.limit:
            raise too_large()
        if len(self.head) < SNIFF_BYTES:
            self.head += data[: SNIFF_BYTES - len(self.head)]
        self.hash.update(data)
        if self.text_ok:
            try:
                self._decoder.decode(data)
                self.text_ok = _CONTROL.search(data) is None
            except UnicodeDecodeError:
                self.text_ok = False
        await self._file.write(data)

    async def discard(self) -> None:
        if self._file is not None:
            await self._file.close()
            self._file = None
        try:
            await aiofiles.os.remove(self.temp_path)
        except FileNotFoundError:
            pass

    def _sniff(self) -> str | None:
        kind = filetype.guess(self.head)
        mime = kind.mime if kind else None
        if mime in ALLOWED and mime not in OOXML:
            return mime
        if self.head.startswith(b"PK\x03\x04"):  # maybe Office Open XML: look at the ZIP directory
            try:
                with zipfile.ZipFile(self.temp_path) as archive:
                    names = archive.namelist()
            except (zipfile.BadZipFile, OSError):
                return mime
            if "[Content_Types].xml" in names:
                for candidate, prefix in OOXML.items():
                    if any(n.startswith(prefix) for n in names):
                        return candidate
            return "application/zip"
        if mime is None and self.text_ok:
            try:
                self._decoder.decode(b"", final=True)
            except UnicodeDecodeError:
                return None
            return TEXT
        return mime

    async def finish(self, principal: Principal, name: str | None, declared: str | None) -> dict:
        """Check the type, store the bytes by content, record the file; the temp file is gone after."""
        try:
            await self._file.close()
            self._file = None
            if self.size == 0:
                raise ApiError(422, "invalid_request", "The file is empty.",
                               errors=[{"field": "body", "message": "empty"}])
            sniffed = self._sniff()
            declared_mime = normalise_mime(declared)
            mime = _accept(sniffed, declared_mime, self.head)
            digest = self.hash.hexdigest()
            target = blob_path(self.ctx, digest)
            if await aiofiles.os.path.exists(target):
                await aiofiles.os.remove(self.temp_path)  # the same bytes are already stored
            else:
                await aiofiles.os.makedirs(target.parent, exist_ok=True)
                await aiofiles.os.replace(self.temp_path, target)
        except BaseException:
            await self.discard()
            raise
        doc = {"_id": new_id(), "name": clean_name(name), "size": self.size, "mime": mime, "sha256": digest,
               "uploader_id": principal.member_id, "created_at": self.ctx.now()}
        await self.ctx.db[FILES].insert_one(doc)
        return doc


def _accept(sniffed: str | None, declared: str, head: bytes) -> str:
    """The stored type: what the content is, refused when not allowed or when it contradicts `declared`."""
    if sniffed is None and head.startswith(OLE_MAGIC) and declared in OLE:
        sniffed = declared  # legacy Office files share one container; trust the declared flavour
    if sniffed not in ALLOWED:
        raise _unsupported("Only images, PDF, Office documents and plain text may be uploaded.")
    if declared in UNDECLARED or declared == sniffed:
        return sniffed
    if sniffed == TEXT and declared.startswith("text/"):
        return TEXT
    if sniffed in OLE and declared in OLE:
        return declared
    raise _unsupported(f"The content is {sniffed}, not the declared {declared}.")


def content_type(mime: str) -> str:
    """The Content-Type a stored file is sent with: text was checked to be UTF-8 on upload, so say so."""
    return f"{mime}; charset=utf-8" if mime == TEXT else mime


def file_out(doc: dict) -> dict:
    return {"id": doc["_id"], "name": doc["name"], "size": doc["size"], "mime": doc["mime"],
            "sha256": doc["sha256"]}


# -- references and access ------------------------------------------------------------------------

VisibilityCheck = Callable[[Context, Principal, str], Awaitable[bool]]
_visibility: dict[str, VisibilityCheck] = {}


def register_visibility(ref_kind: str, may_see: VisibilityCheck) -> None:
    """Let a capability say whether a member may see its resource `ref_id` (its GET's own rule)."""
    _visibility[ref_kind] = may_see


async def attach(ctx: Context, principal: Principal, file_ids: list[str], *, ref_kind: str, ref_id: str,
                 txn=None) -> None:
    """Record that a resource references these files; each must exist and be the caller's upload.

    A file already attached to this very resource passes too (an organiser editing a colleague's
    announcement keeps its attachments). Who may then read them is whoever may see the resource.
    """
    if ref_kind not in _visibility:
        raise ValueError(f"no visibility rule registered for {ref_kind!r}")
    ids = list(dict.fromkeys(file_ids))
    if not ids:
        return
    mine = {d["_id"] async for d in ctx.db[FILES].find(
        {"_id": {"$in": ids}, "uploader_id": principal.member_id}, {"_id": 1}, session=txn)}
    # by the indexed (ref_kind, ref_id) only: adding `file_id: {$in}` makes SecantusDB scan the collection
    already = {d["file_id"] async for d in ctx.db[REFS].find(
        {"ref_kind": ref_kind, "ref_id": ref_id}, {"file_id": 1}, session=txn)} & set(ids)
    missing = [i for i in ids if i not in mine and i not in already]
    if missing:
        raise ApiError(422, "file_not_found", f"No such file of yours: {', '.join(missing)}.",
                       errors=[{"field": "file_ids", "message": f"unknown file {m}"} for m in missing])
    for file_id in ids:
        await ctx.db[REFS].update_one(
            {"_id": f"{ref_kind}:{ref_id}:{file_id}"},
            {"$set": {"file_id": file_id, "ref_kind": ref_kind, "ref_id": ref_id}},
            upsert=True, session=txn)


async def detach(ctx: Context, *, ref_kind: str, ref_id: str, txn=None) -> None:
    """Forget every file reference of this resource."""
    await ctx.db[REFS].delete_many({"ref_kind": ref_kind, "ref_id": ref_id}, session=txn)


async def _may_read(ctx: Context, principal: Principal, doc: dict) -> bool:
    if doc["uploader_id"] == principal.member_id:
        return True
    async for ref in ctx.db[REFS].find({"file_id": doc["_id"]}):
        may_see = _visibility.get(ref["ref_kind"])
        if may_see is not None and await may_see(ctx, principal, ref["ref_id"]):
            return True
    return False


async def get_readable(ctx: Context, principal: Principal, file_id: str) -> tuple[dict, Path]:
    """The file record and its blob if the caller may read it; 404 otherwise (never revealing it exists)."""
    doc = await ctx.db[FILES].find_one({"_id": file_id})
    if doc is None or not await _may_read(ctx, principal, doc):
        raise not_found("file_not_found", "file")
    path = blob_path(ctx, doc["sha256"])
    if not await aiofiles.os.path.exists(path):
        raise not_found("file_not_found", "file")
    return doc, path


# RFC 9110 §14.1.1, one range-spec: `bytes=first-[last]` or `bytes=-suffix` (the unit is case-insensitive).
# Any other Range (a syntax error, several ranges) is ignored and the whole file is sent, as §14.2 allows.
_RANGE = re.compile(r"bytes=(?:(\d+)-(\d*)|-(\d+))", re.IGNORECASE | re.ASCII)
# A position with more significant digits than this is past the end of any stored file (limit 20 MiB);
# it is never converted, so thousands of digits cost nothing (int() refuses over 4,300 of them).
_POSITION_DIGITS = 15


def _position(digits: str) -> int:
    digits = digits.lstrip("0") or "0"
    return int(digits) if len(digits) <= _POSITION_DIGITS else 10**_POSITION_DIGITS


def _unsatisfiable(size: int) -> ApiError:
    return ApiError(416, "range_not_satisfiable", "The range is outside the file.",
                    headers={"Content-Range": f"bytes */{size}"})


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The one range of `header` as (start, end inclusive); None for the whole file; 416 when unsatisfiable.

    A valid range that starts past the end (or an empty suffix) is unsatisfiable: 416, RFC 9110 §15.5.17.
    A last position or suffix past the end means "to the end" (§14.1.2). A range the grammar refuses, or
    an invalid one (last before first), is ignored (§14.2): the client gets the whole file, 200.
    """
    match = _RANGE.fullmatch(header or "")
    if match is None:
        return None
    first, last, suffix = match.groups()
    if suffix is not None:
        length = _position(suffix)
        if length == 0:
            raise _unsatisfiable(size)
        return max(size - length, 0), size - 1
    start = _position(first)
    if last and _position(last) < start:
        return None
    if start >= size:
        raise _unsatisfiable(size)
    end = min(_position(last), size - 1) if last else size - 1
    return start, end


async def stream(path: Path, start: int, end: int):
    """Yield the bytes start..end (inclusive) of a file in chunks."""
    async with aiofiles.open(path, "rb") as handle:
        await handle.seek(start)
        remaining = end - start + 1
        while remaining > 0:
            chunk = await handle.read(min(CHUNK, remaining))
            if not chunk:
                break
            remaining -= len(chunk)
            yield chunk



class MultipartFile:
    """Streams the first file part of a multipart/form-data body; other parts are ignored.

    `feed(chunk)` returns the file bytes found in that chunk (a few slices, never the whole body).
    """

    def __init__(self, content_type: str) -> None:
        from python_multipart.multipart import MultipartParser, parse_options_header

        _, params = parse_options_header(content_type)
        boundary = params.get(b"boundary")
        if not boundary:
            raise ApiError(422, "invalid_request", "multipart/form-data needs a boundary.",
                           errors=[{"field": "Content-Type", "message": "no boundary"}])
        self.filename: str | None = None
        self.content_type: str | None = None
        self.found = False
        self.complete = False
        self._state = "before"  # before | taking | after
        self._headers: dict[str, bytes] = {}
        self._field = b""
        self._value = b""
        self._out: list[bytes] = []
        self._parser = MultipartParser(boundary, {
            "on_part_begin": self._part_begin,
            "on_header_field": lambda d, s, e: self._add("_field", d[s:e]),
            "on_header_value": lambda d, s, e: self._add("_value", d[s:e]),
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
        })

    def _add(self, name: str, data: bytes) -> None:
        setattr(self, name, getattr(self, name) + data)

    def _part_begin(self) -> None:
        self._headers = {}
        self._field = self._value = b""

    def _header_end(self) -> None:
        self._headers[self._field.decode("latin-1").lower()] = self._value
        self._field = self._value = b""

    def _headers_finished(self) -> None:
        from python_multipart.multipart import parse_options_header

        if self._state != "before":
            return
        _, params = parse_options_header(self._headers.get("content-disposition", b""))
        filename = params.get(b"filename*") or params.get(b"filename")
        if filename is None:
            return  # a plain form field
        raw = filename.decode("utf-8", "replace")
        if raw.lower().startswith("utf-8''"):
            from urllib.parse import unquote

            raw = unquote(raw[7:])
        self.filename = raw
        self.content_type = self._headers.get("content-type", b"").decode("latin-1")
        self.found = True
        self._state = "taking"

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._state == "taking":
            self._out.append(bytes(data[start:end]))

    def _part_end(self) -> None:
        if self._state == "taking":
            self._state = "after"
            self.complete = True

    def feed(self, chunk: bytes) -> list[bytes]:
        try:
            self._parser.write(chunk)
        except Exception as exc:  # python-multipart raises its own error types for malformed bodies
            raise ApiError(422, "invalid_request", "Malformed multipart body.",
                           errors=[{"field": "body", "message": str(exc)[:200]}]) from None
        out, self._out = self._out, []
        return out
