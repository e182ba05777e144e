"""组织与成员 in a real browser (console issue item 3): import with a per-row error report, create and edit a
member with errors on their fields, deactivate with confirmation, an invite code whose QR is the code, and an
organiser of one branch who never sees another branch's org or members. Each checked through the API."""

from __future__ import annotations

import hashlib
import re

import segno
from playwright.sync_api import Page, expect

from tests.builders import two_branches
from tests.console.conftest import staff

SHOTS = "/tmp/c-members-shots"


def _member_names(client, org_id: str, query: str = "") -> set[str]:
    """Every member the API lists for `org_id` and `query` (q=..., active=...), through every page."""
    names, cursor = set(), ""
    while True:
        page = client.ok("GET", f"/members?org_id={org_id}&limit=100&{query}{cursor}")
        names |= {m["name"] for m in page["items"]}
        if not page["next_cursor"]:
            return names
        cursor = f"&cursor={page['next_cursor']}"


def _shown_names(page: Page) -> set[str]:
    """The names in the member table's rows on screen (without the 已停用 tag)."""
    cells = page.get_by_test_id("member-table").locator(".el-table__body td:first-child .cell > span:first-child")
    return set(cells.all_inner_texts())


def _pick(page: Page, within, label: str, option: str) -> None:
    """Choose `option` in the Element Plus select of the form item or filter labelled `label`."""
    within.locator(".el-form-item").filter(has_text=label).locator(".el-select__wrapper").click()
    page.get_by_role("option", name=option, exact=True).click()


def _row(page: Page, text: str):
    return page.get_by_test_id("member-table").get_by_role("row").filter(has_text=text)


def _more(page: Page, name: str, action: str) -> None:
    """The row's 更多 menu, then one of its actions."""
    _row(page, name).get_by_role("button", name="更多").click()
    page.get_by_role("menuitem", name=action).click()


def _members_page_with_liming(api, console):
    """第一支部 with its secretary 张书记 and the member 李明, on the secretary's 组织与成员 page."""
    branch = api.org("第一支部")
    member = api.member(branch["id"], "李明")
    page = console.enter_as(staff(api, branch["id"], "张书记"), "/members")
    return branch, member, page


def test_import_a_csv_with_one_bad_row_reports_it_and_writes_the_rest(api, console, tmp_path):
    branch = api.org("第一支部")
    secretary = staff(api, branch["id"], "张书记")
    page = console.enter_as(secretary, "/members")
    page.get_by_role("button", name="批量导入").click()
    dialog = page.get_by_role("dialog", name=re.compile("批量导入成员"))

    # The template the page generates is what the importer reads: fill it in and send it back.
    with page.expect_download() as download:
        dialog.get_by_role("button", name="下载模板（CSV）").click()
    template = open(download.value.path(), encoding="utf-8-sig").read()
    assert template.splitlines() == ["姓名,手机号,性别,出生日期,政治面貌,标签"]
    filled = template + ("王小红,13911110001,女,1991-03-08,正式党员,union_member\r\n"
                         "刘大伟,13911110002,男,1988-07-01,预备党员,\r\n"
                         "陈错误,13911110003,未知,1990-01-01,群众,\r\n")
    dialog.locator("input[type=file]").set_input_files(
        {"name": "成员.csv", "mimeType": "text/csv", "buffer": ("\ufeff" + filled).encode("utf-8")})
    dialog.get_by_role("button", name="开始导入").click()

    result = dialog.get_by_test_id("import-result")
    expect(result).to_contain_text("新增 2 人，更新 0 人，1 行有误未导入")
    errors = dialog.get_by_test_id("import-errors")
    expect(errors.get_by_role("row")).to_have_count(2)  # the header and the one bad row
    bad = errors.get_by_role("row").nth(1)
    expect(bad).to_contain_text("4")
    expect(bad).to_contain_text("性别：应为“男”或“女”")
    page.screenshot(path=f"{SHOTS}/members-import.png")
    dialog.get_by_role("button", name="完成").click()
    expect(_row(page, "王小红")).to_be_visible()

    listed = {m["name"]: m for m in api.admin.ok("GET", f"/members?org_id={branch['id']}&limit=100")["items"]}
    assert {"王小红", "刘大伟"} <= listed.keys() and "陈错误" not in listed
    assert listed["王小红"]["gender"] == "female" and listed["王小红"]["tags"] == ["union_member"]
    assert listed["刘大伟"]["party_status"] == "probationary"


