"""Test harness: a real server on a free port, the real embedded database, HTTP all the way.

One SecantusDB (`--storage-path :memory:`) serves the whole session, or BRANCHLINE_MONGO_URI
when set; each test gets its own database. The API and a fake WeChat run in one background
event loop; tests talk to them over HTTP with httpx. `api.clock` moves the server's time; a test's server
keeps its files under the test's tmp_path, and `@pytest.mark.settings(field=value)` changes its settings.
`start_server` runs `python -m server` in processes of its own on the same database server.

The fixtures and the classes they yield live here; the helpers tests build worlds with are in builders.py.
"""

from __future__ import annotations

import asyncio
import os
import threading
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psutil
import pymongo
import pytest
from pymongo import MongoClient
from tornado.netutil import bind_sockets

from server.app import make_app, make_context, start_http
from server.bootstrap import ensure_admin
from server.config import Settings
from server.db import create_indexes
from server.embedded import EmbeddedDatabase
from server.launcher import ServerProcess
from server.security import TokenSigner
from tests.fake_wechat import make_fake_wechat

TEST_SECRET = "test-secret-for-branchline-tests-only-0123456789"
ADMIN_PHONE = "13800000000"
ADMIN_PASSWORD = "admin-password-123"


class LoopThread:
    """An asyncio loop in a daemon thread; `run(coro)` runs a coroutine there and waits."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="server-loop", daemon=True)
        self.thread.start()

    def run(self, coro: Awaitable, timeout: float = 60) -> Any:
        future: Future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result(timeout)


@pytest.fixture(scope="session")
def mongo_uri():
    uri = os.environ.get("BRANCHLINE_MONGO_URI")
    if uri:
        yield uri
        return
    db = EmbeddedDatabase(":memory:", restart=False)
    yield db.start()
    db.stop()


@pytest.fixture(scope="session")
def loop_thread():
    return LoopThread()


@pytest.fixture(scope="session")
def fake_wechat(loop_thread):
    app = make_fake_wechat()
    sockets = bind_sockets(0, "127.0.0.1")
    port = sockets[0].getsockname()[1]

    async def start():
        from tornado.httpserver import HTTPServer
        server = HTTPServer(app)
        server.add_sockets(sockets)

    loop_thread.run(start())
    return {"base": f"http://127.0.0.1:{port}", "state": app.settings["state"]}


class Response:
    """An httpx response with `.json` parsed and a readable failure message."""

    def __init__(self, raw: httpx.Response) -> None:
        self.raw = raw
        self.status = raw.status_code
        self.headers = raw.headers
        self.content = raw.content
        ctype = raw.headers.get("content-type", "")
        self.json = raw.json() if raw.content and "json" in ctype else None

    @property
    def code(self) -> str | None:
        return (self.json or {}).get("code") if isinstance(self.json, dict) else None

    def __repr__(self) -> str:
        return f"<{self.status} {self.raw.request.method} {self.raw.request.url.path} {self.content[:500]!r}>"


class Client:
    """A caller of the API: anonymous, or signed in with a bearer token."""

    def __init__(self, base_url: str, token: str | None = None, member: dict | None = None) -> None:
        self.base_url = base_url
        self.token = token
        self.member = member
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=base_url, headers=headers, timeout=60)

    @property
    def id(self) -> str:
        return self.member["id"]

    def request(self, method: str, path: str, **kwargs) -> Response:
        return Response(self.http.request(method, "/api/v1" + path if path.startswith("/") and not
                                          path.startswith(("/healthz", "/readyz", "/metrics", "/openapi"))
                                          else path, **kwargs))

    def get(self, path: str, **kw) -> Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, json: Any = None, **kw) -> Response:
        return self.request("POST", path, json=json, **kw)

    def put(self, path: str, json: Any = None, **kw) -> Response:
        return self.request("PUT", path, json=json, **kw)

    def patch(self, path: str, json: Any = None, **kw) -> Response:
        return self.request("PATCH", path, json=json, **kw)

    def delete(self, path: str, **kw) -> Response:
        return self.request("DELETE", path, **kw)

    def ok(self, method: str, path: str, status: int = 200, **kw) -> Any:
        """Make a request that must answer `status`; return the JSON body."""
        response = self.request(method, path, **kw)
        assert response.status == status, response
        return response.json


class Api:
    """One running server on its own database, with helpers to build a world through HTTP."""

    def __init__(self, loop_thread: LoopThread, ctx, port: int, server, app=None) -> None:
        self.app = app
        self.loop_thread = loop_thread
        self.ctx = ctx
        self.clock = ctx.clock
        self.port = port
        self.server = server
        self.base_url = f"http://127.0.0.1:{port}"
        self.signer = TokenSigner(ctx.settings)
        self._phones = iter(range(13900000000, 13999999999))
        self._admin: Client | None = None

    def run(self, coro: Awaitable, timeout: float = 60) -> Any:
        """Run a coroutine on the server's loop (for reading the database in assertions)."""
        return self.loop_thread.run(coro, timeout)

    @property
    def db(self):
        return self.ctx.db

    def anonymous(self) -> Client:
        return Client(self.base_url)

    def as_member(self, member: dict) -> Client:
        """A client signed in as `member` with a real access token from the server's signer."""
        token = self.signer.issue(member["id"], self.clock.now(), 900)
        return Client(self.base_url, token, member)

    @property
    def admin(self) -> Client:
        """The root administrator, signed in through POST /auth/password."""
        if self._admin is None:
            self.run(ensure_admin(self.ctx, ADMIN_PHONE, ADMIN_PASSWORD, "管理员", "机关党委"))
            body = self.anonymous().ok("POST", "/auth/password",
                                       json={"phone": ADMIN_PHONE, "password": ADMIN_PASSWORD})
            self._admin = Client(self.base_url, body["access_token"], body["member"])
        return self._admin

    @property
    def root_org_id(self) -> str:
        return self.admin.member["org_id"]

    def phone(self) -> str:
        return str(next(self._phones))

    def org(self, name: str, kind: str = "branch", parent_id: str | None = None) -> dict:
        return self.admin.ok("POST", "/orgs", 201,
                             json={"name": name, "kind": kind, "parent_id": parent_id or self.root_org_id})

    def member(self, org_id: str, name: str = "党员", *, gender: str = "male",
               birth_date: str = "1990-01-01", party_status: str = "full", tags: list[str] | None = None,
               roles: list[dict] | None = None) -> Client:
        """Create a member through the API (as the admin) and return a client signed in as them."""
        body = self.admin.ok("POST", "/members", 201, json={
            "name": name, "phone": self.phone(), "org_id": org_id, "gender": gender,
            "birth_date": birth_date, "party_status": party_status, "tags": tags or []})
        if roles:
            body = self.admin.ok("PUT", f"/members/{body['id']}/roles", json={"roles": roles})
        return self.as_member(body)

    def many_members(self, org_id: str, count: int, gender: str = "female") -> list[Client]:
        """Create `count` members through POST /members, 50 at a time (one by one is slow for hundreds)."""
        headers = {"Authorization": f"Bearer {self.admin.token}"}
        bodies = [{"name": f"党员{i}", "phone": self.phone(), "org_id": org_id, "gender": gender,
                   "birth_date": "1990-01-01", "party_status": "full"} for i in range(count)]
        created = self.concurrently([lambda http, b=b: http.post("/members", json=b, headers=headers)
                                     for b in bodies], limit=50)
        assert all(r.status == 201 for r in created), [r for r in created if r.status != 201][:3]
        return [self.as_member(r.json) for r in created]

    def organiser(self, org_id: str, name: str = "书记") -> Client:
        return self.member(org_id, name, roles=[{"role": "organiser", "org_id": org_id}])

    def org_admin(self, org_id: str, name: str = "管理员") -> Client:
        return self.member(org_id, name, roles=[{"role": "admin", "org_id": org_id}])

    def concurrently(self, calls: list[Callable[[httpx.AsyncClient], Awaitable[httpx.Response]]],
                     limit: int = 500) -> list[Response]:
        """Run request coroutines at once over one async client; results in call order."""

        async def main() -> list[Response]:
            limits = httpx.Limits(max_connections=limit, max_keepalive_connections=limit)
            async with httpx.AsyncClient(base_url=self.base_url + "/api/v1", timeout=120, limits=limits) as http:
                results = await asyncio.gather(*(call(http) for call in calls))
            return [Response(r) for r in results]

        return asyncio.run(main())


