"""Check-in by WeChat's own camera (API.md §10): with BRANCHLINE_QR_LINK_PREFIX the QR answers carry
`qr_text` = prefix + token and the images encode it; check-ins take the bare token or that whole text,
for study sessions and activities alike. Without the prefix nothing changes."""

from __future__ import annotations

from datetime import timedelta

import pytest

from server import qr
from server.config import Settings
from tests.builders import activity_checkin, advance, checkin, new_session, published, study_world

PREFIX = "https://dj.example.gov.cn/q/"


def _shown_with_image(organiser, path: str, fmt: str) -> tuple[dict, bytes]:
    """The QR answer and the image of the same window (the token rotates every 15 s: ask again when the
    two reads straddled a window)."""
    while True:
        before = organiser.ok("GET", path + "/qr")
        image = organiser.get(path + f"/qr/image?format={fmt}")
        assert image.status == 200, image
        if organiser.ok("GET", path + "/qr")["token"] == before["token"]:
            return before, image.content


@pytest.mark.settings(qr_link_prefix=PREFIX)
def test_study_session_qr_carries_the_link_and_check_in_takes_either_form(api):
    w = study_world(api, members=3)
    first, second, third = w.members
    sid = new_session(api, w.organiser, w.branch["id"], start_in=timedelta(minutes=10))["id"]
    path = f"/study/sessions/{sid}"
    shown = w.organiser.ok("GET", path + "/qr")
    assert shown["qr_text"] == PREFIX + shown["token"]
    assert shown["payload"] == f"branchline:study:{sid}:{shown['token']}"  # the app's own scanner still works
    for fmt, render in (("svg", qr.render_svg), ("png", qr.render_png)):
        answer, image = _shown_with_image(w.organiser, path, fmt)
        assert image == render(answer["qr_text"]) and image != render(answer["payload"])

    assert checkin(first, sid, shown["qr_text"]).status == 201  # what WeChat's camera handed to the app
    assert checkin(second, sid, shown["token"]).status == 201  # what the app's scanner read
    # Only the configured prefix is taken off; another link, or the prefix around a bad token, is refused.
    assert checkin(third, sid, "https://evil.example/q/" + shown["token"]).code == "qr_invalid"
    assert checkin(third, sid, PREFIX + "123.forged").code == "qr_invalid"
    assert checkin(third, sid, PREFIX).code == "qr_invalid"
    assert checkin(third, sid, PREFIX + shown["token"] + "x" * 60).code == "invalid_request"  # bounded
    # The token inside the link expires as the bare one does; a link for another session is refused.
    other = new_session(api, w.organiser, w.branch["id"], start_in=timedelta(minutes=10), title="另一个会")["id"]
    assert checkin(third, sid, w.organiser.ok("GET", f"/study/sessions/{other}/qr")["qr_text"]).code == "qr_invalid"
    advance(api, seconds=3 * qr.WINDOW_SECONDS)
    assert checkin(third, sid, shown["qr_text"]).code == "qr_expired"
    assert checkin(third, sid, w.organiser.ok("GET", path + "/qr")["qr_text"]).status == 201
    # Refusals are the same for the outsider: a link does not open another branch's session.
    assert w.outsider_organiser.get(path + "/qr").code == "session_not_found"
    assert first.get(path + "/qr").code == "forbidden"


@pytest.mark.settings(qr_link_prefix=PREFIX)
def test_activity_qr_carries_the_link_and_check_in_takes_either_form(api):
    branch = api.org("一支部")
    organiser = api.organiser(branch["id"])
    ann, bob, cat = (api.member(branch["id"], name) for name in ("安", "博", "凯"))
    path = f"/activities/{published(api, organiser, branch['id'])['id']}"
    for member in (ann, bob, cat):
        member.ok("POST", path + "/signups", 201)
    advance(api, organiser, ann, bob, cat, days=2)
    shown = organiser.ok("GET", path + "/qr")
    assert shown["qr_text"] == PREFIX + shown["token"]
    answer, image = _shown_with_image(organiser, path, "svg")
    assert image == qr.render_svg(answer["qr_text"])
    assert ann.ok("POST", path + "/checkins", 201, json={"qr_token": shown["qr_text"]})["result"] == "ok"
    assert activity_checkin(organiser, bob, path)["result"] == "ok"  # the bare token
    assert cat.post(path + "/checkins", json={"qr_token": "http://x/" + shown["token"]}).code == "qr_invalid"
    assert cat.post(path + "/checkins", json={"qr_token": "y" * 101}).code == "invalid_request"
    assert ann.ok("POST", path + "/checkins", 200, json={"qr_token": shown["qr_text"]})["result"] \
        == "already_checked_in"


def test_without_a_prefix_nothing_changes(api):
    w = study_world(api, members=1)
    sid = new_session(api, w.organiser, w.branch["id"], start_in=timedelta(minutes=10))["id"]
    shown = w.organiser.ok("GET", f"/study/sessions/{sid}/qr")
    assert "qr_text" not in shown
    answer, image = _shown_with_image(w.organiser, f"/study/sessions/{sid}", "svg")
    assert image == qr.render_svg(answer["payload"])
    # A link is not a token when no prefix is configured.
    assert checkin(w.members[0], sid, PREFIX + shown["token"]).code == "qr_invalid"
    assert checkin(w.members[0], sid, shown["token"]).status == 201


def test_the_prefix_is_bounded_at_start_up():
    with pytest.raises(ValueError, match="QR_LINK_PREFIX"):
        Settings(qr_link_prefix="https://dj.example.gov.cn/" + "q" * 60)
    with pytest.raises(ValueError, match="QR_LINK_PREFIX"):
        Settings(qr_link_prefix="https://dj.example.gov.cn/q /")
    with pytest.raises(ValueError, match="CONTENT_CHECK"):
        Settings(content_check="maybe")
