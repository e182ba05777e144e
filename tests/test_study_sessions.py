"""Study sessions through HTTP as a member, an organiser and an outsider: schemes, the life of a session,
every check-in refusal, the roster, manual marks, leave and make-up requests, exports; a failed scheme change
leaves the scheme as it was (a real database failure, provoked with a unique index); created records answer
what later reads return; every study list is bounded and scoped."""

from __future__ import annotations

import io
from datetime import timedelta

from openpyxl import load_workbook

from tests.builders import (
    break_audit,
    checkin,
    count,
    iso,
    mend_audit,
    move_to,
    new_session,
    parse,
    qr_token,
    remember,
    study_world,
)

# -- scheme -----------------------------------------------------------------------------------------

def test_default_scheme_is_inherited_and_overridable_by_an_admin(api):
    w = study_world(api, members=1)
    group = api.org("第一党小组", "group", w.branch["id"])
    member = w.members[0]
    scheme = member.ok("GET", f"/orgs/{w.branch['id']}/study-scheme")
    assert scheme["name"] == "四个五" and scheme["is_default"] and scheme["inherited_from"] is None
    assert len(scheme["tracks"]) == 4
    assert {t["kind"] for t in scheme["tracks"]} == {"session", "self_study"}
    assert {t["period"] for t in scheme["tracks"]} == {"month", "quarter", "year"}

    custom = {"name": "本支部方案", "tracks": [
        {"key": "group_meeting", "name": "党小组会", "kind": "session", "period": "month", "min_count": 2,
         "min_minutes": 0},
        {"key": "reading", "name": "读书", "kind": "self_study", "period": "quarter", "min_count": 1,
         "min_minutes": 60}]}
    assert w.organiser.put(f"/orgs/{w.branch['id']}/study-scheme", json=custom).code == "forbidden"
    assert w.outsider.get(f"/orgs/{w.branch['id']}/study-scheme").code == "not_found"
    dup = {**custom, "tracks": custom["tracks"] + [custom["tracks"][0]]}
    assert api.admin.put(f"/orgs/{w.branch['id']}/study-scheme", json=dup).code == "invalid_request"
    bad = {**custom, "tracks": [{**custom["tracks"][0], "period": "week"}]}
    assert api.admin.put(f"/orgs/{w.branch['id']}/study-scheme", json=bad).code == "invalid_request"

    branch_admin = api.org_admin(w.branch["id"])
    put = branch_admin.ok("PUT", f"/orgs/{w.branch['id']}/study-scheme", json=custom)
    assert put["name"] == "本支部方案" and put["inherited_from"] == w.branch["id"]
    below = member.ok("GET", f"/orgs/{group['id']}/study-scheme")
    assert below["name"] == "本支部方案" and below["inherited_from"] == w.branch["id"] and not below["is_default"]
    # The sibling branch keeps the default; the change is audited.
    assert w.outsider.ok("GET", f"/orgs/{w.other_branch['id']}/study-scheme")["name"] == "四个五"
    assert count(api, "audit_log", {"action": "study.scheme.put", "target_id": w.branch["id"]}) == 1
    # Sessions must use a session track of the scheme in force.
    starts = api.clock.now() + timedelta(days=1)
    refused = w.organiser.post("/study/sessions", json={
        "org_id": w.branch["id"], "track": "party_lecture", "title": "党课", "starts_at": iso(starts),
        "ends_at": iso(starts + timedelta(hours=1))})
    assert refused.status == 422 and refused.json["errors"][0]["field"] == "track"
    branch_admin.ok("DELETE", f"/orgs/{w.branch['id']}/study-scheme", 204)
    assert member.ok("GET", f"/orgs/{group['id']}/study-scheme")["is_default"]


def test_a_failed_scheme_change_leaves_the_scheme_as_it_was(api):
    w = study_world(api, members=1)
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


# -- the life of a session --------------------------------------------------------------------------

