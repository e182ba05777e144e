"""The demo's study record: the "四个五" scheme, last month's 党小组会 in every branch, a 党课 for the
whole committee and a 支部党员大会 in the last week (present, late, absent, a manual mark, an approved
leave, a pending request), self-study logs, the sessions of this week and next (one open for check-in
now, one cancelled), and last month's compliance scan with a warning under rectification.

Check-ins go through server.study.checkins with the token the projector would show at that moment
(server.study.sessions.qr_token), with the clock moved to the moment of the scan.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from schemas.study import MarkIn, RequestIn, SchemePut, SelfStudyIn, SessionCreate
from server import org_settings
from server.context import Context
from server.demo.checked import checked
from server.demo.org import COMMITTEE, FINANCE, IT, OFFICE, PERSONNEL, SERVICES, Organisation
from server.demo.timeline import Timeline
from server.scope import Principal
from server.study import attendance, checkins, rectification, schemes, sessions

SCHEME = {"name": "四个五", "tracks": [
    {"key": "branch_assembly", "name": "支部党员大会", "kind": "session", "period": "quarter", "min_count": 1},
    {"key": "group_meeting", "name": "党小组会", "kind": "session", "period": "month", "min_count": 1},
    {"key": "party_lecture", "name": "党课", "kind": "session", "period": "year", "min_count": 4},
    {"key": "self_study", "name": "个人自学", "kind": "self_study", "period": "month", "min_count": 5},
]}
ROOMS = {OFFICE: "综合楼 302 会议室", FINANCE: "财务处会议室", PERSONNEL: "人事处小会议室",
         IT: "信息中心三楼会议室", SERVICES: "后勤楼一楼活动室", COMMITTEE: "机关礼堂"}
MATERIALS = ["《中国共产党章程》", "《中国共产党纪律处分条例》", "《习近平新时代中国特色社会主义思想学习纲要》",
             "学习强国：每日金句", "《党员教育管理工作条例》", "人民日报评论员文章", "《中国共产党简史》",
             "党的二十大报告", "《关于新形势下党内政治生活的若干准则》", "“学习强国”专题：机关作风建设"]
# Last month's self-study behind the scheme (entries, minutes each): the scan warns about these.
SLACK = {"刘洋": (3, 60), "朱晓东": (4, 40), "吴昊": (2, 45)}
STUDY_DAYS = (3, 8, 13, 19, 25)


async def set_scheme(ctx: Context, tl: Timeline, org: Organisation) -> None:
    """The committee stores its own scheme, so every branch shows it as inherited from 机关党委."""
    tl.go(tl.at(tl.last_month, 10) - timedelta(days=5))
    await schemes.put(ctx, org.principal(org.admin), org.orgs[COMMITTEE]["_id"], checked(SchemePut, SCHEME))


async def new_session(ctx: Context, organiser: Principal, org_id: str, track: str, title: str, starts: datetime,
                      minutes: int, *, agenda: str | None = None, location: dict | None = None,
                      methods: tuple[str, ...] = ("qr",)) -> dict:
    body = {"org_id": org_id, "track": track, "title": title, "agenda": agenda, "starts_at": starts,
            "ends_at": starts + timedelta(minutes=minutes), "location": location, "methods": list(methods)}
    return await sessions.create(ctx, organiser, checked(SessionCreate, body))


async def scan_in(ctx: Context, tl: Timeline, organiser: Principal, session: dict, member: Principal,
                  at: datetime) -> None:
    """The member scans the projector at `at`: the token shown then, checked in then."""
    tl.go(at)
    token = await sessions.qr_token(ctx, organiser, session["_id"])
    await checkins.check_in(ctx, member, {"session_id": session["_id"], "qr_token": token["token"]})


async def hold(ctx: Context, tl: Timeline, org: Organisation, organiser: Principal, session: dict,
               people: list[str], *, late: tuple[str, ...] = (), absent: tuple[str, ...] = ()) -> None:
    """The session happens: everyone in `people` scans in before the start, except the late (after the
    start) and the absent (never)."""
    rng = random.Random(session["title"])
    start = session["starts_at"]
    times = []
    for person in people:
        if person in absent:
            continue
        offset = rng.randint(5, 20) if person in late else -rng.randint(1, 25)
        times.append((start + timedelta(minutes=offset, seconds=rng.randint(0, 59)), person))
    for at, person in sorted(times):
        await scan_in(ctx, tl, organiser, session, org.principal(person), at)


async def mark(ctx: Context, tl: Timeline, organiser: Principal, session: dict, member: dict, status: str,
               reason: str) -> None:
    tl.go(session["ends_at"] + timedelta(minutes=20))
    body = checked(MarkIn, {"status": status, "reason": reason})
    await attendance.mark(ctx, organiser, session["_id"], member["_id"], body["status"], body["reason"])


async def request(ctx: Context, tl: Timeline, member: Principal, session: dict, kind: str, reason: str,
                  at: datetime) -> dict:
    tl.go(at)
    body = checked(RequestIn, {"session_id": session["_id"], "kind": kind, "reason": reason})
    return await attendance.create_request(ctx, member, body["session_id"], body["kind"], body["reason"])


async def last_month_meetings(ctx: Context, tl: Timeline, org: Organisation) -> None:
    """Every branch held its 党小组会 last month; the office and finance branches had the usual exceptions."""
    month = tl.last_month.month
    plan = [(OFFICE, 14, f"{month}月党小组会：学习《中国共产党章程》总纲"),
            (FINANCE, 15, f"{month}月党小组会：财经纪律专题学习"),
            (PERSONNEL, 16, f"{month}月党小组会：干部选拔任用制度学习"),
            (IT, 17, f"{month}月党小组会：网络安全与保密教育"),
            (SERVICES, 18, f"{month}月党小组会：服务保障能力提升讨论")]
    for branch, day, title in plan:
        secretary = org.secretary_of(branch)
        tl.go(tl.in_last_month(day - 5, 10))
        session = await new_session(ctx, secretary, org.orgs[branch]["_id"], "group_meeting", title,
                                    tl.in_last_month(day, 14, 30), 90, location=_room(branch),
                                    agenda="一、集中学习；二、交流发言；三、支部书记小结")
        people = org.members_of(branch)
        if branch == OFFICE:
            # 吴倩 asked for leave two days before, approved the next day; 孙浩然 did not come.
            leave = await request(ctx, tl, org.principal("吴倩"), session, "leave", "赴外地参加业务培训，无法参会",
                                  session["starts_at"] - timedelta(days=2))
            tl.go(session["starts_at"] - timedelta(days=1))
            await attendance.decide(ctx, secretary, leave["_id"], True, "同意，请会后自学会议内容")
            await hold(ctx, tl, org, secretary, session, people, late=("刘洋",), absent=("吴倩", "孙浩然"))
        elif branch == FINANCE:
            # 张伟's phone was flat: he was there, his secretary records it by hand.
            await hold(ctx, tl, org, secretary, session, people, late=("马琳",), absent=("张伟",))
            await mark(ctx, tl, secretary, session, org.people["张伟"], "present", "手机没电未能扫码，经现场核实补录")
        else:
            await hold(ctx, tl, org, secretary, session, people, late=people[-1:])


async def self_study(ctx: Context, tl: Timeline, org: Organisation) -> None:
    """Last month most members logged five entries of an hour or more; this month, what the days so far allow."""
    rng = random.Random(5)
    days_this_month = [d for d in range(2, tl.today.day) if d % 4 == 2]
    for person in org.everyone():
        count, minutes = SLACK.get(person, (5, 0))
        member = org.principal(person)
        entries = [(tl.in_last_month(day, 20, rng.randint(0, 50)), minutes or rng.choice((60, 60, 70, 80, 90)))
                   for day in STUDY_DAYS[:count]]
        entries += [(tl.at(tl.today.replace(day=day), 20, rng.randint(0, 50)), rng.choice((45, 60, 75)))
                    for day in days_this_month]
        for at, length in entries:
            tl.go(at)
            body = checked(SelfStudyIn, {"track": "self_study", "minutes": length, "material": rng.choice(MATERIALS),
                                         "note": None, "date": at.astimezone(tl.tz).date()})
            await checkins.log_self_study(ctx, member, body["track"], body["minutes"], body["material"],
                                          body["note"], body["date"])


async def recent_sessions(ctx: Context, tl: Timeline, org: Organisation) -> None:
    """A 党课 for the whole committee six days ago and the office's 支部党员大会 two days ago."""
    admin = org.principal(org.admin)
    tl.go(tl.days_from_now(-12, 10))
    lecture = await new_session(ctx, admin, org.orgs[COMMITTEE]["_id"], "party_lecture", "专题党课：弘扬伟大建党精神",
                                tl.days_from_now(-6, 9), 120, location=_room(COMMITTEE),
                                agenda="机关党委书记讲授专题党课，会后分组讨论")
    await hold(ctx, tl, org, admin, lecture, org.everyone(), late=("赵鹏", "郭涛", "马琳"), absent=("杨帆", "胡振宇"))
    await request(ctx, tl, org.principal("杨帆"), lecture, "makeup", "当天在外地出差，已观看党课录像并提交学习体会",
                  lecture["ends_at"] + timedelta(days=1, hours=2))

    office = org.secretary_of(OFFICE)
    tl.go(tl.days_from_now(-9, 11))
    assembly = await new_session(ctx, office, org.orgs[OFFICE]["_id"], "branch_assembly",
                                 "支部党员大会：预备党员转正前考察情况通报", tl.days_from_now(-2, 14, 30), 120,
                                 location=_room(OFFICE), agenda="一、通报考察情况；二、民主评议；三、组织生活会准备")
    await request(ctx, tl, org.principal("李娜"), assembly, "leave", "孩子生病需在医院陪护",
                  assembly["starts_at"] - timedelta(hours=3))
    await hold(ctx, tl, org, office, assembly, org.members_of(OFFICE), late=("王芳",), absent=("李娜", "陈刚"))
    await mark(ctx, tl, office, assembly, org.people["陈刚"], "leave", "会前电话请假（单位公务外出），书记同意")


