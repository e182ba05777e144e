"""OpenAPI 3.1, generated from the routes and the msgspec Structs each handler method declares.

Handlers mark each method with `@endpoint(...)`; `build(routes)` walks every route, turns its
path regex's named groups into `{params}`, and collects the body and response Structs into
components with `msgspec.json.schema_components`.

What a decorator leaves implicit comes from central tables here, so that every endpoint is
described the same way and generated clients get it right:
- `QUERY`: the schema of each query parameter the API knows (a decorator names the parameters
  and says what they mean); `QUERY_OVERRIDES` where one operation differs (/sync's limit, the
  status enums of each resource, the formats of each file answer).
- Problem answers, listed by status: the codes a decorator names plus those every endpoint of its
  kind can answer (`_generic_codes`), with each code's status from `server.errors.CODES`.
- `OPTIONAL_BODIES`: the operations whose handler also accepts no body at all.
- `HEADERS`: the request headers an operation reads (ETags, Range, the upload's file name).
- `FORMAT_MEDIA`: a `format` query value names the media type of the 200 answer.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, get_args

import msgspec

from schemas.activities import ActivityStatus
from schemas.announcements import AnnouncementStatus
from schemas.common import PartyStatus, Problem
from schemas.notifications import Event
from schemas.study import RequestStatus, WarningStatus
from schemas.suggestions import SuggestionCategory, SuggestionStatus
from server.errors import CODES, IN_BODY_CODES

HTTP_METHODS = ("get", "post", "put", "patch", "delete")

CSV = "text/csv"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PERIOD = r"^\d{4}(-(0[1-9]|1[0-2])|-Q[1-4])?$"
_ID = {"type": "string", "minLength": 1, "maxLength": 64}

#: Each query parameter's schema, as the handlers parse it (handlers/base.py query/query_int/page_args).
#: `required` marks a parameter the handler cannot do without.
QUERY: dict[str, dict[str, Any]] = {
    "limit": {"schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}},
    "cursor": {"schema": {"type": "string", "maxLength": 512}},
    "before": {"schema": {"type": "string", "maxLength": 512}},
    "since": {"schema": {"type": "string", "maxLength": 2048}},
    "timeout": {"schema": {"type": "integer", "minimum": 0, "maximum": 30, "default": 0}},
    "format": {"schema": {"type": "string", "enum": ["csv", "xlsx"], "default": "csv"}},
    "table": {"schema": {"type": "string", "enum": ["compliance", "attendance"], "default": "compliance"}},
    "eligible": {"schema": {"type": "boolean", "default": False}},
    "period": {"schema": {"type": "string", "pattern": PERIOD}},
    "from": {"schema": {"type": "string", "format": "date-time", "maxLength": 64}},
    "to": {"schema": {"type": "string", "format": "date-time", "maxLength": 64}},
    "org_id": {"schema": _ID},
    "parent_id": {"schema": _ID},
    "session_id": {"schema": _ID},
    "programme": {"schema": {"type": "string", "maxLength": 32}},
    "q": {"schema": {"type": "string", "maxLength": 40}},
    "active": {"schema": {"type": "boolean"}},
    "party_status": {"schema": {"type": "string", "enum": list(get_args(PartyStatus))}},
    "tag": {"schema": {"type": "string", "maxLength": 40}},
    "ref_id": {"schema": _ID},
    "event": {"schema": {"type": "string", "enum": list(get_args(Event))}},
    "mine": {"schema": {"type": "boolean", "default": False}},
    "actor_id": {"schema": _ID},
    "target_id": {"schema": {"type": "string", "minLength": 1, "maxLength": 200}},
    # No default schema: each resource has its own statuses and categories (QUERY_OVERRIDES).
    "status": {},
    "category": {},
}


def _enum(*values: str) -> dict[str, Any]:
    return {"schema": {"type": "string", "enum": list(values), "default": values[0]}}


#: Where one operation's parameter differs from QUERY ("METHOD /path" → {name: parameter}).
QUERY_OVERRIDES: dict[str, dict[str, dict[str, Any]]] = {
    "GET /api/v1/sync": {"limit": {"schema": {"type": "integer", "minimum": 1, "maximum": 200, "default": 100}}},
    "GET /api/v1/activities": {"status": {"schema": {"type": "string", "enum": list(get_args(ActivityStatus))}}},
    "GET /api/v1/announcements": {"status": {"schema": {"type": "string",
                                                        "enum": list(get_args(AnnouncementStatus))}}},
    "GET /api/v1/suggestions": {"status": {"schema": {"type": "string", "enum": list(get_args(SuggestionStatus))}},
                                "category": {"schema": {"type": "string",
                                                        "enum": list(get_args(SuggestionCategory))}}},
    "GET /api/v1/warnings": {"status": {"schema": {"type": "string", "enum": list(get_args(WarningStatus))}}},
    "GET /api/v1/study/requests": {"status": {"schema": {"type": "string", "enum": list(get_args(RequestStatus))}}},
    "GET /api/v1/activities/{activity_id}/signups": {"format": _enum("json", "csv", "xlsx")},
    "GET /api/v1/activities/{activity_id}/qr/image": {"format": _enum("svg", "png")},
    "GET /api/v1/study/sessions/{session_id}/qr/image": {"format": _enum("svg", "png")},
    "POST /api/v1/orgs/{org_id}/warnings/scan": {"period": {**QUERY["period"], "required": True}},
    "GET /api/v1/notifications/deliveries": {"ref_id": {**QUERY["ref_id"], "required": True}},
    "GET /api/v1/announcements/{announcement_id}/receipts": {"limit": {"schema": {
        "type": "integer", "minimum": 1, "maximum": 1000, "default": 1000}}},
}

#: Operations whose handler takes its body only when one is sent (an action with optional details).
OPTIONAL_BODIES = {
    "POST /api/v1/activities/{activity_id}/publish",
    "POST /api/v1/activities/{activity_id}/cancel",
    "POST /api/v1/activities/{activity_id}/signups",
    "POST /api/v1/study/requests/{request_id}/approve",
    "POST /api/v1/study/requests/{request_id}/reject",
}

_IF_NONE_MATCH = {"description": "an ETag from an earlier answer: 304 while unchanged",
                  "schema": {"type": "string", "maxLength": 200}}

#: Request headers an operation reads besides Authorization and Idempotency-Key ("METHOD /path" → {name: ...}).
HEADERS: dict[str, dict[str, dict[str, Any]]] = {
    "GET /api/v1/feed": {"If-None-Match": _IF_NONE_MATCH},
    "GET /api/v1/sync": {"If-None-Match": _IF_NONE_MATCH},
    "GET /api/v1/files/{file_id}": {
        "If-None-Match": _IF_NONE_MATCH,
        "Range": {"description": "one range: bytes=first-last, first- or -suffix (others: the whole file)",
                  "schema": {"type": "string", "maxLength": 200}},
        "If-Range": {"description": "the ETag: honour Range only while the file is this one",
                     "schema": {"type": "string", "maxLength": 200}}},
    "POST /api/v1/files": {"X-Filename": {"description": "the file's name, percent-encoded (raw bodies)",
                                          "schema": {"type": "string", "maxLength": 1000}}},
}

#: A `format=` query value answers 200 in this media type (JSON when the format is json or absent).
FORMAT_MEDIA = {"csv": CSV, "xlsx": XLSX, "svg": "image/svg+xml", "png": "image/png"}

#: Statuses whose problem answers say when to try again.
RETRY_AFTER = {"429", "503"}

_BINARY = {"type": "string", "format": "binary"}
_PRINTABLE = r"^[\x21-\x7e]([\x20-\x7e]*[\x21-\x7e])?$"  # printable, and no spaces HTTP would strip
_IDEMPOTENCY_KEY = {"name": "Idempotency-Key", "in": "header", "required": False,
                    "description": "Replays the first answer for a repeated request (API.md §1)",
                    "schema": {"type": "string", "minLength": 1, "maxLength": 64, "pattern": _PRINTABLE}}


@dataclass
class Endpoint:
    summary: str
    body: type | None = None
    body_media: str | None = None  # a non-JSON body (CSV, xlsx, file bytes)
    responses: dict[int, type | str | None] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)
    auth: bool = True
    idempotent: bool = False
    errors: tuple[str, ...] = ()

    @property
    def takes_body(self) -> bool:
        return self.body is not None or self.body_media is not None


def endpoint(summary: str, *, body: type | None = None, body_media: str | None = None,
             responses: dict[int, type | str | None] | None = None, query: dict[str, str] | None = None,
             auth: bool = True, idempotent: bool = False, errors: tuple[str, ...] = ()) -> Callable:
    """Describe a handler method for the OpenAPI document. `responses` maps status → Struct, media types
    (comma-separated) or None; `query` maps each query parameter (a QUERY name) to what it means;
    `errors` names the problem codes particular to this endpoint (the generic ones are added)."""

    def mark(method: Callable) -> Callable:
        method.__endpoint__ = Endpoint(summary, body, body_media, responses or {200: None}, query or {},
                                       auth, idempotent, errors)
        return method

    return mark


def _openapi_path(pattern: str) -> tuple[str, list[str]]:
    params = re.findall(r"\(\?P<(\w+)>[^)]*\)", pattern)
    path = re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", pattern).rstrip("$")
    return path, params


def build(routes: list[tuple[str, type]], title: str = "Branchline API", version: str = "1.0.0") -> dict:
    types: set = {Problem}
    operations: list[tuple[str, str, list[str], Endpoint]] = []
    for pattern, handler in routes:
        path, params = _openapi_path(pattern)
        for method in HTTP_METHODS:
            func = getattr(handler, method, None)
            spec = getattr(func, "__endpoint__", None)
            if spec is None:
                continue
            operations.append((path, method, params, spec))
            if spec.body is not None:
                types.add(spec.body)
            types.update(t for t in spec.responses.values() if t is not None and not isinstance(t, str))
    ordered = sorted(types, key=repr)
    schemas, components = msgspec.json.schema_components(ordered, ref_template="#/components/schemas/{name}")
    refs = dict(zip(ordered, schemas, strict=False))

    paths: dict[str, dict[str, Any]] = {}
    for path, method, params, spec in operations:
        paths.setdefault(path, {})[method] = _operation(path, method, params, spec, refs)
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": {"schemas": components,
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}},
    }


def _operation(path: str, method: str, params: list[str], spec: Endpoint, refs: dict) -> dict[str, Any]:
    key = f"{method.upper()} {path}"
    op: dict[str, Any] = {"summary": spec.summary, "operationId": f"{method}_{_slug(path)}"}
    query = _query_parameters(key, spec.query)
    parameters = [{"name": p, "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}
                  for p in params]
    parameters += query
    parameters += [{"name": name, "in": "header", "required": False, **header}
                   for name, header in HEADERS.get(key, {}).items()]
    if spec.idempotent:
        parameters.append(_IDEMPOTENCY_KEY)
    if parameters:
        op["parameters"] = parameters
    body = _request_body(spec, refs)
    if body is not None:
        op["requestBody"] = {"required": key not in OPTIONAL_BODIES, "content": body}
    op["responses"] = _success_responses(spec, refs, query)
    for status, response in _problem_responses(spec, params, query, refs[Problem]).items():
        op["responses"].setdefault(status, response)  # a declared answer (readyz's 503) wins
    if spec.auth:
        op["security"] = [{"bearer": []}]
    return op


def _query_parameters(key: str, described: dict[str, str]) -> list[dict[str, Any]]:
    overrides = QUERY_OVERRIDES.get(key, {})
    parameters = []
    for name, description in described.items():
        if name not in QUERY:
            raise KeyError(f"{key}: query parameter {name!r} is not in schemas/openapi.py QUERY")
        parameter = {"required": False, **QUERY[name], **overrides.get(name, {})}
        if "schema" not in parameter:
            raise KeyError(f"{key}: query parameter {name!r} needs a schema in QUERY_OVERRIDES")
        parameters.append({"name": name, "in": "query", "description": description, **parameter})
    return parameters


def _request_body(spec: Endpoint, refs: dict) -> dict[str, Any] | None:
    if spec.body is not None:
        return {"application/json": {"schema": refs[spec.body]}}
    if spec.body_media:
        return {m: {"schema": _multipart() if m == "multipart/form-data" else _BINARY}
                for m in _media_types(spec.body_media)}
    return None


def _multipart() -> dict[str, Any]:
    return {"type": "object", "properties": {"file": _BINARY}, "required": ["file"]}


def _success_responses(spec: Endpoint, refs: dict, query: list[dict]) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for status, out in spec.responses.items():
        if out is None:
            responses[str(status)] = {"description": {204: "No content", 304: "Not modified"}.get(status, "OK")}
            continue
        if isinstance(out, str):
            content = {m: {"schema": {"type": "object"} if m == "application/json" else _file_schema(m)}
                       for m in _media_types(out)}
        else:
            content = {"application/json": {"schema": refs[out]}}
        if status == 200:
            content.update({m: {"schema": _BINARY} for m in _format_media(query) if m not in content})
        responses[str(status)] = {"description": "OK", "content": content}
    return responses


def _file_schema(media: str) -> dict[str, Any]:
    return {"type": "string"} if media == "text/plain" else _BINARY


def _format_media(query: list[dict]) -> list[str]:
    for parameter in query:
        if parameter["name"] == "format":
            return [FORMAT_MEDIA[v] for v in parameter["schema"].get("enum", ()) if v in FORMAT_MEDIA]
    return []


def _generic_codes(spec: Endpoint, params: list[str], query: list[dict]) -> list[str]:
    """The problems every endpoint of this kind can answer, beyond those its decorator names."""
    codes = ["unauthenticated"] if spec.auth else []
    if params:
        codes.append("not_found")  # also what an unknown path answers
    if spec.takes_body or query or spec.idempotent:
        codes.append("invalid_request")
    if spec.takes_body and not any(CODES.get(c) == 413 for c in spec.errors):
        codes.append("body_too_large")
    if spec.idempotent:
        codes += ["idempotency_key_reused", "request_in_progress"]
    if spec.auth or spec.takes_body:  # the probes and documents (health, metrics, this one) do not use the database
        codes.append("database_unavailable")
    return codes


def _problem_responses(spec: Endpoint, params: list[str], query: list[dict], problem: dict) -> dict[str, Any]:
    by_status: dict[str, list[str]] = {}
    for code in dict.fromkeys((*spec.errors, *_generic_codes(spec, params, query))):
        if code not in CODES:
            raise KeyError(f"problem code {code!r} is not registered in server/errors.py CODES")
        status = IN_BODY_CODES.get(code, CODES[code]) if spec.takes_body else CODES[code]
        by_status.setdefault(str(status), []).append(code)
    responses = {}
    for status in sorted(by_status):
        response: dict[str, Any] = {"description": "Problem: " + ", ".join(by_status[status]),
                                    "content": {"application/problem+json": {"schema": problem}}}
        if status in RETRY_AFTER:
            response["headers"] = {"Retry-After": {"description": "seconds to wait",
                                                   "schema": {"type": "integer", "minimum": 0}}}
        responses[status] = response
    return responses


def _media_types(text: str) -> list[str]:
    """Comma-separated media types, without parameters (`text/csv; charset=utf-8` is text/csv)."""
    return list(dict.fromkeys(m.split(";", 1)[0].strip() for m in text.split(",")))


def _slug(path: str) -> str:
    return re.sub(r"[^a-zA-Z0-9]+", "_", path).strip("_")
