"""Members' rights in a real browser (API.md §11): 意见建议 read and answered by the branch's organiser (an
anonymous one shows 匿名 and nothing else about its author), the audit log for administrators only, the
member-level warnings switch of an org, and anonymising a deactivated member. Each is checked through the
API afterwards; the refusals (another branch, an organiser who is not an admin) too."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.builders import new_session
from tests.console.conftest import staff


def _rows(page: Page, table: str, *texts: str):
    rows = page.get_by_test_id(table).locator(".el-table__body-wrapper").get_by_role("row")
    for text in texts:
        rows = rows.filter(has_text=text)
    return rows


def _select(page: Page, label: str):
    """The select of the form item labelled `label` (clicking it opens its options)."""
    return page.locator(".el-form-item", has=page.get_by_text(label, exact=True)).locator(".el-select")


def _more(page: Page, name: str):
    """Open the 更多 menu of `name`'s row in the member table; answer the open menu."""
    button = _rows(page, "member-table", name).get_by_role("button", name="更多")
    button.click()
    return page.locator(f"[id='{button.get_attribute('aria-controls')}']")


def test_an_organiser_reads_and_answers_suggestions_and_an_anonymous_one_hides_its_author(api, console):
    branch = api.org("第一支部")
    other = api.org("第二支部")
    secretary = staff(api, branch["id"], "张书记")
    other_secretary = staff(api, other["id"], "刘书记")
    li, wang, zhao = api.member(branch["id"], "李明"), api.member(branch["id"], "王芳"), api.member(other["id"], "赵强")
    li.ok("POST", "/suggestions", 201, json={"text": "建议把学习资料做成音频，方便通勤时听。", "category": "app"})
    anonymous = wang.ok("POST", "/suggestions", 201, json={
        "text": "支部会议安排在晚上九点太晚了，能否提前？", "category": "work", "anonymous": True})
    zhao.ok("POST", "/suggestions", 201, json={"text": "第二支部的活动室需要修缮。", "category": "work"})

    page = console.enter_as(secretary, "/")
    page.get_by_role("menuitem", name="意见建议").click()
    expect(page).to_have_url(re.compile(r"/console/suggestions$"))
    table = page.get_by_test_id("suggestion-table")
    expect(_rows(page, "suggestion-table")).to_have_count(2)
    expect(_rows(page, "suggestion-table", "做成音频", "李明", "关于小程序", "待回复")).to_have_count(1)
    hidden = _rows(page, "suggestion-table", "九点太晚")
    expect(hidden).to_contain_text("匿名")
    expect(hidden).not_to_contain_text("王芳")
    expect(hidden).not_to_contain_text("第一支部")  # not even the org it came from
    expect(table).not_to_contain_text("活动室")  # another branch's

    # 关于工作 leaves the anonymous one only.
    _select(page, "类别").click()
    page.get_by_role("option", name="关于工作").click()
    expect(_rows(page, "suggestion-table")).to_have_count(1)

    # Read it whole and answer it.
    hidden.get_by_role("button", name="回复").click()
    drawer = page.get_by_role("dialog", name="意见建议详情")
    expect(drawer.get_by_test_id("suggestion-text")).to_have_text("支部会议安排在晚上九点太晚了，能否提前？")
    facts = drawer.get_by_test_id("suggestion-facts")
    expect(facts).to_contain_text("匿名")
    expect(facts).not_to_contain_text("王芳")
    expect(facts).not_to_contain_text("第一支部")
    drawer.get_by_role("button", name="回复").click()
    expect(drawer.get_by_text("请填写回复内容")).to_be_visible()
    drawer.get_by_label("回复").fill("下月起支部会议改在晚上七点，感谢建议。")
    drawer.get_by_role("button", name="回复").click()
    expect(page.get_by_text("已回复，提出人会收到通知")).to_be_visible()
    expect(drawer.get_by_test_id("suggestion-status")).to_have_text("已回复")
    expect(drawer.get_by_test_id("suggestion-answer")).to_have_text("下月起支部会议改在晚上七点，感谢建议。")
    page.keyboard.press("Escape")
    expect(_rows(page, "suggestion-table")).to_have_count(0)  # the 待回复 tab has none of 关于工作 left
    page.get_by_role("tab", name="已回复").click()
    expect(_rows(page, "suggestion-table", "九点太晚", "已回复")).to_have_count(1)

    # Through the API: answered, still without its author, and the author got the answer in their feed.
    answered = secretary.client.ok("GET", "/suggestions", params={"org_id": branch["id"], "status": "answered"})
    assert [s["id"] for s in answered["items"]] == [anonymous["id"]]
    assert answered["items"][0]["author"] is None
    assert answered["items"][0]["answer"]["text"] == "下月起支部会议改在晚上七点，感谢建议。"
    assert "王芳" not in str(answered) and wang.id not in str(answered)
    assert "下月起支部会议改在晚上七点" in str(wang.ok("GET", "/feed"))

    # The other branch's organiser sees their branch's only, and cannot answer ours.
    page = console.enter_as(other_secretary, "/suggestions")
    expect(_rows(page, "suggestion-table")).to_have_count(1)
    expect(_rows(page, "suggestion-table", "活动室", "赵强")).to_have_count(1)
    open_one = secretary.client.ok("GET", "/suggestions", params={"org_id": branch["id"], "status": "open"})
    refused = other_secretary.client.post(f"/suggestions/{open_one['items'][0]['id']}/reply", json={"text": "好"})
    assert refused.status == 404 and refused.code == "suggestion_not_found"