async def upcoming_sessions(ctx: Context, tl: Timeline, org: Organisation) -> None:
    """This week and next: one open for check-in right now, one with a geofence, one cancelled."""
    soon = tl.now.replace(second=0) + timedelta(minutes=25)
    soon -= timedelta(minutes=soon.minute % 5)  # 20 to 25 minutes from now: check-in is open already
    it = org.secretary_of(IT)
    tl.go(tl.now - timedelta(days=1))
    live = await new_session(ctx, it, org.orgs[IT]["_id"], "branch_assembly", "主题党日：数字机关建设研讨", soon, 120,
                             location=_room(IT), agenda="签到后分组研讨，每组推荐一名代表发言")
    plan = [
        (OFFICE, "group_meeting", f"{tl.today.month}月党小组会：学习贯彻新修订的党员教育管理工作条例", 1, 15, 90,
         {"name": "综合楼 302 会议室", "lat": 39.908692, "lng": 116.397477, "radius_m": 150}, ("qr", "geo")),
        (FINANCE, "branch_assembly", "支部党员大会：年度党员民主评议", 2, 9, 120, None, ("qr",)),
        (PERSONNEL, "group_meeting", f"{tl.today.month}月党小组会：选人用人工作交流", 3, 14, 90, None, ("qr",)),
        (COMMITTEE, "party_lecture", "专题党课：以高质量党建引领机关建设", 8, 9, 120, None, ("qr",)),
        (SERVICES, "group_meeting", f"{tl.today.month}月党小组会：安全生产专题学习", 9, 14, 90, None, ("qr",)),
    ]
    made = {}
    for where, track, title, days, hour, minutes, location, methods in plan:
        organiser = org.principal(org.admin) if where == COMMITTEE else org.secretary_of(where)
        tl.go(tl.now - timedelta(hours=days + 2))
        made[where] = await new_session(ctx, organiser, org.orgs[where]["_id"], track, title,
                                        tl.days_from_now(days, hour), minutes,
                                        location=location or _room(where), methods=methods)
    tl.go(tl.now - timedelta(hours=1))
    await sessions.cancel(ctx, org.secretary_of(SERVICES), made[SERVICES]["_id"], "与机关运动会时间冲突，改期另行通知")
    tl.back_to_now()
    for person in ("林峰", "赵鹏", "陈丽"):
        await scan_in(ctx, tl, it, live, org.principal(person), datetime.now(UTC))
    tl.back_to_now()


