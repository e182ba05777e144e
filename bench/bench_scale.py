"""Scale benchmark: what one request costs at 500 members and 200 feed items, and at 10× that.

Builds, on a fresh durable SecantusDB for each size, 100 branches under the root, the members (through
the member import, one CSV per branch), the announcements (four in five to the whole root, the rest
round-robin to the branches), and prints for each operation the wall time and the API process's own CPU
time per request (utime + stime of `python -m server` from /proc, so the database's share, spent in the
SecantusDB process, is left out) at both sizes, with the growth factor; the API process's peak RSS; and
the CPU per request of `/me`, an up-to-date `/sync`, a sign-up and a check-in beside a bare Tornado
handler's (what bounds one API process in front of a real MongoDB).

    .venv/bin/python -m bench.bench_scale              # 500/200 and 5,000/2,000
    .venv/bin/python -m bench.bench_scale --city       # and 50,000/20,000 (slow: about half an hour)
    .venv/bin/python -m bench.bench_scale --sizes 500  # one size only

Goals (issue 13), for 10× the data: API CPU per request ≤ 1.5× for one page of members, feed or sync
and for an up-to-date sync; the initial sync to the end ≤ 12× in wall time; the import ≥ 0.5 of
`insert_many` of the same documents; compliance and the xlsx export ≤ 10×; peak RSS ≤ 1.5×.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_checkins import new_session, qr_token  # noqa: E402
from bench.bench_signups import activity_body  # noqa: E402
from bench.harness import BenchServer, Req, bare_tornado, read_response, run_burst  # noqa: E402
from server import members as members_service  # noqa: E402
from server import orgs as orgs_service  # noqa: E402

BRANCHES = 100
TICK = os.sysconf("SC_CLK_TCK")
API = "/api/v1"


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process, from /proc/<pid>/stat (fields 14 and 15, after the command name)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


@dataclass
class Figure:
    wall_ms: float  # per request (or for the whole operation, when `whole`)
    cpu_ms: float
    count: int = 1
    note: str = ""


class Measured:
    """Wall time and the API process's CPU time over a block, per request."""

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def __call__(self, count: int, run) -> Figure:
        cpu, wall = cpu_seconds(self.pid), time.perf_counter()
        note = run()
        wall, cpu = time.perf_counter() - wall, cpu_seconds(self.pid) - cpu
        return Figure(wall * 1000 / count, cpu * 1000 / count, count, note or "")


# -- building the data ---------------------------------------------------------------------------------

