"""POST /announcements/{id}/remind (API.md §9): an organiser reminds the audience members who have not
read an announcement (a must-read: not acknowledged), once in 24 hours, also when pressed at once."""

from __future__ import annotations

from datetime import timedelta

from tests.builders import advance, iso, publish, remember, two_branches, wait_until


def reminded(api, announcement_id: str) -> list[str]:
    """The members a must_read_reminder was queued for (their deliveries)."""
    docs = api.run(api.db["notification_deliveries"].find(
        {"event": "must_read_reminder", "ref_id": announcement_id}, {"member_id": 1}).to_list())
    return sorted(d["member_id"] for d in docs)


def test_remind_the_members_who_have_not_acknowledged_a_must_read(api):
    w = two_branches(api)
    organiser, m1, m2 = w["org_a"], w["m1"], w["m2"]
    remember(api, organiser, m1, m2, w["mb"])
    aid = organiser.ok("POST", "/announcements", 201, json={
        "org_id": w["a"]["id"], "title": "支部大会通知", "body": "周五下午三点。", "must_read": True})["id"]
    assert m1.post(f"/announcements/{aid}/ack").status == 204
    assert m2.post(f"/announcements/{aid}/read").status == 204  # read, not acknowledged: still reminded
    receipts = organiser.ok("GET", f"/announcements/{aid}/receipts")
    expected = sorted({m["member_id"] for m in receipts["unread_members"]} | {m2.id})
    assert m1.id not in expected and organiser.id in expected  # the organiser is in the audience too

    answer = organiser.ok("POST", f"/announcements/{aid}/remind", 202)
    assert answer == {"queued": len(expected)} and reminded(api, aid) == expected
    [notice] = [n for n in m2.ok("GET", "/me/notifications")["items"] if n["event"] == "must_read_reminder"]
    assert notice["ref_kind"] == "announcement" and notice["ref_id"] == aid
    assert wait_until(lambda: any(i.get("kind") == "notice" for i in m2.ok("GET", "/feed?limit=100")["items"]))
    # Once in 24 hours.
    again = organiser.post(f"/announcements/{aid}/remind")
    assert again.status == 409 and again.code == "reminder_too_soon"
    advance(api, hours=23, minutes=59)
    assert organiser.post(f"/announcements/{aid}/remind").code == "reminder_too_soon"
    m2.post(f"/announcements/{aid}/ack")
    advance(api, minutes=2)
    assert organiser.ok("POST", f"/announcements/{aid}/remind", 202) == {"queued": len(expected) - 1}
    assert reminded(api, aid).count(m2.id) == 1


def test_plain_announcement_reminds_the_unread_and_refusals(api):
    w = two_branches(api)
    organiser, m1, m2, outsider = w["org_a"], w["m1"], w["m2"], w["mb"]
    aid = publish(api, organiser, w["a"]["id"], "学习通知")
    m1.post(f"/announcements/{aid}/read")
    # Only the organisers of its org remind; others do not learn it exists.
    assert m2.post(f"/announcements/{aid}/remind").code == "forbidden"
    other_org = api.organiser(w["b"]["id"])
    assert other_org.post(f"/announcements/{aid}/remind").code == "announcement_not_found"
    assert outsider.post(f"/announcements/{aid}/remind").code == "announcement_not_found"
    assert organiser.post("/announcements/nope/remind").code == "announcement_not_found"
    queued = organiser.ok("POST", f"/announcements/{aid}/remind", 202)["queued"]
    assert m1.id not in reminded(api, aid) and m2.id in reminded(api, aid) and queued == len(reminded(api, aid))
    # Not on air: scheduled for later, or retracted.
    later = organiser.ok("POST", "/announcements", 201, json={
        "org_id": w["a"]["id"], "title": "下周通知", "body": "…",
        "publish_at": iso(api.clock.now() + timedelta(days=1))})
    assert organiser.post(f"/announcements/{later['id']}/remind").code == "announcement_not_live"
    organiser.delete(f"/announcements/{aid}")
    assert organiser.post(f"/announcements/{aid}/remind").code == "announcement_not_found"
    assert reminded(api, later["id"]) == []


def test_concurrent_presses_remind_once(api):
    w = two_branches(api)
    organiser = w["org_a"]
    aid = publish(api, organiser, w["a"]["id"], "必读通知", must_read=True)
    headers = {"Authorization": f"Bearer {organiser.token}"}
    answers = api.concurrently([lambda http: http.post(f"/announcements/{aid}/remind", headers=headers)
                                for _ in range(8)])
    assert sorted(r.status for r in answers) == [202] + [409] * 7, answers
    assert {r.code for r in answers if r.status == 409} == {"reminder_too_soon"}
    queued = next(r.json["queued"] for r in answers if r.status == 202)
    assert queued == len(reminded(api, aid)) == len(set(reminded(api, aid))) == 3  # the organiser, m1, m2


def test_a_reminder_left_half_done_is_finished_by_the_next_press_without_repeats(api):
    """A crash half-way leaves the claim not done (written here as the crash leaves it): the next press
    after two minutes resumes it with the same dedupe key, so nobody already reached gets it twice."""
    w = two_branches(api)
    organiser = w["org_a"]
    aid = publish(api, organiser, w["a"]["id"], "必读通知", must_read=True)
    assert organiser.ok("POST", f"/announcements/{aid}/remind", 202) == {"queued": 3}

    def half_done(minutes_ago: float) -> None:
        api.run(api.db["announcements"].update_one({"_id": aid}, {"$set": {
            "reminder.done": False, "reminder.at": api.clock.now() - timedelta(minutes=minutes_ago)}}))

    half_done(1)
    assert organiser.post(f"/announcements/{aid}/remind").code == "reminder_too_soon"  # it may still be running
    half_done(3)
    assert organiser.ok("POST", f"/announcements/{aid}/remind", 202) == {"queued": 0}
    assert len(reminded(api, aid)) == 3
    assert organiser.post(f"/announcements/{aid}/remind").code == "reminder_too_soon"  # done now: 24 h
