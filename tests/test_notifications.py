"""Notifications (API.md §9) as members, organisers and admins use them, against the fake WeChat server:
templates configured by a root admin, grants reported by the app and spent one per message, mutes,
inactive members, the delivery log, WeChat's error codes, and a change that rolls back sending nothing."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import get_args

import pytest

from schemas.notifications import Event
from server import db as database
from server.notifications import outbox
from server.notifications.events import EVENTS, FIELD_LIMITS
from tests.builders import (
    advance,
    fail_writes,
    iso,
    new_session,
    parse,
    publish,
    published,
    remember,
    study_world,
    wait_until,
)
from tests.fake_wechat import reset

PROMOTED = "tmpl-promoted-0001"
CHANGED = "tmpl-changed-0002"
SESSION = "tmpl-session-0003"


@pytest.fixture
def wechat(fake_wechat):
    reset(fake_wechat["state"])
    return fake_wechat["state"]


def configure(api, event: str, template_id: str, **extra) -> dict:
    body = {"template_id": template_id, "page": "pages/detail/index?id={ref_id}",
            "fields": {"thing1": "title", "time2": "time", "thing3": "place"}, **extra}
    return api.admin.ok("PUT", f"/notification-templates/{event}", json=body)


def bind(api, member, openid: str) -> None:
    """The member signs in to the mini-program with WeChat once (bound by an invite)."""
    anon = api.anonymous()
    bind_token = anon.ok("POST", "/auth/wechat", json={"code": f"ok:{openid}"})["bind_token"]
    code = api.admin.ok("POST", f"/members/{member.id}/invite", 201)["invite_code"]
    anon.ok("POST", "/auth/bind", json={"bind_token": bind_token, "invite_code": code})


def accept(member, template_id: str, times: int = 1) -> list[dict]:
    items = []
    for _ in range(times):
        items = member.ok("POST", "/me/subscriptions", json={"results": {template_id: "accept"}})["items"]
    return items


def grants_of(member, template_id: str) -> int:
    return next(i["grants"] for i in member.ok("GET", "/me/subscriptions")["items"] if i["template_id"] == template_id)


def notifications(member) -> list[dict]:
    return member.ok("GET", "/me/notifications")["items"]


def settled(api, member, event: str, count: int = 1) -> list[dict]:
    """The member's notifications of `event` once `count` of them left `pending`."""
    def done():
        mine = [n for n in notifications(member) if n["event"] == event]
        return mine if len(mine) >= count and all(n["wechat"] != "pending" for n in mine) else None
    result = wait_until(done, timeout=15)
    assert result, notifications(member)
    return result


def messages_to(wechat: dict, openid: str) -> list[dict]:
    return [m for m in wechat["messages"] if m["openid"] == openid]


def waitlisted_activity(api, organiser, org_id: str, *members) -> str:
    """A published activity with one place, taken by someone else; `members` on its waitlist."""
    path = f"/activities/{published(api, organiser, org_id, capacity=1, waitlist=True)['id']}"
    api.member(org_id, "先到者").ok("POST", path + "/signups", 201)
    for member in members:
        assert member.ok("POST", path + "/signups", 201)["status"] == "waitlisted"
    return path


def signed_up_for_changes(api, openid: str, grants: int):
    """A member bound to `openid`, with `grants` grants of the `activity_changed` template, signed up for a
    published activity of their branch: (organiser, member, the activity's path)."""
    branch = api.org("第一支部")
    organiser = api.organiser(branch["id"])
    member = api.member(branch["id"])
    remember(api, organiser, member)
    bind(api, member, openid)
    configure(api, "activity_changed", CHANGED)
    accept(member, CHANGED, times=grants)
    path = f"/activities/{published(api, organiser, branch['id'])['id']}"
    member.ok("POST", path + "/signups", 201)
    return organiser, member, path


def test_the_schema_names_every_event():
    assert set(get_args(Event)) == set(EVENTS)