def test_create_a_member_with_field_errors_then_edit_and_a_refusal(api, console):
    branch = api.org("第一支部")
    secretary = staff(api, branch["id"], "张书记")
    taken = api.member(branch["id"], "李明")
    taken_phone = api.run(api.db["members"].find_one({"_id": taken.id}))["phone"]
    page = console.enter_as(secretary, "/members")
    expect(_row(page, "李明")).to_be_visible()

    page.get_by_role("button", name="新增成员").click()
    drawer = page.get_by_role("dialog", name="新增成员")
    drawer.get_by_role("button", name="保存").click()
    expect(drawer.get_by_text("请输入姓名")).to_be_visible()  # validated before anything is sent
    drawer.get_by_label("姓名").fill("周新")
    drawer.get_by_label("手机号").fill("12")
    drawer.get_by_label("姓名").click()
    expect(drawer.get_by_text("手机号应为 6 到 15 位数字")).to_be_visible()
    drawer.get_by_label("手机号").fill(taken_phone)
    drawer.get_by_text("女", exact=True).click()
    drawer.get_by_placeholder("选择日期").fill("1992-05-04")
    drawer.get_by_placeholder("选择日期").press("Enter")
    _pick(page, drawer, "政治面貌", "预备党员")
    console.expect_http_errors(409)
    drawer.get_by_role("button", name="保存").click()
    # phone_taken lands on the phone field, in Chinese
    expect(drawer.get_by_text("该手机号已被其他成员使用。")).to_be_visible()
    page.screenshot(path=f"{SHOTS}/members-form.png")
    drawer.get_by_label("手机号").fill("139 2222 0001")
    drawer.get_by_role("button", name="保存").click()
    expect(drawer).to_be_hidden()
    expect(_row(page, "周新")).to_be_visible()

    made = next(m for m in secretary.client.ok("GET", f"/members?org_id={branch['id']}&limit=100")["items"]
                if m["name"] == "周新")
    assert made["gender"] == "female" and made["birth_date"] == "1992-05-04"
    assert made["party_status"] == "probationary" and made["phone_masked"] == "139****0001"
    assert made["org_id"] == branch["id"] and made["active"]

    # Editing: only what changed is sent.
    _row(page, "周新").get_by_role("button", name="编辑").click()
    drawer = page.get_by_role("dialog", name=re.compile("编辑成员"))
    drawer.get_by_label("姓名").fill("周欣")
    drawer.get_by_role("button", name="保存").click()
    expect(_row(page, "周欣")).to_be_visible()
    assert secretary.client.ok("GET", f"/members/{made['id']}")["name"] == "周欣"

    # An organiser may not edit an admin of their branch: the API's 403 is shown, nothing changes.
    boss = api.org_admin(branch["id"], "王主任")
    page.reload()
    console.expect_http_errors(403)
    _row(page, "王主任").get_by_role("button", name="编辑").click()
    drawer = page.get_by_role("dialog", name=re.compile("编辑成员"))
    drawer.get_by_label("姓名").fill("王某")
    drawer.get_by_role("button", name="保存").click()
    expect(drawer.get_by_role("alert")).to_contain_text("您没有权限执行此操作。")
    assert api.admin.ok("GET", f"/members/{boss.id}")["name"] == "王主任"
    drawer.get_by_role("button", name="取消").click()
    expect(drawer).to_be_hidden()
    # and roles are for admins: an organiser sees no 角色 button
    _row(page, "王主任").get_by_role("button", name="更多").click()
    expect(page.get_by_role("menuitem", name="邀请码")).to_be_visible()
    expect(page.get_by_role("menuitem", name="角色")).to_have_count(0)


def test_deactivate_asks_first(api, console):
    branch, member, page = _members_page_with_liming(api, console)

    _more(page, "李明", "停用")
    confirm = page.get_by_role("dialog", name="停用成员")
    expect(confirm).to_contain_text("李明 将无法登录小程序")
    confirm.get_by_role("button", name="取消").click()
    assert api.admin.ok("GET", f"/members/{member.id}")["active"] is True

    _more(page, "李明", "停用")
    page.get_by_role("dialog", name="停用成员").get_by_role("button", name="停用").click()
    expect(_row(page, "李明")).to_contain_text("已停用")
    assert api.admin.ok("GET", f"/members/{member.id}")["active"] is False
    # the filter finds them among the inactive, and the API agrees nobody else is
    _pick(page, page.locator(".filters"), "状态", "已停用")
    page.get_by_role("button", name="查询").click()
    expect(page.get_by_test_id("member-table").get_by_role("row")).to_have_count(2)
    expect(_row(page, "李明")).to_contain_text("已停用")
    assert _member_names(api.admin, branch["id"], "active=false") == {"李明"}


