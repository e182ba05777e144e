"""`python -m server` as a child process, ready once it answers /healthz: the one way the tests, the
benchmarks and the screenshot script start a real server (each adds its own arguments and environment).

Standard library only, so that it needs nothing beyond requirements.txt.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from server.embedded import free_port

ROOT = Path(__file__).resolve().parent.parent


class ServerProcess:
    """Start `python -m server *args --port P` in the repository and wait until it is healthy."""

    def __init__(self, args: list[str], *, env: dict[str, str] | None = None, timeout: float = 60) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen([sys.executable, "-m", "server", *args, "--port", str(self.port)],
                                        cwd=ROOT, env=env if env is not None else dict(os.environ),
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self._wait_healthy(timeout)

    def _wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(self.base_url + "/healthz", timeout=1) as answer:
                    if answer.status == 200:
                        return
            except (OSError, urllib.error.URLError):
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("server did not start: " + self.process.stderr.read().decode(errors="replace"))
            time.sleep(0.1)

    def stop(self, timeout: float = 20) -> None:
        """SIGTERM (the server drains in-flight requests), then SIGKILL if it has not ended in time."""
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