def test_a_promotion_reaches_the_member_with_a_grant_only_and_spends_it(api, wechat):
    branch = api.org("第一支部")
    organiser = api.organiser(branch["id"])
    granted, ungranted = api.member(branch["id"], "有授权"), api.member(branch["id"], "无授权")
    bind(api, granted, "o-granted")
    bind(api, ungranted, "o-ungranted")
    configure(api, "waitlist_promoted", PROMOTED, fields={"thing1": "title", "time2": "time", "phrase3": "result"})
    assert [i["grants"] for i in accept(granted, PROMOTED, times=2) if i["event"] == "waitlist_promoted"] == [2]
    path = waitlisted_activity(api, organiser, branch["id"], granted, ungranted)
    long_title = "学习贯彻党的二十届三中全会精神专题读书会（第一期）"
    organiser.ok("PATCH", path, json={"capacity": 3, "title": long_title})

    mine = settled(api, granted, "waitlist_promoted")
    assert [n["wechat"] for n in mine] == ["sent"] and mine[0]["ref_id"] == path.split("/")[-1]
    assert [n["wechat"] for n in settled(api, ungranted, "waitlist_promoted")] == ["no_grant"]
    sent = messages_to(wechat, "o-granted")
    assert len(sent) == 1 and messages_to(wechat, "o-ungranted") == []
    message = sent[0]
    assert message["template_id"] == PROMOTED and message["page"] == f"pages/detail/index?id={mine[0]['ref_id']}"
    starts = parse(organiser.ok("GET", path)["starts_at"]).astimezone(api.ctx.settings.tz)
    assert message["data"] == {
        "thing1": {"value": long_title[:19] + "…"},  # WeChat's thing holds 20 characters
        "time2": {"value": f"{starts.year}年{starts.month}月{starts.day}日 {starts:%H:%M}"},
        "phrase3": {"value": "候补转正"}}
    assert grants_of(granted, PROMOTED) == 1
    # both still have the notice in their feed
    for member in (granted, ungranted):
        feed = member.ok("GET", "/feed")["items"]
        assert any(i["kind"] == "notice" and i["title"].startswith("候补转正") for i in feed)


def test_wechat_43101_zeroes_the_grants_and_47003_fails_for_good(api, wechat):
    branch = api.org("第一支部")
    organiser = api.organiser(branch["id"])
    member = api.member(branch["id"])
    bind(api, member, "o-43101")
    configure(api, "activity_changed", CHANGED, fields={"thing1": "title", "time2": "time", "thing3": "note"})
    accept(member, CHANGED, times=3)
    path = f"/activities/{published(api, organiser, branch['id'])['id']}"
    member.ok("POST", path + "/signups", 201)

    wechat["send_answers_for"]["o-43101"] = [43101]
    organiser.ok("PATCH", path, json={"location": "党员活动室"})
    [first] = settled(api, member, "activity_changed")
    assert first["wechat"] == "no_grant" and grants_of(member, CHANGED) == 0

    accept(member, CHANGED, times=2)
    wechat["send_answers_for"]["o-43101"] = [47003]
    organiser.ok("PATCH", path, json={"location": "会议室"})
    changed = settled(api, member, "activity_changed", 2)
    assert changed[0]["wechat"] == "failed"
    assert grants_of(member, CHANGED) == 2  # WeChat took nothing: the grant is the member's again
    log = organiser.ok("GET", f"/notifications/deliveries?ref_id={path.split('/')[-1]}&event=activity_changed")
    assert [d["last_error"][:5] for d in log["items"]] == ["43101", "47003"]
    assert messages_to(wechat, "o-43101") == []


def test_busy_wechat_is_retried_and_sends_once(api, wechat):
    organiser, member, path = signed_up_for_changes(api, "o-busy", grants=2)

    wechat["send_answers"][:] = [-1]  # once busy: the call is made again at once
    organiser.ok("PATCH", path, json={"location": "党员活动室"})
    assert [n["wechat"] for n in settled(api, member, "activity_changed")] == ["sent"]
    assert [c["answer"] for c in wechat["send_calls"]] == [-1, 0]

    # busy on every attempt of a call: the delivery waits, and is sent once the backoff has passed
    wechat["send_answers"][:] = [-1, -1, -1]
    organiser.ok("PATCH", path, json={"location": "会议室"})
    wait_until(lambda: len(wechat["send_calls"]) == 5, timeout=10)
    pending = [n for n in notifications(member) if n["event"] == "activity_changed"][0]
    assert pending["wechat"] == "pending"
    advance(api, days=0, seconds=15)
    assert [n["wechat"] for n in settled(api, member, "activity_changed", 2)] == ["sent", "sent"]
    assert len(messages_to(wechat, "o-busy")) == 2 and grants_of(member, CHANGED) == 0
    log = organiser.ok("GET", f"/notifications/deliveries?ref_id={path.split('/')[-1]}")["items"]
    assert [d["attempts"] for d in log] == [1, 2]
    metrics = api.anonymous().get("/metrics").content.decode()
    assert 'branchline_notifications_retried_total{event="activity_changed"}' in metrics
    assert 'branchline_notifications_sent_total{event="activity_changed"} 2.0' in metrics


