"""Reminders (API.md §9) with the clock moved: `session_reminder` to the attendees and `activity_reminder`
to the confirmed members at the template's lead time, once per member and start time, again for a new
time, never for a cancelled occurrence; `signup_opens` only to the members who asked; once with two
processes. Messages are counted on the fake WeChat server, notices and deliveries through the API."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.builders import (
    activity_body,
    advance,
    allow,
    bind_wechat,
    count,
    iso,
    new_session,
    remember,
    study_world,
    wait_until,
)

# The reminder task looks every 2 s (server/notifications/reminders.py TICK_SECONDS); a check that
# something did NOT happen waits this long, enough for a few ticks.
QUIET = 5.0


def template(api, event: str, **extra) -> str:
    """Configure `event` with a fresh template id (the fake server's messages are counted by it)."""
    template_id = f"tpl-{event}-{uuid.uuid4().hex[:8]}"
    api.admin.ok("PUT", f"/notification-templates/{event}", json={
        "template_id": template_id, "page": "pages/item/index?id={ref_id}",
        "fields": {"thing1": "title", "time2": "time"}, "enabled": True, **extra})
    return template_id


def messages(fake_wechat, template_id: str) -> list[str]:
    """The openids WeChat accepted a message of this template for."""
    return [m["openid"] for m in fake_wechat["state"]["messages"] if m["template_id"] == template_id]


def notices(client, event: str, ref_id: str) -> list[dict]:
    return [n for n in client.ok("GET", "/me/notifications?limit=100")["items"]
            if n["event"] == event and n["ref_id"] == ref_id]


def test_session_reminder_once_again_when_moved_never_when_cancelled(api, fake_wechat):
    reminder = template(api, "session_reminder", lead_minutes=30)
    cancelled_tpl = template(api, "session_cancelled")
    w = study_world(api, members=3)
    granted, ungranted, absent = w.members
    openid = bind_wechat(api, granted)
    allow(granted, reminder, times=3)
    bind_wechat(api, ungranted)  # bound but never allowed: a notice, no message
    session = new_session(api, w.organiser, w.branch["id"], start_in=timedelta(minutes=40),
                          attendees=[granted.id, ungranted.id])
    sid = session["id"]
    doomed = new_session(api, w.organiser, w.branch["id"], start_in=timedelta(minutes=40), title="取消的会",
                         attendees=[granted.id, ungranted.id])["id"]
    allow(granted, cancelled_tpl)

    advance(api, minutes=5)  # 35 minutes ahead: not due yet
    time.sleep(QUIET)
    assert messages(fake_wechat, reminder) == [] and notices(granted, "session_reminder", sid) == []
    w.organiser.ok("POST", f"/study/sessions/{doomed}/cancel", json={"reason": "临时有会"})

    advance(api, minutes=6)  # 29 minutes ahead: due
    assert wait_until(lambda: messages(fake_wechat, reminder) == [openid], timeout=15)
    assert wait_until(lambda: len(notices(ungranted, "session_reminder", sid)) == 1, timeout=15)
    [note] = notices(granted, "session_reminder", sid)
    assert note["wechat"] == "sent" and note["ref_kind"] == "study_session"
    assert notices(ungranted, "session_reminder", sid)[0]["wechat"] == "no_grant"
    assert notices(absent, "session_reminder", sid) == []  # not an attendee
    # The cancelled one: its cancellation went out, its reminder never does.
    assert wait_until(lambda: messages(fake_wechat, cancelled_tpl) == [openid], timeout=15)
    assert notices(granted, "session_reminder", doomed) == []

    time.sleep(QUIET)  # later ticks find it again and send nothing more
    advance(api, minutes=10)
    time.sleep(QUIET)
    assert messages(fake_wechat, reminder) == [openid] and len(notices(granted, "session_reminder", sid)) == 1
    assert notices(granted, "session_reminder", doomed) == []

    # Moved two hours later: reminded again, for the new time, at the new time's lead.
    starts = datetime.fromisoformat(session["starts_at"].replace("Z", "+00:00")) + timedelta(hours=2)
    w.organiser.ok("PATCH", f"/study/sessions/{sid}", json={
        "starts_at": iso(starts), "ends_at": iso(starts + timedelta(hours=1))})
    time.sleep(QUIET)
    assert messages(fake_wechat, reminder) == [openid]
    advance(api, hours=1, minutes=55)  # 24 minutes before the new start (it was 2 h 19 min ahead)
    assert wait_until(lambda: messages(fake_wechat, reminder) == [openid, openid], timeout=15)
    assert wait_until(lambda: len(notices(ungranted, "session_reminder", sid)) == 2, timeout=15)
    time.sleep(QUIET)
    assert len(messages(fake_wechat, reminder)) == 2
    # Organisers see the deliveries of their session.
    log = w.organiser.ok("GET", f"/notifications/deliveries?ref_id={sid}&event=session_reminder")["items"]
    assert sorted(d["member_id"] for d in log) == sorted([granted.id, granted.id, ungranted.id, ungranted.id])
    assert w.outsider_organiser.get(f"/notifications/deliveries?ref_id={sid}").status in (403, 404)


def test_a_reminder_due_while_no_process_looked_is_still_sent_before_the_start(api, fake_wechat):
    """The clock jumps past the due moment (a process that was down then): sent as long as the start
    has not passed; a session whose start passed meanwhile is not reminded late."""
    reminder = template(api, "session_reminder", lead_minutes=30)
    w = study_world(api, members=1)
    member = w.members[0]
    openid = bind_wechat(api, member)
    allow(member, reminder, times=2)
    late = new_session(api, w.organiser, w.branch["id"], start_in=timedelta(minutes=50), attendees=[member.id])
    missed = new_session(api, w.organiser, w.branch["id"], start_in=timedelta(minutes=45), title="错过的会",
                         attendees=[member.id])
    advance(api, minutes=49)  # due 29 minutes ago for `late`; `missed` started 4 minutes ago
    assert wait_until(lambda: messages(fake_wechat, reminder) == [openid], timeout=15)
    assert len(notices(member, "session_reminder", late["id"])) == 1
    assert notices(member, "session_reminder", missed["id"]) == []


@pytest.mark.settings(retention_sweep_seconds=0.1)
def test_a_sent_reminders_dedupe_keys_are_purged_after_a_week_and_nothing_is_sent_again(api, fake_wechat):
    reminder = template(api, "session_reminder", lead_minutes=30)
    w = study_world(api, members=1)
    member = w.members[0]
    openid = bind_wechat(api, member)
    allow(member, reminder, times=3)

    def keys() -> int:
        return count(api, "notification_dedupe", {"_id": {"$regex": f"^session_reminder\\|{member.id}\\|"}})

    old = new_session(api, w.organiser, w.branch["id"], start_in=timedelta(minutes=20), attendees=[member.id])
    assert wait_until(lambda: messages(fake_wechat, reminder) == [openid], timeout=15)
    assert keys() == 1
    advance(api, days=6, hours=23)  # the session is long past; its key is not a week old yet
    time.sleep(QUIET)
    assert keys() == 1
    advance(api, hours=2)
    assert wait_until(lambda: keys() == 0)
    # A new session's key is kept, and the purged one's session is not reminded again.
    new_session(api, w.organiser, w.branch["id"], start_in=timedelta(minutes=20), attendees=[member.id])
    assert wait_until(lambda: messages(fake_wechat, reminder) == [openid, openid], timeout=15)
    time.sleep(QUIET)
    assert keys() == 1 and len(messages(fake_wechat, reminder)) == 2
    assert len(notices(member, "session_reminder", old["id"])) == 1


def test_activity_reminder_goes_to_confirmed_members_only(api, fake_wechat):
    reminder = template(api, "activity_reminder", lead_minutes=60)
    branch = api.org("一支部")
    organiser = api.organiser(branch["id"])
    confirmed, waitlisted = api.member(branch["id"], "确认"), api.member(branch["id"], "候补")
    remember(api, organiser, confirmed, waitlisted)
    ids = {c.id: bind_wechat(api, c) for c in (confirmed, waitlisted)}
    for client in (confirmed, waitlisted):
        allow(client, reminder)
    act = organiser.ok("POST", "/activities", 201, json=activity_body(
        api, branch["id"], capacity=1, waitlist=True, closes=timedelta(minutes=10), starts=timedelta(minutes=90)))
    path = f"/activities/{act['id']}"
    organiser.ok("POST", path + "/publish")
    assert confirmed.ok("POST", path + "/signups", 201)["status"] == "confirmed"
    assert waitlisted.ok("POST", path + "/signups", 201)["status"] == "waitlisted"
    advance(api, minutes=31)  # 59 minutes before the start
    assert wait_until(lambda: messages(fake_wechat, reminder) == [ids[confirmed.id]], timeout=15)
    time.sleep(QUIET)
    assert messages(fake_wechat, reminder) == [ids[confirmed.id]]
    assert notices(waitlisted, "activity_reminder", act["id"]) == []
    assert len(notices(confirmed, "activity_reminder", act["id"])) == 1


def test_signup_opens_only_to_the_members_who_asked(api, fake_wechat):
    opens = template(api, "signup_opens")
    branch, other = api.org("一支部"), api.org("二支部")
    organiser = api.organiser(branch["id"])
    asker, changed_mind, silent = (api.member(branch["id"], n) for n in ("问", "变", "静"))
    outsider = api.member(other["id"], "外")
    remember(api, organiser, asker, changed_mind, silent, outsider)
    openids = {c.id: bind_wechat(api, c) for c in (asker, changed_mind, silent)}
    for client in (asker, changed_mind, silent):
        allow(client, opens)
    act = organiser.ok("POST", "/activities", 201, json=activity_body(
        api, branch["id"], opens=timedelta(hours=1), closes=timedelta(days=1)))
    path = f"/activities/{act['id']}/signup-reminder"
    # A draft: its members cannot see it; the organiser is told it is not open.
    assert asker.put(path).code == "activity_not_found"
    organiser.ok("POST", f"/activities/{act['id']}/publish")

    assert asker.ok("GET", path)["state"] == "none"
    first = asker.ok("PUT", path)
    assert first["state"] == "waiting" and first["signup_opens_at"] == act["signup_opens_at"]
    assert asker.ok("PUT", path) == first  # idempotent
    changed_mind.ok("PUT", path)
    assert changed_mind.delete(path).status == 204 and changed_mind.delete(path).status == 204
    assert changed_mind.ok("GET", path)["state"] == "none"
    assert outsider.put(path).code == "activity_not_found"
    assert asker.ok("GET", path)["state"] == "waiting"

    advance(api, minutes=30)
    time.sleep(QUIET)
    assert messages(fake_wechat, opens) == []
    advance(api, minutes=31)  # sign-up opened a minute ago
    assert wait_until(lambda: messages(fake_wechat, opens) == [openids[asker.id]], timeout=15)
    assert wait_until(lambda: asker.ok("GET", path)["state"] == "sent", timeout=15)
    [note] = notices(asker, "signup_opens", act["id"])
    assert note["wechat"] == "sent"
    time.sleep(QUIET)
    assert messages(fake_wechat, opens) == [openids[asker.id]]
    assert notices(silent, "signup_opens", act["id"]) == [] and notices(changed_mind, "signup_opens", act["id"]) == []
    # Now it is open: asking is pointless.
    assert silent.put(path).code == "signup_already_open"
    asker.ok("POST", f"/activities/{act['id']}/signups", 201)


def test_signup_reminder_refusals(api):
    branch = api.org("一支部")
    organiser = api.organiser(branch["id"])
    member = api.member(branch["id"])
    remember(api, organiser, member)
    cancelled = organiser.ok("POST", "/activities", 201,
                             json=activity_body(api, branch["id"], opens=timedelta(hours=1)))
    organiser.ok("POST", f"/activities/{cancelled['id']}/publish")
    member.ok("PUT", f"/activities/{cancelled['id']}/signup-reminder")
    organiser.ok("POST", f"/activities/{cancelled['id']}/cancel", json={"reason": "天气"})
    assert member.put(f"/activities/{cancelled['id']}/signup-reminder").code == "activity_cancelled"
    # The waiting request of a cancelled activity is dropped, never sent.
    advance(api, hours=2)
    assert wait_until(lambda: member.ok("GET", f"/activities/{cancelled['id']}/signup-reminder")["state"]
                      == "dropped", timeout=15)
    draft = organiser.ok("POST", "/activities", 201, json=activity_body(api, branch["id"], opens=timedelta(hours=1)))
    assert organiser.put(f"/activities/{draft['id']}/signup-reminder").code == "signup_not_open"
    assert member.put("/activities/nope/signup-reminder").code == "activity_not_found"
    # As a sign-up would be: someone the programme's rules leave out is told so now, not at the opening.
    women_only = organiser.ok("POST", "/activities", 201, json=activity_body(
        api, branch["id"], programme="women", opens=timedelta(hours=1)))
    organiser.ok("POST", f"/activities/{women_only['id']}/publish")
    assert member.put(f"/activities/{women_only['id']}/signup-reminder").code == "not_eligible"  # a man
    closed = organiser.ok("POST", "/activities", 201, json=activity_body(
        api, branch["id"], opens=timedelta(hours=-2), closes=timedelta(hours=-1), starts=timedelta(days=1)))
    organiser.ok("POST", f"/activities/{closed['id']}/publish")
    assert member.put(f"/activities/{closed['id']}/signup-reminder").code == "signup_closed"


def test_reminded_once_with_two_processes(start_server, fake_wechat, monkeypatch):
    """Two `python -m server` processes on one database, real time: the session is due at once (it
    starts in 20 minutes, lead 30), and each attendee gets one reminder."""
    for name, value in (("APPID", "wx-test-app"), ("SECRET", "wx-test-secret"), ("API_BASE", fake_wechat["base"])):
        monkeypatch.setenv(f"BRANCHLINE_WECHAT_{name}", value)  # the processes inherit the environment
    server = start_server(processes=2)
    admin = server.admin()
    template_id = f"tpl-two-{uuid.uuid4().hex[:8]}"
    admin.ok("PUT", "/notification-templates/session_reminder", json={
        "template_id": template_id, "page": "pages/s/index?id={ref_id}", "fields": {"thing1": "title"},
        "enabled": True, "lead_minutes": 30})
    branch = admin.ok("POST", "/orgs", 201, json={"name": "一支部", "kind": "branch",
                                                  "parent_id": admin.member["org_id"]})
    members, openids = [], []
    for i in range(6):
        body = admin.ok("POST", "/members", 201, json={
            "name": f"党员{i}", "phone": f"1350000{i:04d}", "org_id": branch["id"], "gender": "male",
            "birth_date": "1990-01-01", "party_status": "full", "tags": []})
        client = server.as_member(body)
        openid = f"oid-two-{uuid.uuid4().hex[:8]}"
        anon = httpx.Client(base_url=server.base_url + "/api/v1")
        bind_token = anon.post("/auth/wechat", json={"code": f"ok:{openid}"}).json()["bind_token"]
        code = admin.ok("POST", f"/members/{body['id']}/invite", 201)["invite_code"]
        assert anon.post("/auth/bind", json={"bind_token": bind_token, "invite_code": code}).status_code == 200
        client.ok("POST", "/me/subscriptions", json={"results": {template_id: "accept"}})
        members.append(client)
        openids.append(openid)
    starts = datetime.now(UTC) + timedelta(minutes=20)
    admin.ok("POST", "/study/sessions", 201, json={
        "org_id": branch["id"], "track": "group_meeting", "title": "党小组会", "starts_at": iso(starts),
        "ends_at": iso(starts + timedelta(hours=1)), "attendees": [m.id for m in members]})
    assert wait_until(lambda: sorted(messages(fake_wechat, template_id)) == sorted(openids), timeout=30)
    time.sleep(QUIET)
    assert sorted(messages(fake_wechat, template_id)) == sorted(openids)
