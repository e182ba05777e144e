"""公告 in a real browser (console issue item 7): an organiser composes a scheduled must-read announcement
with an attachment in the console; once the server's clock passes its publication it is live for members,
one reads and acknowledges it through the API, and the receipts count the ack and list who has not read
it; editing makes a new version; retracting asks first; an organiser of one branch never sees another's."""

from __future__ import annotations

import os
import re
from datetime import timedelta
from zoneinfo import ZoneInfo

from playwright.sync_api import Page, expect

from tests.builders import PDF, advance, parse, publish, remember, wait_until, whole_feed
from tests.console.conftest import staff

SHANGHAI = ZoneInfo("Asia/Shanghai")
SHOTS = os.environ.get("BRANCHLINE_SHOTS")


def shot(page: Page, name: str) -> None:
    if SHOTS:
        page.screenshot(path=os.path.join(SHOTS, f"{name}.png"))


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


def test_an_organiser_of_one_branch_never_sees_another_branchs_announcements(api, console):
    a = api.org("第一支部")
    b = api.org("第二支部")
    secretary_a = staff(api, a["id"], "张书记")
    secretary_b = staff(api, b["id"], "李书记")
    theirs = publish(api, secretary_b.client, b["id"], "二支部内部通知")

    console.expect_http_errors(404)
    page = console.enter_as(secretary_a, f"/announcements/{theirs}")
    expect(page.get_by_text("内容不存在")).to_be_visible()
    expect(page.get_by_text("二支部内部通知")).to_have_count(0)
    assert secretary_a.client.get(f"/announcements/{theirs}").status == 404
    assert secretary_a.client.get(f"/announcements/{theirs}/receipts").status == 404

    # composing offers only A's subtree as the audience
    page.goto(console.url("/announcements/new"))
    page.locator(".el-form-item", has=page.get_by_text("发布范围", exact=True)).locator(".el-select").click()
    expect(page.get_by_role("option")).to_have_text(["第一支部"])