def pytest_configure(config):
    config.addinivalue_line("markers", "settings(**fields): settings of the test's server beyond the defaults")
    config.addinivalue_line("markers", "solo: kills processes or bounds time; run alone, not beside other tests")


@pytest.fixture
def settings_overrides(request, tmp_path) -> dict:
    """Each test's server keeps its files in the test's own directory; `@pytest.mark.settings(...)` on a
    test (or a module's `pytestmark`) changes more."""
    mark = request.node.get_closest_marker("settings")
    return {"data_dir": tmp_path, **(mark.kwargs if mark else {})}


@pytest.fixture
def api(loop_thread, mongo_uri, fake_wechat, settings_overrides):
    settings = Settings(**{
        "jwt_secret": TEST_SECRET,
        "db_name": f"t_{uuid.uuid4().hex[:12]}",
        "wechat_appid": "wx-test-app",
        "wechat_secret": "wx-test-secret",
        "wechat_api_base": fake_wechat["base"],
        "wechat_timeout_seconds": 1.0,
        # One embedded database serves the whole suite on a 2-core machine: a burst of a few hundred
        # requests late in the run can queue past production's 3 s driver bound and answer 503 (seen
        # in the check-in races). Tests of that bound run real processes with the default settings.
        "mongo_timeout_ms": 10_000,
        **settings_overrides,  # a test's own settings win over these
    })
    sockets = bind_sockets(0, "127.0.0.1")
    port = sockets[0].getsockname()[1]

    async def start():
        ctx = make_context(settings, mongo_uri)
        await create_indexes(ctx.db)
        app = make_app(ctx)
        server = await start_http(app, settings, sockets)
        return ctx, server, app

    ctx, server, app = loop_thread.run(start())
    yield Api(loop_thread, ctx, port, server, app)

    async def stop():
        server.stop()
        ctx.stopping.set()  # background tasks (feed watcher, scheduler) end on this
        await server.close_all_connections()
        await asyncio.sleep(0.05)
        # Not bound by the test's 10 s driver limit: on the shared embedded server, dropping a database a
        # 200-member burst had just written once took longer (a cleanup, not a request anyone waits on).
        with pymongo.timeout(120):
            await ctx.client.drop_database(settings.db_name)
        await ctx.client.close()

    loop_thread.run(stop())


