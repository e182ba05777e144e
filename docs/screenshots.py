"""Retake the screenshots of docs/console.md, in headless Chromium, of the real console on the demo organisation.

Fills a fresh embedded database in a temporary directory with `python -m server demo`, starts `python -m server`
on it, signs in through the console's sign-in page as the demo's administrator and as a branch secretary, and
saves one PNG (1440x900) per page into docs/screenshots/. Each shot waits for the page's own content first.

    .venv/bin/python docs/screenshots.py

Needs console/dist (`cd console && npm ci && npm run build`), /usr/bin/chromium and fonts-noto-cjk.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script: the repository's packages
from server.launcher import ServerProcess  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "screenshots"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
PASSWORD = "docs-screenshots-password"
# "  组织者 organiser  周建华  办公室党支部  手机号 phone 158...  密码 password ..." → role, name, phone
ACCOUNT = re.compile(r"^\s+(管理员 admin|组织者 organiser)\s+(\S+)\s+\S+\s+手机号 phone (\d+)", re.MULTILINE)
#: A chart is drawn when its canvas is the same picture two polls in a row (ECharts animates the bars in).
CANVAS_STILL = """(selector) => {
  const canvas = document.querySelector(selector + ' canvas');
  if (!canvas || !canvas.width) return false;
  const now = canvas.toDataURL(), before = window.__lastCanvas;
  window.__lastCanvas = now;
  return before === now;
}"""
# Import report: a good row and two that the importer refuses (a gender it does not know, a date that does not exist).
IMPORT_CSV = ("\ufeff姓名,手机号,性别,出生日期,政治面貌,标签\n"
              "宋佳宁,13912345678,女,1992-03-14,正式党员,青年\n"
              "马文涛,13912340001,未知,1988-07-02,预备党员,\n"
              "邓丽君,13987654321,女,1990-02-30,群众,\n")

SHANGHAI = ZoneInfo("Asia/Shanghai")  # the browser's time zone, and the demo's periods

expect.set_options(timeout=30_000)



def environment() -> dict[str, str]:
    """No bootstrap administrator (the demo wants an empty database) and no other BRANCHLINE_ settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRANCHLINE_")}
    return {**env, "BRANCHLINE_LOG_LEVEL": "WARNING"}


def fill_demo(data_dir: Path) -> dict[str, str]:
    """Run the demo command; answer the phones of the administrator and of the first branch secretary."""
    out = subprocess.run([sys.executable, "-m", "server", "demo", "--data-dir", str(data_dir), "--password", PASSWORD],
                         cwd=ROOT, env=environment(), capture_output=True, text=True, timeout=600, check=True).stdout
    accounts = ACCOUNT.findall(out)
    return {"admin": next(phone for role, _, phone in accounts if role.startswith("管理员")),
            "organiser": next(phone for role, _, phone in accounts if role.startswith("组织者"))}


class Server(ServerProcess):
    """`python -m server` on the demo's data dir."""

    def __init__(self, data_dir: Path) -> None:
        super().__init__(["--data-dir", str(data_dir)], env=environment())

    def get(self, token: str, path: str, **params) -> dict:
        answer = httpx.get(f"{self.base_url}/api/v1{path}", params=params, timeout=30,
                           headers={"Authorization": f"Bearer {token}"})
        answer.raise_for_status()
        return answer.json()

    def token(self, phone: str) -> str:
        answer = httpx.post(self.base_url + "/api/v1/auth/password", json={"phone": phone, "password": PASSWORD})
        answer.raise_for_status()
        return answer.json()["access_token"]

    def everything(self, token: str, path: str, **params) -> list[dict]:
        items, cursor = [], None
        while True:
            page = self.get(token, path, limit=100, **params, **({"cursor": cursor} if cursor else {}))
            items += page["items"]
            cursor = page["next_cursor"]
            if not cursor:
                return items