def test_search_and_filters_are_answered_by_the_api_page_by_page(api, console):
    branch = api.org("第一支部")
    secretary = staff(api, branch["id"], "张书记")
    for i in range(22):  # full members (api.many_members runs its own event loop: not beside Playwright's)
        api.member(branch["id"], f"党员{i:02d}")
    zhang = api.member(branch["id"], "张建国", party_status="probationary", tags=["youth"])
    api.member(branch["id"], "李建华", tags=["youth"])
    phone = api.run(api.db["members"].find_one({"_id": zhang.id}))["phone"]
    page = console.enter_as(secretary, "/members")
    table = page.get_by_test_id("member-table")
    expect(table.locator(".el-table__body tr")).to_have_count(20)
    search = page.get_by_label("姓名或完整手机号")

    def query(expected: str) -> None:
        """Click 查询 and wait for the API's answer to a GET /members whose query has `expected`."""
        with page.expect_response(lambda r: "/api/v1/members?" in r.url and expected in r.url) as answer:
            page.get_by_role("button", name="查询").click()
        assert answer.value.status == 200

    # Part of a name.
    search.fill("建")
    query("q=%E5%BB%BA")
    expect(table.locator(".el-table__body tr")).to_have_count(2)
    assert _shown_names(page) == {"张建国", "李建华"} == _member_names(secretary.client, branch["id"], "q=建")
    expect(page.get_by_role("button", name="下一页")).to_be_disabled()
    # A whole phone number, typed with spaces, finds its member; part of one finds nobody (phones are masked).
    search.fill(f"{phone[:3]} {phone[3:7]} {phone[7:]}")
    query(f"q={phone[:3]}+{phone[3:7]}+")
    expect(table.locator(".el-table__body tr")).to_have_count(1)
    expect(_row(page, "张建国")).to_be_visible()
    search.fill(phone[:7])
    query(f"q={phone[:7]}")
    expect(page.get_by_text("没有符合条件的成员")).to_be_visible()
    # A tag and a party status together.
    search.fill("")
    page.get_by_label("标签").fill("youth")
    _pick(page, page.locator(".filters"), "政治面貌", "预备党员")
    query("party_status=probationary")
    expect(table.locator(".el-table__body tr")).to_have_count(1)
    expect(_row(page, "张建国")).to_contain_text("预备党员")

    # A filter with more matches than a page: the next page comes from the API's cursor, with the filter.
    page.get_by_role("button", name="重置").click()
    expect(table.locator(".el-table__body tr")).to_have_count(20)
    _pick(page, page.locator(".filters"), "政治面貌", "正式党员")
    query("party_status=full")
    expect(table.locator(".el-table__body tr")).to_have_count(20)
    first = _shown_names(page)
    with page.expect_response(lambda r: "/api/v1/members?" in r.url and "party_status=full" in r.url
                              and "cursor=" in r.url):
        page.get_by_role("button", name="下一页").click()
    expect(page.get_by_text("第 2 页")).to_be_visible()
    expect(table.locator(".el-table__body tr")).to_have_count(4)
    rest = _shown_names(page)
    expect(table.locator(".el-loading-mask")).to_have_count(0)
    page.screenshot(path=f"{SHOTS}/members-filtered.png")
    assert not first & rest
    assert first | rest == _member_names(secretary.client, branch["id"], "party_status=full")
    assert "张建国" not in first | rest and len(first | rest) == 24
    expect(page.get_by_role("button", name="下一页")).to_be_disabled()
    page.get_by_role("button", name="上一页").click()
    expect(page.get_by_text("第 1 页")).to_be_visible()
    expect(table.locator(".el-table__body tr")).to_have_count(20)


