"""HTTP basics every endpoint shares: problem+json, request ids, size limits, health, OpenAPI; a stalled
body is cut off, an aborted one leaves nothing in flight, and no response names the server software."""

from __future__ import annotations

import re

import pytest
from openapi_spec_validator import validate

from schemas.openapi import _openapi_path
from server.app import ROUTES, drain
from tests.builders import no_partial_uploads, open_request, text_file, wait_until


def test_health_and_ready(api):
    anon = api.anonymous()
    health = anon.get("/healthz")
    assert health.status == 200 and health.json == {"status": "ok"}
    assert len(health.headers["X-Request-ID"]) >= 8
    assert anon.get("/readyz").json == {"status": "ok"}


def test_request_id_is_echoed_when_sane(api):
    anon = api.anonymous()
    assert anon.get("/healthz", headers={"X-Request-ID": "abc-12345678"}).headers["X-Request-ID"] == "abc-12345678"
    assert anon.get("/healthz", headers={"X-Request-ID": "bad id; drop"}).headers["X-Request-ID"] != "bad id; drop"


def test_unknown_path_and_method_are_json_problems(api):
    anon = api.anonymous()
    missing = anon.get("/api/v1/nothing-here")
    assert missing.status == 404 and missing.code == "not_found"
    assert missing.headers["Content-Type"] == "application/problem+json"
    assert {"type", "title", "status", "detail", "code"} <= missing.json.keys()
    wrong = anon.delete("/healthz")
    assert wrong.status == 405 and wrong.code == "method_not_allowed"


def test_405_names_the_route_methods_in_allow(api):
    anon = api.anonymous()
    assert anon.delete("/healthz").headers["Allow"] == "GET"
    wrong = anon.request("PUT", "/activities")
    assert wrong.status == 405 and wrong.headers["Allow"] == "GET, POST"
    assert anon.request("TRACE", "/announcements/x").headers["Allow"] == "GET, DELETE, PATCH"


def test_json_body_over_one_mebibyte_is_413(api):
    big = b'{"name": "' + b"x" * (1024 * 1024 + 10) + b'"}'
    admin = api.admin
    for _ in range(5):  # the answer arrives intact and the keep-alive connection stays usable
        response = admin.post("/orgs", content=big, headers={"Content-Type": "application/json"})
        assert response.status == 413 and response.code == "body_too_large"
        assert admin.get("/me").status == 200
    anonymous = api.anonymous().post("/orgs", content=big, headers={"Content-Type": "application/json"})
    assert anonymous.status == 413


def test_malformed_json_and_unknown_fields_are_422(api):
    admin = api.admin
    bad = admin.post("/orgs", content=b"{not json", headers={"Content-Type": "application/json"})
    assert bad.status == 422 and bad.code == "invalid_request"
    unknown = admin.post("/orgs", json={"name": "x", "kind": "branch", "parent_id": api.root_org_id, "evil": 1})
    assert unknown.status == 422 and unknown.code == "invalid_request"
    assert unknown.json["errors"][0]["field"] in ("evil", "body")
    wrong_type = admin.post("/orgs", json={"name": 5, "kind": "branch", "parent_id": api.root_org_id})
    assert wrong_type.status == 422 and wrong_type.json["errors"][0]["field"] == "name"


def test_limit_is_bounded(api):
    assert api.admin.get("/orgs?limit=101").code == "invalid_request"
    assert api.admin.get("/orgs?limit=0").code == "invalid_request"
    assert api.admin.get("/orgs?limit=abc").code == "invalid_request"
    assert api.admin.get("/orgs?limit=100").status == 200


def test_metrics_are_prometheus_text(api):
    api.anonymous().get("/healthz")
    metrics = api.anonymous().get("/metrics")
    assert metrics.status == 200
    assert b"branchline_http_requests_total" in metrics.content


