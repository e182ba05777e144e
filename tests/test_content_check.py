"""Content checks of members' free text (API.md §10) with BRANCHLINE_CONTENT_CHECK=wechat, against the fake
WeChat server's markers: RISKY is refused (422 content_rejected, nothing stored), REVIEW is stored flagged
for organisers, DOWN (WeChat unreachable) is stored flagged unchecked, as is text from someone without a
bound WeChat identity. With the check off nothing is sent to WeChat and nothing is flagged."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.builders import activity_checkin, bind_wechat, count, new_session, started_with_a_signup, study_world

wechat_checks = pytest.mark.settings(content_check="wechat")


def checks_of(fake_wechat, openid: str) -> list[dict]:
    return [c for c in fake_wechat["state"]["sec_checks"] if c["openid"] == openid]


@wechat_checks
def test_feedback_comments_are_checked(api, fake_wechat):
    organiser, member, path = started_with_a_signup(api)
    openid = bind_wechat(api, member)
    activity_checkin(organiser, member, path)
    refused = member.post(path + "/feedback", json={"rating": 4, "comment": "这段话 RISKY 不该发"})
    assert refused.status == 422 and refused.code == "content_rejected"
    assert refused.json["errors"][0]["field"] == "comment"
    assert count(api, "activity_feedback", {}) == 0  # nothing stored: the member rewords it
    [check] = checks_of(fake_wechat, openid)
    assert check["version"] == 2 and check["scene"] == 2 and "RISKY" in check["content"]

    flagged = member.ok("POST", path + "/feedback", 201, json={"rating": 4, "comment": "请 REVIEW 一下"})
    assert flagged["content_flag"] == "review"
    [comment] = organiser.ok("GET", path + "/feedback")["comments"]
    assert comment["content_flag"] == "review" and comment["comment"] == "请 REVIEW 一下"


@wechat_checks
def test_request_reasons_and_self_study_notes_are_checked(api, fake_wechat):
    w = study_world(api, members=2)
    writer, other = w.members
    openid = bind_wechat(api, writer)
    sid = new_session(api, w.organiser, w.branch["id"], start_in=timedelta(days=1))["id"]
    passed = writer.ok("POST", "/study/requests", 201, json={"session_id": sid, "kind": "leave", "reason": "出差"})
    assert passed["content_flag"] is None
    assert checks_of(fake_wechat, openid)[-1]["scene"] == 1
    risky = writer.post("/study/self-study", json={"track": "self_study", "minutes": 30, "material": "党章",
                                                   "note": "RISKY", "date": api.clock.now().date().isoformat()})
    assert risky.status == 422 and risky.code == "content_rejected"
    assert count(api, "study_self_study", {"member_id": writer.id}) == 0
    # WeChat unreachable: stored, flagged unchecked (nothing the member wrote is lost).
    noted = writer.ok("POST", "/study/self-study", 201, json={
        "track": "self_study", "minutes": 30, "material": "党章", "note": "读了第一章 DOWN",
        "date": api.clock.now().date().isoformat()})
    assert noted["content_flag"] == "unchecked"
    assert writer.ok("GET", "/study/self-study")["items"][0]["content_flag"] == "unchecked"
    # No bound WeChat identity: WeChat cannot check it, so it is stored unchecked, without a call.
    before = len(fake_wechat["state"]["sec_checks"])
    unbound = other.ok("POST", "/study/requests", 201, json={"session_id": sid, "kind": "leave", "reason": "生病"})
    assert unbound["content_flag"] == "unchecked" and len(fake_wechat["state"]["sec_checks"]) == before
    listed = w.organiser.ok("GET", f"/study/requests?session_id={sid}")["items"]
    assert {r["member_id"]: r["content_flag"] for r in listed}[other.id] == "unchecked"


@wechat_checks
def test_suggestions_are_checked_also_anonymous_ones(api, fake_wechat):
    w = study_world(api, members=1)
    member = w.members[0]
    openid = bind_wechat(api, member)
    refused = member.post("/suggestions", json={"text": "RISKY 的建议", "category": "work", "anonymous": True})
    assert refused.status == 422 and refused.code == "content_rejected"
    assert refused.json["errors"][0]["field"] == "text"
    assert count(api, "suggestions", {}) == 0 and count(api, "suggestion_authors", {}) == 0
    assert checks_of(fake_wechat, openid)[-1]["scene"] == 3
    member.ok("POST", "/suggestions", 201, json={"text": "请 REVIEW 这条", "category": "app", "anonymous": True})
    [listed] = w.organiser.ok("GET", "/suggestions")["items"]
    assert listed["content_flag"] == "review" and listed["author"] is None


def test_with_the_check_off_nothing_goes_to_wechat(api, fake_wechat):
    organiser, member, path = started_with_a_signup(api)
    openid = bind_wechat(api, member)
    activity_checkin(organiser, member, path)
    done = member.ok("POST", path + "/feedback", 201, json={"rating": 5, "comment": "RISKY 也照存"})
    assert done["content_flag"] is None and checks_of(fake_wechat, openid) == []
