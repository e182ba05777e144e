"""The database dies (SIGKILL) in the middle of real work and comes back on the same data.

Each scenario runs `python -m server` on a SecantusDB with a real storage path: either one the test
starts itself (an external database, as with a MongoDB URI) or the API's own embedded child. Clients
behave as the mini-program does: they retry a 503, a dropped connection or 409 `request_in_progress`
with the same Idempotency-Key, and a member whose sync token answers 410 syncs again from scratch.
Afterwards every acknowledged write exists, the invariants of the data hold, every member's mirror
built by sync equals `GET /feed`, and every retrying client finished within SETTLE_SECONDS (10 s) of the
database's return.

Every process a test starts is killed when it ends, passed or failed (`processes` fixture).
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psutil
import pytest
from pymongo import MongoClient

from server.config import Settings
from server.embedded import EmbeddedDatabase, free_port
from server.security import TokenSigner
from tests.builders import whole_feed
from tests.conftest import Client

# Run alone, after the parallel tests (README): it kills databases and API processes and bounds the recovery in seconds.
pytestmark = pytest.mark.solo

ROOT = Path(__file__).resolve().parent.parent
SECRET = "fault-test-secret-" + "f" * 40
ADMIN_PHONE = "13400000000"
ADMIN_PASSWORD = "fault-admin-password"
# A retrying client must be done this long after the database is back. Not 5: the publishes in flight
# at the kill all retry on the one feed counter (server/feed/sequence.py) with the driver's random
# backoff, and on 2 loaded cores the last of them was seen done 4.3 to 5.5 s after the return (most
# within 2 s). 10 s still fails a request that hangs until the client's own timeout (30 s) or the
# driver's transaction retry limit (120 s), which is what this bound is for.
SETTLE_SECONDS = 10
DB_DOWN_SECONDS = 1.0
signer = TokenSigner(Settings(jwt_secret=SECRET))


# -- processes ----------------------------------------------------------------------------------------


@pytest.fixture
def processes():
    """Every process a test starts (and its children) is killed afterwards, whatever happened."""
    started: list[psutil.Process] = []
    databases: list[EmbeddedDatabase] = []
    yield started, databases
    for db in databases:
        db._stopping.set()
        if db.process is not None and db.process.poll() is None:
            db.process.kill()
            db.process.wait(10)
    for process in started:
        try:
            tree = [process, *process.children(recursive=True)]
        except psutil.Error:
            continue
        for p in tree:
            try:
                p.kill()
            except psutil.Error:
                pass
        psutil.wait_procs(tree, timeout=10)


def accepting(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


class Database:
    """A SecantusDB on a real storage path, started as an embedded database would be (durable),
    that the test kills with SIGKILL and starts again on the same data and port."""

    def __init__(self, path: Path, processes) -> None:
        self.path, self.registry = str(path), processes[1]
        self.port = free_port()
        self.start()

    def start(self) -> None:
        self.db = EmbeddedDatabase(self.path, port=self.port, restart=False)
        self.registry.append(self.db)
        self.uri = self.db.start()

    def kill(self) -> None:
        self.db.process.send_signal(signal.SIGKILL)
        self.db.process.wait(10)

    def restart(self) -> float:
        """Start again on the same data; → the moment (monotonic) it accepts connections."""
        self.start()
        return time.monotonic()


class Server:
    """`python -m server` on the given database (None: its embedded default under `data_dir`)."""

    def __init__(self, data_dir: Path, processes, mongo_uri: str | None = None, workers: int = 1,
                 restart_delay: float = DB_DOWN_SECONDS) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.db_name = f"f_{uuid.uuid4().hex[:10]}"
        env = {k: v for k, v in os.environ.items() if k != "BRANCHLINE_MONGO_URI"}
        env.update({"BRANCHLINE_JWT_SECRET": SECRET, "BRANCHLINE_DB_NAME": self.db_name,
                    "BRANCHLINE_BOOTSTRAP_ADMIN_PHONE": ADMIN_PHONE,
                    "BRANCHLINE_BOOTSTRAP_ADMIN_PASSWORD": ADMIN_PASSWORD,
                    "BRANCHLINE_LOG_LEVEL": "WARNING", "BRANCHLINE_EMBEDDED_RESTART_DELAY": str(restart_delay)})
        args = ["--port", str(self.port), "--data-dir", str(data_dir), "--processes", str(workers)]
        if mongo_uri:
            args += ["--mongo-uri", mongo_uri]
        data_dir.mkdir(parents=True, exist_ok=True)
        with open(data_dir / "server.log", "ab") as log:  # read it when a test fails
            self.process = subprocess.Popen([sys.executable, "-m", "server", *args], cwd=ROOT, env=env,
                                            stdout=subprocess.DEVNULL, stderr=log)
        processes[0].append(psutil.Process(self.process.pid))
        deadline = time.monotonic() + 60
        while not self.healthy():
            assert self.process.poll() is None and time.monotonic() < deadline, "server did not start"
            time.sleep(0.1)
        body = httpx.post(self.base_url + "/api/v1/auth/password",
                          json={"phone": ADMIN_PHONE, "password": ADMIN_PASSWORD}, timeout=10).json()
        self.admin = Client(self.base_url, body["access_token"], body["member"])

    def healthy(self) -> bool:
        try:
            return httpx.get(self.base_url + "/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def embedded_child(self) -> psutil.Process:
        master = psutil.Process(self.process.pid)
        return next(p for p in master.children(recursive=True) if "secantusd" in " ".join(p.cmdline()))

    def kill_embedded(self) -> float:
        """SIGKILL the embedded child; → the moment (monotonic) its successor accepts connections."""
        child = self.embedded_child()
        port = int(child.cmdline()[child.cmdline().index("--port") + 1])
        child.kill()
        child.wait(10)
        deadline = time.monotonic() + 30
        while not accepting(port):
            assert time.monotonic() < deadline, "the embedded database did not come back"
            time.sleep(0.02)
        return time.monotonic()

    def member(self, member: dict) -> Client:
        return Client(self.base_url, signer.issue(member["id"], datetime.now(UTC), 900), member)


# -- clients that retry as the mini-program does --------------------------------------------------------


def retryable(response: httpx.Response | None) -> bool:
    if response is None or response.status_code == 503:
        return True
    return response.status_code == 409 and response.json().get("code") == "request_in_progress"


class Outcome:
    """The final answer a retrying client got, and when (monotonic)."""

    def __init__(self) -> None:
        self.response: httpx.Response | None = None
        self.started = time.monotonic()
        self.at = 0.0
        self.attempts = 0
        self.seen: list = []  # (seconds since the first attempt, status or None) of each retried answer


async def until_answered(http: httpx.AsyncClient, method: str, path: str, token: str, *, json=None,
                         key: str | None = None, give_up: float = 40) -> Outcome:
    headers = {"Authorization": f"Bearer {token}"}
    if key:
        headers["Idempotency-Key"] = key
    outcome = Outcome()
    deadline = time.monotonic() + give_up
    while time.monotonic() < deadline:
        outcome.attempts += 1
        try:
            response = await http.request(method, "/api/v1" + path, headers=headers, json=json)
        except httpx.HTTPError:
            response = None
        if not retryable(response):
            outcome.response, outcome.at = response, time.monotonic()
            return outcome
        outcome.seen.append((round(time.monotonic() - outcome.started, 1),
                             response and (response.json().get("code") or response.status_code)))
        await asyncio.sleep(0.1)
    raise AssertionError(f"{method} {path} still unanswered after {give_up} s: {response and response.text}")


def burst_with_kill(base_url: str, calls: list, kill_after: int, kill_and_restart,
                    concurrency: int = 20) -> tuple[list, float]:
    """Run `calls` (each: http → Outcome) `concurrency` at a time; once `kill_after` have been answered, kill the
    database and bring it back. → (outcomes in call order, the moment it was back).

    The burst runs in a thread and the kill in this one: a database started from a short-lived thread
    would die with it (PR_SET_PDEATHSIG follows the thread that forked it)."""
    killed = threading.Event()
    result: dict = {}

    async def burst() -> list:
        answered = 0
        slots = asyncio.Semaphore(concurrency)
        limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
        async with httpx.AsyncClient(base_url=base_url, timeout=30, limits=limits) as http:
            async def one(call):
                nonlocal answered
                async with slots:
                    outcome = await call(http)
                answered += 1
                if answered >= kill_after:
                    killed.set()
                return outcome

            return await asyncio.gather(*(one(c) for c in calls))

    def run() -> None:
        try:
            result["outcomes"] = asyncio.run(burst())
        except BaseException as exc:  # noqa: BLE001 - raised again in the test's thread
            result["error"] = exc
        finally:
            killed.set()

    thread = threading.Thread(target=run)
    thread.start()
    killed.wait(120)
    back = kill_and_restart()
    thread.join(120)
    if "error" in result:
        raise result["error"]
    return result["outcomes"], back


def kill_database(database: Database, down: float = DB_DOWN_SECONDS):
    def run() -> float:
        database.kill()
        time.sleep(down)
        return database.restart()
    return run


def assert_settled(outcomes: list[Outcome], back: float) -> None:
    """Every client the outage hit (sent before the database was back, answered after) was done within
    SETTLE_SECONDS of the return. Requests first sent later are only queued behind the burst."""
    hit = [o for o in outcomes if o.started < back < o.at]
    assert len(hit) >= 3, "the kill hit (almost) no request: the test proved nothing"
    late = sorted((round(o.at - back, 2), round(back - o.started, 1), o.seen) for o in hit
                  if o.at - back > SETTLE_SECONDS)
    assert not late, (f"{len(late)} clients finished more than {SETTLE_SECONDS} s after the database was back "
                      f"(s after it, s before it they started, retried answers): {late}")


# -- worlds ----------------------------------------------------------------------------------------------


def branch_with_members(server: Server, count: int) -> tuple[dict, Client, list[Client]]:
    admin = server.admin
    org = admin.ok("POST", "/orgs", 201, json={"name": f"支部{uuid.uuid4().hex[:6]}", "kind": "branch",
                                               "parent_id": admin.member["org_id"]})
    base = 13300000000 + int(uuid.uuid4().int % 9000) * 10000
    bodies = [{"name": f"党员{i}", "phone": str(base + i), "org_id": org["id"], "gender": "female",
               "birth_date": "1990-01-01", "party_status": "full"} for i in range(count + 1)]

    async def create() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=server.base_url + "/api/v1", timeout=60) as http:
            out = []
            for start in range(0, len(bodies), 25):
                out += await asyncio.gather(*(http.post("/members", json=b, headers={
                    "Authorization": f"Bearer {admin.token}"}) for b in bodies[start:start + 25]))
            return out

    created = asyncio.run(create())
    assert all(r.status_code == 201 for r in created), [r.text for r in created if r.status_code != 201][:3]
    organiser_body = admin.ok("PUT", f"/members/{created[0].json()['id']}/roles",
                              json={"roles": [{"role": "organiser", "org_id": org["id"]}]})
    return org, server.member(organiser_body), [server.member(r.json()) for r in created[1:]]


# Long enough that requests caught by the kill fail (503) rather than wait: the driver gives up after 3 s.
OUTAGE = 3.5


@pytest.fixture(params=["external", "embedded"])
def deployment(request, tmp_path, processes):
    """→ (server, kill_and_restart): a database the test starts, or the API's own embedded child."""
    if request.param == "external":
        database = Database(tmp_path / "db", processes)
        return Server(tmp_path / "var", processes, database.uri), kill_database(database, OUTAGE)
    server = Server(tmp_path / "var", processes, restart_delay=OUTAGE)
    return server, server.kill_embedded


