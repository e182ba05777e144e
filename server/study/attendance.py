"""Attendance for organisers (API.md §5): the live roster, manual marks, leave and make-up requests.

One attendance record per (session, member), guaranteed by the unique index declared in
server/study/sessions.py. Every change an organiser makes to someone's record goes to the audit log and
to the append-only check-in event log with its source (`organiser` or `request`).

A decision on a leave or make-up request tells the member (`request_decided`, server/notifications/outbox.py: a
notice in the feed and maybe a WeChat message), and a manual mark with a personal notice in their feed
(server/feed/writing.py `notify`), each written in the same transaction as the change, its event and its audit
entry: the notice exists if and only if the change does.
"""

from __future__ import annotations

from typing import Any, get_args

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.errors import DuplicateKeyError

from schemas.study import AttendanceStatus, RequestStatus
from server import audit, content_check, orgs
from server.clock import to_ms
from server.context import Context
from server.db import indexes, transaction, update_then_get
from server.errors import ApiError, forbidden, not_found
from server.feed import writing as feed_writing
from server.ids import new_id
from server.members import COLLECTION as MEMBERS
from server.notifications import outbox
from server.pagination import Keyset, page
from server.scope import Principal
from server.study import sessions
from server.study.sessions import ATTENDANCE

EVENTS = "study_checkin_events"
REQUESTS = "study_requests"
STATUSES = get_args(AttendanceStatus)  # the roster's groups, in the order the API lists them
ATTENDED = ("present", "late")
REQUEST_STATUSES = get_args(RequestStatus)
# The Chinese labels of exports and feed texts, one table each.
STATUS_ZH = {"present": "出席", "late": "迟到", "leave": "请假", "absent": "缺席"}
KIND_ZH = {"leave": "请假", "makeup": "补学"}
SOURCE_ZH = {"member": "本人签到", "organiser": "组织者标记", "request": "请假/补学审批"}
ATTEMPTS = 3

indexes(EVENTS, IndexModel([("session_id", ASCENDING), ("at", ASCENDING)]),
        IndexModel([("member_id", ASCENDING), ("at", DESCENDING)]))
indexes(
    REQUESTS,
    IndexModel([("session_id", ASCENDING), ("status", ASCENDING)]),
    IndexModel([("member_id", ASCENDING), ("_id", DESCENDING)]),
    IndexModel([("org_path", ASCENDING), ("status", ASCENDING)]),
    IndexModel([("org_path", ASCENDING), ("_id", DESCENDING)]),  # the organisers' list (list_query)
    # At most one pending request per member and session: the key exists only while pending.
    IndexModel([("pending_key", ASCENDING)], unique=True, sparse=True),
)


def record_fields(session: dict, member_id: str, member_org_path) -> dict[str, Any]:
    """What every attendance record carries besides its status: enough to aggregate by period and org."""
    return {"session_id": session["_id"], "member_id": member_id, "member_org_path": list(member_org_path),
            "org_id": session["org_id"], "org_path": session["org_path"], "track": session["track"],
            "starts_at": session["starts_at"],
            "minutes": sessions.minutes(session), "cancelled": sessions.is_cancelled(session)}


def attendance_out(record: dict) -> dict:
    return {"session_id": record["session_id"], "member_id": record["member_id"], "status": record["status"],
            "checked_in_at": record.get("checked_in_at"), "source": record["source"], "method": record["method"],
            "offline": record.get("offline", False), "reason": record.get("reason")}


async def log_event(ctx: Context, *, session: dict | None, session_id: str, member_id: str, source: str,
                    method: str, result: str, actor_id: str | None = None, client_time=None, offline=False,
                    device_id: str | None = None, location: dict | None = None, status: str | None = None,
                    reason: str | None = None, txn=None) -> None:
    """Append one check-in event (accepted or refused). Never updated or deleted.

    The event notes whether a location came with the attempt, never the location itself: API.md §5 keeps a
    location only on the check-in record (and only when the session asks for one)."""
    event = {"_id": new_id(), "session_id": session_id, "member_id": member_id, "at": ctx.now(),
             "source": source, "method": method, "result": result, "status": status, "actor_id": actor_id,
             "client_time": client_time, "offline": offline, "device_id": device_id, "reason": reason,
             "with_location": location is not None}
    await ctx.db[EVENTS].insert_one(event, session=txn)


