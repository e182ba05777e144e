"""The demo's 群心驿站 activities, one or more in each programme: a reading club last week with check-ins
and feedback, a badminton match full with a waitlist (and one promotion), a health talk and a flower
workshop open for sign-up now, a volunteer day whose sign-up has closed, a walk cancelled for the
weather, and a branch's draft. Sign-ups go through server.activities with the clock at the moment
each member signed up, so eligibility, windows and capacity are the service's own rules."""

from __future__ import annotations

from datetime import datetime, timedelta

from schemas.activities import ActivityCreate, CancelIn, FeedbackIn
from server import activities, programmes
from server.context import Context
from server.demo.checked import checked
from server.demo.org import COMMITTEE, FINANCE, SERVICES, Organisation
from server.demo.timeline import Timeline
from server.scope import Principal

FEEDBACK = [(5, "分享很有启发，希望以后多组织这样的读书活动"), (5, "氛围很好，认识了其他处室的青年同事"),
            (4, "书目选得好，讨论时间可以再长一些"), (4, ""), (3, "场地稍小，建议换到大一点的会议室")]


async def create(ctx: Context, tl: Timeline, organiser: Principal, at: datetime, **fields) -> dict:
    tl.go(at)
    return await activities.create(ctx, organiser, checked(ActivityCreate, fields))


async def publish(ctx: Context, tl: Timeline, organiser: Principal, act: dict, at: datetime) -> dict:
    tl.go(at)
    return await activities.publish(ctx, organiser, act["_id"])


async def eligible(ctx: Context, org: Organisation, act: dict, people: list[str]) -> list[str]:
    programme = await programmes.get(ctx, act["programme"])
    return [p for p in people
            if programmes.eligible(programme, org.people[p], act["starts_at"], ctx.settings.tz)[0]]


async def sign_up(ctx: Context, tl: Timeline, org: Organisation, act: dict, people: list[str], first: datetime,
                  every: timedelta) -> list[str]:
    """Sign up each of `people` who may, one `every` after the other from `first`; who did."""
    who = await eligible(ctx, org, act, people)
    for index, person in enumerate(who):
        tl.go(first + every * index)
        await activities.sign_up(ctx, org.principal(person), act["_id"], {})
    return who