def at(timestamp: str) -> datetime:
    return datetime.fromisoformat(timestamp)


def last_month() -> str:
    """Last month as the compliance page's month picker writes it: "2026 年 11 月"."""
    today = datetime.now(SHANGHAI)
    year, month = (today.year, today.month - 1) if today.month > 1 else (today.year - 1, 12)
    return f"{year} 年 {month} 月"


class Examples:
    """Which session, activity, announcement and warning the detail pages show: the most telling of the demo's."""

    def __init__(self, server: Server, phone: str) -> None:
        token = server.token(phone)
        now = datetime.now(UTC)
        sessions = [s for s in server.everything(token, "/study/sessions") if s["status"] != "cancelled"]
        past = [s for s in sessions if at(s["ends_at"]) < now]
        self.session = max(past, key=lambda s: at(s["ends_at"]))["id"]
        live = [s for s in sessions if at(s["checkin_opens_at"]) <= now < at(s["ends_at"])]
        self.live_session = live[0]["id"]
        activities = server.everything(token, "/activities")
        self.activity = max((a for a in activities if a["status"] == "published"),
                            key=lambda a: (a["waitlist_count"], a["confirmed_count"]))["id"]
        announcements = server.everything(token, "/announcements", status="live")
        self.announcement = next((a for a in announcements if a["must_read"]), announcements[0])["id"]


def shoot(page: Page, name: str, *ready: Locator, chart: str | None = None) -> None:
    """Wait for the page's content (its locators visible, no loading mask, the chart drawn), then save it."""
    for locator in ready:
        expect(locator.first).to_be_visible()
    expect(page.locator(".el-loading-mask:visible")).to_have_count(0)
    if chart:
        page.wait_for_function(CANVAS_STILL, arg=chart, polling=250, timeout=30_000)
    page.mouse.move(0, 0)  # no hover highlight on whatever is under the pointer
    page.screenshot(path=str(OUT / f"{name}.png"), animations="disabled")
    print(f"  docs/screenshots/{name}.png")


def signed_in(browser: Browser, server: Server, phone: str, before: Callable[[Page], None] | None = None) -> Page:
    """A fresh browser signed in through the sign-in page; `before` sees the filled-in form."""
    context = browser.new_context(viewport={"width": 1440, "height": 900}, device_scale_factor=1, locale="zh-CN",
                                  timezone_id="Asia/Shanghai", reduced_motion="reduce")
    page = context.new_page()
    page.goto(server.base_url + "/console/login")
    page.get_by_label("手机号").fill(phone)
    page.get_by_label("密码").fill(PASSWORD)
    if before:
        before(page)
    page.get_by_role("button", name="登录").click()
    expect(page).not_to_have_url(re.compile(r"/console/login"))
    return page