async def set_status(ctx: Context, session: dict, member: dict, status: str, *, source: str, method: str,
                     reason: str | None, actor_id: str, txn) -> tuple[dict | None, dict]:
    """Upsert the member's record with a new status inside the transaction `txn`; returns (before, after).

    The transaction makes the read before and the upsert one step (a concurrent write conflicts and is
    retried). A concurrent check-in's insert of the same record can still surface as a duplicate key,
    which aborts the transaction: the caller runs it again (`_with_retry`)."""
    now = ctx.now()
    fields = record_fields(session, member["_id"], member["org_path"])
    update = {"$set": {"status": status, "source": source, "method": method, "reason": reason,
                       "marked_by": actor_id, "updated_at": now},
              "$setOnInsert": {**{k: v for k, v in fields.items() if k not in ("session_id", "member_id")},
                               "_id": new_id(), "checked_in_at": None, "offline": False, "created_at": now}}
    key = {"session_id": session["_id"], "member_id": member["_id"]}
    before = await ctx.db[ATTENDANCE].find_one(key, session=txn)
    await ctx.db[ATTENDANCE].update_one(key, update, upsert=True, session=txn)
    after = await ctx.db[ATTENDANCE].find_one(key, session=txn)
    await log_event(ctx, session=session, session_id=session["_id"], member_id=member["_id"], source=source,
                    method=method, result="ok", status=status, actor_id=actor_id, reason=reason, txn=txn)
    return before, after


async def _with_retry(ctx: Context, work) -> Any:
    """One transaction, run again when a concurrent check-in's insert of the same attendance record made it
    fail with a duplicate key."""
    for _ in range(ATTEMPTS):
        try:
            return await transaction(ctx, work)
        except DuplicateKeyError:
            continue
    raise ApiError(409, "attendance_conflict", "The record changed meanwhile; try again.")


async def _tell(ctx: Context, member_id: str, session: dict, *, title: str, summary: str, ref_kind: str,
                ref_id: str, txn) -> None:
    await feed_writing.notify(ctx, [member_id], title=title, summary=summary, ref_kind=ref_kind, ref_id=ref_id,
                       org_id=session["org_id"], txn=txn)


async def _member_in_session_org(ctx: Context, session: dict, member_id: str) -> dict:
    member = await ctx.db[MEMBERS].find_one({"_id": member_id, "org_path": session["org_id"]},
                                            {"name": 1, "org_id": 1, "org_path": 1})
    if member is None:
        raise not_found("not_found", "member of this session's organisation")
    return member


async def mark(ctx: Context, principal: Principal, session_id: str, member_id: str, status: str,
               reason: str) -> dict:
    session = await sessions.get_managed(ctx, principal, session_id)
    sessions.require_not_cancelled(session)
    member = await _member_in_session_org(ctx, session, member_id)

    async def work(txn) -> dict:
        before, after = await set_status(ctx, session, member, status, source="organiser", method="manual",
                                         reason=reason, actor_id=principal.member_id, txn=txn)
        old = before and before.get("status")
        await audit.record(ctx, actor_id=principal.member_id, action="study.attendance.mark",
                           target_kind="member", target_id=member_id, org_path=list(member["org_path"]),
                           before=old, after=status, details={"session_id": session_id}, reason=reason, txn=txn)
        if old != status and member_id != principal.member_id:
            await _tell(ctx, member_id, session, title=f"出勤记录更新：{session['title']}",
                        summary=f"组织者将您的出勤记为「{STATUS_ZH[status]}」。原因：{reason}",
                        ref_kind="study_session", ref_id=session_id, txn=txn)
        return after

    return attendance_out(await _with_retry(ctx, work))


