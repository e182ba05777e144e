"""Uploads stream to disk: the API process's memory stays flat while a 20 MiB file arrives."""

from __future__ import annotations

import threading
import time

import httpx
import psutil

from server import files
from tests.test_sync_processes import start_server  # noqa: F401  (the fixture)

CHUNK = 256 * 1024


def body(total: int, fill: bytes = b"a"):
    sent = 0
    while sent < total:
        size = min(CHUNK, total - sent)
        sent += size
        yield fill * size


def test_memory_stays_flat_while_20_mib_stream_in(start_server):  # noqa: F811
    server = start_server()
    admin = server.admin()
    (pid,) = server.api_pids()
    process = psutil.Process(pid)
    headers = {"Authorization": f"Bearer {admin.token}", "Content-Type": "text/plain", "X-Filename": "big.txt"}
    with httpx.Client(base_url=server.base_url + "/api/v1", timeout=120) as http:
        warm = http.post("/files", content=b"warm up " * 1000, headers=headers)
        assert warm.status_code == 201, warm.text
        baseline = process.memory_info().rss
        peak = [baseline]
        sampling = [True]

        def sample() -> None:
            while sampling[0]:
                peak[0] = max(peak[0], process.memory_info().rss)
                time.sleep(0.005)

        sampler = threading.Thread(target=sample)
        sampler.start()
        try:
            full = http.post("/files", content=body(files.MAX_FILE_SIZE), headers=headers)  # chunked
            over = http.post("/files", content=body(files.MAX_FILE_SIZE + 1, b"b"), headers=headers)
        finally:
            sampling[0] = False
            sampler.join()
    assert full.status_code == 201 and full.json()["size"] == files.MAX_FILE_SIZE, full.text
    assert over.status_code == 413 and over.json()["code"] == "file_too_large"
    grew = (peak[0] - baseline) / 2**20
    print(f"RSS grew {grew:.2f} MiB")
    assert grew < 8, f"RSS grew {grew:.1f} MiB while 40 MiB streamed in"
