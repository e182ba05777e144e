"""公告 in a real browser (console issue item 7): an organiser composes a scheduled must-read announcement
with an attachment in the console; once the server's clock passes its publication it is live for members,
one reads and acknowledges it through the API, and the receipts count the ack and list who has not read
it; editing makes a new version; retracting asks first; the list shows each announcement under its state
and pages; an organiser of one branch never sees another's."""

from __future__ import annotations

import os
import re
from datetime import timedelta
from zoneinfo import ZoneInfo

from playwright.sync_api import Page, expect

from tests.builders import PDF, advance, iso, parse, publish, remember, wait_until, whole_feed
from tests.console.conftest import staff

SHANGHAI = ZoneInfo("Asia/Shanghai")
SHOTS = os.environ.get("BRANCHLINE_SHOTS")


def shot(page: Page, name: str) -> None:
    if SHOTS:
        page.screenshot(path=os.path.join(SHOTS, f"{name}.png"))


def listed_titles(page: Page):
    """The titles in the list's table, top to bottom."""
    return page.get_by_test_id("announcements").get_by_test_id("title")


def row_of(page: Page, title: str):
    return page.get_by_test_id("announcements").get_by_role("row", name=re.compile(re.escape(title)))


def test_scheduled_must_read_goes_live_and_receipts_count_the_ack(api, console, tmp_path):
    branch = api.org("第一支部")
    secretary = staff(api, branch["id"], "张书记")
    reader = api.member(branch["id"], "李明")
    idle = api.member(branch["id"], "王芳", gender="female")
    remember(api, secretary.client, reader, idle)
    minutes = 10
    publish_at = (api.clock.now() + timedelta(minutes=minutes)).astimezone(SHANGHAI).replace(second=0, microsecond=0)
    attachment = tmp_path / "学习材料.pdf"
    attachment.write_bytes(PDF)

    page = console.enter_as(secretary, "/announcements")
    expect(page.get_by_test_id("announcements").get_by_text("暂无公告")).to_be_visible()
    page.get_by_role("button", name="发布公告").click()
    expect(page).to_have_url(console.url("/announcements/new"))
    page.get_by_label("标题").fill("关于开展主题党日活动的通知")
    page.get_by_label("正文").fill("各位党员：\n本月主题党日定于周五下午举行，请准时参加。")
    page.get_by_text("必读（成员须确认已阅）").click()
    page.get_by_text("定时发布", exact=True).click()
    picker = page.get_by_placeholder("选择发布时间")
    picker.fill(publish_at.strftime("%Y-%m-%d %H:%M"))
    picker.press("Enter")
    page.keyboard.press("Escape")
    page.locator(".el-upload input[type=file]").set_input_files(str(attachment))
    expect(page.get_by_test_id("attachments")).to_contain_text("学习材料.pdf")
    shot(page, "announcement-form")
    page.get_by_role("button", name="定时发布", exact=True).click()

    expect(page).to_have_url(re.compile(r"/console/announcements/(?!new$)[^/]+$"))
    announcement_id = page.url.rsplit("/", 1)[1]
    expect(page.get_by_test_id("state")).to_have_text("待发布")
    expect(page.get_by_text("公告尚未到发布时间")).to_be_visible()

    stored = secretary.client.ok("GET", f"/announcements/{announcement_id}")
    assert (stored["title"], stored["must_read"], stored["pinned"]) == ("关于开展主题党日活动的通知", True, False)
    assert parse(stored["publish_at"]) == publish_at and len(stored["file_ids"]) == 1
    assert secretary.client.get(f"/files/{stored['file_ids'][0]}").raw.content == PDF
    assert reader.post(f"/announcements/{announcement_id}/ack").status == 404  # not on air yet
    page.get_by_role("button", name="返回").click()  # the list shows it, scheduled
    expect(listed_titles(page)).to_have_text(["关于开展主题党日活动的通知"])
    expect(row_of(page, "关于开展主题党日活动的通知")).to_contain_text("待发布")
    expect(row_of(page, "关于开展主题党日活动的通知")).to_contain_text("必读")
    page.get_by_test_id("title").click()
    expect(page).to_have_url(console.url(f"/announcements/{announcement_id}"))

    # the server's time passes the publication: the feed's scheduler puts it in members' feeds
    advance(api, minutes=minutes + 1)
    item = f"announcement:{announcement_id}"
    assert wait_until(lambda: item in whole_feed(reader), timeout=10)
    reader.ok("POST", f"/announcements/{announcement_id}/read", 204)
    reader.ok("POST", f"/announcements/{announcement_id}/ack", 204)

    page.clock.set_system_time(api.clock.now())  # the browser's "now" follows the server's moved clock
    page.reload()
    expect(page.get_by_test_id("state")).to_have_text("已发布")
    expect(page.get_by_test_id("audience")).to_contain_text("3")  # the secretary is a member of the branch too
    expect(page.get_by_test_id("read-count")).to_contain_text("1")
    expect(page.get_by_test_id("acked-count")).to_contain_text("1")
    unread = page.get_by_test_id("unread-members")
    expect(unread.get_by_text("王芳")).to_be_visible()
    expect(unread.get_by_text("张书记")).to_be_visible()
    expect(unread.get_by_text("李明")).to_have_count(0)
    shot(page, "announcement-receipts")
    receipts = secretary.client.ok("GET", f"/announcements/{announcement_id}/receipts")
    assert (receipts["audience"], receipts["read"], receipts["acked"]) == (3, 1, 1)
    assert sorted(m["name"] for m in receipts["unread_members"]) == ["张书记", "王芳"]