def test_whole_life_of_a_session(api):
    w = study_world(api, members=3)
    first, second, third = w.members
    session = new_session(api, w.organiser, w.branch["id"], agenda="学习党章")
    sid = session["id"]
    starts, ends = parse(session["starts_at"]), parse(session["ends_at"])
    # Defaults: opens 30 min before the start, closes at the end, late after the start.
    assert parse(session["checkin_opens_at"]) == starts - timedelta(minutes=30)
    assert parse(session["checkin_closes_at"]) == ends
    assert parse(session["late_after"]) == starts
    assert session["status"] == "scheduled" and not session["attendees_fixed"]
    assert session["attendee_count"] == 4 and session["starts_at"].endswith("Z")
    assert "qr_secret" not in session and "qr_secret" not in str(session)

    # Scope: the other branch does not see it at all; a member sees it but cannot run it.
    assert w.outsider.get(f"/study/sessions/{sid}").code == "session_not_found"
    assert w.outsider_organiser.get(f"/study/sessions/{sid}/attendance").code == "session_not_found"
    assert sid not in [s["id"] for s in w.outsider.ok("GET", "/study/sessions")["items"]]
    mine = first.ok("GET", "/study/sessions")["items"]
    assert [s["id"] for s in mine] == [sid] and mine[0]["attendees"] is None
    assert first.get(f"/study/sessions/{sid}/qr").code == "forbidden"
    assert first.get(f"/study/sessions/{sid}/attendance").code == "forbidden"
    assert first.patch(f"/study/sessions/{sid}", json={"title": "x"}).code == "forbidden"
    assert first.put(f"/study/sessions/{sid}/attendance/{second.id}",
                     json={"status": "present", "reason": "x"}).code == "forbidden"
    assert w.outsider.post("/study/checkins", json={"session_id": sid, "qr_token": "1.x"}).code == "session_not_found"
    assert w.organiser.ok("GET", f"/study/sessions?org_id={w.branch['id']}")["items"][0]["attendees"]

    # Before the window: not open yet; the organiser may still edit the title.
    token = qr_token(w.organiser, sid)
    early = checkin(first, sid, token)
    assert early.status == 409 and early.code == "checkin_not_open"
    renamed = w.organiser.ok("PATCH", f"/study/sessions/{sid}", json={"title": "十一月党小组会"})
    assert renamed["title"] == "十一月党小组会"

    # The window opens; a member who joins afterwards is not an attendee and never counted absent.
    move_to(api, starts - timedelta(minutes=20))
    newcomer = api.member(w.branch["id"], "新党员")
    remember(api, newcomer)
    token = qr_token(w.organiser, sid)
    refused = checkin(newcomer, sid, token)
    assert refused.status == 403 and refused.code == "not_an_attendee"
    ok = checkin(first, sid, token, device_id="phone-1")
    assert ok.status == 201 and ok.json["result"] == "ok" and ok.json["status"] == "present"
    again = checkin(first, sid, qr_token(w.organiser, sid))
    assert again.status == 200 and again.json["result"] == "already_checked_in"
    assert again.json["checked_in_at"] == ok.json["checked_in_at"] and again.json["status"] == "present"
    fixed = w.organiser.ok("GET", f"/study/sessions/{sid}")
    assert fixed["attendees_fixed"] and newcomer.id not in fixed["attendees"] and fixed["attendee_count"] == 4
    changed = w.organiser.patch(f"/study/sessions/{sid}", json={"attendees": [first.id]})
    assert changed.status == 409 and changed.code == "attendees_fixed"

    # After the start: late.
    move_to(api, starts + timedelta(minutes=5))
    late = checkin(second, sid, qr_token(w.organiser, sid))
    assert late.status == 201 and late.json["status"] == "late"
    assert first.ok("GET", f"/study/sessions/{sid}")["my_attendance"]["status"] == "present"
    assert third.ok("GET", f"/study/sessions/{sid}")["my_attendance"] is None

    # The organiser's roster and a manual mark with a reason (audited, logged as an event).
    mark = w.organiser.ok("PUT", f"/study/sessions/{sid}/attendance/{third.id}",
                          json={"status": "leave", "reason": "出差，已电话请假"})
    assert mark["status"] == "leave" and mark["source"] == "organiser"
    assert w.organiser.put(f"/study/sessions/{sid}/attendance/{w.outsider.id}",
                           json={"status": "present", "reason": "x"}).code == "not_found"
    assert w.organiser.put(f"/study/sessions/{sid}/attendance/{third.id}",
                           json={"status": "present"}).code == "invalid_request"
    roster = w.organiser.ok("GET", f"/study/sessions/{sid}/attendance")
    assert roster["counts"] == {"present": 1, "late": 1, "leave": 1, "absent": 1}
    assert [e["member_id"] for e in roster["absent"]] == [w.organiser.id]
    assert roster["leave"][0]["reason"] == "出差，已电话请假" and roster["present"][0]["name"] == "党员0"
    assert count(api, "audit_log", {"action": "study.attendance.mark"}) == 1
    assert count(api, "study_checkin_events", {"source": "organiser", "method": "manual"}) == 1
    # Every attempt, refused or accepted, is an event with its source and method.
    assert count(api, "study_checkin_events", {"session_id": sid, "source": "member"}) == 6
    assert count(api, "study_checkin_events", {"result": "not_an_attendee"}) == 1

    # After the window: closed; a member with no record reads "absent".
    move_to(api, parse(session["ends_at"]) + timedelta(minutes=1))
    closed = checkin(w.organiser, sid, qr_token(w.organiser, sid))
    assert closed.status == 409 and closed.code == "checkin_closed"
    assert w.organiser.ok("GET", f"/study/sessions/{sid}")["my_attendance"]["status"] == "absent"
    assert newcomer.ok("GET", f"/study/sessions/{sid}")["my_attendance"] is None
    # A late retry of a successful check-in still answers with the first record.
    assert checkin(first, sid, token).json["result"] == "already_checked_in"

    # Cancel: audited; check-ins and edits answer session_cancelled.
    cancelled = w.organiser.ok("POST", f"/study/sessions/{sid}/cancel", json={"reason": "改期"})
    assert cancelled["status"] == "cancelled" and cancelled["cancel_reason"] == "改期"
    assert checkin(third, sid, token).code == "session_cancelled"
    assert w.organiser.post(f"/study/sessions/{sid}/cancel", json={"reason": "again"}).code == "session_cancelled"
    assert w.organiser.patch(f"/study/sessions/{sid}", json={"title": "y"}).code == "session_cancelled"
    assert count(api, "audit_log", {"action": "study.session.cancel", "target_id": sid}) == 1


