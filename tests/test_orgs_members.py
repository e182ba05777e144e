"""Organisations and members as an admin, an organiser and a member would use them: nobody acts on a member
who holds a role they lack (edits, invites, passwords, roles, imports), and one phone is one member however
it is written."""

from __future__ import annotations

import io
import zipfile
from datetime import datetime

import pytest
from openpyxl import Workbook

from tests.builders import fail_writes, member_record, sign_in
from tests.conftest import ADMIN_PASSWORD

# Behind a proxy the client address comes from X-Real-Ip: `sign_in` plays callers at many addresses
# (the other tests send no such header, so their address is the socket's, as without a proxy).
pytestmark = pytest.mark.settings(trust_proxy=True)

CSV = {"Content-Type": "text/csv"}


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


def test_the_member_list_narrows_by_name_phone_status_and_tag(api):
    """The console's member search: part of a name, or a whole phone number (never part of one: phones are
    shown masked), and filters; within the caller's scope only, and refused when malformed."""
    branch, other = api.org("支部"), api.org("另一支部")
    organiser = api.organiser(branch["id"])
    zhang = api.member(branch["id"], "张建国", party_status="probationary", tags=["youth"])
    api.member(branch["id"], "李建华")
    retired = api.member(branch["id"], "王明", tags=["youth"])
    api.admin.ok("PATCH", f"/members/{retired.id}", json={"active": False})
    api.member(other["id"], "张建军")  # matches the name, out of scope

    def names(query: str) -> list[str]:
        return sorted(m["name"] for m in organiser.ok("GET", f"/members?org_id={branch['id']}&{query}")["items"])

    assert names("q=建") == ["张建国", "李建华"]
    assert names("q=张建") == ["张建国"]
    assert names("q=.*") == []  # a pattern character is a character
    phone = member_record(api, zhang.id)["phone"]
    assert names(f"q={phone}") == ["张建国"] and names(f"q={phone[:7]}") == []
    assert names("party_status=probationary") == ["张建国"]
    assert names("tag=youth") == ["张建国", "王明"]
    assert names("tag=youth&active=true") == ["张建国"]
    assert names("active=false") == ["王明"]
    assert sorted(m["name"] for m in organiser.ok("GET", "/members?q=张建")["items"]) == ["张建国"]
    for bad in ("active=maybe", "party_status=member", f"q={'建' * 41}"):
        answer = organiser.get(f"/members?{bad}")
        assert answer.status == 422 and answer.code == "invalid_request", bad


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
    assert entries[0]["after"] == {"name": "赵六六", "tags": ["youth"]}


def test_a_member_change_whose_audit_entry_fails_is_not_made(api, monkeypatch):
    """A change to a member and its audit entry are one transaction: when the entry cannot be written,
    the member is neither created, changed, deactivated, re-roled nor re-passworded, and no invite is made."""
    branch = api.org("支部")
    organiser, admin = api.organiser(branch["id"]), api.admin
    member = api.member(branch["id"], "钱七")
    before = api.run(api.db.members.find_one({"_id": member.id}))
    new = {"org_id": branch["id"], "name": "孙八", "gender": "female", "birth_date": "1990-05-01",
           "party_status": "full", "phone": "13912345678"}
    with monkeypatch.context() as patch:
        fail_writes(patch, "audit_log", "insert_one")
        assert organiser.post("/members", json=new).status == 500
        assert organiser.patch(f"/members/{member.id}", json={"name": "改名", "active": False}).status == 500
        assert admin.put(f"/members/{member.id}/roles",
                         json={"roles": [{"role": "organiser", "org_id": branch["id"]}]}).status == 500
        assert admin.put(f"/members/{member.id}/password", json={"password": "another-long-password"}).status == 500
        assert organiser.post(f"/members/{member.id}/invite").status == 500
    assert api.run(api.db.members.find_one({"_id": member.id})) == before
    assert api.run(api.db.members.count_documents({"phone": "13912345678"})) == 0
    assert api.run(api.db.invites.count_documents({"member_id": member.id})) == 0
    # and without the failure, the same create succeeds (its phone was not left taken)
    organiser.ok("POST", "/members", 201, json=new)


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


def _xlsx(book: Workbook, replace: dict[str, str]) -> bytes:
    """The workbook's file, with the cell values of its first sheet's XML rewritten as `replace` says."""
    saved, rewritten = io.BytesIO(), io.BytesIO()
    book.save(saved)
    with zipfile.ZipFile(saved) as source, zipfile.ZipFile(rewritten, "w") as target:
        for item in source.infolist():
            data = source.read(item)
            if item.filename == "xl/worksheets/sheet1.xml":
                text = data.decode()
                for old, new in replace.items():
                    assert old in text
                    text = text.replace(old, new)
                data = text.encode()
            target.writestr(item, data)
    return rewritten.getvalue()


