"""OpenAPI 3.1, generated from the routes and the msgspec Structs each handler method declares.

Handlers mark each method with `@endpoint(...)`; `build(routes)` walks every route, turns its
path regex's named groups into `{params}`, and collects the body and response Structs into
components with `msgspec.json.schema_components`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec

from schemas.common import Problem

HTTP_METHODS = ("get", "post", "put", "patch", "delete")


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


def endpoint(summary: str, *, body: type | None = None, body_media: str | None = None,
             responses: dict[int, type | str | None] | None = None, query: dict[str, str] | None = None,
             auth: bool = True, idempotent: bool = False, errors: tuple[str, ...] = ()) -> Callable:
    """Describe a handler method for the OpenAPI document. `responses` maps status → Struct, media type or None."""

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
        op: dict[str, Any] = {"summary": spec.summary, "operationId": f"{method}_{_slug(path)}",
                              "responses": {}}
        parameters = [{"name": p, "in": "path", "required": True, "schema": {"type": "string"}} for p in params]
        parameters += [{"name": q, "in": "query", "required": False, "schema": {"type": "string"},
                        "description": d} for q, d in spec.query.items()]
        if spec.idempotent:
            parameters.append({"name": "Idempotency-Key", "in": "header", "required": False,
                               "schema": {"type": "string", "minLength": 1, "maxLength": 64}})
        if parameters:
            op["parameters"] = parameters
        if spec.body is not None:
            op["requestBody"] = {"required": True, "content": {"application/json": {"schema": refs[spec.body]}}}
        elif spec.body_media:
            op["requestBody"] = {"required": True, "content": {
                m.strip(): {"schema": {"type": "string", "contentMediaType": m.strip()}}
                for m in spec.body_media.split(",")}}
        for status, out in spec.responses.items():
            if out is None:
                op["responses"][str(status)] = {"description": "No body" if status == 204 else "OK"}
            elif isinstance(out, str):
                op["responses"][str(status)] = {"description": "OK", "content": {
                    m.strip(): {"schema": {"type": "string"}} for m in out.split(",")}}
            else:
                op["responses"][str(status)] = {"description": "No content" if status == 204 else "OK",
                                                "content": {"application/json": {"schema": refs[out]}}}
        problem = {"content": {"application/problem+json": {"schema": refs[Problem]}}}
        op["responses"]["default"] = {"description": "Problem: " + (", ".join(spec.errors) or "see code"),
                                      **problem}
        if spec.auth:
            op["security"] = [{"bearer": []}]
        paths.setdefault(path, {})[method] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": {"schemas": components,
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}},
    }


def _slug(path: str) -> str:
    return re.sub(r"[^a-zA-Z0-9]+", "_", path).strip("_")
