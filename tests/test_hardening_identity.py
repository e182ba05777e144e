"""Security review, identity and members: scenarios an attacker and their victim would live through.

Takeover of a stronger member by an organiser, lock-out of staff by wrong passwords, sessions
that outlive a password change, phones that dodge the uniqueness check, bind tokens used twice.
"""

from __future__ import annotations

import pytest

from tests.conftest import ADMIN_PASSWORD, ADMIN_PHONE

CSV = {"Content-Type": "text/csv"}


@pytest.fixture
def settings_overrides() -> dict:
    # Behind a proxy the client address comes from X-Real-Ip: tests play callers at many addresses.
    return {"trust_proxy": True}


def from_address(ip: str) -> dict:
    return {"X-Real-Ip": ip}


def record(api, member_id: str) -> dict:
    return api.run(api.db.members.find_one({"_id": member_id}))


def sign_in(api, phone: str, password: str, ip: str = "10.0.0.1"):
    return api.anonymous().post("/auth/password", json={"phone": phone, "password": password},
                                headers=from_address(ip))


# -- 3. Nobody acts on a member who holds a role they lack --------------------------------------------


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
    before = record(api, boss.id)
    attempts = [
        ("POST", f"/members/{boss.id}/invite", None),
        ("PATCH", f"/members/{boss.id}", {"active": False}),
        ("PATCH", f"/members/{boss.id}", {"phone": "13700000066"}),
        ("PATCH", f"/members/{boss.id}", {"name": "改名"}),
    ]
    for method, path, body in attempts:
        response = organiser.request(method, path, json=body)
        assert response.status == 403 and response.code == "forbidden", (method, path, response)
    assert record(api, boss.id) == before
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
    phone = record(api, boss.id)["phone"]
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
    before = record(api, boss.id)
    plain = record(api, takeover["member"].id)
    body = ("name,phone,gender,birth_date,party_status\n"
            f"冒名,{before['phone']},female,2000-01-01,none\n"
            f"甲党员改,{plain['phone']},male,1990-01-01,full\n").encode()
    result = organiser.ok("POST", f"/orgs/{takeover['a']['id']}/members/import", content=body, headers=CSV)
    assert result["created"] == 0 and result["updated"] == 1
    assert [e["row"] for e in result["errors"]] == [2] and "forbidden" in result["errors"][0]["message"]
    assert record(api, boss.id) == before
    assert record(api, plain["_id"])["name"] == "甲党员改"


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


# -- 6. Wrong passwords from one address do not lock the right one out --------------------------------


def test_failing_address_is_held_back_while_the_staff_member_signs_in_elsewhere(api):
    assert api.admin.member
    attacker = "203.0.113.66"
    failures = [sign_in(api, ADMIN_PHONE, f"guess-{i:04d}", attacker).status for i in range(5)]
    assert failures == [401] * 5
    held = sign_in(api, ADMIN_PHONE, ADMIN_PASSWORD, attacker)
    assert held.status == 429 and held.code == "rate_limited"
    first_wait = int(held.headers["Retry-After"])
    assert first_wait > 0
    # The administrator, at the office, is not locked out.
    assert sign_in(api, ADMIN_PHONE, ADMIN_PASSWORD, "198.51.100.7").status == 200
    # Each further failure from the attacking address doubles its wait.
    api.clock.advance(seconds=first_wait)
    assert sign_in(api, ADMIN_PHONE, "guess-again", attacker).status == 401
    second = sign_in(api, ADMIN_PHONE, "guess-more", attacker)
    assert second.status == 429 and int(second.headers["Retry-After"]) > first_wait
    assert sign_in(api, ADMIN_PHONE, ADMIN_PASSWORD, "198.51.100.7").status == 200


def test_a_correct_password_clears_the_failures_of_its_address(api):
    assert api.admin.member
    office = "198.51.100.8"
    assert [sign_in(api, ADMIN_PHONE, f"typo-{i}", office).status for i in range(4)] == [401] * 4
    assert sign_in(api, ADMIN_PHONE, ADMIN_PASSWORD, office).status == 200
    # The count starts again: four more typos still leave the right password through.
    assert [sign_in(api, ADMIN_PHONE, f"typo-{i}", office).status for i in range(4)] == [401] * 4
    assert sign_in(api, ADMIN_PHONE, ADMIN_PASSWORD, office).status == 200


def test_guessing_from_many_addresses_meets_a_per_phone_ceiling_even_across_the_hour(api):
    from server.identity import PHONE_FAILURE_CEILING

    assert api.admin.member
    limit, window = PHONE_FAILURE_CEILING
    # Start just before a clock boundary of the window and cross it halfway: a window that restarts
    # at the boundary would forget the first half.
    now = api.clock.now().timestamp()
    api.clock.advance(seconds=window.total_seconds() - now % window.total_seconds() - 30)
    for i in range(limit):
        if i == limit // 2:
            api.clock.advance(seconds=60)
        assert sign_in(api, ADMIN_PHONE, "guess-x", f"10.9.{i // 4}.{i % 4}").status == 401
    held = sign_in(api, ADMIN_PHONE, ADMIN_PASSWORD, "198.51.100.9")
    assert held.status == 429 and int(held.headers["Retry-After"]) > 0


