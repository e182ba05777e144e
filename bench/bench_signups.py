"""Sign-up burst: 500 members at once for an activity with 100 places and a waitlist.

Prints, measured in one run:
- the API's rate through HTTP (`python -m server`, real SecantusDB), p50/p99 latency;
- the rate of the same database operations made directly with PyMongo at the same concurrency
  (the database ceiling): per sign-up what the endpoint does (read the caller, claim the
  Idempotency-Key; then the transaction, run by server.db.transaction and batched as the server
  does it (group commit of the sign-ups waiting for it): read the activity, those members' records
  (eligibility) and their sign-ups, move the counters once, insert the sign-ups; then complete the
  Idempotency-Key). The programme's rules come from a 5 s cache on both sides;
- throughput as a ratio of the two (goal ≥ 0.6), and the API process's peak RSS.

Each round uses a fresh activity; rounds alternate API and PyMongo so both see the same database size.
Every round is checked: exactly 100 confirmed and waitlist positions 1..400.

    .venv/bin/python -m bench.bench_signups [--rounds 3] [--concurrency 100] [--processes 1]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta

from bench.harness import BenchServer, Req, Stats, run_burst
from server.config import Settings
from server.context import Context
from server.db import transaction

MEMBERS = 500
CAPACITY = 100


def activity_body(org_id: str) -> dict:
    now = datetime.now(UTC)
    return {"programme": "culture", "org_id": org_id, "title": "乒乓球赛", "description": "",
            "starts_at": (now + timedelta(days=2)).isoformat(),
            "ends_at": (now + timedelta(days=2, hours=2)).isoformat(),
            "signup_opens_at": (now - timedelta(hours=1)).isoformat(),
            "signup_closes_at": (now + timedelta(days=1)).isoformat(), "capacity": CAPACITY, "waitlist": True}


def new_activity(server: BenchServer, admin: dict, org_id: str) -> str:
    import httpx

    act = httpx.post(server.base_url + "/api/v1/activities", headers=admin, json=activity_body(org_id)).json()
    httpx.post(server.base_url + f"/api/v1/activities/{act['id']}/publish", headers=admin).raise_for_status()
    return act["id"]


def api_round(server: BenchServer, admin: dict, org_id: str, members: list[dict], concurrency: int) -> Stats:
    act_id = new_activity(server, admin, org_id)
    requests = [Req("POST", f"/api/v1/activities/{act_id}/signups",
                    {"Authorization": f"Bearer {server.token_for(m['id'])}", "Idempotency-Key": uuid.uuid4().hex},
                    {}) for m in members]
    stats = run_burst(server.base_url, requests, concurrency)
    assert stats.statuses == {201: MEMBERS}, stats.statuses
    asyncio.run(check(server, act_id))
    return stats


async def check(server: BenchServer, act_id: str) -> None:
    client, db = server.mongo()
    try:
        confirmed = await db.activity_signups.count_documents({"activity_id": act_id, "status": "confirmed"})
        seqs = sorted(d["seq"] for d in await db.activity_signups.find(
            {"activity_id": act_id, "status": "waitlisted"}, {"seq": 1}).to_list())
        act = await db.activities.find_one({"_id": act_id})
    finally:
        await client.close()
    # positions are ranks of distinct seqs: 1..n exactly when the seqs are distinct
    assert confirmed == CAPACITY == act["confirmed_count"], (confirmed, act["confirmed_count"])
    assert len(set(seqs)) == len(seqs) == MEMBERS - CAPACITY == act["waitlist_count"]


async def direct_round(server: BenchServer, template_id: str, members: list[dict], concurrency: int) -> float:
    """The endpoint's database operations, made directly with PyMongo; → sign-ups per second."""
    client, db = server.mongo()
    ctx = Context(settings=Settings(), client=client, db=db)
    try:
        template = await db.activities.find_one({"_id": template_id})
        act_id = uuid.uuid4().hex[:24]
        await db.activities.insert_one({**template, "_id": act_id, "confirmed_count": 0, "waitlist_count": 0,
                                        "waitlist_seq": 0, "status": "published", "listed": True})
        waiting: list[tuple[dict, asyncio.Future]] = []
        drainer: list[asyncio.Task] = []
        queue = list(reversed(members))
        now = datetime.now(UTC)

        async def commit_batch(batch: list[tuple[dict, asyncio.Future]]) -> None:
            async def work(txn):
                act = await db.activities.find_one({"_id": act_id}, session=txn)
                await db.members.find({"_id": {"$in": [m["id"] for m, _ in batch]}}, session=txn).to_list()
                await db.activity_signups.find({"activity_id": act_id,
                                                "member_id": {"$in": [m["id"] for m, _ in batch]}},
                                               session=txn).to_list()
                confirmed, count, seq, docs = act["confirmed_count"], act["waitlist_count"], act["waitlist_seq"], []
                for member, _ in batch:
                    doc = {"_id": uuid.uuid4().hex[:24], "activity_id": act_id, "member_id": member["id"],
                           "signed_up_at": now, "answers": {}}
                    if confirmed < act["capacity"]:
                        confirmed += 1
                        doc.update(status="confirmed", seq=None)
                    else:
                        count, seq = count + 1, seq + 1
                        doc.update(status="waitlisted", seq=seq)
                    docs.append(doc)
                guard = {"_id": act_id, "confirmed_count": act["confirmed_count"],
                         "waitlist_count": act["waitlist_count"], "waitlist_seq": act["waitlist_seq"]}
                await db.activities.update_one(guard, {"$inc": {
                    "confirmed_count": confirmed - act["confirmed_count"],
                    "waitlist_count": count - act["waitlist_count"], "waitlist_seq": seq - act["waitlist_seq"]}},
                    session=txn)
                await db.activity_signups.insert_many(docs, session=txn)

            await transaction(ctx, work)  # the API's unit of work (server/db.py), as the endpoint uses it

        async def drain() -> None:
            while waiting:
                batch = waiting[:100]
                del waiting[:100]
                await commit_batch(batch)
                for _, future in batch:
                    future.set_result(None)
            drainer.clear()

        async def signup(member: dict) -> None:
            key = uuid.uuid4().hex
            await db.members.find_one({"_id": member["id"], "active": True})  # the caller (bearer token)
            await db.idempotency_keys.insert_one({"member_id": member["id"], "key": key, "hash": "h",
                                                  "state": "running", "owner": key, "lease_until": now,
                                                  "created_at": now})
            future = asyncio.get_running_loop().create_future()
            waiting.append((member, future))
            if not drainer:
                drainer.append(asyncio.create_task(drain()))
            await future
            await db.idempotency_keys.update_one(
                {"member_id": member["id"], "key": key, "state": "running", "owner": key},
                {"$set": {"state": "done", "status": 201, "body": b"{}", "content_type": "application/json"},
                 "$unset": {"lease_until": "", "challenged_at": ""}})

        async def worker() -> None:
            while queue:
                await signup(queue.pop())

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        rate = len(members) / (time.perf_counter() - started)
        await check_direct(db, act_id)
        return rate
    finally:
        await client.close()