async def warnings(ctx: Context, tl: Timeline, org: Organisation) -> None:
    """Last month's scan of every branch, with warnings about members turned on for the committee (they are off
    unless an admin decides so); the office is rectifying one warning, finance had one closed."""
    tl.back_to_now()
    admin = org.principal(org.admin)
    await org_settings.put(ctx, admin, org.orgs[COMMITTEE]["_id"], {"member_warnings": True})
    for branch in org.secretaries:
        await rectification.scan(ctx, admin, org.orgs[branch]["_id"], tl.last_month_label)
    found, _ = await rectification.list_warnings(ctx, admin, None, None, 100, None)
    by_member = {(w.get("member_name"), w["track"]): w for w in found}
    rectifying = by_member.get(("孙浩然", "group_meeting"))
    if rectifying is not None:
        await rectification.rectify(ctx, org.secretary_of(OFFICE), rectifying["_id"],
                                    "已与本人谈话提醒，安排参加本月党小组会并补学上月内容，下次支部会上作说明", [])
    closed = by_member.get(("朱晓东", "self_study"))
    if closed is not None:
        await rectification.rectify(ctx, org.secretary_of(FINANCE), closed["_id"],
                                    "本人已补记学习笔记并提交书面说明，支部已督促按计划自学", [])
        await rectification.close(ctx, admin, closed["_id"], "整改材料齐全，同意销号")


def _room(org_name: str) -> dict | None:
    return None if org_name not in ROOMS else {"name": ROOMS[org_name], "lat": 39.9087, "lng": 116.3975,
                                               "radius_m": 200}