def test_the_audit_log_is_for_admins_and_reads_before_and_after(api, console):
    branch = api.org("第一支部")
    secretary = staff(api, branch["id"], "张书记")
    chief = staff(api, api.root_org_id, "党委管理员", role="admin")
    li = api.member(branch["id"], "李明", party_status="probationary")
    api.member(branch["id"], "王芳")
    secretary.client.ok("PATCH", f"/members/{li.id}", json={"name": "李小明", "party_status": "full"})
    chief.client.ok("PUT", f"/members/{li.id}/roles", json={"roles": [{"role": "organiser", "org_id": branch["id"]}]})

    # An organiser who is not an administrator: no entry in the sidebar, and the route says no access.
    page = console.enter_as(secretary, "/")
    expect(page.get_by_role("menuitem", name="意见建议")).to_be_visible()
    expect(page.get_by_role("menuitem", name="审计日志")).to_have_count(0)
    page = console.open("/audit")
    expect(page.get_by_text("没有权限").first).to_be_visible()
    expect(page).to_have_url(re.compile(r"/console/forbidden$"))
    refused = secretary.client.get("/audit")
    assert refused.status == 403 and refused.code == "forbidden"

    # The administrator reads who changed what, in words.
    page = console.enter_as(chief, "/")
    page.get_by_role("menuitem", name="审计日志").click()
    expect(page).to_have_url(re.compile(r"/console/audit$"))
    edit = _rows(page, "audit-table", "编辑成员", "张书记")
    expect(edit).to_have_count(1)
    expect(edit).to_contain_text("李小明")
    expect(edit.get_by_test_id("change").filter(has_text="姓名")).to_have_text("姓名：李明 → 李小明")
    expect(edit.get_by_test_id("change").filter(has_text="政治面貌")).to_have_text("政治面貌：预备党员 → 正式党员")
    roles = _rows(page, "audit-table", "设置角色", "李小明")
    expect(roles.get_by_test_id("change")).to_have_text("角色：无 → 组织员（第一支部）")

    # By who acted: the secretary's entries only, as many as the API answers.
    _select(page, "操作人").click()
    page.keyboard.type("张书记")
    page.get_by_role("option", name="张书记").click()
    page.get_by_role("button", name="查询").click()
    by_secretary = chief.client.ok("GET", "/audit", params={"actor_id": secretary.id, "limit": 100})["items"]
    assert by_secretary and all(e["actor_id"] == secretary.id for e in by_secretary)
    expect(_rows(page, "audit-table")).to_have_count(len(by_secretary))
    expect(_rows(page, "audit-table", "设置角色")).to_have_count(0)

    # A time range with nothing in it.
    page.get_by_role("button", name="重置").click()
    expect(_rows(page, "audit-table", "设置角色", "李小明")).to_have_count(1)
    page.get_by_placeholder("开始", exact=True).fill("2020-01-01 00:00:00")
    page.get_by_placeholder("结束", exact=True).fill("2020-01-02 00:00:00")
    page.get_by_placeholder("结束", exact=True).press("Enter")
    page.get_by_role("button", name="查询").click()
    expect(page.get_by_text("没有符合条件的记录")).to_be_visible()
    assert chief.client.ok("GET", "/audit", params={"from": "2020-01-01T00:00:00+08:00",
                                                  "to": "2020-01-02T00:00:00+08:00"})["items"] == []

    # From the member's menu: the entries about one member.
    page = console.open("/members")
    _more(page, "李小明").get_by_role("menuitem", name="操作记录").click()
    expect(page).to_have_url(re.compile(rf"/console/audit\?target_id={li.id}$"))
    about_li = chief.client.ok("GET", "/audit", params={"target_id": li.id, "limit": 100})["items"]
    assert {e["action"] for e in about_li} >= {"member.create", "member.update", "member.roles"}
    expect(_rows(page, "audit-table")).to_have_count(len(about_li))
    expect(page.locator("form.filters")).to_contain_text("李小明")  # the picker shows the name, not the id
    expect(page.get_by_test_id("audit-table")).not_to_contain_text("王芳")

    # From a session's page: the entries about that session, its cancellation with the reason.
    session = new_session(api, secretary.client, branch["id"], title="党课：党章学习")
    secretary.client.ok("POST", f"/study/sessions/{session['id']}/cancel", json={"reason": "会议室检修"})
    page = console.open(f"/study/sessions/{session['id']}")
    page.get_by_role("button", name="操作记录").click()
    expect(page).to_have_url(re.compile(rf"/console/audit\?target_id={session['id']}&target_kind=study_session$"))
    expect(_rows(page, "audit-table")).to_have_count(1)
    expect(_rows(page, "audit-table", "取消学习安排", "张书记", "会议室检修")).to_have_count(1)
    expect(page.locator("form.filters")).to_contain_text("学习安排")
    about = chief.client.ok("GET", "/audit", params={"target_id": session["id"]})["items"]
    assert [(e["action"], e["actor_id"], e["reason"]) for e in about] == [
        ("study.session.cancel", secretary.id, "会议室检修")]
    page = console.enter_as(secretary, f"/study/sessions/{session['id']}")
    expect(page.get_by_role("button", name="发送记录")).to_be_visible()
    expect(page.get_by_role("button", name="操作记录")).to_have_count(0)  # an organiser has no audit log


