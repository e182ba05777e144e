"""The notification path across real processes (`python -m server` children, SIGKILL): messages committed
before a crash are sent exactly once after the restart, with one process or two, and the access token is
fetched once for the deployment and refreshed once when WeChat rejects it."""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from pymongo import MongoClient

from tests.builders import iso, wait_until
from tests.conftest import Client
from tests.fake_wechat import reset, revoke

# Run alone, after the parallel tests (README): it kills API processes and counts what the fake WeChat received.
pytestmark = pytest.mark.solo

TEMPLATE = "tmpl-process-0001"
MEMBERS = 12
# A restarted server waits for the dead holder's sender lease (10 s) and token lease (15 s) to lapse.
TAKEOVER_SECONDS = 60


@pytest.fixture
def wechat(fake_wechat, monkeypatch):
    reset(fake_wechat["state"])
    monkeypatch.setenv("BRANCHLINE_WECHAT_APPID", "wx-test-app")
    monkeypatch.setenv("BRANCHLINE_WECHAT_SECRET", "wx-test-secret")
    monkeypatch.setenv("BRANCHLINE_WECHAT_API_BASE", fake_wechat["base"])
    return fake_wechat["state"]


class World:
    """A branch with an organiser and MEMBERS members signed in with WeChat, each with two grants, and a
    published activity whose one place is taken, the members on its waitlist."""

    def __init__(self, server) -> None:
        self.server = server
        admin = server.admin()
        root = admin.member["org_id"]
        branch = admin.ok("POST", "/orgs", 201, json={"name": "第一支部", "kind": "branch", "parent_id": root})
        admin.ok("PUT", "/notification-templates/waitlist_promoted", json={
            "template_id": TEMPLATE, "fields": {"thing1": "title", "time2": "time"}})
        admin.ok("PUT", "/notification-templates/activity_changed", json={
            "template_id": TEMPLATE, "fields": {"thing1": "title", "thing2": "note"}})
        organiser = self.new_member(admin, branch["id"], "书记", 0)
        admin.ok("PUT", f"/members/{organiser.id}/roles", json={"roles": [{"role": "organiser",
                                                                          "org_id": branch["id"]}]})
        self.organiser = server.as_member(organiser.member)
        now = datetime.now(UTC)
        act = self.organiser.ok("POST", "/activities", 201, json={
            "programme": "unity", "org_id": branch["id"], "title": "读书会", "description": "一起读书",
            "starts_at": iso(now + timedelta(days=2)), "ends_at": iso(now + timedelta(days=2, hours=2)),
            "signup_opens_at": iso(now - timedelta(hours=1)), "signup_closes_at": iso(now + timedelta(days=1)),
            "capacity": 1, "waitlist": True})
        self.path = f"/activities/{act['id']}"
        self.organiser.ok("POST", self.path + "/publish")
        self.new_member(admin, branch["id"], "先到者", 1).ok("POST", self.path + "/signups", 201)
        self.members = []
        for i in range(MEMBERS):
            member = self.new_member(admin, branch["id"], f"党员{i}", 100 + i, openid=f"o-{i}")
            member.ok("POST", "/me/subscriptions", json={"results": {TEMPLATE: "accept"}})
            member.ok("POST", "/me/subscriptions", json={"results": {TEMPLATE: "accept"}})
            assert member.ok("POST", self.path + "/signups", 201)["status"] == "waitlisted"
            self.members.append(member)

    def new_member(self, admin, org_id: str, name: str, n: int, openid: str | None = None) -> Client:
        body = admin.ok("POST", "/members", 201, json={"name": name, "phone": f"1390000{n:04d}", "org_id": org_id,
                                                         "gender": "male", "birth_date": "1990-01-01",
                                                         "party_status": "full"})
        if openid is None:
            return self.server.as_member(body)
        base = self.server.base_url + "/api/v1"
        bind_token = httpx.post(base + "/auth/wechat", json={"code": f"ok:{openid}"}).json()["bind_token"]
        code = admin.ok("POST", f"/members/{body['id']}/invite", 201)["invite_code"]
        bound = httpx.post(base + "/auth/bind", json={"bind_token": bind_token, "invite_code": code}).json()
        return Client(self.server.base_url, bound["access_token"], bound["member"])

    def promote_everyone(self) -> None:
        self.organiser.ok("PATCH", self.path, json={"capacity": MEMBERS + 1})

    def move(self) -> None:
        self.organiser.ok("PATCH", self.path, json={"location": "党员活动室"})


