"""APIHandler: the one base for every endpoint.

It streams the body in under a size limit, authenticates at the start of each HTTP method (after
the body has arrived), decodes bodies with msgspec, renders JSON, and turns every failure into one
RFC 9457 problem+json answer with a stable `code` (tracebacks are logged with the request id, never
sent). The answer to a failure is built by `problem()`, a pure function; `write_error`, the one
place a problem is sent, sets its status and counts it.

When Tornado calls each hook, for one request: `initialize` and `set_default_headers` when it builds
the handler (the headers have been read); `prepare` next, before any of the body (the class streams
its body); `data_received` zero or more times as the body arrives; then the HTTP method. A failure
raised by `prepare` or the method ends in `log_exception` then `write_error` (`send_error` first
clears the response and calls `set_default_headers` again); Tornado may fail a request before
`prepare` runs (405 for a method it does not support). `on_finish` runs once the answer is sent;
`on_connection_close` when the client goes away before that.
"""

from __future__ import annotations

import functools
import logging
import os
import re
from collections.abc import Callable
from datetime import datetime
from http import HTTPStatus
from typing import Any, TypeVar
from urllib.parse import quote

import msgspec
import tornado.web

from schemas.common import (
    FIRST_YEAR,
    LAST_YEAR,
    PATTERN_MESSAGES,
    FieldInvalid,
    Timestamp,
    check_timestamp,
    sent_fields,
)
from server import idempotency, members, metrics
from server.context import Context
from server.db import UNAVAILABLE_ERRORS
from server.errors import ApiError, invalid
from server.scope import Principal
from server.security import TokenSigner

log = logging.getLogger("branchline.http")
T = TypeVar("T")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
_MSGSPEC_PATH = re.compile(r" - at `\$\.?([^`]*)`$")
_TOKEN = re.compile(r"[A-Za-z0-9_-]+")
_DOTTED_TOKEN = re.compile(r"[A-Za-z0-9_.-]+")
_encoder = msgspec.json.Encoder()
DOWNLOAD_POLICY = "sandbox; default-src 'none'"


