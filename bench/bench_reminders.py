"""A reminder to 2,000 members through the fake WeChat server: messages per second and the outbox drain time.

One org of 2,000 members, each bound to a WeChat identity and holding one grant for the
`session_reminder` template (identities and grants are seeded straight into the database: binding
2,000 phones through `/auth/bind` would measure the sign-in, not the sender). A session of the org
is scheduled to start in 20 minutes with `lead_minutes` 30, so its reminder is due at once: the
reminder task (server/notifications/reminders.py) queues 2,000 deliveries in one transaction and the
sender drains them to the fake WeChat server (tests/fake_wechat.py, on loopback in this process).

Prints, measured in one run:
- the time from the session's creation to the 2,000 deliveries queued (the reminder's transaction);
- the drain: the time to the last message accepted by WeChat, messages per second over the drain;
- the most messages WeChat received in any 60 s, against the sender's per-minute cap;
- that every member got exactly one message.

    .venv/bin/python -m bench.bench_reminders [--members 2000] [--processes 1]
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from bench.harness import BenchServer
from tests.fake_wechat import make_fake_wechat

TEMPLATE_ID = "tpl-bench-session-reminder"


def start_fake_wechat() -> tuple[str, dict, list[float]]:
    """The fake WeChat server in a thread of its own; → (base url, its state, arrival times of messages)."""
    app = make_fake_wechat()
    state = app.settings["state"]
    sockets = bind_sockets(0, "127.0.0.1")
    arrivals: list[float] = []
    ready = threading.Event()

    def run() -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)

        async def start() -> None:
            HTTPServer(app).add_sockets(sockets)

            async def watch() -> None:  # when each message arrived (the fake keeps no times)
                seen = 0
                while True:
                    count = len(state["messages"])
                    arrivals.extend([time.monotonic()] * (count - seen))
                    seen = count
                    await asyncio.sleep(0.01)

            loop.create_task(watch())
            ready.set()

        loop.run_until_complete(start())
        loop.run_forever()

    threading.Thread(target=run, daemon=True).start()
    ready.wait()
    return f"http://127.0.0.1:{sockets[0].getsockname()[1]}", state, arrivals


async def seed(server: BenchServer, members: list[dict]) -> None:
    """A WeChat identity and one grant of the template for every member (as POST /auth/bind and
    POST /me/subscriptions write them)."""
    client, db = server.mongo()
    try:
        now = datetime.now(UTC)
        await db.wechat_identities.insert_many([
            {"_id": f"oid-bench-{m['id']}", "member_id": m["id"], "unionid": None, "bound_at": now} for m in members])
        await db.notification_grants.insert_many([
            {"_id": f"{m['id']}:{TEMPLATE_ID}", "member_id": m["id"], "template_id": TEMPLATE_ID, "grants": 1,
             "updated_at": now} for m in members])
    finally:
        await client.close()


async def backlog(server: BenchServer, session_id: str) -> dict[str, int]:
    client, db = server.mongo()
    try:
        counts: dict[str, int] = {}
        async for d in db.notification_deliveries.find({"ref_id": session_id, "event": "session_reminder"},
                                                       {"wechat": 1}):
            counts[d["wechat"]] = counts.get(d["wechat"], 0) + 1
        return counts
    finally:
        await client.close()


def max_per_minute(arrivals: list[float]) -> int:
    return max((bisect.bisect_left(arrivals, t + 60) - i for i, t in enumerate(arrivals)), default=0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--members", type=int, default=2000)
    parser.add_argument("--processes", type=int, default=1)
    args = parser.parse_args()
    base, state, arrivals = start_fake_wechat()
    env = {"BRANCHLINE_WECHAT_APPID": "wx-test-app", "BRANCHLINE_WECHAT_SECRET": "wx-test-secret",
           "BRANCHLINE_WECHAT_API_BASE": base}
    with BenchServer(processes=args.processes, extra_env=env) as server:
        admin = {"Authorization": f"Bearer {server.admin_token()}"}
        http = httpx.Client(base_url=server.base_url + "/api/v1", headers=admin, timeout=120)
        http.put("/notification-templates/session_reminder", json={
            "template_id": TEMPLATE_ID, "page": "pages/session/index?id={ref_id}",
            "fields": {"thing1": "title", "time2": "time", "thing3": "place"}, "enabled": True,
            "lead_minutes": 30}).raise_for_status()
        org = http.post("/orgs", json={"name": f"压测支部{uuid.uuid4().hex[:4]}", "kind": "branch",
                                       "parent_id": server.admin_member["org_id"]}).json()
        started = time.perf_counter()
        members = server.create_members(admin["Authorization"].split()[1], org["id"], args.members)
        print(f"{len(members)} members created in {time.perf_counter() - started:.1f} s")
        asyncio.run(seed(server, members))

        starts = datetime.now(UTC) + timedelta(minutes=20)
        created = time.monotonic()
        session = http.post("/study/sessions", json={
            "org_id": org["id"], "track": "group_meeting", "title": "党小组会", "starts_at": starts.isoformat(),
            "ends_at": (starts + timedelta(hours=1)).isoformat(), "location": {
                "name": "三楼会议室", "lat": 39.9, "lng": 116.4, "radius_m": 200}}).json()
        queued_at = None
        while True:
            counts = asyncio.run(backlog(server, session["id"]))
            if queued_at is None and sum(counts.values()) >= args.members:
                queued_at = time.monotonic()
            if queued_at is not None and not counts.get("pending") and not counts.get("sending"):
                break
            if time.monotonic() - created > 1800:
                raise SystemExit(f"not drained after 30 minutes: {counts}")
            time.sleep(0.2)
        time.sleep(0.1)
        ours = [m for m in state["messages"] if m["template_id"] == TEMPLATE_ID]
        openids = {m["openid"] for m in ours}
        first, last = arrivals[0], arrivals[-1]
        print(f"queued: {sum(counts.values())} deliveries {queued_at - created:.2f} s after the session was "
              f"created (reminder tick and its transaction)")
        print(f"drained: {counts}; last message {last - created:.1f} s after creation, "
              f"{len(ours)} messages in {last - first:.1f} s = {len(ours) / max(last - first, 1e-9):.1f}/s")
        print(f"most messages in any 60 s: {max_per_minute(arrivals)}")
        print(f"every member exactly once: {len(ours) == len(openids) == args.members} "
              f"({len(ours)} messages, {len(openids)} members)")
        print(f"peak RSS of the API process: {server.peak_rss_mb():.0f} MiB")


if __name__ == "__main__":
    main()