def test_xlsx_import(api):
    branch = api.org("支部")
    organiser = api.organiser(branch["id"])
    book = Workbook()
    sheet = book.active
    sheet.append(["name", "phone", "gender", "birth_date", "party_status", "tags"])
    sheet.append(["钱一", "13500000001", "female", "1988-08-08", "full", "union_member"])
    sheet.append(["钱二", "", "female", "1988-08-08", "full", None])
    # typed into number and date cells: a phone some spreadsheet programs store as 1.3500000003E10
    sheet.append(["钱三", 13500000003, "male", datetime(1989, 9, 9), "full", None])
    result = organiser.ok("POST", f"/orgs/{branch['id']}/members/import",
                          content=_xlsx(book, {"<v>13500000003</v>": "<v>1.3500000003E10</v>"}),
                          headers={"Content-Type": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"})
    assert result["created"] == 2 and [e["row"] for e in result["errors"]] == [3]
    third = [m for m in organiser.ok("GET", f"/members?org_id={branch['id']}")["items"] if m["name"] == "钱三"]
    assert third[0]["birth_date"] == "1989-09-09"
    assert member_record(api, third[0]["id"])["phone"] == "13500000003"
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


# -- nobody acts on a member who holds a role they lack ------------------------------------------

@pytest.fixture
def takeover(api):
    """Branch A, whose members include the root's second administrator, and A's own staff."""
    a = api.org("甲支部")
    boss = api.member(a["id"], "总管理员", roles=[{"role": "admin", "org_id": api.root_org_id}])
    api.admin.ok("PUT", f"/members/{boss.id}/password", 204, json={"password": "boss-password-1"})
    return {"a": a, "boss": boss, "organiser": api.organiser(a["id"], "甲书记"),
            "admin_a": api.org_admin(a["id"], "甲管理员"), "member": api.member(a["id"], "甲党员")}


def test_organiser_cannot_invite_edit_or_deactivate_the_root_admin_of_their_branch(api, takeover):
    organiser, boss = takeover["organiser"], takeover["boss"]
    before = member_record(api, boss.id)
    attempts = [
        ("POST", f"/members/{boss.id}/invite", None),
        ("PATCH", f"/members/{boss.id}", {"active": False}),
        ("PATCH", f"/members/{boss.id}", {"phone": "13700000066"}),
        ("PATCH", f"/members/{boss.id}", {"name": "改名"}),
    ]
    for method, path, body in attempts:
        response = organiser.request(method, path, json=body)
        assert response.status == 403 and response.code == "forbidden", (method, path, response)
    assert member_record(api, boss.id) == before
    assert api.run(api.db.invites.count_documents({"member_id": boss.id})) == 0
    # The admin still works, and the organiser still manages the plain members of A.
    assert boss.ok("GET", "/me")["roles"] == [{"role": "admin", "org_id": api.root_org_id}]
    assert sign_in(api, before["phone"], "boss-password-1").status == 200
    assert organiser.post(f"/members/{takeover['member'].id}/invite").status == 201
    assert organiser.ok("PATCH", f"/members/{takeover['member'].id}", json={"name": "新名"})["name"] == "新名"


def test_branch_admin_cannot_reset_the_password_or_strip_the_roles_of_a_root_admin(api, takeover):
    admin_a, boss = takeover["admin_a"], takeover["boss"]
    reset = admin_a.put(f"/members/{boss.id}/password", json={"password": "taken-over-123"})
    assert reset.status == 403 and reset.code == "forbidden"
    stripped = admin_a.put(f"/members/{boss.id}/roles", json={"roles": []})
    assert stripped.status == 403 and stripped.code == "forbidden"
    phone = member_record(api, boss.id)["phone"]
    assert sign_in(api, phone, "taken-over-123").status == 401
    assert sign_in(api, phone, "boss-password-1").json["member"]["roles"] == [
        {"role": "admin", "org_id": api.root_org_id}]
    # Over the plain members of A the branch admin keeps every power.
    member = takeover["member"]
    admin_a.ok("PUT", f"/members/{member.id}/password", 204, json={"password": "member-pass-123"})
    granted = admin_a.ok("PUT", f"/members/{member.id}/roles",
                         json={"roles": [{"role": "organiser", "org_id": takeover["a"]["id"]}]})
    assert granted["roles"] == [{"role": "organiser", "org_id": takeover["a"]["id"]}]


def test_import_cannot_overwrite_a_member_holding_a_role_the_importer_lacks(api, takeover):
    organiser, boss = takeover["organiser"], takeover["boss"]
    before = member_record(api, boss.id)
    plain = member_record(api, takeover["member"].id)
    body = ("name,phone,gender,birth_date,party_status\n"
            f"冒名,{before['phone']},female,2000-01-01,none\n"
            f"甲党员改,{plain['phone']},male,1990-01-01,full\n").encode()
    result = organiser.ok("POST", f"/orgs/{takeover['a']['id']}/members/import", content=body, headers=CSV)
    assert result["created"] == 0 and result["updated"] == 1
    assert [e["row"] for e in result["errors"]] == [2] and "forbidden" in result["errors"][0]["message"]
    assert member_record(api, boss.id) == before
    assert member_record(api, plain["_id"])["name"] == "甲党员改"


def test_roles_held_higher_up_protect_a_member_from_organisers_below(api):
    a = api.org("甲支部")
    group = api.org("甲小组", "group", a["id"])
    secretary = api.member(group["id"], "支部书记", roles=[{"role": "organiser", "org_id": a["id"]}])
    group_leader = api.organiser(group["id"], "组长")
    refused = group_leader.patch(f"/members/{secretary.id}", json={"active": False})
    assert refused.status == 403 and refused.code == "forbidden"
    # The same role on the same org, or on an org above, is enough.
    peer = api.organiser(a["id"], "副书记")
    assert peer.ok("PATCH", f"/members/{secretary.id}", json={"name": "书记"})["name"] == "书记"
    # A member the caller cannot see stays invisible (404), whatever roles they hold.
    outsider = api.member(api.org("乙支部")["id"], "乙管理员", roles=[{"role": "admin", "org_id": api.root_org_id}])
    assert group_leader.patch(f"/members/{outsider.id}", json={"name": "x"}).status == 404


def test_an_invite_made_before_the_member_became_admin_cannot_take_them_over(api, takeover):
    organiser, member = takeover["organiser"], takeover["member"]
    code = organiser.ok("POST", f"/members/{member.id}/invite", 201)["invite_code"]
    api.admin.ok("PUT", f"/members/{member.id}/roles", json={"roles": [{"role": "admin", "org_id": api.root_org_id}]})
    anon = api.anonymous()
    token = anon.ok("POST", "/auth/wechat", json={"code": "ok:openid-of-the-organiser"})["bind_token"]
    late = anon.post("/auth/bind", json={"bind_token": token, "invite_code": code})
    assert late.status == 422 and late.code == "invite_code_invalid"
    assert api.run(api.db.wechat_identities.count_documents({"member_id": member.id})) == 0
    # An invite from someone who may act on the new admin still binds.
    fresh = api.admin.ok("POST", f"/members/{member.id}/invite", 201)["invite_code"]
    assert anon.ok("POST", "/auth/bind", json={"bind_token": token, "invite_code": fresh})["member"]["id"] == member.id


# -- one phone, one member, however it is written -------------------------------------------------

def new_member(phone: str, org_id: str) -> dict:
    return {"name": "新人", "phone": phone, "org_id": org_id, "gender": "male",
            "birth_date": "1990-01-01", "party_status": "full"}


def test_a_phone_with_a_trailing_newline_cannot_duplicate_a_member(api):
    branch = api.org("支部")
    admin = api.admin
    admin.ok("POST", "/members", 201, json=new_member("13800000001", branch["id"]))
    for variant in ("13800000001\n", "13800000001\r\n", "\n13800000001", "1380000\n0001"):
        response = admin.post("/members", json=new_member(variant, branch["id"]))
        assert response.status in (409, 422), (variant, response)
    assert api.run(api.db.members.count_documents({"phone": {"$regex": "13800000001"}})) == 1

    other = admin.ok("POST", "/members", 201, json=new_member("13800000002", branch["id"]))
    moved = admin.patch(f"/members/{other['id']}", json={"phone": "13800000001\n"})
    assert moved.status in (409, 422) and member_record(api, other["id"])["phone"] == "13800000002"


def test_phones_are_stored_in_one_form(api):
    branch = api.org("支部")
    admin = api.admin
    spaced = admin.ok("POST", "/members", 201, json=new_member("138 0000 0003", branch["id"]))
    assert member_record(api, spaced["id"])["phone"] == "13800000003"
    dashed = admin.post("/members", json=new_member("138-0000-0003", branch["id"]))
    assert dashed.status == 409 and dashed.code == "phone_taken"
    imported = admin.ok("POST", f"/orgs/{branch['id']}/members/import", headers=CSV, content=(
        "name,phone,gender,birth_date,party_status\n"
        "导入,138 0000 0003,male,1990-01-01,full\n").encode())
    assert imported == {"created": 0, "updated": 1, "errors": []}
    # Staff sign in with the phone written as they like.
    assert admin.ok("GET", "/me")
    assert sign_in(api, "138-0000-0000", ADMIN_PASSWORD).status == 200
