"""A sign-up, cancel or capacity change that fails half-way leaves counts and lists as they were
(server/signups.py: one transaction per change); so does cancelling the activity, and feedback is written
whole (with its flag on the sign-up) or not at all."""

from __future__ import annotations

from tests.builders import activity_checkin, fail_writes, published, started_with_a_signup


def state(api, organiser, act_id: str) -> tuple:
    act = organiser.ok("GET", f"/activities/{act_id}")
    roster = organiser.ok("GET", f"/activities/{act_id}/signups")
    return (act["confirmed_count"], act["waitlist_count"],
            [e["member_id"] for e in roster["confirmed"]], [e["member_id"] for e in roster["waitlisted"]],
            [e["member_id"] for e in roster["cancelled"]])


def _one_place_taken(api):
    """An activity with one place and a waitlist, the place taken by `first`; `second` is not signed up."""
    branch = api.org("一支部")
    organiser = api.organiser(branch["id"])
    act = published(api, organiser, branch["id"], capacity=1, waitlist=True)
    first, second = api.member(branch["id"]), api.member(branch["id"])
    first.ok("POST", f"/activities/{act['id']}/signups", 201)
    return organiser, act, first, second


def test_a_sign_up_that_fails_half_way_changes_nothing(api, monkeypatch):
    organiser, act, first, second = _one_place_taken(api)
    before = state(api, organiser, act["id"])
    with monkeypatch.context() as patch:
        fail_writes(patch, "activity_signups", "insert_many")  # after the counters moved
        failed = second.post(f"/activities/{act['id']}/signups")
        assert failed.status == 500 and failed.code == "internal_error"
    assert state(api, organiser, act["id"]) == before == (1, 0, [first.id], [], [])
    assert second.ok("POST", f"/activities/{act['id']}/signups", 201) == {"status": "waitlisted", "position": 1}


def test_a_cancel_that_fails_during_promotion_changes_nothing(api, monkeypatch):
    organiser, act, first, second = _one_place_taken(api)
    second.ok("POST", f"/activities/{act['id']}/signups", 201)
    before = state(api, organiser, act["id"])
    with monkeypatch.context() as patch:
        fail_writes(patch, "activity_signups", "update_many")  # the promotion, after the cancel was written
        assert first.delete(f"/activities/{act['id']}/signups/me").status == 500
        assert organiser.patch(f"/activities/{act['id']}", json={"capacity": 2}).status == 500
    assert state(api, organiser, act["id"]) == before == (1, 1, [first.id], [second.id], [])
    assert api.run(api.db["feed_items"].count_documents({"kind": "notice"})) == 0  # nobody told of a non-event
    first.ok("DELETE", f"/activities/{act['id']}/signups/me", 204)
    assert state(api, organiser, act["id"]) == (1, 0, [second.id], [], [first.id])


def test_cancelling_the_activity_fails_whole_or_not_at_all(api, monkeypatch):
    branch = api.org("一支部")
    organiser = api.organiser(branch["id"])
    act = published(api, organiser, branch["id"])
    member = api.member(branch["id"])
    member.ok("POST", f"/activities/{act['id']}/signups", 201)
    with monkeypatch.context() as patch:
        fail_writes(patch, "feed_items", "insert_many")  # the notices, after the status was written
        assert organiser.post(f"/activities/{act['id']}/cancel").status == 500
    assert organiser.ok("GET", f"/activities/{act['id']}")["status"] == "published"
    assert organiser.ok("POST", f"/activities/{act['id']}/cancel")["status"] == "cancelled"


def test_feedback_and_its_flag_are_written_whole_or_not_at_all(api, monkeypatch):
    organiser, member, path = started_with_a_signup(api)
    activity_checkin(organiser, member, path)
    with monkeypatch.context() as patch:
        fail_writes(patch, "activity_signups", "update_one")  # the flag, after the feedback was written
        assert member.post(path + "/feedback", json={"rating": 5}).status == 500
    assert api.run(api.db["activity_feedback"].count_documents({"activity_id": path.rsplit("/", 1)[1]})) == 0
    assert "feedback_given" not in member.ok("GET", path)["my_signup"]
    assert member.ok("POST", path + "/feedback", 201, json={"rating": 5, "comment": "好"})["rating"] == 5
    assert member.ok("GET", path)["my_signup"]["feedback_given"] is True
    assert member.post(path + "/feedback", json={"rating": 4}).code == "feedback_exists"
