"""群心驿站 activities (API.md §6): life cycle, scope, sign-ups, check-in, no-shows, feedback, roster.

An activity goes draft → published → cancelled. It stores `org_path` (its org's path plus the org), so
"members see published activities in their org's ancestors or subtree" is one indexed filter, and
organisers see every activity (drafts too) within the orgs they organise. Anything out of the caller's
scope answers 404 activity_not_found, never revealing that it exists; visible but not theirs to manage
answers 403 forbidden.

The capacity rules (never overbook, gap-free waitlist, promotion) live in server/signups.py; this
module does the checks around them (scope, eligibility, time windows) and the notices.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import DuplicateKeyError

from server import audit, files, members, orgs, programmes, qr, signups, spreadsheets
from server.context import Context
from server.db import indexes, transaction
from server.errors import ApiError, conflict, invalid
from server.feed import writing as feed_writing
from server.ids import new_id
from server.pagination import page
from server.scope import Principal

COLLECTION = signups.ACTIVITIES
FEEDBACK = "activity_feedback"
QR_PURPOSE = "activity"
CHECKIN_OPENS_BEFORE = timedelta(minutes=30)

indexes(
    COLLECTION,
    IndexModel([("org_path", ASCENDING), ("_id", DESCENDING)]),
    IndexModel([("org_id", ASCENDING), ("listed", ASCENDING)]),
    IndexModel([("programme", ASCENDING), ("starts_at", ASCENDING)]),
)
indexes(FEEDBACK, IndexModel([("activity_id", ASCENDING), ("member_id", ASCENDING)], unique=True))

EDITABLE = ("programme", "title", "description", "location", "starts_at", "ends_at", "signup_opens_at",
            "signup_closes_at", "cancel_deadline", "capacity", "waitlist", "cover_file_id")


def not_found() -> ApiError:
    return ApiError(404, "activity_not_found", "No such activity.")


# -- output ---------------------------------------------------------------------------------------

def activity_out(act: dict, my_signup: dict | None) -> dict:
    return {
        "id": act["_id"], "programme": act["programme"], "org_id": act["org_id"], "title": act["title"],
        "description": act["description"], "location": act.get("location"),
        "starts_at": act["starts_at"], "ends_at": act["ends_at"],
        "signup_opens_at": act["signup_opens_at"], "signup_closes_at": act["signup_closes_at"],
        "cancel_deadline": act.get("cancel_deadline") or act["starts_at"],
        "capacity": act["capacity"], "waitlist": act["waitlist"], "cover_file_id": act.get("cover_file_id"),
        "status": act["status"], "confirmed_count": act["confirmed_count"], "waitlist_count": act["waitlist_count"],
        "my_signup": my_signup, "created_at": act["created_at"], "published_at": act.get("published_at"),
        "cancelled_at": act.get("cancelled_at"),
    }


def attendance(act: dict, signup: dict, now: datetime) -> str | None:
    """present once checked in; no_show for a confirmed member of a published activity that has ended
    without them; otherwise None. Derived on every read, so it holds before the lazy close-out has
    written it and for members promoted after it (the stored mark is the record, not the source)."""
    if signup.get("checked_in_at"):
        return "present"
    if signup["status"] == "confirmed" and act["status"] == "published" and now > act["ends_at"]:
        return "no_show"
    return None


async def _my_signup(ctx: Context, act: dict, signup: dict | None) -> dict | None:
    if signup is None:
        return None
    out: dict[str, Any] = {"status": signup["status"]}
    if signup["status"] == "waitlisted":
        out["position"] = await signups.position(ctx, signup)
    if signup.get("checked_in_at"):
        out["checked_in_at"] = signup["checked_in_at"]
    marked = attendance(act, signup, ctx.now())
    if marked:
        out["attendance"] = marked
    if signup.get("feedback_given"):
        out["feedback_given"] = True
    return out


async def present(ctx: Context, principal: Principal, act: dict) -> dict:
    """The Activity answer for `principal`: counts and the caller's own sign-up (API.md §6)."""
    signup = await ctx.db[signups.COLLECTION].find_one({"activity_id": act["_id"],
                                                        "member_id": principal.member_id})
    return activity_out(act, await _my_signup(ctx, act, signup))


