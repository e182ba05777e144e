"""Study warnings (API.md §5): a scan per period finds members and branches behind their scheme;
each warning then goes open → rectifying (整改, an organiser's note and files) → closed (销号, an admin).

A re-scan never duplicates: each batch of warnings is created with its audit entries in one transaction that
first skips the warnings that exist, and the unique index on (org_id, member_id, period, track) stops a
concurrent scan's copy (the batch then runs again); the scan counts only what it really created. A period
that has not begun cannot be scanned. Every step is audited.

Members are judged by the compliance rules of server/study/progress.py. A branch is behind on a session
track when it held fewer sessions of that track (in its subtree, not cancelled, already begun) than the
track requires.

Notices (server/feed/writing.py `notify`): a scan tells each member behind their scheme with one notice listing what
they lack (ref_kind "study_progress", ref_id the period, so the app opens their progress), and each organiser
or admin holding a role on a branch found behind, or on one of its ancestors, with one notice listing the
branches that concern them (ref_kind "study_warnings", ref_id the org whose warning list to open: the event
`warning_opened` of server/notifications/outbox.py, so it may also reach WeChat); the admin
who ran the scan sees its result and gets none. One notice per person per scan, however many warnings, so a
scan of a large tree stays bounded: members behind plus at most MAX_ORGANISERS organisers. Warnings are
created with `notified: false` and marked in the transaction that writes their notices, so a scan that
failed half-way notifies on the next scan of that period, and never twice.

Rectification files are recorded with server/files.py `attach(...)` in the same transaction as the step;
who may download them is who may see the warning (`may_see`: organisers of its org), besides their
uploader, and a refused file id leaves the warning unchanged.
"""

from __future__ import annotations

from typing import Any, get_args

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.errors import BulkWriteError, DuplicateKeyError

from schemas.study import WarningStatus
from server import audit, files, org_settings, orgs
from server.context import Context
from server.db import indexes, transaction, update_then_get
from server.errors import ApiError, forbidden, invalid, not_found
from server.feed import writing as feed_writing
from server.ids import new_id
from server.members import COLLECTION as MEMBERS
from server.notifications import outbox
from server.pagination import Keyset, page
from server.scope import Principal
from server.study import progress, schemes
from server.study.sessions import COLLECTION as SESSIONS

COLLECTION = "study_warnings"
STATUSES = get_args(WarningStatus)
FILE_REF = "warning"
MAX_ORGANISERS = 500  # organisers told of one scan's branch warnings
NOTICE_BATCH = 200  # members told per transaction
CREATE_BATCH = 200  # warnings (with their audit entries) created per transaction
CREATE_ATTEMPTS = 5

