"""群心驿站 activities through HTTP (API.md §6): programmes and eligibility, the life of an activity, every
refusal code, promotion on cancel and on capacity change, lists, roster files, check-in and feedback.
Answers carry the caller's own sign-up, no-shows show on every read, leaving twice is quiet, parameterless
actions refuse body fields. Who may see and do what: test_activities_access.py."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

from openpyxl import load_workbook

from server import qr
from tests.builders import activity_body, activity_checkin, advance, iso, png, published, started_with_a_signup


def notices(api, member_id: str, activity_id: str) -> list[dict]:
    return api.run(api.db["feed_items"].find({"kind": "notice", "members": member_id,
                                              "ref_id": activity_id}).to_list())


# -- programmes -----------------------------------------------------------------------------------

def test_default_programmes_exist_without_admin_action(api):
    branch = api.org("一支部")
    member = api.member(branch["id"])
    items = member.ok("GET", "/programmes")["items"]
    by_key = {p["key"]: p for p in items}
    assert {k: p["name"] for k, p in by_key.items()} == {
        "unity": "团结之家", "workers": "职工之家", "youth": "青年之家", "women": "妇女之家", "culture": "文体活动"}
    assert by_key["workers"]["rules"]["tags_any"] == ["union_member"]
    assert by_key["youth"]["rules"]["max_age"] == 35
    assert by_key["women"]["rules"]["gender"] == "female"
    assert by_key["unity"]["rules"]["tags_any"] == [] and by_key["culture"]["rules"]["gender"] is None
    page = member.ok("GET", "/programmes?limit=2")
    assert len(page["items"]) == 2 and page["next_cursor"]


def test_only_a_root_admin_edits_programmes(api):
    branch = api.org("一支部")
    member = api.member(branch["id"])
    branch_admin = api.org_admin(branch["id"])
    body = {"name": "老干部之家", "rules": {"min_age": 60, "party_status": ["full"]}}
    assert member.put("/programmes/veterans", json=body).status == 403
    assert branch_admin.put("/programmes/veterans", json=body).code == "forbidden"
    created = api.admin.ok("PUT", "/programmes/veterans", json=body)
    assert created["key"] == "veterans" and created["rules"]["min_age"] == 60 and created["active"] is True
    assert api.admin.put("/programmes/Bad-Key", json=body).code == "invalid_request"
    bad = api.admin.put("/programmes/x", json={"name": "x", "rules": {"min_age": 50, "max_age": 40}})
    assert bad.status == 422
    unknown = api.admin.put("/programmes/x", json={"name": "x", "rules": {"height": 1}})
    assert unknown.status == 422
    # an edit of a default sticks (the defaults are written once, never over an edit)
    api.admin.ok("PUT", "/programmes/youth", json={"name": "青年之家", "rules": {"max_age": 40}})
    youth = {p["key"]: p for p in member.ok("GET", "/programmes")["items"]}["youth"]
    assert youth["rules"]["max_age"] == 40
    # an inactive programme takes no new activities
    api.admin.ok("PUT", "/programmes/veterans", json={**body, "active": False})
    organiser = api.organiser(branch["id"])
    refused = organiser.post("/activities", json=activity_body(api, branch["id"], programme="veterans"))
    assert refused.status == 422 and refused.json["errors"][0]["field"] == "programme"


def test_eligibility_of_each_programme(api):
    branch = api.org("一支部")
    organiser = api.organiser(branch["id"])
    man = api.member(branch["id"], "老张", gender="male", birth_date="1970-05-05")
    woman = api.member(branch["id"], "小李", gender="female", birth_date="1995-05-05")
    unionist = api.member(branch["id"], "工会会员", tags=["union_member"], birth_date="1970-01-01")
    acts = {key: published(api, organiser, branch["id"], programme=key)
            for key in ("unity", "workers", "youth", "women", "culture")}
    expected = {  # programme → (man, woman, unionist)
        "unity": (True, True, True), "workers": (False, False, True), "youth": (False, True, False),
        "women": (False, True, False), "culture": (True, True, True)}
    for key, outcome in expected.items():
        for who, allowed in zip((man, woman, unionist), outcome, strict=True):
            response = who.post(f"/activities/{acts[key]['id']}/signups")
            if allowed:
                assert response.status == 201 and response.json == {"status": "confirmed"}, (key, response)
            else:
                assert response.status == 403 and response.code == "not_eligible", (key, response)
    # ?eligible=true lists exactly the activities whose rules the caller meets
    listed = {a["programme"] for a in man.ok("GET", "/activities?eligible=true&limit=100")["items"]}
    assert listed == {"unity", "culture"}
    listed = {a["programme"] for a in woman.ok("GET", "/activities?eligible=true&limit=100")["items"]}
    assert listed == {"unity", "youth", "women", "culture"}
    assert len(man.ok("GET", "/activities?limit=100")["items"]) == 5


def test_youth_age_is_taken_on_the_start_day_in_the_org_time_zone(api):
    """Starts 2027-03-10 16:30 UTC = 2027-03-11 00:30 in Shanghai: whoever turns 36 on 11 March is out."""
    branch = api.org("一支部")
    organiser = api.organiser(branch["id"])
    turns_36 = api.member(branch["id"], "满36", birth_date="1991-03-11")
    still_35 = api.member(branch["id"], "35岁", birth_date="1991-03-12")
    leap = api.member(branch["id"], "闰日", birth_date="1992-02-29")  # 35 on 2027-03-11 (turns 35 on 1 March)
    now = api.clock.now()
    starts = datetime(2027, 3, 10, 16, 30, tzinfo=UTC)
    body = {"programme": "youth", "org_id": branch["id"], "title": "青年读书会", "description": "",
            "starts_at": iso(starts), "ends_at": iso(starts + timedelta(hours=2)),
            "signup_opens_at": iso(now - timedelta(hours=1)), "signup_closes_at": iso(starts), "capacity": 5,
            "waitlist": False}
    act = organiser.ok("POST", "/activities", 201, json=body)
    organiser.ok("POST", f"/activities/{act['id']}/publish")
    assert turns_36.post(f"/activities/{act['id']}/signups").code == "not_eligible"
    assert still_35.post(f"/activities/{act['id']}/signups").status == 201
    assert leap.post(f"/activities/{act['id']}/signups").status == 201
    assert turns_36.ok("GET", "/activities?eligible=true")["items"] == []
    assert [a["id"] for a in still_35.ok("GET", "/activities?eligible=true")["items"]] == [act["id"]]


def test_custom_rules_tags_all_party_status_and_min_age(api):
    api.admin.ok("PUT", "/programmes/veterans", json={
        "name": "老党员之家", "rules": {"min_age": 60, "party_status": ["full"], "tags_all": ["retired", "veteran"]}})
    branch = api.org("一支部")
    organiser = api.organiser(branch["id"])
    act = published(api, organiser, branch["id"], programme="veterans")
    fits = api.member(branch["id"], birth_date="1950-01-01", tags=["retired", "veteran"])
    one_tag = api.member(branch["id"], birth_date="1950-01-01", tags=["retired"])
    probationary = api.member(branch["id"], birth_date="1950-01-01", party_status="probationary",
                              tags=["retired", "veteran"])
    young = api.member(branch["id"], birth_date="1990-01-01", tags=["retired", "veteran"])
    assert fits.post(f"/activities/{act['id']}/signups").status == 201
    for who in (one_tag, probationary, young):
        assert who.post(f"/activities/{act['id']}/signups").code == "not_eligible"
    assert [a["id"] for a in fits.ok("GET", "/activities?eligible=true")["items"]] == [act["id"]]
    assert young.ok("GET", "/activities?eligible=true")["items"] == []


# -- creating and editing -------------------------------------------------------------------------

def test_create_validates_times_capacity_and_role(api):
    branch = api.org("一支部")
    organiser = api.organiser(branch["id"])
    member = api.member(branch["id"])
    outsider_org = api.org("二支部")
    good = activity_body(api, branch["id"])
    assert member.post("/activities", json=good).code == "forbidden"
    assert api.organiser(outsider_org["id"]).post("/activities", json=good).code == "not_found"  # org out of scope

    def refused(**changes) -> set[str]:
        response = organiser.post("/activities", json={**good, **changes})
        assert response.status == 422 and response.code == "invalid_request", response
        return {e["field"] for e in response.json["errors"]}

    now = api.clock.now()
    assert "ends_at" in refused(ends_at=good["starts_at"])
    assert "signup_closes_at" in refused(signup_closes_at=good["signup_opens_at"])
    assert "signup_closes_at" in refused(signup_closes_at=iso(now + timedelta(days=3)))
    assert "cancel_deadline" in refused(cancel_deadline=iso(now + timedelta(days=2, hours=1)))
    assert "capacity" in refused(capacity=0)
    assert refused(starts_at="2027-01-01T10:00:00")  # no offset
    assert refused(title="x" * 201)
    assert refused(extra_field=1)
    assert "programme" in refused(programme="nope")
    act = organiser.ok("POST", "/activities", 201, json={**good, "location": "三楼会议室"})
    assert act["status"] == "draft" and act["confirmed_count"] == 0 and act["waitlist_count"] == 0
    assert act["my_signup"] is None and act["cover_file_id"] is None and act["location"] == "三楼会议室"
    assert act["cancel_deadline"] == act["starts_at"]
    assert "qr_secret" not in act
    # PATCH re-validates the merged times
    bad = organiser.patch(f"/activities/{act['id']}", json={"ends_at": good["signup_opens_at"]})
    assert bad.status == 422
    changed = organiser.ok("PATCH", f"/activities/{act['id']}", json={"title": "新标题", "location": None})
    assert changed["title"] == "新标题" and changed["location"] is None and changed["description"] == "一起读书"


def test_idempotency_key_on_create_and_sign_up(api):
    branch = api.org("一支部")
    organiser = api.organiser(branch["id"])
    body = activity_body(api, branch["id"])
    first = organiser.post("/activities", json=body, headers={"Idempotency-Key": "create-1"})
    again = organiser.post("/activities", json=body, headers={"Idempotency-Key": "create-1"})
    assert first.status == again.status == 201 and first.json["id"] == again.json["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    other = organiser.post("/activities", json={**body, "title": "别的"}, headers={"Idempotency-Key": "create-1"})
    assert other.code == "idempotency_key_reused"
    organiser.ok("POST", f"/activities/{first.json['id']}/publish")
    member = api.member(branch["id"])
    path = f"/activities/{first.json['id']}/signups"
    one = member.post(path, json={"answers": {"diet": "素食"}}, headers={"Idempotency-Key": "su-1"})
    two = member.post(path, json={"answers": {"diet": "素食"}}, headers={"Idempotency-Key": "su-1"})
    assert one.status == two.status == 201 and two.headers["Idempotent-Replayed"] == "true"
    plain_again = member.post(path)
    assert plain_again.status == 200 and plain_again.json == {"status": "confirmed"}
    assert member.post(path, json={"answers": {"k" * 65: "v"}}).status == 422
    assert member.post(path, json={"answers": {"a": "b"}, "x": 1}).status == 422


def test_organiser_actions_answer_with_the_callers_own_sign_up(api):
    branch = api.org("一支部")
    organiser = api.organiser(branch["id"])
    draft = organiser.ok("POST", "/activities", 201, json=activity_body(api, branch["id"]))
    path = f"/activities/{draft['id']}"
    assert draft["my_signup"] is None
    assert organiser.ok("POST", path + "/publish")["my_signup"] is None
    assert organiser.ok("POST", path + "/signups", 201) == {"status": "confirmed"}
    assert organiser.ok("PATCH", path, json={"title": "新标题"})["my_signup"] == {"status": "confirmed"}
    assert organiser.ok("POST", path + "/publish")["my_signup"] == {"status": "confirmed"}
    cancelled = organiser.ok("POST", path + "/cancel")
    assert cancelled["status"] == "cancelled" and cancelled["my_signup"] == {"status": "confirmed"}
    assert cancelled["confirmed_count"] == 1


def test_parameterless_actions_refuse_unknown_body_fields(api):
    branch = api.org("一支部")
    organiser = api.organiser(branch["id"])
    draft = organiser.ok("POST", "/activities", 201, json=activity_body(api, branch["id"]))
    path = f"/activities/{draft['id']}"
    refused = organiser.post(path + "/publish", json={"notify": True})
    assert refused.status == 422 and refused.code == "invalid_request"
    assert organiser.ok("GET", path)["status"] == "draft"
    assert organiser.ok("POST", path + "/publish", json={})["status"] == "published"
    assert organiser.post(path + "/cancel", json={"reason": "x", "silent": True}).status == 422
    member = api.member(branch["id"])
    for body in ({"answers": {}, "extra": 1}, {"answers": {str(i): "v" for i in range(21)}},
                 {"answers": {"k" * 65: "v"}}, {"answers": {"note": "字" * 1001}}, {"answers": {"": "v"}},
                 {"answers": {"note": 5}}):
        response = member.post(path + "/signups", json=body)
        assert response.status == 422 and response.code == "invalid_request", body
    assert organiser.ok("GET", path)["confirmed_count"] == 0


# -- the life of an activity ----------------------------------------------------------------------

def test_full_life_of_an_activity(api):
    branch = api.org("一支部")
    organiser = api.organiser(branch["id"], "王书记")
    ann = api.member(branch["id"], "安安")
    bob = api.member(branch["id"], "波波")
    cat = api.member(branch["id"], "猫猫")
    act = organiser.ok("POST", "/activities", 201, json=activity_body(api, branch["id"], capacity=1, waitlist=True))
    path = f"/activities/{act['id']}"
    # a draft is invisible to members, visible to its organiser
    assert ann.get(path).code == "activity_not_found"
    assert ann.post(path + "/signups").code == "activity_not_found"
    assert ann.ok("GET", "/activities")["items"] == []
    assert [a["id"] for a in organiser.ok("GET", "/activities?status=draft")["items"]] == [act["id"]]
    assert organiser.post(path + "/signups").code == "signup_not_open"
    published_act = organiser.ok("POST", path + "/publish")
    assert published_act["status"] == "published" and published_act["published_at"]
    assert organiser.ok("POST", path + "/publish")["status"] == "published"  # again: unchanged
    assert [a["id"] for a in ann.ok("GET", "/activities?status=published")["items"]] == [act["id"]]
    # sign-ups: one place, then the waitlist
    assert ann.ok("POST", path + "/signups", 201) == {"status": "confirmed"}
    assert bob.ok("POST", path + "/signups", 201, json={"answers": {"note": "晚到十分钟"}}) == {
        "status": "waitlisted", "position": 1}
    assert cat.ok("POST", path + "/signups", 201) == {"status": "waitlisted", "position": 2}
    assert bob.ok("POST", path + "/signups", 200) == {"status": "waitlisted", "position": 1}
    seen = cat.ok("GET", path)
    assert (seen["confirmed_count"], seen["waitlist_count"], seen["capacity"]) == (1, 2, 1)
    assert seen["my_signup"] == {"status": "waitlisted", "position": 2}
    assert ann.ok("GET", path)["my_signup"] == {"status": "confirmed"}
    assert organiser.ok("GET", path)["my_signup"] is None
    listed = cat.ok("GET", "/activities")["items"][0]
    assert listed["my_signup"] == {"status": "waitlisted", "position": 2}
    # check-in: only in [start − 30 min, end], only confirmed, only with a current token
    token = organiser.ok("GET", path + "/qr")
    assert token["refresh_in"] >= 1 and token["payload"].endswith(token["token"])
    svg = organiser.get(path + "/qr/image")
    assert svg.status == 200 and svg.headers["Content-Type"] == "image/svg+xml" and b"<svg" in svg.content
    png_image = organiser.get(path + "/qr/image?format=png")
    assert png_image.content.startswith(b"\x89PNG")
    assert organiser.get(path + "/qr/image?format=gif").code == "invalid_request"
    assert ann.get(path + "/qr/image").code == "forbidden"
    assert ann.post(path + "/checkins", json={"qr_token": token["token"]}).code == "checkin_not_open"
    assert ann.get(path + "/qr").code == "forbidden"
    advance(api, organiser, ann, bob, cat, days=2, minutes=-20)  # 20 minutes before the start
    token = organiser.ok("GET", path + "/qr")["token"]
    assert bob.post(path + "/checkins", json={"qr_token": token}).code == "not_confirmed"
    assert ann.post(path + "/checkins", json={"qr_token": "123.forged"}).code == "qr_invalid"
    other = qr.make_token("not-the-secret", "activity", act["id"], qr.window_of(api.clock.now()))
    assert ann.post(path + "/checkins", json={"qr_token": other}).code == "qr_invalid"
    advance(api, organiser, ann, bob, cat, seconds=3 * qr.WINDOW_SECONDS)
    assert ann.post(path + "/checkins", json={"qr_token": token}).code == "qr_expired"
    token = organiser.ok("GET", path + "/qr")["token"]
    done = ann.ok("POST", path + "/checkins", 201, json={"qr_token": token})
    assert done["result"] == "ok"
    assert ann.ok("POST", path + "/checkins", 200, json={"qr_token": token})["result"] == "already_checked_in"
    assert ann.ok("GET", path)["my_signup"]["checked_in_at"] == done["checked_in_at"]
    # before the start and the deadline, but checked in: attendance is not withdrawn by cancelling
    assert ann.delete(path + "/signups/me").code == "cancel_deadline_passed"
    # after the start: too late to cancel a confirmed place; a waitlisted member may still leave
    advance(api, organiser, ann, bob, cat, minutes=30)
    assert ann.delete(path + "/signups/me").code == "cancel_deadline_passed"
    assert cat.delete(path + "/signups/me").status == 204
    # feedback: only who attended, once
    assert bob.post(path + "/feedback", json={"rating": 5}).code == "not_attended"
    assert ann.post(path + "/feedback", json={"rating": 6}).status == 422
    # after the end: check-in closed, no-shows marked, feedback open to attendees
    advance(api, organiser, ann, bob, cat, hours=2)
    assert ann.ok("POST", path + "/checkins", 200, json={"qr_token": token})["result"] == "already_checked_in"
    late = organiser.ok("GET", path + "/qr")["token"]
    roster = organiser.ok("GET", path + "/signups")
    assert roster["counts"] == {"confirmed": 1, "waitlisted": 1, "cancelled": 1, "present": 1, "no_show": 0}
    assert [e["name"] for e in roster["confirmed"]] == ["安安"]
    assert roster["confirmed"][0]["attendance"] == "present"
    assert roster["waitlisted"][0]["position"] == 1 and roster["waitlisted"][0]["answers"] == {"note": "晚到十分钟"}
    assert "*" in roster["confirmed"][0]["phone_masked"]
    assert bob.post(path + "/checkins", json={"qr_token": late}).code == "not_confirmed"
    fb = ann.ok("POST", path + "/feedback", 201, json={"rating": 4, "comment": "很好"})
    assert fb["rating"] == 4
    assert ann.post(path + "/feedback", json={"rating": 5}).code == "feedback_exists"
    assert ann.ok("GET", path)["my_signup"]["feedback_given"] is True
    summary = organiser.ok("GET", path + "/feedback")
    assert summary["count"] == 1 and summary["average"] == 4 and summary["ratings"]["4"] == 1
    assert ann.get(path + "/feedback").code == "forbidden"


def test_no_shows_are_marked_after_the_end_and_check_in_closes(api):
    branch = api.org("一支部")
    organiser = api.organiser(branch["id"])
    came, stayed_home = api.member(branch["id"], "来了"), api.member(branch["id"], "没来")
    act = published(api, organiser, branch["id"])
    path = f"/activities/{act['id']}"
    came.ok("POST", path + "/signups", 201)
    stayed_home.ok("POST", path + "/signups", 201)
    advance(api, organiser, came, stayed_home, days=2, minutes=5)
    came.ok("POST", path + "/checkins", 201, json={"qr_token": organiser.ok("GET", path + "/qr")["token"]})
    assert stayed_home.ok("GET", path)["my_signup"].get("attendance") is None  # not over yet
    advance(api, organiser, came, stayed_home, hours=2)
    token = organiser.ok("GET", path + "/qr")["token"]
    assert stayed_home.post(path + "/checkins", json={"qr_token": token}).code == "checkin_closed"
    assert stayed_home.ok("GET", path)["my_signup"]["attendance"] == "no_show"
    roster = organiser.ok("GET", path + "/signups")
    assert {e["name"]: e["attendance"] for e in roster["confirmed"]} == {"来了": "present", "没来": "no_show"}
    assert stayed_home.post(path + "/feedback", json={"rating": 1}).code == "not_attended"


def test_no_shows_show_in_lists_and_for_members_promoted_after_the_end(api):
    branch = api.org("一支部")
    organiser = api.organiser(branch["id"])
    came, absent, waiting = (api.member(branch["id"], n) for n in ("来了", "没来", "候补"))
    act = published(api, organiser, branch["id"], capacity=2, waitlist=True)
    path = f"/activities/{act['id']}"
    for who in (came, absent, waiting):
        who.ok("POST", path + "/signups", 201)
    advance(api, organiser, came, absent, waiting, days=2, minutes=5)
    activity_checkin(organiser, came, path)
    advance(api, organiser, came, absent, waiting, hours=2)
    # the list is the first read after the end: it already tells the no-show
    [listed] = absent.ok("GET", "/activities")["items"]
    assert listed["my_signup"] == {"status": "confirmed", "attendance": "no_show"}
    assert came.ok("GET", "/activities")["items"][0]["my_signup"]["attendance"] == "present"
    assert api.run(api.db["activity_signups"].find_one({"member_id": absent.id}))["attendance"] == "no_show"
    # a member confirmed after the end (capacity raised) did not come either
    raised = organiser.ok("PATCH", path, json={"capacity": 3})
    assert raised["confirmed_count"] == 3
    assert waiting.ok("GET", path)["my_signup"] == {"status": "confirmed", "attendance": "no_show"}
    assert api.run(api.db["activity_signups"].find_one({"member_id": waiting.id}))["attendance"] == "no_show"
    roster = organiser.ok("GET", path + "/signups")
    assert roster["counts"]["present"] == 1 and roster["counts"]["no_show"] == 2
    assert {e["name"]: e["attendance"] for e in roster["confirmed"]} == {
        "来了": "present", "没来": "no_show", "候补": "no_show"}


def test_moving_the_end_later_takes_back_no_shows_until_the_new_end(api):
    branch = api.org("一支部")
    organiser = api.organiser(branch["id"])
    late = api.member(branch["id"], "迟到")
    act = published(api, organiser, branch["id"])
    path = f"/activities/{act['id']}"
    late.ok("POST", path + "/signups", 201)
    advance(api, organiser, late, days=2, hours=2, minutes=1)  # a minute after the end
    assert late.ok("GET", path)["my_signup"]["attendance"] == "no_show"
    # the organiser extends the activity by an hour: it is not over, nobody is a no-show yet
    organiser.ok("PATCH", path, json={"ends_at": iso(api.clock.now() + timedelta(hours=1))})
    assert late.ok("GET", path)["my_signup"] == {"status": "confirmed"}
    assert organiser.ok("GET", path + "/signups")["counts"]["no_show"] == 0
    assert activity_checkin(organiser, late, path)["status"] == "present"
    advance(api, organiser, late, hours=1, minutes=1)
    assert late.ok("GET", path)["my_signup"]["attendance"] == "present"
    assert organiser.ok("GET", path + "/signups")["counts"] == {
        "confirmed": 1, "waitlisted": 0, "cancelled": 0, "present": 1, "no_show": 0}


def test_check_in_answers_are_shaped_as_for_study_sessions(api):
    organiser, member, path = started_with_a_signup(api)
    first = activity_checkin(organiser, member, path)
    assert first["result"] == "ok" and first["status"] == "present" and first["checked_in_at"].endswith("Z")
    again = activity_checkin(organiser, member, path, 200)
    assert again == {"result": "already_checked_in", "status": "present", "checked_in_at": first["checked_in_at"]}


def test_roster_files_have_chinese_headers(api):
    branch = api.org("一支部")
    organiser = api.organiser(branch["id"])
    act = published(api, organiser, branch["id"], capacity=1, waitlist=True)
    path = f"/activities/{act['id']}"
    api.member(branch["id"], "=危险名字").ok("POST", path + "/signups", 201)
    api.member(branch["id"], "候补甲").ok("POST", path + "/signups", 201)
    csv_file = organiser.get(path + "/signups?format=csv")
    assert csv_file.status == 200 and csv_file.headers["Content-Type"].startswith("text/csv")
    text = csv_file.content.decode("utf-8-sig")
    assert text.splitlines()[0] == "姓名,手机号,状态,候补顺位,报名时间,确认时间,取消时间,签到时间,出勤"
    assert "'=危险名字" in text and "候补甲" in text and "已确认" in text and "候补" in text
    assert "13" in text and "*" in text  # masked phones only
    xlsx = organiser.get(path + "/signups?format=xlsx")
    assert xlsx.status == 200
    book = load_workbook(io.BytesIO(xlsx.content))
    assert book.sheetnames == ["已确认", "候补", "已取消"]
    assert [c.value for c in book["候补"][1]][:4] == ["姓名", "手机号", "状态", "候补顺位"]
    assert book["候补"]["A2"].value == "候补甲" and book["候补"]["D2"].value == 1
    assert organiser.get(path + "/signups?format=pdf").code == "invalid_request"
    assert api.member(branch["id"]).get(path + "/signups").code == "forbidden"


# -- refusals -------------------------------------------------------------------------------------

def test_every_sign_up_refusal_code(api):
    branch = api.org("一支部")
    other = api.org("二支部")
    organiser = api.organiser(branch["id"])
    member = api.member(branch["id"])
    stranger = api.member(other["id"])
    man = api.member(branch["id"], gender="male")
    # 404 activity_not_found: no such id, out of scope, draft
    assert member.post("/activities/nope/signups").code == "activity_not_found"
    act = published(api, organiser, branch["id"], capacity=1)
    path = f"/activities/{act['id']}"
    for response in (stranger.get(path), stranger.post(path + "/signups"), stranger.delete(path + "/signups/me"),
                     stranger.get(path + "/signups"), stranger.patch(path, json={"title": "x"})):
        assert response.status == 404 and response.code == "activity_not_found", response
    assert member.patch(path, json={"title": "x"}).code == "forbidden"
    assert member.post(path + "/publish").code == "forbidden"
    assert member.post(path + "/cancel").code == "forbidden"
    # 403 not_eligible
    women_only = published(api, organiser, branch["id"], programme="women")
    assert man.post(f"/activities/{women_only['id']}/signups").code == "not_eligible"
    # 409 signup_not_open / signup_closed
    later = published(api, organiser, branch["id"], opens=timedelta(hours=1))
    assert member.post(f"/activities/{later['id']}/signups").code == "signup_not_open"
    closing = published(api, organiser, branch["id"], closes=timedelta(hours=1))
    advance(api, organiser, member, man, hours=1, seconds=1)
    assert member.post(f"/activities/{closing['id']}/signups").code == "signup_closed"
    advance(api, organiser, member, man, hours=-1, seconds=-1)
    # 409 activity_full (no waitlist)
    member.ok("POST", path + "/signups", 201)
    full = man.post(path + "/signups")
    assert full.status == 409 and full.code == "activity_full"
    assert full.headers["Content-Type"] == "application/problem+json"
    # 404 signup_not_found on leaving without a sign-up
    assert man.delete(path + "/signups/me").code == "signup_not_found"
    # 409 cancel_deadline_passed
    deadline = published(api, organiser, branch["id"], cancel_deadline=iso(api.clock.now() + timedelta(hours=2)))
    member.ok("POST", f"/activities/{deadline['id']}/signups", 201)
    advance(api, organiser, member, man, hours=2, seconds=1)
    assert member.delete(f"/activities/{deadline['id']}/signups/me").code == "cancel_deadline_passed"
    advance(api, organiser, member, man, hours=-2, seconds=-1)
    # 409 capacity_below_confirmed
    assert organiser.patch(path, json={"capacity": 0}).status == 422
    two = published(api, organiser, branch["id"], capacity=2)
    member.ok("POST", f"/activities/{two['id']}/signups", 201)
    man.ok("POST", f"/activities/{two['id']}/signups", 201)
    assert organiser.patch(f"/activities/{two['id']}", json={"capacity": 1}).code == "capacity_below_confirmed"
    # 409 activity_cancelled: sign up, leave, publish, edit, check in
    organiser.ok("POST", path + "/cancel", json={"reason": "场地维修"})
    for response in (man.post(path + "/signups"), member.delete(path + "/signups/me"),
                     organiser.post(path + "/publish"), organiser.patch(path, json={"capacity": 5}),
                     member.post(path + "/checkins", json={"qr_token": "1.x"}), organiser.get(path + "/qr")):
        assert response.status == 409 and response.code == "activity_cancelled", response


def test_leaving_again_answers_204_and_changes_nothing(api):
    branch = api.org("一支部")
    organiser = api.organiser(branch["id"])
    first, second, third = (api.member(branch["id"]) for _ in range(3))
    act = published(api, organiser, branch["id"], capacity=1, waitlist=True)
    path = f"/activities/{act['id']}"
    for who in (first, second, third):
        who.ok("POST", path + "/signups", 201)
    first.ok("DELETE", path + "/signups/me", 204)
    again = first.delete(path + "/signups/me")  # a retry after a lost answer
    assert again.status == 204 and again.content == b""
    seen = organiser.ok("GET", path)
    assert (seen["confirmed_count"], seen["waitlist_count"]) == (1, 1)  # nobody else was promoted or dropped
    assert second.ok("GET", path)["my_signup"] == {"status": "confirmed"}
    assert third.ok("GET", path)["my_signup"] == {"status": "waitlisted", "position": 1}
    assert api.member(branch["id"]).delete(path + "/signups/me").code == "signup_not_found"


def test_cancelling_an_activity_tells_every_signed_up_member(api):
    branch = api.org("一支部")
    organiser = api.organiser(branch["id"])
    act = published(api, organiser, branch["id"], capacity=1, waitlist=True)
    path = f"/activities/{act['id']}"
    confirmed, waiting, left = (api.member(branch["id"]) for _ in range(3))
    confirmed.ok("POST", path + "/signups", 201)
    waiting.ok("POST", path + "/signups", 201)
    left.ok("POST", path + "/signups", 201)
    left.ok("DELETE", path + "/signups/me", 204)
    cancelled = organiser.ok("POST", path + "/cancel", json={"reason": "天气原因"})
    assert cancelled["status"] == "cancelled" and cancelled["cancelled_at"]
    assert organiser.ok("POST", path + "/cancel")["status"] == "cancelled"  # again: no second notice
    for who in (confirmed, waiting):
        told = notices(api, who.id, act["id"])
        assert len(told) == 1 and "天气原因" in told[0]["summary"] and "取消" in told[0]["title"]
    assert notices(api, left.id, act["id"]) == []
    # members still see it, as cancelled, with their sign-up as it was
    seen = confirmed.ok("GET", path)
    assert seen["status"] == "cancelled" and seen["my_signup"] == {"status": "confirmed"}
    log = api.run(api.db["audit_log"].find({"target_id": act["id"], "action": "activity.cancel"}).to_list())
    assert len(log) == 1 and log[0]["reason"] == "天气原因"


# -- promotion ------------------------------------------------------------------------------------

def test_promotion_when_a_confirmed_member_cancels(api):
    branch = api.org("一支部")
    organiser = api.organiser(branch["id"])
    act = published(api, organiser, branch["id"], capacity=2, waitlist=True)
    path = f"/activities/{act['id']}"
    a, b, c, d = (api.member(branch["id"], name) for name in "甲乙丙丁")
    for who in (a, b, c, d):
        who.ok("POST", path + "/signups", 201)
    assert c.ok("GET", path)["my_signup"] == {"status": "waitlisted", "position": 1}
    a.ok("DELETE", path + "/signups/me", 204)
    assert c.ok("GET", path)["my_signup"] == {"status": "confirmed"}
    assert d.ok("GET", path)["my_signup"] == {"status": "waitlisted", "position": 1}
    assert a.ok("GET", path)["my_signup"] == {"status": "cancelled"}
    told = notices(api, c.id, act["id"])
    assert len(told) == 1 and "候补" in told[0]["title"]
    assert notices(api, d.id, act["id"]) == []
    # a waitlisted member leaving frees no place and renumbers the rest
    a.ok("POST", path + "/signups", 201)  # signing up again after cancelling: to the end of the queue
    assert a.ok("GET", path)["my_signup"] == {"status": "waitlisted", "position": 2}
    d.ok("DELETE", path + "/signups/me", 204)
    assert a.ok("GET", path)["my_signup"] == {"status": "waitlisted", "position": 1}
    counts = organiser.ok("GET", path)
    assert (counts["confirmed_count"], counts["waitlist_count"]) == (2, 1)
    # the last confirmed leaving with an empty waitlist frees the place
    a.ok("DELETE", path + "/signups/me", 204)
    b.ok("DELETE", path + "/signups/me", 204)
    counts = organiser.ok("GET", path)
    assert (counts["confirmed_count"], counts["waitlist_count"]) == (1, 0)
    roster = organiser.ok("GET", path + "/signups")
    assert [e["name"] for e in roster["confirmed"]] == ["丙"]
    assert sorted(e["name"] for e in roster["cancelled"]) == ["丁", "乙", "甲"]


def test_promotion_when_capacity_rises_and_refusal_when_it_falls_below_confirmed(api):
    branch = api.org("一支部")
    organiser = api.organiser(branch["id"])
    act = published(api, organiser, branch["id"], capacity=1, waitlist=True)
    path = f"/activities/{act['id']}"
    people = [api.member(branch["id"], f"成员{i}") for i in range(5)]
    for who in people:
        who.ok("POST", path + "/signups", 201)
    raised = organiser.ok("PATCH", path, json={"capacity": 3})
    assert (raised["capacity"], raised["confirmed_count"], raised["waitlist_count"]) == (3, 3, 2)
    assert [p.ok("GET", path)["my_signup"] for p in people] == [
        {"status": "confirmed"}, {"status": "confirmed"}, {"status": "confirmed"},
        {"status": "waitlisted", "position": 1}, {"status": "waitlisted", "position": 2}]
    assert len(notices(api, people[1].id, act["id"])) == 1 and len(notices(api, people[2].id, act["id"])) == 1
    assert notices(api, people[0].id, act["id"]) == []
    refused = organiser.patch(path, json={"capacity": 2})
    assert refused.status == 409 and refused.code == "capacity_below_confirmed"
    # raising beyond the waitlist confirms everyone waiting
    raised = organiser.ok("PATCH", path, json={"capacity": 10})
    assert (raised["confirmed_count"], raised["waitlist_count"]) == (5, 0)
    assert organiser.ok("PATCH", path, json={"capacity": 5})["capacity"] == 5
    assert api.run(api.db["audit_log"].count_documents({"target_id": act["id"], "action": "activity.update"})) == 3


def test_turning_the_waitlist_off_keeps_who_is_waiting_and_refuses_newcomers(api):
    branch = api.org("一支部")
    organiser = api.organiser(branch["id"])
    act = published(api, organiser, branch["id"], capacity=1, waitlist=True)
    path = f"/activities/{act['id']}"
    first, second, third, late = (api.member(branch["id"]) for _ in range(4))
    for who in (first, second, third):
        who.ok("POST", path + "/signups", 201)
    assert organiser.ok("PATCH", path, json={"waitlist": False})["waitlist_count"] == 2
    refused = late.post(path + "/signups")
    assert refused.status == 409 and refused.code == "activity_full"
    assert third.ok("GET", path)["my_signup"] == {"status": "waitlisted", "position": 2}
    first.ok("DELETE", path + "/signups/me", 204)  # the place still goes to the earliest waiting
    assert second.ok("GET", path)["my_signup"] == {"status": "confirmed"}
    assert third.ok("GET", path)["my_signup"] == {"status": "waitlisted", "position": 1}
    seen = organiser.ok("GET", path)
    assert (seen["confirmed_count"], seen["waitlist_count"], seen["waitlist"]) == (1, 1, False)


# -- lists, covers and the feed -------------------------------------------------------------------

def test_list_filters_and_pages(api):
    branch = api.org("一支部")
    organiser = api.organiser(branch["id"])
    member = api.member(branch["id"])
    made = [published(api, organiser, branch["id"], programme="culture") for _ in range(3)]
    organiser.ok("POST", "/activities", 201, json=activity_body(api, branch["id"]))  # a draft
    first = member.ok("GET", "/activities?limit=2")
    second = member.ok("GET", f"/activities?limit=2&cursor={first['next_cursor']}")
    assert len(first["items"]) == 2 and len(second["items"]) == 1 and second["next_cursor"] is None
    assert {a["id"] for a in first["items"] + second["items"]} == {a["id"] for a in made}
    assert member.ok("GET", "/activities?programme=unity")["items"] == []
    assert member.ok("GET", "/activities?status=draft")["items"] == []
    assert len(organiser.ok("GET", "/activities?status=draft")["items"]) == 1
    assert member.get("/activities?status=bogus").code == "invalid_request"
    assert member.get("/activities?eligible=maybe").code == "invalid_request"


def test_cover_image_is_a_file_members_in_scope_may_fetch(api):
    branch = api.org("一支部")
    other = api.org("二支部")
    organiser = api.organiser(branch["id"])
    member, stranger = api.member(branch["id"]), api.member(other["id"])
    image = png(7)
    upload = organiser.ok("POST", "/files", 201, content=image, headers={"Content-Type": "image/png",
                                                                          "X-Filename": "cover.png"})
    foreign = api.member(branch["id"]).ok("POST", "/files", 201, content=png(8),
                                          headers={"Content-Type": "image/png", "X-Filename": "x.png"})
    missing = organiser.post("/activities", json=activity_body(api, branch["id"], cover_file_id="nope"))
    assert missing.status == 422 and missing.code == "file_not_found"
    not_mine = organiser.post("/activities", json=activity_body(api, branch["id"], cover_file_id=foreign["id"]))
    assert not_mine.code == "file_not_found"
    act = organiser.ok("POST", "/activities", 201, json=activity_body(api, branch["id"], cover_file_id=upload["id"]))
    assert act["cover_file_id"] == upload["id"]
    assert member.get(f"/files/{upload['id']}").status == 404  # a draft: not yet visible
    organiser.ok("POST", f"/activities/{act['id']}/publish")
    got = member.get(f"/files/{upload['id']}")
    assert got.status == 200 and got.content == image
    assert stranger.get(f"/files/{upload['id']}").status == 404
    # replacing the cover drops the old reference
    second = organiser.ok("POST", "/files", 201, content=png(9), headers={"Content-Type": "image/png",
                                                                           "X-Filename": "c2.png"})
    changed = organiser.ok("PATCH", f"/activities/{act['id']}", json={"cover_file_id": second["id"]})
    assert changed["cover_file_id"] == second["id"]
    assert member.get(f"/files/{second['id']}").status == 200
    assert member.get(f"/files/{upload['id']}").status == 404
    assert organiser.patch(f"/activities/{act['id']}", json={"cover_file_id": "nope"}).code == "file_not_found"
    assert organiser.ok("GET", f"/activities/{act['id']}")["cover_file_id"] == second["id"]


def test_published_activity_is_in_the_feed_of_its_org_subtree(api):
    committee = api.org("二级党委", kind="committee")
    branch = api.org("一支部", parent_id=committee["id"])
    sibling = api.org("二支部", parent_id=committee["id"])
    organiser = api.organiser(branch["id"])
    member, outsider = api.member(branch["id"]), api.member(sibling["id"])

    def item(client, act_id):
        found = [i for i in client.ok("GET", "/feed?limit=50")["items"] if i["ref_id"] == act_id]
        assert len(found) <= 1
        return found[0] if found else None

    act = organiser.ok("POST", "/activities", 201, json=activity_body(api, branch["id"], location="活动室"))
    assert item(member, act["id"]) is None  # a draft is in nobody's feed
    organiser.ok("POST", f"/activities/{act['id']}/publish")
    first = item(member, act["id"])
    assert first["kind"] == "activity" and first["title"] == "读书会" and "活动室" in first["summary"]
    assert item(outsider, act["id"]) is None
    organiser.ok("POST", f"/activities/{act['id']}/publish")  # again: no new version
    assert item(member, act["id"])["version"] == first["version"]
    organiser.ok("PATCH", f"/activities/{act['id']}", json={"title": "新书分享会"})
    edited = item(member, act["id"])
    assert edited["title"] == "新书分享会" and edited["version"] > first["version"]
    organiser.ok("PATCH", f"/activities/{act['id']}", json={"capacity": 20})  # nothing members read changed
    assert item(member, act["id"])["version"] == edited["version"]
    organiser.ok("POST", f"/activities/{act['id']}/cancel", json={"reason": "场地冲突"})
    cancelled = item(member, act["id"])
    assert cancelled["title"] == "【已取消】新书分享会" and "场地冲突" in cancelled["summary"]
