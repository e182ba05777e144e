"""A sign-up, cancel or capacity change that fails half-way leaves counts and lists as they were
(server/signups.py: one transaction per change), and every activity endpoint needs a signed-in caller."""

from __future__ import annotations

import pytest
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import OperationFailure

from tests.test_activities_flow import published


def fail_writes(monkeypatch, collection: str, method: str) -> None:
    """Make `method` on `collection` fail after the transaction has already written the activity."""
    original = getattr(AsyncCollection, method)

    async def failing(self, *args, **kwargs):
        if self.name == collection:
            raise OperationFailure("injected failure", code=8000)
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(AsyncCollection, method, failing)


def state(api, organiser, act_id: str) -> tuple:
    act = organiser.ok("GET", f"/activities/{act_id}")
    roster = organiser.ok("GET", f"/activities/{act_id}/signups")
    return (act["confirmed_count"], act["waitlist_count"],
            [e["member_id"] for e in roster["confirmed"]], [e["member_id"] for e in roster["waitlisted"]],
            [e["member_id"] for e in roster["cancelled"]])


def test_a_sign_up_that_fails_half_way_changes_nothing(api, monkeypatch):
    branch = api.org("一支部")
    organiser = api.organiser(branch["id"])
    act = published(api, organiser, branch["id"], capacity=1, waitlist=True)
    first, second = api.member(branch["id"]), api.member(branch["id"])
    first.ok("POST", f"/activities/{act['id']}/signups", 201)
    before = state(api, organiser, act["id"])
    with monkeypatch.context() as patch:
        fail_writes(patch, "activity_signups", "insert_many")  # after the counters moved
        failed = second.post(f"/activities/{act['id']}/signups")
        assert failed.status == 500 and failed.code == "internal_error"
    assert state(api, organiser, act["id"]) == before == (1, 0, [first.id], [], [])
    assert second.ok("POST", f"/activities/{act['id']}/signups", 201) == {"status": "waitlisted", "position": 1}


def test_a_cancel_that_fails_during_promotion_changes_nothing(api, monkeypatch):
    branch = api.org("一支部")
    organiser = api.organiser(branch["id"])
    act = published(api, organiser, branch["id"], capacity=1, waitlist=True)
    first, second = api.member(branch["id"]), api.member(branch["id"])
    first.ok("POST", f"/activities/{act['id']}/signups", 201)
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


@pytest.mark.parametrize("method, path", [
    ("GET", "/programmes"), ("PUT", "/programmes/unity"), ("POST", "/activities"), ("GET", "/activities"),
    ("GET", "/activities/x"), ("PATCH", "/activities/x"), ("POST", "/activities/x/publish"),
    ("POST", "/activities/x/cancel"), ("POST", "/activities/x/signups"), ("GET", "/activities/x/signups"),
    ("DELETE", "/activities/x/signups/me"), ("GET", "/activities/x/qr"), ("GET", "/activities/x/qr/image"),
    ("POST", "/activities/x/checkins"),
    ("POST", "/activities/x/feedback"), ("GET", "/activities/x/feedback")])
def test_every_endpoint_needs_a_signed_in_caller(api, method, path):
    response = api.anonymous().request(method, path, json={})
    assert response.status == 401 and response.code == "unauthenticated"
