"""Who sees and does what with a 群心驿站 activity (API.md §6): the org scope (ancestors and the subtree,
never a sibling branch), the scope matrix of every activity endpoint, organiser-only actions, a signed-in
caller everywhere, and rosters that never carry a full phone number."""

from __future__ import annotations

import io

import pytest
from openpyxl import load_workbook

from tests.builders import activity_body, published


def test_scope_ancestors_and_subtree_but_never_a_sibling_branch(api):
    committee = api.org("机关党委二级", kind="committee")
    branch_a = api.org("甲支部", parent_id=committee["id"])
    branch_b = api.org("乙支部", parent_id=committee["id"])
    group_a = api.org("甲小组", kind="group", parent_id=branch_a["id"])
    organiser_a = api.organiser(branch_a["id"])
    act = published(api, organiser_a, branch_a["id"])
    top = published(api, api.organiser(committee["id"]), committee["id"])
    in_group = api.member(group_a["id"])
    in_b = api.member(branch_b["id"])
    above = api.member(committee["id"])
    path = f"/activities/{act['id']}"
    assert in_group.ok("GET", path)["id"] == act["id"]  # an ancestor's activity
    assert above.ok("GET", path)["id"] == act["id"]  # an activity of the subtree
    assert in_b.get(path).code == "activity_not_found"
    assert in_b.post(path + "/signups").code == "activity_not_found"
    assert [a["id"] for a in in_b.ok("GET", "/activities")["items"]] == [top["id"]]
    assert {a["id"] for a in in_group.ok("GET", "/activities")["items"]} == {act["id"], top["id"]}
    assert in_b.ok("GET", f"/activities?org_id={branch_a['id']}")["items"] == []
    # an organiser of B cannot manage A's activity, and does not learn it exists
    assert api.organiser(branch_b["id"]).get(path + "/signups").code == "activity_not_found"
    # an organiser of A manages it; the member of A's group may not
    assert organiser_a.ok("GET", path + "/signups")["counts"]["confirmed"] == 0
    assert in_group.get(path + "/signups").code == "forbidden"


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


@pytest.mark.parametrize("method, path", [
    ("GET", "/programmes"), ("PUT", "/programmes/unity"), ("POST", "/activities"), ("GET", "/activities"),
    ("GET", "/activities/x"), ("PATCH", "/activities/x"), ("POST", "/activities/x/publish"),
    ("POST", "/activities/x/cancel"), ("POST", "/activities/x/signups"), ("GET", "/activities/x/signups"),
    ("DELETE", "/activities/x/signups/me"), ("GET", "/activities/x/qr"), ("GET", "/activities/x/qr/image"),
    ("POST", "/activities/x/checkins"),
    ("POST", "/activities/x/feedback"), ("GET", "/activities/x/feedback")])
def test_every_endpoint_needs_a_signed_in_caller(api, method, path):
    response = api.anonymous().request(method, path, json={})
    assert response.status == 401 and response.code == "unauthenticated"


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