def mongo(server: Server, uri: str | None = None):
    """The server's database, read directly (the embedded one through its current port)."""
    if uri is None:
        child = server.embedded_child()
        uri = f"mongodb://127.0.0.1:{child.cmdline()[child.cmdline().index('--port') + 1]}/?directConnection=true"
    client = MongoClient(uri)
    return client, client[server.db_name]


# -- finding 1: acknowledged writes are durable ---------------------------------------------------------


def test_acknowledged_writes_survive_a_database_kill(tmp_path, processes):
    """Finding 1 through the API: members created in a burst (the fastest write path), the database
    killed in the middle twice; every member answered 201 is there afterwards."""
    database = Database(tmp_path / "db", processes)
    server = Server(tmp_path / "var", processes, database.uri)
    org, _, _ = branch_with_members(server, 0)
    acknowledged: set[str] = set()
    for round_ in range(2):
        def create(i: int, round_=round_):
            body = {"name": f"新党员{i}", "phone": str(13200000000 + round_ * 1000 + i), "org_id": org["id"],
                    "gender": "male", "birth_date": "1990-01-01", "party_status": "full"}
            return lambda http: until_answered(http, "POST", "/members", server.admin.token, json=body,
                                               key=f"m{round_}-{i}")
        outcomes, back = burst_with_kill(server.base_url, [create(i) for i in range(150)], 50,
                                         kill_database(database))
        acknowledged |= {o.response.json()["id"] for o in outcomes if o.response.status_code == 201}
        # A write caught by the kill may have been applied while its answer was lost; SecantusDB forgets
        # retryable-write records on a restart, so the driver's retry then meets its own document
        # (duplicate _id, or phone_taken when the request is retried). Rare; never a lost write.
        unknown = [o.response.text for o in outcomes if o.response.status_code != 201]
        assert len(unknown) <= 3, unknown
    assert len(acknowledged) >= 290
    client, db = mongo(server, database.uri)
    with client:
        stored = {d["_id"] for d in db.members.find({"org_id": org["id"]}, {"_id": 1})}
    assert acknowledged - stored == set(), f"{len(acknowledged - stored)} acknowledged members were lost"


