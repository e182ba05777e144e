"""The projector page in a real browser (console issue item 5), for a study session and for an activity:
the QR on screen is one the API accepts, it is replaced after `refresh_in`, a check-in made through the
API shows in the live counts within 5 s; it rides out an access-token expiry (the server's clock moves
past it) and a network blip (the browser goes offline, then back)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from server.qr import window_of
from tests.builders import advance, checkin, new_session, published
from tests.console.conftest import staff

# Run alone, after the parallel tests (README): it the live count must move within 5 s.
pytestmark = pytest.mark.solo

SHOTS = "/tmp/c-study-shots"
LIVE = 5_000  # counts move within 5 s of a check-in
ROTATE = 20_000  # a window is 15 s; the page asks again just after refresh_in


def _shown_token(page) -> str:
    qr = page.get_by_test_id("projector-qr")
    expect(qr).to_have_attribute("data-token", re.compile(r"^\d+\."))
    # the picture is really drawn: decoded at its size (25+ modules at 8 px each), and drawn onto a
    # white canvas it is a QR's mix of dark and light, not a blank or broken image
    page.wait_for_function(_DRAWN, arg=qr.element_handle())
    return qr.get_attribute("data-token")


_DRAWN = """el => {
  if (!el.complete || el.naturalWidth < 200) return false;
  const canvas = document.createElement("canvas");
  canvas.width = el.naturalWidth;
  canvas.height = el.naturalHeight;
  const g = canvas.getContext("2d");
  g.fillStyle = "#fff";
  g.fillRect(0, 0, canvas.width, canvas.height);
  g.drawImage(el, 0, 0);
  const px = g.getImageData(0, 0, canvas.width, canvas.height).data;
  let dark = 0;
  for (let i = 0; i < px.length; i += 4) if (px[i] < 128) dark += 1;
  const share = dark / (px.length / 4);
  return share > 0.2 && share < 0.8;
}"""


def _next_token(page, previous: str) -> str:
    expect(page.get_by_test_id("projector-qr")).not_to_have_attribute("data-token", previous, timeout=ROTATE)
    return _shown_token(page)


def _token_of_window(page, window: int) -> str:
    """The token the page shows once it has one of `window` (or later); a token names its window. (A
    rotation that came just before the server's clock moved does not count: that token is long expired.)"""
    page.wait_for_function("([el, w]) => parseInt(el.dataset.token, 10) >= w",
                           arg=[page.get_by_test_id("projector-qr").element_handle(), window], timeout=ROTATE)
    return _shown_token(page)


def test_the_session_projector_rotates_its_qr_and_counts_check_ins_live(api, console):
    branch = api.org("第一支部")
    secretary = staff(api, branch["id"], "张书记")
    early, second, late = (api.member(branch["id"], n) for n in ("李明", "王芳", "赵强"))
    session = new_session(api, secretary.client, branch["id"], title="学习贯彻全会精神",
                          start_in=timedelta(minutes=10))
    page = console.enter_as(secretary, f"/projector/session/{session['id']}")
    expect(page.get_by_test_id("projector-title")).to_have_text("学习贯彻全会精神")
    expect(page.get_by_test_id("count-expected")).to_have_text("4")
    expect(page.get_by_test_id("count-checked-in")).to_have_text("0")
    # no sidebar: the page is full-screen
    expect(page.get_by_text("学习安排")).to_have_count(0)

    # the QR on screen is one the API takes; the check-in shows within 5 s with the arrival's name
    first = _shown_token(page)
    assert checkin(early, session["id"], first).status == 201
    expect(page.get_by_test_id("count-checked-in")).to_have_text("1", timeout=LIVE)
    expect(page.get_by_test_id("latest-arrivals")).to_contain_text("李明", timeout=LIVE)

    # after refresh_in the page shows the next token, which works too; its picture is the API's SVG
    with page.expect_response(lambda r: "/qr/image" in r.url, timeout=ROTATE) as picture:
        rotated = _next_token(page, first)
    assert picture.value.headers["content-type"].startswith("image/svg+xml")
    assert checkin(second, session["id"], rotated).status == 201
    expect(page.get_by_test_id("count-checked-in")).to_have_text("2", timeout=LIVE)
    page.screenshot(path=f"{SHOTS}/projector-session.png")

    # 20 minutes on: the page's access token has expired on the server, the session has started. The
    # page refreshes its token (a 401, then /auth/refresh), shows a QR of the new time, counts the late.
    console.expect_http_errors(401)
    advance(api, secretary.client, late, minutes=20)
    now_token = _token_of_window(page, window_of(api.clock.now()))
    assert checkin(late, session["id"], now_token).json["status"] == "late"
    expect(page.get_by_test_id("count-checked-in")).to_have_text("3", timeout=LIVE)
    expect(page.get_by_test_id("count-late")).to_have_text("1", timeout=LIVE)
    expect(page.get_by_test_id("latest-arrivals").locator("li").first).to_contain_text("赵强")
    expect(page.get_by_test_id("reconnecting")).to_have_count(0)

    roster = secretary.client.ok("GET", f"/study/sessions/{session['id']}/attendance")
    assert roster["counts"] == {"present": 2, "late": 1, "leave": 0, "absent": 1}


def test_the_projector_keeps_its_qr_through_a_network_blip_and_heals(api, console):
    branch = api.org("第一支部")
    secretary = staff(api, branch["id"], "张书记")
    member = api.member(branch["id"], "李明")
    session = new_session(api, secretary.client, branch["id"], start_in=timedelta(minutes=10))
    page = console.enter_as(secretary, f"/projector/session/{session['id']}")
    before = _shown_token(page)

    page.context.set_offline(True)
    expect(page.get_by_test_id("reconnecting")).to_be_visible(timeout=LIVE)
    # the last QR stays on screen while it is still accepted
    expect(page.get_by_test_id("projector-qr")).to_be_visible()
    assert page.get_by_test_id("projector-qr").get_attribute("data-token") == before
    page.screenshot(path=f"{SHOTS}/projector-offline.png")
    page.context.set_offline(False)
    expect(page.get_by_test_id("reconnecting")).to_have_count(0, timeout=ROTATE)

    token = _shown_token(page)
    assert checkin(member, session["id"], token).status == 201
    expect(page.get_by_test_id("count-checked-in")).to_have_text("1", timeout=LIVE)
    # the offline fetches were logged by the browser as failed loads: expected here, nothing else is
    console.errors[:] = [e for e in console.errors if "ERR_INTERNET_DISCONNECTED" not in e]


def test_the_activity_projector_counts_an_activity_check_in(api, console):
    branch = api.org("一支部")
    secretary = staff(api, branch["id"], "张书记")
    member = api.member(branch["id"], "王芳", gender="female")
    activity = published(api, secretary.client, branch["id"], title="红色观影")
    path = f"/activities/{activity['id']}"
    member.ok("POST", path + "/signups", 201)
    advance(api, secretary.client, member, days=2)  # the activity has started: check-in is open

    page = console.enter_as(secretary, f"/projector/activity/{activity['id']}")
    expect(page.get_by_test_id("projector-title")).to_have_text("红色观影")
    expect(page.get_by_test_id("count-expected")).to_have_text("1")
    expect(page.get_by_test_id("count-checked-in")).to_have_text("0")
    expect(page.get_by_test_id("count-late")).to_have_count(0)  # activities have no late arrivals

    token = _shown_token(page)
    assert member.ok("POST", path + "/checkins", 201, json={"qr_token": token})["status"] == "present"
    expect(page.get_by_test_id("count-checked-in")).to_have_text("1", timeout=LIVE)
    expect(page.get_by_test_id("latest-arrivals")).to_contain_text("王芳", timeout=LIVE)
    page.screenshot(path=f"{SHOTS}/projector-activity.png")
    _next_token(page, token)

    roster = secretary.client.ok("GET", path + "/signups")
    assert roster["counts"]["present"] == 1