# -- `python -m server` in its own processes, on the session's database ------------------------------

ROOT = Path(__file__).resolve().parent.parent
PROCESS_SECRET = "process-test-secret-0123456789-0123456789-abcdef"
PROCESS_ADMIN_PHONE = "13600000000"
PROCESS_ADMIN_PASSWORD = "process-admin-password"


class SharedDatabaseServer(ServerProcess):
    """`python -m server` as a subprocess on the session's database server, with its own database name."""

    def __init__(self, mongo_uri: str, data_dir: Path, db_name: str, processes: int = 1) -> None:
        self.mongo_uri, self.db_name = mongo_uri, db_name
        env = {**os.environ, "BRANCHLINE_JWT_SECRET": PROCESS_SECRET, "BRANCHLINE_DB_NAME": db_name,
               "BRANCHLINE_BOOTSTRAP_ADMIN_PHONE": PROCESS_ADMIN_PHONE,
               "BRANCHLINE_BOOTSTRAP_ADMIN_PASSWORD": PROCESS_ADMIN_PASSWORD, "BRANCHLINE_LOG_LEVEL": "WARNING"}
        super().__init__(["--processes", str(processes), "--mongo-uri", mongo_uri, "--data-dir", str(data_dir)],
                         env=env)
        self.signer = TokenSigner(Settings(jwt_secret=PROCESS_SECRET))

    def api_pids(self) -> list[int]:
        master = psutil.Process(self.process.pid)
        return [c.pid for c in master.children()] or [master.pid]

    # -- building a world through HTTP ------------------------------------------------------------

    def admin(self) -> Client:
        body = httpx.post(self.base_url + "/api/v1/auth/password",
                          json={"phone": PROCESS_ADMIN_PHONE, "password": PROCESS_ADMIN_PASSWORD}).json()
        return Client(self.base_url, body["access_token"], body["member"])

    def as_member(self, member: dict) -> Client:
        return Client(self.base_url, self.signer.issue(member["id"], datetime.now(UTC), 900), member)


@pytest.fixture
def start_server(mongo_uri, tmp_path):
    """Start `python -m server` processes on one fresh database; all are stopped and the database dropped after."""
    started: list[SharedDatabaseServer] = []
    db_name = f"p_{uuid.uuid4().hex[:12]}"

    def start(processes: int = 1) -> SharedDatabaseServer:
        server = SharedDatabaseServer(mongo_uri, tmp_path / f"data{len(started)}", db_name, processes)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
    with MongoClient(mongo_uri) as client:
        client.drop_database(db_name)