def test_session_validation_and_window_overrides(api):
    w = study_world(api, members=1)
    starts = api.clock.now() + timedelta(hours=2)
    base = {"org_id": w.branch["id"], "track": "group_meeting", "title": "会", "starts_at": iso(starts),
            "ends_at": iso(starts + timedelta(hours=1))}
    post = w.organiser.post
    assert post("/study/sessions", json={**base, "ends_at": iso(starts)}).code == "invalid_request"
    assert post("/study/sessions", json={**base, "methods": ["qr", "geo"]}).json["errors"][0]["field"] == "location"
    assert post("/study/sessions", json={**base, "methods": ["geo"]}).code == "invalid_request"
    assert post("/study/sessions", json={**base, "starts_at": "2026-11-01T10:00:00"}).code == "invalid_request"
    assert post("/study/sessions", json={**base, "surprise": 1}).code == "invalid_request"
    assert post("/study/sessions", json={**base, "title": "x" * 201}).code == "invalid_request"
    assert post("/study/sessions", json={**base, "attendees": [w.outsider.id]}).code == "invalid_request"
    assert w.members[0].post("/study/sessions", json=base).code == "forbidden"
    assert w.outsider_organiser.post("/study/sessions", json=base).code == "not_found"
    custom = w.organiser.ok("POST", "/study/sessions", 201, json={
        **base, "checkin_opens_at": iso(starts - timedelta(hours=1)), "late_after": iso(starts + timedelta(minutes=10)),
        "checkin_closes_at": iso(starts + timedelta(minutes=30)), "attendees": [w.members[0].id]})
    assert parse(custom["late_after"]) == parse(custom["starts_at"]) + timedelta(minutes=10)
    assert custom["attendee_count"] == 1
    assert w.organiser.ok("GET", f"/study/sessions/{custom['id']}")["attendees"] == [w.members[0].id]
    # The explicit list decides who may check in.
    move_to(api, starts - timedelta(minutes=50))
    token = qr_token(w.organiser, custom["id"])
    assert checkin(w.organiser, custom["id"], token).code == "not_an_attendee"
    assert checkin(w.members[0], custom["id"], token).status == 201
    # Listing by time range.
    listed = w.organiser.ok("GET", "/study/sessions", params={"from": iso(starts - timedelta(minutes=1)),
                                                                 "to": iso(starts + timedelta(minutes=1))})
    assert [s["id"] for s in listed["items"]] == [custom["id"]]
    assert w.organiser.get("/study/sessions?from=yesterday").code == "invalid_request"


