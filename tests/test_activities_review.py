"""Review of 群心驿站 activities against API.md §6 and issue 4: regressions for what the review found
(no-shows on every read, answers with the caller's own sign-up, an idempotent DELETE, check-in answers
shaped as for study sessions, feedback written whole or not at all, bodies of parameterless actions
checked), and the scope matrix of every activity endpoint."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from openpyxl import load_workbook

from tests.test_activities_failures import fail_writes
from tests.test_activities_flow import activity_body, advance, iso, published, settings_overrides  # noqa: F401


def checkin(organiser, member, path: str, status: int = 201) -> dict:
    token = organiser.ok("GET", path + "/qr")["token"]
    return member.ok("POST", path + "/checkins", status, json={"qr_token": token})


# -- no-shows -------------------------------------------------------------------------------------

def test_no_shows_show_in_lists_and_for_members_promoted_after_the_end(api):
    branch = api.org("一支部")
    organiser = api.organiser(branch["id"])
    came, absent, waiting = (api.member(branch["id"], n) for n in ("来了", "没来", "候补"))
    act = published(api, organiser, branch["id"], capacity=2, waitlist=True)
    path = f"/activities/{act['id']}"
    for who in (came, absent, waiting):
        who.ok("POST", path + "/signups", 201)
    advance(api, organiser, came, absent, waiting, days=2, minutes=5)
    checkin(organiser, came, path)
    advance(api, organiser, came, absent, waiting, hours=2)
    # the list is the first read after the end: it already tells the no-show
    [listed] = absent.ok("GET", "/activities")["items"]
    assert listed["my_signup"] == {"status": "confirmed", "attendance": "no_show"}
    assert came.ok("GET", "/activities")["items"][0]["my_signup"]["attendance"] == "present"
    assert api.run(api.db["activity_signups"].find_one({"member_id": absent.id}))["attendance"] == "no_show"
    # a member confirmed after the end (capacity raised) did not come either
    raised = organiser.ok("PATCH", path, json={"capacity": 3})
    assert raised["confirmed_count"] == 3
    assert waiting.ok("GET", path)["my_signup"] == {"status": "confirmed", "attendance": "no_show"}
    assert api.run(api.db["activity_signups"].find_one({"member_id": waiting.id}))["attendance"] == "no_show"
    roster = organiser.ok("GET", path + "/signups")
    assert roster["counts"]["present"] == 1 and roster["counts"]["no_show"] == 2
    assert {e["name"]: e["attendance"] for e in roster["confirmed"]} == {
        "来了": "present", "没来": "no_show", "候补": "no_show"}


def test_moving_the_end_later_takes_back_no_shows_until_the_new_end(api):
    branch = api.org("一支部")
    organiser = api.organiser(branch["id"])
    late = api.member(branch["id"], "迟到")
    act = published(api, organiser, branch["id"])
    path = f"/activities/{act['id']}"
    late.ok("POST", path + "/signups", 201)
    advance(api, organiser, late, days=2, hours=2, minutes=1)  # a minute after the end
    assert late.ok("GET", path)["my_signup"]["attendance"] == "no_show"
    # the organiser extends the activity by an hour: it is not over, nobody is a no-show yet
    organiser.ok("PATCH", path, json={"ends_at": iso(api.clock.now() + timedelta(hours=1))})
    assert late.ok("GET", path)["my_signup"] == {"status": "confirmed"}
    assert organiser.ok("GET", path + "/signups")["counts"]["no_show"] == 0
    assert checkin(organiser, late, path)["status"] == "present"
    advance(api, organiser, late, hours=1, minutes=1)
    assert late.ok("GET", path)["my_signup"]["attendance"] == "present"
    assert organiser.ok("GET", path + "/signups")["counts"] == {
        "confirmed": 1, "waitlisted": 0, "cancelled": 0, "present": 1, "no_show": 0}


# -- answers --------------------------------------------------------------------------------------

def test_organiser_actions_answer_with_the_callers_own_sign_up(api):
    branch = api.org("一支部")
    organiser = api.organiser(branch["id"])
    draft = organiser.ok("POST", "/activities", 201, json=activity_body(api, branch["id"]))
    path = f"/activities/{draft['id']}"
    assert draft["my_signup"] is None
    assert organiser.ok("POST", path + "/publish")["my_signup"] is None
    assert organiser.ok("POST", path + "/signups", 201) == {"status": "confirmed"}
    assert organiser.ok("PATCH", path, json={"title": "新标题"})["my_signup"] == {"status": "confirmed"}
    assert organiser.ok("POST", path + "/publish")["my_signup"] == {"status": "confirmed"}
    cancelled = organiser.ok("POST", path + "/cancel")
    assert cancelled["status"] == "cancelled" and cancelled["my_signup"] == {"status": "confirmed"}
    assert cancelled["confirmed_count"] == 1


def test_leaving_again_answers_204_and_changes_nothing(api):
    branch = api.org("一支部")
    organiser = api.organiser(branch["id"])
    first, second, third = (api.member(branch["id"]) for _ in range(3))
    act = published(api, organiser, branch["id"], capacity=1, waitlist=True)
    path = f"/activities/{act['id']}"
    for who in (first, second, third):
        who.ok("POST", path + "/signups", 201)
    first.ok("DELETE", path + "/signups/me", 204)
    again = first.delete(path + "/signups/me")  # a retry after a lost answer
    assert again.status == 204 and again.content == b""
    seen = organiser.ok("GET", path)
    assert (seen["confirmed_count"], seen["waitlist_count"]) == (1, 1)  # nobody else was promoted or dropped
    assert second.ok("GET", path)["my_signup"] == {"status": "confirmed"}
    assert third.ok("GET", path)["my_signup"] == {"status": "waitlisted", "position": 1}
    assert api.member(branch["id"]).delete(path + "/signups/me").code == "signup_not_found"


def test_check_in_answers_are_shaped_as_for_study_sessions(api):
    branch = api.org("一支部")
    organiser = api.organiser(branch["id"])
    member = api.member(branch["id"])
    act = published(api, organiser, branch["id"])
    path = f"/activities/{act['id']}"
    member.ok("POST", path + "/signups", 201)
    advance(api, organiser, member, days=2)
    first = checkin(organiser, member, path)
    assert first["result"] == "ok" and first["status"] == "present" and first["checked_in_at"].endswith("Z")
    again = checkin(organiser, member, path, 200)
    assert again == {"result": "already_checked_in", "status": "present", "checked_in_at": first["checked_in_at"]}


def test_parameterless_actions_refuse_unknown_body_fields(api):
    branch = api.org("一支部")
    organiser = api.organiser(branch["id"])
    draft = organiser.ok("POST", "/activities", 201, json=activity_body(api, branch["id"]))
    path = f"/activities/{draft['id']}"
    refused = organiser.post(path + "/publish", json={"notify": True})
    assert refused.status == 422 and refused.code == "invalid_request"
    assert organiser.ok("GET", path)["status"] == "draft"
    assert organiser.ok("POST", path + "/publish", json={})["status"] == "published"
    assert organiser.post(path + "/cancel", json={"reason": "x", "silent": True}).status == 422
    member = api.member(branch["id"])
    for body in ({"answers": {}, "extra": 1}, {"answers": {str(i): "v" for i in range(21)}},
                 {"answers": {"k" * 65: "v"}}, {"answers": {"note": "字" * 1001}}, {"answers": {"": "v"}},
                 {"answers": {"note": 5}}):
        response = member.post(path + "/signups", json=body)
        assert response.status == 422 and response.code == "invalid_request", body
    assert organiser.ok("GET", path)["confirmed_count"] == 0


def test_feedback_and_its_flag_are_written_whole_or_not_at_all(api, monkeypatch):
    branch = api.org("一支部")
    organiser = api.organiser(branch["id"])
    member = api.member(branch["id"])
    act = published(api, organiser, branch["id"])
    path = f"/activities/{act['id']}"
    member.ok("POST", path + "/signups", 201)
    advance(api, organiser, member, days=2)
    checkin(organiser, member, path)
    with monkeypatch.context() as patch:
        fail_writes(patch, "activity_signups", "update_one")  # the flag, after the feedback was written
        assert member.post(path + "/feedback", json={"rating": 5}).status == 500
    assert api.run(api.db["activity_feedback"].count_documents({"activity_id": act["id"]})) == 0
    assert "feedback_given" not in member.ok("GET", path)["my_signup"]
    assert member.ok("POST", path + "/feedback", 201, json={"rating": 5, "comment": "好"})["rating"] == 5
    assert member.ok("GET", path)["my_signup"]["feedback_given"] is True
    assert member.post(path + "/feedback", json={"rating": 4}).code == "feedback_exists"


# -- scope matrix ---------------------------------------------------------------------------------

ORGANISER_ONLY = [("GET", "/signups", None), ("GET", "/signups?format=csv", None), ("GET", "/qr", None),
                  ("GET", "/qr/image", None), ("GET", "/feedback", None), ("PATCH", "", {"title": "x"}),
                  ("POST", "/publish", None), ("POST", "/cancel", {"reason": "x"})]
MEMBER_ACTIONS = [("GET", "", None), ("POST", "/signups", None), ("DELETE", "/signups/me", None),
                  ("POST", "/checkins", {"qr_token": "1.x"}), ("POST", "/feedback", {"rating": 3})]


@pytest.mark.parametrize("method, suffix, body", ORGANISER_ONLY + MEMBER_ACTIONS)
def test_outside_the_scope_every_endpoint_answers_activity_not_found(api, method, suffix, body):
    committee = api.org("二级党委", kind="committee")
    branch_a = api.org("甲支部", parent_id=committee["id"])
    branch_b = api.org("乙支部", parent_id=committee["id"])
    organiser = api.organiser(branch_a["id"])
    act = published(api, organiser, branch_a["id"])
    draft = organiser.ok("POST", "/activities", 201, json=activity_body(api, branch_a["id"]))
    in_b, organiser_b = api.member(branch_b["id"]), api.organiser(branch_b["id"])
    in_a = api.member(branch_a["id"])
    kw = {"json": body} if body is not None else {}
    for who, target in ((in_b, act), (organiser_b, act), (in_a, draft), (in_b, {"id": "nope"})):
        response = who.request(method, f"/activities/{target['id']}{suffix}", **kw)
        assert response.status == 404 and response.code == "activity_not_found", (who, target["id"], response)
    # nothing was changed on the way
    assert organiser.ok("GET", f"/activities/{act['id']}")["title"] == "读书会"
    assert organiser.ok("GET", f"/activities/{draft['id']}")["status"] == "draft"


@pytest.mark.parametrize("method, suffix, body", ORGANISER_ONLY)
def test_a_member_who_sees_the_activity_may_not_manage_it(api, method, suffix, body):
    committee = api.org("二级党委", kind="committee")
    branch = api.org("甲支部", parent_id=committee["id"])
    top = published(api, api.organiser(committee["id"]), committee["id"])
    member = api.member(branch["id"])
    branch_organiser = api.organiser(branch["id"])  # organises the branch, not the committee
    kw = {"json": body} if body is not None else {}
    for who in (member, branch_organiser):
        response = who.request(method, f"/activities/{top['id']}{suffix}", **kw)
        assert response.status == 403 and response.code == "forbidden", (who, response)
    assert member.ok("GET", f"/activities/{top['id']}")["status"] == "published"


def test_rosters_never_carry_a_full_phone_number(api):
    branch = api.org("一支部")
    organiser = api.organiser(branch["id"])
    act = published(api, organiser, branch["id"], capacity=1, waitlist=True)
    path = f"/activities/{act['id']}"
    people = [api.member(branch["id"], n) for n in ("甲", "乙", "丙")]
    for who in people:
        who.ok("POST", path + "/signups", 201, json={"answers": {"备注": "无"}})
    people[2].ok("DELETE", path + "/signups/me", 204)
    phones = [api.run(api.db["members"].find_one({"_id": p.id}))["phone"] for p in people]
    roster = organiser.get(path + "/signups")
    csv_file = organiser.get(path + "/signups?format=csv")
    xlsx = organiser.get(path + "/signups?format=xlsx")
    book = load_workbook(io.BytesIO(xlsx.content))
    cells = " ".join(str(c.value) for sheet in book for row in sheet.iter_rows() for c in row)
    for text in (roster.content.decode(), csv_file.content.decode("utf-8-sig"), cells):
        for phone in phones:
            assert phone not in text and phone[-4:] in text
    entries = roster.json["confirmed"] + roster.json["waitlisted"] + roster.json["cancelled"]
    assert sorted(e["phone_masked"] for e in entries) == sorted(p[:3] + "****" + p[-4:] for p in phones)


def test_turning_the_waitlist_off_keeps_who_is_waiting_and_refuses_newcomers(api):
    branch = api.org("一支部")
    organiser = api.organiser(branch["id"])
    act = published(api, organiser, branch["id"], capacity=1, waitlist=True)
    path = f"/activities/{act['id']}"
    first, second, third, late = (api.member(branch["id"]) for _ in range(4))
    for who in (first, second, third):
        who.ok("POST", path + "/signups", 201)
    assert organiser.ok("PATCH", path, json={"waitlist": False})["waitlist_count"] == 2
    refused = late.post(path + "/signups")
    assert refused.status == 409 and refused.code == "activity_full"
    assert third.ok("GET", path)["my_signup"] == {"status": "waitlisted", "position": 2}
    first.ok("DELETE", path + "/signups/me", 204)  # the place still goes to the earliest waiting
    assert second.ok("GET", path)["my_signup"] == {"status": "confirmed"}
    assert third.ok("GET", path)["my_signup"] == {"status": "waitlisted", "position": 1}
    seen = organiser.ok("GET", path)
    assert (seen["confirmed_count"], seen["waitlist_count"], seen["waitlist"]) == (1, 1, False)
