"""Health, readiness, metrics and the OpenAPI document."""

from __future__ import annotations

import msgspec
import pymongo

from handlers.base import APIHandler
from schemas import openapi
from schemas.common import Status
from server import metrics
from server.db import UNAVAILABLE_ERRORS


class HealthHandler(APIHandler):
    auth_required = False

    @openapi.endpoint("Liveness: the process answers", responses={200: Status}, auth=False)
    async def get(self) -> None:
        self.respond({"status": "ok"})


class ReadyHandler(APIHandler):
    auth_required = False

    @openapi.endpoint("Readiness: 200 when the database answers, else 503", responses={200: Status, 503: Status},
                      auth=False)
    async def get(self) -> None:
        try:
            with pymongo.timeout(1.0):  # readiness must answer fast, not wait for server selection
                await self.ctx.db.command("ping")
        except UNAVAILABLE_ERRORS:
            self.respond({"status": "database_unavailable"}, status=503)
            return
        self.respond({"status": "ok"})


class MetricsHandler(APIHandler):
    auth_required = False

    @openapi.endpoint("Prometheus metrics", responses={200: "text/plain"}, auth=False)
    async def get(self) -> None:
        body, content_type = metrics.render()
        self.set_header("Content-Type", content_type)
        self.write(body)


class OpenAPIHandler(APIHandler):
    auth_required = False

    @openapi.endpoint("This OpenAPI 3.1 document", responses={200: "application/json"}, auth=False)
    async def get(self) -> None:
        document = self.application.settings.get("openapi_document")
        if document is None:
            document = msgspec.json.encode(openapi.build(self.application.settings["routes"]))
            self.application.settings["openapi_document"] = document
        self.write(document)