def test_muted_events_stay_in_the_feed_only(api, wechat):
    branch = api.org("第一支部")
    organiser = api.organiser(branch["id"])
    member = api.member(branch["id"])
    bind(api, member, "o-muted")
    configure(api, "waitlist_promoted", PROMOTED)
    accept(member, PROMOTED)
    assert member.ok("PUT", "/me/notification-preferences",
                     json={"muted": ["waitlist_promoted", "session_reminder", "waitlist_promoted"]}) \
        == {"muted": ["waitlist_promoted", "session_reminder"]}
    assert member.ok("GET", "/me/notification-preferences") == {"muted": ["waitlist_promoted", "session_reminder"]}
    refused = member.put("/me/notification-preferences", json={"muted": ["no_such_event"]})
    assert refused.status == 422 and refused.code == "invalid_request"

    path = waitlisted_activity(api, organiser, branch["id"], member)
    organiser.ok("PATCH", path, json={"capacity": 2})
    assert [n["wechat"] for n in settled(api, member, "waitlist_promoted")] == ["muted"]
    assert any(i["kind"] == "notice" for i in member.ok("GET", "/feed")["items"])
    assert wechat["send_calls"] == [] and grants_of(member, PROMOTED) == 1


def test_inactive_members_get_nothing(api, wechat):
    branch = api.org("第一支部")
    organiser = api.organiser(branch["id"])
    active, leaving = api.member(branch["id"], "在职"), api.member(branch["id"], "离开")
    for member, openid in ((active, "o-active"), (leaving, "o-leaving")):
        bind(api, member, openid)
    configure(api, "activity_cancelled", PROMOTED, fields={"thing1": "title", "thing2": "reason"})
    accept(active, PROMOTED)
    accept(leaving, PROMOTED)
    path = f"/activities/{published(api, organiser, branch['id'])['id']}"
    active.ok("POST", path + "/signups", 201)
    leaving.ok("POST", path + "/signups", 201)
    api.admin.ok("PATCH", f"/members/{leaving.id}", json={"active": False})

    reason = "场地临时维修，改期另行通知，敬请各位党员谅解"
    organiser.ok("POST", path + "/cancel", json={"reason": reason})
    [cancelled] = settled(api, active, "activity_cancelled")
    assert cancelled["wechat"] == "sent"
    assert [m["data"]["thing2"]["value"] for m in wechat["messages"]] == [reason[:19] + "…"]
    assert api.run(api.db.notification_deliveries.count_documents({"member_id": leaving.id})) == 0
    assert api.run(api.db.feed_items.count_documents({"kind": "notice", "members": leaving.id})) == 0
    assert messages_to(wechat, "o-leaving") == []


def test_a_change_that_rolls_back_sends_nothing(api, wechat, monkeypatch):
    branch = api.org("第一支部")
    organiser = api.organiser(branch["id"])
    member = api.member(branch["id"])
    bind(api, member, "o-rollback")
    configure(api, "activity_cancelled", PROMOTED)
    accept(member, PROMOTED)
    path = f"/activities/{published(api, organiser, branch['id'])['id']}"
    member.ok("POST", path + "/signups", 201)

    fail_writes(monkeypatch, "audit_log", "insert_one")  # the last write of the cancellation fails
    assert organiser.post(path + "/cancel", json={"reason": "x"}).status >= 500
    monkeypatch.undo()
    assert organiser.ok("GET", path)["status"] == "published"
    assert notifications(member) == []
    assert api.run(api.db.notification_deliveries.count_documents({})) == 0
    assert not any(i["kind"] == "notice" for i in member.ok("GET", "/feed")["items"])
    assert wechat["send_calls"] == [] and grants_of(member, PROMOTED) == 1