# -- scope ----------------------------------------------------------------------------------------

def member_filter(principal: Principal) -> dict:
    """Published (or published, then cancelled) activities of the caller's org's ancestors or subtree."""
    return {"listed": True, "$or": [{"org_id": {"$in": list(principal.org_path)}},
                                    {"org_path": principal.org_id}]}


def visible_filter(principal: Principal) -> dict:
    roles = principal.role_orgs()
    if not roles:
        return member_filter(principal)
    return {"$or": [member_filter(principal), {"org_path": {"$in": roles}}]}


async def _find_visible(ctx: Context, principal: Principal, activity_id: str, projection=None) -> dict | None:
    return await ctx.db[COLLECTION].find_one({"$and": [{"_id": activity_id}, visible_filter(principal)]},
                                             projection)


async def get_visible(ctx: Context, principal: Principal, activity_id: str) -> dict:
    act = await _find_visible(ctx, principal, activity_id)
    if act is None:
        raise not_found()
    return act


async def may_see(ctx: Context, principal: Principal, activity_id: str) -> bool:
    """The rule of GET /activities/{id}, also deciding who may download the activity's cover."""
    return await _find_visible(ctx, principal, activity_id, {"_id": 1}) is not None


files.register_visibility("activity", may_see)


async def get_managed(ctx: Context, principal: Principal, activity_id: str) -> dict:
    act = await get_visible(ctx, principal, activity_id)
    principal.require_organiser(act["org_path"], "activity")
    return act


# -- validation -----------------------------------------------------------------------------------

def _utc(moment: datetime | None) -> datetime | None:
    """UTC, truncated to the millisecond MongoDB keeps, so what we compare is what we store."""
    if moment is None:
        return None
    moment = moment.astimezone(UTC)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def check_times(act: dict) -> None:
    """signup_opens_at < signup_closes_at ≤ starts_at < ends_at; cancel_deadline ≤ starts_at."""
    errors = []
    if not act["signup_opens_at"] < act["signup_closes_at"]:
        errors.append(("signup_closes_at", "must be after signup_opens_at"))
    if not act["signup_closes_at"] <= act["starts_at"]:
        errors.append(("signup_closes_at", "must not be after starts_at"))
    if not act["starts_at"] < act["ends_at"]:
        errors.append(("ends_at", "must be after starts_at"))
    if act.get("cancel_deadline") is not None and not act["cancel_deadline"] <= act["starts_at"]:
        errors.append(("cancel_deadline", "must not be after starts_at"))
    if errors:
        raise ApiError(422, "invalid_request", "The activity's times are out of order.",
                       errors=[{"field": f, "message": m} for f, m in errors])


def _normalise(fields: dict) -> dict:
    out = dict(fields)
    for key in ("starts_at", "ends_at", "signup_opens_at", "signup_closes_at", "cancel_deadline"):
        if key in out:
            out[key] = _utc(out[key])
    return out


# -- life cycle -----------------------------------------------------------------------------------

async def create(ctx: Context, principal: Principal, body: dict) -> dict:
    org = await orgs.require_role(ctx, principal, body["org_id"], "organiser")
    await programmes.require_active(ctx, body["programme"])
    fields = _normalise({k: body.get(k) for k in EDITABLE})
    now = signups.now_ms(ctx)
    act = {"_id": new_id(), **fields, "org_id": org["_id"], "org_path": orgs.full_path(org),
           "status": "draft", "listed": False, "confirmed_count": 0, "waitlist_count": 0, "waitlist_seq": 0,
           "qr_secret": qr.new_secret(), "created_at": now, "created_by": principal.member_id, "updated_at": now,
           "published_at": None, "cancelled_at": None, "closed_out": False}
    check_times(act)
    if act["cover_file_id"]:
        await _attach_cover(ctx, principal, act)
    await ctx.db[COLLECTION].insert_one(act)
    return act