async def roster(ctx: Context, principal: Principal, session_id: str) -> dict:
    session = await sessions.get_managed(ctx, principal, session_id)
    attendees = await sessions.current_attendees(ctx, session)
    records = {r["member_id"]: r for r in await ctx.db[ATTENDANCE].find({"session_id": session_id}).to_list()}
    ids = list(dict.fromkeys([*attendees, *records]))
    names = {m["_id"]: m for m in await ctx.db[MEMBERS].find({"_id": {"$in": ids}},
                                                             {"name": 1, "org_id": 1}).to_list()}
    groups: dict[str, list] = {s: [] for s in STATUSES}
    for member_id in ids:
        record = records.get(member_id)
        person = names.get(member_id, {})
        entry = {"member_id": member_id, "name": person.get("name", ""), "org_id": person.get("org_id"),
                 "status": record["status"] if record else "absent"}
        if record:
            entry.update(checked_in_at=record.get("checked_in_at"), source=record["source"],
                         method=record["method"], offline=record.get("offline", False), reason=record.get("reason"))
        groups[entry["status"]].append(entry)
    return {"session_id": session_id, "attendees_fixed": session["attendees_fixed"],
            "counts": {s: len(groups[s]) for s in STATUSES}, **groups}


# -- leave and make-up requests ---------------------------------------------------------------------

def request_out(doc: dict) -> dict:
    return {"id": doc["_id"], "session_id": doc["session_id"], "member_id": doc["member_id"], "kind": doc["kind"],
            "reason": doc["reason"], "content_flag": doc.get("content_flag"), "status": doc["status"],
            "note": doc.get("note"),
            "created_at": doc["created_at"], "decided_at": doc.get("decided_at")}


async def create_request(ctx: Context, principal: Principal, session_id: str, kind: str, reason: str) -> dict:
    session = await sessions.get_visible(ctx, principal, session_id)
    sessions.require_not_cancelled(session)
    sessions.require_attendee(session, principal)
    record = await ctx.db[ATTENDANCE].find_one({"session_id": session_id, "member_id": principal.member_id})
    if record is not None and record["status"] in ATTENDED:
        raise ApiError(409, "already_checked_in", "You attended this session already.")
    flag = await content_check.check(ctx, principal, reason, "reason")
    doc = {"_id": new_id(), "session_id": session_id, "member_id": principal.member_id,
           "org_path": session["org_path"], "kind": kind, "reason": reason, "content_flag": flag, "status": "pending",
           "pending_key": f"{session_id}:{principal.member_id}", "created_at": to_ms(ctx.now())}
    try:
        await ctx.db[REQUESTS].insert_one(doc)
    except DuplicateKeyError:
        raise ApiError(409, "request_pending", "You already have a pending request for this session.") from None
    return doc


def request_not_found() -> ApiError:
    return not_found("request_not_found", "study request")


async def _get_managed_request(ctx: Context, principal: Principal, request_id: str) -> tuple[dict, dict]:
    """The request and its session, for an organiser of the session; its own member is told 403, anyone
    else 404 request_not_found (also when the session itself is out of sight)."""
    doc = await ctx.db[REQUESTS].find_one({"_id": request_id})
    if doc is None:
        raise request_not_found()
    try:
        session = await sessions.get_visible(ctx, principal, doc["session_id"])
    except ApiError:
        raise request_not_found() from None
    if not principal.organises(session["org_path"]):
        if doc["member_id"] == principal.member_id:
            raise forbidden("An organiser decides on your request.")
        raise request_not_found()
    return doc, session


