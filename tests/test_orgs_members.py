"""Organisations and members as an admin, an organiser and a member would use them."""

from __future__ import annotations

import io

from openpyxl import Workbook


def test_org_tree_keeps_ancestor_paths(api):
    root = api.root_org_id
    general = api.org("机关第一党总支", "general_branch")
    branch = api.org("第一支部", "branch", general["id"])
    group = api.org("第一党小组", "group", branch["id"])
    assert general["path"] == [root] and general["parent_id"] == root
    assert branch["path"] == [root, general["id"]]
    assert group["path"] == [root, general["id"], branch["id"]]
    fetched = api.admin.ok("GET", f"/orgs/{group['id']}")
    assert fetched == group
    children = api.admin.ok("GET", f"/orgs?parent_id={general['id']}")
    assert [o["id"] for o in children["items"]] == [branch["id"]]


def test_org_kind_must_sit_below_its_parent(api):
    branch = api.org("支部")
    bad = api.admin.post("/orgs", json={"name": "x", "kind": "general_branch", "parent_id": branch["id"]})
    assert bad.status == 422 and bad.code == "invalid_request" and bad.json["errors"][0]["field"] == "kind"
    assert api.admin.post("/orgs", json={"name": "x", "kind": "team", "parent_id": branch["id"]}).status == 422


def test_member_sees_own_ancestors_and_subtree_only(api):
    general = api.org("总支", "general_branch")
    branch_a = api.org("甲支部", "branch", general["id"])
    branch_b = api.org("乙支部", "branch", general["id"])
    group_a = api.org("甲小组", "group", branch_a["id"])
    member = api.member(branch_a["id"])
    seen = {o["id"] for o in member.ok("GET", "/orgs?limit=100")["items"]}
    assert seen == {api.root_org_id, general["id"], branch_a["id"], group_a["id"]}
    assert member.get(f"/orgs/{branch_b['id']}").status == 404
    assert member.get("/orgs/no-such-org").status == 404


def test_members_are_created_masked_and_listed_by_subtree(api):
    branch = api.org("支部")
    group = api.org("小组", "group", branch["id"])
    organiser = api.organiser(branch["id"])
    created = organiser.ok("POST", "/members", 201, json={
        "name": "李四", "phone": "13712345678", "org_id": group["id"], "gender": "female",
        "birth_date": "1992-03-04", "party_status": "probationary", "tags": ["union_member", "union_member"]})
    assert created["phone_masked"] == "137****5678" and "phone" not in created
    assert created["tags"] == ["union_member"] and created["roles"] == [] and created["active"] is True
    taken = organiser.post("/members", json={
        "name": "王五", "phone": "13712345678", "org_id": group["id"], "gender": "male",
        "birth_date": "1990-01-01", "party_status": "full"})
    assert taken.status == 409 and taken.code == "phone_taken"

    listed = organiser.ok("GET", f"/members?org_id={branch['id']}")
    ids = {m["id"] for m in listed["items"]}
    assert created["id"] in ids and organiser.id in ids
    assert all("*" in m["phone_masked"] for m in listed["items"])

    page1 = organiser.ok("GET", f"/members?org_id={branch['id']}&limit=1")
    page2 = organiser.ok("GET", f"/members?org_id={branch['id']}&limit=1&cursor={page1['next_cursor']}")
    assert page1["items"][0]["id"] != page2["items"][0]["id"] and page2["next_cursor"] is None


def test_organiser_edits_members_and_changes_are_audited(api):
    branch = api.org("支部")
    other = api.org("另一支部")
    organiser = api.organiser(branch["id"])
    member = api.member(branch["id"], "赵六")
    patched = organiser.ok("PATCH", f"/members/{member.id}", json={"name": "赵六六", "tags": ["youth"]})
    assert patched["name"] == "赵六六" and patched["tags"] == ["youth"]
    moved_out = organiser.patch(f"/members/{member.id}", json={"org_id": other["id"]})
    assert moved_out.status == 404  # the organiser cannot see the other branch
    entries = api.run(api.db.audit_log.find({"target_id": member.id, "action": "member.update"}).to_list())
    assert len(entries) == 1 and entries[0]["actor_id"] == organiser.id
    assert entries[0]["changes"]["after"] == {"name": "赵六六", "tags": ["youth"]}