# -- 7. A password change or reset ends the old sessions ----------------------------------------------


def test_changing_or_resetting_a_password_revokes_every_session(api):
    member = api.member(api.org("支部")["id"], "会计")
    phone = record(api, member.id)["phone"]
    member.ok("PUT", f"/members/{member.id}/password", 204, json={"password": "first-password"})
    laptop = sign_in(api, phone, "first-password").json["refresh_token"]
    phone_app = sign_in(api, phone, "first-password").json["refresh_token"]

    member.ok("PUT", f"/members/{member.id}/password", 204, json={"password": "second-password"})
    for token in (laptop, phone_app):
        stale = api.anonymous().post("/auth/refresh", json={"refresh_token": token})
        assert stale.status == 401 and stale.code == "unauthenticated"

    fresh = sign_in(api, phone, "second-password").json["refresh_token"]
    api.admin.ok("PUT", f"/members/{member.id}/password", 204, json={"password": "third-password"})
    assert api.anonymous().post("/auth/refresh", json={"refresh_token": fresh}).status == 401
    assert sign_in(api, phone, "third-password").status == 200


def test_deactivation_revokes_sessions_for_good(api):
    member = api.member(api.org("支部")["id"], "出纳")
    phone = record(api, member.id)["phone"]
    member.ok("PUT", f"/members/{member.id}/password", 204, json={"password": "cashier-pass"})
    old = sign_in(api, phone, "cashier-pass").json["refresh_token"]
    api.admin.ok("PATCH", f"/members/{member.id}", json={"active": False})
    api.admin.ok("PATCH", f"/members/{member.id}", json={"active": True})
    assert api.anonymous().post("/auth/refresh", json={"refresh_token": old}).status == 401


# -- 9. One phone, one member, however it is written ------------------------------------------------------


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
    assert moved.status in (409, 422) and record(api, other["id"])["phone"] == "13800000002"


def test_phones_are_stored_in_one_form(api):
    branch = api.org("支部")
    admin = api.admin
    spaced = admin.ok("POST", "/members", 201, json=new_member("138 0000 0003", branch["id"]))
    assert record(api, spaced["id"])["phone"] == "13800000003"
    dashed = admin.post("/members", json=new_member("138-0000-0003", branch["id"]))
    assert dashed.status == 409 and dashed.code == "phone_taken"
    imported = admin.ok("POST", f"/orgs/{branch['id']}/members/import", headers=CSV, content=(
        "name,phone,gender,birth_date,party_status\n"
        "导入,138 0000 0003,male,1990-01-01,full\n").encode())
    assert imported == {"created": 0, "updated": 1, "errors": []}
    # Staff sign in with the phone written as they like.
    assert admin.ok("GET", "/me")
    assert sign_in(api, "138-0000-0000", ADMIN_PASSWORD).status == 200


# -- 10. A bind token binds once ----------------------------------------------------------------------------


def test_a_bind_token_is_single_use(api):
    branch = api.org("支部")
    first, second = api.member(branch["id"], "甲"), api.member(branch["id"], "乙")
    anon = api.anonymous()
    token = anon.ok("POST", "/auth/wechat", json={"code": "ok:openid-twice"})["bind_token"]
    # A wrong invite code does not use the token up.
    wrong = anon.post("/auth/bind", json={"bind_token": token, "invite_code": "WRONGCODE"})
    assert wrong.status == 422 and wrong.code == "invite_code_invalid"
    code = api.admin.ok("POST", f"/members/{first.id}/invite", 201)["invite_code"]
    assert anon.ok("POST", "/auth/bind", json={"bind_token": token, "invite_code": code})["member"]["id"] == first.id

    other_code = api.admin.ok("POST", f"/members/{second.id}/invite", 201)["invite_code"]
    again = anon.post("/auth/bind", json={"bind_token": token, "invite_code": other_code})
    assert again.status == 401 and again.code == "unauthenticated"
    # Nothing moved: the identity stays with the first member and the second invite is still good.
    assert anon.ok("POST", "/auth/wechat", json={"code": "ok:openid-twice"})["member"]["id"] == first.id
    assert api.run(api.db.invites.find_one({"member_id": second.id}))["used_at"] is None


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


def test_a_bind_token_presented_twice_at_once_binds_once(api):
    branch = api.org("支部")
    members = [api.member(branch["id"], f"党员{i}") for i in range(2)]
    codes = [api.admin.ok("POST", f"/members/{m.id}/invite", 201)["invite_code"] for m in members]
    token = api.anonymous().ok("POST", "/auth/wechat", json={"code": "ok:openid-race"})["bind_token"]
    answers = api.concurrently([lambda http, c=c: http.post("/auth/bind", json={"bind_token": token, "invite_code": c})
                                for c in codes])
    assert sorted(r.status for r in answers) == [200, 401], answers
    assert api.run(api.db.wechat_identities.count_documents({"_id": "openid-race"})) == 1
    assert api.run(api.db.invites.count_documents({"used_at": None})) == 1
