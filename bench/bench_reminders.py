"""A reminder to 2,000 members through the fake WeChat server: messages per second and the outbox drain time.

One org of 2,000 members, each bound to a WeChat identity and holding one grant for the
`activity_reminder` template (identities and grants are seeded straight into the database: binding
2,000 phones through `/auth/bind` would measure the sign-in, not the sender), all confirmed for one
activity 40 minutes ahead (2,000 sign-ups through the API). Then the template's `lead_minutes` goes
from 30 to 45, which makes the reminder due at once: the reminder task (server/notifications/reminders.py)
queues 2,000 deliveries, 200 members per transaction, and the sender drains them to the fake WeChat
server (tests/fake_wechat.py, on loopback in this process). An activity rather than a session: a session
of 2,000 attendees is refused at creation today (see bench/README.md).

Prints, measured in one run:
- the time from the reminder falling due to the 2,000 deliveries queued;
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

from bench.harness import BenchServer, Req, run_burst
from tests.fake_wechat import make_fake_wechat

TEMPLATE_ID = "tpl-bench-activity-reminder"


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


async def backlog(server: BenchServer, activity_id: str) -> dict[str, int]:
    client, db = server.mongo()
    try:
        counts: dict[str, int] = {}
        async for d in db.notification_deliveries.find({"ref_id": activity_id, "event": "activity_reminder"},
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
        token = server.admin_token()
        http = httpx.Client(base_url=server.base_url + "/api/v1", headers={"Authorization": f"Bearer {token}"},
                            timeout=120)
        template = {"template_id": TEMPLATE_ID, "page": "pages/activity/index?id={ref_id}",
                    "fields": {"thing1": "title", "time2": "time", "thing3": "place"}, "enabled": True}
        http.put("/notification-templates/activity_reminder", json={**template, "lead_minutes": 30}).raise_for_status()
        org = http.post("/orgs", json={"name": f"压测支部{uuid.uuid4().hex[:4]}", "kind": "branch",
                                       "parent_id": server.admin_member["org_id"]}).json()
        started = time.perf_counter()
        members = server.create_members(token, org["id"], args.members)
        print(f"{len(members)} members created in {time.perf_counter() - started:.1f} s")
        asyncio.run(seed(server, members))
        now = datetime.now(UTC)
        act = http.post("/activities", json={
            "programme": "culture", "org_id": org["id"], "title": "红色观影", "description": "",
            "location": "三楼会议室", "starts_at": (now + timedelta(minutes=40)).isoformat(),
            "ends_at": (now + timedelta(hours=2)).isoformat(),
            "signup_opens_at": (now - timedelta(hours=1)).isoformat(),
            "signup_closes_at": (now + timedelta(minutes=35)).isoformat(), "capacity": args.members,
            "waitlist": False}).json()
        http.post(f"/activities/{act['id']}/publish").raise_for_status()
        stats = run_burst(server.base_url, [
            Req("POST", f"/api/v1/activities/{act['id']}/signups",
                {"Authorization": f"Bearer {server.token_for(m['id'])}"}, {}) for m in members], concurrency=50)
        assert stats.statuses == {201: args.members}, stats.statuses
        print(f"{args.members} confirmed sign-ups in {stats.seconds:.1f} s")

        # Now make the reminder due: 45 minutes before a start 40 minutes away.
        due = time.monotonic()
        http.put("/notification-templates/activity_reminder", json={**template, "lead_minutes": 45}).raise_for_status()
        queued_at = None
        while True:
            counts = asyncio.run(backlog(server, act["id"]))
            if queued_at is None and sum(counts.values()) >= args.members:
                queued_at = time.monotonic()
            if queued_at is not None and not counts.get("pending") and not counts.get("sending"):
                break
            if time.monotonic() - due > 1800:
                raise SystemExit(f"not drained after 30 minutes: {counts}")
            time.sleep(0.2)
        time.sleep(0.1)
        ours = [m for m in state["messages"] if m["template_id"] == TEMPLATE_ID]
        openids = {m["openid"] for m in ours}
        first, last = arrivals[0], arrivals[-1]
        print(f"queued: {sum(counts.values())} deliveries {queued_at - due:.1f} s after the reminder fell due "
              f"(the next tick and its transactions of 200 members)")
        print(f"drained: {counts}; outbox empty {last - due:.1f} s after it fell due; "
              f"{len(ours)} messages in {last - first:.1f} s = {len(ours) / max(last - first, 1e-9):.1f}/s")
        print(f"most messages in any 60 s: {max_per_minute(arrivals)} (the sender's cap: "
              f"BRANCHLINE_WECHAT_SEND_PER_MINUTE, 1000 by default)")
        print(f"every member exactly once: {len(ours) == len(openids) == args.members} "
              f"({len(ours)} messages, {len(openids)} members)")
        print(f"peak RSS of the API process: {server.peak_rss_mb():.0f} MiB")


if __name__ == "__main__":
    main()
