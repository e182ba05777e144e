"""Sign-in as a member (WeChat + invite), as staff (password), token refresh, logout and /me: a bind token
binds once, wrong passwords from one address do not lock the right one out, and a password change, reset or
deactivation ends the old sessions."""

from __future__ import annotations

import pytest

from server.bootstrap import ensure_admin
from tests.builders import member_record, sign_in
from tests.conftest import ADMIN_PASSWORD, ADMIN_PHONE

# Behind a proxy the client address comes from X-Real-Ip: `sign_in` plays callers at many addresses
# (the other tests send no such header, so their address is the socket's, as without a proxy).
pytestmark = pytest.mark.settings(trust_proxy=True)


def invite(api, member) -> str:
    return api.admin.ok("POST", f"/members/{member.id}/invite", 201)["invite_code"]


def test_first_wechat_login_binds_with_an_invite_then_signs_in_directly(api, fake_wechat):
    branch = api.org("第一支部")
    member = api.member(branch["id"], "张三")
    anon = api.anonymous()

    first = anon.ok("POST", "/auth/wechat", json={"code": "ok:openid-zhang"})
    assert first["status"] == "bind_required" and first["bind_token"] and first["expires_in"] > 0
    assert "session_key" not in str(first)
    call = fake_wechat["state"]["calls"][-1]
    assert call == {"appid": "wx-test-app", "secret": "wx-test-secret", "js_code": "ok:openid-zhang",
                    "grant_type": "authorization_code"}

    code = invite(api, member)
    bound = anon.ok("POST", "/auth/bind", json={"bind_token": first["bind_token"], "invite_code": code})
    assert bound["status"] == "ok" and bound["member"]["id"] == member.id
    assert bound["expires_in"] <= 900 and bound["refresh_token"]

    again = anon.ok("POST", "/auth/wechat", json={"code": "ok:openid-zhang"})
    assert again["status"] == "ok" and again["member"]["id"] == member.id
    assert "session_key" not in str(again)

    me = anon.get("/me", headers={"Authorization": f"Bearer {again['access_token']}"})
    assert me.status == 200 and me.json["name"] == "张三" and me.json["roles"] == []
    assert "phone" not in me.json and "*" in me.json["phone_masked"]


def test_invite_codes_are_single_use_and_expire(api):
    branch = api.org("支部")
    member = api.member(branch["id"])
    anon = api.anonymous()
    code = invite(api, member)
    token = anon.ok("POST", "/auth/wechat", json={"code": "ok:a1"})["bind_token"]
    assert anon.post("/auth/bind", json={"bind_token": token, "invite_code": code}).status == 200
    other = anon.ok("POST", "/auth/wechat", json={"code": "ok:a2"})["bind_token"]
    reused = anon.post("/auth/bind", json={"bind_token": other, "invite_code": code})
    assert reused.status == 422 and reused.code == "invite_code_invalid"

    late = invite(api, member)
    api.clock.advance(days=7, seconds=1)
    token = anon.ok("POST", "/auth/wechat", json={"code": "ok:a3"})["bind_token"]
    expired = anon.post("/auth/bind", json={"bind_token": token, "invite_code": late})
    assert expired.status == 422 and expired.code == "invite_code_invalid"


def test_bind_token_must_be_genuine(api):
    member = api.member(api.org("支部")["id"])
    code = invite(api, member)
    forged = api.anonymous().post("/auth/bind", json={"bind_token": "not-a-token", "invite_code": code})
    assert forged.status == 401 and forged.code == "unauthenticated"
    # An access token is not a bind token.
    wrong_kind = api.anonymous().post("/auth/bind", json={"bind_token": member.token, "invite_code": code})
    assert wrong_kind.status == 401


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


@pytest.mark.parametrize("code, status, error", [
    ("40029", 401, "wechat_code_invalid"),
    ("40163", 401, "wechat_code_invalid"),
    ("45011", 429, "rate_limited"),
    ("-1", 503, "wechat_unavailable"),
    ("slow", 503, "wechat_unavailable"),
    ("down", 503, "wechat_unavailable"),
])
def test_wechat_failures_map_to_the_contract(api, code, status, error):
    response = api.anonymous().post("/auth/wechat", json={"code": code})
    assert response.status == status and response.code == error, response
    if status in (429, 503):
        assert int(response.headers["Retry-After"]) > 0


def test_password_login_and_wrong_pairs(api):
    admin = api.admin  # signs in through POST /auth/password
    assert admin.member["roles"][0]["role"] == "admin"
    anon = api.anonymous()
    wrong = anon.post("/auth/password", json={"phone": "13800000000", "password": "not-the-password"})
    assert wrong.status == 401 and wrong.code == "invalid_credentials"
    nobody = anon.post("/auth/password", json={"phone": "13811112222", "password": "whatever-pass"})
    assert nobody.status == 401 and nobody.code == "invalid_credentials"
    # A member without a password cannot sign in with any password.
    member = api.member(api.org("支部")["id"])
    phone_less = anon.post("/auth/password", json={"phone": "13900000000", "password": "x" * 12})
    assert phone_less.status == 401
    # Setting one's own password enables staff sign-in.
    member.ok("PUT", f"/members/{member.id}/password", 204, json={"password": "my-own-password"})
    ok = anon.post("/auth/password", json={"phone": "13900000000", "password": "my-own-password"})
    assert ok.status == 200 and ok.json["member"]["id"] == member.id
    short = member.put(f"/members/{member.id}/password", json={"password": "short"})
    assert short.status == 422 and short.code == "invalid_request"