def test_edit_makes_a_new_version_and_retract_asks_first(api, console):
    branch = api.org("第一支部")
    secretary = staff(api, branch["id"], "张书记")
    member = api.member(branch["id"], "李明")
    announcement_id = publish(api, secretary.client, branch["id"], "支部大会通知")

    page = console.enter_as(secretary, f"/announcements/{announcement_id}")
    expect(page.get_by_test_id("state")).to_have_text("已发布")
    page.get_by_role("button", name="编辑").click()
    expect(page.get_by_label("标题")).to_have_value("支部大会通知")
    page.get_by_label("标题").fill("支部大会通知（改期）")
    page.get_by_text("置顶", exact=True).click()
    page.get_by_role("button", name="保存").click()
    expect(page.locator(".el-page-header")).to_contain_text("支部大会通知（改期）")
    expect(page.get_by_text("第 2 版")).to_be_visible()
    edited = member.ok("GET", f"/announcements/{announcement_id}")
    assert (edited["title"], edited["pinned"], edited["version"]) == ("支部大会通知（改期）", True, 2)

    retract = page.locator(".el-page-header").get_by_role("button", name="撤回")
    retract.click()
    confirm = page.get_by_role("dialog", name="撤回公告")
    confirm.get_by_role("button", name="取消").click()
    expect(confirm).to_be_hidden()
    assert member.get(f"/announcements/{announcement_id}").status == 200  # a second thought keeps it
    retract.click()
    confirm.get_by_role("button", name="撤回").click()
    expect(page.get_by_text("公告已撤回", exact=True)).to_be_visible()
    assert member.get(f"/announcements/{announcement_id}").status == 404
    assert f"announcement:{announcement_id}" not in whole_feed(member)

    # the list shows the edit and the retraction: listed as retracted, without a link to a page that is gone
    page.get_by_role("button", name="返回公告列表").click()
    expect(page).to_have_url(console.url("/announcements"))
    row = row_of(page, "支部大会通知（改期）")
    expect(row).to_contain_text("已撤回")
    expect(row).to_contain_text("第 2 版")
    expect(row).to_contain_text("置顶")
    expect(row.get_by_role("link")).to_have_count(0)
    expect(row.get_by_role("button", name="编辑")).to_have_count(0)


def test_the_list_shows_each_announcement_under_its_state(api, console):
    branch = api.org("第一支部")
    secretary = staff(api, branch["id"], "张书记")
    organiser = secretary.client
    now = api.clock.now()
    live = publish(api, organiser, branch["id"], "正在发布的通知")
    scheduled = publish(api, organiser, branch["id"], "定时发布的通知", must_read=True,
                        publish_at=iso(now + timedelta(hours=2)))
    expiring = publish(api, organiser, branch["id"], "即将过期的通知", pinned=True,
                       expires_at=iso(now + timedelta(minutes=10)))
    retracted = publish(api, organiser, branch["id"], "撤回的通知")
    organiser.ok("DELETE", f"/announcements/{retracted}", 204)
    advance(api, organiser, minutes=11)  # the server's clock passes the expiry

    page = console.enter_as(secretary, "/announcements")
    expect(page.get_by_role("tab", name="全部")).to_have_attribute("aria-selected", "true")
    expect(listed_titles(page)).to_have_text(["撤回的通知", "即将过期的通知", "定时发布的通知", "正在发布的通知"])
    expect(row_of(page, "即将过期的通知")).to_contain_text("置顶")
    expect(row_of(page, "定时发布的通知")).to_contain_text("必读")
    expect(row_of(page, "正在发布的通知")).to_contain_text("长期有效")
    shot(page, "announcement-list")
    for tab, title in [("待发布", "定时发布的通知"), ("已过期", "即将过期的通知"), ("已撤回", "撤回的通知"),
                       ("已发布", "正在发布的通知")]:
        page.get_by_role("tab", name=tab).click()
        expect(listed_titles(page)).to_have_text([title])
        expect(row_of(page, title)).to_contain_text(tab)
    listed = organiser.ok("GET", f"/announcements?org_id={branch['id']}")["items"]
    assert {i["status"]: i["id"] for i in listed} == {"live": live, "scheduled": scheduled, "expired": expiring,
                                                       "retracted": retracted}

    page.get_by_role("link", name="正在发布的通知").click()  # the 已发布 tab is still open
    expect(page).to_have_url(console.url(f"/announcements/{live}"))
    expect(page.get_by_test_id("state")).to_have_text("已发布")
    page.goto(console.url("/announcements?status=retracted"))  # a link may open a tab
    expect(page.get_by_role("tab", name="已撤回")).to_have_attribute("aria-selected", "true")
    expect(listed_titles(page)).to_have_text(["撤回的通知"])
    page.get_by_role("tab", name="已过期").click()
    expect(row_of(page, "即将过期的通知").get_by_role("link")).to_have_count(1)


