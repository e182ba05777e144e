"""The console's shell in a real browser: signing in and staying in, who may use it, the org switcher and
the dashboard, the error pages, /docs, and how the server serves the build (console issue items 1, 2, 9, 10)."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.sync_api import expect

from schemas import openapi
from server.app import ROUTES
from server.errors import CODES
from tests.builders import new_session, published
from tests.console.conftest import CONSOLE, TOKENS_KEY, staff

STORED_TOKENS = f"JSON.parse(localStorage.getItem('{TOKENS_KEY}'))"


SHANGHAI = ZoneInfo("Asia/Shanghai")  # the browser's zone in these tests (conftest), and the server's default


def this_month() -> str:
    return datetime.now(SHANGHAI).strftime("%Y-%m")


# -- item 1: signing in, staying in, signing out -----------------------------------------------------

def test_sign_in_survives_a_reload_and_sign_out_ends_it(api, console):
    org = api.org("第一支部")
    secretary = staff(api, org["id"], "张书记")
    page = console.sign_in(secretary)
    expect(page).to_have_url(console.url("/"))
    expect(page.get_by_test_id("user-menu")).to_have_text(re.compile("张书记"))

    page.reload()
    expect(page.get_by_test_id("user-menu")).to_have_text(re.compile("张书记"))
    expect(page).to_have_url(console.url("/"))

    stored = page.evaluate(STORED_TOKENS)
    page.get_by_test_id("user-menu").click()
    page.get_by_role("menuitem", name="退出登录").click()
    expect(page).to_have_url(console.url("/login"))
    assert page.evaluate(f"localStorage.getItem('{TOKENS_KEY}')") is None
    refused = api.anonymous().post("/auth/refresh", json={"refresh_token": stored["refresh_token"]})
    assert refused.status == 401  # signing out revoked the session on the server


@pytest.mark.settings(access_token_seconds=16)
def test_tokens_are_refreshed_in_the_background_before_they_expire(api, console):
    org = api.org("第一支部")
    page = console.sign_in(staff(api, org["id"], "张书记"))
    first = page.evaluate(STORED_TOKENS)
    # a 16 s token is refreshed at half its life, without any click
    page.wait_for_function("([key, old]) => JSON.parse(localStorage.getItem(key)).refresh_token !== old",
                           arg=[TOKENS_KEY, first["refresh_token"]], timeout=15_000)
    renewed = page.evaluate(STORED_TOKENS)
    assert api.anonymous().get("/me", headers={"Authorization": f"Bearer {renewed['access_token']}"}).status == 200
    page.reload()
    expect(page.get_by_test_id("user-menu")).to_have_text(re.compile("张书记"))
    expect(page.get_by_test_id("org-switcher")).to_contain_text("第一支部")


def test_wrong_password_shows_the_chinese_error_and_stays_on_sign_in(api, console):
    org = api.org("第一支部")
    secretary = staff(api, org["id"], "张书记")
    console.expect_http_errors(401)
    page = console.open("/login")
    page.get_by_label("手机号").fill(secretary.phone)
    page.get_by_label("密码").fill("not-the-password")
    page.get_by_role("button", name="登录").click()
    expect(page.get_by_role("alert")).to_have_text(re.compile("手机号或密码错误"))
    expect(page).to_have_url(re.compile(r"/console/login"))
    assert page.evaluate(f"localStorage.getItem('{TOKENS_KEY}')") is None


def test_a_member_without_roles_sees_the_no_access_page(api, console):
    org = api.org("第一支部")
    member = staff(api, org["id"], "李明", role=None)
    page = console.open("/login")
    page.get_by_label("手机号").fill(member.phone)
    page.get_by_label("密码").fill(member.password)
    page.get_by_role("button", name="登录").click()
    expect(page.get_by_text("没有管理后台的访问权限")).to_be_visible()
    expect(page).to_have_url(console.url("/no-access"))
    page.goto(console.url("/"))  # the console itself stays closed to them
    expect(page).to_have_url(console.url("/no-access"))
    page.get_by_role("button", name="换个账号登录").click()
    expect(page).to_have_url(console.url("/login"))


def _signed_in_then_signed_out_by_the_server(api, console, tokens_then: str):
    """张书记 in the console, then their session ended on the server; the browser still holds its tokens,
    changed by the JavaScript `tokens_then` (on `t`), and the page's next request will get 401."""
    secretary = staff(api, api.org("第一支部")["id"], "张书记")
    page = console.enter_as(secretary)
    expect(page.get_by_test_id("user-menu")).to_be_visible()
    stored = page.evaluate(STORED_TOKENS)
    api.anonymous().ok("POST", "/auth/logout", 204, json={"refresh_token": stored["refresh_token"]},
                       headers={"Authorization": f"Bearer {stored['access_token']}"})
    page.evaluate(f"(() => {{ const t = {STORED_TOKENS}; {tokens_then};"
                  f" localStorage.setItem('{TOKENS_KEY}', JSON.stringify(t)); }})()")
    console.expect_http_errors(401)
    return secretary, page