def test_invite_code_shows_with_a_qr_of_the_code_and_prints_alone(api, console):
    _, member, page = _members_page_with_liming(api, console)

    _more(page, "李明", "邀请码")
    dialog = page.get_by_role("dialog", name=re.compile("绑定邀请码"))
    code_box = dialog.get_by_test_id("invite-code")
    expect(code_box).to_have_text(re.compile(r"^[A-Z2-9]{8}$"))
    code = code_box.inner_text()
    expect(dialog).to_contain_text("有效期至")

    # The QR drawn is a QR of exactly that code (the same matrix segno makes for it, under one of the 8 masks).
    d = dialog.get_by_test_id("qr-code").locator("path").get_attribute("d")
    dark = {(int(x), int(y)) for x, y in re.findall(r"M(\d+) (\d+)h1v1h-1z", d)}
    expected = [{(x + 2, y + 2) for y, row in enumerate(q.matrix) for x, v in enumerate(row) if v}
                for q in (segno.make(code, error="m", boost_error=False, micro=False, mask=m) for m in range(8))]
    assert dark in expected

    # Printing shows the code card and nothing else of the page.
    page.emulate_media(media="print")
    sheet = page.get_by_test_id("invite-print")
    expect(sheet).to_be_visible()
    expect(sheet).to_contain_text(code)
    expect(page.get_by_test_id("member-table")).to_be_hidden()
    page.screenshot(path=f"{SHOTS}/members-invite-print.png")
    page.emulate_media(media="screen")
    page.screenshot(path=f"{SHOTS}/members-invite.png")

    # The code binds a WeChat identity to that member, once.
    anon = api.anonymous()
    bind_token = anon.ok("POST", "/auth/wechat", json={"code": "ok:openid-liming"})["bind_token"]
    bound = anon.ok("POST", "/auth/bind", json={"bind_token": bind_token, "invite_code": code})
    assert bound["member"]["id"] == member.id
    assert api.run(api.db["invites"].find_one({"_id": hashlib.sha256(code.encode()).hexdigest()}))["used_at"]


def test_an_organiser_of_branch_a_never_sees_branch_b(api, console):
    world = two_branches(api)
    a, b = world["a"], world["b"]
    secretary = staff(api, a["id"], "孙书记")
    api.member(b["id"], "钱多多")
    page = console.enter_as(secretary, "/members")

    tree = page.get_by_test_id("org-tree")
    expect(tree).to_contain_text("第一支部")
    expect(tree).not_to_contain_text("第二支部")
    expect(tree).not_to_contain_text("机关总支")
    table = page.get_by_test_id("member-table")
    expect(_row(page, "李明")).to_be_visible()
    for outsider in ("赵强", "钱多多"):
        expect(table).not_to_contain_text(outsider)
    page.screenshot(path=f"{SHOTS}/members-page.png")
    # nor through the search, which the API answers within the selected org
    page.get_by_label("姓名或完整手机号").fill("赵强")
    page.get_by_role("button", name="查询").click()
    expect(page.get_by_text("没有符合条件的成员")).to_be_visible()
    # nor in the org picker of the member form
    page.get_by_role("button", name="新增成员").click()
    drawer = page.get_by_role("dialog", name="新增成员")
    drawer.locator(".el-form-item").filter(has_text="所属组织").locator(".el-select__wrapper").click()
    expect(page.get_by_role("treeitem", name="第一支部", exact=True)).to_be_visible()
    expect(page.get_by_role("treeitem").filter(has_text="第二支部")).to_have_count(0)
    page.screenshot(path=f"{SHOTS}/members-scope.png")
    # The API agrees: what the page lists is exactly the API's answer for branch A.
    assert _member_names(secretary.client, a["id"]) == {"孙书记", "张书记", "李明", "王芳"}
    assert secretary.client.get(f"/members?org_id={b['id']}").status == 404


def test_an_admin_creates_an_org_in_the_tree(api, console):
    general = api.org("机关总支", "general_branch")
    chief = staff(api, general["id"], "总支书记", role="admin")
    page = console.enter_as(chief, "/members")
    page.get_by_role("button", name="新建组织").click()
    dialog = page.get_by_role("dialog", name="新建组织")
    expect(dialog.get_by_text("党委")).to_have_count(0)  # no committee under a general branch
    dialog.get_by_label("组织名称").fill("第三支部")
    dialog.get_by_role("button", name="创建").click()
    expect(page.get_by_test_id("org-tree")).to_contain_text("第三支部")
    children = chief.client.ok("GET", f"/orgs?parent_id={general['id']}")["items"]
    assert [(o["name"], o["kind"]) for o in children] == [("第三支部", "branch")]


def test_an_admin_gives_a_member_a_role(api, console):
    branch = api.org("第一支部")
    chief = staff(api, branch["id"], "支部管理员", role="admin")
    member = api.member(branch["id"], "李明")
    page = console.enter_as(chief, "/members")
    _more(page, "李明", "角色")
    dialog = page.get_by_role("dialog", name="设置角色 · 李明")
    expect(dialog.get_by_text("普通成员，没有管理角色")).to_be_visible()
    dialog.get_by_role("button", name="添加角色").click()  # organiser of the member's own org by default
    dialog.get_by_role("button", name="保存").click()
    expect(dialog).to_be_hidden()
    expect(_row(page, "李明")).to_contain_text("组织员")
    assert api.admin.ok("GET", f"/members/{member.id}")["roles"] == [{"role": "organiser", "org_id": branch["id"]}]
