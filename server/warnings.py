"""Study warnings (API.md §5): a scan per period finds members and branches behind their scheme;
each warning then goes open → rectifying (整改, an organiser's note and files) → closed (销号, an admin).

A re-scan never duplicates: the unique index on (org_id, member_id, period, track) lets the insert of an
existing warning fail, and the scan counts only what it really created. Every step is audited.

Members are judged by the compliance rules of server/study_progress.py. A branch is behind on a session
track when it held fewer sessions of that track (in its subtree, not cancelled, already begun) than the
track requires.
"""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument
from pymongo.errors import BulkWriteError

from server import audit, orgs, study_progress, study_scheme
from server.context import Context
from server.db import indexes
from server.errors import ApiError, forbidden, invalid, not_found
from server.ids import new_id
from server.pagination import page
from server.scope import Principal
from server.study_sessions import COLLECTION as SESSIONS

COLLECTION = "study_warnings"
STATUSES = ("open", "rectifying", "closed")

indexes(
    COLLECTION,
    IndexModel([("org_id", ASCENDING), ("member_id", ASCENDING), ("period", ASCENDING), ("track", ASCENDING)],
               unique=True),
    IndexModel([("org_path", ASCENDING), ("status", ASCENDING), ("_id", DESCENDING)]),
)


def warning_out(doc: dict) -> dict:
    return {"id": doc["_id"], "org_id": doc["org_id"], "member_id": doc.get("member_id"),
            "member_name": doc.get("member_name"), "period": doc["period"], "track": doc["track"],
            "reason": doc["reason"], "status": doc["status"], "history": doc["history"],
            "created_at": doc["created_at"]}


async def _branches_behind(ctx: Context, org_list: list[dict], stored: dict, period) -> list[dict]:
    branches = [o for o in org_list if o["kind"] == "branch"]
    if not branches:
        return []
    ids = [b["_id"] for b in branches]
    held: dict[tuple[str, str], int] = {}
    pipeline = [
        {"$match": {"org_path": {"$in": ids}, "status": "scheduled",  # held: not cancelled, already begun
                    "starts_at": {"$gte": period.start, "$lt": min(period.end, ctx.now())}}},
        {"$unwind": "$org_path"},
        {"$match": {"org_path": {"$in": ids}}},
        {"$group": {"_id": {"o": "$org_path", "t": "$track"}, "n": {"$sum": 1}}},
    ]
    async for row in await ctx.db[SESSIONS].aggregate(pipeline):
        held[(row["_id"]["o"], row["_id"]["t"])] = row["n"]
    behind = []
    for branch in branches:
        scheme = study_scheme.nearest(orgs.full_path(branch), stored)
        for track, factor in study_progress.applicable(scheme, period):
            need = track["min_count"] * factor
            got = held.get((branch["_id"], track["key"]), 0)
            if track["kind"] == "session" and got < need:
                behind.append({"org_id": branch["_id"], "org_path": orgs.full_path(branch), "member_id": None,
                               "member_name": None, "track": track["key"],
                               "reason": f"{branch['name']}: {track['name']} 应开 {need} 次，实开 {got} 次"})
    return behind