async def _attach_cover(ctx: Context, principal: Principal, act: dict,
                        txn: AsyncClientSession | None = None) -> None:
    """The cover image is a file (API.md §8) the organiser uploaded; members who see the activity may fetch it."""
    await files.detach(ctx, ref_kind="activity", ref_id=act["_id"], txn=txn)
    if act.get("cover_file_id"):
        await files.attach(ctx, principal, [act["cover_file_id"]], ref_kind="activity", ref_id=act["_id"],
                           txn=txn)


async def patch(ctx: Context, principal: Principal, activity_id: str, changes: dict) -> dict:
    """Partial update. Capacity changes run with the sign-up transaction (promotion, refusal below confirmed)."""
    await get_managed(ctx, principal, activity_id)
    changes = _normalise({k: v for k, v in changes.items() if k in EDITABLE})
    if "programme" in changes:
        await programmes.require_active(ctx, changes["programme"])

    def check(current: dict) -> None:
        check_times({**current, **changes})

    async def after(txn: AsyncClientSession, act: dict, promoted: list[str]) -> None:
        if "ends_at" in changes:  # a moved end: no-shows are judged against the new one
            await ctx.db[signups.COLLECTION].update_many(
                {"activity_id": activity_id, "attendance": "no_show"}, {"$set": {"attendance": None}},
                session=txn)
        if "cover_file_id" in changes:
            await _attach_cover(ctx, principal, act, txn)
        if act["status"] == "published" and FEED_FIELDS & changes.keys():
            await _publish_feed(ctx, act, txn)
        await _tell_promoted(ctx, txn, act, promoted)
        await audit.record(ctx, actor_id=principal.member_id, action="activity.update", target_kind="activity",
                           target_id=activity_id, org_path=act["org_path"],
                           changes={"fields": sorted(changes), "promoted": promoted}, txn=txn)

    stored = {**changes, "closed_out": False} if "ends_at" in changes else changes
    new, promoted = await signups.apply_changes(ctx, activity_id, stored, check, after)
    if promoted or "ends_at" in changes:  # members confirmed (or an end moved) after the activity ended
        await _close_out(ctx, new, again=True)
    return new


async def publish(ctx: Context, principal: Principal, activity_id: str) -> dict:
    """Draft → published, and the activity's item in the feed of its org subtree, in one transaction."""
    await get_managed(ctx, principal, activity_id)

    async def work(txn: AsyncClientSession) -> dict:
        act = await ctx.db[COLLECTION].find_one({"_id": activity_id}, session=txn)
        if act["status"] == "cancelled":
            raise conflict("activity_cancelled", "This activity has been cancelled.")
        if act["status"] == "published":
            return act
        now = signups.now_ms(ctx)
        published = {"status": "published", "listed": True, "published_at": now, "updated_at": now}
        await ctx.db[COLLECTION].update_one({"_id": activity_id}, {"$set": published}, session=txn)
        act = {**act, **published}
        await _publish_feed(ctx, act, txn)
        return act

    return await signups.in_transaction(ctx, activity_id, work)


async def cancel(ctx: Context, principal: Principal, activity_id: str, reason: str) -> dict:
    await get_managed(ctx, principal, activity_id)

    async def after(txn: AsyncClientSession, act: dict, signed_up: list[str]) -> None:
        if act.get("published_at"):  # members saw it: their feed item now says it is cancelled
            await _publish_feed(ctx, act, txn)
        await _tell_cancelled(ctx, txn, act, signed_up)
        await audit.record(ctx, actor_id=principal.member_id, action="activity.cancel", target_kind="activity",
                           target_id=activity_id, org_path=act["org_path"],
                           changes={"signed_up": len(signed_up)}, reason=reason or None, txn=txn)

    act, _ = await signups.cancel_activity(ctx, activity_id, reason, after)
    return act