indexes(
    COLLECTION,
    IndexModel([("org_id", ASCENDING), ("member_id", ASCENDING), ("period", ASCENDING), ("track", ASCENDING)],
               unique=True),
    IndexModel([("org_path", ASCENDING), ("status", ASCENDING), ("_id", DESCENDING)]),
    IndexModel([("org_path", ASCENDING), ("_id", DESCENDING)]),  # the list without a status
    IndexModel([("notified", ASCENDING), ("period", ASCENDING)]),
    IndexModel([("org_path", ASCENDING), ("period", ASCENDING)]),
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
        scheme = schemes.nearest(orgs.full_path(branch), stored)
        for track, factor in progress.applicable(scheme, period):
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
    period = progress.parse_period(period_text, ctx)
    if period.start > ctx.now():  # everyone would be "behind" a period nobody could study in yet
        raise invalid("period", f"{period.label} has not begun yet.")
    # One read of the subtree serves the report and the member paths, so they describe the same members.
    tree = await progress.subtree(ctx, org)
    org_list, members, stored = tree
    report = await progress.compliance_for(ctx, org, period, tree)
    paths = {m["_id"]: m["org_path"] for m in members}
    warned = await org_settings.members_warned(ctx, org, paths)  # member warnings are off unless turned on
    found: list[dict[str, Any]] = []
    for row in report["members"]:
        if row["member_id"] not in warned:
            continue
        for track in row["tracks"]:
            if track["complete"]:
                continue
            found.append({"org_id": row["org_id"], "org_path": paths[row["member_id"]],
                          "member_id": row["member_id"], "member_name": row["name"], "track": track["key"],
                          "reason": (f"{track['name']}: 完成 {track['done_count']}/{track['required_count']} 次，"
                                     f"{track['done_minutes']}/{track['required_minutes']} 分钟")})
    found += await _branches_behind(ctx, org_list, stored, period)
    created = 0
    for start in range(0, len(found), CREATE_BATCH):
        created += await _create(ctx, principal, org["_id"], found[start:start + CREATE_BATCH], period.label)
    await _notify_pending(ctx, principal, org_id, period.label)
    return {"created": created, "period": period.label}


def _key(w: dict) -> tuple:
    return w["org_id"], w.get("member_id"), w["track"]


async def _create(ctx: Context, principal: Principal, org_id: str, found: list[dict], period: str) -> int:
    """Create the warnings of `found` that do not exist yet, each with its audit entry, in one transaction:
    a warning exists if and only if its audit entry does. A concurrent scan that committed one of them
    first makes the insert fail on the unique index (a concurrent uncommitted one is a write conflict,
    retried by the driver); the transaction then runs again and skips what the other scan created."""
    async def work(txn) -> int:
        # Every warning a scan of `org_id` can create carries it in org_path (indexed with the period).
        existing = {_key(d) async for d in ctx.db[COLLECTION].find(
            {"org_path": org_id, "period": period}, {"org_id": 1, "member_id": 1, "track": 1}, session=txn)}
        now = ctx.now()
        docs = [{"_id": new_id(), **w, "period": period, "status": "open", "created_at": now,
                 "created_by": principal.member_id, "notified": False,
                 "history": [{"status": "open", "at": now, "by": principal.member_id, "note": w["reason"],
                              "file_ids": []}]}
                for w in found if _key(w) not in existing]
        if not docs:
            return 0
        await ctx.db[COLLECTION].insert_many(docs, session=txn)
        for doc in docs:
            await audit.record(ctx, actor_id=principal.member_id, action="study.warning.create",
                               target_kind="study_warning", target_id=doc["_id"], org_path=doc["org_path"],
                               after={"status": "open"}, details={"period": doc["period"], "track": doc["track"],
                                        "member_id": doc["member_id"], "org_id": doc["org_id"]},
                               reason=doc["reason"], txn=txn)
        return len(docs)

    for attempt in range(1, CREATE_ATTEMPTS + 1):
        try:
            return await transaction(ctx, work)
        except (DuplicateKeyError, BulkWriteError) as exc:
            duplicate = isinstance(exc, DuplicateKeyError) or all(
                e.get("code") == 11000 for e in exc.details.get("writeErrors", []))
            if not duplicate or attempt == CREATE_ATTEMPTS:
                raise
    raise AssertionError("unreachable")


# -- notices ----------------------------------------------------------------------------------------

async def _notify_pending(ctx: Context, principal: Principal, org_id: str, period: str) -> None:
    """Tell the people concerned by this period's warnings in the org's subtree not yet notified."""
    pending = await ctx.db[COLLECTION].find(
        {"notified": False, "period": period, "org_path": org_id},
        {"member_id": 1, "org_id": 1, "org_path": 1, "reason": 1}).sort("_id", 1).to_list()
    if not pending:
        return
    by_member: dict[str, list[dict]] = {}
    for w in pending:
        if w.get("member_id"):
            by_member.setdefault(w["member_id"], []).append(w)
    member_ids = sorted(by_member)
    for start in range(0, len(member_ids), NOTICE_BATCH):
        batch = {m: by_member[m] for m in member_ids[start:start + NOTICE_BATCH]}
        await transaction(ctx, lambda txn, batch=batch: _tell_members(ctx, batch, period, txn))
    branch_warnings = [w for w in pending if not w.get("member_id")]
    if branch_warnings:
        await transaction(ctx, lambda txn: _tell_organisers(ctx, principal, branch_warnings, period, txn))


async def _claim(ctx: Context, warnings: list[dict], txn) -> set[str]:
    """The ids among `warnings` still unnotified, now marked notified (in `txn`: a concurrent scan that
    claims the same ones conflicts, retries and finds them taken)."""
    ids = [w["_id"] for w in warnings]
    still = {d["_id"] async for d in ctx.db[COLLECTION].find({"_id": {"$in": ids}, "notified": False},
                                                            {"_id": 1}, session=txn)}
    if still:
        await ctx.db[COLLECTION].update_many({"_id": {"$in": sorted(still)}}, {"$set": {"notified": True}},
                                             session=txn)
    return still


async def _tell_members(ctx: Context, by_member: dict[str, list[dict]], period: str, txn) -> None:
    claimed = await _claim(ctx, [w for ws in by_member.values() for w in ws], txn)
    for member_id, warnings in by_member.items():
        mine = [w for w in warnings if w["_id"] in claimed]
        if not mine:
            continue
        await feed_writing.notify(ctx, [member_id], title=f"学习提醒：{period} 有 {len(mine)} 项未达到要求",
                           summary="；".join(w["reason"] for w in mine) + "。请及时补学。",
                           ref_kind="study_progress", ref_id=period, org_id=mine[0]["org_id"], txn=txn)


def _common_org(paths: list[list[str]]) -> str:
    """The deepest org on every path (the warnings' nearest common ancestor)."""
    common = list(paths[0])
    for path in paths[1:]:
        same = 0
        while same < min(len(common), len(path)) and common[same] == path[same]:
            same += 1
        common = common[:same]
    return common[-1] if common else paths[0][-1]


async def _tell_organisers(ctx: Context, principal: Principal, warnings: list[dict], period: str, txn) -> None:
    claimed = await _claim(ctx, warnings, txn)
    warnings = [w for w in warnings if w["_id"] in claimed]
    if not warnings:
        return
    on_paths = sorted({o for w in warnings for o in w["org_path"]})
    # Only the indexed key in the query (SecantusDB may scan on more); the rest is checked here.
    people = await ctx.db[MEMBERS].find({"roles.org_id": {"$in": on_paths}}, {"roles": 1, "active": 1},
                                        session=txn).sort("_id", 1).limit(MAX_ORGANISERS).to_list()
    for person in people:
        if not person.get("active") or person["_id"] == principal.member_id:
            continue
        held = {r["org_id"] for r in person.get("roles", []) if r["role"] in ("organiser", "admin")}
        theirs = [w for w in warnings if held.intersection(w["org_path"])]
        if not theirs:
            continue
        where = _common_org([w["org_path"] for w in theirs])
        await outbox.enqueue(ctx, txn, event="warning_opened", member_ids=[person["_id"]],
                             title=f"支部学习预警：{period} 有 {len(theirs)} 项未达到要求",
                             summary="；".join(w["reason"] for w in theirs) + "。请组织整改。",
                             ref_kind="study_warnings", ref_id=where, org_id=where,
                             values={"title": "支部学习预警", "period": period, "count": len(theirs),
                                     "org": await orgs.name(ctx, where, txn=txn), "time": ctx.now()})


async def list_warnings(ctx: Context, principal: Principal, org_id: str | None, status: str | None,
                        limit: int, cursor: str | None) -> tuple[list[dict], str | None]:
    if status is not None and status not in STATUSES:
        raise invalid("status", "status is open, rectifying or closed.")
    await orgs.require_lister(ctx, principal, org_id, "organiser", "Warnings are for organisers.")
    return await page(ctx.db[COLLECTION], list_query(principal, org_id, status), limit, cursor)


def list_query(principal: Principal, org_id: str | None, status: str | None) -> Keyset:
    """The warnings list, newest first: per subtree, on (org_path, status, _id) or (org_path, _id)."""
    only = {} if status is None else {"status": status}
    return Keyset(tuple({"org_path": org, **only} for org in principal.list_roots(org_id)), descending=True)


def visible(principal: Principal, doc: dict | None) -> bool:
    """Warnings are for organisers of the warned org (or above); `list_warnings` filters the same way."""
    return doc is not None and principal.organises(doc["org_path"])


async def may_see(ctx: Context, principal: Principal, warning_id: str) -> bool:
    """Whether the caller sees this warning; also who may download its rectification files."""
    return visible(principal, await ctx.db[COLLECTION].find_one({"_id": warning_id}, {"org_path": 1}))


files.register_visibility(FILE_REF, may_see)


async def _load(ctx: Context, principal: Principal, warning_id: str, minimum: str) -> dict:
    doc = await ctx.db[COLLECTION].find_one({"_id": warning_id})
    if not visible(principal, doc):
        raise not_found("warning_not_found", "warning")
    if not principal.holds(minimum, doc["org_path"]):
        raise forbidden(f"This step needs the {minimum} role.")
    return doc


async def _step(ctx: Context, principal: Principal, warning_id: str, *, minimum: str, frm: str, to: str,
                code: str, note: str, file_ids: list[str]) -> dict:
    doc = await _load(ctx, principal, warning_id, minimum)

    async def work(txn) -> dict:
        now = ctx.now()
        step = {"status": to, "at": now, "by": principal.member_id, "note": note, "file_ids": file_ids}
        new = await update_then_get(
            ctx.db[COLLECTION], {"_id": warning_id, "status": frm},
            {"$set": {"status": to, "updated_at": now}, "$push": {"history": step}}, txn=txn)
        if new is None:
            raise ApiError(409, code, f"This warning is not {frm}.")
        # Each file must be the caller's upload (422 file_not_found otherwise, and nothing above is kept).
        await files.attach(ctx, principal, file_ids, ref_kind=FILE_REF, ref_id=warning_id, txn=txn)
        await audit.record(ctx, actor_id=principal.member_id, action=f"study.warning.{to}",
                           target_kind="study_warning", target_id=warning_id, org_path=doc["org_path"],
                           reason=note, before={"status": frm}, after={"status": to},
                           details={"file_ids": file_ids, "member_id": doc.get("member_id")}, txn=txn)
        return new

    return await transaction(ctx, work)


async def rectify(ctx: Context, principal: Principal, warning_id: str, note: str, file_ids: list[str]) -> dict:
    return await _step(ctx, principal, warning_id, minimum="organiser", frm="open", to="rectifying",
                       code="warning_not_open", note=note, file_ids=list(dict.fromkeys(file_ids)))


async def close(ctx: Context, principal: Principal, warning_id: str, note: str) -> dict:
    return await _step(ctx, principal, warning_id, minimum="admin", frm="rectifying", to="closed",
                       code="warning_not_rectifying", note=note, file_ids=[])


async def rename_member(ctx: Context, member_id: str, name: str, *, txn=None) -> None:
    """Warnings keep the member's name as of the scan; anonymisation (server/retention.py) replaces it."""
    await ctx.db[COLLECTION].update_many({"member_id": member_id}, {"$set": {"member_name": name}}, session=txn)
