"""Retention (API.md §11): check-in locations are dropped after the retention period while attendance and the
audit log stay; an admin anonymises a deactivated member and what branches report stays the same."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from server.config import Settings
from tests.builders import (
    FIX,
    HERE,
    activity_checkin,
    advance,
    break_audit,
    checkin,
    count,
    mend_audit,
    new_session,
    published,
    qr_token,
    study_world,
    wait_until,
)


def _sweeps(api) -> int:
    return api.ctx.state["retention"]["sweeps"]


def _after_two_sweeps(api) -> None:
    """Wait until the server's sweep has run twice more, so the last one saw the clock as it is now."""
    seen = _sweeps(api)
    deadline = time.monotonic() + 10
    while _sweeps(api) < seen + 2:
        assert time.monotonic() < deadline, "the retention sweep did not run"
        time.sleep(0.05)


def _record(api, session_id: str, member_id: str) -> dict:
    return api.run(api.db.study_attendance.find_one({"session_id": session_id, "member_id": member_id}))


@pytest.mark.settings(retention_sweep_seconds=0.1)
def test_a_check_in_location_is_dropped_after_90_days_and_the_attendance_stays(api):
    w = study_world(api, members=2)
    member, plain = w.members
    geo = new_session(api, w.organiser, w.branch["id"], start_in=timedelta(minutes=10), methods=["qr", "geo"],
                      location=HERE)["id"]
    assert checkin(member, geo, qr_token(w.organiser, geo), location=FIX).status == 201
    assert checkin(plain, geo, qr_token(w.organiser, geo), location=FIX).status == 201
    assert _record(api, geo, member.id)["location"]["lat"] == FIX["lat"]
    events = count(api, "study_checkin_events", {"session_id": geo})
    audit_entries = count(api, "audit_log", {})

    advance(api, days=89)
    _after_two_sweeps(api)
    assert _record(api, geo, member.id)["location"]["lat"] == FIX["lat"]  # still within the period

    advance(api, days=2)
    assert wait_until(lambda: "location" not in _record(api, geo, member.id))
    for person in (member, plain):
        record = _record(api, geo, person.id)
        assert "location" not in record and record["location_dropped_at"] is not None
        assert record["status"] == "present" and record["checked_in_at"] is not None  # attendance is kept
    assert count(api, "study_checkin_events", {"session_id": geo}) == events
    assert count(api, "audit_log", {}) == audit_entries
    roster = w.organiser.ok("GET", f"/study/sessions/{geo}/attendance")
    assert roster["counts"]["present"] == 2


@pytest.mark.settings(retention_sweep_seconds=0.1, location_retention_days=7)
def test_the_retention_period_is_configurable(api, monkeypatch):
    monkeypatch.setenv("BRANCHLINE_LOCATION_RETENTION_DAYS", "30")
    assert Settings.from_env().location_retention_days == 30
    assert Settings().location_retention_days == 90
    w = study_world(api, members=1)
    member = w.members[0]
    geo = new_session(api, w.organiser, w.branch["id"], start_in=timedelta(minutes=10), methods=["qr", "geo"],
                      location=HERE)["id"]
    assert checkin(member, geo, qr_token(w.organiser, geo), location=FIX).status == 201
    advance(api, days=6)
    _after_two_sweeps(api)
    assert "location" in _record(api, geo, member.id)
    advance(api, days=2)
    assert wait_until(lambda: "location" not in _record(api, geo, member.id))


def _numbers(api, w, period: str, sessions: list[str], activity: str) -> dict:
    """What the branch reports: compliance of the period, session attendance counts, the activity's counts."""
    compliance = w.organiser.ok("GET", f"/orgs/{w.branch['id']}/study/compliance?period={period}")
    return {"orgs": compliance["orgs"],
            "members": [(m["member_id"], m["complete"], m["tracks"]) for m in compliance["members"]],
            "sessions": [w.organiser.ok("GET", f"/study/sessions/{s}/attendance")["counts"] for s in sessions],
            "activity": {k: w.organiser.ok("GET", activity)[k] for k in ("confirmed_count", "waitlist_count")}}