def test_a_session_the_server_ended_goes_back_to_sign_in_and_returns_afterwards(api, console):
    # the access token is now refused too: the page's next request gets 401, the refresh is refused
    secretary, page = _signed_in_then_signed_out_by_the_server(api, console, "t.access_token = 'x.y.z'")
    page.goto(console.url("/no-such-page"))
    expect(page).to_have_url(re.compile(r"/console/login\?redirect="))
    page.get_by_label("手机号").fill(secretary.phone)
    page.get_by_label("密码").fill(secretary.password)
    page.get_by_role("button", name="登录").click()
    expect(page).to_have_url(console.url("/no-such-page"))


def test_an_unknown_page_answers_the_404_page(api, console):
    secretary = staff(api, api.org("第一支部")["id"], "张书记")
    page = console.enter_as(secretary, "/no-such-page/123")
    expect(page.get_by_text("页面不存在")).to_be_visible()  # item 9's 404 page, inside the console
    expect(page.get_by_test_id("user-menu")).to_be_visible()
    page.get_by_role("button", name="返回工作台").click()
    expect(page).to_have_url(console.url("/"))


def test_a_revoked_session_found_on_load_goes_to_sign_in(api, console):
    # as if the browser came back after the access token expired: the refresh is refused on load
    _, page = _signed_in_then_signed_out_by_the_server(api, console, "t.expires_at = Date.now() - 1000")
    page.goto(console.url("/"))
    expect(page).to_have_url(console.url("/login"))
    expect(page.get_by_role("button", name="登录")).to_be_visible()


def test_signing_out_in_one_tab_signs_out_the_others(api, console):
    org = api.org("第一支部")
    secretary = staff(api, org["id"], "张书记")
    first = console.sign_in(secretary)
    second = first.context.new_page()
    second.goto(console.url("/"))
    expect(second.get_by_test_id("user-menu")).to_have_text(re.compile("张书记"))
    first.get_by_test_id("user-menu").click()
    first.get_by_role("menuitem", name="退出登录").click()
    expect(second).to_have_url(console.url("/login"))


# -- item 1 and 2: the org switcher and the dashboard, in scope only -----------------------------------