def test_only_a_root_admin_configures_templates(api, wechat):
    branch = api.org("第一支部")
    organiser, branch_admin, member = api.organiser(branch["id"]), api.org_admin(branch["id"]), api.member(branch["id"])
    body = {"template_id": PROMOTED, "fields": {"thing1": "title"}}
    for who in (organiser, branch_admin, member):
        refused = who.put("/notification-templates/waitlist_promoted", json=body)
        assert (refused.status, refused.code) == (403, "forbidden")
    assert api.admin.put("/notification-templates/no_such_event", json=body).code == "not_found"
    for bad, field in (({"fields": {"thing1": "reason"}}, "fields.thing1"),  # promotion offers no reason
                       ({"fields": {"thing1": "time", "phrase2": "time"}}, "fields.phrase2"),  # a time in a phrase
                       ({"fields": {"color9": "title"}}, "fields.color9"),  # not a WeChat keyword
                       ({"lead_minutes": 30}, "lead_minutes")):  # not a reminder
        refused = api.admin.put("/notification-templates/waitlist_promoted", json={**body, **bad})
        assert (refused.status, refused.code) == (422, "invalid_request"), bad
        assert [e["field"] for e in refused.json["errors"]] == [field]
    for lead in (0, 1441):
        refused = api.admin.put("/notification-templates/session_reminder", json={**body, "lead_minutes": lead})
        assert refused.code == "invalid_request"

    configure(api, "session_reminder", SESSION, lead_minutes=45)
    configure(api, "waitlist_promoted", PROMOTED, enabled=False)
    items = {i["event"]: i for i in member.ok("GET", "/notification-templates")["items"]}
    assert set(items) == set(EVENTS)
    assert items["session_reminder"] == {
        "event": "session_reminder", "template_id": SESSION, "page": "pages/detail/index?id={ref_id}",
        "enabled": True, "lead_minutes": 45, "fields": {"thing1": "title", "time2": "time", "thing3": "place"},
        "values": ["title", "time", "place", "org"],
        "fits": {"title": ["name", "phrase", "thing"], "time": ["date", "thing", "time"],
                 "place": ["name", "phrase", "thing"], "org": ["name", "phrase", "thing"]}}
    assert items["waitlist_promoted"]["enabled"] is False
    assert items["activity_cancelled"]["template_id"] is None and items["activity_cancelled"]["enabled"] is False
    assert "reason" in items["activity_cancelled"]["values"]


def test_the_kinds_a_value_fits_are_the_ones_a_mapping_is_accepted_with(api, wechat):
    """What the console checks a row against before sending (`fits`) is what the server accepts: every value
    of every event, tried in a keyword of every WeChat kind."""
    for item in api.admin.ok("GET", "/notification-templates")["items"]:
        assert list(item["fits"]) == item["values"]
        for value, kinds in item["fits"].items():
            for kind in FIELD_LIMITS:
                answer = api.admin.put(f"/notification-templates/{item['event']}",
                                       json={"template_id": "tpl-fits", "fields": {f"{kind}1": value}})
                assert answer.status == (200 if kind in kinds else 422), (item["event"], value, kind)


def test_grants_count_accepts_only_for_templates_in_use(api, wechat):
    branch = api.org("第一支部")
    member = api.member(branch["id"])
    configure(api, "waitlist_promoted", PROMOTED)
    configure(api, "activity_cancelled", PROMOTED)  # one template for two events: one count
    configure(api, "session_scheduled", SESSION)
    items = member.ok("POST", "/me/subscriptions", json={"results": {
        PROMOTED: "accept", SESSION: "reject", "tmpl-unknown": "accept"}})["items"]
    assert items == [{"event": "activity_cancelled", "template_id": PROMOTED, "grants": 1},
                     {"event": "session_scheduled", "template_id": SESSION, "grants": 0},
                     {"event": "waitlist_promoted", "template_id": PROMOTED, "grants": 1}]
    member.ok("POST", "/me/subscriptions", json={"results": {SESSION: "ban", PROMOTED: "accept"}})
    assert grants_of(member, PROMOTED) == 2 and grants_of(member, SESSION) == 0
    for bad in ({"results": {}}, {"results": {PROMOTED: "maybe"}}, {"results": {"bad id!": "accept"}}):
        assert member.post("/me/subscriptions", json=bad).code == "invalid_request"
    for _ in range(60):  # a client repeating "accept" cannot pile up grants without end
        member.ok("POST", "/me/subscriptions", json={"results": {PROMOTED: "accept"}})
    assert grants_of(member, PROMOTED) == 50


