"""Notifications in a real browser (API.md §9): an administrator of the top org configures an event's WeChat
template (keyword rows, the server's refusal on its row, the reminder's lead time), while a branch's
administrator only reads them and an organiser does not see the page; 提醒未读 on a live announcement says
how many were reminded and refuses a second time within 24 h; the 发送记录 of an announcement, a session
and an activity show how each notice went to WeChat. Checked through the API afterwards."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.builders import allow, bind_wechat, new_session, publish, published, wait_until
from tests.console.conftest import staff


def _rows(page: Page, table: str, *texts: str):
    rows = page.get_by_test_id(table).locator(".el-table__body-wrapper").get_by_role("row")
    for text in texts:
        rows = rows.filter(has_text=text)
    return rows


def _choose(page: Page, select_label: str, option: str) -> None:
    page.locator(".el-select", has=page.get_by_role("combobox", name=select_label)).click()
    page.get_by_role("listbox", name=select_label).get_by_role("option", name=option, exact=True).click()


def test_a_top_admin_configures_a_template_and_nobody_else_may(api, console):
    branch = api.org("第一支部")
    chief = staff(api, api.root_org_id, "党委管理员", role="admin")
    branch_admin = staff(api, branch["id"], "支部管理员", role="admin")
    secretary = staff(api, branch["id"], "张书记")

    page = console.enter_as(chief, "/")
    page.get_by_role("menuitem", name="消息模板").click()
    expect(page).to_have_url(re.compile(r"/console/notifications/templates$"))
    row = _rows(page, "template-table", "学习开始提醒")
    expect(row).to_contain_text("未配置")
    expect(row).to_contain_text("应参加的成员")
    row.get_by_role("button", name="配置").click()
    dialog = page.get_by_role("dialog", name="配置消息模板 · 学习开始提醒")

    dialog.get_by_role("button", name="保存").click()
    expect(dialog.get_by_text("请填写模板编号")).to_be_visible()
    expect(dialog.get_by_text("请填写模板关键词，如 thing1")).to_be_visible()
    dialog.get_by_label("模板编号").fill("TPL_session_reminder_01")
    dialog.get_by_label("跳转页面").fill("pages/study/session?id={ref_id}")
    dialog.get_by_label("关键词 1").fill("thing1")
    _choose(page, "内容 1", "标题")
    dialog.get_by_role("button", name="添加关键词").click()
    dialog.get_by_label("关键词 2").fill("time2")
    _choose(page, "内容 2", "时间")
    dialog.get_by_role("button", name="添加关键词").click()
    dialog.get_by_label("关键词 3").fill("time3")
    _choose(page, "内容 3", "地点")  # a text cannot fill a time keyword: said on the row, nothing sent (a 422
    dialog.get_by_role("button", name="保存").click()  # would be an unexpected console error, failing the test)
    expect(dialog.get_by_text("该内容不能填入 time 类关键词")).to_be_visible()
    dialog.get_by_label("关键词 3").fill("thing3")
    dialog.get_by_label("提前提醒分钟").fill("45")
    dialog.get_by_role("button", name="保存").click()
    expect(page.get_by_text("消息模板已保存")).to_be_visible()
    expect(row).to_contain_text("已开启")
    expect(row).to_contain_text("45 分钟")
    expect(row).to_contain_text("thing3：地点")

    saved = next(t for t in chief.client.ok("GET", "/notification-templates")["items"]
                 if t["event"] == "session_reminder")
    assert saved["template_id"] == "TPL_session_reminder_01" and saved["enabled"] is True
    assert saved["fields"] == {"thing1": "title", "time2": "time", "thing3": "place"}
    assert saved["lead_minutes"] == 45 and saved["page"] == "pages/study/session?id={ref_id}"

    # An administrator of a branch reads them and may not change them.
    page = console.enter_as(branch_admin, "/notifications/templates")
    expect(page.get_by_text("消息模板由上级党委的管理员统一配置")).to_be_visible()
    expect(_rows(page, "template-table", "学习开始提醒")).to_contain_text("TPL_session_reminder_01")
    expect(page.get_by_role("button", name="配置")).to_have_count(0)
    refused = branch_admin.client.put("/notification-templates/session_reminder", json={
        "template_id": "TPL_other", "fields": {"thing1": "title"}})
    assert refused.status == 403 and refused.code == "forbidden"

    # An organiser has no such page.
    page = console.enter_as(secretary, "/")
    expect(page.get_by_role("menuitem", name="意见建议")).to_be_visible()
    expect(page.get_by_role("menuitem", name="消息模板")).to_have_count(0)
    page = console.open("/notifications/templates")
    expect(page).to_have_url(re.compile(r"/console/forbidden$"))


def test_remind_the_unread_and_read_the_delivery_logs(api, console):
    branch = api.org("第一支部")
    secretary = staff(api, branch["id"], "张书记")
    chief = staff(api, api.root_org_id, "党委管理员", role="admin")
    li, wang, zhao = (api.member(branch["id"], n) for n in ("李明", "王芳", "赵强"))
    template = "TPL_must_read_01"
    chief.client.ok("PUT", "/notification-templates/must_read_reminder", json={
        "template_id": template, "page": "pages/notice/detail?id={ref_id}",
        "fields": {"thing1": "title", "time2": "time"}})
    bind_wechat(api, li)
    allow(li, template)  # 李明 tapped 允许 once: one WeChat message
    bind_wechat(api, wang)  # 王芳 never allowed it
    zhao.ok("PUT", "/me/notification-preferences", json={"muted": ["must_read_reminder"]})
    notice_id = publish(api, secretary.client, branch["id"], "关于开展主题党日活动的通知")
    unread = secretary.client.ok("GET", f"/announcements/{notice_id}/receipts")["unread_members"]

    page = console.enter_as(secretary, f"/announcements/{notice_id}")
    page.get_by_role("button", name="提醒未读").click()
    confirm = page.get_by_role("dialog", name="提醒未读")
    expect(confirm).to_contain_text("24 小时内只能提醒一次")
    confirm.get_by_role("button", name="发送提醒").click()
    expect(page.get_by_text(f"已提醒 {len(unread)} 位成员")).to_be_visible()
    console.expect_http_errors(409)
    page.get_by_role("button", name="提醒未读").click()
    page.get_by_role("dialog", name="提醒未读").get_by_role("button", name="发送提醒").click()
    expect(page.get_by_text("24 小时内已提醒过，请稍后再试。")).to_be_visible()

    def settled():
        items = secretary.client.ok("GET", "/notifications/deliveries",
                                    params={"ref_id": notice_id, "limit": 100})["items"]
        return items if len(items) == len(unread) and all(d["wechat"] != "pending" for d in items) else None

    deliveries = wait_until(settled, timeout=15)
    assert deliveries, "the reminders were not all sent"
    by_name = {d["name"]: d["wechat"] for d in deliveries}
    assert (by_name["李明"], by_name["王芳"], by_name["赵强"]) == ("sent", "no_grant", "muted")

    page.get_by_role("button", name="发送记录").click()
    drawer = page.get_by_role("dialog", name="发送记录")
    expect(_rows(page, "delivery-table")).to_have_count(len(unread))
    expect(_rows(page, "delivery-table", "李明", "公告阅读提醒", "已发送")).to_have_count(1)
    expect(_rows(page, "delivery-table", "王芳", "无授权")).to_have_count(1)
    expect(_rows(page, "delivery-table", "赵强", "已静音")).to_have_count(1)
    expect(drawer).to_contain_text("已发送")

    # A session's: its attendees were told it was scheduled, by WeChat where a member allowed it.
    scheduled = "TPL_session_scheduled_01"
    chief.client.ok("PUT", "/notification-templates/session_scheduled", json={
        "template_id": scheduled, "fields": {"thing1": "title", "time2": "time"}})
    allow(li, scheduled)
    session = new_session(api, secretary.client, branch["id"], title="十二月党小组会")

    def session_settled():
        items = secretary.client.ok("GET", "/notifications/deliveries",
                                    params={"ref_id": session["id"], "limit": 100})["items"]
        mine = {d["name"]: d["wechat"] for d in items}
        return items if mine.get("李明") == "sent" and all(d["wechat"] != "pending" for d in items) else None

    told = wait_until(session_settled, timeout=15)
    assert told and {d["event"] for d in told} == {"session_scheduled"}
    assert {d["name"]: d["wechat"] for d in told}["王芳"] == "no_grant"
    page = console.open(f"/study/sessions/{session['id']}")
    page.get_by_role("button", name="发送记录").click()
    expect(_rows(page, "delivery-table")).to_have_count(len(told))
    expect(_rows(page, "delivery-table", "李明", "新的学习安排", "已发送")).to_have_count(1)
    expect(_rows(page, "delivery-table", "王芳", "新的学习安排", "无授权")).to_have_count(1)

    # An activity: nothing sent yet reads as an empty log; once it is cancelled, its
    # confirmed member was told in the mini-program only (no template for that event: 未开启).
    activity = published(api, secretary.client, branch["id"], title="读书分享会")
    page = console.open(f"/activities/{activity['id']}")
    page.get_by_role("tab", name="发送记录").click()
    expect(page.get_by_text("暂无发送记录")).to_be_visible()
    assert secretary.client.ok("GET", "/notifications/deliveries", params={"ref_id": activity["id"]})["items"] == []
    wang.ok("POST", f"/activities/{activity['id']}/signups", 201)
    secretary.client.ok("POST", f"/activities/{activity['id']}/cancel", json={"reason": "场地检修"})
    page.get_by_role("tabpanel", name="发送记录").get_by_role("button", name="刷新").click()
    expect(_rows(page, "delivery-table", "王芳", "活动取消", "未开启")).to_have_count(1)
    cancelled = secretary.client.ok("GET", "/notifications/deliveries", params={"ref_id": activity["id"]})["items"]
    assert [(d["name"], d["event"], d["wechat"]) for d in cancelled] == [("王芳", "activity_cancelled", "off")]