def test_geofence_rules(api):
    w = study_world(api, members=2)
    here = {"name": "党员活动室", "lat": 39.9087, "lng": 116.3975, "radius_m": 100}
    session = new_session(api, w.organiser, w.branch["id"], start_in=timedelta(minutes=10),
                          methods=["qr", "geo"], location=here)
    sid = session["id"]
    token = qr_token(w.organiser, sid)
    first, second = w.members
    missing = checkin(first, sid, token)
    assert missing.status == 422 and missing.code == "location_required"
    # ~0.0027° of latitude ≈ 300 m north: outside a 100 m fence with a 50 m fix; a 250 m fix is too vague
    # to tell (its accuracy no longer widens the fence).
    far = {"lat": 39.9114, "lng": 116.3975, "accuracy": 50}
    outside = checkin(first, sid, token, location=far)
    assert outside.status == 422 and outside.code == "outside_geofence"
    vague = checkin(first, sid, token, location={**far, "accuracy": 250})
    assert vague.status == 422 and vague.code == "location_inaccurate"
    inside = checkin(second, sid, token, location={"lat": 39.9088, "lng": 116.3976, "accuracy": 10})
    assert inside.status == 201
    # The location is kept on the check-in record, because the session asked for one, and only there:
    # the events note that a location came, refused attempts included, but not where.
    record = api.run(api.db["study_attendance"].find_one({"session_id": sid, "member_id": second.id}))
    assert record["location"]["lat"] == 39.9088 and record["method"] == "qr+geo"
    assert count(api, "study_checkin_events", {"session_id": sid, "location": {"$exists": True}}) == 0
    assert count(api, "study_checkin_events", {"session_id": sid, "with_location": True}) == 3
    refused = api.run(api.db["study_checkin_events"].find_one({"result": "outside_geofence"}))
    assert "39.911" not in str(refused) and refused["with_location"] is True
    # A QR-only session never stores a location, even when the phone sends one.
    plain = new_session(api, w.organiser, w.branch["id"], start_in=timedelta(minutes=10))
    assert checkin(first, plain["id"], qr_token(w.organiser, plain["id"]), location=far).status == 201
    kept = api.run(api.db["study_attendance"].find_one({"session_id": plain["id"]}))
    assert "location" not in kept
    assert count(api, "study_checkin_events", {"session_id": plain["id"], "location": {"$exists": True}}) == 0


def test_a_fix_less_precise_than_the_fence_proves_nothing(api):
    w = study_world(api, members=3)
    vague, near, far = w.members
    here = {"name": "党员活动室", "lat": 39.9087, "lng": 116.3975, "radius_m": 100}
    sid = new_session(api, w.organiser, w.branch["id"], start_in=timedelta(minutes=10),
                      methods=["qr", "geo"], location=here)["id"]
    token = qr_token(w.organiser, sid)
    four_km_north = 39.9087 + 4000 / 111_195
    refused = checkin(vague, sid, token, location={"lat": four_km_north, "lng": 116.3975, "accuracy": 5000})
    assert refused.status == 422 and refused.code == "location_inaccurate", refused
    # A precise fix decides: inside the fence passes, outside it does not.
    outside = checkin(far, sid, token, location={"lat": 39.9087 + 150 / 111_195, "lng": 116.3975, "accuracy": 20})
    assert outside.status == 422 and outside.code == "outside_geofence", outside
    assert checkin(near, sid, token, location={"lat": 39.9088, "lng": 116.3976, "accuracy": 30}).status == 201
    assert api.run(api.db["study_attendance"].count_documents({"session_id": sid})) == 1
    spec = api.anonymous().ok("GET", "/openapi.json")
    assert "location_inaccurate" in spec["paths"]["/api/v1/study/checkins"]["post"]["responses"]["422"][
        "description"]


def test_idempotency_key_replays_a_check_in(api):
    w = study_world(api, members=1)
    session = new_session(api, w.organiser, w.branch["id"], start_in=timedelta(minutes=10))
    body = {"session_id": session["id"], "qr_token": qr_token(w.organiser, session["id"])}
    member = w.members[0]
    first = member.post("/study/checkins", json=body, headers={"Idempotency-Key": "scan-1"})
    replay = member.post("/study/checkins", json=body, headers={"Idempotency-Key": "scan-1"})
    assert first.status == replay.status == 201 and replay.json == first.json
    assert replay.headers.get("Idempotent-Replayed") == "true"
    other = member.post("/study/checkins", json={**body, "device_id": "x"}, headers={"Idempotency-Key": "scan-1"})
    assert other.code == "idempotency_key_reused"


