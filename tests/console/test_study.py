"""The console's 学习 pages in a real browser (console issue item 4): an organiser creates a session,
marks a member by hand, decides a request, reads compliance for a period and exports it; each checked
through the API afterwards. An organiser of branch A never sees branch B's sessions."""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime, timedelta

from playwright.sync_api import expect

from tests.builders import checkin, new_session, parse, qr_token
from tests.console.conftest import staff

SHOTS = "/tmp/c-study-shots"


def _local(moment: datetime) -> str:
    """A moment as the date pickers take it: Asia/Shanghai (the browser's zone in these tests)."""
    return (moment + timedelta(hours=8)).strftime("%Y-%m-%d %H:%M")


def _one_track_scheme(api, org_id: str) -> None:
    """The branch counts one thing only, a monthly 党小组会, so one check-in completes a member's month."""
    api.admin.ok("PUT", f"/orgs/{org_id}/study-scheme", json={"name": "支部学习制度", "tracks": [
        {"key": "group_meeting", "name": "党小组会", "kind": "session", "period": "month", "min_count": 1,
         "min_minutes": 0}]})


def test_an_organiser_creates_a_session_in_the_ui_and_the_api_has_it(api, console):
    branch = api.org("第一支部")
    secretary = staff(api, branch["id"], "张书记")
    api.member(branch["id"], "李明")
    page = console.enter_as(secretary, "/study/sessions")
    expect(page.get_by_role("heading", name="学习安排")).to_be_visible()
    expect(page.get_by_text("暂无学习安排")).to_be_visible()

    page.get_by_role("button", name="新建学习").click()
    dialog = page.get_by_role("dialog", name="新建学习安排")
    dialog.get_by_role("button", name="创建").click()
    expect(dialog.get_by_text("请填写主题")).to_be_visible()  # validated before anything is sent

    starts = api.clock.now().replace(second=0, microsecond=0) + timedelta(days=1)
    dialog.get_by_label("主题").fill("学习党章第一章")
    dialog.get_by_label("学习类型").click(force=True)
    page.get_by_role("option", name="党小组会").click()
    dialog.get_by_placeholder("选择开始时间").fill(_local(starts))
    dialog.get_by_placeholder("选择开始时间").press("Enter")
    dialog.get_by_placeholder("选择结束时间").fill(_local(starts + timedelta(hours=2)))
    dialog.get_by_placeholder("选择结束时间").press("Enter")
    dialog.get_by_text("填写地点").click()
    dialog.get_by_label("地点名称").fill("三楼党员活动室")
    dialog.get_by_label("纬度").fill("39.908722")
    dialog.get_by_label("经度").fill("116.397499")
    dialog.get_by_label("签到半径").fill("150")
    dialog.get_by_text("同时校验定位").click()
    page.screenshot(path=f"{SHOTS}/session-form.png")
    dialog.get_by_role("button", name="创建").click()
    expect(dialog).to_be_hidden()

    row = page.get_by_role("row", name=re.compile("学习党章第一章"))
    expect(row).to_be_visible()
    expect(row.get_by_text("未开始")).to_be_visible()
    page.screenshot(path=f"{SHOTS}/sessions-list.png")

    items = secretary.client.ok("GET", f"/study/sessions?org_id={branch['id']}")["items"]
    assert [s["title"] for s in items] == ["学习党章第一章"]
    made = items[0]
    assert made["track"] == "group_meeting"
    assert parse(made["starts_at"]) == starts and parse(made["ends_at"]) == starts + timedelta(hours=2)
    assert made["location"] == {"name": "三楼党员活动室", "lat": 39.908722, "lng": 116.397499, "radius_m": 150}
    assert made["methods"] == ["qr", "geo"]
    assert made["attendee_count"] == 2  # the secretary and 李明: everyone of the branch

    # the week calendar shows it on its day; editing changes it; cancelling asks for a reason
    page.get_by_text("周历").click()
    if parse(made["starts_at"]).isocalendar()[:2] != api.clock.now().isocalendar()[:2]:
        page.get_by_role("button", name="下一周").click()
    expect(page.get_by_test_id("week-calendar").get_by_text("学习党章第一章")).to_be_visible()
    page.screenshot(path=f"{SHOTS}/sessions-week.png")
    page.get_by_text("列表").click()

    row.get_by_role("button", name="编辑").click()
    dialog = page.get_by_role("dialog", name="编辑学习安排")
    dialog.get_by_label("主题").fill("学习党章第一、二章")
    dialog.get_by_role("button", name="保存").click()
    expect(page.get_by_role("row", name=re.compile("学习党章第一、二章"))).to_be_visible()
    assert secretary.client.ok("GET", f"/study/sessions/{made['id']}")["title"] == "学习党章第一、二章"

    page.get_by_role("row", name=re.compile("学习党章第一、二章")).get_by_role("button", name="取消").click()
    box = page.get_by_role("dialog", name="取消学习安排")
    box.get_by_role("button", name="确认取消").click()
    expect(box.get_by_text("请填写取消原因")).to_be_visible()
    box.get_by_role("textbox").fill("与上级会议冲突，改期")
    box.get_by_role("button", name="确认取消").click()
    expect(page.get_by_role("row", name=re.compile("学习党章第一、二章")).get_by_text("已取消")).to_be_visible()
    cancelled = secretary.client.ok("GET", f"/study/sessions/{made['id']}")
    assert cancelled["status"] == "cancelled" and cancelled["cancel_reason"] == "与上级会议冲突，改期"


