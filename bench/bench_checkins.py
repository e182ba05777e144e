"""Check-in burst: 300 members check in to one study session at once (POST /study/checkins).

Prints the endpoint's rate and its ratio to the rate of the same database operations made directly with
PyMongo in the same run (the database ceiling; goal ≥ 0.6), and to a bare Tornado handler (the framework
ceiling). Per check-in the endpoint makes five operations: read the caller's member record (authentication),
read the session, insert the attendance record (unique on session and member), read the session's status
again (a cancellation racing the check-in), append the check-in event.

    .venv/bin/python -m bench.bench_checkins [--members 300] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import BenchServer, Req, bare_tornado_rate, run_burst  # noqa: E402
from server.ids import new_id  # noqa: E402

DIRECT_CONCURRENCY = 100  # PyMongo's default maxPoolSize, as the server's client uses


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def new_session(server: BenchServer, admin: str, org_id: str) -> str:
    starts = datetime.now(UTC) + timedelta(minutes=10)  # the window opened 20 minutes ago
    response = httpx.post(server.base_url + "/api/v1/study/sessions", headers={"Authorization": f"Bearer {admin}"},
                          json={"org_id": org_id, "track": "group_meeting", "title": "基准测试会",
                                "starts_at": iso(starts), "ends_at": iso(starts + timedelta(hours=1))}, timeout=60)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def qr_token(server: BenchServer, admin: str, session_id: str) -> str:
    response = httpx.get(f"{server.base_url}/api/v1/study/sessions/{session_id}/qr",
                         headers={"Authorization": f"Bearer {admin}"}, timeout=60)
    return response.json()["token"]


def endpoint_round(server: BenchServer, admin: str, org_id: str, members: list[dict], tokens: dict) -> float:
    session_id = new_session(server, admin, org_id)
    token = qr_token(server, admin, session_id)
    requests = [Req("POST", "/api/v1/study/checkins", {"Authorization": f"Bearer {tokens[m['id']]}"},
                    {"session_id": session_id, "qr_token": token, "device_id": f"bench-{i}"})
                for i, m in enumerate(members)]
    stats = run_burst(server.base_url, requests, concurrency=len(requests))
    print(stats.line("  endpoint   "))
    assert stats.statuses == {201: len(members)}, stats.statuses
    records = asyncio.run(_count(server, session_id))
    assert records == len(members), records
    return stats.rate


async def _count(server: BenchServer, session_id: str) -> int:
    client, db = server.mongo()
    try:
        return await db["study_attendance"].count_documents({"session_id": session_id})
    finally:
        await client.close()


async def _direct(server: BenchServer, org_id: str, members: list[dict]) -> float:
    """The same five operations per check-in, made straight from PyMongo, all members at once."""
    client, db = server.mongo()
    try:
        template = await db["study_sessions"].find_one({"org_id": org_id})
        session_id = new_id()
        await db["study_sessions"].insert_one({**template, "_id": session_id})
        org_path = template["org_path"]

        async def one(member: dict) -> None:
            me = await db["members"].find_one({"_id": member["id"], "active": True})
            session = await db["study_sessions"].find_one(
                {"$and": [{"_id": session_id}, {"$or": [{"org_id": {"$in": me["org_path"]}}]}]})
            now = datetime.now(UTC)
            await db["study_attendance"].insert_one({
                "_id": new_id(), "session_id": session_id, "member_id": me["_id"], "member_org_path": me["org_path"],
                "org_id": session["org_id"], "org_path": org_path, "track": session["track"],
                "starts_at": session["starts_at"], "minutes": 60, "cancelled": False, "status": "present",
                "checked_in_at": now, "received_at": now, "source": "member", "method": "qr", "offline": False,
                "device_id": "bench", "reason": None, "updated_at": now, "created_at": now})
            await db["study_sessions"].find_one({"_id": session_id}, {"status": 1})
            await db["study_checkin_events"].insert_one({
                "_id": new_id(), "session_id": session_id, "member_id": me["_id"], "at": now, "source": "member",
                "method": "qr", "result": "ok", "status": "present", "actor_id": me["_id"], "client_time": None,
                "offline": False, "device_id": "bench", "reason": None, "with_location": False})

        # Open the pool's connections first, as the server's pool is warm when its burst starts.
        await asyncio.gather(*(db["members"].find_one({"_id": m["id"]}) for m in members))
        queue = list(members)

        async def worker() -> None:  # as many at once as the pool has connections: no wait-queue churn
            while queue:
                await one(queue.pop())

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(min(DIRECT_CONCURRENCY, len(members)))))
        rate = len(members) / (time.perf_counter() - started)
        assert await db["study_attendance"].count_documents({"session_id": session_id}) == len(members)
        return rate
    finally:
        await client.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--members", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with BenchServer(processes=1) as server:
        admin = server.admin_token()
        org = httpx.post(server.base_url + "/api/v1/orgs", headers={"Authorization": f"Bearer {admin}"},
                         json={"name": "基准支部", "kind": "branch", "parent_id": server.admin_member["org_id"]},
                         timeout=60).json()
        members = server.create_members(admin, org["id"], args.members)
        tokens = {m["id"]: server.token_for(m["id"]) for m in members}
        new_session(server, admin, org["id"])  # warm-up, and the template for the direct round
        endpoint_rates, direct_rates = [], []
        for round_no in range(1, args.rounds + 1):
            # The database slows a little as its collections grow: alternate which side goes first.
            print(f"round {round_no}: {args.members} members check in at once")
            if round_no % 2 == 0:
                direct_rates.append(asyncio.run(_direct(server, org["id"], members)))
            endpoint_rates.append(endpoint_round(server, admin, org["id"], members, tokens))
            if round_no % 2 == 1:
                direct_rates.append(asyncio.run(_direct(server, org["id"], members)))
            print(f"  PyMongo    : {direct_rates[-1]:.0f} check-ins/s (same 5 operations, direct)")
        rss = server.peak_rss_mb()
    bare = bare_tornado_rate(3000, 100)
    api_rate, db_rate = statistics.median(endpoint_rates), statistics.median(direct_rates)
    ratios = [a / d for a, d in zip(endpoint_rates, direct_rates, strict=False)]
    print()
    print(f"POST /study/checkins: {api_rate:.0f}/s (median of {args.rounds} bursts of {args.members})")
    print(f"same database operations with PyMongo directly: {db_rate:.0f}/s")
    print(f"ratio to the database ceiling: {api_rate / db_rate:.2f} (goal >= 0.6); per round: "
          + ", ".join(f"{r:.2f}" for r in ratios) + f"; median {statistics.median(ratios):.2f}")
    print(f"bare Tornado handler: {bare.rate:.0f}/s; ratio to the framework ceiling: {api_rate / bare.rate:.2f}")
    print(f"peak RSS of the API process: {rss:.0f} MiB")


if __name__ == "__main__":
    main()