async def check_direct(db, act_id: str) -> None:
    confirmed = await db.activity_signups.count_documents({"activity_id": act_id, "status": "confirmed"})
    assert confirmed == CAPACITY, confirmed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--processes", type=int, default=1)
    args = parser.parse_args()
    with BenchServer(processes=args.processes) as server:
        admin = {"Authorization": f"Bearer {server.admin_token()}"}
        import httpx

        org = httpx.post(server.base_url + "/api/v1/orgs", headers=admin,
                         json={"name": "压测支部", "kind": "branch", "parent_id": server.admin_member["org_id"]}).json()
        members = server.create_members(admin["Authorization"].split()[1], org["id"], MEMBERS)
        template = new_activity(server, admin, org["id"])
        server.reset_peak()
        api_rates, direct_rates, p99s, p50s = [], [], [], []
        for round_no in range(1, args.rounds + 1):
            stats = api_round(server, admin, org["id"], members, args.concurrency)
            direct = asyncio.run(direct_round(server, template, members, args.concurrency))
            api_rates.append(stats.rate)
            direct_rates.append(direct)
            p99s.append(stats.p99_ms)
            p50s.append(stats.p50_ms)
            print(f"round {round_no}: {stats.line('API sign-ups')}")
            print(f"round {round_no}: same database operations with PyMongo: {direct:.0f}/s "
                  f"(ratio {stats.rate / direct:.2f})")
        api_rate, direct_rate = statistics.median(api_rates), statistics.median(direct_rates)
        print()
        print(f"sign-up burst: {MEMBERS} members, capacity {CAPACITY}, waitlist on, concurrency {args.concurrency}, "
              f"{args.processes} API process(es)")
        print(f"API: {api_rate:.0f} sign-ups/s (median of {args.rounds}), p50 {statistics.median(p50s):.1f} ms, "
              f"p99 {statistics.median(p99s):.1f} ms (worst round {max(p99s):.1f} ms)")
        print(f"PyMongo, same operations: {direct_rate:.0f}/s")
        print(f"throughput ratio API / PyMongo: {api_rate / direct_rate:.2f} (goal >= 0.6)")
        print(f"API process peak RSS: {server.peak_rss_mb():.1f} MiB")


if __name__ == "__main__":
    main()