def test_an_admin_turns_member_warnings_on_for_a_branch(api, console):
    branch = api.org("第一支部")
    secretary = staff(api, branch["id"], "张书记")
    chief = staff(api, api.root_org_id, "党委管理员", role="admin")

    # An organiser has no settings to change.
    page = console.enter_as(secretary, "/members")
    expect(page.get_by_test_id("org-tree")).to_contain_text("第一支部")
    expect(page.get_by_role("button", name="组织设置")).to_have_count(0)
    assert secretary.client.put(f"/orgs/{branch['id']}/settings", json={"member_warnings": True}).status == 403

    page = console.enter_as(chief, "/members")
    page.get_by_test_id("org-tree").get_by_text("第一支部").click()
    page.get_by_role("button", name="组织设置").click()
    dialog = page.get_by_role("dialog", name="组织设置 · 第一支部")
    expect(dialog.get_by_test_id("settings-source")).to_contain_text("尚未单独设置")
    switch = dialog.get_by_role("switch", name="成员预警")
    expect(switch).not_to_be_checked()  # off by default
    dialog.locator(".el-switch").click()  # the input itself is hidden behind the switch's picture
    expect(switch).to_be_checked()
    dialog.get_by_role("button", name="保存").click()
    expect(page.get_by_text("组织设置已保存")).to_be_visible()

    settings = chief.client.ok("GET", f"/orgs/{branch['id']}/settings")
    assert settings["member_warnings"] is True and settings["own"] == {"member_warnings": True}
    assert chief.client.ok("GET", f"/orgs/{api.root_org_id}/settings")["member_warnings"] is False
    entry = chief.client.ok("GET", "/audit", params={"target_id": branch["id"]})["items"][0]
    assert entry["action"] == "org.settings" and entry["actor_id"] == chief.id
    assert entry["after"] == {"member_warnings": True}

    page.get_by_role("button", name="组织设置").click()
    dialog = page.get_by_role("dialog", name="组织设置 · 第一支部")
    expect(dialog.get_by_test_id("settings-source")).to_contain_text("本组织自己的设置")
    expect(dialog.get_by_role("switch", name="成员预警")).to_be_checked()


