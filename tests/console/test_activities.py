"""群心驿站活动 in a real browser (console issue item 6): an organiser creates and publishes an activity in
the console, members sign up through the API and the roster shows them, a capacity change names who was
promoted from the waitlist, the roster exports, and cancelling asks for confirmation and a reason; the
programmes page shows eligibility; an organiser of one branch never sees another branch's activities."""

from __future__ import annotations

import os
import re
from datetime import timedelta
from zoneinfo import ZoneInfo

from playwright.sync_api import Page, expect

from tests.builders import activity_body, activity_checkin, advance, png, published
from tests.console.conftest import staff

SHANGHAI = ZoneInfo("Asia/Shanghai")
SHOTS = os.environ.get("BRANCHLINE_SHOTS")  # a directory: save a screenshot of each page there


def shot(page: Page, name: str) -> None:
    if SHOTS:
        page.screenshot(path=os.path.join(SHOTS, f"{name}.png"), full_page=True)


def local(api, **delta: float) -> str:
    """A moment from the server's now, as the console's date pickers take it (Shanghai time)."""
    return (api.clock.now() + timedelta(**delta)).astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")


def pick_time(page: Page, placeholder: str, value: str) -> None:
    field = page.get_by_placeholder(placeholder, exact=True)
    field.fill(value)
    field.press("Enter")
    page.keyboard.press("Escape")


def choose(page: Page, form_label: str, option: str) -> None:
    page.locator(".el-form-item", has=page.get_by_text(form_label, exact=True)).locator(".el-select").click()
    page.get_by_role("option", name=option, exact=True).click()