def test_sessions_and_decisions_notify_their_members_and_organisers_see_the_log(api, wechat):
    w = study_world(api, members=2)
    first, second = w.members
    bind(api, first, "o-first")
    configure(api, "session_scheduled", SESSION)
    configure(api, "session_changed", SESSION)
    configure(api, "session_cancelled", SESSION, fields={"thing1": "title", "thing2": "reason"})
    configure(api, "request_decided", PROMOTED, fields={"thing1": "title", "phrase2": "result"})
    accept(first, SESSION, times=3)
    accept(first, PROMOTED)

    session = new_session(api, w.organiser, w.branch["id"], start_in=timedelta(hours=3))
    sid = session["id"]
    assert [n["wechat"] for n in settled(api, first, "session_scheduled")] == ["sent"]
    assert [n["wechat"] for n in settled(api, second, "session_scheduled")] == ["no_grant"]
    assert notifications(w.outsider) == []  # not an attendee
    w.organiser.ok("PATCH", f"/study/sessions/{sid}", json={"title": "只改标题"})  # neither time nor place
    starts = parse(session["starts_at"]) + timedelta(hours=1)
    w.organiser.ok("PATCH", f"/study/sessions/{sid}", json={"starts_at": iso(starts),
                                                            "ends_at": iso(starts + timedelta(hours=1))})
    [changed] = settled(api, first, "session_changed")
    assert changed["title"].startswith("学习时间变更") and changed["wechat"] == "sent"

    leave = first.ok("POST", "/study/requests", 201, json={"session_id": sid, "kind": "leave", "reason": "出差"})
    w.organiser.ok("POST", f"/study/requests/{leave['id']}/approve", json={"note": "同意"})
    [decided] = settled(api, first, "request_decided")
    assert decided["ref_kind"] == "study_request" and decided["ref_id"] == leave["id"]
    assert messages_to(wechat, "o-first")[-1]["data"] == {"thing1": {"value": "请假申请：只改标题"},
                                                           "phrase2": {"value": "已批准"}}

    w.organiser.ok("POST", f"/study/sessions/{sid}/cancel", json={"reason": "与上级会议冲突"})
    [cancelled] = settled(api, first, "session_cancelled")
    assert cancelled["wechat"] == "sent" and grants_of(first, SESSION) == 0
    assert [n["event"] for n in notifications(first)] == [
        "session_cancelled", "request_decided", "session_changed", "session_scheduled"]

    log = w.organiser.ok("GET", f"/notifications/deliveries?ref_id={sid}")
    assert {d["wechat"] for d in log["items"] if d["name"] == "张书记"} == {"no_grant"}  # an attendee too
    assert sorted((d["name"], d["event"], d["wechat"]) for d in log["items"] if d["name"] != "张书记") == [
        ("党员0", "session_cancelled", "sent"), ("党员0", "session_changed", "sent"),
        ("党员0", "session_scheduled", "sent"),
        ("党员1", "session_cancelled", "no_grant"), ("党员1", "session_changed", "no_grant"),
        ("党员1", "session_scheduled", "no_grant")]
    assert all(d["attempts"] in (0, 1) and d["at"] for d in log["items"])
    only = w.organiser.ok("GET", f"/notifications/deliveries?ref_id={sid}&event=session_changed&limit=1")
    assert [d["event"] for d in only["items"]] == ["session_changed"] and only["next_cursor"]
    rest = w.organiser.ok("GET", f"/notifications/deliveries?ref_id={sid}&event=session_changed&limit=1"
                                 f"&cursor={only['next_cursor']}")
    assert len(rest["items"]) == 1 and rest["items"][0]["member_id"] != only["items"][0]["member_id"]
    # the delivery log is the organisers' of the session's org: to anyone else it does not exist
    for who in (w.outsider_organiser, first, w.outsider):
        refused = who.get(f"/notifications/deliveries?ref_id={sid}")
        assert (refused.status, refused.code) == (404, "not_found")
    assert w.organiser.get("/notifications/deliveries?ref_id=nothing-here").code == "not_found"
    # an announcement nothing was sent about yet: an empty log for its organisers, nothing for anyone else
    quiet = publish(api, w.organiser, w.branch["id"], "无提醒的通知")
    assert w.organiser.ok("GET", f"/notifications/deliveries?ref_id={quiet}") == {"items": [], "next_cursor": None}
    assert w.outsider_organiser.get(f"/notifications/deliveries?ref_id={quiet}").code == "not_found"
    assert w.organiser.get("/notifications/deliveries").code == "invalid_request"
    assert w.organiser.get(f"/notifications/deliveries?ref_id={sid}&event=nope").code == "invalid_request"
    # a member's own list is theirs alone, paged
    page = first.ok("GET", "/me/notifications?limit=2")
    assert len(page["items"]) == 2 and page["next_cursor"]
    assert len(first.ok("GET", f"/me/notifications?cursor={page['next_cursor']}")["items"]) == 2
    assert notifications(w.outsider) == []