def deliveries(server) -> list[dict]:
    with MongoClient(server.mongo_uri) as client:
        return list(client[server.db_name].notification_deliveries.find({}))


def kill(server) -> None:
    """SIGKILL every API process of `server` (children first: they would be sent SIGTERM by the master's death)."""
    pids = server.api_pids()
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    if server.process.pid not in pids:
        os.kill(server.process.pid, signal.SIGKILL)
    server.process.wait()


def states(server) -> Counter:
    """What a failure shows: the deliveries by event, status and error."""
    return Counter((d["event"], d["wechat"], d["last_error"]) for d in deliveries(server))


def per_openid(wechat: dict) -> Counter:
    return Counter(m["openid"] for m in wechat["messages"])


@pytest.mark.parametrize("processes", [1, 2])
def test_messages_committed_before_a_crash_are_sent_once_after_the_restart(start_server, wechat, processes):
    # WeChat's token endpoint hangs: the sender cannot get a token, so it claims nothing
    wechat["token_slow"] = 30.0
    first = start_server(processes)
    world = World(first)
    world.promote_everyone()
    assert wait_until(lambda: wechat["token_fetches"], timeout=10)  # the sender is trying
    assert [d["wechat"] for d in deliveries(first)] == ["pending"] * MEMBERS
    kill(first)
    assert wechat["messages"] == []

    wechat["token_slow"] = 0.0
    second = start_server(processes)
    assert wait_until(lambda: len(wechat["messages"]) >= MEMBERS, timeout=TAKEOVER_SECONDS), states(second)
    assert wait_until(lambda: all(d["wechat"] == "sent" for d in deliveries(second)), timeout=10)
    time.sleep(2)  # were anything sent twice, it would have been by now: the sender was idle since
    assert per_openid(wechat) == {f"o-{i}": 1 for i in range(MEMBERS)}
    assert all(d["attempts"] == 1 for d in deliveries(second))


def test_the_token_is_fetched_once_by_two_processes_and_refreshed_once_when_rejected(start_server, wechat):
    server = start_server(2)
    world = World(server)
    world.promote_everyone()
    assert wait_until(lambda: len(wechat["messages"]) == MEMBERS, timeout=30)
    assert len(wechat["token_fetches"]) == 1
    first_sender = {d["claimed_by"] for d in deliveries(server)}
    assert len(first_sender) == 1  # one sender sent them all, `wechat_send_concurrency` at a time

    # The process that sent them dies; the other (or the master's replacement) takes the sender over and
    # uses the token in the database, which WeChat now rejects (40001): it is refreshed once.
    [owner] = first_sender
    os.kill(int(owner.split(":")[1]), signal.SIGKILL)
    world.organiser = server.as_member(world.organiser.member)  # its kept-alive connection died with it
    revoke(wechat)
    world.move()
    assert wait_until(lambda: len(wechat["messages"]) >= 2 * MEMBERS, timeout=TAKEOVER_SECONDS), \
        (states(server), [c["answer"] for c in wechat["send_calls"]])
    fetches = wechat["token_fetches"]
    assert len(fetches) == 2 and fetches[1]["force_refresh"] is True and fetches[0]["force_refresh"] is False
    assert all(f["secret_ok"] for f in fetches)
    rejected = [c for c in wechat["send_calls"] if c["answer"] == 40001]
    assert rejected and len(rejected) <= 8  # the sends under way with the old token: each made again once
    ids = {m.id for m in world.members}  # the one who took the place first has no grant: not sent

    def later() -> list[dict]:
        return [d for d in deliveries(server) if d["event"] == "activity_changed" and d["member_id"] in ids]

    # WeChat has them all; the sender records each answer just after it
    assert wait_until(lambda: all(d["wechat"] == "sent" for d in later()), timeout=10), states(server)
    assert len(later()) == MEMBERS
    assert {d["claimed_by"] for d in later()}.isdisjoint(first_sender)
    assert per_openid(wechat) == {f"o-{i}": 2 for i in range(MEMBERS)}