def test_create_publish_sign_up_promote_export_and_cancel(api, console, tmp_path):
    branch = api.org("第一支部")
    secretary = staff(api, branch["id"], "张书记")
    first = api.member(branch["id"], "李明")
    second = api.member(branch["id"], "王芳", gender="female")

    page = console.enter_as(secretary, "/activities")
    expect(page.get_by_text("暂无活动")).to_be_visible()
    page.get_by_role("button", name="新建活动").click()
    expect(page).to_have_url(console.url("/activities/new"))

    choose(page, "活动项目", "团结之家")
    page.get_by_label("活动名称").fill("重阳节敬老志愿服务")
    page.get_by_label("活动简介").fill("到社区养老院陪老人聊天、包饺子。")
    page.get_by_label("活动地点").fill("幸福里养老院")
    cover = tmp_path / "封面.png"
    cover.write_bytes(png(7))
    page.locator(".el-upload input[type=file]").set_input_files(str(cover))
    expect(page.get_by_role("img", name="封面")).to_be_visible()
    pick_time(page, "开始时间", local(api, days=3))
    pick_time(page, "结束时间", local(api, days=3, hours=3))
    pick_time(page, "报名开始时间", local(api, hours=-1))
    pick_time(page, "报名截止时间", local(api, days=2))
    page.locator(".el-form-item", has=page.get_by_text("名额", exact=True)).locator("input").fill("1")
    shot(page, "activity-form")
    page.get_by_role("button", name="创建活动").click()

    expect(page).to_have_url(re.compile(r"/console/activities/(?!new$)[^/]+$"))
    activity_id = page.url.rsplit("/", 1)[1]
    expect(page.get_by_text("草稿", exact=True)).to_be_visible()
    page.get_by_role("button", name="发布", exact=True).click()
    page.get_by_role("dialog").get_by_role("button", name="发布").click()
    expect(page.locator(".el-page-header").get_by_text("已发布", exact=True)).to_be_visible()
    projector = page.get_by_role("link", name="投影签到")
    expect(projector).to_have_attribute("href", f"/console/projector/activity/{activity_id}")
    expect(projector).to_have_attribute("target", "_blank")

    act = secretary.client.ok("GET", f"/activities/{activity_id}")
    assert (act["status"], act["title"], act["capacity"], act["waitlist"], act["location"]) == (
        "published", "重阳节敬老志愿服务", 1, True, "幸福里养老院")
    assert act["programme"] == "unity" and act["org_id"] == branch["id"]
    assert secretary.client.get(f"/files/{act['cover_file_id']}").raw.content == png(7)
    assert first.get(f"/files/{act['cover_file_id']}").status == 200  # members who see it see its cover

    # members sign up in the mini-program: one place, so the second waits
    assert first.ok("POST", f"/activities/{activity_id}/signups", 201)["status"] == "confirmed"
    assert second.ok("POST", f"/activities/{activity_id}/signups", 201) == {"status": "waitlisted", "position": 1}

    page.get_by_role("button", name="刷新").click()
    expect(page.get_by_test_id("roster-confirmed").get_by_text("李明")).to_be_visible()
    page.get_by_role("tab", name=re.compile("候补（1）")).click()
    expect(page.get_by_test_id("roster-waitlisted").get_by_text("王芳")).to_be_visible()
    shot(page, "activity-detail")

    with page.expect_download() as download:
        page.get_by_role("button", name="导出名单").click()
        page.get_by_role("menuitem", name=re.compile("Excel")).click()
    assert download.value.suggested_filename == "重阳节敬老志愿服务-报名名单.xlsx"
    assert open(download.value.path(), "rb").read(2) == b"PK"  # a real xlsx (a zip), not an error page

    # one more place: the waitlisted member is promoted, and the page says who
    page.get_by_role("button", name="调整名额").click()
    dialog = page.get_by_role("dialog", name="调整名额")
    dialog.get_by_label("新名额").fill("2")
    dialog.get_by_role("button", name="保存").click()
    told = page.get_by_role("dialog", name="候补递补")
    expect(told).to_contain_text("王芳")
    expect(told).not_to_contain_text("李明")
    shot(page, "activity-promoted")
    told.get_by_role("button", name="知道了").click()
    expect(page.get_by_test_id("capacity")).to_have_text("已确认 2 / 2")
    roster = secretary.client.ok("GET", f"/activities/{activity_id}/signups")
    assert sorted(e["name"] for e in roster["confirmed"]) == ["李明", "王芳"] and roster["waitlisted"] == []

    # fewer places than confirmed members is refused, on the field
    console.expect_http_errors(409)
    page.get_by_role("button", name="调整名额").click()
    dialog.get_by_label("新名额").fill("1")
    dialog.get_by_role("button", name="保存").click()
    expect(dialog.get_by_text("名额不能少于已确认报名的人数。")).to_be_visible()
    dialog.get_by_role("button", name="取消").click()
    assert secretary.client.ok("GET", f"/activities/{activity_id}")["capacity"] == 2

    # cancelling needs a confirmation with a reason
    page.get_by_role("button", name="取消活动").click()
    confirm = page.get_by_role("dialog", name="取消活动")
    expect(confirm).to_contain_text("2 名成员会收到通知")
    confirm.get_by_role("button", name="确认取消活动").click()
    expect(confirm.get_by_text("请填写取消原因")).to_be_visible()
    shot(page, "activity-cancel")
    assert secretary.client.ok("GET", f"/activities/{activity_id}")["status"] == "published"
    confirm.get_by_label("取消原因").fill("养老院临时封闭管理，活动取消")
    confirm.get_by_role("button", name="确认取消活动").click()
    expect(page.locator(".el-page-header").get_by_text("已取消", exact=True)).to_be_visible()
    assert secretary.client.ok("GET", f"/activities/{activity_id}")["status"] == "cancelled"
    assert first.ok("GET", f"/activities/{activity_id}")["status"] == "cancelled"