def test_the_dashboard_shows_the_branch_of_its_organiser_and_never_another(api, console):
    general = api.org("机关总支", "general_branch")
    a = api.org("第一支部", "branch", general["id"])
    group = api.org("第一党小组", "group", a["id"])
    b = api.org("第二支部", "branch", general["id"])
    secretary_a = staff(api, a["id"], "张书记")
    secretary_b = staff(api, b["id"], "李书记")
    new_session(api, secretary_a.client, a["id"], title="一支部党小组会", start_in=timedelta(minutes=2))
    new_session(api, secretary_b.client, b["id"], title="二支部党小组会", start_in=timedelta(minutes=2))
    published(api, secretary_a.client, a["id"], title="一支部读书会", capacity=8)
    published(api, secretary_b.client, b["id"], title="二支部读书会")
    wang, zhao = api.member(group["id"], "王芳"), api.member(b["id"], "赵强")
    upcoming_a = new_session(api, secretary_a.client, a["id"], title="一支部党课", start_in=timedelta(days=10))
    upcoming_b = new_session(api, secretary_b.client, b["id"], title="二支部党课", start_in=timedelta(days=10))
    wang.ok("POST", "/study/requests", 201, json={"session_id": upcoming_a["id"], "kind": "leave", "reason": "出差"})
    zhao.ok("POST", "/study/requests", 201, json={"session_id": upcoming_b["id"], "kind": "leave", "reason": "休假"})
    api.admin.ok("PUT", f"/orgs/{general['id']}/settings", json={"member_warnings": True})  # off by default
    api.admin.ok("POST", f"/orgs/{general['id']}/warnings/scan", params={"period": this_month()})

    page = console.sign_in(secretary_a)
    switcher = page.get_by_test_id("org-switcher")
    expect(switcher).to_contain_text("第一支部")
    switcher.click()
    tree = page.get_by_role("tree")
    expect(tree).to_contain_text("第一党小组")  # the subtree they organise, as a tree
    expect(tree).not_to_contain_text("第二支部")
    expect(tree).not_to_contain_text("机关总支")
    page.keyboard.press("Escape")

    sessions = page.get_by_test_id("panel-sessions")
    expect(sessions).to_contain_text("一支部党小组会")
    activities = page.get_by_test_id("panel-activities")
    expect(activities).to_contain_text("一支部读书会")
    expect(activities).to_contain_text("0 / 8")
    expect(page.get_by_test_id("panel-compliance")).to_contain_text("0 / 2 人")  # 张书记 and 王芳, not 赵强
    requests = page.get_by_test_id("panel-requests")
    expect(requests).to_contain_text("一支部党课")
    warnings = page.get_by_test_id("panel-warnings")
    expect(warnings).to_contain_text("王芳")
    for panel in (sessions, activities, requests):
        expect(panel).not_to_contain_text("二支部")
    expect(warnings).not_to_contain_text("赵强")
    expect(warnings).not_to_contain_text("李书记")
    # the counts are what the API answers the same organiser
    monday = datetime.now(SHANGHAI).replace(hour=0, minute=0, second=0, microsecond=0)
    monday -= timedelta(days=monday.weekday())
    in_a = secretary_a.client.ok("GET", "/study/sessions", params={
        "org_id": a["id"], "from": monday.isoformat(), "to": (monday + timedelta(days=7)).isoformat()})["items"]
    assert [s["title"] for s in in_a] == ["一支部党小组会"]
    expect(page.get_by_test_id("count-sessions")).to_contain_text(str(len(in_a)))
    expect(page.get_by_test_id("panel-sessions").get_by_role("link", name="本周学习安排")).to_have_attribute(
        "href", "/console/study/sessions")


def test_an_admin_switches_org_and_the_dashboard_follows(api, console):
    a = api.org("第一支部")
    b = api.org("第二支部")
    admin = staff(api, api.root_org_id, "郑书记", role="admin")
    secretary_b = staff(api, b["id"], "李书记")
    new_session(api, secretary_b.client, b["id"], title="二支部党课", start_in=timedelta(minutes=2))
    page = console.sign_in(admin)
    expect(page.get_by_test_id("panel-sessions")).to_contain_text("二支部党课")
    page.get_by_test_id("org-switcher").click()
    page.get_by_role("tree").get_by_text(a["name"]).click()
    expect(page.get_by_role("heading", name=re.compile("第一支部"))).to_be_visible()
    expect(page.get_by_test_id("panel-sessions")).to_contain_text("本周没有学习安排")
    page.reload()  # the choice is remembered
    expect(page.get_by_role("heading", name=re.compile("第一支部"))).to_be_visible()