@pytest.mark.settings(wechat_appid="")
def test_without_an_appid_everything_but_wechat_works(api, wechat):
    branch = api.org("第一支部")
    organiser = api.organiser(branch["id"])
    member = api.member(branch["id"])
    configure(api, "waitlist_promoted", PROMOTED)
    accept(member, PROMOTED)
    path = waitlisted_activity(api, organiser, branch["id"], member)
    organiser.ok("PATCH", path, json={"capacity": 2})
    assert [n["wechat"] for n in settled(api, member, "waitlist_promoted")] == ["off"]
    assert wechat["send_calls"] == [] and wechat["token_fetches"] == []


def test_the_quota_pauses_sending_and_a_timed_out_message_is_never_sent_twice(api, wechat):
    organiser, member, path = signed_up_for_changes(api, "o-quota", grants=3)
    ref_id = path.split("/")[-1]

    wechat["send_answers"][:] = [45009]  # the day's quota is used up: nothing more goes out for a while
    organiser.ok("PATCH", path, json={"location": "党员活动室"})
    assert wait_until(lambda: wechat["send_calls"], timeout=10)
    organiser.ok("PATCH", path, json={"location": "会议室"})
    log = lambda: organiser.ok("GET", f"/notifications/deliveries?ref_id={ref_id}")["items"]  # noqa: E731
    assert wait_until(lambda: len(log()) == 2 and log()[0]["last_error"], timeout=10)
    assert [(d["wechat"], d["attempts"]) for d in log()] == [("pending", 0), ("pending", 0)]
    assert len(wechat["send_calls"]) == 1 and grants_of(member, CHANGED) == 3
    advance(api, minutes=11)
    assert wait_until(lambda: [d["wechat"] for d in log()] == ["sent", "sent"], timeout=15), log()
    assert len(messages_to(wechat, "o-quota")) == 2 and grants_of(member, CHANGED) == 1

    # WeChat takes the message but answers after our timeout: it may have been delivered, so it is not sent again
    wechat["send_answers"][:] = ["slow"]
    organiser.ok("PATCH", path, json={"location": "礼堂"})
    assert wait_until(lambda: len(log()) == 3 and log()[2]["wechat"] == "failed", timeout=15), log()
    assert "may have been delivered" in log()[2]["last_error"]
    advance(api, minutes=20)
    assert wait_until(lambda: len(messages_to(wechat, "o-quota")) == 3, timeout=5)  # the slow answer's message
    assert [c["answer"] for c in wechat["send_calls"]] == [45009, 0, 0, "slow"]
    metrics = api.anonymous().get("/metrics").content.decode()
    assert 'branchline_notifications_failed_total{event="activity_changed",reason="uncertain"} 1.0' in metrics


def test_a_dedupe_key_enqueues_once_however_many_transactions_race(api, wechat):
    """The reminders' guarantee (one per member and occurrence), on the outbox's own interface: concurrent
    transactions enqueueing the same key commit one set of notices, and none of them fails."""
    branch = api.org("第一支部")
    members = [api.member(branch["id"], f"党员{i}") for i in range(3)]

    async def remind(key: str) -> int:
        async def work(txn):
            return await outbox.enqueue(api.ctx, txn, event="session_reminder", member_ids=[m.id for m in members],
                                        ref_kind="study_session", ref_id="s-1", org_id=branch["id"],
                                        title="学习提醒", summary="半小时后开始", values={"title": "党小组会"},
                                        dedupe_key=key)
        return await database.transaction(api.ctx, work)

    async def race(key: str) -> list[int]:
        return await asyncio.gather(*(remind(key) for _ in range(4)))

    assert sorted(api.run(race("s-1@09:00"))) == [0, 0, 0, 3]
    assert api.run(remind("s-1@09:00")) == 0
    assert api.run(remind("s-1@10:00")) == 3  # moved: a new occurrence, reminded again
    for member in members:
        assert [n["event"] for n in notifications(member)] == ["session_reminder", "session_reminder"]