def test_programmes_show_eligibility_and_activities_list_by_programme(api, console):
    branch = api.org("第一支部")
    secretary = staff(api, branch["id"], "张书记")
    published(api, secretary.client, branch["id"], programme="youth", title="青年读书会")
    published(api, secretary.client, branch["id"], programme="women", title="三八节插花")

    page = console.enter_as(secretary, "/activities/programmes")
    table = page.get_by_test_id("programmes")
    expect(table.get_by_role("row", name=re.compile("青年之家"))).to_contain_text("年龄 ≤ 35 岁")
    expect(table.get_by_role("row", name=re.compile("妇女之家"))).to_contain_text("性别：女")
    expect(page.get_by_role("button", name="编辑")).to_have_count(0)  # organisers read; admins edit
    shot(page, "programmes")

    page.get_by_role("button", name="活动列表").click()
    listed = page.get_by_test_id("activities")
    expect(listed.get_by_text("青年读书会")).to_be_visible()
    expect(listed.get_by_text("三八节插花")).to_be_visible()
    shot(page, "activities")
    choose(page, "项目", "妇女之家")
    expect(listed.get_by_text("三八节插花")).to_be_visible()
    expect(listed.get_by_text("青年读书会")).to_have_count(0)
    page.locator(".el-radio-button", has_text="已取消").click()
    expect(page.get_by_text("暂无活动")).to_be_visible()


def test_an_admin_edits_a_programmes_eligibility(api, console):
    admin = staff(api, api.root_org_id, "王管理员", role="admin")
    page = console.enter_as(admin, "/activities/programmes")
    page.get_by_test_id("programmes").get_by_role("row", name=re.compile("青年之家")).get_by_role(
        "button", name="编辑").click()
    dialog = page.get_by_role("dialog", name=re.compile("编辑项目"))
    dialog.locator(".el-form-item", has=page.get_by_text("最大年龄", exact=True)).locator("input").fill("40")
    dialog.get_by_text("正式党员", exact=True).click()
    shot(page, "programme-dialog")
    dialog.get_by_role("button", name="保存").click()
    expect(dialog).to_be_hidden()
    row = page.get_by_test_id("programmes").get_by_role("row", name=re.compile("青年之家"))
    expect(row).to_contain_text("年龄 ≤ 40 岁；政治面貌：正式党员")
    youth = next(p for p in admin.client.ok("GET", "/programmes")["items"] if p["key"] == "youth")
    assert youth["rules"]["max_age"] == 40 and youth["rules"]["party_status"] == ["full"]


def test_an_organiser_of_one_branch_never_sees_another_branchs_activities(api, console):
    a = api.org("第一支部")
    b = api.org("第二支部")
    secretary_a = staff(api, a["id"], "张书记")
    secretary_b = staff(api, b["id"], "李书记")
    mine = published(api, secretary_a.client, a["id"], title="一支部观影")
    theirs = published(api, secretary_b.client, b["id"], title="二支部徒步")

    page = console.enter_as(secretary_a, "/activities")
    expect(page.get_by_test_id("activities").get_by_text("一支部观影")).to_be_visible()
    expect(page.get_by_text("二支部徒步")).to_have_count(0)
    page.locator(".el-form-item", has=page.get_by_text("组织", exact=True)).locator(".el-select").click()
    expect(page.get_by_role("option")).to_have_text(["第一支部"])
    page.keyboard.press("Escape")

    console.expect_http_errors(404)
    page.goto(console.url(f"/activities/{theirs['id']}"))
    expect(page.get_by_text("内容不存在")).to_be_visible()
    expect(page.get_by_text("二支部徒步")).to_have_count(0)
    # the API agrees: B's activity does not exist for A's organiser, A's does
    assert secretary_a.client.get(f"/activities/{theirs['id']}").status == 404
    assert secretary_a.client.ok("GET", f"/activities/{mine['id']}")["title"] == "一支部观影"