# -- item 10 and the serving of the build ---------------------------------------------------------------

def test_root_redirects_to_the_console(api, console_dist):
    for path in ("/", "/console"):
        answer = httpx.get(api.base_url + path, follow_redirects=False)
        assert answer.status_code == 302 and answer.headers["Location"] == "/console/"


def test_console_answers_carry_the_csp_and_cache_by_kind(api, console_dist):
    index = httpx.get(api.base_url + "/console/")
    csp = index.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-eval" not in csp and "default-src 'self'" in csp
    assert index.headers["Cache-Control"] == "no-cache"
    asset = re.search(r'src="(/console/assets/[^"]+\.js)"', index.text).group(1)
    cached = httpx.get(api.base_url + asset)
    assert cached.status_code == 200 and "immutable" in cached.headers["Cache-Control"]
    assert "max-age=31536000" in cached.headers["Cache-Control"]
    route = httpx.get(api.base_url + "/console/study/sessions/abc")  # a history-mode route
    assert route.status_code == 200 and route.text == index.text and route.headers["Cache-Control"] == "no-cache"
    assert httpx.get(api.base_url + "/console/assets/missing-0000.js").status_code == 404
    for sneaky in ("/console/assets/../../../server/config.py", "/console/assets/%2e%2e/%2e%2e/README.md",
                   "/console/..%2f..%2fREADME.md"):
        answer = httpx.get(api.base_url + sneaky)
        assert "BRANCHLINE" not in answer.text and "Branchline" not in answer.text, sneaky
    # the API is not the console's: its answers stay JSON
    assert "json" in httpx.get(api.base_url + "/api/v1/nothing").headers["Content-Type"]
    assert "inline" not in re.sub(r"style-src[^;]*", "", csp)  # no inline scripts anywhere


@pytest.mark.settings(console_dir=Path("/nonexistent/console/dist"))
def test_without_a_build_the_console_says_how_to_make_one_and_the_api_works(api):
    for path in ("/console/", "/console/members", "/docs"):
        answer = httpx.get(api.base_url + path)
        assert answer.status_code == 503
        assert "npm ci" in answer.text and "npm run build" in answer.text and "管理后台尚未构建" in answer.text
    assert httpx.get(api.base_url + "/healthz").json() == {"status": "ok"}
    assert api.admin.get("/me").status == 200


def test_docs_renders_the_api_reference(api, console):
    page = console.page
    page.goto(api.base_url + "/docs")
    expect(page.get_by_text("Branchline API").first).to_be_visible()
    expect(page.get_by_text("/api/v1/auth/password").first).to_be_visible()
    answer = httpx.get(api.base_url + "/docs")
    assert "unsafe-eval" not in answer.headers["Content-Security-Policy"]


def test_every_problem_code_has_a_chinese_sentence():
    table = (CONSOLE / "src" / "api" / "errors.ts").read_text(encoding="utf-8")
    messages = table[table.index("export const MESSAGES"):]
    sentences = dict(re.findall(r"^  (\w+): \"([^\"]+)\",$", messages, re.MULTILINE))
    missing = sorted(set(CODES) - set(sentences))
    assert not missing, f"console/src/api/errors.ts MESSAGES has no sentence for {missing}"
    assert all(re.search("[\u4e00-\u9fff]", sentences[code]) for code in CODES)


def test_the_committed_openapi_json_is_the_servers():
    committed = json.loads((CONSOLE / "openapi.json").read_text(encoding="utf-8"))
    assert committed == json.loads(json.dumps(openapi.build(ROUTES))), \
        "console/openapi.json is out of date: python -m server openapi > console/openapi.json && " \
        "(cd console && npm run types)"