# -- leave and make-up requests ---------------------------------------------------------------------

def test_leave_and_makeup_requests_change_attendance(api):
    w = study_world(api, members=3)
    first, second, third = w.members
    session = new_session(api, w.organiser, w.branch["id"], start_in=timedelta(hours=2))
    sid = session["id"]
    leave = first.ok("POST", "/study/requests", 201, json={"session_id": sid, "kind": "leave", "reason": "出差"})
    assert leave["status"] == "pending"
    assert first.post("/study/requests", json={"session_id": sid, "kind": "leave", "reason": "again"}).code \
        == "request_pending"
    assert w.outsider.post("/study/requests", json={"session_id": sid, "kind": "leave", "reason": "x"}).code \
        == "session_not_found"
    assert second.post(f"/study/requests/{leave['id']}/approve", json={}).code == "request_not_found"
    assert first.post(f"/study/requests/{leave['id']}/approve", json={}).code == "forbidden"
    assert w.outsider_organiser.post(f"/study/requests/{leave['id']}/approve", json={}).code == "request_not_found"
    pending = w.organiser.ok("GET", f"/study/requests?session_id={sid}&status=pending")["items"]
    assert [r["id"] for r in pending] == [leave["id"]]
    assert [r["id"] for r in second.ok("GET", "/study/requests")["items"]] == []
    # the console's queue for one org: that org's subtree, which the caller must organise
    assert [r["id"] for r in w.organiser.ok("GET", f"/study/requests?org_id={w.branch['id']}")["items"]] \
        == [leave["id"]]
    assert w.outsider_organiser.ok("GET", "/study/requests")["items"] == []
    assert w.outsider_organiser.get(f"/study/requests?org_id={w.branch['id']}").status == 404
    assert first.get(f"/study/requests?org_id={w.branch['id']}").status in (403, 404)
    approved = w.organiser.ok("POST", f"/study/requests/{leave['id']}/approve", json={"note": "同意"})
    assert approved["status"] == "approved" and approved["note"] == "同意"
    assert w.organiser.post(f"/study/requests/{leave['id']}/reject", json={}).code == "request_not_pending"

    rejected = second.ok("POST", "/study/requests", 201, json={"session_id": sid, "kind": "leave", "reason": "私事"})
    assert w.organiser.ok("POST", f"/study/requests/{rejected['id']}/reject", json={"note": "请参会"})["status"] \
        == "rejected"

    # After the session, the absent member asks to make it up; approval turns the record into present.
    move_to(api, parse(session["ends_at"]) + timedelta(hours=1))
    makeup = third.ok("POST", "/study/requests", 201, json={"session_id": sid, "kind": "makeup",
                                                            "reason": "已补看录像并提交心得"})
    roster = w.organiser.ok("GET", f"/study/sessions/{sid}/attendance")
    assert roster["counts"] == {"present": 0, "late": 0, "leave": 1, "absent": 3}
    w.organiser.ok("POST", f"/study/requests/{makeup['id']}/approve")  # no body: the note is optional
    roster = w.organiser.ok("GET", f"/study/sessions/{sid}/attendance")
    assert roster["counts"] == {"present": 1, "late": 0, "leave": 1, "absent": 2}
    assert roster["present"][0]["member_id"] == third.id and roster["present"][0]["source"] == "request"
    assert roster["leave"][0]["member_id"] == first.id
    assert third.ok("GET", f"/study/sessions/{sid}")["my_attendance"]["status"] == "present"
    assert third.post("/study/requests", json={"session_id": sid, "kind": "makeup", "reason": "x"}).code \
        == "already_checked_in"
    assert count(api, "audit_log", {"action": "study.request.approved"}) == 2
    assert count(api, "audit_log", {"action": "study.request.rejected"}) == 1


def test_approving_a_leave_never_undoes_a_real_check_in(api):
    w = study_world(api, members=2)
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
    entry = api.run(api.db["audit_log"].find_one({"action": "study.request.approved",
                                                  "details.request_id": leave["id"]}))
    assert entry["target_id"] == first.id and entry["before"] == "present" and entry["after"] == "present"
    assert count(api, "study_checkin_events", {"session_id": sid, "source": "request"}) == 0


