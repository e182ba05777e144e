"""Console benchmark: what a first visit downloads, and how long until the dashboard is usable.

Fills a fresh embedded database with `python -m server demo` (机关党委, five branches, 35 members,
sessions, activities, announcements, warnings), starts `python -m server` on it, and drives Debian's
Chromium headless on loopback. Prints, for one run:
- first-load size of the sign-in route and of the dashboard route (a signed-in first visit with an
  empty cache): the JS and CSS the browser fetched, raw and gzip (level 6, as Tornado compresses);
- time until the dashboard is interactive: from navigation start to every panel filled with its data
  and the chart drawn, cold (empty cache) and warm (a reload), as the admin (the whole committee) and
  as a branch secretary; median and range over the rounds.

    .venv/bin/python -m bench.bench_console [--rounds 5]

Needs console/dist (`cd console && npm ci && npm run build`) and /usr/bin/chromium.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx
from playwright.sync_api import Browser, Page, sync_playwright

from server.launcher import ServerProcess

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
PASSWORD = "bench-console-password"
TOKENS_KEY = "branchline.console.tokens"
#: The dashboard is interactive when every panel holds its data (no loading mask, every count filled) and
#: the chart has drawn its canvas.
READY = """() => document.querySelectorAll('[data-testid^="count-"] .count-value').length === 5
  && [...document.querySelectorAll('[data-testid^="count-"] .count-value')].every(e => e.textContent.trim() !== '–')
  && !document.querySelector('.el-loading-mask')
  && !!document.querySelector('[data-testid="panel-compliance"] canvas')"""



def fill_demo(data_dir: Path) -> dict[str, str]:
    """Run the demo command; answer the phones of the admin and of the first branch secretary."""
    out = subprocess.run([sys.executable, "-m", "server", "demo", "--data-dir", str(data_dir), "--password", PASSWORD],
                         cwd=ROOT, capture_output=True, text=True, timeout=600, check=True).stdout
    phones = re.findall(r"(管理员|组织者).*?手机号 phone (\d+)", out)
    return {"admin": next(p for role, p in phones if role == "管理员"),
            "organiser": next(p for role, p in phones if role == "组织者")}


class Server(ServerProcess):
    def __init__(self, data_dir: Path) -> None:
        super().__init__(["--data-dir", str(data_dir)], env={**os.environ, "BRANCHLINE_LOG_LEVEL": "WARNING"})

    def tokens(self, phone: str) -> dict:
        body = httpx.post(self.base_url + "/api/v1/auth/password", json={"phone": phone, "password": PASSWORD})
        body.raise_for_status()
        return body.json()


class Downloads:
    """The JS and CSS a page fetched over the network, raw and gzip."""

    def __init__(self, page: Page) -> None:
        self.files: dict[str, bytes] = {}
        page.on("response", self._on_response)

    def _on_response(self, response) -> None:
        url = response.url.split("?")[0]
        if url.endswith((".js", ".css")) and response.status == 200 and not response.from_service_worker:
            self.files[url] = response.body()

    def sizes(self, kind: str) -> tuple[int, int]:
        bodies = [b for u, b in self.files.items() if u.endswith(kind)]
        return sum(len(b) for b in bodies), sum(len(gzip.compress(b, 6)) for b in bodies)

    def report(self, label: str) -> None:
        js, js_gz = self.sizes(".js")
        css, css_gz = self.sizes(".css")
        print(f"  {label:<22} JS {js / 1024:7.1f} KiB ({js_gz / 1024:6.1f} KiB gzip) in "
              f"{sum(u.endswith('.js') for u in self.files)} files; CSS {css / 1024:6.1f} KiB "
              f"({css_gz / 1024:5.1f} KiB gzip); total gzip {(js_gz + css_gz) / 1024:.1f} KiB")


def signed_in_context(browser: Browser, server: Server, phone: str):
    """A context with an empty cache whose pages start signed in (the tokens the API answered)."""
    answer = server.tokens(phone)
    context = browser.new_context(viewport={"width": 1440, "height": 900}, locale="zh-CN",
                                  timezone_id="Asia/Shanghai")
    stored = {"access_token": answer["access_token"], "refresh_token": answer["refresh_token"],
              "member": answer["member"], "expires_at": 0}
    # an init script is the browser's own, outside the page's CSP; it runs before the console starts
    context.add_init_script(f"""if (!localStorage.getItem({json.dumps(TOKENS_KEY)})) {{
      const t = {json.dumps(stored)}; t.expires_at = Date.now() + {answer['expires_in']} * 1000;
      localStorage.setItem({json.dumps(TOKENS_KEY)}, JSON.stringify(t)); }}""")
    return context


def time_to_interactive(page: Page) -> float:
    page.wait_for_function(READY, polling="raf", timeout=60_000)
    return page.evaluate("() => performance.now()")


def first_load(browser: Browser, server: Server, phone: str) -> None:
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    downloads = Downloads(page)
    page.goto(server.base_url + "/console/login")
    page.get_by_role("button", name="登录").wait_for()
    downloads.report("sign-in route")
    context.close()

    context = signed_in_context(browser, server, phone)
    page = context.new_page()
    downloads = Downloads(page)
    page.goto(server.base_url + "/console/")
    time_to_interactive(page)
    downloads.report("dashboard route")
    context.close()


def interactive_times(browser: Browser, server: Server, phone: str, rounds: int) -> tuple[list[float], list[float]]:
    cold, warm = [], []
    for _ in range(rounds):
        context = signed_in_context(browser, server, phone)
        page = context.new_page()
        page.goto(server.base_url + "/console/")
        cold.append(time_to_interactive(page))
        page.reload()
        warm.append(time_to_interactive(page))
        context.close()
    return cold, warm


def summary(values: list[float]) -> str:
    return f"median {statistics.median(values):6.0f} ms (range {min(values):.0f}–{max(values):.0f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if not (ROOT / "console" / "dist" / "index.html").is_file():
        raise SystemExit("console/dist is missing: cd console && npm ci && npm run build")
    with tempfile.TemporaryDirectory(prefix="bench-console-") as tmp:
        print("filling the demo organisation (python -m server demo) ...")
        phones = fill_demo(Path(tmp))
        server = Server(Path(tmp))
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
                print("first load, empty cache:")
                first_load(browser, server, phones["organiser"])
                print(f"time until the dashboard is interactive ({args.rounds} rounds, loopback):")
                for who in ("admin", "organiser"):
                    cold, warm = interactive_times(browser, server, phones[who], args.rounds)
                    print(f"  {who:<10} cold {summary(cold)}; warm {summary(warm)}")
                browser.close()
        finally:
            server.stop()


if __name__ == "__main__":
    main()
