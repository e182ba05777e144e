"""Property-based API fuzzing: schemathesis generates requests from the server's own /openapi.json and
checks every answer against it, as an admin, an organiser and a member of a small seeded world.

Each answer must not be a 5xx, and its status, media type and body must be the ones the document
declares for that operation: so the document is what generated clients can trust, and malformed
input gets a 4xx the document lists. Path parameters are drawn from the seeded ids (and one unknown
id), and so are the id fields of request bodies, so most requests get past "not found".

Per operation, schemathesis' coverage phase (boundary and malformed values, deterministic) runs first,
then MAX_EXAMPLES random cases, valid and invalid. It is the test builder `schema.parametrize()` uses
(create_test, pinned with the version in requirements-dev.txt), called here so that one server and
one seeded world serve all the operations of a role. Runs are reproducible: Hypothesis is derandomised,
without an example database; shrinking is off to keep the three runs within a few minutes.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.generation.hypothesis.builder import HypothesisTestConfig, HypothesisTestMode, create_test
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.builders import iso
from tests.conftest import Api, Client

CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance, content_type_conformance]
MAX_EXAMPLES = 8  # random cases per operation, after the coverage cases (kept low: the suite's time)
UNKNOWN_ID = "no-such-id"


@dataclass
class Seeded:
    clients: dict[str, Client]
    ids: dict[str, list[str]]  # path parameter name → ids that exist


def seed(api: Api) -> Seeded:
    """Root → committee → branch (organiser, member) and a second branch; an activity, a session, an
    announcement with a file, a self-study entry, a leave request and a suggestion."""
    committee = api.org("机关党委", "committee")
    branch = api.org("第一支部", "branch", committee["id"])
    other = api.org("第二支部", "branch", committee["id"])
    organiser = api.organiser(branch["id"], "张书记")
    member = api.member(branch["id"], "党员")
    now = api.clock.now()
    activity = organiser.ok("POST", "/activities", 201, json={
        "programme": "unity", "org_id": branch["id"], "title": "读书会", "description": "一起读书",
        "starts_at": iso(now + timedelta(days=2)), "ends_at": iso(now + timedelta(days=2, hours=2)),
        "signup_opens_at": iso(now - timedelta(hours=1)), "signup_closes_at": iso(now + timedelta(days=1)),
        "capacity": 10, "waitlist": True})
    organiser.ok("POST", f"/activities/{activity['id']}/publish")
    member.ok("POST", f"/activities/{activity['id']}/signups", 201)
    session = organiser.ok("POST", "/study/sessions", 201, json={
        "org_id": branch["id"], "track": "group_meeting", "title": "党小组会",
        "starts_at": iso(now + timedelta(hours=1)), "ends_at": iso(now + timedelta(hours=2))})
    request = member.ok("POST", "/study/requests", 201, json={"session_id": session["id"], "kind": "leave",
                                                              "reason": "出差"})
    upload = organiser.ok("POST", "/files", 201, content=b"minutes of the meeting\n",
                          headers={"Content-Type": "text/plain", "X-Filename": "minutes.txt"})
    announcement = organiser.ok("POST", "/announcements", 201, json={
        "org_id": branch["id"], "title": "支部大会通知", "body": "周五下午三点召开。", "must_read": True,
        "file_ids": [upload["id"]]})
    member.ok("POST", "/study/self-study", 201, json={"track": "self_study", "minutes": 30, "material": "党章",
                                                    "date": now.date().isoformat()})
    feed_item = member.ok("GET", "/feed")["items"][0]["id"]
    suggestion = member.ok("POST", "/suggestions", 201, json={"text": "希望增加离线阅读", "category": "app"})
    orgs = [api.root_org_id, committee["id"], branch["id"], other["id"]]
    return Seeded(
        clients={"admin": api.admin, "organiser": organiser, "member": member},
        ids={"org_id": orgs, "member_id": [member.id, organiser.id], "activity_id": [activity["id"]],
             "session_id": [session["id"]], "request_id": [request["id"]], "announcement_id": [announcement["id"]],
             "file_id": [upload["id"]], "item_id": [feed_item], "key": ["unity"],
             "suggestion_id": [suggestion["id"]]})


#: Body fields that name a seeded thing (by its path parameter name), so bodies reach past "not found".
BODY_IDS = {"org_id": "org_id", "parent_id": "org_id", "session_id": "session_id", "programme": "key",
            "cover_file_id": "file_id", "file_ids": "file_id", "attendees": "member_id"}


def pin_ids(document: dict, ids: dict[str, list[str]]) -> dict:
    """Draw path parameters and the id fields of request bodies from the seeded ids (and an unknown one)."""
    def choice(name: str) -> dict:
        return {"type": "string", "enum": [*ids[name], UNKNOWN_ID]}

    bodies = set()
    for operations in document["paths"].values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path" and parameter["name"] in ids:
                    parameter["schema"] = choice(parameter["name"])
                if parameter["name"] == "timeout":  # /sync long-polls: a second is enough to exercise it
                    parameter["schema"]["maximum"] = 1
            for media in operation.get("requestBody", {}).get("content", {}).values():
                bodies.add(media["schema"].get("$ref", "").rpartition("/")[2])
    for name in bodies & document["components"]["schemas"].keys():  # request Structs only, not answers
        properties = document["components"]["schemas"][name].get("properties", {})
        for field, kind in BODY_IDS.items():
            if field in properties:
                many = "array" in str(properties[field].get("type", "")) or "items" in str(properties[field])
                properties[field] = {"type": "array", "items": choice(kind), "maxItems": 3} if many \
                    else choice(kind)
    return document


def fuzz(operation, project, base_url: str, headers: dict[str, str], seen: Counter) -> None:
    """Send the coverage cases, then the random ones; raise on the first failing answer."""
    def check(case) -> None:
        response = case.call_and_validate(base_url=base_url, headers=headers, checks=CHECKS, timeout=30)
        seen[response.status_code] += 1

    settings = hypothesis.settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
                                   phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck),
                                   print_blob=False)
    test = create_test(operation=operation, test_func=check, config=HypothesisTestConfig(
        project=project, modes=[HypothesisTestMode.COVERAGE, HypothesisTestMode.FUZZING], settings=settings))
    test()


#: Instants at the ends of the calendar, where converting the offset leaves it; random dates rarely land there.
EDGE_INSTANTS = ["0001-01-01T00:00:00+14:00", "0001-01-01T00:30:00+01:00", "9999-12-31T23:59:59-14:00",
                 "9999-12-31T23:59:59.999999-00:30", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z"]


@pytest.fixture
def edge_instants():
    """RFC 3339 date-times for the whole calendar and any offset, the calendar's ends often."""
    offsets = st.integers(-14 * 60, 14 * 60).map(lambda minutes: timezone(timedelta(minutes=minutes)))
    anywhere = st.datetimes(timezones=offsets).map(lambda moment: moment.isoformat())
    recent = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC))
    schemathesis.openapi.format("date-time", st.sampled_from(EDGE_INSTANTS) | anywhere
                                | recent.map(lambda moment: moment.isoformat().replace("+00:00", "Z")))
    yield
    from schemathesis.specs.openapi.formats import unregister_string_format

    unregister_string_format("date-time")


@pytest.mark.parametrize("role", ["admin", "organiser", "member"])
def test_every_operation_answers_as_documented(api, role, caplog, edge_instants):
    world = seed(api)
    client = world.clients[role]
    document = pin_ids(client.get("/openapi.json").json, world.ids)
    schema = schemathesis.openapi.from_dict(document)
    headers = {"Authorization": f"Bearer {client.token}"}
    failures = []
    answered: dict[str, Counter] = {}
    caplog.set_level(logging.ERROR, logger="branchline.http")
    for result in schema.get_all_operations():
        operation = result.ok()
        try:
            fuzz(operation, schema.config, api.base_url, headers, answered.setdefault(operation.label, Counter()))
        except (Exception, FailureGroup) as exc:  # every failing operation is reported together
            failures.append(f"--- {operation.label} ---\n{exc}")
    for label, seen in answered.items():  # shown with -s: how far the requests got
        print(f"{role:9} {label:60} {dict(sorted(seen.items()))}")
    formatter = logging.Formatter()
    server_errors = [formatter.format(r) for r in caplog.records]  # with the traceback of each 500
    assert not failures, "\n\n".join(failures) + "\n\nServer log:\n" + "\n".join(server_errors)