def test_a_manual_mark_needs_a_reason_and_is_recorded_as_the_organisers(api, console):
    branch = api.org("第一支部")
    secretary = staff(api, branch["id"], "张书记")
    member = api.member(branch["id"], "李明")
    session = new_session(api, secretary.client, branch["id"], title="十二月党小组会")
    page = console.enter_as(secretary, f"/study/sessions/{session['id']}")
    expect(page.get_by_role("heading", name="十二月党小组会")).to_be_visible()
    expect(page.get_by_test_id("count-absent")).to_contain_text("2")

    page.get_by_role("row", name=re.compile("李明")).get_by_role("button", name="手动标记").click()
    dialog = page.get_by_role("dialog", name="手动标记：李明")
    dialog.get_by_text("已签到", exact=True).click()
    dialog.get_by_role("button", name="确认标记").click()
    expect(dialog.get_by_text("请填写标记原因")).to_be_visible()
    dialog.get_by_label("原因").fill("手机没电，现场核实已参加")
    dialog.get_by_role("button", name="确认标记").click()
    expect(dialog).to_be_hidden()
    expect(page.get_by_test_id("count-present")).to_contain_text("1")
    expect(page.get_by_role("row", name=re.compile("李明")).get_by_text("组织者标记")).to_be_visible()
    page.screenshot(path=f"{SHOTS}/session-roster.png")

    roster = secretary.client.ok("GET", f"/study/sessions/{session['id']}/attendance")
    assert roster["counts"] == {"present": 1, "late": 0, "leave": 0, "absent": 1}
    entry = roster["present"][0]
    assert entry["member_id"] == member.id
    assert entry["source"] == "organiser" and entry["reason"] == "手机没电，现场核实已参加"


def test_an_organiser_approves_a_leave_request_with_a_note(api, console):
    branch = api.org("第一支部")
    secretary = staff(api, branch["id"], "张书记")
    member = api.member(branch["id"], "王芳", gender="female")
    session = new_session(api, secretary.client, branch["id"], title="支部党员大会", start_in=timedelta(days=2))
    request = member.ok("POST", "/study/requests", 201,
                        json={"session_id": session["id"], "kind": "leave", "reason": "出差在外地"})
    page = console.enter_as(secretary, "/study/requests")
    row = page.get_by_role("row", name=re.compile("王芳"))
    expect(row).to_contain_text("支部党员大会")
    expect(row).to_contain_text("出差在外地")
    page.screenshot(path=f"{SHOTS}/requests.png")

    row.get_by_role("button", name="批准").click()
    dialog = page.get_by_role("dialog", name="批准请假申请")
    dialog.get_by_label("审批意见").fill("同意，请会后补看材料")
    dialog.get_by_role("button", name="确认批准").click()
    expect(page.get_by_text("没有待审批的申请")).to_be_visible()
    page.get_by_role("tab", name="已批准").click()
    expect(page.get_by_role("row", name=re.compile("王芳"))).to_contain_text("同意，请会后补看材料")

    decided = secretary.client.ok("GET", f"/study/requests?session_id={session['id']}")["items"]
    assert [(r["id"], r["status"], r["note"]) for r in decided] == [(request["id"], "approved", "同意，请会后补看材料")]
    roster = secretary.client.ok("GET", f"/study/sessions/{session['id']}/attendance")
    assert [e["member_id"] for e in roster["leave"]] == [member.id]


