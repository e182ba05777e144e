"""Subscription messages to 2,000 members: how fast the outbox drains through a WeChat on loopback.

A study session is scheduled for an org of MEMBERS members who each hold a grant for the event's
template, so its transaction queues MEMBERS deliveries (server/notifications/outbox.py); the one sender
(server/notifications/sender.py) sends them to the fake WeChat server of the tests (tests/fake_wechat.py,
answering at once). Prints, measured in one run:
- how long the session's creation took, its 2,000 deliveries written in its transaction;
- the drain: from the commit to the last message WeChat accepted, and the messages per second;
- the most messages sent within any 60 s window, against `--per-minute` (BRANCHLINE_WECHAT_SEND_PER_MINUTE).

The members, their WeChat identities and their grants are written directly into the database (signing
2,000 members in through WeChat is not what is measured).

    .venv/bin/python -m bench.bench_notifications [--members 2000] [--per-minute 100000] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import BenchServer  # noqa: E402
from tests.fake_wechat import make_fake_wechat  # noqa: E402

TEMPLATE = "tmpl-bench-0001"


def start_fake_wechat() -> tuple[str, dict]:
    """The fake WeChat server in a thread of its own; its base URL and its state (what it received)."""
    app = make_fake_wechat()
    sockets = bind_sockets(0, "127.0.0.1")
    loop = asyncio.new_event_loop()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        HTTPServer(app).add_sockets(sockets)
        loop.run_forever()

    threading.Thread(target=serve, daemon=True).start()
    return f"http://127.0.0.1:{sockets[0].getsockname()[1]}", app.settings["state"]


def most_in_a_minute(times: list[float]) -> int:
    best, start = 0, 0
    for end, moment in enumerate(times):
        while moment - times[start] >= 60:
            start += 1
        best = max(best, end - start + 1)
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--members", type=int, default=2000)
    parser.add_argument("--per-minute", type=int, default=100_000)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()

    base, wechat = start_fake_wechat()
    accepted_at: list[float] = []

    class Recorded(list):
        def append(self, item) -> None:  # when WeChat accepted each message
            accepted_at.append(time.monotonic())
            super().append(item)

    wechat["messages"] = Recorded()
    env = {"BRANCHLINE_WECHAT_APPID": "wx-test-app", "BRANCHLINE_WECHAT_SECRET": "wx-test-secret",
           "BRANCHLINE_WECHAT_API_BASE": base, "BRANCHLINE_WECHAT_SEND_PER_MINUTE": str(args.per_minute),
           "BRANCHLINE_WECHAT_SEND_CONCURRENCY": str(args.concurrency)}
    with BenchServer(extra_env=env) as server:
        admin = {"Authorization": f"Bearer {server.admin_token()}"}
        root = server.admin_member["org_id"]
        org = httpx.post(server.base_url + "/api/v1/orgs", headers=admin,
                         json={"name": "机关一支部", "kind": "branch", "parent_id": root}).json()
        members = server.create_members(admin["Authorization"].split()[1], org["id"], args.members)

        async def grant() -> None:
            client, db = server.mongo()
            now = datetime.now(UTC)
            await db.wechat_identities.insert_many(
                [{"_id": f"o-{m['id']}", "member_id": m["id"], "bound_at": now} for m in members])
            await db.notification_grants.insert_many(
                [{"_id": f"{m['id']}:{TEMPLATE}", "member_id": m["id"], "template_id": TEMPLATE, "grants": 1}
                 for m in members])
            await client.close()

        asyncio.run(grant())
        httpx.put(server.base_url + "/api/v1/notification-templates/session_scheduled", headers=admin, json={
            "template_id": TEMPLATE, "page": "pages/study/session?id={ref_id}",
            "fields": {"thing1": "title", "time2": "time", "thing3": "place"}}).raise_for_status()
        starts = datetime.now(UTC) + timedelta(days=1)
        began = time.monotonic()
        created = httpx.post(server.base_url + "/api/v1/study/sessions", headers=admin, timeout=120, json={
            "org_id": org["id"], "track": "group_meeting", "title": "党小组会：学习贯彻全会精神",
            "starts_at": starts.isoformat(), "ends_at": (starts + timedelta(hours=1)).isoformat(),
            "location": {"name": "党员活动室", "lat": 39.9, "lng": 116.4, "radius_m": 200}})
        committed = time.monotonic()
        assert created.status_code == 201, created.text
        deadline = committed + 600
        while len(accepted_at) < args.members and time.monotonic() < deadline:
            time.sleep(0.05)
        drained = accepted_at[-1] if accepted_at else committed
        sent = len(wechat["messages"])
        twice = sent - len({m["openid"] for m in wechat["messages"]})
        print(f"members {args.members}, per-minute cap {args.per_minute}, concurrency {args.concurrency}")
        print(f"session created with {args.members} deliveries in its transaction: {committed - began:.2f} s")
        print(f"drained: {sent} messages in {drained - committed:.1f} s after the commit "
              f"({sent / max(drained - committed, 1e-9):.0f}/s), sent twice: {twice}, "
              f"token fetches: {len(wechat['token_fetches'])}")
        print(f"most in any 60 s: {most_in_a_minute(accepted_at)} (cap {args.per_minute}); "
              f"peak RSS {server.peak_rss_mb():.0f} MiB")


if __name__ == "__main__":
    main()
