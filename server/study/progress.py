"""Progress, compliance and exports for a period (API.md §5), computed by MongoDB aggregation.

Periods are `2026-11` (month), `2026-Q4` (quarter) and `2026` (year), their boundaries taken in the org
time zone (settings.tz). A track is judged over a period at least as long as its own: a monthly track over
a quarter needs three times its monthly minimum; a quarterly or yearly track is not judged in a month view
(ask for its quarter or year). Attendance counts when present or late (leave is excused but not attended:
a make-up approval turns it into present); cancelled sessions never count.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

from server import orgs, spreadsheets
from server.context import Context
from server.errors import invalid
from server.members import COLLECTION as MEMBERS
from server.scope import Principal
from server.study import schemes
from server.study.attendance import ATTENDED, SOURCE_ZH, STATUS_ZH
from server.study.checkins import SELF_STUDY
from server.study.sessions import ATTENDANCE, current_attendees, fix_attendees
from server.study.sessions import COLLECTION as SESSIONS

MONTHS = {"month": 1, "quarter": 3, "year": 12}
_PERIOD = re.compile(r"^(?P<year>\d{4})(?:-(?:(?P<month>0[1-9]|1[0-2])|Q(?P<quarter>[1-4])))?$")


@dataclass(frozen=True)
class Period:
    label: str
    kind: str
    first_day: date  # inclusive, local
    end_day: date  # exclusive, local
    start: datetime  # UTC
    end: datetime  # UTC


def parse_period(text: str | None, ctx: Context) -> Period:
    tz = ctx.settings.tz
    if text is None:
        text = ctx.now().astimezone(tz).strftime("%Y-%m")
    match = _PERIOD.fullmatch(text)
    if match is None or not 2000 <= int(match["year"]) <= 2100:
        raise invalid("period", "period is 2026-11 (month), 2026-Q4 (quarter) or 2026 (year).")
    year = int(match["year"])
    if match["month"]:
        kind, first_month, months = "month", int(match["month"]), 1
    elif match["quarter"]:
        kind, first_month, months = "quarter", 3 * int(match["quarter"]) - 2, 3
    else:
        kind, first_month, months = "year", 1, 12
    first = date(year, first_month, 1)
    last_month = first_month + months
    end = date(year + (last_month - 1) // 12, (last_month - 1) % 12 + 1, 1)

    def at_midnight(day: date) -> datetime:
        return datetime.combine(day, time(0), tz).astimezone(UTC)

    return Period(text, kind, first, end, at_midnight(first), at_midnight(end))


def applicable(scheme: dict, period: Period) -> list[tuple[dict, int]]:
    """The scheme's tracks judged over this period, each with its multiplier."""
    return [(t, MONTHS[period.kind] // MONTHS[t["period"]]) for t in scheme["tracks"]
            if MONTHS[t["period"]] <= MONTHS[period.kind]]


IN_CHUNK = 20  # members per aggregation: SecantusDB answers a long $in beside a range with a collection scan


async def done_by_member(ctx: Context, member_ids: list[str], period: Period) -> dict[tuple[str, str], dict]:
    """{(member, track): {count, minutes}} from attendance and self-study, grouped in the database.

    The members go in chunks of IN_CHUNK: measured on SecantusDB with 20,000 attendance records, one
    aggregation over 100 members took twice a full collection scan (and grows with the collection), while
    chunks of 20 use the (member_id, starts_at) and (member_id, date) indexes and grow only with the records
    they match."""
    done: dict[tuple[str, str], dict] = {}
    for start in range(0, len(member_ids), IN_CHUNK):
        chunk = member_ids[start:start + IN_CHUNK]
        who: Any = chunk[0] if len(chunk) == 1 else {"$in": chunk}
        attended = [
            {"$match": {"member_id": who, "starts_at": {"$gte": period.start, "$lt": period.end},
                        "status": {"$in": list(ATTENDED)}, "cancelled": {"$ne": True}}},
            {"$group": {"_id": {"m": "$member_id", "t": "$track"}, "count": {"$sum": 1},
                        "minutes": {"$sum": "$minutes"}}},
        ]
        studied = [
            {"$match": {"member_id": who, "date": {"$gte": period.first_day.isoformat(),
                                                   "$lt": period.end_day.isoformat()}}},
            {"$group": {"_id": {"m": "$member_id", "t": "$track"}, "count": {"$sum": 1},
                        "minutes": {"$sum": "$minutes"}}},
        ]
        for collection, pipeline in ((ATTENDANCE, attended), (SELF_STUDY, studied)):
            async for row in await ctx.db[collection].aggregate(pipeline):
                slot = done.setdefault((row["_id"]["m"], row["_id"]["t"]), {"count": 0, "minutes": 0})
                slot["count"] += row["count"]
                slot["minutes"] += row["minutes"]
    return done


def judge(scheme: dict, period: Period, member_id: str, done: dict) -> tuple[bool, list[dict]]:
    tracks = []
    for track, factor in applicable(scheme, period):
        got = done.get((member_id, track["key"]), {"count": 0, "minutes": 0})
        required_count, required_minutes = track["min_count"] * factor, track["min_minutes"] * factor
        tracks.append({"key": track["key"], "name": track["name"], "kind": track["kind"],
                       "required_count": required_count, "done_count": got["count"],
                       "required_minutes": required_minutes, "done_minutes": got["minutes"],
                       "complete": got["count"] >= required_count and got["minutes"] >= required_minutes})
    return all(t["complete"] for t in tracks), tracks


async def my_progress(ctx: Context, principal: Principal, period_text: str | None) -> dict:
    period = parse_period(period_text, ctx)
    scheme = await schemes.effective(ctx, principal.org_path)
    done = await done_by_member(ctx, [principal.member_id], period)
    complete, tracks = judge(scheme, period, principal.member_id, done)
    return {"period": period.label, "scheme": scheme["name"], "tracks": tracks, "complete": complete}


async def subtree(ctx: Context, org: dict) -> tuple[list[dict], list[dict], dict[str, dict]]:
    """(orgs in the subtree, its active members, the stored schemes that may apply there)."""
    descendants = await ctx.db[orgs.COLLECTION].find({"path": org["_id"]}, {"name": 1, "path": 1, "kind": 1}) \
        .sort("_id", 1).to_list()
    members = await ctx.db[MEMBERS].find({"org_path": org["_id"], "active": True},  # on (org_path, active, _id)
                                         {"name": 1, "org_id": 1, "org_path": 1}).sort("_id", 1).to_list()
    return [org, *descendants], members, await schemes.for_subtree(ctx, org)


async def compliance_for(ctx: Context, org: dict, period: Period,
                         tree: tuple[list[dict], list[dict], dict[str, dict]] | None = None) -> dict:
    """The compliance report; `tree` is `subtree(ctx, org)` when the caller has read it already (so a caller
    that also uses the member list judges exactly the members it holds)."""
    org_list, members, stored = tree if tree is not None else await subtree(ctx, org)
    done = await done_by_member(ctx, [m["_id"] for m in members], period)
    member_rows = []
    for member in members:
        scheme = schemes.nearest(member["org_path"], stored)
        complete, tracks = judge(scheme, period, member["_id"], done)
        member_rows.append({"member_id": member["_id"], "name": member["name"], "org_id": member["org_id"],
                            "complete": complete, "tracks": tracks, "_path": member["org_path"]})
    # counted along each member's path: members × depth, not members × orgs
    counts = {each["_id"]: [0, 0] for each in org_list}
    for row in member_rows:
        for org_id in row.pop("_path"):
            if org_id in counts:
                counts[org_id][0] += 1
                counts[org_id][1] += row["complete"]
    org_rows = [{"org_id": each["_id"], "name": each["name"], "members": counts[each["_id"]][0],
                 "complete_members": counts[each["_id"]][1],
                 "rate": round(counts[each["_id"]][1] / counts[each["_id"]][0], 4) if counts[each["_id"]][0] else 0.0}
                for each in org_list]
    return {"period": period.label, "orgs": org_rows, "members": member_rows}


async def compliance(ctx: Context, principal: Principal, org_id: str, period_text: str | None) -> dict:
    org = await orgs.require_role(ctx, principal, org_id, "organiser")
    return await compliance_for(ctx, org, parse_period(period_text, ctx))


# -- exports ----------------------------------------------------------------------------------------

COMPLIANCE_HEADERS = ["姓名", "所在组织", "学习项目", "要求次数", "完成次数", "要求分钟", "完成分钟", "是否达标"]
ATTENDANCE_HEADERS = ["会议名称", "学习项目", "开始时间", "姓名", "所在组织", "出勤状态", "签到时间", "签到方式",
                      "离线签到", "记录来源", "说明"]


def _local(moment: datetime | None, ctx: Context) -> str:
    return moment.astimezone(ctx.settings.tz).strftime("%Y-%m-%d %H:%M") if moment else ""


async def _attendance_rows(ctx: Context, org: dict, period: Period, org_names: dict[str, str],
                           track_names: dict[str, str]) -> list[list]:
    sessions = await ctx.db[SESSIONS].find(
        {"org_path": org["_id"], "status": "scheduled",  # sessions held so far in the period
         "starts_at": {"$gte": period.start, "$lt": min(period.end, ctx.now())}}
    ).sort("starts_at", 1).to_list()
    rows: list[list] = []
    for session in sessions:
        session = await fix_attendees(ctx, session)
        attendees = await current_attendees(ctx, session)
        records = {r["member_id"]: r for r in await ctx.db[ATTENDANCE].find({"session_id": session["_id"]}).to_list()}
        ids = list(dict.fromkeys([*attendees, *records]))
        people = {m["_id"]: m for m in await ctx.db[MEMBERS].find({"_id": {"$in": ids}},
                                                                  {"name": 1, "org_id": 1}).to_list()}
        for member_id in ids:
            record, person = records.get(member_id), people.get(member_id, {})
            status = record["status"] if record else "absent"
            rows.append([session["title"], track_names.get(session["track"], session["track"]),
                         _local(session["starts_at"], ctx), person.get("name", ""),
                         org_names.get(person.get("org_id"), ""), STATUS_ZH[status],
                         _local(record.get("checked_in_at") if record else None, ctx),
                         record["method"] if record else "", "是" if record and record.get("offline") else "否",
                         SOURCE_ZH.get(record["source"], record["source"]) if record else "",
                         (record.get("reason") or "") if record else ""])
    return rows


async def export(ctx: Context, principal: Principal, org_id: str, period_text: str | None, fmt: str,
                 table: str) -> tuple[bytes, str, str]:
    org = await orgs.require_role(ctx, principal, org_id, "organiser")
    period = parse_period(period_text, ctx)
    tree = await subtree(ctx, org)
    report = await compliance_for(ctx, org, period, tree)
    org_list, _, stored = tree
    org_names = {o["_id"]: o["name"] for o in org_list}
    track_names = _track_names([schemes.DEFAULT_SCHEME, *stored.values()])
    compliance_rows = [[m["name"], org_names.get(m["org_id"], ""), t["name"], t["required_count"], t["done_count"],
                        t["required_minutes"], t["done_minutes"], "是" if t["complete"] else "否"]
                       for m in report["members"] for t in m["tracks"]]
    base = f"学习情况_{org['name']}_{period.label}"
    if fmt == "xlsx":
        attendance_rows = await _attendance_rows(ctx, org, period, org_names, track_names)
        body = spreadsheets.to_xlsx([("达标情况", COMPLIANCE_HEADERS, compliance_rows),
                                     ("出勤记录", ATTENDANCE_HEADERS, attendance_rows)])
        return body, spreadsheets.XLSX_MIME, base + ".xlsx"
    if table == "attendance":
        rows = await _attendance_rows(ctx, org, period, org_names, track_names)
        return spreadsheets.to_csv(ATTENDANCE_HEADERS, rows), spreadsheets.CSV_MIME, base + "_出勤记录.csv"
    return spreadsheets.to_csv(COMPLIANCE_HEADERS, compliance_rows), spreadsheets.CSV_MIME, base + "_达标情况.csv"


def _track_names(schemes: Iterable[dict]) -> dict[str, str]:
    names: dict[str, str] = {}
    for scheme in schemes:
        for track in scheme["tracks"]:
            names[track["key"]] = track["name"]
    return names
