"""Access control for every endpoint of the foundation: outsiders, members, organisers and admins."""

from __future__ import annotations

import time

import jwt
import pytest

from tests.conftest import TEST_SECRET


@pytest.fixture
def world(api):
    general = api.org("总支", "general_branch")
    a = api.org("甲支部", "branch", general["id"])
    b = api.org("乙支部", "branch", general["id"])
    return {
        "general": general, "a": a, "b": b,
        "member_a": api.member(a["id"], "甲党员"),
        "member_a2": api.member(a["id"], "甲党员二"),
        "member_b": api.member(b["id"], "乙党员"),
        "organiser_a": api.organiser(a["id"], "甲书记"),
        "admin_a": api.org_admin(a["id"], "甲管理员"),
    }


def endpoints(w) -> list[tuple[str, str, dict | None]]:
    """(method, path, body) for every foundation endpoint that needs a signed-in caller."""
    target = w["member_a2"].id
    return [
        ("GET", "/me", None),
        ("POST", "/auth/logout", {"refresh_token": "x"}),
        ("POST", "/orgs", {"name": "新", "kind": "group", "parent_id": w["a"]["id"]}),
        ("GET", "/orgs", None),
        ("GET", f"/orgs/{w['a']['id']}", None),
        ("POST", "/members", {"name": "新", "phone": "13100000001", "org_id": w["a"]["id"], "gender": "male",
                              "birth_date": "1990-01-01", "party_status": "full"}),
        ("GET", f"/members?org_id={w['a']['id']}", None),
        ("GET", f"/members/{target}", None),
        ("PATCH", f"/members/{target}", {"name": "改"}),
        ("PUT", f"/members/{target}/roles", {"roles": []}),
        ("PUT", f"/members/{target}/password", {"password": "0123456789ab"}),
        ("POST", f"/members/{target}/invite", None),
        ("POST", f"/orgs/{w['a']['id']}/members/import", None),
    ]


def bad_tokens(member_id: str) -> dict[str, str | None]:
    now = int(time.time())
    claims = {"sub": member_id, "iat": now, "exp": now + 600, "iss": "branchline", "aud": "branchline-api",
              "jti": "j", "typ": "access"}
    expired = {**claims, "iat": now - 2000, "exp": now - 1000}
    from server.security import key_id
    return {
        "none": None,
        "garbage": "not.a.token",
        "expired": jwt.encode(expired, TEST_SECRET, algorithm="HS256", headers={"kid": key_id(TEST_SECRET)}),
        "other_key": jwt.encode(claims, "another-secret-entirely-0123456789abcdef", algorithm="HS256",
                                headers={"kid": key_id(TEST_SECRET)}),
        "alg_none": jwt.encode(claims, None, algorithm="none", headers={"kid": key_id(TEST_SECRET)}),
        "missing_claims": jwt.encode({"sub": member_id, "exp": now + 600}, TEST_SECRET, algorithm="HS256",
                                     headers={"kid": key_id(TEST_SECRET)}),
    }


def test_outsiders_get_401_everywhere(api, world):
    anon = api.anonymous()
    for label, token in bad_tokens(world["member_a"].id).items():
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        for method, path, body in endpoints(world):
            response = anon.request(method, path, json=body, headers=headers)
            assert response.status == 401 and response.code == "unauthenticated", (label, method, path, response)


def test_members_get_403_on_organiser_actions(api, world):
    member = world["member_a"]
    refused = [(m, p, b) for m, p, b in endpoints(world)
               if p not in ("/me", "/auth/logout", "/orgs", f"/orgs/{world['a']['id']}")]
    for method, path, body in refused:
        response = member.request(method, path, json=body, content=b"name\n" if body is None and method == "POST"
                                  else None, headers={"Content-Type": "text/csv"} if "import" in path else {})
        assert response.status == 403 and response.code == "forbidden", (method, path, response)
    # What a member may do.
    assert member.get("/me").status == 200
    assert member.get(f"/orgs/{world['a']['id']}").status == 200
    assert member.get(f"/members/{member.id}").status == 200


def test_organiser_of_one_branch_gets_404_for_another(api, world):
    organiser = world["organiser_a"]
    b, other = world["b"], world["member_b"].id
    calls = [
        ("GET", f"/orgs/{b['id']}", None),
        ("POST", "/orgs", {"name": "x", "kind": "group", "parent_id": b["id"]}),
        ("POST", "/members", {"name": "x", "phone": "13100000009", "org_id": b["id"], "gender": "male",
                              "birth_date": "1990-01-01", "party_status": "full"}),
        ("GET", f"/members?org_id={b['id']}", None),
        ("GET", f"/members/{other}", None),
        ("PATCH", f"/members/{other}", {"name": "x"}),
        ("PUT", f"/members/{other}/roles", {"roles": []}),
        ("PUT", f"/members/{other}/password", {"password": "0123456789ab"}),
        ("POST", f"/members/{other}/invite", None),
    ]
    for method, path, body in calls:
        response = organiser.request(method, path, json=body)
        assert response.status == 404, (method, path, response)
    imported = organiser.post(f"/orgs/{b['id']}/members/import", content=b"name\n",
                              headers={"Content-Type": "text/csv"})
    assert imported.status == 404
    listed = organiser.ok("GET", "/members?limit=100")
    assert other not in {m["id"] for m in listed["items"]}


def test_branch_admin_cannot_act_above_the_branch(api, world):
    admin_a = world["admin_a"]
    above = admin_a.post("/orgs", json={"name": "x", "kind": "branch", "parent_id": world["general"]["id"]})
    assert above.status == 403 and above.code == "forbidden"
    grant = admin_a.put(f"/members/{world['member_a'].id}/roles",
                        json={"roles": [{"role": "organiser", "org_id": world["general"]["id"]}]})
    assert grant.status == 403
    root_admin = api.admin.id
    assert admin_a.patch(f"/members/{root_admin}", json={"name": "x"}).status == 404
    assert admin_a.put(f"/members/{root_admin}/password", json={"password": "0123456789ab"}).status == 404
    # Within the branch it works.
    assert admin_a.post("/orgs", json={"name": "小组", "kind": "group", "parent_id": world["a"]["id"]}).status == 201


def test_mass_assignment_is_refused(api, world):
    member, organiser, admin_a = world["member_a"], world["organiser_a"], world["admin_a"]
    for body in ({"roles": [{"role": "admin", "org_id": world["a"]["id"]}]}, {"org_id": world["b"]["id"]},
                 {"active": False}, {"name": "自己"}):
        response = member.patch(f"/members/{member.id}", json=body)
        assert response.status in (403, 422), (body, response)
    assert member.put(f"/members/{member.id}/roles",
                      json={"roles": [{"role": "admin", "org_id": world["a"]["id"]}]}).status == 403
    assert organiser.patch(f"/members/{organiser.id}", json={"active": False}).status == 403
    assert organiser.patch(f"/members/{organiser.id}", json={"org_id": world["a"]["id"]}).status == 403
    assert admin_a.put(f"/members/{admin_a.id}/roles", json={"roles": []}).status == 403
    smuggled = organiser.post("/members", json={
        "name": "x", "phone": "13100000002", "org_id": world["a"]["id"], "gender": "male",
        "birth_date": "1990-01-01", "party_status": "full", "roles": [{"role": "admin", "org_id": world["a"]["id"]}]})
    assert smuggled.status == 422
    record = api.run(api.db.members.find_one({"_id": member.id}))
    assert record["roles"] == [] and record["active"] is True and record["org_id"] == world["a"]["id"]
