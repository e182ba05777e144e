"""Sync benchmark: the commonest request, an app opening with nothing new, and 1,000 open long-polls.

Prints, measured in one run against `python -m server` on a real SecantusDB:
- GET /sync with an up-to-date token (many members, each with their own token) through HTTP, and a
  bare Tornado JSON handler driven by the same load generator (the framework ceiling); the ratio
  (goal >= 0.5). The endpoint answers from process memory: the latest sync sequence number comes
  from the per-process counter watcher, the unread count is cached per member and sequence number,
  the principal from the short principal cache;
- 1,000 long-polls held open at once: the API process's peak RSS while they wait (goal < 200 MB),
  then one publish, and how fast all 1,000 answer with the change (woken polls share one read of
  what changed, server/feed/sync.py `_window`).

    .venv/bin/python -m bench.bench_sync [--members 200] [--requests 6000] [--concurrency 50] [--polls 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

import httpx

from bench.harness import BenchServer, Req, bare_tornado_rate, read_response, run_burst


def setup(server: BenchServer, members: int) -> tuple[dict, str, list[dict]]:
    admin = {"Authorization": f"Bearer {server.admin_token()}"}
    root = server.admin_member["org_id"]
    org = httpx.post(server.base_url + "/api/v1/orgs", headers=admin,
                     json={"name": "第一支部", "kind": "branch", "parent_id": root}).json()
    people = server.create_members(admin["Authorization"][7:], org["id"], members)
    for i in range(20):
        httpx.post(server.base_url + "/api/v1/announcements", headers=admin,
                   json={"org_id": org["id"], "title": f"通知{i}", "body": "内容" * 50,
                         "pinned": i == 0}).raise_for_status()
    return admin, org["id"], people


def up_to_date_tokens(server: BenchServer, people: list[dict]) -> list[tuple[str, str]]:
    """(access token, sync token) per member, after a full initial sync."""
    out = []
    with httpx.Client(base_url=server.base_url + "/api/v1", timeout=60) as http:
        for person in people:
            access = server.token_for(person["id"])
            since = None
            while True:
                body = http.get("/sync", params={"since": since} if since else {},
                                headers={"Authorization": f"Bearer {access}"}).json()
                since = body["next_since"]
                if not body["has_more"]:
                    break
            out.append((access, since))
    return out


async def long_polls(server: BenchServer, admin: dict, org_id: str, tokens: list[tuple[str, str]],
                     count: int) -> None:
    host, port = "127.0.0.1", server.port
    opened = []
    for i in range(count):
        access, since = tokens[i % len(tokens)]
        reader, writer = await asyncio.open_connection(host, port)
        writer.write((f"GET /api/v1/sync?since={since}&timeout=30 HTTP/1.1\r\nHost: {host}\r\n"
                      f"Authorization: Bearer {access}\r\n\r\n").encode())
        opened.append((reader, writer))
    await asyncio.sleep(3)  # all of them parked on the server
    server.reset_peak()
    await asyncio.sleep(2)
    parked_peak = server.peak_rss_mb()
    print(f"{count} long-polls open: API process peak RSS {parked_peak:.1f} MB (goal < 200)")


    started = time.perf_counter()
    async with httpx.AsyncClient(base_url=server.base_url + "/api/v1") as http:
        r = await http.post("/announcements", headers=admin, json={"org_id": org_id, "title": "唤醒", "body": "x"})
        r.raise_for_status()
    results = await asyncio.gather(*(read_response(reader) for reader, _ in opened))
    elapsed = time.perf_counter() - started
    woke = sum(1 for status, body in results if status == 200 and json.loads(body)["changes"])
    others: dict = {}
    for status, body in results:
        if not (status == 200 and json.loads(body)["changes"]):
            key = f"{status} {body[:120]!r}"
            others[key] = others.get(key, 0) + 1
    for key, n in others.items():
        print(f"  not woken with the change: {n} x {key}")
    print(f"after one publish: {woke}/{count} long-polls answered with the change in {elapsed:.2f} s; "
          f"peak RSS {server.peak_rss_mb():.1f} MB")
    for _, writer in opened:
        writer.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--members", type=int, default=200)
    parser.add_argument("--requests", type=int, default=6000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--polls", type=int, default=1000)
    args = parser.parse_args()

    with BenchServer(processes=1) as server:
        admin, org_id, people = setup(server, args.members)
        tokens = up_to_date_tokens(server, people)
        time.sleep(0.5)
        requests = [Req("GET", f"/api/v1/sync?since={since}", {"Authorization": f"Bearer {access}"})
                    for access, since in tokens]
        run_burst(server.base_url, requests * 2, args.concurrency)  # warm: principal and unread caches
        batch = (requests * (args.requests // len(requests) + 1))[: args.requests]
        api = run_burst(server.base_url, batch, args.concurrency)
        assert api.statuses == {200: len(batch)}, api.statuses
        bare = bare_tornado_rate(args.requests, args.concurrency)
        print(api.line("GET /sync, up-to-date token"))
        print(bare.line("bare Tornado handler"))
        print(f"ratio: {api.rate / bare.rate:.2f} of the bare handler (goal >= 0.5)")
        asyncio.run(long_polls(server, admin, org_id, tokens, args.polls))


if __name__ == "__main__":
    main()
