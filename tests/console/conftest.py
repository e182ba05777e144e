"""Browser tests of the console: Playwright for Python driving Debian's Chromium against the `api` fixture
(a real server on the real embedded database, which also serves console/dist at /console/).

- `console_dist`: console/dist built from the current sources (`npm ci` when node_modules is missing,
  `npm run build` when dist is missing or older than a source file); a failure fails the test with
  npm's output, never a skip.
- `browser`: one headless Chromium for the session.
- `console`: a fresh browser context and page for one test, pointed at the test's server. Any error in
  the browser's console or an uncaught exception fails the test at teardown, except the HTTP failures
  the test said it expects (`console.expect_http_errors(401)`).
- `staff(api, org_id, ...)`: a member with a known phone and password (and roles), for signing in;
  `console.sign_in(person)` signs them in through the sign-in form, `console.enter_as(person)` by putting
  the tokens the API answered into localStorage (faster, for tests about other pages; also to switch the
  page from one member to another).

Write tests as an organiser works: locators by role and text (`page.get_by_role("button", name="保存")`)
and `expect(...)` for what must appear; then check the outcome through the API.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, expect, sync_playwright

from tests.conftest import Api, Client

ROOT = Path(__file__).resolve().parents[2]
CONSOLE = ROOT / "console"
CHROMIUM = os.environ.get("BRANCHLINE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
#: What decides whether dist is current: everything `npm run build` reads.
BUILD_INPUTS = ["src", "public", "index.html", "docs.html", "vite.config.ts", "tsconfig.json", "package-lock.json",
                "openapi.json"]
STAFF_PASSWORD = "console-password-123"
TOKENS_KEY = "branchline.console.tokens"
#: Where `enter_as` waits while it swaps tokens: answered by the test itself, never by the server.
BLANK_PATH = "/__console-test-blank__"
#: Its own icon, so that the browser asks the server for no /favicon.ico (a 404, logged as an error).
BLANK_PAGE = '<!doctype html><link rel="icon" href="data:,">'

expect.set_options(timeout=10_000)


def _newest_input() -> float:
    newest = 0.0
    for name in BUILD_INPUTS:
        path = CONSOLE / name
        if path.is_file():
            newest = max(newest, path.stat().st_mtime)
        elif path.is_dir():
            newest = max([newest, *(p.stat().st_mtime for p in path.rglob("*") if p.is_file())])
    return newest


def _npm(*args: str) -> None:
    try:
        done = subprocess.run(["npm", *args], cwd=CONSOLE, capture_output=True, text=True, timeout=900)
    except subprocess.TimeoutExpired:
        pytest.fail(f"`npm {' '.join(args)}` in console/ took over 15 minutes", pytrace=False)
    if done.returncode != 0:
        pytest.fail(f"`npm {' '.join(args)}` in console/ failed ({done.returncode}):\n"
                    f"{(done.stdout + done.stderr)[-4000:]}", pytrace=False)


@pytest.fixture(scope="session")
def console_dist() -> Path:
    dist = CONSOLE / "dist"
    # Each pytest-xdist worker has its own session: one builds while the others wait, then find it fresh.
    with open(CONSOLE / ".build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _built(dist)


def _built(dist: Path) -> Path:
    index = dist / "index.html"
    if index.is_file() and index.stat().st_mtime >= _newest_input():
        return dist
    if shutil.which("npm") is None:
        pytest.fail("console/dist is missing or stale and npm is not installed: install Node 20+ and npm, then "
                    "run `cd console && npm ci && npm run build`", pytrace=False)
    if not (CONSOLE / "node_modules").is_dir():
        _npm("ci", "--no-audit", "--no-fund")
    _npm("run", "build")
    if not index.is_file():
        pytest.fail("`npm run build` finished but console/dist/index.html is missing", pytrace=False)
    return dist


@pytest.fixture(scope="package")
def browser() -> Browser:
    """One Chromium for the browser tests, stopped when they are done: while Playwright's sync API runs,
    the main thread counts as inside an event loop, and every later test's asyncio.run() would fail."""
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: `apt-get install chromium fonts-noto-cjk` (.ci/run does it)",
                    pytrace=False)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@dataclass
