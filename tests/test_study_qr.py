"""Rotating QR tokens and offline check-ins with the controllable clock: the window edge, the grace
window, a token from another session, a tampered token, the image for the projector."""

from __future__ import annotations

from datetime import timedelta
from xml.etree import ElementTree

from tests.builders import advance, checkin, iso, move_to, new_session, parse, study_world


def _open_session(api, w, **fields):
    """A session whose check-in window is open now (it starts in 10 min, the window opened 20 min ago)."""
    return new_session(api, w.organiser, w.branch["id"], start_in=timedelta(minutes=10), **fields)


def test_token_lives_one_window_plus_the_grace_window(api):
    w = study_world(api, members=3)
    first, second, third = w.members
    sid = _open_session(api, w)["id"]
    shown = w.organiser.ok("GET", f"/study/sessions/{sid}/qr")
    assert set(shown) == {"token", "expires_at", "refresh_in", "payload"}
    assert 1 <= shown["refresh_in"] <= 15 and shown["payload"] == f"branchline:study:{sid}:{shown['token']}"
    expires_at = parse(shown["expires_at"])
    assert timedelta(seconds=15) < expires_at - api.clock.now() <= timedelta(seconds=30)
    # The next window shows a new token; the old one still works (grace window) until expires_at.
    move_to(api, expires_at - timedelta(seconds=14.5))
    assert w.organiser.ok("GET", f"/study/sessions/{sid}/qr")["token"] != shown["token"]
    move_to(api, expires_at - timedelta(milliseconds=500))
    assert checkin(first, sid, shown["token"]).status == 201
    # At the edge it is expired.
    move_to(api, expires_at + timedelta(milliseconds=10))
    expired = checkin(second, sid, shown["token"])
    assert expired.status == 422 and expired.code == "qr_expired"
    far = checkin(second, sid, shown["token"].split(".")[0] + "0" + "." + shown["token"].split(".")[1])
    assert far.code == "qr_invalid"  # a window number that was never signed
    assert checkin(third, sid, w.organiser.ok("GET", f"/study/sessions/{sid}/qr")["token"]).status == 201


def test_forged_tampered_and_foreign_tokens_are_invalid(api):
    w = study_world(api, members=1)
    member = w.members[0]
    sid = _open_session(api, w)["id"]
    other = _open_session(api, w, title="另一个会")["id"]
    foreign = w.organiser.ok("GET", f"/study/sessions/{other}/qr")["token"]
    refused = checkin(member, sid, foreign)
    assert refused.status == 422 and refused.code == "qr_invalid"
    token = w.organiser.ok("GET", f"/study/sessions/{sid}/qr")["token"]
    window, mac = token.split(".")
    tampered = window + "." + ("A" if mac[0] != "A" else "B") + mac[1:]
    assert checkin(member, sid, tampered).code == "qr_invalid"
    assert checkin(member, sid, str(int(window) + 1) + "." + mac).code == "qr_invalid"  # another window's MAC
    assert checkin(member, sid, "not-a-token").code == "qr_invalid"
    assert checkin(member, sid, None).code == "qr_invalid"
    assert checkin(member, sid, "x" * 101).code == "invalid_request"  # bounded
    # Refusals leave no record; the genuine token then works.
    assert api.run(api.db["study_attendance"].count_documents({"session_id": sid})) == 0
    assert checkin(member, sid, token).status == 201


def test_qr_image_for_the_projector(api):
    w = study_world(api, members=1)
    sid = _open_session(api, w)["id"]
    svg = w.organiser.get(f"/study/sessions/{sid}/qr/image")
    assert svg.status == 200 and svg.headers["Content-Type"] == "image/svg+xml" and b"<svg" in svg.content
    # a standalone document in the SVG namespace: without it a browser's <img> draws nothing
    assert ElementTree.fromstring(svg.content).tag == "{http://www.w3.org/2000/svg}svg"
    png = w.organiser.get(f"/study/sessions/{sid}/qr/image?format=png")
    assert png.status == 200 and png.content.startswith(b"\x89PNG")
    assert w.organiser.get(f"/study/sessions/{sid}/qr/image?format=gif").code == "invalid_request"
    assert w.members[0].get(f"/study/sessions/{sid}/qr/image").code == "forbidden"
    assert w.outsider_organiser.get(f"/study/sessions/{sid}/qr/image").code == "session_not_found"


def test_offline_check_ins(api):
    w = study_world(api, members=4)
    first, second, third, fourth = w.members
    session = _open_session(api, w)
    sid = session["id"]
    scanned_at = api.clock.now()
    token = w.organiser.ok("GET", f"/study/sessions/{sid}/qr")["token"]
    # Two hours later, after the window closed, the phone gets network back.
    advance(api, hours=2)
    assert checkin(first, sid, token).code == "checkin_closed"  # without client_time it is judged now
    ok = checkin(first, sid, token, client_time=iso(scanned_at), device_id="p1")
    assert ok.status == 201 and ok.json["offline"] is True and ok.json["status"] == "present"
    assert parse(ok.json["checked_in_at"]) == parse(iso(scanned_at)).replace(
        microsecond=scanned_at.microsecond // 1000 * 1000)
    roster = w.organiser.ok("GET", f"/study/sessions/{sid}/attendance")
    assert roster["present"][0]["offline"] is True
    # The token must have been valid at client_time.
    late_claim = checkin(second, sid, token, client_time=iso(scanned_at + timedelta(minutes=5)))
    assert late_claim.code == "qr_expired"
    early_claim = checkin(second, sid, token, client_time=iso(scanned_at - timedelta(minutes=5)))
    assert early_claim.code == "qr_invalid"
    # client_time outside the check-in window.
    before = checkin(third, sid, token, client_time=iso(parse(session["checkin_opens_at"]) - timedelta(seconds=1)))
    assert before.code == "checkin_not_open"
    after = checkin(third, sid, token, client_time=iso(parse(session["checkin_closes_at"]) + timedelta(seconds=1)))
    assert after.code == "checkin_closed"
    assert checkin(third, sid, token, client_time=iso(api.clock.now() + timedelta(hours=1))).code \
        == "invalid_request"
    # More than 24 h after the scan: refused.
    advance(api, hours=22, minutes=1)
    stale = checkin(fourth, sid, token, client_time=iso(scanned_at))
    assert stale.status == 409 and stale.code == "checkin_closed"
    events = api.run(api.db["study_checkin_events"].find({"session_id": sid, "offline": True}).to_list())
    assert {e["result"] for e in events} >= {"ok", "qr_expired", "qr_invalid", "checkin_not_open", "checkin_closed"}