async def build(ctx: Context, tl: Timeline, org: Organisation) -> None:
    admin = org.principal(org.admin)
    committee = org.orgs[COMMITTEE]["_id"]
    everyone = [p for p in org.everyone() if p != org.admin]
    day = tl.days_from_now

    # 青年之家, last week: signed up, checked in on the night, feedback the day after.
    starts = day(-10, 19)
    club = await create(ctx, tl, admin, day(-21, 10), programme="youth", org_id=committee,
                        title="青年读书分享会：《平凡的世界》", location="机关图书室",
                        description="青年党员、团员共读共享，每人准备 5 分钟读书心得。",
                        starts_at=starts, ends_at=starts + timedelta(hours=2), signup_opens_at=day(-20, 9),
                        signup_closes_at=day(-11, 18), capacity=15, waitlist=False)
    await publish(ctx, tl, admin, club, day(-20, 8, 30))
    readers = await sign_up(ctx, tl, org, club, everyone, day(-20, 9, 5), timedelta(hours=7))
    attended = readers[:-2]  # two signed up and did not come (no-shows once it ended)
    for index, person in enumerate(attended):
        tl.go(starts - timedelta(minutes=15) + timedelta(minutes=2 * index))
        token = await activities.qr_token(ctx, admin, club["_id"])
        await activities.check_in(ctx, org.principal(person), club["_id"], token["token"])
    for (rating, comment), person in zip(FEEDBACK, attended, strict=False):
        tl.go(day(-9, 12))
        body = checked(FeedbackIn, {"rating": rating, "comment": comment})
        await activities.give_feedback(ctx, org.principal(person), club["_id"], body["rating"], body["comment"])

    # 文体活动, cancelled: signed up over a week, then the forecast turned.
    walk = await create(ctx, tl, admin, day(-16, 10), programme="culture", org_id=committee,
                        title="机关秋季健步走", location="奥林匹克森林公园南门",
                        description="全程约 8 公里，量力而行。",
                        starts_at=day(1, 8, 30), ends_at=day(1, 11, 30), signup_opens_at=day(-15, 9),
                        signup_closes_at=day(-1, 18), capacity=60, waitlist=False)
    await publish(ctx, tl, admin, walk, day(-15, 8))
    await sign_up(ctx, tl, org, walk, everyone[::4], day(-15, 9, 30), timedelta(hours=11))
    tl.go(day(-3, 17))
    reason = checked(CancelIn, {"reason": "天气预报有大风降温，活动取消"})["reason"]
    await activities.cancel(ctx, admin, walk["_id"], reason)

    # 团结之家, a branch's own: sign-up closed yesterday, the day itself is the day after tomorrow.
    services = org.secretary_of(SERVICES)
    volunteer = await create(ctx, tl, services, day(-7, 15), programme="unity", org_id=org.orgs[SERVICES]["_id"],
                             title="党员志愿服务进社区：义务维修小家电", location="和平里社区服务中心",
                             description="自带工具的同志请提前告知，支部统一安排车辆。",
                             starts_at=day(2, 9), ends_at=day(2, 12), signup_opens_at=day(-6, 9),
                             signup_closes_at=day(-1, 12), capacity=20, waitlist=False)
    await publish(ctx, tl, services, volunteer, day(-6, 8, 30))
    await sign_up(ctx, tl, org, volunteer, org.members_of(SERVICES), day(-6, 9, 20), timedelta(hours=9))

    # 文体活动, full: eight places, twelve sign-ups in two days; one confirmed player drops out.
    match = await create(ctx, tl, admin, day(-3, 10), programme="culture", org_id=committee,
                         title="机关职工羽毛球友谊赛", location="机关活动中心羽毛球馆",
                         description="混合双打，按报名顺序配对；满员后进入候补，有人退出时按顺序递补。",
                         starts_at=day(8, 14), ends_at=day(8, 17), signup_opens_at=day(-2, 9),
                         signup_closes_at=day(5, 18), capacity=8, waitlist=True)
    await publish(ctx, tl, admin, match, day(-2, 8, 30))
    first, every = day(-2, 9, 1), timedelta(hours=3, minutes=7)
    players = await sign_up(ctx, tl, org, match, everyone[1::2][:12], first, every)
    tl.go(first + every * len(players))
    await activities.withdraw(ctx, org.principal(players[2]), match["_id"])

    # 职工之家 and 妇女之家, open for sign-up now.
    talk = await create(ctx, tl, admin, day(-2, 15), programme="workers", org_id=committee,
                        title="职工健康讲座：颈椎与腰椎的日常养护", location="机关礼堂",
                        description="邀请市第一医院康复科医生主讲，现场提供简易体检。",
                        starts_at=day(4, 15), ends_at=day(4, 16, 30), signup_opens_at=day(-1, 9),
                        signup_closes_at=day(3, 18), capacity=40, waitlist=False)
    await publish(ctx, tl, admin, talk, day(-1, 8, 45))
    await sign_up(ctx, tl, org, talk, everyone[::3], day(-1, 9, 10), timedelta(minutes=53))
    flowers = await create(ctx, tl, admin, day(-2, 16), programme="women", org_id=committee,
                           title="妇女之家：插花艺术体验课", location="职工之家活动室",
                           description="花材由工会统一准备，作品可带回家。",
                           starts_at=day(7, 14, 30), ends_at=day(7, 16, 30), signup_opens_at=day(-1, 12),
                           signup_closes_at=day(6, 18), capacity=12, waitlist=True)
    await publish(ctx, tl, admin, flowers, day(-1, 11, 30))
    await sign_up(ctx, tl, org, flowers, everyone[::2], day(-1, 12, 5), timedelta(minutes=41))

    # A branch's draft, not published yet: only its organisers see it.
    finance = org.secretary_of(FINANCE)
    await create(ctx, tl, finance, day(-1, 17), programme="culture", org_id=org.orgs[FINANCE]["_id"],
                 title="财务处乒乓球联谊赛", location="机关活动中心乒乓球室", description="草稿：时间待与工会确认。",
                 starts_at=day(12, 15), ends_at=day(12, 17), signup_opens_at=day(3, 9),
                 signup_closes_at=day(10, 18), capacity=16, waitlist=True)
    tl.back_to_now()