def test_the_request_queue_is_the_selected_orgs_subtree(api, console):
    general = api.org("机关总支", "general_branch")
    a = api.org("第一支部", "branch", general["id"])
    b = api.org("第二支部", "branch", general["id"])
    secretary = staff(api, general["id"], "周书记")
    for org, who, title in ((a, "王芳", "一支部党课"), (b, "赵强", "二支部党课")):
        member = api.member(org["id"], who)  # before the session, so an attendee of it
        session = new_session(api, secretary.client, org["id"], title=title, start_in=timedelta(days=2))
        member.ok("POST", "/study/requests", 201, json={"session_id": session["id"], "kind": "leave", "reason": "出差"})
    page = console.enter_as(secretary, "/study/requests")
    # the general branch: both branches' requests, each with its org
    expect(page.get_by_role("row", name=re.compile("王芳"))).to_contain_text("第一支部")
    expect(page.get_by_role("row", name=re.compile("赵强"))).to_contain_text("第二支部")

    page.get_by_test_id("org-switcher").click()
    page.get_by_role("tree").get_by_text("第二支部").click()
    expect(page.get_by_role("row", name=re.compile("赵强"))).to_contain_text("二支部党课")
    expect(page.get_by_text("王芳")).to_have_count(0)
    in_b = secretary.client.ok("GET", "/study/requests", params={"org_id": b["id"]})["items"]
    assert len(in_b) == 1


def test_compliance_shows_the_chart_and_numbers_for_a_period_and_exports_them(api, console):
    general = api.org("机关总支", "general_branch")
    branch = api.org("第一支部", "branch", general["id"])
    other = api.org("第二支部", "branch", general["id"])
    for org in (general, branch, other):
        _one_track_scheme(api, org["id"])
    secretary = staff(api, general["id"], "总支书记")
    done = api.member(branch["id"], "李明")
    api.member(branch["id"], "王芳", gender="female")
    api.member(other["id"], "赵强")
    session = new_session(api, secretary.client, branch["id"], start_in=timedelta(minutes=10))
    assert checkin(done, session["id"], qr_token(secretary.client, session["id"])).status == 201
    month = api.clock.now().astimezone(datetime.now().astimezone().tzinfo).strftime("%Y-%m")
    expected = secretary.client.ok("GET", f"/orgs/{general['id']}/study/compliance?period={month}")
    by_name = {o["name"]: o for o in expected["orgs"]}
    assert by_name["第一支部"]["complete_members"] == 1

    page = console.enter_as(secretary, "/study/compliance")
    expect(page.get_by_test_id("compliance-chart").locator("canvas")).to_be_visible()
    expect(page.get_by_test_id("org-table").get_by_role("row", name=re.compile("^第一支部"))).to_contain_text(
        f"{round(by_name['第一支部']['rate'] * 100)}%")
    top = next(o for o in expected["orgs"] if o["org_id"] == general["id"])
    expect(page.get_by_test_id("stat-members")).to_contain_text(str(top["members"]))
    expect(page.get_by_test_id("stat-complete")).to_contain_text(str(top["complete_members"]))
    members = page.get_by_test_id("member-table")
    expect(members.get_by_role("row", name=re.compile("李明"))).to_contain_text("已达标")
    expect(members.get_by_role("row", name=re.compile("赵强"))).to_contain_text("未达标")
    page.screenshot(path=f"{SHOTS}/compliance.png", full_page=True)

    # another period: last year has nothing done
    page.get_by_role("combobox", name="统计周期").click(force=True)
    page.get_by_role("option", name="按年").click()
    last_year = str(api.clock.now().year - 1)
    picker = page.get_by_label("统计时间")
    picker.fill(last_year)
    picker.press("Enter")
    expect(page.get_by_text(f"{last_year} 年 应学人数")).to_be_visible()
    expect(page.get_by_test_id("stat-complete")).to_contain_text("0")
    past = secretary.client.ok("GET", f"/orgs/{general['id']}/study/compliance?period={last_year}")
    assert past["orgs"] and all(o["complete_members"] == 0 for o in past["orgs"])

    # back to this year, then the CSV the browser saves is the API's export
    picker.fill(str(api.clock.now().year))
    picker.press("Enter")
    page.get_by_role("button", name="导出").click()
    with page.expect_download() as download_info:
        page.get_by_role("menuitem", name="CSV：学习情况").click()
    download = download_info.value
    assert download.suggested_filename == f"机关总支-学习情况-{api.clock.now().year}.csv"
    text = open(download.path(), encoding="utf-8-sig").read()
    rows = list(csv.reader(io.StringIO(text)))
    assert any("李明" in r for r in rows) and any("赵强" in r for r in rows)


