"""The console's shell in a real browser: signing in and staying in, who may use it, the org switcher,
the dashboard, the error pages, /docs, and how the server serves the build (console issue items 1, 2, 9, 10)."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.console.conftest import TOKENS_KEY, staff


def test_sign_in_survives_a_reload_and_sign_out_ends_it(api, console):
    org = api.org("第一支部")
    secretary = staff(api, org["id"], "张书记")
    page = console.sign_in(secretary)
    expect(page).to_have_url(console.url("/"))
    expect(page.get_by_test_id("user-menu")).to_have_text(re.compile("张书记"))

    page.reload()
    expect(page.get_by_test_id("user-menu")).to_have_text(re.compile("张书记"))
    expect(page).to_have_url(console.url("/"))

    stored = page.evaluate(f"JSON.parse(localStorage.getItem('{TOKENS_KEY}'))")
    page.get_by_test_id("user-menu").click()
    page.get_by_role("menuitem", name="退出登录").click()
    expect(page).to_have_url(console.url("/login"))
    assert page.evaluate(f"localStorage.getItem('{TOKENS_KEY}')") is None
    # signing out revoked the refresh token on the server
    refused = api.anonymous().post("/auth/refresh", json={"refresh_token": stored["refresh_token"]})
    assert refused.status == 401