def test_the_feedback_summary_shows_the_average_and_the_comments(api, console):
    branch = api.org("第一支部")
    secretary = staff(api, branch["id"], "张书记")
    members = [api.member(branch["id"], f"党员{i}") for i in range(3)]
    path = f"/activities/{published(api, secretary.client, branch['id'], title='红色观影')['id']}"
    for m in members:
        m.ok("POST", path + "/signups", 201)
    advance(api, secretary.client, *members, days=2)  # the activity has started: they check in, then rate it
    for m, rating, comment in zip(members, [5, 4, 3], ["很受教育", "", "时间有点长"], strict=True):
        activity_checkin(secretary.client, m, path)
        m.ok("POST", path + "/feedback", 201, json={"rating": rating, "comment": comment})

    page = console.enter_as(secretary, path)
    page.get_by_role("tab", name="活动评价").click()
    expect(page.get_by_test_id("feedback-average")).to_contain_text("4.0")
    expect(page.get_by_test_id("feedback-average")).to_contain_text("3 人评价")
    expect(page.get_by_text("很受教育")).to_be_visible()
    expect(page.get_by_text("时间有点长")).to_be_visible()
    shot(page, "activity-feedback")
    summary = secretary.client.ok("GET", path + "/feedback")
    assert (summary["count"], summary["average"]) == (3, 4.0)
    # the roster shows who came
    page.get_by_role("tab", name="报名名单").click()
    expect(page.get_by_test_id("roster-confirmed").get_by_text("已签到")).to_have_count(3)


def test_editing_an_activity_changes_only_what_was_changed_and_names_the_promoted(api, console):
    branch = api.org("第一支部")
    secretary = staff(api, branch["id"], "张书记")
    members = [api.member(branch["id"], name) for name in ("李明", "王芳", "赵强")]
    act = published(api, secretary.client, branch["id"], title="周末徒步", capacity=1, waitlist=True)
    for m in members:
        m.ok("POST", f"/activities/{act['id']}/signups", 201)

    page = console.enter_as(secretary, "/activities?status=published")
    expect(page.locator(".el-radio-button.is-active")).to_have_text("已发布")  # a link's filter is applied
    page.get_by_test_id("activities").get_by_role("row", name=re.compile("周末徒步")).get_by_role(
        "button", name="编辑").click()
    expect(page.get_by_label("活动名称")).to_have_value("周末徒步")
    expect(page.get_by_text("已确认 1 人，候补 2 人")).to_be_visible()
    page.get_by_label("活动名称").fill("周末徒步（香山）")
    page.locator(".el-form-item", has=page.get_by_text("名额", exact=True)).locator("input").fill("2")
    page.get_by_role("button", name="保存", exact=True).click()
    told = page.get_by_role("dialog", name="候补递补")
    expect(told).to_contain_text("王芳")
    expect(told).not_to_contain_text("赵强")
    told.get_by_role("button", name="知道了").click()
    expect(page.locator(".el-page-header")).to_contain_text("周末徒步（香山）")

    after = secretary.client.ok("GET", f"/activities/{act['id']}")
    assert (after["title"], after["capacity"], after["confirmed_count"], after["waitlist_count"]) == (
        "周末徒步（香山）", 2, 2, 1)
    assert after["starts_at"] == act["starts_at"] and after["description"] == act["description"]


def test_the_list_pages_through_many_activities(api, console):
    branch = api.org("第一支部")
    secretary = staff(api, branch["id"], "张书记")
    for i in range(23):
        secretary.client.ok("POST", "/activities", 201, json=activity_body(api, branch["id"], title=f"活动{i:02d}"))

    page = console.enter_as(secretary, "/activities")
    rows = page.get_by_test_id("activities").locator(".el-table__body-wrapper tr")
    expect(rows).to_have_count(20)
    expect(page.get_by_role("button", name="上一页")).to_be_disabled()
    first_page = rows.all_inner_texts()
    page.get_by_role("button", name="下一页").click()
    expect(page.get_by_text("第 2 页")).to_be_visible()
    expect(rows).to_have_count(3)
    expect(page.get_by_role("button", name="下一页")).to_be_disabled()
    seen = {t.split("\t")[0].strip() for t in first_page + rows.all_inner_texts()}
    assert seen == {f"活动{i:02d}" for i in range(23)}  # every one once, none twice
    page.get_by_role("button", name="上一页").click()
    expect(rows).to_have_count(20)
    assert rows.all_inner_texts() == first_page