async def list_visible(ctx: Context, principal: Principal, *, programme: str | None, org_id: str | None,
                       eligible: bool, status: str | None, limit: int, cursor: str | None
                       ) -> tuple[list[dict], str | None]:
    clauses: list[dict] = [visible_filter(principal)]
    if programme:
        clauses.append({"programme": programme})
    if org_id:
        clauses.append({"org_id": org_id})
    if status:
        if status not in ("draft", "published", "cancelled"):
            raise invalid("status", "status must be draft, published or cancelled.")
        clauses.append({"status": status})
    if eligible:
        member = await members.get(ctx, principal.member_id)
        await programmes.ensure_defaults(ctx)
        every = await ctx.db[programmes.COLLECTION].find({}).to_list()
        clauses.append(programmes.eligible_filter(every, member, ctx.settings.tz))
    items, next_cursor = await page(ctx.db[COLLECTION], {"$and": clauses}, limit, cursor, descending=True)
    for act in items:  # an activity that has ended gets its no-shows written on first sight
        await _close_out(ctx, act)
    mine = {s["activity_id"]: s for s in await ctx.db[signups.COLLECTION].find(
        {"member_id": principal.member_id, "activity_id": {"$in": [a["_id"] for a in items]}}).to_list()}
    return [activity_out(a, await _my_signup(ctx, a, mine.get(a["_id"]))) for a in items], next_cursor


async def get_one(ctx: Context, principal: Principal, activity_id: str) -> dict:
    act = await get_visible(ctx, principal, activity_id)
    await _close_out(ctx, act)
    return await present(ctx, principal, act)


# -- sign-ups -------------------------------------------------------------------------------------

def sees(principal: Principal, act: dict) -> bool:
    """`visible_filter` in Python, for a document already read (inside the sign-up transaction)."""
    if principal.organises(act["org_path"]):
        return True
    return bool(act.get("listed")) and (act["org_id"] in principal.org_path or principal.org_id in act["org_path"])


async def sign_up(ctx: Context, principal: Principal, activity_id: str, answers: dict[str, str]
                  ) -> tuple[dict, bool]:
    """→ ({status, position?}, created?). Scope, window and eligibility are checked on the activity and the
    member's record as the capacity transaction reads them (server/signups.py: `join`)."""
    async def admit(act: dict, member: dict) -> None:
        if act["status"] == "draft":  # only its organisers see a draft
            raise conflict("signup_not_open", "This activity is not published yet.")
        programme = await programmes.get_cached(ctx, act["programme"])
        ok, reason = programmes.eligible(programme, member, act["starts_at"], ctx.settings.tz)
        if not ok:
            raise ApiError(403, "not_eligible", reason)
        signups.check_window(act, ctx.now())

    signup, created, position = await signups.join(ctx, activity_id, principal.member_id, answers,
                                                   visible=lambda act: sees(principal, act), admit=admit)
    out: dict[str, Any] = {"status": signup["status"]}
    if position is not None:
        out["position"] = position
    return out, created


async def withdraw(ctx: Context, principal: Principal, activity_id: str) -> None:
    act = await get_visible(ctx, principal, activity_id)

    async def tell(txn: AsyncClientSession, current: dict, promoted: list[str]) -> None:
        await _tell_promoted(ctx, txn, current, promoted)

    await signups.leave(ctx, act["_id"], principal.member_id, tell)


ROSTER_GROUPS = ("confirmed", "waitlisted", "cancelled")


async def roster(ctx: Context, principal: Principal, activity_id: str) -> dict:
    act = await get_managed(ctx, principal, activity_id)
    await _close_out(ctx, act)
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


# -- on the day -----------------------------------------------------------------------------------