def test_roles_are_set_by_an_admin_within_their_subtree(api):
    branch = api.org("支部")
    branch_admin = api.org_admin(branch["id"])
    member = api.member(branch["id"])
    granted = branch_admin.ok("PUT", f"/members/{member.id}/roles",
                              json={"roles": [{"role": "organiser", "org_id": branch["id"]}]})
    assert granted["roles"] == [{"role": "organiser", "org_id": branch["id"]}]
    # The new organiser may now act: the role applies at once.
    assert member.get(f"/members?org_id={branch['id']}").status == 200
    above = branch_admin.put(f"/members/{member.id}/roles",
                             json={"roles": [{"role": "admin", "org_id": api.root_org_id}]})
    assert above.status == 403 and above.code == "forbidden"


def test_csv_import_reports_bad_rows_and_writes_the_good_ones(api):
    branch = api.org("支部")
    organiser = api.organiser(branch["id"])
    csv_body = (
        "name,phone,gender,birth_date,party_status,tags\n"
        "张一,13600000001,male,1990-01-01,full,union_member;youth\n"
        "张二,13600000002,女,1991-02-02,预备党员,\n"
        "张三,not-a-phone,male,1990-01-01,full,\n"
        "张四,13600000004,unknown,1990-01-01,full,\n"
        "张五,13600000005,male,1990-13-01,full,\n"
    ).encode()
    result = organiser.ok("POST", f"/orgs/{branch['id']}/members/import", content=csv_body,
                          headers={"Content-Type": "text/csv"})
    assert result["created"] == 2 and result["updated"] == 0
    assert [e["row"] for e in result["errors"]] == [4, 5, 6]
    names = {m["name"] for m in organiser.ok("GET", f"/members?org_id={branch['id']}")["items"]}
    assert {"张一", "张二"} <= names and not {"张三", "张四", "张五"} & names

    again = organiser.ok("POST", f"/orgs/{branch['id']}/members/import",
                         content="姓名,手机号,性别,出生日期,政治面貌\n张一改,13600000001,男,1990-01-01,正式党员\n".encode(),
                         headers={"Content-Type": "text/csv"})
    assert again == {"created": 0, "updated": 1, "errors": []}


def test_xlsx_import(api):
    branch = api.org("支部")
    organiser = api.organiser(branch["id"])
    book = Workbook()
    sheet = book.active
    sheet.append(["name", "phone", "gender", "birth_date", "party_status", "tags"])
    sheet.append(["钱一", "13500000001", "female", "1988-08-08", "full", "union_member"])
    sheet.append(["钱二", "", "female", "1988-08-08", "full", None])
    buffer = io.BytesIO()
    book.save(buffer)
    result = organiser.ok("POST", f"/orgs/{branch['id']}/members/import", content=buffer.getvalue(),
                          headers={"Content-Type": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"})
    assert result["created"] == 1 and [e["row"] for e in result["errors"]] == [3]
    bad = organiser.post(f"/orgs/{branch['id']}/members/import", content=b"\x00\x01",
                         headers={"Content-Type": "image/png"})
    assert bad.status == 415 and bad.code == "unsupported_media_type"


def test_import_cannot_take_over_a_member_outside_scope(api):
    branch_a, branch_b = api.org("甲"), api.org("乙")
    outsider = api.member(branch_b["id"], "乙的人")
    phone = api.run(api.db.members.find_one({"_id": outsider.id}))["phone"]
    organiser = api.organiser(branch_a["id"])
    result = organiser.ok("POST", f"/orgs/{branch_a['id']}/members/import",
                          content=f"name,phone,gender,birth_date,party_status\n偷,{phone},male,1990-01-01,full\n".encode(),
                          headers={"Content-Type": "text/csv"})
    assert result["created"] == 0 and result["updated"] == 0 and len(result["errors"]) == 1
    assert api.run(api.db.members.find_one({"_id": outsider.id}))["org_id"] == branch_b["id"]