def test_an_organiser_of_branch_a_never_sees_branch_b_sessions(api, console):
    a = api.org("第一支部")
    b = api.org("第二支部")
    secretary_a = staff(api, a["id"], "张书记")
    secretary_b = staff(api, b["id"], "李书记")
    new_session(api, secretary_a.client, a["id"], title="一支部党课")
    theirs = new_session(api, secretary_b.client, b["id"], title="二支部党课")
    page = console.enter_as(secretary_a, "/study/sessions")
    expect(page.get_by_role("row", name=re.compile("一支部党课"))).to_be_visible()
    expect(page.get_by_text("二支部党课")).to_have_count(0)
    # the date filter asks the API for that range only: last January has nothing
    january = f"{api.clock.now().year - 1}-01"
    page.get_by_placeholder("开始日期").fill(f"{january}-01")
    page.get_by_placeholder("结束日期").fill(f"{january}-31")
    page.get_by_placeholder("结束日期").press("Enter")
    expect(page.get_by_text("暂无学习安排")).to_be_visible()
    expect(page.get_by_text("一支部党课")).to_have_count(0)
    page.get_by_text("周历").click()
    expect(page.get_by_test_id("week-calendar").get_by_text("一支部党课")).to_be_visible()
    expect(page.get_by_text("二支部党课")).to_have_count(0)

    console.expect_http_errors(404)
    page.goto(console.url(f"/study/sessions/{theirs['id']}"))
    expect(page.get_by_text("未找到该学习安排")).to_be_visible()
    expect(page.get_by_text("二支部党课")).to_have_count(0)
    assert secretary_a.client.get(f"/study/sessions/{theirs['id']}").status == 404
    assert all(s["org_id"] == a["id"] for s in secretary_a.client.ok("GET", "/study/sessions")["items"])


def test_an_admin_sets_the_orgs_own_scheme_and_resets_it_to_inherited(api, console):
    general = api.org("机关总支", "general_branch")
    branch = api.org("第一支部", "branch", general["id"])
    admin = staff(api, general["id"], "王管理", roles=[{"role": "admin", "org_id": general["id"]}])
    page = console.enter_as(admin, "/study/scheme")
    expect(page.get_by_test_id("scheme-origin")).to_have_text(re.compile("系统默认"))

    page.get_by_role("button", name="为本组织自定制度").click()
    page.get_by_label("制度名称").fill("机关总支学习制度")
    page.get_by_role("button", name="添加项目").click()
    page.get_by_label("项目名称").last.fill("专题研讨")
    page.get_by_label("项目标识").last.fill("Bad Key")
    page.get_by_role("button", name="保存为本组织制度").click()
    expect(page.get_by_text("小写字母、数字或下划线")).to_be_visible()
    page.get_by_label("项目标识").last.fill("seminar")
    page.get_by_role("button", name="保存为本组织制度").click()
    expect(page.get_by_test_id("scheme-origin")).to_have_text("本组织自定")
    expect(page.get_by_role("row", name=re.compile("专题研讨"))).to_be_visible()
    page.screenshot(path=f"{SHOTS}/scheme.png")

    inherited = admin.client.ok("GET", f"/orgs/{branch['id']}/study-scheme")
    assert inherited["name"] == "机关总支学习制度" and inherited["inherited_from"] == general["id"]
    assert inherited["tracks"][-1] == {"key": "seminar", "name": "专题研讨", "kind": "session", "period": "month",
                                       "min_count": 1, "min_minutes": 0}

    page.get_by_role("button", name="恢复继承").click()
    page.get_by_role("dialog", name="恢复继承").get_by_role("button", name="恢复继承").click()
    expect(page.get_by_test_id("scheme-origin")).to_have_text(re.compile("系统默认"))
    assert admin.client.ok("GET", f"/orgs/{branch['id']}/study-scheme")["is_default"] is True

    # an organiser who is not an admin reads the scheme but is offered no change. Signed out and in
    # through the forms: enter_as over a running session races the old page's own token writes.
    secretary = staff(api, branch["id"], "张书记")
    page.get_by_test_id("user-menu").click()
    page.get_by_role("menuitem", name="退出登录").click()
    expect(page).to_have_url(re.compile("/console/login"))
    page = console.sign_in(secretary)
    page.goto(console.url("/study/scheme"))
    expect(page.get_by_test_id("scheme-origin")).to_be_visible()
    expect(page.get_by_text("学习制度由管理员设定")).to_be_visible()
    expect(page.get_by_role("button", name="为本组织自定制度")).to_have_count(0)