async def qr_token(ctx: Context, principal: Principal, activity_id: str) -> dict:
    act = await get_managed(ctx, principal, activity_id)
    if act["status"] == "cancelled":
        raise conflict("activity_cancelled", "This activity has been cancelled.")
    token = qr.current(act["qr_secret"], QR_PURPOSE, activity_id, ctx.now())
    return {**token, "payload": qr.payload(QR_PURPOSE, activity_id, token["token"])}


async def qr_image(ctx: Context, principal: Principal, activity_id: str, fmt: str) -> bytes:
    """The current token as a QR image for the projector: svg or png."""
    token = await qr_token(ctx, principal, activity_id)
    return qr.render_svg(token["payload"]) if fmt == "svg" else qr.render_png(token["payload"])


async def check_in(ctx: Context, principal: Principal, activity_id: str, token: str) -> tuple[dict, bool]:
    """Only confirmed members, within [starts_at − 30 min, ends_at], with a current QR token."""
    act = await get_visible(ctx, principal, activity_id)
    if act["status"] == "cancelled":
        raise conflict("activity_cancelled", "This activity has been cancelled.")
    signup = await ctx.db[signups.COLLECTION].find_one({"activity_id": activity_id,
                                                        "member_id": principal.member_id})
    if signup is None or signup["status"] != "confirmed":
        raise ApiError(403, "not_confirmed", "Only members with a confirmed place can check in.")
    if signup.get("checked_in_at"):
        return {"result": "already_checked_in", "status": "present", "checked_in_at": signup["checked_in_at"]}, False
    now = signups.now_ms(ctx)
    if now < act["starts_at"] - CHECKIN_OPENS_BEFORE:
        raise conflict("checkin_not_open", "Check-in opens 30 minutes before the start.")
    if now > act["ends_at"]:
        raise conflict("checkin_closed", "Check-in closed when the activity ended.")
    qr.verify(act["qr_secret"], QR_PURPOSE, activity_id, token, now)
    done = await ctx.db[signups.COLLECTION].update_one(
        {"_id": signup["_id"], "status": "confirmed", "checked_in_at": None},
        {"$set": {"checked_in_at": now, "attendance": "present"}})
    if done.modified_count != 1:  # a concurrent scan won, or the place was just cancelled
        again = await ctx.db[signups.COLLECTION].find_one({"_id": signup["_id"]})
        if again.get("checked_in_at"):
            return {"result": "already_checked_in", "status": "present",
                    "checked_in_at": again["checked_in_at"]}, False
        raise ApiError(403, "not_confirmed", "Only members with a confirmed place can check in.")
    return {"result": "ok", "status": "present", "checked_in_at": now}, True


async def _close_out(ctx: Context, act: dict, *, again: bool = False) -> None:
    """After the end, mark confirmed members who never checked in as no-shows (once, lazily, on the first
    read of the ended activity; `again` after an edit that promoted members or moved the end)."""
    if (act.get("closed_out") and not again) or act["status"] != "published" or ctx.now() <= act["ends_at"]:
        return
    await ctx.db[signups.COLLECTION].update_many(
        {"activity_id": act["_id"], "status": "confirmed", "checked_in_at": None, "attendance": None},
        {"$set": {"attendance": "no_show"}})
    await ctx.db[COLLECTION].update_one({"_id": act["_id"]}, {"$set": {"closed_out": True}})
    act["closed_out"] = True


