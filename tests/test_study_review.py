"""Review of the study capability against API.md §5: contract shapes, scope, and failures that must leave
the database as it was (a real database failure is provoked with a unique index, not by mocking our code)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pymongo import ASCENDING

from tests.test_study_support import checkin, count, iso, move_to, new_session, parse, qr_token, world


@pytest.fixture
def settings_overrides(tmp_path):
    return {"data_dir": tmp_path}


def break_audit(api, action: str) -> None:
    """Make the next audit entry with `action` fail in the database (a unique index it collides with)."""
    async def go():
        audit = api.db["audit_log"]
        await audit.delete_many({"action": action})
        await audit.insert_one({"_id": f"blocker-{action}", "action": action})
        await audit.create_index([("action", ASCENDING)], unique=True, name="break_audit",
                                 partialFilterExpression={"action": action})
    api.run(go())


def mend_audit(api) -> None:
    async def go():
        await api.db["audit_log"].drop_index("break_audit")
        await api.db["audit_log"].delete_many({"_id": {"$regex": "^blocker-"}})
    api.run(go())


# -- leave and make-up decisions ------------------------------------------------------------------

def test_approving_a_leave_never_undoes_a_real_check_in(api):
    w = world(api, members=2)
    first, second = w.members
    session = new_session(api, w.organiser, w.branch["id"], start_in=timedelta(hours=2))
    sid = session["id"]
    leave = first.ok("POST", "/study/requests", 201, json={"session_id": sid, "kind": "leave", "reason": "可能出差"})
    assert set(leave) >= {"id", "status"} and leave["status"] == "pending"
    makeup = second.ok("POST", "/study/requests", 201, json={"session_id": sid, "kind": "makeup", "reason": "x"})
    # Plans changed: both came and scanned (the second one late); the requests are decided afterwards.
    move_to(api, parse(session["starts_at"]) - timedelta(minutes=5))
    assert checkin(first, sid, qr_token(w.organiser, sid)).json["status"] == "present"
    move_to(api, parse(session["starts_at"]) + timedelta(minutes=5))
    assert checkin(second, sid, qr_token(w.organiser, sid)).json["status"] == "late"
    approved = w.organiser.ok("POST", f"/study/requests/{leave['id']}/approve", json={"note": "同意"})
    assert approved["status"] == "approved"
    w.organiser.ok("POST", f"/study/requests/{makeup['id']}/approve")
    roster = w.organiser.ok("GET", f"/study/sessions/{sid}/attendance")
    assert [e["member_id"] for e in roster["present"]] == [first.id]
    assert [e["member_id"] for e in roster["late"]] == [second.id]
    assert roster["present"][0]["source"] == "member" and roster["present"][0]["checked_in_at"]
    assert first.ok("GET", f"/study/sessions/{sid}")["my_attendance"]["status"] == "present"
    # The decision is still audited, and says the record was kept.
    entry = api.run(api.db["audit_log"].find_one({"action": "study.request.approved", "target_id": leave["id"]}))
    assert entry["changes"]["before"] == "present" and entry["changes"]["after"] == "present"
    assert count(api, "study_checkin_events", {"session_id": sid, "source": "request"}) == 0


# -- warnings -------------------------------------------------------------------------------------

def test_a_scan_of_a_period_that_has_not_begun_is_refused(api):
    move_to(api, datetime(2026, 3, 10, 4, tzinfo=UTC))
    w = world(api, members=1)
    branch = w.branch["id"]
    for period in ("2026-04", "2026-Q2", "2027"):
        refused = api.admin.post(f"/orgs/{branch}/warnings/scan?period={period}")
        assert refused.status == 422 and refused.code == "invalid_request", period
        assert refused.json["errors"][0]["field"] == "period"
    assert count(api, "study_warnings", {}) == 0
    # The running period and past ones may be scanned.
    assert api.admin.ok("POST", f"/orgs/{branch}/warnings/scan?period=2026-03")["created"] > 0
    assert api.admin.ok("POST", f"/orgs/{branch}/warnings/scan?period=2026-02")["created"] > 0


def test_a_failed_scan_creates_no_warning_without_its_audit_entry(api):
    move_to(api, datetime(2026, 3, 10, 4, tzinfo=UTC))
    w = world(api, members=3)
    branch = w.branch["id"]
    break_audit(api, "study.warning.create")
    failed = api.admin.post(f"/orgs/{branch}/warnings/scan?period=2026-02")
    assert failed.status == 500
    assert count(api, "study_warnings", {}) == 0  # nothing half-written
    mend_audit(api)
    scan = api.admin.ok("POST", f"/orgs/{branch}/warnings/scan?period=2026-02")
    assert scan["created"] > 0
    assert count(api, "study_warnings", {}) == scan["created"]
    assert count(api, "audit_log", {"action": "study.warning.create"}) == scan["created"]
    listed = w.organiser.ok("GET", f"/warnings?org_id={branch}&limit=100")
    assert listed["next_cursor"] is None and len(listed["items"]) == scan["created"]
    for item in listed["items"]:
        assert {"id", "org_id", "member_id", "period", "track", "reason", "status"} <= set(item)
        assert item["status"] == "open" and item["period"] == "2026-02"
    assert api.admin.ok("POST", f"/orgs/{branch}/warnings/scan?period=2026-02")["created"] == 0


def test_concurrent_scans_create_each_warning_once(api):
    move_to(api, datetime(2026, 3, 10, 4, tzinfo=UTC))
    w = world(api, members=5)
    branch = w.branch["id"]
    headers = {"Authorization": f"Bearer {api.admin.token}"}
    results = api.concurrently([lambda http: http.post(f"/orgs/{branch}/warnings/scan?period=2026-02",
                                                       headers=headers) for _ in range(4)])
    assert all(r.status == 200 for r in results), [(r.status, r.json) for r in results]
    total = count(api, "study_warnings", {"period": "2026-02"})
    assert sum(r.json["created"] for r in results) == total > 0
    assert count(api, "audit_log", {"action": "study.warning.create"}) == total


# -- the scheme -----------------------------------------------------------------------------------

def test_a_failed_scheme_change_leaves_the_scheme_as_it_was(api):
    w = world(api, members=1)
    branch = w.branch["id"]
    custom = {"name": "本支部方案", "tracks": [
        {"key": "group_meeting", "name": "党小组会", "kind": "session", "period": "month", "min_count": 2,
         "min_minutes": 0}]}
    break_audit(api, "study.scheme.put")
    assert api.admin.put(f"/orgs/{branch}/study-scheme", json=custom).status == 500
    assert w.members[0].ok("GET", f"/orgs/{branch}/study-scheme")["is_default"]
    mend_audit(api)
    api.admin.ok("PUT", f"/orgs/{branch}/study-scheme", json=custom)
    break_audit(api, "study.scheme.delete")
    assert api.admin.delete(f"/orgs/{branch}/study-scheme").status == 500
    assert w.members[0].ok("GET", f"/orgs/{branch}/study-scheme")["name"] == "本支部方案"
    mend_audit(api)
    api.admin.ok("DELETE", f"/orgs/{branch}/study-scheme", 204)
    assert w.members[0].ok("GET", f"/orgs/{branch}/study-scheme")["is_default"]
    assert count(api, "audit_log", {"action": "study.scheme.delete", "target_id": branch}) == 1
    # Deleting again (nothing of its own) is quiet and audits nothing.
    api.admin.ok("DELETE", f"/orgs/{branch}/study-scheme", 204)
    assert count(api, "audit_log", {"action": "study.scheme.delete", "target_id": branch}) == 1
    assert w.organiser.delete(f"/orgs/{branch}/study-scheme").code == "forbidden"


# -- self-study -----------------------------------------------------------------------------------

def test_a_failed_self_study_entry_does_not_use_up_the_day(api):
    w = world(api, members=1)
    member = w.members[0]
    today = api.clock.now().astimezone(api.ctx.settings.tz).date().isoformat()

    async def block():
        coll = api.db["study_self_study"]
        await coll.insert_one({"_id": "blocker", "material": "坏材料", "member_id": "nobody", "date": "2000-01-01"})
        await coll.create_index([("material", ASCENDING)], unique=True, name="block",
                                partialFilterExpression={"material": "坏材料"})
    api.run(block())
    body = {"track": "self_study", "minutes": 240, "material": "坏材料", "date": today}
    assert member.post("/study/self-study", json=body).status == 500
    assert count(api, "study_self_study", {"member_id": member.id}) == 0
    made = member.ok("POST", "/study/self-study", 201, json={**body, "material": "《党章》"})
    assert made["minutes"] == 240 and made["day_total_minutes"] == 240


# -- contract shapes ------------------------------------------------------------------------------

def test_created_records_answer_what_later_reads_return(api):
    w = world(api, members=1)
    member = w.members[0]
    session = new_session(api, w.organiser, w.branch["id"], start_in=timedelta(hours=2))
    made = member.ok("POST", "/study/requests", 201, json={"session_id": session["id"], "kind": "leave",
                                                            "reason": "出差"})
    assert made["status"] == "pending" and made["created_at"].endswith("Z")
    assert member.ok("GET", "/study/requests")["items"] == [made]  # same time, to the millisecond
    today = api.clock.now().astimezone(api.ctx.settings.tz).date().isoformat()
    entry = member.ok("POST", "/study/self-study", 201, json={"track": "self_study", "minutes": 30,
                                                              "material": "《党章》", "date": today})
    assert member.ok("GET", "/study/self-study")["items"] == [entry]


def test_list_limits_and_scope_of_every_study_list(api):
    w = world(api, members=1)
    member = w.members[0]
    for path in ("/study/sessions", "/study/requests", "/study/self-study", "/warnings"):
        for limit in (0, 101, "x"):
            refused = w.organiser.get(f"{path}?limit={limit}")
            assert refused.status == 422 and refused.code == "invalid_request", (path, limit)
        assert set(w.organiser.ok("GET", f"{path}?limit=100")) == {"items", "next_cursor"}
    # Another branch's organiser sees none of this branch's sessions, requests or warnings.
    session = new_session(api, w.organiser, w.branch["id"], start_in=timedelta(hours=2))
    request = member.ok("POST", "/study/requests", 201, json={"session_id": session["id"], "kind": "leave",
                                                               "reason": "x"})
    outsider = w.outsider_organiser
    assert outsider.ok("GET", "/study/sessions")["items"] == []
    assert outsider.ok("GET", f"/study/requests?session_id={session['id']}")["items"] == []
    assert outsider.post(f"/study/requests/{request['id']}/reject", json={}).code == "request_not_found"
    assert outsider.get(f"/study/sessions?org_id={w.branch['id']}").code == "not_found"
    assert outsider.get(f"/warnings?org_id={w.branch['id']}").code == "not_found"
    assert outsider.post(f"/study/sessions/{session['id']}/cancel", json={"reason": "x"}).code \
        == "session_not_found"
    # A member: 403 on organiser actions for a session they can see; their own records only.
    assert member.post(f"/study/sessions/{session['id']}/cancel", json={"reason": "x"}).code == "forbidden"
    assert member.get(f"/orgs/{w.branch['id']}/study/compliance").code == "forbidden"
    assert member.get(f"/warnings?org_id={w.branch['id']}").code == "forbidden"
    assert member.post(f"/study/requests/{request['id']}/approve", json={"surprise": 1}).code \
        == "invalid_request"
    # Admin-only steps refuse an organiser.
    assert w.organiser.put(f"/orgs/{w.branch['id']}/study-scheme", json={"name": "x", "tracks": [
        {"key": "a", "name": "a", "kind": "session", "period": "month", "min_count": 1,
         "min_minutes": 0}]}).code == "forbidden"
    assert w.organiser.post(f"/orgs/{w.branch['id']}/warnings/scan?period=2026-01").code == "forbidden"


# -- a cancellation racing check-ins --------------------------------------------------------------

def test_check_ins_racing_a_cancellation_never_count(api):
    w = world(api, members=0)
    crowd = api.many_members(w.branch["id"], 120, gender="male")
    session = new_session(api, w.organiser, w.branch["id"], start_in=timedelta(minutes=10))
    sid = session["id"]
    token = qr_token(w.organiser, sid)
    calls = [lambda http, m=m: http.post("/study/checkins", json={"session_id": sid, "qr_token": token},
                                         headers={"Authorization": f"Bearer {m.token}"}) for m in crowd]
    def cancel(http):
        return http.post(f"/study/sessions/{sid}/cancel", json={"reason": "临时取消"},
                         headers={"Authorization": f"Bearer {w.organiser.token}"})

    responses = api.concurrently(calls[:60] + [cancel] + calls[60:])
    assert responses[60].status == 200
    assert {r.status for r in responses} <= {200, 201, 409}
    # Whatever got in before or during the cancellation is marked cancelled and counts for nobody.
    assert count(api, "study_attendance", {"session_id": sid, "cancelled": {"$ne": True}}) == 0
    period = parse(session["starts_at"]).astimezone(api.ctx.settings.tz).strftime("%Y-%m")
    report = w.organiser.ok("GET", f"/orgs/{w.branch['id']}/study/compliance?period={period}")
    assert all(t["done_count"] == 0 for m in report["members"] for t in m["tracks"] if t["key"] == "group_meeting")


def test_check_ins_racing_a_move_follow_the_session_to_its_new_time(api):
    w = world(api, members=0)
    crowd = api.many_members(w.branch["id"], 120, gender="male")
    session = new_session(api, w.organiser, w.branch["id"], start_in=timedelta(minutes=10))
    sid = session["id"]
    token = qr_token(w.organiser, sid)
    later = parse(session["starts_at"]) + timedelta(minutes=20)
    calls = [lambda http, m=m: http.post("/study/checkins", json={"session_id": sid, "qr_token": token},
                                         headers={"Authorization": f"Bearer {m.token}"}) for m in crowd]

    def move(http):
        return http.patch(f"/study/sessions/{sid}", json={"starts_at": iso(later),
                                                          "ends_at": iso(later + timedelta(hours=2))},
                          headers={"Authorization": f"Bearer {w.organiser.token}"})

    responses = api.concurrently(calls[:60] + [move] + calls[60:])
    assert responses[60].status == 200
    records = api.run(api.db["study_attendance"].find({"session_id": sid}).to_list())
    assert records and all(r["starts_at"] == parse(iso(later)) and r["minutes"] == 120 for r in records)
