"""The demo's announcements: a pinned must-read from the committee that most have read and some have
acknowledged, one scheduled for the day after tomorrow, one that expired last week, and a branch notice.
Reads and acknowledgements are the members' own calls (server.announcements.mark_read / acknowledge)."""

from __future__ import annotations

from datetime import datetime

from schemas.announcements import AnnouncementCreate
from server import announcements
from server.context import Context
from server.demo.checked import checked
from server.demo.org import COMMITTEE, FINANCE, Organisation
from server.demo.timeline import Timeline
from server.scope import Principal

APPRAISAL = """各党支部：
根据机关党委年度工作安排，现就开展年度党员民主评议工作通知如下：
一、评议范围：机关各党支部全体正式党员和预备党员。
二、时间安排：本月下旬前完成个人自评、党员互评和民主测评，支部汇总后报机关党委。
三、有关要求：各支部要把民主评议与组织生活会结合起来，认真开展批评和自我批评，评议结果及时反馈本人。
请各位党员阅读后点击“确认已阅”。"""
HOLIDAY = """各党支部、全体党员：
节日将至，为进一步严明纪律、弘扬新风，现就节日期间廉洁自律提醒如下：严禁违规收送礼品礼金，严禁公款吃喝和
违规发放津贴补贴，严禁公车私用。请各支部在节前召开一次专题提醒会。"""
SPORTS = """机关秋季运动会定于下月上旬举行，设田径、趣味接力、拔河等项目。请各支部组织党员职工踊跃报名，
报名表于本周五前交机关党委办公室。"""
FINANCE_NOTE = """本月主题党日安排：周三下午集中学习财经纪律有关规定，周五上午开展“党员先锋岗”服务窗口值守。
请大家提前安排好工作。"""


async def publish(ctx: Context, tl: Timeline, organiser: Principal, at: datetime, **fields) -> dict:
    tl.go(at)
    return await announcements.create(ctx, organiser, checked(AnnouncementCreate, fields))


async def build(ctx: Context, tl: Timeline, org: Organisation) -> None:
    admin = org.principal(org.admin)
    committee = org.orgs[COMMITTEE]["_id"]
    day = tl.days_from_now
    await publish(ctx, tl, admin, day(-25, 9), org_id=committee, title="关于报名参加机关秋季运动会的通知",
                  body=SPORTS, expires_at=day(-5, 18))
    appraisal = await publish(ctx, tl, admin, day(-3, 9), org_id=committee, pinned=True, must_read=True,
                              title="关于开展年度党员民主评议工作的通知", body=APPRAISAL)
    await publish(ctx, tl, admin, day(-1, 16), org_id=committee, title="关于做好节日期间廉洁自律工作的提醒",
                  body=HOLIDAY, publish_at=day(2, 9))
    finance = await publish(ctx, tl, org.secretary_of(FINANCE), day(-1, 10), org_id=org.orgs[FINANCE]["_id"],
                            title="财务处党支部本月主题党日安排", body=FINANCE_NOTE)

    readers = [p for p in org.everyone() if p != org.admin]
    tl.back_to_now()
    for index, person in enumerate(readers):  # about two in three read it, one in three acknowledged
        if index % 3 == 2:
            continue
        if index % 3 == 0:
            await announcements.acknowledge(ctx, org.principal(person), appraisal["_id"])
        else:
            await announcements.mark_read(ctx, org.principal(person), appraisal["_id"])
    for person in org.members_of(FINANCE)[:4]:
        await announcements.mark_read(ctx, org.principal(person), finance["_id"])