async def give_feedback(ctx: Context, principal: Principal, activity_id: str, rating: int, comment: str) -> dict:
    act = await get_visible(ctx, principal, activity_id)
    await _close_out(ctx, act)
    signup = await ctx.db[signups.COLLECTION].find_one({"activity_id": activity_id,
                                                        "member_id": principal.member_id})
    if signup is None or not signup.get("checked_in_at"):
        raise ApiError(403, "not_attended", "Only members who checked in may leave feedback.")
    doc = {"_id": new_id(), "activity_id": activity_id, "member_id": principal.member_id, "rating": rating,
           "comment": comment, "created_at": signups.now_ms(ctx)}

    async def work(txn: AsyncClientSession) -> None:  # the feedback and the flag, both or neither
        await ctx.db[FEEDBACK].insert_one(doc, session=txn)
        await ctx.db[signups.COLLECTION].update_one({"_id": signup["_id"]}, {"$set": {"feedback_given": True}},
                                                    session=txn)

    try:
        await transaction(ctx, work)
    except DuplicateKeyError:
        raise conflict("feedback_exists", "You have already left feedback for this activity.") from None
    return feedback_out(doc)


def feedback_out(doc: dict) -> dict:
    return {"id": doc["_id"], "activity_id": doc["activity_id"], "rating": doc["rating"],
            "comment": doc["comment"], "created_at": doc["created_at"]}


async def feedback_summary(ctx: Context, principal: Principal, activity_id: str) -> dict:
    """For organisers: the ratings and comments (without names: feedback is given freely)."""
    await get_managed(ctx, principal, activity_id)
    docs = await ctx.db[FEEDBACK].find({"activity_id": activity_id}).sort("created_at", ASCENDING).to_list()
    ratings = {str(r): 0 for r in range(1, 6)}
    for doc in docs:
        ratings[str(doc["rating"])] += 1
    average = round(sum(d["rating"] for d in docs) / len(docs), 2) if docs else None
    return {"activity_id": activity_id, "count": len(docs), "average": average, "ratings": ratings,
            "comments": [feedback_out(d) for d in docs if d["comment"]]}


# -- feed and notices -----------------------------------------------------------------------------

FEED_KIND = "activity"
FEED_FIELDS = {"title", "description", "location", "starts_at", "ends_at"}


def feed_summary(ctx: Context, act: dict) -> str:
    when = act["starts_at"].astimezone(ctx.settings.tz).strftime("%Y-%m-%d %H:%M")
    if act["status"] == "cancelled":
        reason = act.get("cancel_reason")
        return f"已取消（原定 {when}）" + (f"。原因：{reason}" if reason else "")
    parts = [when, act.get("location") or "", act.get("description") or ""]
    return " · ".join(p for p in parts if p)


async def _publish_feed(ctx: Context, act: dict, txn: AsyncClientSession) -> None:
    """The activity's feed item for its org subtree, as the activity now is (cancelled: marked, expiring at the end)."""
    cancelled = act["status"] == "cancelled"
    await feed_writing.publish_item(
        ctx, kind=FEED_KIND, ref_id=act["_id"], org_id=act["org_id"],
        title=f"【已取消】{act['title']}" if cancelled else act["title"], summary=feed_summary(ctx, act),
        published_at=act["published_at"], expires_at=act["ends_at"] if cancelled else None, txn=txn)


async def _tell_promoted(ctx: Context, txn: AsyncClientSession, act: dict, promoted: list[str]) -> None:
    if promoted:
        await _notify(ctx, promoted, title=f"候补转正：{act['title']}",
                      summary="有名额空出，您已从候补转为正式报名。", act=act, txn=txn)


async def _tell_cancelled(ctx: Context, txn: AsyncClientSession, act: dict, signed_up: list[str]) -> None:
    if signed_up:
        reason = act.get("cancel_reason") or ""
        await _notify(ctx, signed_up, title=f"活动取消：{act['title']}",
                      summary="您报名的活动已取消。" + (f"原因：{reason}" if reason else ""), act=act,
                      txn=txn)


async def _notify(ctx: Context, member_ids: list[str], *, title: str, summary: str, act: dict,
                  txn: AsyncClientSession) -> None:
    """A notice in each member's feed, written in the caller's transaction (so it exists iff the change does)."""
    await feed_writing.notify(ctx, member_ids, title=title, summary=summary, ref_kind="activity", ref_id=act["_id"],
                       org_id=act["org_id"], txn=txn)