@tornado.web.stream_request_body
class APIHandler(tornado.web.RequestHandler):
    #: False for endpoints anyone may call (login, health).
    auth_required = True
    #: Largest body this handler accepts; JSON endpoints keep the 1 MiB default.
    body_limit: int | None = None

    principal: Principal | None = None

    # -- set-up -----------------------------------------------------------------------------------

    def initialize(self) -> None:
        """When the handler is built, before `prepare`: the request counts as in flight until `on_finish`
        (or `on_connection_close`, for a request whose method never ran), so the shutdown drain waits for it."""
        self.ctx.inflight.add(self)

    @property
    def ctx(self) -> Context:
        return self.application.settings["ctx"]

    @property
    def signer(self) -> TokenSigner:
        return self.application.settings["signer"]

    #: The client's X-Request-ID when sane, else a random one; chosen once per request.
    request_id: str | None = None

    def set_default_headers(self) -> None:
        """When the handler is built, and again when `send_error` clears the response for a problem: the
        request id is chosen the first time only, so the answer, the logs and a stored idempotent answer
        all carry the same one."""
        if self.request_id is None:
            incoming = self.request.headers.get("X-Request-ID", "")
            self.request_id = incoming if incoming and _REQUEST_ID.fullmatch(incoming) else os.urandom(16).hex()
        self.set_header("X-Request-ID", self.request_id)
        self.clear_header("Server")  # Tornado names itself and its version; nobody needs to know
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        self.set_header("X-Content-Type-Options", "nosniff")

    async def prepare(self) -> None:
        """When the headers have been read, before any of the body (`stream_request_body`); not at all
        when Tornado refuses the request first (an unsupported method).

        Refusing here leaves the body unread (see `__init_subclass__`), so a body declared over the
        limit becomes `refusal`, raised when the method starts. The one refusal made here on purpose:
        a handler with a large `body_limit` authenticates here when over 1 MiB is coming (401 before
        the upload rather than after it)."""
        self._chunks: list[bytes] = []
        self._received = 0
        limit = self.body_limit or self.ctx.settings.json_body_limit
        declared = self.request.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > limit:
            # Answered once the body has been read and dropped: closing a socket with unread data
            # makes the kernel reset it, and the client may lose the 413 itself. The drain is bounded
            # by server.app.DRAIN_LIMIT and in time by the body timeout.
            self.refusal = ApiError(413, self.too_large_code, f"The body is larger than {limit} bytes.")
            return
        if self.auth_required and self.body_limit is not None and self._large_body_coming():
            self.principal = await self.authenticate()

    #: A refusal decided before the body arrived, raised when the method runs.
    refusal: ApiError | None = None

    def _large_body_coming(self) -> bool:
        """Over 1 MiB declared, or chunked: worth refusing an unauthenticated sender before it arrives."""
        headers = self.request.headers
        declared = headers.get("Content-Length", "0")
        return "Transfer-Encoding" in headers or (declared.isdigit() and int(declared) > 1024 * 1024)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Authenticate at the start of each HTTP method, after the body is read.

        Tornado drops the connection when a streaming handler finishes in `prepare()` (its body
        was never read), which breaks keep-alive clients on an ordinary 401. So refusals are raised
        from the method instead (a body declared too large is drained and refused there too).
        Handlers with a large `body_limit` (uploads, imports) do authenticate in `prepare()` when
        over 1 MiB is coming: refusing before 20 MiB arrive is worth a new connection."""
        super().__init_subclass__(**kwargs)
        for name in ("get", "post", "put", "patch", "delete"):
            method = cls.__dict__.get(name)
            if method is not None and not getattr(method, "_authenticates", False):
                setattr(cls, name, _authenticating(method))

    #: The code of this handler's 413 (uploads answer file_too_large).
    too_large_code = "body_too_large"

    def data_received(self, chunk: bytes) -> None:
        """Zero or more times after `prepare`, as the body arrives: kept up to the limit, then dropped
        (the method answers 413)."""
        self._received += len(chunk)
        if self.refusal is not None:
            return
        if self._received > (self.body_limit or self.ctx.settings.json_body_limit):
            self.refusal = ApiError(413, self.too_large_code, "The body is too large.")
            self._chunks = []
            return
        self._chunks.append(chunk)

    @property
    def body(self) -> bytes:
        if len(self._chunks) != 1:
            self._chunks = [b"".join(self._chunks)]
        return self._chunks[0]

    async def authenticate(self) -> Principal:
        header = self.request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise ApiError(401, "unauthenticated", "Send a bearer access token.")
        claims = self.signer.verify(token.strip(), self.ctx.now())
        principal = await members.principal_for(self.ctx, claims["sub"])
        if principal is None:
            raise ApiError(401, "unauthenticated", "This account is not active.")
        return principal

    @property
    def me(self) -> Principal:
        assert self.principal is not None, "authenticated handlers only"
        return self.principal

    @property
    def client_address(self) -> str:
        return self.request.remote_ip or "unknown"

    # -- input --------------------------------------------------------------------------------------

    def decode(self, type_: type[T]) -> T:
        """Decode and validate the JSON body; 422 invalid_request with field errors on failure."""
        try:
            return msgspec.json.decode(self.body or b"", type=type_)
        except msgspec.ValidationError as exc:
            field, text = _field_error(exc)
            raise ApiError(422, "invalid_request", text, errors=[{"field": field, "message": text}]) from None
        except msgspec.DecodeError:
            raise ApiError(422, "invalid_request", "The body is not valid JSON.",
                           errors=[{"field": "body", "message": "malformed JSON"}]) from None
        except UnicodeDecodeError:  # msgspec checks UTF-8 inside strings only as it makes them
            raise ApiError(422, "invalid_request", "The body is not valid UTF-8.",
                           errors=[{"field": "body", "message": "not UTF-8"}]) from None

    def decode_fields(self, type_: type, *, dates_as_text: bool = False) -> dict[str, Any]:
        """Decode into `type_` and return the fields the client sent, as `schemas.common.sent_fields`."""
        return sent_fields(self.decode(type_), dates_as_text=dates_as_text)

    def query(self, name: str, default: str | None = None, *, max_length: int = 200) -> str | None:
        value = self.get_query_argument(name, None)
        if value is None or value == "":
            return default
        if len(value) > max_length:
            raise ApiError(422, "invalid_request", f"{name} is too long.",
                           errors=[{"field": name, "message": "too long"}])
        return value

    def query_int(self, name: str, default: int, low: int, high: int) -> int:
        raw = self.query(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            value = low - 1
        if not low <= value <= high:
            raise ApiError(422, "invalid_request", f"{name} must be an integer from {low} to {high}.",
                           errors=[{"field": name, "message": f"{low}..{high}"}])
        return value

    def query_bool(self, name: str) -> bool | None:
        """true/false (or 1/0) in the query string; None when absent."""
        raw = self.query(name, max_length=5)
        if raw is None:
            return None
        if raw.lower() not in ("true", "false", "1", "0"):
            raise ApiError(422, "invalid_request", f"{name} must be true or false.",
                           errors=[{"field": name, "message": "true or false"}])
        return raw.lower() in ("true", "1")

    def query_time(self, name: str) -> datetime | None:
        """A time in the query string, parsed and bounded exactly as a body's `Timestamp`."""
        raw = self.query(name, max_length=64)
        if raw is None:
            return None
        try:
            value = msgspec.convert(raw, Timestamp)
            check_timestamp(name, value)
        except (msgspec.ValidationError, FieldInvalid):
            raise invalid(name, f"{name} must be an RFC 3339 time with an offset, in the years "
                                f"{FIRST_YEAR}..{LAST_YEAR}.") from None
        return value

    def query_token(self, name: str, what: str, *, max_length: int = 512, dots: bool = False) -> str | None:
        """An opaque cursor or token we issued (base64url, JWT-like with `dots`): its grammar is checked
        here, before anything decodes it, so a decoder never meets other characters."""
        value = self.query(name, max_length=max_length)
        if value is not None and not (_DOTTED_TOKEN if dots else _TOKEN).fullmatch(value):
            raise invalid(name, f"Malformed {what}.")
        return value

    def page_args(self) -> tuple[int, str | None]:
        return self.query_int("limit", 20, 1, 100), self.query_token("cursor", "cursor")

    # -- output -------------------------------------------------------------------------------------

    def respond(self, payload: Any, status: int = 200) -> None:
        """The JSON answer. It, `send_file` and `no_content` keep what they sent in `_sent`, which
        `@idempotent` stores for a replay."""
        body = _encoder.encode(payload)
        self.set_status(status)
        self.write(body)
        self._sent = (status, body, "application/json")

    def download_headers(self, content_type: str, filename: str, disposition: str = "attachment") -> None:
        """The headers of every file the API sends (exports, GET /files/{id}).

        The filename may be Chinese (RFC 5987 encoding). The policy makes a browser that opens the file
        directly treat it as an opaque, sandboxed document: no script, no form, no same-origin access,
        nothing loaded (an HTML or SVG look-alike can do nothing on our origin).
        """
        self.set_header("Content-Type", content_type)
        self.set_header("Content-Disposition", f"{disposition}; filename*=UTF-8''{quote(filename)}")
        self.set_header("Content-Security-Policy", DOWNLOAD_POLICY)

    def send_file(self, body: bytes, content_type: str, filename: str) -> None:
        """A download made in memory (CSV, xlsx)."""
        self.download_headers(content_type, filename)
        self.write(body)
        self._sent = (self.get_status(), body, content_type)

    def no_content(self) -> None:
        self.set_status(204)
        self.clear_header("Content-Type")
        self._sent = (204, b"", "")

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """Called by `send_error` after an exception escaped `prepare` or the method (once `log_exception`
        has logged it), with the response cleared. Tornado passes 500 for anything but an HTTPError; the
        status comes from the exception instead. The one place a problem is sent, so the one place it
        is counted (a stored idempotent answer replayed is not sent from here, nor counted again)."""
        exc = kwargs.get("exc_info", (None, None, None))[1]
        body, headers = problem(exc, self.request_id, allow=self.allowed_methods())
        self.set_status(body["status"])
        metrics.ERRORS.labels(body["code"]).inc()
        for name, value in headers.items():
            self.set_header(name, value)
        self.set_header("Content-Type", "application/problem+json")
        self.clear_header("Content-Disposition")
        self.finish(_encoder.encode(body))

    def allowed_methods(self) -> str:
        """The methods this route implements: the Allow header a 405 must carry (RFC 9110 §15.5.6)."""
        unimplemented = tornado.web.RequestHandler.get
        return ", ".join(m for m in self.SUPPORTED_METHODS if getattr(type(self), m.lower()) is not unimplemented)

    def log_exception(self, typ, value, tb) -> None:
        """Called by Tornado for an exception that escaped `prepare` or the method, before `write_error`:
        refusals are not logged, an unreachable database is a warning, anything else an error with its
        traceback and the request id the client is sent."""
        if isinstance(value, ApiError) or (isinstance(value, tornado.web.HTTPError) and value.status_code < 500):
            return
        if isinstance(value, UNAVAILABLE_ERRORS):
            log.warning("database unavailable request_id=%s %s %s: %s", self.request_id,
                        self.request.method, self._route_name(), type(value).__name__)
            return
        log.error("unhandled error request_id=%s %s %s", self.request_id, self.request.method,
                  self._route_name(), exc_info=(typ, value, tb))

    #: Set when the HTTP method starts: from then on Tornado finishes the request (and calls on_finish).
    method_started = False

    def on_connection_close(self) -> None:
        """When the client goes away (or the body timeout cuts it off) before the answer is sent.

        A request whose body never arrived in full never runs its method, so `on_finish` never comes:
        it leaves the in-flight set here. A method already running still ends in `on_finish`, and the
        shutdown drain waits for it."""
        if not self.method_started:
            self.ctx.inflight.discard(self)
        super().on_connection_close()

    def on_finish(self) -> None:
        """Once the answer has been sent (after `write_error` too); may write nothing. Counts the request
        by route, method and status."""
        self.ctx.inflight.discard(self)
        metrics.observe(self._route_name(), self.request.method or "", self.get_status(),
                        self.request.request_time())

    def _route_name(self) -> str:
        return type(self).__name__

    def _request_summary(self) -> str:  # access log without query strings (they may carry tokens)
        return f"{self.request.method} {self.request.path} ({self.request.remote_ip}) rid={self.request_id}"