async def decide(ctx: Context, principal: Principal, request_id: str, approve: bool, note: str | None) -> dict:
    doc, session = await _get_managed_request(ctx, principal, request_id)
    if approve:
        sessions.require_not_cancelled(session)
    status = "approved" if approve else "rejected"
    member = await ctx.db[MEMBERS].find_one({"_id": doc["member_id"]}, {"org_path": 1})

    async def work(txn) -> dict:
        decided = await update_then_get(
            ctx.db[REQUESTS], {"_id": request_id, "status": "pending"},
            {"$set": {"status": status, "note": note, "decided_at": ctx.now(), "decided_by": principal.member_id},
             "$unset": {"pending_key": ""}}, txn=txn)
        if decided is None:
            raise ApiError(409, "request_not_pending", "This request was already decided.")
        changes: dict[str, Any] = {"session_id": doc["session_id"], "member_id": doc["member_id"],
                                   "kind": doc["kind"], "decision": status}
        kept = None  # an attended record the approval leaves as it is
        if approve and member is not None:
            new_status = "leave" if doc["kind"] == "leave" else "present"
            current = await ctx.db[ATTENDANCE].find_one({"session_id": session["_id"], "member_id": member["_id"]},
                                                        {"status": 1}, session=txn)
            if current is not None and current["status"] in ATTENDED:
                # The member came after all (a scan or a mark since the request): approving a leave must not
                # turn that into an absence, nor a make-up rewrite it. The record read is part of the
                # transaction, so a concurrent check-in conflicts and this runs again.
                kept = current["status"]
                changes.update(before=kept, after=kept, kept=True)
            else:
                before, _ = await set_status(ctx, session, member, new_status, source="request",
                                             method=doc["kind"], reason=doc["reason"],
                                             actor_id=principal.member_id, txn=txn)
                changes.update(before=before and before.get("status"), after=new_status)
        await audit.record(ctx, actor_id=principal.member_id, action=f"study.request.{status}",
                           target_kind="member", target_id=doc["member_id"],
                           org_path=list(member["org_path"]) if member else session["org_path"],
                           before=changes.pop("before", None), after=changes.pop("after", None),
                           details={**changes, "request_id": request_id}, reason=note, txn=txn)
        kind = KIND_ZH[doc["kind"]]
        verdict = "已批准" if approve else "未批准"
        summary = f"您对「{session['title']}」的{kind}申请{verdict}。"
        if approve and kept is not None:
            summary += f"您已签到，出勤记录保持「{STATUS_ZH[kept]}」。"
        elif approve:
            summary += f"出勤已记为「{STATUS_ZH['leave' if doc['kind'] == 'leave' else 'present']}」。"
        if note:
            summary += f"意见：{note}"
        await outbox.enqueue(ctx, txn, event="request_decided", member_ids=[doc["member_id"]],
                             ref_kind="study_request", ref_id=request_id, org_id=session["org_id"],
                             title=f"{kind}申请{verdict}：{session['title']}", summary=summary,
                             values={"title": f"{kind}申请：{session['title']}", "result": verdict, "reason": note,
                                     "time": session["starts_at"],
                                     "org": await orgs.name(ctx, session["org_id"], txn=txn)})
        return decided

    return await _with_retry(ctx, work)


async def list_requests(ctx: Context, principal: Principal, session_id: str | None, status: str | None,
                        limit: int, cursor: str | None, org_id: str | None = None) -> tuple[list[dict], str | None]:
    """Organisers see requests in the subtrees they organise; everyone sees their own. With `org_id`,
    only the requests of that org's subtree, which the caller must organise."""
    if org_id is not None:
        await orgs.require_role(ctx, principal, org_id, "organiser")
    return await page(ctx.db[REQUESTS], list_query(principal, session_id, status, org_id), limit, cursor)


def list_query(principal: Principal, session_id: str | None = None, status: str | None = None,
               org_id: str | None = None) -> Keyset:
    """The requests list, newest first: the caller's own (member_id, _id) and each subtree they
    organise (org_path, _id); or one subtree."""
    if org_id is not None:
        branches = [{"org_path": org_id}]
    else:
        branches = [{"member_id": principal.member_id}, *({"org_path": org} for org in principal.role_orgs())]
    narrow = {**({"session_id": session_id} if session_id is not None else {}),
              **({"status": status} if status is not None else {})}
    return Keyset(tuple(branches), descending=True, narrow=(narrow,) if narrow else ())
