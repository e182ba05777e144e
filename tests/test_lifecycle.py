"""`python -m server` as the README runs it: start, serve, stop, survive a dead database, leave nothing behind."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import psutil
import pytest

from server.db import INDEXED_MODULES
from server.embedded import free_port
from tests.builders import open_request

# Run alone, after the parallel tests (README): it bounds how fast requests fail while the database is dead.
pytestmark = pytest.mark.solo

ROOT = Path(__file__).resolve().parent.parent
ADMIN = {"phone": "13800000001", "password": "lifecycle-password"}


class ServerProcess:
    started: list = []
    def __init__(self, tmp_path: Path, *args: str, env: dict | None = None) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.data_dir = tmp_path / "var"
        inherited = {k: v for k, v in os.environ.items() if k not in ("BRANCHLINE_MONGO_URI", "BRANCHLINE_JWT_SECRET")}
        self.env = {**inherited, "BRANCHLINE_PORT": str(self.port), "BRANCHLINE_DATA_DIR": str(self.data_dir),
                    "BRANCHLINE_BOOTSTRAP_ADMIN_PHONE": ADMIN["phone"],
                    "BRANCHLINE_BOOTSTRAP_ADMIN_PASSWORD": ADMIN["password"], **(env or {})}
        # README command 1 runs exactly this from the repository root.
        self.process = subprocess.Popen([sys.executable, "-m", "server", *args], cwd=ROOT, env=self.env,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        ServerProcess.started.append(self)
        self.wait_healthy()

    def wait_healthy(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.process.stderr.read().decode()
            try:
                if httpx.get(self.base + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError("server did not answer /healthz in time")

    def tree(self) -> list[psutil.Process]:
        parent = psutil.Process(self.process.pid)
        return [parent, *parent.children(recursive=True)]

    def database_process(self) -> psutil.Process:
        return next(p for p in self.tree() if "secantusd" in " ".join(p.cmdline()))

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
        self.process.send_signal(sig)
        return self.process.wait(timeout)

    def login(self) -> dict:
        return httpx.post(self.base + "/api/v1/auth/password", json=ADMIN, timeout=10).json()


@pytest.fixture(autouse=True)
def no_leftovers():
    """Whatever a test starts is ended when it finishes, passed or failed."""
    started: list[ServerProcess] = []
    ServerProcess.started = started
    yield
    for server in started:
        try:
            tree = server.tree()
        except psutil.Error:
            continue
        for process in tree:
            try:
                process.kill()
            except psutil.Error:
                pass


def gone(processes: list[psutil.Process], timeout: float = 10) -> bool:
    _, alive = psutil.wait_procs(processes, timeout=timeout)
    return not [p for p in alive if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


def test_start_use_and_sigterm_leave_nothing_running(tmp_path):
    server = ServerProcess(tmp_path)
    processes = server.tree()
    assert any("secantusd" in " ".join(p.cmdline()) for p in processes)
    secret = (server.data_dir / "jwt_secret")
    assert secret.exists() and oct(secret.stat().st_mode & 0o777) == "0o600"
    login = server.login()
    headers = {"Authorization": f"Bearer {login['access_token']}"}
    org = httpx.post(server.base + "/api/v1/orgs", headers=headers,
                     json={"name": "支部", "kind": "branch", "parent_id": login["member"]["org_id"]}).json()
    assert server.stop() == 0
    assert gone(processes)

    # Data and the generated secret survive a restart: the old token still works.
    again = ServerProcess(tmp_path)
    assert httpx.get(f"{again.base}/api/v1/orgs/{org['id']}", headers=headers).json()["name"] == "支部"
    processes = again.tree()
    assert again.stop(signal.SIGINT) == 0
    assert gone(processes)


def test_database_dies_with_a_killed_api_process(tmp_path):
    server = ServerProcess(tmp_path)
    database = server.database_process()
    server.stop(signal.SIGKILL)
    assert gone([database]), "the embedded database outlived the API process"


def test_dead_database_answers_503_then_recovers(tmp_path):
    server = ServerProcess(tmp_path, env={"BRANCHLINE_EMBEDDED_RESTART_DELAY": "12"})
    headers = {"Authorization": f"Bearer {server.login()['access_token']}"}
    assert httpx.get(server.base + "/readyz").status_code == 200
    database = server.database_process()
    database.kill()
    database.wait(5)

    started = time.monotonic()
    ready = httpx.get(server.base + "/readyz", timeout=10)
    assert ready.status_code == 503
    t_ready = time.monotonic() - started
    me = httpx.get(server.base + "/api/v1/me", headers=headers, timeout=15)
    assert me.status_code in (401, 503)  # the cached principal may answer first; a query must then fail
    orgs = httpx.get(server.base + "/api/v1/orgs", headers=headers, timeout=15)
    assert orgs.status_code == 503 and orgs.json()["code"] == "database_unavailable"
    assert orgs.headers["Content-Type"] == "application/problem+json"
    elapsed = time.monotonic() - started
    assert elapsed < 11, f"a dead database must not hang requests (readyz {t_ready:.1f} s, all {elapsed:.1f} s)"

    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        if httpx.get(server.base + "/readyz", timeout=10).status_code == 200:
            break
        time.sleep(0.3)
    assert httpx.get(server.base + "/api/v1/orgs", headers=headers, timeout=10).status_code == 200
    processes = server.tree()
    assert server.stop() == 0
    assert gone(processes)


def test_several_processes_share_the_port_and_stop_together(tmp_path):
    server = ServerProcess(tmp_path, "--processes", "2")
    api_children = [p for p in server.tree()[1:] if "secantusd" not in " ".join(p.cmdline())]
    assert len(api_children) == 2
    headers = {"Authorization": f"Bearer {server.login()['access_token']}"}
    with httpx.Client(base_url=server.base) as http:
        assert all(http.get("/api/v1/me", headers=headers).status_code == 200 for _ in range(20))
    # /metrics adds up every API process, whichever one answers.
    for _ in range(3):
        text = httpx.get(server.base + "/metrics").text
        served = sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                     if line.startswith("branchline_http_requests_total{") and 'route="MeHandler"' in line)
        assert served == 20
    processes = server.tree()
    assert server.stop() == 0
    assert gone(processes)


def test_sigterm_lets_in_flight_requests_finish(tmp_path, fake_wechat):
    server = ServerProcess(tmp_path, env={"BRANCHLINE_WECHAT_API_BASE": fake_wechat["base"]})
    result: dict = {}

    def slow_login() -> None:  # the fake WeChat answers "slow" after 2 s
        result["response"] = httpx.post(server.base + "/api/v1/auth/wechat", json={"code": "slow"}, timeout=30)

    thread = threading.Thread(target=slow_login)
    thread.start()
    time.sleep(0.7)
    processes = server.tree()
    server.process.send_signal(signal.SIGTERM)
    thread.join(30)
    assert result["response"].status_code == 200 and result["response"].json()["status"] == "bind_required"
    assert server.process.wait(20) == 0
    assert gone(processes)


def test_sigterm_after_an_aborted_upload_has_nothing_left_to_wait_for(tmp_path):
    server = ServerProcess(tmp_path)
    try:
        open_request(server.port, server.login()["access_token"], "/files", 5000, b"abc").close()
        assert server.stop() == 0
        log = server.process.stderr.read().decode()
    finally:
        server.process.kill()
    assert "still running after the grace period" not in log, log


def test_create_admin_from_the_shell(tmp_path, mongo_uri):
    env = {**os.environ, "BRANCHLINE_DB_NAME": f"cli_{os.getpid()}_{int(time.time())}"}
    command = [sys.executable, "-m", "server", "create-admin", "--phone", "13800000099",
               "--password", "shell-password-1", "--name", "命令行管理员", "--mongo-uri", mongo_uri]
    first = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert first.returncode == 0 and "administrator ready" in first.stdout, first.stderr
    assert "shell-password-1" not in first.stdout + first.stderr

    # A server on that database signs the new administrator in.
    server = ServerProcess(tmp_path, env={"BRANCHLINE_MONGO_URI": mongo_uri, "BRANCHLINE_JWT_SECRET": "x" * 40,
                                          "BRANCHLINE_DB_NAME": env["BRANCHLINE_DB_NAME"]})
    try:
        login = httpx.post(server.base + "/api/v1/auth/password",
                           json={"phone": "13800000099", "password": "shell-password-1"}, timeout=10).json()
        assert login["member"]["name"] == "命令行管理员"
        assert login["member"]["roles"][0]["role"] == "admin"
        root = httpx.get(f"{server.base}/api/v1/orgs/{login['member']['org_id']}",
                         headers={"Authorization": f"Bearer {login['access_token']}"}).json()
        assert root["parent_id"] is None and root["name"] == "机关党委"
    finally:
        server.stop()


@pytest.mark.parametrize("value", ["0", "-1"])
def test_processes_must_be_positive(tmp_path, value):
    result = subprocess.run([sys.executable, "-m", "server", "--processes", value], cwd=ROOT,
                            capture_output=True, text=True, timeout=30,
                            env={**os.environ, "BRANCHLINE_DATA_DIR": str(tmp_path)})
    assert result.returncode != 0


def test_start_up_declares_the_indexes_of_every_module_that_has_some():
    root = Path(__file__).resolve().parent.parent
    declaring = {".".join(path.relative_to(root).with_suffix("").parts) for path in (root / "server").rglob("*.py")
                 if re.search(r"^indexes\(", path.read_text(encoding="utf-8"), re.MULTILINE)}
    assert declaring == set(INDEXED_MODULES)