class Person:
    """A member who can sign in: their API client, phone and password."""

    client: Client
    phone: str
    password: str

    @property
    def id(self) -> str:
        return self.client.id

    @property
    def name(self) -> str:
        return self.client.member["name"]


def staff(api: Api, org_id: str, name: str = "书记", *, roles: list[dict] | None = None,
          role: str | None = "organiser", password: str = STAFF_PASSWORD) -> Person:
    """A member of `org_id` with a password, created through the API as the admin. By default an organiser
    of `org_id`; `role=None` for a plain member, `roles=[...]` for anything else."""
    phone = api.phone()
    body = api.admin.ok("POST", "/members", 201, json={
        "name": name, "phone": phone, "org_id": org_id, "gender": "male", "birth_date": "1985-06-01",
        "party_status": "full", "tags": []})
    grants = roles if roles is not None else ([{"role": role, "org_id": org_id}] if role else [])
    if grants:
        body = api.admin.ok("PUT", f"/members/{body['id']}/roles", json={"roles": grants})
    api.admin.ok("PUT", f"/members/{body['id']}/password", 204, json={"password": password})
    return Person(api.as_member(body), phone, password)


@dataclass
class ConsolePage:
    """One test's browser page on the console of the test's server."""

    page: Page
    base_url: str
    api: Api
    errors: list[str] = field(default_factory=list)
    allowed_statuses: set[int] = field(default_factory=set)

    def url(self, path: str = "/") -> str:
        """The address of a console route: url("/members") is /console/members."""
        return f"{self.base_url}/console{path}"

    def open(self, path: str = "/") -> Page:
        self.page.goto(self.url(path))
        return self.page

    def expect_http_errors(self, *statuses: int) -> None:
        """The browser logs every 4xx/5xx answer as a console error: these statuses are expected here."""
        self.allowed_statuses.update(statuses)

    def sign_in(self, person: Person) -> Page:
        """Sign in through the form, as a person would, and wait to leave the sign-in page."""
        page = self.open("/login")
        page.get_by_label("手机号").fill(person.phone)
        page.get_by_label("密码").fill(person.password)
        page.get_by_role("button", name="登录").click()
        expect(page).not_to_have_url(re.compile(r"/console/login"))
        return page

    def enter_as(self, person: Person, path: str = "/") -> Page:
        """Be signed in as `person` without the form: the tokens POST /auth/password answers, in localStorage."""
        body = self.api.anonymous().ok("POST", "/auth/password",
                                       json={"phone": person.phone, "password": person.password})
        stored = {"access_token": body["access_token"], "refresh_token": body["refresh_token"],
                  "expires_at": None, "member": body["member"]}
        # Leave the console first: a signed-in page's own requests (GET /me on load, a refresh) would
        # otherwise write the previous member's tokens back over these. A blank page of the same origin runs
        # none of the console's code and still reaches its localStorage.
        blank = f"{self.base_url}{BLANK_PATH}"
        self.page.route(blank, lambda route: route.fulfill(content_type="text/html", body=BLANK_PAGE))
        try:
            self.page.goto(blank)
        finally:
            self.page.unroute(blank)
        self.page.evaluate("([key, value, seconds]) => { value.expires_at = Date.now() + seconds * 1000;"
                           " localStorage.clear(); localStorage.setItem(key, JSON.stringify(value)); }",
                           [TOKENS_KEY, stored, body["expires_in"]])
        return self.open(path)

    def check_errors(self) -> list[str]:
        unexpected = []
        for text in self.errors:
            status = re.search(r"status of (\d{3})", text)
            if status and int(status.group(1)) in self.allowed_statuses:
                continue
            unexpected.append(text)
        return unexpected


@pytest.fixture
def console(api: Api, browser: Browser, console_dist: Path):
    context = browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai", viewport={"width": 1366, "height": 800})
    page = context.new_page()
    view = ConsolePage(page, api.base_url, api)

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            view.errors.append(f"console error: {message.text} ({message.location.get('url', '')})")

    page.on("console", on_console)
    page.on("pageerror", lambda error: view.errors.append(f"uncaught: {error}"))
    yield view
    unexpected = view.check_errors()
    context.close()
    assert not unexpected, "errors in the browser:\n" + "\n".join(unexpected)
