"""Memory of GET /me/export: the Python heap's peak while one member's zip is produced, for members with 500,
2,000 and 8,000 records, next to the size of the archive and of the records themselves.

The export (server/personal_export.py) reads with cursors in batches and hands the zip to the client chunk by
chunk; this runs the same generator the handler runs, on an in-memory SecantusDB, and drops each chunk as the
client would have it. tracemalloc measures what the export allocates above what was there before (the driver's
connection pool and the imported modules are there before), so a bounded export shows the same peak for every
member size while the archive grows with it.

    .venv/bin/python -m bench.bench_export [--sizes 500,2000,8000]
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
import tracemalloc
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from server import personal_export  # noqa: E402
from server.app import make_context  # noqa: E402
from server.config import Settings  # noqa: E402
from server.db import create_indexes  # noqa: E402
from server.embedded import EmbeddedDatabase  # noqa: E402
from server.ids import new_id  # noqa: E402
from server.scope import Principal  # noqa: E402


def _records(member_id: str, org_path: list[str], count: int) -> dict[str, list[dict]]:
    """`count` records of a member who studies a lot: half self-study entries, a quarter attendance records
    (with a location), a quarter check-in events; each about as large as the real ones. The notes are random, so
    the zip grows as the records do and the chunks really fill (the worst case for what waits to be sent)."""
    now = datetime.now(UTC)
    book = "《习近平新时代中国特色社会主义思想学习纲要》"
    study, attendance, events = count // 2, count // 4, count - count // 2 - count // 4
    return {
        "study_self_study": [{"_id": new_id(), "member_id": member_id, "member_org_path": org_path,
                              "track": "self_study", "minutes": 30, "material": f"{book}第{i}章",
                              "note": "学习心得：" + secrets.token_hex(60),  # free text: hardly compressible
                              "date": (now - timedelta(days=i % 60)).date().isoformat(),
                              "day_total_minutes": 30, "created_at": now} for i in range(study)],
        "study_attendance": [{"_id": new_id(), "session_id": new_id(), "member_id": member_id,
                              "member_org_path": org_path, "org_id": org_path[-1], "org_path": org_path,
                              "track": "group_meeting", "starts_at": now, "minutes": 60, "cancelled": False,
                              "status": "present", "checked_in_at": now, "received_at": now, "source": "member",
                              "method": "qr+geo", "offline": False, "device_id": "device-" + "x" * 20,
                              "reason": None, "location": {"lat": 39.9, "lng": 116.4, "accuracy": 10},
                              "created_at": now, "updated_at": now} for _ in range(attendance)],
        "study_checkin_events": [{"_id": new_id(), "session_id": new_id(), "member_id": member_id, "at": now,
                                  "source": "member", "method": "qr", "result": "ok", "status": "present",
                                  "actor_id": member_id, "client_time": None, "offline": False,
                                  "device_id": "device-" + "x" * 20, "reason": None, "with_location": True}
                                 for _ in range(events)],
    }


async def measure(uri: str, count: int) -> tuple[int, int, int]:
    """(peak heap bytes above the baseline, zip bytes, bytes of the records as BSON-ish JSON)."""
    settings = Settings(db_name=f"bench_export_{uuid.uuid4().hex[:8]}", jwt_secret="x" * 40)
    ctx = make_context(settings, uri)
    await create_indexes(ctx.db)
    org_id, member_id = new_id(), new_id()
    path = [org_id]
    await ctx.db["members"].insert_one({"_id": member_id, "name": "党员", "phone": "13900000001", "org_id": org_id,
                                        "org_path": path, "gender": "male", "birth_date": "1990-01-01",
                                        "party_status": "full", "tags": [], "roles": [], "active": True,
                                        "password_hash": None, "created_at": datetime.now(UTC)})
    raw = 0
    for collection, docs in _records(member_id, path, count).items():
        for start in range(0, len(docs), 500):
            await ctx.db[collection].insert_many(docs[start:start + 500])
        raw += sum(len(str(d)) for d in docs)
    principal = Principal(member_id=member_id, name="党员", org_id=org_id, org_path=tuple(path), roles=())
    # One export first, so the driver's pools and caches are warm and not counted as the export's.
    async for _ in await personal_export.start(ctx, principal):
        pass
    tracemalloc.start()
    tracemalloc.reset_peak()
    baseline = tracemalloc.get_traced_memory()[0]
    size = 0
    async for chunk in personal_export._stream(ctx, member_id):
        size += len(chunk)
    peak = tracemalloc.get_traced_memory()[1] - baseline
    tracemalloc.stop()
    await ctx.client.drop_database(settings.db_name)
    await ctx.client.close()
    return peak, size, raw


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="500,2000,8000")
    sizes = [int(s) for s in parser.parse_args().sizes.split(",")]
    db = EmbeddedDatabase(":memory:", restart=False)
    uri = db.start()
    try:
        print(f"{'records':>8} {'peak heap':>10} {'zip':>9} {'records':>9}  (batch {personal_export.BATCH}, "
              f"chunk {personal_export.CHUNK // 1024} KiB)")
        for count in sizes:
            peak, size, raw = asyncio.run(measure(uri, count))
            print(f"{count:>8} {peak / 1024:>8.0f} KiB {size / 1024:>6.0f} KiB {raw / 1024:>6.0f} KiB")
    finally:
        db.stop()


if __name__ == "__main__":
    main()