def test_an_admin_anonymises_a_deactivated_member_after_a_confirmation(api, console):
    branch = api.org("第一支部")
    secretary = staff(api, branch["id"], "张书记")
    chief = staff(api, api.root_org_id, "党委管理员", role="admin")
    api.member(branch["id"], "李明")
    wang = api.member(branch["id"], "王芳", tags=["青年"])
    chief.client.ok("PATCH", f"/members/{wang.id}", json={"active": False})

    # An organiser may deactivate and reactivate, never anonymise.
    page = console.enter_as(secretary, "/members")
    menu = _more(page, "王芳")
    expect(menu.get_by_role("menuitem", name="启用")).to_be_visible()
    expect(menu.get_by_role("menuitem", name="匿名化")).to_have_count(0)
    assert secretary.client.post(f"/members/{wang.id}/anonymise").status == 403

    page = console.enter_as(chief, "/members")
    menu = _more(page, "李明")
    expect(menu.get_by_role("menuitem", name="停用")).to_be_visible()
    expect(menu.get_by_role("menuitem", name="匿名化")).to_have_count(0)  # active: not offered
    page.get_by_role("heading", name="组织与成员").click()
    expect(menu).to_be_hidden()
    _more(page, "王芳").get_by_role("menuitem", name="匿名化").click()
    confirm = page.get_by_role("dialog", name="匿名化成员")
    expect(confirm).to_contain_text("永久清除 王芳 的个人信息")
    expect(confirm).to_contain_text("学习统计数字不变")
    expect(confirm).to_contain_text("不可撤销")
    confirm.get_by_role("button", name="取消").click()
    assert chief.client.ok("GET", f"/members/{wang.id}")["name"] == "王芳"  # cancelling changed nothing

    _more(page, "王芳").get_by_role("menuitem", name="匿名化").click()
    page.get_by_role("dialog", name="匿名化成员").get_by_role("button", name="确认匿名化").click()
    expect(page.get_by_text("已匿名化", exact=True).first).to_be_visible()
    row = _rows(page, "member-table", "已注销成员")
    expect(row).to_contain_text("已匿名化")
    expect(page.get_by_test_id("member-table")).not_to_contain_text("王芳")

    after = chief.client.ok("GET", f"/members/{wang.id}")
    assert after["name"] == "已注销成员" and after["phone_masked"] == "" and after["tags"] == []
    assert after["active"] is False
    entry = chief.client.ok("GET", "/audit", params={"target_id": wang.id})["items"][0]
    assert entry["action"] == "member.anonymise" and entry["actor_id"] == chief.id