def _field_error(exc: msgspec.ValidationError) -> tuple[str, str]:
    """(field, message) of a failed decode: msgspec ends its message with the path (`$.location.lat`);
    a Body check names its field on the FieldInvalid it raised; our text patterns get words."""
    message = str(exc)
    match = _MSGSPEC_PATH.search(message)
    field = match.group(1) if match else ""
    text = _MSGSPEC_PATH.sub("", message)
    if isinstance(exc.__cause__, FieldInvalid):
        field = f"{field}.{exc.__cause__.field}" if field else exc.__cause__.field
    for pattern, words in PATTERN_MESSAGES.items():
        text = text.replace(f"`str` matching regex {pattern!r}", words)
    return field or "body", text


def _authenticating(method: Callable) -> Callable:
    @functools.wraps(method)
    async def wrapper(self: APIHandler, *args: Any, **kwargs: Any) -> Any:
        self.method_started = True
        if self.refusal is not None:
            raise self.refusal
        if self.auth_required and self.principal is None:
            self.principal = await self.authenticate()
        return await method(self, *args, **kwargs)

    wrapper._authenticates = True
    return wrapper


def idempotent(method: Callable) -> Callable:
    """Honour Idempotency-Key on a POST that creates something (API.md §1); see server/idempotency.py."""

    @functools.wraps(method)
    async def wrapper(self: APIHandler, *args: Any, **kwargs: Any) -> None:
        key = self.request.headers.get("Idempotency-Key")
        if key is None:
            return await method(self, *args, **kwargs)
        member_id = self.me.member_id
        request_hash = idempotency.fingerprint(self.request.method, self.request.path, self.body)
        held = await idempotency.claim(self.ctx, member_id, key, request_hash)
        if isinstance(held, idempotency.Replay):
            self.set_status(held.status)
            self.set_header("Idempotent-Replayed", "true")
            if held.content_type:
                self.set_header("Content-Type", held.content_type)
            self.write(held.body)
            return None
        try:
            await method(self, *args, **kwargs)
        except ApiError as exc:  # the refusal is stored as it will be sent; write_error sends and counts it
            body, _ = problem(exc, self.request_id)
            await held.complete(exc.status, _encoder.encode(body), "application/problem+json")
            raise
        except BaseException:
            await held.release()
            raise
        status, body, content_type = getattr(self, "_sent", (self.get_status(), b"", ""))
        await held.complete(status, body, content_type)
        return None

    return wrapper