def test_driver_writes_survive_a_database_kill(tmp_path, processes):
    """Finding 1 at the driver: the client the API uses (make_client) on the embedded database as the
    API starts it, eight writers as fast as they go, SIGKILL; every acknowledged insert survives.
    (Before the fix: 5-27 lost per kill.)"""
    from server.db import make_client

    database = Database(tmp_path / "db", processes)
    acknowledged: list[str] = []
    stop = threading.Event()

    async def writer(k: int) -> None:
        client = make_client(Settings(), database.uri)
        try:
            for i in range(100_000):
                if stop.is_set():
                    return
                await client.t.x.insert_one({"_id": f"{k}-{i}"})
                acknowledged.append(f"{k}-{i}")
        except Exception:  # noqa: BLE001 - the database died under us: that is the point
            return
        finally:
            await client.close()

    threads = [threading.Thread(target=asyncio.run, args=(writer(k),)) for k in range(8)]
    for t in threads:
        t.start()
    time.sleep(1.5)
    database.kill()
    stop.set()
    for t in threads:
        t.join(30)
    database.restart()
    with MongoClient(database.uri) as client:
        stored = {d["_id"] for d in client.t.x.find({}, {"_id": 1})}
    assert len(acknowledged) > 200
    lost = set(acknowledged) - stored
    assert not lost, f"{len(lost)} of {len(acknowledged)} acknowledged inserts were lost"