def test_the_list_pages_through_many_announcements(api, console):
    branch = api.org("第一支部")
    secretary = staff(api, branch["id"], "张书记")
    for i in range(23):
        publish(api, secretary.client, branch["id"], f"通知{i:02d}")

    page = console.enter_as(secretary, "/announcements")
    titles = listed_titles(page)
    expect(titles).to_have_count(20)
    expect(titles.first).to_have_text("通知22")  # newest first
    expect(page.get_by_role("button", name="上一页")).to_be_disabled()
    first_page = titles.all_inner_texts()
    page.get_by_role("button", name="下一页").click()
    expect(page.get_by_text("第 2 页")).to_be_visible()
    expect(titles).to_have_text(["通知02", "通知01", "通知00"])
    expect(page.get_by_role("button", name="下一页")).to_be_disabled()
    assert first_page == [f"通知{i:02d}" for i in range(22, 2, -1)]  # every one once, none twice
    page.get_by_role("button", name="上一页").click()
    expect(titles).to_have_count(20)
    assert titles.all_inner_texts() == first_page


def test_an_organiser_of_one_branch_never_sees_another_branchs_announcements(api, console):
    general = api.org("机关总支", "general_branch")
    a = api.org("第一支部", "branch", general["id"])
    b = api.org("第二支部", "branch", general["id"])
    secretary_a = staff(api, a["id"], "张书记")
    secretary_b = staff(api, b["id"], "李书记")
    ours = publish(api, secretary_a.client, a["id"], "一支部学习通知")
    theirs = publish(api, secretary_b.client, b["id"], "二支部内部通知")
    theirs_scheduled = publish(api, secretary_b.client, b["id"], "二支部定时通知",
                               publish_at=iso(api.clock.now() + timedelta(hours=1)))
    publish(api, api.organiser(general["id"], "王总支"), general["id"], "总支全体通知")  # above A: not A's to manage

    page = console.enter_as(secretary_a, "/announcements")
    expect(listed_titles(page)).to_have_text(["一支部学习通知"])
    for tab in ["待发布", "已发布", "已过期", "已撤回"]:
        page.get_by_role("tab", name=tab).click()
        expect(page.get_by_test_id("announcements").get_by_text("二支部")).to_have_count(0)
    expect(page.get_by_text("二支部定时通知")).to_have_count(0)
    page.locator(".el-form-item", has=page.get_by_text("发布范围", exact=True)).locator(".el-select").click()
    expect(page.get_by_role("option")).to_have_text(["第一支部"])
    page.keyboard.press("Escape")
    assert [i["id"] for i in secretary_a.client.ok("GET", "/announcements")["items"]] == [ours]
    assert {i["id"] for i in secretary_b.client.ok("GET", "/announcements")["items"]} == {theirs, theirs_scheduled}

    console.expect_http_errors(404)
    page.goto(console.url(f"/announcements/{theirs}"))
    expect(page.get_by_text("内容不存在")).to_be_visible()
    expect(page.get_by_text("二支部内部通知")).to_have_count(0)
    assert secretary_a.client.get(f"/announcements/{theirs}").status == 404
    assert secretary_a.client.get(f"/announcements/{theirs}/receipts").status == 404

    # composing offers only A's subtree as the audience
    page.goto(console.url("/announcements/new"))
    page.locator(".el-form-item", has=page.get_by_text("发布范围", exact=True)).locator(".el-select").click()
    expect(page.get_by_role("option")).to_have_text(["第一支部"])
