"""Hostile input at the API edge answers a 4xx problem with a stable code, never a 500: times at the
edges of the datetime range, cursors and QR tokens outside their grammar, bodies that are not UTF-8,
texts with control characters or bidi overrides (and exports that survive such texts stored before).
One capability across the API: the same grammar and the same answer at every endpoint. (A location fix
vaguer than the geofence: test_study_sessions.py.)"""

from __future__ import annotations

import base64
import io
from collections.abc import Callable
from datetime import timedelta

import pytest
from openpyxl import load_workbook

from tests.builders import activity_body, checkin, iso, new_session, qr_token, session_body, study_world

# As far from UTC as an offset goes, on the first and last day datetime knows: converting either
# to UTC leaves the datetime range.
EDGE_TIMES = ["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59"]


def _expect_invalid(response, field: str) -> None:
    assert response.status == 422 and response.code == "invalid_request", response
    assert response.json["errors"][0]["field"] == field, response


# -- times: every body and query that takes one -----------------------------------------------------

SESSION_TIMES = ("starts_at", "ends_at", "checkin_opens_at", "checkin_closes_at", "late_after")
ACTIVITY_TIMES = ("starts_at", "ends_at", "signup_opens_at", "signup_closes_at", "cancel_deadline")
ANNOUNCEMENT_TIMES = ("publish_at", "expires_at")

# Each builds a world and returns (send(field, value) → response, the time fields the endpoint takes).
Case = Callable[[object], tuple[Callable[[str, str], object], tuple[str, ...]]]


def _branch_and_organiser(api):
    branch = api.org("一支部")
    return branch, api.organiser(branch["id"])


def _create_session(api):
    branch, organiser = _branch_and_organiser(api)
    body = session_body(api, branch["id"])
    return (lambda f, v: organiser.post("/study/sessions", json={**body, f: v})), SESSION_TIMES


def _patch_session(api):
    branch, organiser = _branch_and_organiser(api)
    sid = organiser.ok("POST", "/study/sessions", 201, json=session_body(api, branch["id"]))["id"]
    return (lambda f, v: organiser.patch(f"/study/sessions/{sid}", json={f: v})), SESSION_TIMES


def _study_checkin(api):
    w = study_world(api, members=1)
    sid = new_session(api, w.organiser, w.branch["id"], start_in=timedelta(minutes=10))["id"]
    token = qr_token(w.organiser, sid)
    return (lambda f, v: checkin(w.members[0], sid, token, **{f: v})), ("client_time",)


def _create_activity(api):
    branch, organiser = _branch_and_organiser(api)
    body = activity_body(api, branch["id"])
    return (lambda f, v: organiser.post("/activities", json={**body, f: v})), ACTIVITY_TIMES


def _patch_activity(api):
    branch, organiser = _branch_and_organiser(api)
    aid = organiser.ok("POST", "/activities", 201, json=activity_body(api, branch["id"]))["id"]
    return (lambda f, v: organiser.patch(f"/activities/{aid}", json={f: v})), ACTIVITY_TIMES


def _create_announcement(api):
    branch, organiser = _branch_and_organiser(api)
    body = {"org_id": branch["id"], "title": "通知", "body": "正文"}
    return (lambda f, v: organiser.post("/announcements", json={**body, f: v})), ANNOUNCEMENT_TIMES


def _patch_announcement(api):
    branch, organiser = _branch_and_organiser(api)
    aid = organiser.ok("POST", "/announcements", 201,
                       json={"org_id": branch["id"], "title": "通知", "body": "正文"})["id"]
    return (lambda f, v: organiser.patch(f"/announcements/{aid}", json={f: v})), ANNOUNCEMENT_TIMES


def _list_sessions(api):
    branch, organiser = _branch_and_organiser(api)
    return (lambda f, v: organiser.get("/study/sessions", params={f: v})), ("from", "to")


@pytest.mark.parametrize("case", [_create_session, _patch_session, _study_checkin, _create_activity,
                                  _patch_activity, _create_announcement, _patch_announcement, _list_sessions],
                         ids=lambda c: c.__name__.strip("_"))
def test_edge_timestamps_are_invalid_request_naming_the_field(api, case):
    send, fields = case(api)
    for field in fields:
        for value in EDGE_TIMES:
            _expect_invalid(send(field, value), field)


# -- cursors and tokens -----------------------------------------------------------------------------

def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def test_feed_cursor_out_of_range_or_grammar_is_invalid_request(api):
    member = api.member(api.org("一支部")["id"])
    for before in (_b64("u|99999999999999999999|announcement:x"), _b64("p|-99999999999999999|x"),
                   _b64("u|1|a\x00b"), "é", "a" * 600):
        _expect_invalid(member.get("/feed", params={"before": before}), "before")


def test_list_cursor_outside_its_grammar_is_invalid_request(api):
    branch, organiser = _branch_and_organiser(api)
    for cursor in ("é", "a b", "a.b"):
        _expect_invalid(organiser.get("/study/sessions", params={"cursor": cursor}), "cursor")
        _expect_invalid(organiser.get("/activities", params={"cursor": cursor}), "cursor")