# -- sign-ups, check-ins, announcements with long-polls: the database killed in the middle --------------


def test_signup_burst_survives_a_database_kill(deployment):
    """Capacity and waitlist hold across the kill, and every member is told what the roster says."""
    server, kill_and_restart = deployment
    org, organiser, members = branch_with_members(server, 80)
    now = datetime.now(UTC)
    act = organiser.ok("POST", "/activities", 201, json={
        "programme": "culture", "org_id": org["id"], "title": "羽毛球赛", "description": "",
        "starts_at": (now + timedelta(days=2)).isoformat(), "ends_at": (now + timedelta(days=2, hours=2)).isoformat(),
        "signup_opens_at": (now - timedelta(hours=1)).isoformat(),
        "signup_closes_at": (now + timedelta(days=1)).isoformat(), "capacity": 30, "waitlist": True})
    organiser.ok("POST", f"/activities/{act['id']}/publish", 200)
    path = f"/activities/{act['id']}/signups"
    calls = [lambda http, m=m: until_answered(http, "POST", path, m.token, json={}, key=f"s-{m.id}")
             for m in members]
    outcomes, back = burst_with_kill(server.base_url, calls, 15, kill_and_restart)
    assert all(o.response.status_code in (200, 201) for o in outcomes), {o.response.text for o in outcomes}
    told = {m.id: o.response.json() for m, o in zip(members, outcomes, strict=True)}
    roster = organiser.ok("GET", path)
    confirmed = {e["member_id"] for e in roster["confirmed"]}
    waiting = [(e["position"], e["member_id"]) for e in roster["waitlisted"]]
    assert len(confirmed) == 30  # never more than capacity, and no place lost
    assert [p for p, _ in waiting] == list(range(1, len(members) - 30 + 1))  # 1..n, no gap, no repeat
    assert confirmed == {m for m, body in told.items() if body["status"] == "confirmed"}
    assert sorted(waiting) == sorted((body["position"], m) for m, body in told.items()
                                     if body["status"] == "waitlisted")
    activity = organiser.ok("GET", f"/activities/{act['id']}")
    assert (activity["confirmed_count"], activity["waitlist_count"]) == (30, len(members) - 30)
    assert_settled(outcomes, back)