# -- exports ----------------------------------------------------------------------------------------

def test_export_csv_and_xlsx_with_chinese_headers(api):
    w = study_world(api, members=2)
    session = new_session(api, w.organiser, w.branch["id"], start_in=timedelta(minutes=10), title="=危险标题")
    sid = session["id"]
    checkin(w.members[0], sid, qr_token(w.organiser, sid))
    move_to(api, parse(session["ends_at"]))  # the export lists sessions held so far
    period = api.clock.now().astimezone(api.ctx.settings.tz).strftime("%Y-%m")
    base = f"/orgs/{w.branch['id']}/study/export?period={period}"
    csv = w.organiser.get(base)
    assert csv.status == 200 and csv.headers["Content-Type"].startswith("text/csv")
    text = csv.content.decode("utf-8-sig")
    assert text.splitlines()[0] == "姓名,所在组织,学习项目,要求次数,完成次数,要求分钟,完成分钟,是否达标"
    assert "党员0,第一支部,党小组会,1,1,0,60,是" in text
    attendance = w.organiser.get(base + "&table=attendance").content.decode("utf-8-sig")
    assert attendance.splitlines()[0].startswith("会议名称,学习项目,开始时间,姓名,所在组织,出勤状态")
    assert "'=危险标题" in attendance and "出席" in attendance and "缺席" in attendance
    xlsx = w.organiser.get(base + "&format=xlsx")
    assert xlsx.status == 200 and "filename*=UTF-8''" in xlsx.headers["Content-Disposition"]
    book = load_workbook(io.BytesIO(xlsx.content))
    assert book.sheetnames == ["达标情况", "出勤记录"]
    assert [c.value for c in next(book["出勤记录"].iter_rows(max_row=1))][:3] == ["会议名称", "学习项目", "开始时间"]
    assert w.members[0].get(base).code == "forbidden"
    assert w.outsider_organiser.get(base).code == "not_found"
    assert w.organiser.get(base + "&format=pdf").code == "invalid_request"


def test_moving_a_session_moves_its_default_window_and_a_real_check_in_supersedes_a_mark(api):
    w = study_world(api, members=2)
    first, second = w.members
    session = new_session(api, w.organiser, w.branch["id"], start_in=timedelta(hours=3))
    sid = session["id"]
    later = parse(session["starts_at"]) + timedelta(hours=1)
    moved = w.organiser.ok("PATCH", f"/study/sessions/{sid}", json={
        "starts_at": iso(later), "ends_at": iso(later + timedelta(hours=2))})
    assert parse(moved["checkin_opens_at"]) == later - timedelta(minutes=30)
    assert parse(moved["late_after"]) == later
    assert parse(moved["checkin_closes_at"]) == later + timedelta(hours=2)
    assert w.organiser.patch(f"/study/sessions/{sid}", json={"ends_at": iso(later)}).code == "invalid_request"
    assert w.organiser.patch(f"/study/sessions/{sid}", json={"methods": ["qr", "geo"]}).code == "invalid_request"
    narrowed = w.organiser.ok("PATCH", f"/study/sessions/{sid}", json={"attendees": [first.id, second.id]})
    assert narrowed["attendee_count"] == 2 and sorted(narrowed["attendees"]) == sorted([first.id, second.id])
    # Marked absent (or on leave) in advance, a member who turns up and scans is present after all.
    w.organiser.ok("PUT", f"/study/sessions/{sid}/attendance/{first.id}", json={"status": "absent", "reason": "未请假"})
    w.organiser.ok("PUT", f"/study/sessions/{sid}/attendance/{second.id}", json={"status": "leave", "reason": "请假"})
    move_to(api, later - timedelta(minutes=10))
    token = qr_token(w.organiser, sid)
    for member in (first, second):
        response = checkin(member, sid, token)
        assert response.status == 201 and response.json["status"] == "present" and response.json["source"] == "member"
    assert checkin(first, sid, token).json["result"] == "already_checked_in"
    roster = w.organiser.ok("GET", f"/study/sessions/{sid}/attendance")
    assert roster["counts"] == {"present": 2, "late": 0, "leave": 0, "absent": 0}
    assert count(api, "study_attendance", {"session_id": sid}) == 2


# -- contract shapes and scope --------------------------------------------------------------------

def test_created_records_answer_what_later_reads_return(api):
    w = study_world(api, members=1)
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
    w = study_world(api, members=1)
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