class NotFoundHandler(APIHandler):
    """Every unknown path: a JSON 404, not Tornado's HTML page."""

    auth_required = False

    async def get(self, *args: Any) -> None:
        raise ApiError(404, "not_found", "There is no such endpoint.")

    post = put = patch = delete = get


def problem(exc: BaseException | None, request_id: str | None, *, allow: str = "") -> tuple[dict, dict[str, str]]:
    """The problem+json body (RFC 9457) and the headers that answer `exc`; a pure function.

    An ApiError says its own status, code, detail, field errors and headers; an unreachable database is
    503 database_unavailable (Retry-After: 2); Tornado's HTTPError keeps its status with a generic code
    (a 405 carries `allow`, the route's methods); anything else is 500 internal_error with a generic
    detail (never the exception's text).
    """
    headers: dict[str, str] = {}
    errors = None
    if isinstance(exc, ApiError):
        status, code, detail, errors, headers = exc.status, exc.code, exc.detail, exc.errors, exc.headers
    elif isinstance(exc, UNAVAILABLE_ERRORS):
        status, code, detail = 503, "database_unavailable", "The database is unavailable; try again shortly."
        headers = {"Retry-After": "2"}
    elif isinstance(exc, tornado.web.HTTPError):
        status = exc.status_code
        code = {404: "not_found", 405: "method_not_allowed", 400: "bad_request",
                413: "body_too_large"}.get(status, "http_error")
        detail = _title(status)
        if status == 405:
            headers = {"Allow": allow}
    else:
        status, code, detail = 500, "internal_error", "Something went wrong on our side."
    body = {"type": f"https://branchline.example/problems/{code}", "title": _title(status),
            "status": status, "detail": detail, "code": code, "request_id": request_id}
    if errors:
        body["errors"] = errors
    return body, headers


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