def test_checkin_burst_survives_a_database_kill(tmp_path, processes):
    """Finding 11, on the embedded default: check-ins whose key was claimed when the database died are
    settled when it is back, so their retries finish within seconds (before: 409 request_in_progress
    for 60 s, and QR tokens expired meanwhile)."""
    server = Server(tmp_path / "var", processes, restart_delay=OUTAGE)
    outcomes, back = checkin_burst(server, server.kill_embedded)
    assert_settled(outcomes, back)


def test_checkin_burst_survives_a_database_kill_with_two_api_processes(tmp_path, processes):
    database = Database(tmp_path / "db", processes)
    server = Server(tmp_path / "var", processes, database.uri, workers=2)
    outcomes, back = checkin_burst(server, kill_database(database, OUTAGE))
    assert_settled(outcomes, back)


def test_keys_of_a_killed_api_process_are_taken_over_within_seconds(tmp_path, processes):
    """The other way a key can be left running: its API process is killed in the middle. Its lease
    is not renewed, so the retries (on the surviving process) take the key over within seconds."""
    database = Database(tmp_path / "db", processes)
    server = Server(tmp_path / "var", processes, database.uri, workers=2)

    def kill_one_api_process() -> float:
        master = psutil.Process(server.process.pid)
        workers = [p for p in master.children() if "secantusd" not in " ".join(p.cmdline())]
        workers[0].kill()
        return time.monotonic()

    def api_processes() -> int:
        master = psutil.Process(server.process.pid)
        return len([p for p in master.children() if "secantusd" not in " ".join(p.cmdline())])

    # The kill strikes after the tenth answer; on a fast machine the killed process may hold no key just
    # then, which proves nothing, so the burst is run again (with fresh members) once the master has
    # restarted the process, at most three times.
    for _ in range(3):
        outcomes, killed = checkin_burst(server, kill_one_api_process, concurrency=60)
        # lease (3 s) + the challenge's grace (2 s) + the work, measured from the kill
        late = sorted(round(o.at - killed, 1) for o in outcomes if o.started < killed < o.at and o.at - killed > 8)
        assert not late, late
        if any("request_in_progress" in [code for _, code in o.seen] for o in outcomes):
            return
        deadline = time.monotonic() + 15
        while api_processes() < 2 and time.monotonic() < deadline:  # workers=2
            time.sleep(0.2)
    pytest.fail("in three bursts no retry met a key of the killed process: the test proved nothing")


def checkin_burst(server: Server, kill, concurrency: int = 20) -> tuple[list[Outcome], float]:
    """80 members check in at once while `kill` strikes; afterwards exactly one record each."""
    org, organiser, members = branch_with_members(server, 80)
    starts = datetime.now(UTC) + timedelta(minutes=10)  # check-in opens 30 min before the start
    session = organiser.ok("POST", "/study/sessions", 201, json={
        "org_id": org["id"], "track": "group_meeting", "title": "党小组会", "starts_at": starts.isoformat(),
        "ends_at": (starts + timedelta(hours=1)).isoformat()})
    qr = organiser.ok("GET", f"/study/sessions/{session['id']}/qr")["token"]
    body = {"session_id": session["id"], "qr_token": qr}
    calls = [lambda http, m=m: until_answered(http, "POST", "/study/checkins", m.token, json=body,
                                              key=f"c-{m.id}") for m in members]
    outcomes, back = burst_with_kill(server.base_url, calls, 10, kill, concurrency)
    assert all(o.response.status_code in (200, 201) for o in outcomes), {o.response.text for o in outcomes}
    attendance = organiser.ok("GET", f"/study/sessions/{session['id']}/attendance")
    present = [e["member_id"] for e in attendance["present"]]
    assert sorted(present) == sorted(m.id for m in members)  # each once
    assert [e["member_id"] for e in attendance["absent"]] == [organiser.id]  # the only one who did not
    return outcomes, back


class Mirror:
    """A member's copy of their feed, built by long-polling /sync as the app does."""

    def __init__(self, member: Client) -> None:
        self.member, self.items, self.since, self.expired = member, {}, None, 0

    def step(self, timeout: float) -> dict | None:
        path = "/sync?limit=50" + (f"&since={self.since}&timeout={timeout}" if self.since else "")
        try:
            response = self.member.get(path)
        except httpx.HTTPError:
            return None
        if response.status == 410:
            assert response.code == "sync_token_expired"
            self.items, self.since = {}, None
            self.expired += 1
            return None
        if response.status == 503:
            return None
        assert response.status == 200, response
        for change in response.json["changes"]:
            if change["op"] == "upsert":
                self.items[change["item"]["id"]] = change["item"]["version"]
            else:
                self.items.pop(change["id"], None)
        self.since = response.json["next_since"]
        return response.json

    def catch_up(self) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            body = self.step(0)
            if body is not None and not body["changes"] and not body["has_more"]:
                return
        raise AssertionError("sync did not settle")