def test_password_guessing_is_rate_limited_per_phone(api):
    assert api.admin.member
    anon = api.anonymous()
    codes = [anon.post("/auth/password", json={"phone": "13800000000", "password": f"guess-{i:04d}"}).status
             for i in range(6)]
    assert codes[:5] == [401] * 5
    limited = anon.post("/auth/password", json={"phone": "13800000000", "password": "admin-password-123"})
    assert limited.status == 429 and limited.code == "rate_limited"
    assert 0 < int(limited.headers["Retry-After"]) <= 15 * 60
    api.clock.advance(minutes=16)
    assert anon.post("/auth/password", json={"phone": "13800000000", "password": "admin-password-123"}).status == 200


def test_refresh_rotates_and_reuse_revokes_the_family(api):
    assert api.admin.member
    anon = api.anonymous()
    login = anon.ok("POST", "/auth/password", json={"phone": "13800000000", "password": "admin-password-123"})
    first = login["refresh_token"]
    second = anon.ok("POST", "/auth/refresh", json={"refresh_token": first})
    assert second["refresh_token"] != first and second["access_token"]
    third = anon.ok("POST", "/auth/refresh", json={"refresh_token": second["refresh_token"]})

    reused = anon.post("/auth/refresh", json={"refresh_token": first})
    assert reused.status == 401 and reused.code == "refresh_token_reused"
    # The whole family is gone, including the newest token.
    after = anon.post("/auth/refresh", json={"refresh_token": third["refresh_token"]})
    assert after.status == 401
    # Another sign-in (another family) is untouched.
    other = anon.ok("POST", "/auth/password", json={"phone": "13800000000", "password": "admin-password-123"})
    assert anon.post("/auth/refresh", json={"refresh_token": other["refresh_token"]}).status == 200
    assert anon.post("/auth/refresh", json={"refresh_token": "made-up"}).code == "unauthenticated"


def test_logout_revokes_the_refresh_token(api):
    assert api.admin.member
    anon = api.anonymous()
    login = anon.ok("POST", "/auth/password", json={"phone": "13800000000", "password": "admin-password-123"})
    headers = {"Authorization": f"Bearer {login['access_token']}"}
    assert anon.post("/auth/logout", json={"refresh_token": login["refresh_token"]}, headers=headers).status == 204
    assert anon.post("/auth/logout", json={"refresh_token": login["refresh_token"]}, headers=headers).status == 204
    assert anon.post("/auth/refresh", json={"refresh_token": login["refresh_token"]}).status == 401


def test_access_tokens_expire_within_fifteen_minutes(api):
    member = api.member(api.org("支部")["id"])
    assert member.get("/me").status == 200
    api.clock.advance(minutes=15, seconds=1)
    expired = member.get("/me")
    assert expired.status == 401 and expired.code == "unauthenticated"


def test_deactivated_member_loses_access(api):
    organiser_branch = api.org("支部")
    member = api.member(organiser_branch["id"])
    api.admin.ok("PATCH", f"/members/{member.id}", json={"active": False})
    assert member.get("/me").status == 401


def test_changing_or_resetting_a_password_revokes_every_session(api):
    member = api.member(api.org("支部")["id"], "会计")
    phone = member_record(api, member.id)["phone"]
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
    phone = member_record(api, member.id)["phone"]
    member.ok("PUT", f"/members/{member.id}/password", 204, json={"password": "cashier-pass"})
    old = sign_in(api, phone, "cashier-pass").json["refresh_token"]
    api.admin.ok("PATCH", f"/members/{member.id}", json={"active": False})
    api.admin.ok("PATCH", f"/members/{member.id}", json={"active": True})
    assert api.anonymous().post("/auth/refresh", json={"refresh_token": old}).status == 401


def test_password_attempts_are_rate_limited_per_client_address(api):
    anon = api.anonymous()
    statuses = [anon.post("/auth/password", json={"phone": f"1351000{i:04d}", "password": "whatever-pass"}).status
                for i in range(101)]
    assert statuses[:100] == [401] * 100 and statuses[100] == 429
    api.run(ensure_admin(api.ctx, "13800000000", "admin-password-123", "管理员", "机关党委"))
    right = {"phone": "13800000000", "password": "admin-password-123"}
    limited = anon.post("/auth/password", json=right)
    assert limited.status == 429 and int(limited.headers["Retry-After"]) <= 600
    api.clock.advance(minutes=11)
    assert anon.post("/auth/password", json=right).status == 200


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