def test_non_ascii_qr_token_is_qr_invalid_on_study_and_activity_check_ins(api):
    w = study_world(api, members=1)
    member = w.members[0]
    sid = new_session(api, w.organiser, w.branch["id"], start_in=timedelta(minutes=10))["id"]
    act = w.organiser.ok("POST", "/activities", 201, json={
        **activity_body(api, w.branch["id"]), "starts_at": iso(api.clock.now() + timedelta(minutes=10)),
        "ends_at": iso(api.clock.now() + timedelta(hours=2)),
        "signup_closes_at": iso(api.clock.now() + timedelta(minutes=5))})
    path = f"/activities/{act['id']}"
    w.organiser.ok("POST", path + "/publish")
    member.ok("POST", path + "/signups", 201)
    window = qr_token(w.organiser, sid).split(".")[0]
    for token in (f"{window}.é", "١٢٣.abc", f"{window}.{'A' * 23}\u00e9", "²." + "A" * 24):
        refused = checkin(member, sid, token)
        assert refused.status == 422 and refused.code == "qr_invalid", refused
        refused = member.post(path + "/checkins", json={"qr_token": token})
        assert refused.status == 422 and refused.code == "qr_invalid", refused
    assert api.run(api.db["study_attendance"].count_documents({"session_id": sid})) == 0


# -- bodies and texts -------------------------------------------------------------------------------

@pytest.mark.parametrize(("path", "field"), [("/members", "name"), ("/orgs", "name"), ("/announcements", "title"),
                                             ("/study/checkins", "session_id"), ("/activities", "title")])
def test_body_that_is_not_utf8_is_invalid_request(api, path, field):
    raw = b'{"%s": "\xff\xfe\xed\xa0\x80"}' % field.encode()  # a known field, so its value is read
    response = api.admin.post(path, content=raw, headers={"Content-Type": "application/json"})
    _expect_invalid(response, "body")


def test_texts_refuse_control_characters_and_bidi_overrides(api):
    branch, organiser = _branch_and_organiser(api)
    member_body = {"phone": api.phone(), "org_id": branch["id"], "gender": "male", "birth_date": "1990-01-01",
                   "party_status": "full"}
    # "张三\n": a pattern's `$` matches before a final line feed under re.search.
    for name in ("张\x00三", "张\x1b[31m三", "张\u202e三", "张\u2066三", "张\x85三", "张\n三", "张\x7f三", "张三\n"):
        _expect_invalid(api.admin.post("/members", json={**member_body, "name": name}), "name")
        _expect_invalid(api.admin.post("/orgs", json={"name": name, "kind": "branch",
                                                      "parent_id": api.root_org_id}), "name")
    _expect_invalid(api.admin.post("/members", json={**member_body, "name": "张三", "tags": ["a\tb"]}), "tags[0]")
    _expect_invalid(api.admin.post("/members", json={**member_body, "name": "张三", "org_id": branch["id"] + "\n"}),
                    "org_id")
    post = {"org_id": branch["id"], "title": "通知", "body": "正文"}
    _expect_invalid(organiser.post("/announcements", json={**post, "title": "通\t知"}), "title")
    _expect_invalid(organiser.post("/announcements", json={**post, "body": "正\x0c文"}), "body")
    # Long texts keep their line breaks and tabs.
    assert organiser.post("/announcements", json={**post, "body": "第一行\n\t第二行"}).status == 201
    assert api.run(api.db["members"].count_documents({"name": {"$regex": "^张.三$"}})) == 0


def test_exports_survive_names_already_stored_with_control_characters(api):
    """Rows written before texts were checked may hold characters a spreadsheet cannot: the xlsx
    exports replace them instead of failing."""
    branch, organiser = _branch_and_organiser(api)
    stored = api.member(branch["id"], "旧数据")
    api.run(api.db["members"].update_one({"_id": stored.id}, {"$set": {"name": "旧\x00数\x1b据\u202e"}}))
    act = organiser.ok("POST", "/activities", 201, json=activity_body(api, branch["id"]))
    organiser.ok("POST", f"/activities/{act['id']}/publish")
    stored.ok("POST", f"/activities/{act['id']}/signups", 201)

    roster = organiser.get(f"/activities/{act['id']}/signups?format=xlsx")
    assert roster.status == 200, roster
    cells = [c.value for row in load_workbook(io.BytesIO(roster.content))["已确认"].iter_rows() for c in row]
    assert "旧\ufffd数\ufffd据\ufffd" in cells

    export = organiser.get(f"/orgs/{branch['id']}/study/export?format=xlsx")
    assert export.status == 200, export
    book = load_workbook(io.BytesIO(export.content))
    cells = [c.value for sheet in book.worksheets for row in sheet.iter_rows() for c in row]
    assert "旧\ufffd数\ufffd据\ufffd" in cells
    csv_export = organiser.get(f"/orgs/{branch['id']}/study/export?format=csv")
    assert csv_export.status == 200 and "旧\ufffd数\ufffd据\ufffd" in csv_export.content.decode("utf-8-sig")

