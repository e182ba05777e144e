"""Benchmark harness: a real `python -m server` on a SecantusDB started here, a bare Tornado ceiling,
and a concurrent load generator. Figures are ratios measured in one run, never asserted in tests.

    with BenchServer(processes=1) as server:
        admin = server.admin_token()                     # bootstrap admin, signed in
        token = server.token_for(member_id)              # mint a member token (same secret)
        stats = run_burst(server.base_url, requests, concurrency=100)
        print(stats.rate, stats.p99_ms, server.peak_rss_mb())

`requests` is a list of `Req(method, path, headers=None, json=None)`; paths start with /api/v1.
`bare_tornado_rate(n, concurrency)` measures a bare Tornado JSON handler with the same generator.
`server.mongo()` gives a synchronous-free async PyMongo database handle for the "database ceiling".

The database is durable as in production: a real storage path (so the embedded database runs with
`--sync-on-commit`), and the PyMongo ceiling uses the API's write and read concerns (server.db.DURABLE),
so both sides pay for journaled commits.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from server.config import Settings  # noqa: E402
from server.db import DURABLE  # noqa: E402
from server.embedded import EmbeddedDatabase  # noqa: E402
from server.security import TokenSigner  # noqa: E402

SECRET = "bench-secret-" + "x" * 40
ADMIN_PHONE = "13700000000"
ADMIN_PASSWORD = "bench-admin-password"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Req:
    method: str
    path: str
    headers: dict | None = None
    json: object | None = None


@dataclass
class Stats:
    count: int
    seconds: float
    latencies_ms: list[float] = field(repr=False)
    statuses: dict[int, int]

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0

    @property
    def p50_ms(self) -> float:
        return statistics.median(self.latencies_ms)

    @property
    def p99_ms(self) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]

    def line(self, label: str) -> str:
        return (f"{label}: {self.count} requests in {self.seconds:.2f} s = {self.rate:.0f}/s, "
                f"p50 {self.p50_ms:.1f} ms, p99 {self.p99_ms:.1f} ms, statuses {self.statuses}")


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """Read one HTTP/1.1 response with a Content-Length body: (status, body)."""
    status = int((await reader.readline()).split()[1])
    length = 0
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        if name.lower() == "content-length":
            length = int(value)
    return status, (await reader.readexactly(length) if length else b"")


async def _one_connection(host: str, port: int, queue: list, latencies: list, statuses: dict) -> None:
    """A minimal keep-alive HTTP/1.1 client: one request at a time on one connection.

    httpx costs more CPU per request than the server under test, which would hide the server's
    speed; this costs a few microseconds.
    """
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while queue:
            req = queue.pop()
            body = b"" if req.json is None else json.dumps(req.json).encode()
            head = [f"{req.method} {req.path} HTTP/1.1", f"Host: {host}:{port}", f"Content-Length: {len(body)}"]
            if req.json is not None:
                head.append("Content-Type: application/json")
            head += [f"{k}: {v}" for k, v in (req.headers or {}).items()]
            started = time.perf_counter()
            writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
            status, _ = await read_response(reader)
            latencies.append((time.perf_counter() - started) * 1000)
            statuses[status] = statuses.get(status, 0) + 1
    finally:
        writer.close()


async def _burst(base_url: str, requests: list[Req], concurrency: int) -> Stats:
    host, port = base_url.split("//")[1].split(":")
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    queue = list(reversed(requests))
    started = time.perf_counter()
    await asyncio.gather(*(_one_connection(host, int(port), queue, latencies, statuses)
                           for _ in range(min(concurrency, len(requests)))))
    elapsed = time.perf_counter() - started
    return Stats(len(requests), elapsed, latencies, statuses)


def run_burst(base_url: str, requests: list[Req], concurrency: int = 100) -> Stats:
    return asyncio.run(_burst(base_url, requests, concurrency))


class BenchServer:
    """`python -m server` (1..N processes) on a fresh durable SecantusDB, with a bootstrap admin."""

    def __init__(self, processes: int = 1, extra_env: dict | None = None) -> None:
        self.processes = processes
        self.extra_env = extra_env or {}
        self.db_name = f"bench_{uuid.uuid4().hex[:8]}"
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.storage = tempfile.mkdtemp(prefix="branchline-bench-db-")
        self.database = EmbeddedDatabase(self.storage, restart=False)
        self.signer = TokenSigner(Settings(jwt_secret=SECRET))
        self._rss_peak = 0
        self._sampling = False

    def __enter__(self) -> BenchServer:
        self.mongo_uri = self.database.start()
        self.data_dir = tempfile.mkdtemp(prefix="branchline-bench-")
        env = {**os.environ, "BRANCHLINE_JWT_SECRET": SECRET, "BRANCHLINE_DB_NAME": self.db_name,
               "BRANCHLINE_BOOTSTRAP_ADMIN_PHONE": ADMIN_PHONE,
               "BRANCHLINE_BOOTSTRAP_ADMIN_PASSWORD": ADMIN_PASSWORD,
               "BRANCHLINE_LOG_LEVEL": "WARNING", **self.extra_env}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "server", "--port", str(self.port), "--mongo-uri", self.mongo_uri,
             "--data-dir", self.data_dir, "--processes", str(self.processes)],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.base_url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            raise RuntimeError("server did not start: " + self.process.stderr.read1().decode(errors="replace"))
        self._sampling = True
        threading.Thread(target=self._sample_rss, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._sampling = False
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.database.stop()
        shutil.rmtree(self.storage, ignore_errors=True)

    def api_processes(self) -> list[psutil.Process]:
        master = psutil.Process(self.process.pid)
        children = [c for c in master.children() if "secantus" not in " ".join(c.cmdline())]
        return children or [master]

    def _sample_rss(self) -> None:
        while self._sampling:
            try:
                rss = max(p.memory_info().rss for p in self.api_processes())
                self._rss_peak = max(self._rss_peak, rss)
            except psutil.Error:
                pass
            time.sleep(0.05)

    def peak_rss_mb(self) -> float:
        return self._rss_peak / 2**20

    def reset_peak(self) -> None:
        self._rss_peak = 0

    def admin_token(self) -> str:
        body = httpx.post(self.base_url + "/api/v1/auth/password",
                          json={"phone": ADMIN_PHONE, "password": ADMIN_PASSWORD}).json()
        self.admin_member = body["member"]
        return body["access_token"]

    def token_for(self, member_id: str) -> str:
        return self.signer.issue(member_id, datetime.now(UTC), 900)

    def mongo(self):
        """A fresh async PyMongo client on the same database (create it inside your event loop)."""
        from pymongo import AsyncMongoClient

        client = AsyncMongoClient(self.mongo_uri, tz_aware=True, **DURABLE)
        return client, client[self.db_name]

    def create_members(self, admin_token: str, org_id: str, count: int, **fields) -> list[dict]:
        """Create `count` members through the API; returns their Member bodies."""
        requests = [Req("POST", "/api/v1/members", {"Authorization": f"Bearer {admin_token}"},
                        {"name": f"成员{i}", "phone": f"1360{i:07d}", "org_id": org_id,
                         "gender": fields.get("gender", "female"), "birth_date": fields.get("birth_date", "1995-05-05"),
                         "party_status": "full", "tags": fields.get("tags", [])}) for i in range(count)]
        out: list[dict] = []

        async def go() -> None:
            async with httpx.AsyncClient(base_url=self.base_url, timeout=60) as http:
                for chunk in range(0, len(requests), 50):
                    responses = await asyncio.gather(*(http.request(r.method, r.path, headers=r.headers, json=r.json)
                                                       for r in requests[chunk:chunk + 50]))
                    for response in responses:
                        assert response.status_code == 201, response.text
                        out.append(response.json())

        asyncio.run(go())
        return out


BARE = """
import sys, tornado.web, tornado.ioloop, asyncio
class H(tornado.web.RequestHandler):
    def get(self):
        self.set_header("Content-Type", "application/json")
        self.write(b'{"changes":[],"next_since":"x","has_more":false,"unread_count":0}')
async def main():
    tornado.web.Application([(r"/.*", H)]).listen(int(sys.argv[1]), "127.0.0.1")
    await asyncio.Event().wait()
asyncio.run(main())
"""


@contextlib.contextmanager
def bare_tornado():
    """A bare Tornado handler answering a small JSON body in a process of its own: (its base URL, its pid)."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-c", BARE, str(port)])
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}", process.pid
    finally:
        process.terminate()
        process.wait()


def bare_tornado_rate(count: int = 3000, concurrency: int = 50) -> Stats:
    """The framework ceiling: a bare Tornado handler answering a small JSON body."""
    with bare_tornado() as (base, _):
        return run_burst(base, [Req("GET", "/x")] * count, concurrency)