def _errors_counted(api, code: str) -> float:
    text = api.anonymous().get("/metrics").content.decode()
    match = re.search(rf'^branchline_errors_total{{code="{code}"}} (\S+)$', text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def test_a_refused_idempotent_post_is_counted_once(api):
    member = api.member(api.root_org_id, "计数")
    before = _errors_counted(api, "forbidden")
    body = {"name": "x", "kind": "branch", "parent_id": api.root_org_id}
    refused = member.post("/orgs", json=body, headers={"Idempotency-Key": "count-once-1"})
    assert refused.status == 403 and refused.code == "forbidden"
    assert _errors_counted(api, "forbidden") == before + 1
    replayed = member.post("/orgs", json=body, headers={"Idempotency-Key": "count-once-1"})
    assert replayed.headers["Idempotent-Replayed"] == "true" and replayed.json == refused.json
    assert _errors_counted(api, "forbidden") == before + 1  # a replay sends the stored answer


def test_openapi_is_valid_and_covers_every_route(api):
    document = api.anonymous().get("/openapi.json").json
    validate(document)
    for pattern, handler in ROUTES:
        path, _ = _openapi_path(pattern)
        assert path in document["paths"], f"{path} missing from OpenAPI"
        for method in ("get", "post", "put", "patch", "delete"):
            if method in vars(handler) or any(method in vars(base) for base in handler.__mro__[:-1]
                                              if base.__module__.startswith("handlers.")
                                              and base.__name__ != "APIHandler"):
                assert method in document["paths"][path], f"{method.upper()} {path} missing from OpenAPI"


def _parameter(operation: dict, name: str) -> dict:
    return next(p for p in operation["parameters"] if p["name"] == name)


def test_openapi_types_query_parameters(api):
    paths = api.anonymous().get("/openapi.json").json["paths"]
    activities = paths["/api/v1/activities"]["get"]
    assert _parameter(activities, "limit")["schema"] == {"type": "integer", "minimum": 1, "maximum": 100,
                                                         "default": 20}
    assert _parameter(activities, "eligible")["schema"]["type"] == "boolean"
    assert _parameter(activities, "status")["schema"]["enum"] == ["draft", "published", "cancelled"]
    assert _parameter(activities, "cursor")["schema"]["maxLength"] == 512
    sync = paths["/api/v1/sync"]["get"]
    assert _parameter(sync, "limit")["schema"]["maximum"] == 200
    assert _parameter(sync, "timeout")["schema"] == {"type": "integer", "minimum": 0, "maximum": 30, "default": 0}
    assert _parameter(paths["/api/v1/warnings"]["get"], "status")["schema"]["enum"] == ["open", "rectifying",
                                                                                     "closed"]
    scan = _parameter(paths["/api/v1/orgs/{org_id}/warnings/scan"]["post"], "period")
    progress = _parameter(paths["/api/v1/me/study/progress"]["get"], "period")
    assert scan["required"] and not progress["required"] and progress["schema"]["pattern"].startswith("^\\d{4}")
    assert _parameter(paths["/api/v1/study/sessions"]["get"], "from")["schema"]["format"] == "date-time"


def test_openapi_lists_problems_by_status_and_files_by_media_type(api):
    paths = api.anonymous().get("/openapi.json").json["paths"]
    signup = paths["/api/v1/activities/{activity_id}/signups"]["post"]
    assert "default" not in signup["responses"]
    assert {"401", "403", "404", "409", "413", "422", "503"} <= signup["responses"].keys()
    assert "activity_full" in signup["responses"]["409"]["description"]
    assert "request_in_progress" in signup["responses"]["409"]["description"]
    assert "application/problem+json" in signup["responses"]["404"]["content"]
    assert signup["requestBody"]["required"] is False
    assert paths["/api/v1/activities"]["post"]["requestBody"]["required"] is True
    assert "429" in paths["/api/v1/auth/password"]["post"]["responses"]
    assert "401" not in paths["/healthz"]["get"]["responses"]
    roster = paths["/api/v1/activities/{activity_id}/signups"]["get"]["responses"]["200"]["content"]
    assert roster["text/csv"]["schema"] == {"type": "string", "format": "binary"}
    assert "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" in roster
    download = paths["/api/v1/files/{file_id}"]["get"]["responses"]["200"]["content"]
    assert {"image/png", "application/pdf", "application/octet-stream"} <= download.keys()


def test_unexpected_errors_are_500_without_traceback_and_logged_with_the_request_id(api, caplog):
    from handlers.base import APIHandler

    class Exploding(APIHandler):
        auth_required = False

        async def get(self) -> None:
            raise RuntimeError("secret internals: password=hunter2")

    api.app.wildcard_router.add_rules([(r"/api/v1/explode", Exploding)])
    with caplog.at_level("ERROR", logger="branchline.http"):
        response = api.anonymous().get("/explode", headers={"X-Request-ID": "req-explode-1"})
    assert response.status == 500 and response.code == "internal_error"
    assert b"hunter2" not in response.content and b"Traceback" not in response.content
    assert response.json["request_id"] == "req-explode-1"
    assert any("req-explode-1" in record.getMessage() for record in caplog.records)


def test_an_error_answer_carries_the_request_id_it_was_logged_with(api, caplog):
    from handlers.base import APIHandler

    class Exploding(APIHandler):
        auth_required = False

        async def get(self) -> None:
            raise RuntimeError("boom")

    api.app.wildcard_router.add_rules([(r"/api/v1/explode-unnamed", Exploding)])
    with caplog.at_level("ERROR", logger="branchline.http"):
        response = api.anonymous().get("/explode-unnamed")  # no X-Request-ID: the server chooses one
    request_id = response.headers["X-Request-ID"]
    assert response.status == 500 and response.json["request_id"] == request_id
    assert any(request_id in record.getMessage() for record in caplog.records)


def nothing_in_flight(api) -> bool:
    return wait_until(lambda: not api.ctx.inflight, timeout=10)


# -- slow and aborted bodies, and no Server header --------------------------------------------------

# A short body timeout for the stalled sender; a long grace period, so a drain that waits for a
# request that will never finish is told apart from one that has nothing to wait for.
@pytest.mark.settings(body_timeout_seconds=1.0, shutdown_grace_seconds=300.0)
def test_a_stalled_body_is_cut_off_after_the_body_timeout(api):
    owner = api.member(api.org("一支部")["id"])
    sock = open_request(api.port, owner.token, "/files", 1000, b"x" * 10)
    try:  # the body timeout is 1 s; without one the server would wait for ever (the socket gives up at 30 s)
        answer = sock.recv(1024)
    except ConnectionResetError:
        answer = b""
    finally:
        sock.close()
    assert answer == b""  # closed without an answer: the client never finished its request
    assert nothing_in_flight(api)
    assert no_partial_uploads(api)


@pytest.mark.settings(body_timeout_seconds=1.0, shutdown_grace_seconds=300.0)
def test_aborted_requests_leave_nothing_in_flight_so_shutdown_does_not_wait(api):
    branch = api.org("一支部")
    organiser = api.organiser(branch["id"])
    for path in ("/files", "/announcements"):
        sock = open_request(api.port, organiser.token, path, 5000, b'{"org_id": ')
        sock.close()
    assert nothing_in_flight(api)
    assert no_partial_uploads(api)
    # The drain (what SIGTERM runs) has nothing to wait for: it returns well inside the 300 s grace period.
    api.run(drain(api.server, api.ctx), timeout=30)


def test_no_response_names_the_server_software(api):
    owner = api.member(api.org("一支部")["id"])
    doc = text_file(owner)
    responses = [api.anonymous().get("/healthz"), api.anonymous().get("/nowhere"), api.anonymous().get("/me"),
                 owner.get("/me"), owner.get(f"/files/{doc['id']}"), owner.get(f"/files/{doc['id']}",
                                                                               headers={"Range": "bytes=1-2"})]
    for response in responses:
        assert "Server" not in response.headers, response
