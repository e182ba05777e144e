"""Sync against real `python -m server` processes: consistency under concurrent writers (one and two
API processes), and a long-poll on one process woken by a publish made through another."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.builders import whole_feed
from tests.conftest import Client, SharedDatabaseServer

# Run alone, after the parallel tests (README): it bounds how soon a long-poll in another process wakes.
pytestmark = pytest.mark.solo


def make_world(server: SharedDatabaseServer, readers: int = 1):
    admin = server.admin()
    root = admin.member["org_id"]
    org = admin.ok("POST", "/orgs", 201, json={"name": "第一支部", "kind": "branch", "parent_id": root})

    def member(name: str, roles=None) -> Client:
        body = admin.ok("POST", "/members", 201, json={
            "name": name, "phone": f"135{random.randrange(10**8):08d}", "org_id": org["id"], "gender": "male",
            "birth_date": "1990-01-01", "party_status": "full"})
        if roles:
            body = admin.ok("PUT", f"/members/{body['id']}/roles", json={"roles": roles})
        return server.as_member(body)

    organisers = [member(f"书记{i}", [{"role": "organiser", "org_id": org["id"]}]) for i in range(3)]
    return org, organisers, [member(f"党员{i}") for i in range(readers)]


async def _writer(base_url: str, token: str, org_id: str, seed: int, ops: int) -> int:
    """Publish, edit and retract announcements as fast as the server allows; returns how many writes."""
    rng = random.Random(seed)
    mine: list[str] = []
    done = 0
    async with httpx.AsyncClient(base_url=base_url + "/api/v1", timeout=60,
                                 headers={"Authorization": f"Bearer {token}"}) as http:
        for n in range(ops):
            roll = rng.random()
            if not mine or roll < 0.45:
                body = {"org_id": org_id, "title": f"w{seed}-{n}", "body": "内容", "pinned": rng.random() < 0.1}
                now = datetime.now(UTC)
                timing = rng.random()
                if timing < 0.15:  # scheduled: both processes' schedulers race to publish it
                    body["publish_at"] = (now + timedelta(seconds=rng.uniform(0.2, 1.5))).isoformat()
                elif timing < 0.3:  # expiring soon: and to expire it (edits after that send nothing)
                    body["expires_at"] = (now + timedelta(seconds=rng.uniform(0.5, 2.0))).isoformat()
                r = await http.post("/announcements", json=body)
                assert r.status_code == 201, r.text
                mine.append(r.json()["id"])
            elif roll < 0.8:
                r = await http.patch(f"/announcements/{rng.choice(mine)}", json={"title": f"w{seed}-{n}-edit"})
                assert r.status_code == 200, r.text
            else:
                victim = mine.pop(rng.randrange(len(mine)))
                r = await http.delete(f"/announcements/{victim}")
                assert r.status_code == 204, r.text
            done += 1
    return done


def _consistency(server: SharedDatabaseServer, writers: int = 4, ops: int = 25) -> None:
    org, organisers, (reader,) = make_world(server)
    # something to snapshot before the storm
    for i in range(5):
        organisers[0].ok("POST", "/announcements", 201, json={"org_id": org["id"], "title": f"早{i}", "body": "x"})

    copy: dict[str, int] = {}
    seen: set[tuple] = set()
    duplicates: list[tuple] = []
    state = {"since": None, "syncs": 0, "running": True}

    def apply(changes: list[dict]) -> None:
        for change in changes:
            if change["op"] == "upsert":
                key = ("upsert", change["item"]["id"], change["item"]["version"])
                assert change["item"]["version"] > copy.get(change["item"]["id"], 0), change
                copy[change["item"]["id"]] = change["item"]["version"]
            else:
                key = ("delete", change["id"], copy.get(change["id"]))
                copy.pop(change["id"], None)
            if key in seen:
                duplicates.append(key)
            seen.add(key)

    def sync_once(wait: bool = False) -> dict:
        since = state["since"]
        path = "/sync?limit=3" + (f"&since={since}" if since else "") + ("&timeout=1" if wait and since else "")
        body = reader.ok("GET", path)
        apply(body["changes"])
        state["since"] = body["next_since"]
        state["syncs"] += 1
        return body

    def reader_loop() -> None:
        while state["running"]:  # every third sync long-polls: woken polls answer from a shared window
            sync_once(wait=state["syncs"] % 3 == 0)
            if state["syncs"] % 4 == 0 and copy:  # and now and then the member reads something
                status = reader.post(f"/feed/{random.choice(sorted(copy))}/read").status
                assert status in (204, 404), status  # 404: retracted or expired meanwhile

    thread = threading.Thread(target=reader_loop)
    thread.start()

    async def storm() -> list[int]:
        tokens = [o.token for o in organisers] + [organisers[0].token]
        return await asyncio.gather(*(_writer(server.base_url, tokens[i % len(tokens)], org["id"], i, ops)
                                      for i in range(writers)))

    try:
        written = asyncio.run(storm())
    finally:
        state["running"] = False
        thread.join(60)
    assert sum(written) == writers * ops
    time.sleep(2.5)  # scheduled ones published, expiring ones expired, every process's watcher caught up
    while sync_once()["has_more"]:
        pass
    last = sync_once()
    assert last["changes"] == []
    assert not duplicates, duplicates[:5]
    assert state["syncs"] > 20  # the client really synced during the storm
    unread: list[str] = []
    assert copy == whole_feed(reader, unread)
    assert last["unread_count"] == len(unread) < len(copy)  # it did read some
    # the same from scratch
    fresh: dict[str, int] = {}
    since = None
    while True:
        body = reader.ok("GET", "/sync?limit=7" + (f"&since={since}" if since else ""))
        fresh.update({c["item"]["id"]: c["item"]["version"] for c in body["changes"]})
        since = body["next_since"]
        if not body["has_more"]:
            break
    assert fresh == copy


def test_sync_consistency_one_process(start_server):
    _consistency(start_server(processes=1))


def test_sync_consistency_two_processes(start_server):
    server = start_server(processes=2)
    assert len(server.api_pids()) == 2
    _consistency(server)


def test_long_poll_wakes_when_another_process_publishes(start_server):
    first = start_server()
    second = start_server()  # a second API server on the same database
    org, organisers, (reader,) = make_world(first)
    poller = first.as_member(reader.member)
    since = poller.ok("GET", "/sync")["next_since"]
    publisher = second.as_member(organisers[0].member)
    result = {}

    def poll() -> None:
        result["body"] = poller.ok("GET", f"/sync?since={since}&timeout=20")
        result["at"] = time.monotonic()

    thread = threading.Thread(target=poll)
    thread.start()
    time.sleep(1.0)
    assert "body" not in result
    published = time.monotonic()
    created = publisher.ok("POST", "/announcements", 201, json={"org_id": org["id"], "title": "跨进程",
                                                                 "body": "另一个进程发布"})
    thread.join(25)
    assert [c["item"]["ref_id"] for c in result["body"]["changes"]] == [created["id"]]
    assert result["at"] - published < 1.0, result["at"] - published
