"""预警 in a real browser (console issue item 8): an admin scans a period, an organiser reports rectification
with a note and a file, an admin closes it; the API then shows the warning closed with its whole history.
An organiser of one branch never sees another branch's warnings."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.console.conftest import staff

SHOTS = "/tmp/c-members-shots"


def _row(page: Page, *texts: str):
    rows = page.get_by_test_id("warning-table").get_by_role("row")
    for text in texts:
        rows = rows.filter(has_text=text)
    return rows


def test_scan_rectify_and_close_a_warning(api, console):
    branch = api.org("第一支部")
    other = api.org("第二支部")
    secretary = staff(api, branch["id"], "张书记")
    member = api.member(branch["id"], "李明")
    api.member(other["id"], "赵强")
    chief = staff(api, api.root_org_id, "党委管理员", role="admin")
    api.admin.ok("PUT", f"/orgs/{api.root_org_id}/settings", json={"member_warnings": True})  # off by default

    # The admin scans this month for the whole committee.
    page = console.enter_as(chief, "/warnings")
    expect(page.get_by_text("没有待整改的预警")).to_be_visible()
    page.get_by_role("button", name="扫描预警").click()
    page.get_by_role("dialog", name="扫描预警").get_by_role("button", name="开始扫描").click()
    expect(page.get_by_text(re.compile(r"扫描完成：\d{4}-\d{2} 新增 \d+ 条预警"))).to_be_visible()
    expect(_row(page, "李明", "个人自学")).to_have_count(1)
    page.screenshot(path=f"{SHOTS}/warnings-list.png")
    opened = api.admin.ok("GET", f"/warnings?org_id={branch['id']}&status=open&limit=100")["items"]
    target = next(w for w in opened if w["member_id"] == member.id and w["track"] == "self_study")

    # The branch's organiser reports rectification with a note and a file.
    # The scanning admin sits above the branch: the organiser may not read their record (404, in the history).
    console.expect_http_errors(404)
    page = console.enter_as(secretary, "/warnings")
    expect(_row(page, "李明", "个人自学")).to_have_count(1)
    table = page.get_by_test_id("warning-table")
    expect(table).not_to_contain_text("赵强")
    expect(table).not_to_contain_text("第二支部")
    expect(page.get_by_role("button", name="扫描预警")).to_have_count(0)  # scanning is for admins
    _row(page, "李明", "个人自学").get_by_role("button", name="详情").click()
    drawer = page.get_by_role("dialog", name="预警详情")
    expect(drawer.get_by_test_id("warning-history")).to_contain_text("发现预警")
    drawer.get_by_role("button", name="提交整改").click()
    expect(drawer.get_by_text("请填写整改情况")).to_be_visible()
    drawer.get_by_label("整改情况").fill("已组织补学《党章》五次，共 300 分钟。")
    drawer.locator("input[type=file]").set_input_files(
        {"name": "补学记录.txt", "mimeType": "text/plain", "buffer": "补学记录：11月 每周一次".encode()})
    drawer.get_by_role("button", name="提交整改").click()
    expect(drawer.get_by_test_id("warning-status")).to_have_text("整改中")
    history = drawer.get_by_test_id("warning-history")
    expect(history).to_contain_text("提交整改 · 张书记")
    expect(history).to_contain_text("已组织补学《党章》五次")
    expect(history.get_by_role("button", name="附件 1")).to_be_visible()
    expect(drawer.get_by_role("button", name="销号")).to_have_count(0)
    expect(drawer).to_contain_text("等待管理员销号")
    page.screenshot(path=f"{SHOTS}/warnings-rectified.png")

    # The admin closes it, after confirming with a note.
    page = console.enter_as(chief, "/warnings?status=rectifying")
    _row(page, "李明", "个人自学").get_by_role("button", name="详情").click()
    drawer = page.get_by_role("dialog", name="预警详情")
    drawer.get_by_role("button", name="销号").click()
    confirm = page.get_by_role("dialog", name="确认销号")
    confirm.get_by_role("button", name="确认销号").click()
    expect(confirm.get_by_text("请填写核查意见", exact=True)).to_be_visible()
    confirm.locator("textarea").fill("经核查，同意销号")
    confirm.get_by_role("button", name="确认销号").click()
    expect(drawer.get_by_test_id("warning-status")).to_have_text("已销号")
    expect(drawer.get_by_test_id("warning-history")).to_contain_text("销号 · 党委管理员")
    page.screenshot(path=f"{SHOTS}/warnings-closed.png")
    with page.expect_download() as download:
        drawer.get_by_role("button", name="附件 1").click()
    assert download.value.suggested_filename == "整改材料-1.txt"
    assert open(download.value.path(), "rb").read() == "补学记录：11月 每周一次".encode()

    closed = api.admin.ok("GET", f"/warnings?org_id={branch['id']}&status=closed")["items"]
    assert [w["id"] for w in closed] == [target["id"]]
    steps = closed[0]["history"]
    assert [s["status"] for s in steps] == ["open", "rectifying", "closed"]
    assert [s["by"] for s in steps] == [chief.id, secretary.id, chief.id]
    assert steps[1]["note"] == "已组织补学《党章》五次，共 300 分钟。" and len(steps[1]["file_ids"]) == 1
    assert steps[2]["note"] == "经核查，同意销号"
    attached = chief.client.get(f"/files/{steps[1]['file_ids'][0]}")
    assert attached.status == 200 and attached.content == "补学记录：11月 每周一次".encode()