def build(server: BenchServer, members: int, items: int) -> dict:
    admin_token = server.admin_token()
    admin = {"Authorization": f"Bearer {admin_token}"}
    root = server.admin_member["org_id"]
    started = time.perf_counter()
    with httpx.Client(base_url=server.base_url + API, headers=admin, timeout=600) as http:
        branches = [http.post("/orgs", json={"name": f"第{i}支部", "kind": "branch", "parent_id": root}).json()["id"]
                    for i in range(BRANCHES)]
        per_branch = members // BRANCHES
        for b, branch in enumerate(branches):
            rows = "".join(f"党员{b}-{i},139{b:03d}{i:05d},{'male' if i % 2 else 'female'},1990-01-01,full\n"
                           for i in range(per_branch))
            response = http.post(f"/orgs/{branch}/members/import", headers={"Content-Type": "text/csv"},
                                 content=("name,phone,gender,birth_date,party_status\n" + rows).encode())
            assert response.json()["created"] == per_branch, response.text
        requests = [Req("POST", API + "/announcements", admin,
                        {"org_id": root if i % 5 else branches[(i // 5) % BRANCHES], "title": f"通知{i}",
                         "body": "内容" * 40, "pinned": i < 3}) for i in range(items)]
    stats = run_burst(server.base_url, requests, concurrency=8)
    assert stats.statuses == {201: items}, stats.statuses
    people = asyncio.run(_member_ids(server))
    print(f"  built {members} members in {BRANCHES} branches and {items} announcements "
          f"in {time.perf_counter() - started:.0f} s", flush=True)
    return {"admin": admin, "admin_token": admin_token, "root": root, "branches": branches, "people": people}


async def _member_ids(server: BenchServer, count: int = 200) -> list[str]:
    """Members of every branch (the first `count` by id), who sign up and check in."""
    client, db = server.mongo()
    try:
        found = db.members.find({"roles": []}, {"_id": 1}).sort("_id", 1).limit(count)
        return [d["_id"] for d in await found.to_list()]
    finally:
        await client.close()


# -- the operations ------------------------------------------------------------------------------------

def measure(server: BenchServer, world: dict, rounds: int) -> tuple[dict[str, Figure], dict]:
    pid = server.api_processes()[0].pid
    timed = Measured(pid)
    base = server.base_url + API
    member = {"Authorization": f"Bearer {server.token_for(world['people'][0])}"}
    out: dict[str, Figure] = {}
    with httpx.Client(base_url=base, timeout=600) as http:
        def repeat(path: str, headers: dict, params: dict | None = None):
            def run():
                for _ in range(rounds):
                    response = http.get(path, headers=headers, params=params)
                    assert response.status_code == 200, response.text[:300]
            return run

        http.get("/members", headers=world["admin"], params={"org_id": world["root"], "limit": 100})  # warm
        out["GET /members?org_id=root&limit=100, one page"] = timed(rounds, repeat(
            "/members", world["admin"], {"org_id": world["root"], "limit": 100}))

        def all_members():
            cursor, pages = None, 0
            while True:
                params = {"org_id": world["root"], "limit": 100, **({"cursor": cursor} if cursor else {})}
                body = http.get("/members", headers=world["admin"], params=params).json()
                pages += 1
                cursor = body.get("next_cursor")
                if not cursor:
                    return f"{pages} pages"
        out["GET /members, paging through all (whole)"] = timed(1, all_members)
        out["GET /feed first page (20 items)"] = timed(rounds, repeat("/feed", member, {"limit": 20}))
        out["GET /sync first page (100 changes)"] = timed(rounds, repeat("/sync", member, {"limit": 100}))

        def initial_sync():
            since, pages = None, 0
            while True:
                body = http.get("/sync", headers=member, params={"limit": 100, **({"since": since} if since else {})})
                body = body.json()
                pages += 1
                since = body["next_since"]
                if not body["has_more"]:
                    world["since"] = since
                    return f"{pages} pages"
        out["initial GET /sync to the end (whole)"] = timed(1, initial_sync)
        period = datetime.now(UTC).strftime("%Y-%m")
        out["compliance for the root"] = timed(3, repeat(f"/orgs/{world['root']}/study/compliance", world["admin"],
                                                         {"period": period}))
        out["xlsx export for the root"] = timed(3, repeat(f"/orgs/{world['root']}/study/export", world["admin"],
                                                          {"period": period, "format": "xlsx"}))
    out["POST /members/import, 1,000 CSV rows (whole)"], ceiling = import_against_insert_many(server, world, timed)
    out["POST /announcements to everyone + 20 long-polls woken (whole)"] = announce_and_wake(server, world, timed)
    out.update(per_request_cpu(server, world, timed))
    return out, ceiling


def import_against_insert_many(server: BenchServer, world: dict, timed: Measured) -> tuple[Figure, dict]:
    branch = world["branches"][1]
    rows = "".join(f"新党员{i},135{i:08d},female,1990-01-01,full\n" for i in range(1000))
    body = ("name,phone,gender,birth_date,party_status\n" + rows).encode()

    def run():
        response = httpx.post(f"{server.base_url}{API}/orgs/{branch}/members/import", content=body, timeout=600,
                              headers={**world["admin"], "Content-Type": "text/csv"})
        assert response.json()["created"] == 1000, response.text[:300]
    figure = timed(1, run)

    async def direct() -> float:
        client, db = server.mongo()
        try:
            org = await db.orgs.find_one({"_id": branch})
            now = datetime.now(UTC)
            docs = [members_service._new_member({"name": f"直插{i}", "phone": f"136{i:08d}", "gender": "male",
                                                 "birth_date": "1990-01-01", "party_status": "full"}, org, now)
                    for i in range(1000)]
            entries = [{"_id": uuid.uuid4().hex, "at": now, "actor_id": "bench", "action": "member.import.create",
                        "target_kind": "member", "target_id": d["_id"], "org_path": orgs_service.full_path(org),
                        "changes": {}, "reason": None} for d in docs]
            started = time.perf_counter()
            await db.members.insert_many(docs)
            await db.audit_log.insert_many(entries)
            return time.perf_counter() - started
        finally:
            await client.close()
    seconds = asyncio.run(direct())
    rate, ceiling = 1000 / (figure.wall_ms / 1000), 1000 / seconds
    figure.note = f"{rate:.0f} rows/s; insert_many of the same members and audit entries {ceiling:.0f}/s: " \
                  f"ratio {rate / ceiling:.2f}"
    return figure, {"import_rate": rate, "insert_many_rate": ceiling}


def announce_and_wake(server: BenchServer, world: dict, timed: Measured, polls: int = 20) -> Figure:
    """One announcement to the whole root while `polls` long-polls wait: the POST and the time until
    every poll has answered with it (only that part is measured)."""
    tokens = [server.token_for(m) for m in world["people"][:polls]]

    async def park() -> list:
        host, port = "127.0.0.1", server.port
        opened = []
        for token in tokens:  # each poller up to date first, from a whole initial sync of its own
            current = await _up_to_date(server, token)
            reader, writer = await asyncio.open_connection(host, port)
            writer.write((f"GET {API}/sync?since={current}&timeout=30 HTTP/1.1\r\nHost: {host}\r\n"
                          f"Authorization: Bearer {token}\r\n\r\n").encode())
            opened.append((reader, writer))
        await asyncio.sleep(1)
        return opened

    async def go() -> str:
        opened = await park()
        cpu, started = cpu_seconds(timed.pid), time.perf_counter()
        async with httpx.AsyncClient(base_url=server.base_url + API, timeout=60) as http:
            response = await http.post("/announcements", headers=world["admin"],
                                       json={"org_id": world["root"], "title": "唤醒", "body": "x"})
            posted = time.perf_counter() - started
            assert response.status_code == 201, response.text
        results = await asyncio.gather(*(read_response(reader) for reader, _ in opened))
        woke, cpu = time.perf_counter() - started, cpu_seconds(timed.pid) - cpu
        for _, writer in opened:
            writer.close()
        assert all(status == 200 and json.loads(b)["changes"] for status, b in results), results[:2]
        figure.wall_ms, figure.cpu_ms = woke * 1000, cpu * 1000
        return f"POST {posted * 1000:.0f} ms; all {polls} long-polls answered {woke * 1000:.0f} ms after it began"

    figure = Figure(0, 0)
    figure.note = asyncio.run(go())
    return figure


async def _up_to_date(server: BenchServer, token: str) -> str:
    async with httpx.AsyncClient(base_url=server.base_url + API, timeout=600) as http:
        since = None
        while True:
            body = (await http.get("/sync", params={"limit": 200, **({"since": since} if since else {})},
                                   headers={"Authorization": f"Bearer {token}"})).json()
            since = body["next_since"]
            if not body["has_more"]:
                return since


def per_request_cpu(server: BenchServer, world: dict, timed: Measured) -> dict[str, Figure]:
    people = world["people"]
    tokens = {m: server.token_for(m) for m in people}
    out: dict[str, Figure] = {}
    me = [Req("GET", API + "/me", {"Authorization": f"Bearer {tokens[m]}"}) for m in people]
    out["GET /me (CPU per request)"] = warm_then_timed(server, timed, me)
    sinces = {m: asyncio.run(_up_to_date(server, tokens[m])) for m in people}
    sync = [Req("GET", f"{API}/sync?since={sinces[m]}", {"Authorization": f"Bearer {tokens[m]}"}) for m in people]
    out["GET /sync up to date (CPU per request)"] = warm_then_timed(server, timed, sync)
    body = {**activity_body(world["root"]), "capacity": 1000}
    act = httpx.post(f"{server.base_url}{API}/activities", headers=world["admin"], json=body).json()
    httpx.post(f"{server.base_url}{API}/activities/{act['id']}/publish", headers=world["admin"]).raise_for_status()
    signups = [Req("POST", f"{API}/activities/{act['id']}/signups",
                   {"Authorization": f"Bearer {tokens[m]}", "Idempotency-Key": uuid.uuid4().hex}, {}) for m in people]
    out["POST sign-up (CPU per request)"] = timed(len(signups), lambda: _ok(run_burst(server.base_url, signups, 20),
                                                                             201))
    session = new_session(server, world["admin_token"], world["root"])  # everyone attends: a large session
    qr = qr_token(server, world["admin_token"], session)
    checkins = [Req("POST", f"{API}/study/checkins", {"Authorization": f"Bearer {tokens[m]}"},
                    {"session_id": session, "qr_token": qr, "device_id": f"bench-{i}"}) for i, m in enumerate(people)]
    out["POST check-in (CPU per request)"] = timed(len(checkins), lambda: _ok(run_burst(server.base_url, checkins, 20),
                                                                               201))
    return out


def warm_then_timed(server: BenchServer, timed: Measured, requests: list[Req], rounds: int = 10) -> Figure:
    """`rounds` bursts of the same requests, each just after an unmeasured one: every member's principal
    (cached 5 s) and unread count (cached per feed position) are warm, as for an app that polls, whatever
    the database's speed; what is measured is the request's own path."""
    wall = cpu = 0.0
    for _ in range(rounds):
        run_burst(server.base_url, requests, 20)
        figure = timed(len(requests), lambda: _ok(run_burst(server.base_url, requests, 20), 200))
        wall, cpu = wall + figure.wall_ms, cpu + figure.cpu_ms
    return Figure(wall / rounds, cpu / rounds, len(requests) * rounds)


def _ok(stats, status: int) -> str:
    assert stats.statuses == {status: stats.count}, stats.statuses
    return f"{stats.rate:.0f}/s"


def bare_tornado_cpu(count: int = 3000) -> Figure:
    with bare_tornado() as (base, pid):
        requests = [Req("GET", "/x")] * count
        return Measured(pid)(count, lambda: _ok(run_burst(base, requests, 20), 200))


# -- the report ----------------------------------------------------------------------------------------

def run_size(members: int, items: int, rounds: int) -> tuple[dict[str, Figure], float, dict]:
    print(f"\n== {members} members, {items} announcements", flush=True)
    with BenchServer(processes=1) as server:
        world = build(server, members, items)
        time.sleep(1)
        server.reset_peak()
        figures, ceiling = measure(server, world, rounds)
        peak = server.peak_rss_mb()
    for name, f in figures.items():
        print(f"  {name}: wall {f.wall_ms:.1f} ms, API CPU {f.cpu_ms:.2f} ms  {f.note}", flush=True)
    print(f"  API process peak RSS while measuring: {peak:.0f} MiB", flush=True)
    return figures, peak, ceiling


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="*", default=[500, 5000], help="member counts (items: 2 in 5)")
    parser.add_argument("--city", action="store_true", help="add 50,000 members and 20,000 announcements")
    parser.add_argument("--rounds", type=int, default=20, help="requests per page figure (CPU ticks are 10 ms)")
    args = parser.parse_args()
    sizes = sorted(set(args.sizes + ([50_000] if args.city else [])))
    results = {size: run_size(size, size * 2 // 5, args.rounds) for size in sizes}
    bare = bare_tornado_cpu()
    print(f"\nbare Tornado handler: API CPU {bare.cpu_ms:.3f} ms per request ({bare.note})")
    small = sizes[0]
    names = list(results[small][0])
    head = " | ".join(f"{s:,} wall / CPU ms" for s in sizes)
    print(f"\n| operation | {head} | growth wall / CPU ({small:,} → {sizes[-1]:,}) |")
    print("|---|" + "---|" * len(sizes) + "---|")
    for name in names:
        cells = " | ".join(f"{results[s][0][name].wall_ms:.1f} / {results[s][0][name].cpu_ms:.2f}" for s in sizes)
        first, last = results[small][0][name], results[sizes[-1]][0][name]
        growth = f"{last.wall_ms / first.wall_ms:.1f}× / {last.cpu_ms / first.cpu_ms:.1f}×" if first.cpu_ms else \
                 f"{last.wall_ms / first.wall_ms:.1f}× / -"
        print(f"| {name} | {cells} | {growth} |")
    peaks = " | ".join(f"{results[s][1]:.0f} MiB" for s in sizes)
    print(f"| API process peak RSS | {peaks} | {results[sizes[-1]][1] / results[small][1]:.2f}× |")
    for s in sizes:
        cpu = {n: results[s][0][n].cpu_ms for n in names if "CPU per request" in n}
        ratios = ", ".join(f"{n.split(' (')[0]} {v:.2f} ms ({v / bare.cpu_ms:.1f}× bare)" for n, v in cpu.items())
        print(f"at {s:,}: {ratios}")
    print(f"(measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC)")


if __name__ == "__main__":
    main()