def test_anonymising_a_member_who_left_keeps_what_branches_report(api):
    w = study_world(api, members=2)
    leaving, staying = w.members
    org = w.branch["id"]
    period = api.clock.now().astimezone().strftime("%Y-%m")
    # The leaving member's record: WeChat bound, sessions attended, an activity attended.
    code = api.admin.ok("POST", f"/members/{leaving.id}/invite", 201)["invite_code"]
    anon = api.anonymous()
    bind = anon.ok("POST", "/auth/wechat", json={"code": "ok:openid-leaving"})["bind_token"]
    signed_in = anon.ok("POST", "/auth/bind", json={"bind_token": bind, "invite_code": code})
    sessions = []
    for minutes in (5, 15):
        sid = new_session(api, w.organiser, org, start_in=timedelta(minutes=minutes))["id"]
        for person in (leaving, staying):
            assert checkin(person, sid, qr_token(w.organiser, sid)).status == 201
        sessions.append(sid)
    act = published(api, w.organiser, org)
    path = f"/activities/{act['id']}"
    for person in (leaving, staying):
        person.ok("POST", path + "/signups", 201)
    advance(api, w.organiser, leaving, staying, days=2, minutes=1)
    activity_checkin(w.organiser, leaving, path)
    api.admin.ok("PUT", f"/orgs/{org}/settings", json={"member_warnings": True})
    api.admin.ok("POST", f"/orgs/{org}/warnings/scan?period={period}")
    assert leaving.member["name"] in str(w.organiser.ok("GET", f"/warnings?org_id={org}&limit=100"))

    admin = api.org_admin(org, "支部管理员")
    refused = admin.post(f"/members/{leaving.id}/anonymise")
    assert refused.status == 409 and refused.code == "member_active"  # deactivate first
    w.organiser.ok("PATCH", f"/members/{leaving.id}", json={"active": False})
    before = _numbers(api, w, period, sessions, path)
    assert before["sessions"][0]["present"] == 2 and before["activity"]["confirmed_count"] == 2

    # Refusals: an organiser is not an admin; another branch's admin cannot see the member.
    assert w.organiser.post(f"/members/{leaving.id}/anonymise").code == "forbidden"
    outsider_admin = api.org_admin(w.other_branch["id"], "二支部管理员")
    assert outsider_admin.post(f"/members/{leaving.id}/anonymise").code == "not_found"

    assert admin.ok("GET", f"/members/{leaving.id}")["anonymised"] is False  # deactivated is not anonymised
    done = admin.ok("POST", f"/members/{leaving.id}/anonymise")
    assert done["name"] == "已注销成员" and done["phone_masked"] == "" and done["tags"] == []
    assert done["anonymised"] is True and done["active"] is False
    assert admin.ok("POST", f"/members/{leaving.id}/anonymise") == done  # once is enough; again changes nothing
    stored = api.run(api.db.members.find_one({"_id": leaving.id}))
    assert leaving.member["name"] not in str(stored) and leaving.member["phone_masked"][-4:] not in stored["phone"]
    assert count(api, "wechat_identities", {"member_id": leaving.id}) == 0
    # Their WeChat identity no longer signs in; their refresh token is revoked.
    assert anon.ok("POST", "/auth/wechat", json={"code": "ok:openid-leaving"})["status"] == "bind_required"
    assert anon.post("/auth/refresh", json={"refresh_token": signed_in["refresh_token"]}).status == 401
    # What the branch reports is unchanged, and the attendance records are all there.
    assert _numbers(api, w, period, sessions, path) == before
    assert count(api, "study_attendance", {"member_id": leaving.id}) == 2
    roster = w.organiser.ok("GET", f"/study/sessions/{sessions[0]}/attendance")
    assert leaving.member["name"] not in str(roster)
    warnings = w.organiser.ok("GET", f"/warnings?org_id={org}&limit=100")["items"]
    assert leaving.member["name"] not in str(warnings) and "已注销成员" in str(warnings)
    entry = admin.ok("GET", f"/audit?target_id={leaving.id}")["items"][0]
    assert entry["action"] == "member.anonymise" and entry["actor_id"] == admin.id


def test_a_failed_anonymisation_changes_nothing(api):
    w = study_world(api, members=1)
    member = w.members[0]
    w.organiser.ok("PATCH", f"/members/{member.id}", json={"active": False})
    before = api.run(api.db.members.find_one({"_id": member.id}))
    break_audit(api, "member.anonymise")
    assert api.admin.post(f"/members/{member.id}/anonymise").status == 500
    assert api.run(api.db.members.find_one({"_id": member.id})) == before
    mend_audit(api)
    assert api.admin.ok("POST", f"/members/{member.id}/anonymise")["name"] == "已注销成员"