async def scan(ctx: Context, principal: Principal, org_id: str, period_text: str | None) -> dict:
    org = await orgs.require_role(ctx, principal, org_id, "admin")
    if period_text is None:
        raise invalid("period", "period is required: 2026-11, 2026-Q4 or 2026.")
    period = study_progress.parse_period(period_text, ctx)
    report = await study_progress.compliance_for(ctx, org, period)
    org_list, members, stored = await study_progress.subtree(ctx, org)
    paths = {m["_id"]: m["org_path"] for m in members}
    found: list[dict[str, Any]] = []
    for row in report["members"]:
        for track in row["tracks"]:
            if track["complete"]:
                continue
            found.append({"org_id": row["org_id"], "org_path": paths[row["member_id"]],
                          "member_id": row["member_id"], "member_name": row["name"], "track": track["key"],
                          "reason": (f"{track['name']}: 完成 {track['done_count']}/{track['required_count']} 次，"
                                     f"{track['done_minutes']}/{track['required_minutes']} 分钟")})
    found += await _branches_behind(ctx, org_list, stored, period)
    if not found:
        return {"created": 0, "period": period.label}
    now = ctx.now()
    docs = [{"_id": new_id(), **w, "period": period.label, "status": "open", "created_at": now,
             "created_by": principal.member_id,
             "history": [{"status": "open", "at": now, "by": principal.member_id, "note": w["reason"],
                          "file_ids": []}]}
            for w in found]
    failed: set[int] = set()
    try:
        await ctx.db[COLLECTION].insert_many(docs, ordered=False)
    except BulkWriteError as exc:
        errors = exc.details.get("writeErrors", [])
        if any(e.get("code") != 11000 for e in errors):
            raise
        failed = {e["index"] for e in errors}
    created = [d for i, d in enumerate(docs) if i not in failed]
    for doc in created:
        await audit.record(ctx, actor_id=principal.member_id, action="study.warning.create",
                           target_kind="study_warning", target_id=doc["_id"], org_path=doc["org_path"],
                           changes={"period": doc["period"], "track": doc["track"], "member_id": doc["member_id"],
                                    "org_id": doc["org_id"]}, reason=doc["reason"])
    return {"created": len(created), "period": period.label}


async def list_warnings(ctx: Context, principal: Principal, org_id: str | None, status: str | None,
                        limit: int, cursor: str | None) -> tuple[list[dict], str | None]:
    if status is not None and status not in STATUSES:
        raise invalid("status", "status is open, rectifying or closed.")
    if org_id is not None:
        await orgs.require_role(ctx, principal, org_id, "organiser")
        clauses: list[dict] = [{"org_path": org_id}]
    elif principal.role_orgs():
        clauses = [principal.within_roles_filter("org_path")]
    else:
        raise forbidden("Warnings are for organisers.")
    if status is not None:
        clauses.append({"status": status})
    return await page(ctx.db[COLLECTION], {"$and": clauses}, limit, cursor, descending=True)


async def _load(ctx: Context, principal: Principal, warning_id: str, minimum: str) -> dict:
    doc = await ctx.db[COLLECTION].find_one({"_id": warning_id})
    if doc is None or not principal.organises(doc["org_path"]):
        raise not_found("warning_not_found", "warning")
    if not principal.holds(minimum, doc["org_path"]):
        raise forbidden(f"This step needs the {minimum} role.")
    return doc


async def _step(ctx: Context, principal: Principal, warning_id: str, *, minimum: str, frm: str, to: str,
                code: str, note: str, file_ids: list[str]) -> dict:
    doc = await _load(ctx, principal, warning_id, minimum)
    now = ctx.now()
    step = {"status": to, "at": now, "by": principal.member_id, "note": note, "file_ids": file_ids}
    new = await ctx.db[COLLECTION].find_one_and_update(
        {"_id": warning_id, "status": frm},
        {"$set": {"status": to, "updated_at": now}, "$push": {"history": step}},
        return_document=ReturnDocument.AFTER)
    if new is None:
        raise ApiError(409, code, f"This warning is not {frm}.")
    await audit.record(ctx, actor_id=principal.member_id, action=f"study.warning.{to}", target_kind="study_warning",
                       target_id=warning_id, org_path=doc["org_path"], reason=note,
                       changes={"before": frm, "after": to, "file_ids": file_ids})
    return new


async def rectify(ctx: Context, principal: Principal, warning_id: str, note: str, file_ids: list[str]) -> dict:
    return await _step(ctx, principal, warning_id, minimum="organiser", frm="open", to="rectifying",
                       code="warning_not_open", note=note, file_ids=list(dict.fromkeys(file_ids)))


async def close(ctx: Context, principal: Principal, warning_id: str, note: str) -> dict:
    return await _step(ctx, principal, warning_id, minimum="admin", frm="rectifying", to="closed",
                       code="warning_not_rectifying", note=note, file_ids=[])
