"""The embedded database: SecantusDB run as a child process (never imported: it is GPL-2.0).

The child gets PR_SET_PDEATHSIG on Linux, so the kernel ends it if the API process dies for
any reason, and a watcher thread restarts it (same port, same data) if it dies on its own.
(The signal follows the *thread* that started the child: start it from a thread that lives as
long as the database should, as the watcher does.)

It runs with `--sync-on-commit`: SecantusDB otherwise acknowledges a commit before its log is on
disk, and a SIGKILL or power loss then lost 5-27 acknowledged inserts per kill (measured), whatever
the write concern asks. An in-memory database (`:memory:`, the tests) has nothing to keep and skips it.
"""

from __future__ import annotations

import ctypes
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

log = logging.getLogger("branchline.embedded")

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # runs in the child between fork and exec
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass
    os.setpgrp()  # Ctrl-C on the terminal reaches the API, which stops the database in order


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _executable() -> str:
    beside = Path(sys.executable).parent / "secantusd-py"
    found = str(beside) if beside.exists() else shutil.which("secantusd-py")
    if not found:
        raise RuntimeError("secantusd-py not found: install requirements.txt (package secantusdb)")
    return found


class EmbeddedDatabase:
    def __init__(self, storage_path: str, log_path: Path | None = None, host: str = "127.0.0.1",
                 port: int | None = None, restart: bool = True, restart_delay: float = 1.0) -> None:
        self.storage_path = storage_path
        self.log_path = log_path
        self.host = host
        self.port = port or free_port(host)
        self.restart = restart
        self.restart_delay = restart_delay
        self.process: subprocess.Popen | None = None
        self._stopping = threading.Event()
        self._watcher: threading.Thread | None = None

    @property
    def uri(self) -> str:
        return f"mongodb://{self.host}:{self.port}/?directConnection=true"

    def start(self, timeout: float = 60.0) -> str:
        self._spawn()
        self._wait_ready(timeout)
        if self.restart:
            self._watcher = threading.Thread(target=self._watch, name="embedded-db-watch", daemon=True)
            self._watcher.start()
        return self.uri

    def _spawn(self) -> None:
        if self.storage_path != ":memory:":
            Path(self.storage_path).mkdir(parents=True, exist_ok=True)
        output = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        durable = ["--sync-on-commit"] if self.storage_path != ":memory:" else []
        self.process = subprocess.Popen(
            [_executable(), "--storage-path", self.storage_path, "--port", str(self.port),
             "--host", self.host, "--log-level", "WARNING", *durable],
            stdin=subprocess.DEVNULL, stdout=output, stderr=output, preexec_fn=_die_with_parent,
        )
        if output is not subprocess.DEVNULL:
            output.close()
        log.info("embedded database pid %d on %s:%d", self.process.pid, self.host, self.port)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the embedded database exited with {self.process.returncode}; "
                                   f"see {self.log_path or 'its output'}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("the embedded database did not start in time")

    def _watch(self) -> None:
        delay = self.restart_delay
        while not self._stopping.is_set():
            process = self.process
            if process is not None and process.poll() is not None and not self._stopping.is_set():
                log.warning("embedded database exited with %s; restarting", process.returncode)
                time.sleep(delay)
                if self._stopping.is_set():
                    return
                try:
                    self._spawn()
                    self._wait_ready(60)
                    delay = self.restart_delay
                except (OSError, RuntimeError) as exc:
                    log.error("embedded database restart failed: %s", exc)
                    delay = min(delay * 2, 30)
            self._stopping.wait(0.2)

    def stop(self, timeout: float = 15.0) -> None:
        self._stopping.set()
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.info("embedded database stopped")
