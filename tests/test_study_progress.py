"""Self-study, progress per member and compliance per org for month, quarter and year (boundaries in the
org time zone), and warnings: created once per period, rectified, closed, audited. A self-study entry or a
scan that fails in the database (provoked with a unique index, not by mocking our code) writes nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pymongo import ASCENDING

from tests.builders import break_audit, count, iso, mend_audit, move_to, remember, study_world

UTC = UTC


def _session(api, organiser, org_id, starts: datetime, track: str, title: str = "会") -> str:
    body = {"org_id": org_id, "track": track, "title": title, "starts_at": iso(starts),
            "ends_at": iso(starts + timedelta(hours=1))}
    return organiser.ok("POST", "/study/sessions", 201, json=body)["id"]


def _mark(organiser, sid: str, member_id: str, status: str = "present") -> None:
    organiser.ok("PUT", f"/study/sessions/{sid}/attendance/{member_id}", json={"status": status, "reason": "补录"})


def _study(member, day: str, minutes: int = 60):
    return member.post("/study/self-study", json={"track": "self_study", "minutes": minutes,
                                                  "material": "党章", "date": day})


def _tracks(progress: dict) -> dict:
    return {t["key"]: t for t in progress["tracks"]}


@pytest.fixture
def year_2025(api):
    """A branch (with a group below it) living in November 2025, with attendance and self-study."""
    move_to(api, datetime(2025, 11, 20, 4, 0, tzinfo=UTC))  # 12:00 in Shanghai
    w = study_world(api, members=2)
    first, second = w.members
    group = api.org("第一党小组", "group", w.branch["id"])
    third = api.member(group["id"], "小组党员")
    remember(api, third)
    org = w.branch["id"]
    november = _session(api, w.organiser, org, datetime(2025, 11, 10, 6, tzinfo=UTC), "group_meeting")
    _mark(w.organiser, november, first.id)
    _mark(w.organiser, november, second.id, "late")
    # 2025-10-31T17:00Z is 1 November 01:00 in Shanghai: November. 15:00Z is still 31 October there.
    first_of_month = _session(api, w.organiser, org, datetime(2025, 10, 31, 17, tzinfo=UTC), "group_meeting")
    _mark(w.organiser, first_of_month, first.id)
    october = _session(api, w.organiser, org, datetime(2025, 10, 31, 15, tzinfo=UTC), "group_meeting")
    _mark(w.organiser, october, first.id)
    assembly = _session(api, w.organiser, org, datetime(2025, 11, 5, 6, tzinfo=UTC), "branch_assembly")
    _mark(w.organiser, assembly, first.id)
    _mark(w.organiser, assembly, second.id, "leave")
    for month in (3, 6, 9, 11):
        lecture = _session(api, w.organiser, org, datetime(2025, month, 2, 6, tzinfo=UTC), "party_lecture")
        _mark(w.organiser, lecture, first.id)
    cancelled = _session(api, w.organiser, org, datetime(2025, 11, 12, 6, tzinfo=UTC), "group_meeting")
    _mark(w.organiser, cancelled, second.id)
    w.organiser.ok("POST", f"/study/sessions/{cancelled}/cancel", json={"reason": "改期"})
    for day in range(15, 20):
        assert _study(first, f"2025-11-{day}").status == 201
    assert _study(second, "2025-11-18").status == 201
    return w, group, third


def test_self_study_rules(api):
    w = study_world(api, members=1)
    member = w.members[0]
    today = api.clock.now().astimezone(api.ctx.settings.tz).date()
    made = member.ok("POST", "/study/self-study", 201, json={"track": "self_study", "minutes": 200,
                                                             "material": "《党章》", "note": "第一章",
                                                             "date": today.isoformat()})
    assert made["day_total_minutes"] == 200 and made["date"] == today.isoformat()
    assert _study(member, today.isoformat(), 40).status == 201
    over = _study(member, today.isoformat(), 1)
    assert over.status == 422 and over.code == "daily_cap_exceeded"
    assert _study(member, (today - timedelta(days=1)).isoformat(), 240).status == 201  # another day
    assert _study(member, today.isoformat(), 241).code == "invalid_request"
    assert _study(member, today.isoformat(), 0).code == "invalid_request"
    assert _study(member, (today + timedelta(days=1)).isoformat()).code == "invalid_request"
    assert _study(member, (today - timedelta(days=40)).isoformat()).code == "invalid_request"
    wrong = member.post("/study/self-study", json={"track": "group_meeting", "minutes": 5, "material": "x",
                                                   "date": today.isoformat()})
    assert wrong.code == "invalid_request" and wrong.json["errors"][0]["field"] == "track"
    mine = member.ok("GET", "/study/self-study?limit=2")
    assert len(mine["items"]) == 2 and mine["next_cursor"]
    rest = member.ok("GET", f"/study/self-study?cursor={mine['next_cursor']}")
    assert len(rest["items"]) == 1
    assert w.outsider.ok("GET", "/study/self-study")["items"] == []  # only one's own records


def test_a_failed_self_study_entry_does_not_use_up_the_day(api):
    w = study_world(api, members=1)
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


def test_progress_for_month_quarter_and_year(api, year_2025):
    w, _, _ = year_2025
    first, second = w.members
    month = first.ok("GET", "/me/study/progress?period=2025-11")
    assert month["period"] == "2025-11" and month["scheme"] == "四个五" and month["complete"]
    tracks = _tracks(month)
    assert set(tracks) == {"group_meeting", "self_study"}  # quarterly and yearly tracks are judged over those
    assert tracks["group_meeting"]["done_count"] == 2 and tracks["group_meeting"]["required_count"] == 1
    assert tracks["self_study"] == {"key": "self_study", "name": "个人自学", "kind": "self_study",
                                    "required_count": 5, "done_count": 5, "required_minutes": 0,
                                    "done_minutes": 300, "complete": True}  # entries count, minutes are shown
    october = _tracks(first.ok("GET", "/me/study/progress?period=2025-10"))
    assert october["group_meeting"]["done_count"] == 1

    quarter = first.ok("GET", "/me/study/progress?period=2025-Q4")
    tracks = _tracks(quarter)
    assert set(tracks) == {"group_meeting", "self_study", "branch_assembly"} and not quarter["complete"]
    assert tracks["group_meeting"]["required_count"] == 3 and tracks["group_meeting"]["done_count"] == 3
    assert tracks["group_meeting"]["complete"] and tracks["branch_assembly"]["complete"]
    assert tracks["self_study"]["required_count"] == 15 and not tracks["self_study"]["complete"]

    year = _tracks(first.ok("GET", "/me/study/progress?period=2025"))
    assert year["party_lecture"]["done_count"] == 4 and year["party_lecture"]["complete"]
    assert year["branch_assembly"]["required_count"] == 4 and not year["branch_assembly"]["complete"]
    assert year["group_meeting"]["required_count"] == 12

    # Late counts as attended, leave does not, a cancelled session never does.
    theirs = _tracks(second.ok("GET", "/me/study/progress?period=2025-Q4"))
    assert theirs["group_meeting"]["done_count"] == 1 and theirs["branch_assembly"]["done_count"] == 0
    assert not _tracks(second.ok("GET", "/me/study/progress?period=2025-11"))["self_study"]["complete"]
    # Default period: this month.
    assert first.ok("GET", "/me/study/progress")["period"] == "2025-11"
    for bad in ("2025-13", "2025-Q5", "2025-Q0", "25", "2025-1", "november", "1999"):
        response = first.get(f"/me/study/progress?period={bad}")
        assert response.status == 422 and response.code == "invalid_request", bad


def test_compliance_per_org_for_each_period_kind(api, year_2025):
    w, group, third = year_2025
    first, second = w.members
    month = w.organiser.ok("GET", f"/orgs/{w.branch['id']}/study/compliance?period=2025-11")
    orgs = {o["org_id"]: o for o in month["orgs"]}
    assert orgs[w.branch["id"]] == {"org_id": w.branch["id"], "name": "第一支部", "members": 4,
                                    "complete_members": 1, "rate": 0.25}
    assert orgs[group["id"]]["members"] == 1 and orgs[group["id"]]["complete_members"] == 0
    members = {m["member_id"]: m for m in month["members"]}
    assert members[first.id]["complete"] and not members[second.id]["complete"]
    assert members[third.id]["org_id"] == group["id"]
    quarter = w.organiser.ok("GET", f"/orgs/{w.branch['id']}/study/compliance?period=2025-Q4")
    assert quarter["orgs"][0]["complete_members"] == 0
    assert {t["key"] for t in quarter["members"][0]["tracks"]} == {"group_meeting", "self_study", "branch_assembly"}
    year = w.organiser.ok("GET", f"/orgs/{w.branch['id']}/study/compliance?period=2025")
    assert len(year["members"][0]["tracks"]) == 4
    # Organisers only, and only their own subtree.
    assert first.get(f"/orgs/{w.branch['id']}/study/compliance?period=2025").code == "forbidden"
    assert w.outsider_organiser.get(f"/orgs/{w.branch['id']}/study/compliance").code == "not_found"
    assert w.organiser.get(f"/orgs/{w.branch['id']}/study/compliance?period=2025-Q9").code == "invalid_request"
    # A stricter scheme set on the group applies to its member only.
    group_admin = api.org_admin(group["id"])
    group_admin.ok("PUT", f"/orgs/{group['id']}/study-scheme", json={"name": "小组方案", "tracks": [
        {"key": "self_study", "name": "自学", "kind": "self_study", "period": "month", "min_count": 0,
         "min_minutes": 0}]})
    again = w.organiser.ok("GET", f"/orgs/{w.branch['id']}/study/compliance?period=2025-11")
    assert {m["member_id"]: m for m in again["members"]}[third.id]["complete"]
    assert {o["org_id"]: o for o in again["orgs"]}[group["id"]]["rate"] == 1.0


def test_warnings_created_once_rectified_and_closed(api, year_2025):
    w, group, third = year_2025
    first, second = w.members
    branch = w.branch["id"]
    api.admin.ok("PUT", f"/orgs/{branch}/settings", json={"member_warnings": True})  # off by default
    assert w.organiser.post(f"/orgs/{branch}/warnings/scan?period=2025-11").code == "forbidden"
    assert api.admin.post(f"/orgs/{branch}/warnings/scan").code == "invalid_request"
    assert api.admin.post(f"/orgs/{branch}/warnings/scan?period=2025-W1").code == "invalid_request"
    scan = api.admin.ok("POST", f"/orgs/{branch}/warnings/scan?period=2025-11")
    # The organiser (group meeting and self-study), the second member (self-study), the group member (both).
    assert scan == {"created": 5, "period": "2025-11"}
    assert api.admin.ok("POST", f"/orgs/{branch}/warnings/scan?period=2025-11") == {"created": 0, "period": "2025-11"}
    assert count(api, "study_warnings", {"period": "2025-11"}) == 5
    listed = w.organiser.ok("GET", f"/warnings?org_id={branch}&status=open&limit=100")["items"]
    assert len(listed) == 5 and first.id not in {x["member_id"] for x in listed}
    assert {x["member_id"] for x in listed if x["track"] == "self_study"} == {w.organiser.id, second.id, third.id}
    assert next(x for x in listed if x["member_id"] == third.id)["org_id"] == group["id"]
    # A year scan also finds the branch itself behind on the sessions it had to hold (a session planned for
    # December has not been held yet and does not count).
    _session(api, w.organiser, branch, datetime(2025, 12, 10, 6, tzinfo=UTC), "branch_assembly")
    year = api.admin.ok("POST", f"/orgs/{branch}/warnings/scan?period=2025")
    assert year["created"] > 0
    branch_level = w.organiser.ok("GET", f"/warnings?org_id={branch}&limit=100")["items"]
    held = {x["track"]: x for x in branch_level if x["member_id"] is None and x["period"] == "2025"}
    assert set(held) == {"branch_assembly", "group_meeting"} and "实开 1 次" in held["branch_assembly"]["reason"]

    warning = next(x for x in listed if x["member_id"] == second.id)
    wid = warning["id"]
    assert first.get("/warnings").code == "forbidden"
    assert w.outsider_organiser.post(f"/warnings/{wid}/rectify", json={"note": "x"}).code == "warning_not_found"
    assert w.organiser.post(f"/warnings/{wid}/close", json={"note": "x"}).code == "forbidden"
    assert api.admin.post(f"/warnings/{wid}/close", json={"note": "x"}).code == "warning_not_rectifying"
    assert w.organiser.post(f"/warnings/{wid}/rectify", json={"note": ""}).code == "invalid_request"
    unknown = w.organiser.post(f"/warnings/{wid}/rectify", json={"note": "已补学", "file_ids": ["f1"]})
    assert unknown.status == 422 and unknown.code == "file_not_found"
    notes = [w.organiser.ok("POST", "/files", 201, content=f"心得{i}".encode(),
                            headers={"Content-Type": "text/plain", "X-Filename": f"note{i}.txt"})["id"]
             for i in (1, 2)]
    rectified = w.organiser.ok("POST", f"/warnings/{wid}/rectify",
                               json={"note": "已补学并提交心得", "file_ids": notes})
    assert rectified["status"] == "rectifying" and rectified["history"][-1]["file_ids"] == notes
    assert w.organiser.post(f"/warnings/{wid}/rectify", json={"note": "again"}).code == "warning_not_open"
    closed = api.admin.ok("POST", f"/warnings/{wid}/close", json={"note": "经核查，同意销号"})
    assert closed["status"] == "closed" and [h["status"] for h in closed["history"]] == ["open", "rectifying", "closed"]
    assert api.admin.post(f"/warnings/{wid}/close", json={"note": "again"}).code == "warning_not_rectifying"
    assert [x["id"] for x in w.organiser.ok("GET", f"/warnings?org_id={branch}&status=closed")["items"]] == [wid]
    assert w.organiser.get("/warnings?status=bogus").code == "invalid_request"
    # Closed warnings are not re-opened by a re-scan; every step is audited.
    assert api.admin.ok("POST", f"/orgs/{branch}/warnings/scan?period=2025-11")["created"] == 0
    assert count(api, "audit_log", {"target_id": wid}) == 3
    assert count(api, "audit_log", {"action": "study.warning.create"}) == 5 + year["created"]


def test_a_scan_of_a_period_that_has_not_begun_is_refused(api):
    move_to(api, datetime(2026, 3, 10, 4, tzinfo=UTC))
    w = study_world(api, members=1)
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
    w = study_world(api, members=3)
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
    w = study_world(api, members=5)
    branch = w.branch["id"]
    headers = {"Authorization": f"Bearer {api.admin.token}"}
    results = api.concurrently([lambda http: http.post(f"/orgs/{branch}/warnings/scan?period=2026-02",
                                                       headers=headers) for _ in range(4)])
    assert all(r.status == 200 for r in results), [(r.status, r.json) for r in results]
    total = count(api, "study_warnings", {"period": "2026-02"})
    assert sum(r.json["created"] for r in results) == total > 0
    assert count(api, "audit_log", {"action": "study.warning.create"}) == total