def test_announcements_survive_a_database_kill_while_members_long_poll(deployment):
    server, kill_and_restart = deployment
    org, organiser, members = branch_with_members(server, 4)
    mirrors = [Mirror(m) for m in members]
    running = threading.Event()
    running.set()

    def poll(mirror: Mirror) -> None:
        while running.is_set():
            if mirror.step(2) is None:
                time.sleep(0.1)

    pollers = [threading.Thread(target=poll, args=(m,)) for m in mirrors]
    for t in pollers:
        t.start()
    try:
        calls = [lambda http, i=i: until_answered(http, "POST", "/announcements", organiser.token, key=f"a{i}",
                                                  json={"org_id": org["id"], "title": f"通知{i}", "body": "内容"})
                 for i in range(60)]
        # a few organisers publishing at once (20 at once contend on the feed counter and crawl)
        outcomes, back = burst_with_kill(server.base_url, calls, 15, kill_and_restart, concurrency=6)
    finally:
        running.clear()
        for t in pollers:
            t.join(30)
    assert all(o.response.status_code == 201 for o in outcomes), {o.response.text for o in outcomes}
    acknowledged = {"announcement:" + o.response.json()["id"] for o in outcomes}
    assert len(acknowledged) == 60
    for mirror in mirrors:
        mirror.catch_up()
        feed = whole_feed(mirror.member)
        assert acknowledged <= set(feed), f"{len(acknowledged - set(feed))} acknowledged announcements missing"
        assert mirror.items == feed
    assert_settled(outcomes, back)


# -- finding 2: a process follows the counter down; tokens beyond it expire ------------------------------


def _lose_last_feed_changes(api, count: int) -> None:
    """What a database that lost its last `count` feed commits looks like: the items they stamped
    (announcements, one seq each) are gone and the counter is back where it was before them."""
    async def lose() -> None:
        items = await api.db.feed_items.find({}, {"seq": 1, "ref_id": 1}).sort("seq", -1).limit(count).to_list()
        await api.db.feed_items.delete_many({"_id": {"$in": [d["_id"] for d in items]}})
        await api.db.announcements.delete_many({"_id": {"$in": [d["ref_id"] for d in items]}})
        await api.db.feed_counter.update_one({"_id": "seq"}, {"$inc": {"value": -count}})

    api.run(lose())


def _sync_from_scratch(member: Client) -> tuple[dict[str, int], str]:
    mirror = Mirror(member)
    mirror.catch_up()
    return mirror.items, mirror.since


def test_sync_token_beyond_the_committed_counter_expires(api):
    branch = api.org("支部")
    organiser = api.organiser(branch["id"])
    member = api.member(branch["id"])

    def publish(title: str) -> str:
        return organiser.ok("POST", "/announcements", 201, json={"org_id": branch["id"], "title": title,
                                                                  "body": "内容"})["id"]

    for i in range(3):
        publish(f"早{i}")
    _, since = _sync_from_scratch(member)
    parked: dict = {}
    poll = threading.Thread(target=lambda: parked.update(r=member.get(f"/sync?since={since}&timeout=8")))
    poll.start()
    time.sleep(0.5)

    _lose_last_feed_changes(api, 2)
    # the long-poll parked on a token the database no longer backs is answered 410 at once
    poll.join(4)
    assert "r" in parked, "the long-poll kept waiting on a token beyond the committed counter"
    assert parked["r"].status == 410 and parked["r"].code == "sync_token_expired", parked["r"]

    # new items take the lost sequence numbers again: the old token must not skip them
    fresh = [publish(f"新{i}") for i in range(3)]
    stale = member.get(f"/sync?since={since}")
    assert stale.status == 410 and stale.code == "sync_token_expired", stale

    # the process followed the counter down: a token issued now misses nothing published after it
    mirror, since = _sync_from_scratch(member)
    assert {f"announcement:{i}" for i in fresh} <= set(mirror)
    later = [publish(f"后{i}") for i in range(2)]
    changes = member.ok("GET", f"/sync?since={since}")["changes"]
    assert [c["item"]["ref_id"] for c in changes] == later
    mirror.update({c["item"]["id"]: c["item"]["version"] for c in changes})
    assert mirror == whole_feed(member)