def admin_pages(page: Page, url: Callable[[str], str], ex: Examples) -> None:
    shoot(page, "dashboard", page.get_by_test_id("panel-sessions").get_by_role("listitem"),
          page.get_by_test_id("panel-activities").get_by_role("listitem"), chart='[data-testid="panel-compliance"]')

    page.goto(url("/members"))
    shoot(page, "members", page.get_by_test_id("org-tree").get_by_role("treeitem"),
          page.get_by_test_id("member-table").locator("tbody tr"))

    page.goto(url("/study/sessions"))
    shoot(page, "study-sessions", page.locator(".el-table tbody tr"))
    page.get_by_role("radio", name="周历").check(force=True)
    shoot(page, "study-week", page.get_by_test_id("week-calendar"))

    page.goto(url(f"/study/sessions/{ex.session}"))
    shoot(page, "study-attendance", page.locator(".el-table tbody tr"))

    page.goto(url("/study/requests"))
    shoot(page, "study-requests", page.locator(".el-table tbody tr"))

    page.goto(url("/study/compliance"))
    # Last month: the demo's study lies in the weeks before today, so it is a whole month even on the 1st.
    picker = page.get_by_role("combobox", name="统计时间")
    picker.fill(last_month())
    picker.press("Enter")
    picker.blur()
    shoot(page, "study-compliance", page.get_by_test_id("org-table").locator("tbody tr"),
          chart='[data-testid="compliance-chart"]')

    page.goto(url("/study/scheme"))
    page.get_by_role("button", name=re.compile("编辑制度|为本组织自定制度")).click()
    shoot(page, "study-scheme", page.get_by_role("button", name="保存为本组织制度"))

    page.goto(url("/activities"))
    shoot(page, "activities", page.get_by_test_id("activities").locator("tbody tr"))

    page.goto(url(f"/activities/{ex.activity}"))
    shoot(page, "activity-roster", page.get_by_test_id("roster-confirmed").locator("tbody tr"))

    page.goto(url("/announcements"))
    shoot(page, "announcements", page.locator(".el-table tbody tr"))

    page.goto(url(f"/announcements/{ex.announcement}"))
    receipts = page.get_by_test_id("unread-members")
    receipts.scroll_into_view_if_needed()
    shoot(page, "announcement-receipts", page.get_by_test_id("read-count"), receipts.locator("tbody tr"))

    page.goto(url("/warnings"))
    page.get_by_role("tab", name="全部").click()
    rows = page.get_by_test_id("warning-table").locator("tbody tr")
    shoot(page, "warnings", rows.filter(has_text="已销号"), rows.filter(has_text="整改中"))
    rows.filter(has_text="整改中").first.get_by_role("button", name="详情").click()
    history = page.get_by_role("dialog", name="预警详情").get_by_test_id("warning-history")
    shoot(page, "warning-history", history.locator(".el-timeline-item").nth(1))

    page.goto(url("/notifications/templates"))
    shoot(page, "notification-templates", page.get_by_test_id("template-table").locator("tbody tr"))

    page.goto(url("/audit"))
    shoot(page, "audit", page.get_by_test_id("audit-table").locator("tbody tr"), page.get_by_test_id("change"))

    page.goto(url(f"/projector/session/{ex.live_session}"))
    shoot(page, "projector", page.get_by_test_id("projector-qr"), page.get_by_test_id("latest-arrivals"))


def organiser_pages(page: Page, url: Callable[[str], str]) -> None:
    page.goto(url("/members"))
    expect(page.get_by_test_id("member-table").locator("tbody tr").first).to_be_visible()
    page.get_by_role("button", name="批量导入").click()
    dialog = page.get_by_role("dialog", name=re.compile("批量导入成员"))
    dialog.locator("input[type=file]").set_input_files(
        {"name": "成员.csv", "mimeType": "text/csv", "buffer": IMPORT_CSV.encode("utf-8")})
    dialog.get_by_role("button", name="开始导入").click()
    shoot(page, "member-import", dialog.get_by_test_id("import-errors").locator("tbody tr"))


def main() -> None:
    if not (ROOT / "console" / "dist" / "index.html").is_file():
        raise SystemExit("console/dist is missing: cd console && npm ci && npm run build")
    OUT.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="console-screenshots-") as tmp:
        print("filling the demo organisation (python -m server demo) ...")
        phones = fill_demo(Path(tmp))
        server = Server(Path(tmp))
        try:
            examples = Examples(server, phones["admin"])

            def url(path: str) -> str:
                return f"{server.base_url}/console{path}"

            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
                print("as the administrator:")
                page = signed_in(browser, server, phones["admin"],
                                 before=lambda p: shoot(p, "sign-in", p.get_by_role("button", name="登录")))
                admin_pages(page, url, examples)
                page.goto(server.base_url + "/docs")
                shoot(page, "api-docs", page.locator(".swagger-ui .opblock"))
                print("as a branch secretary:")
                organiser_pages(signed_in(browser, server, phones["organiser"]), url)
                browser.close()
        finally:
            server.stop()


if __name__ == "__main__":
    main()
