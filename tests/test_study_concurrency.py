"""Concurrency: one attendance record per (session, member) however many check-ins race, and the
self-study daily cap under concurrent posts; check-ins racing a cancellation or a move of their session."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.builders import count, iso, new_session, parse, qr_token, study_world

# Run alone, after the parallel tests (README): it hundreds of requests at once, answered within the driver's bounds.
pytestmark = pytest.mark.solo


def _post(token: str, path: str, body: dict, key: str | None = None):
    headers = {"Authorization": f"Bearer {token}"}
    if key:
        headers["Idempotency-Key"] = key
    return lambda http: http.post(path, json=body, headers=headers)



def test_fifty_simultaneous_check_ins_by_one_member_make_one_record(api):
    w = study_world(api, members=1)
    member = w.members[0]
    sid = new_session(api, w.organiser, w.branch["id"], start_in=timedelta(minutes=10))["id"]
    token = qr_token(w.organiser, sid)
    body = {"session_id": sid, "qr_token": token}
    responses = api.concurrently([_post(member.token, "/study/checkins", body) for _ in range(50)])
    statuses = sorted(r.status for r in responses)
    assert statuses == [200] * 49 + [201], statuses
    first = next(r.json for r in responses if r.status == 201)
    assert all(r.json["result"] == "already_checked_in" and r.json["checked_in_at"] == first["checked_in_at"]
               for r in responses if r.status == 200)
    assert count(api, "study_attendance", {"session_id": sid}) == 1
    assert count(api, "study_checkin_events", {"session_id": sid, "source": "member"}) == 50


def test_two_hundred_members_checking_in_at_once_get_one_record_each(api):
    w = study_world(api, members=0)
    crowd = api.many_members(w.branch["id"], 200)
    sid = new_session(api, w.organiser, w.branch["id"], start_in=timedelta(minutes=10))["id"]
    token = qr_token(w.organiser, sid)
    body = {"session_id": sid, "qr_token": token}
    responses = api.concurrently([_post(m.token, "/study/checkins", body) for m in crowd])
    assert [r.status for r in responses] == [201] * 200, {r.status for r in responses}
    assert count(api, "study_attendance", {"session_id": sid}) == 200
    members_with_records = api.run(api.db["study_attendance"].distinct("member_id", {"session_id": sid}))
    assert sorted(members_with_records) == sorted(m.id for m in crowd)
    roster = w.organiser.ok("GET", f"/study/sessions/{sid}/attendance")
    assert roster["counts"] == {"present": 200, "late": 0, "leave": 0, "absent": 1}  # the organiser


def test_daily_cap_holds_under_concurrent_posts(api):
    w = study_world(api, members=1)
    member = w.members[0]
    today = api.clock.now().astimezone(api.ctx.settings.tz).date().isoformat()
    body = {"track": "self_study", "minutes": 60, "material": "《习近平谈治国理政》第四卷", "date": today}
    responses = api.concurrently([_post(member.token, "/study/self-study", body) for _ in range(10)])
    statuses = sorted(r.status for r in responses)
    assert statuses == [201] * 4 + [422] * 6, statuses
    assert all(r.code == "daily_cap_exceeded" for r in responses if r.status == 422)
    total = api.run(api.db["study_self_study"].aggregate([{"$match": {"member_id": member.id}},
                                                         {"$group": {"_id": None, "m": {"$sum": "$minutes"}}}]))
    assert api.run(total.to_list())[0]["m"] == 240


def _a_crowd_about_to_check_in(api):
    """120 members of a branch whose session starts in ten minutes, and a check-in call for each of them."""
    w = study_world(api, members=0)
    crowd = api.many_members(w.branch["id"], 120, gender="male")
    session = new_session(api, w.organiser, w.branch["id"], start_in=timedelta(minutes=10))
    token = qr_token(w.organiser, session["id"])
    calls = [lambda http, m=m: http.post("/study/checkins", json={"session_id": session["id"], "qr_token": token},
                                         headers={"Authorization": f"Bearer {m.token}"}) for m in crowd]
    return w, session, calls


def test_check_ins_racing_a_cancellation_never_count(api):
    w, session, calls = _a_crowd_about_to_check_in(api)
    sid = session["id"]

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
    w, session, calls = _a_crowd_about_to_check_in(api)
    sid = session["id"]
    later = parse(session["starts_at"]) + timedelta(minutes=20)

    def move(http):
        return http.patch(f"/study/sessions/{sid}", json={"starts_at": iso(later),
                                                          "ends_at": iso(later + timedelta(hours=2))},
                          headers={"Authorization": f"Bearer {w.organiser.token}"})

    responses = api.concurrently(calls[:60] + [move] + calls[60:])
    assert responses[60].status == 200
    records = api.run(api.db["study_attendance"].find({"session_id": sid}).to_list())
    assert records and all(r["starts_at"] == parse(iso(later)) and r["minutes"] == 120 for r in records)
