"""Who signed up (organisers): confirmed, waitlisted and cancelled, as JSON, CSV or xlsx."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from server import members, signups, spreadsheets
from server.activities.checkin import attendance, close_out
from server.activities.visibility import get_managed
from server.context import Context
from server.scope import Principal

ROSTER_GROUPS = ("confirmed", "waitlisted", "cancelled")


async def roster(ctx: Context, principal: Principal, activity_id: str) -> dict:
    act = await get_managed(ctx, principal, activity_id)
    await close_out(ctx, act)
    docs = await ctx.db[signups.COLLECTION].find({"activity_id": activity_id}).to_list()
    people = {m["_id"]: m for m in await ctx.db[members.COLLECTION].find(
        {"_id": {"$in": [d["member_id"] for d in docs]}}, {"name": 1, "phone": 1}).to_list()}
    groups: dict[str, list[dict]] = {g: [] for g in ROSTER_GROUPS}
    now = ctx.now()
    order = {"confirmed": lambda d: (d.get("confirmed_at") or d["signed_up_at"], d["_id"]),
             "waitlisted": lambda d: (d["seq"], d["_id"]),
             "cancelled": lambda d: (d.get("cancelled_at") or d["signed_up_at"], d["_id"])}
    for group in ROSTER_GROUPS:
        chosen = sorted((d for d in docs if d["status"] == group), key=order[group])
        for index, doc in enumerate(chosen, start=1):
            person = people.get(doc["member_id"], {})
            groups[group].append({
                "member_id": doc["member_id"], "name": person.get("name", ""),
                "phone_masked": members.mask_phone(person.get("phone", "")),
                "status": group, "position": index if group == "waitlisted" else None,
                "signed_up_at": doc["signed_up_at"], "confirmed_at": doc.get("confirmed_at"),
                "cancelled_at": doc.get("cancelled_at"), "checked_in_at": doc.get("checked_in_at"),
                "attendance": attendance(act, doc, now), "answers": doc.get("answers") or {}})
    confirmed = groups["confirmed"]
    counts = {"confirmed": len(confirmed), "waitlisted": len(groups["waitlisted"]),
              "cancelled": len(groups["cancelled"]),
              "present": sum(1 for e in confirmed if e["attendance"] == "present"),
              "no_show": sum(1 for e in confirmed if e["attendance"] == "no_show")}
    return {"activity_id": activity_id, "title": act["title"], "capacity": act["capacity"], "counts": counts,
            **groups}


STATUS_ZH = {"confirmed": "已确认", "waitlisted": "候补", "cancelled": "已取消"}
ATTENDANCE_ZH = {"present": "已签到", "no_show": "未到", None: ""}
ROSTER_HEADERS = ["姓名", "手机号", "状态", "候补顺位", "报名时间", "确认时间", "取消时间", "签到时间", "出勤"]


def roster_rows(data: dict, group: str, tz) -> list[list[Any]]:
    def local(moment: datetime | None) -> str:
        return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S") if moment else ""

    return [[e["name"], e["phone_masked"], STATUS_ZH[e["status"]], e["position"] or "",
             local(e["signed_up_at"]), local(e["confirmed_at"]), local(e["cancelled_at"]),
             local(e["checked_in_at"]), ATTENDANCE_ZH[e["attendance"]]] for e in data[group]]


def roster_file(ctx: Context, data: dict, wanted: str) -> tuple[bytes, str, str]:
    """A `roster` as a file with Chinese headers → (body, media type, filename): csv, one table, or xlsx, a
    sheet per group. `wanted` is the `format` query value (csv or xlsx, else 422)."""
    fmt = spreadsheets.file_format(wanted)
    tz = ctx.settings.tz
    name = f"报名名单-{data['title']}"
    if fmt == "csv":
        rows = [row for group in ROSTER_GROUPS for row in roster_rows(data, group, tz)]
        return spreadsheets.to_csv(ROSTER_HEADERS, rows), spreadsheets.CSV_MIME, f"{name}.csv"
    sheets = [(STATUS_ZH[group], ROSTER_HEADERS, roster_rows(data, group, tz)) for group in ROSTER_GROUPS]
    return spreadsheets.to_xlsx(sheets), spreadsheets.XLSX_MIME, f"{name}.xlsx"
