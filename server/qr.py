"""Rotating QR tokens, shared by study sessions and activities (DESIGN.md: "Rotating QR tokens").

A token is `<window>.<mac>`: the time window number and an HMAC-SHA256 over (purpose, resource id,
window) keyed by a per-resource secret that never leaves the server. A window lasts 15 s and the
previous window stays valid, so a token lives at most 30 s. A token made for another resource or
purpose fails the HMAC and is `qr_invalid`, as is a forged or malformed one; an old one is `qr_expired`.

Camera scan (API.md §10): with a link prefix configured (BRANCHLINE_QR_LINK_PREFIX, one registered in the
WeChat console under "扫普通链接二维码打开小程序"), what the organiser shows also carries `qr_text` = prefix +
token and the image encodes it, so WeChat's own camera opens the mini-program's check-in page with it. A
check-in then sends either the bare token or that whole text; `scanned_token` gives the token back.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from datetime import UTC, datetime, timedelta

import segno

from server.errors import ApiError

WINDOW_SECONDS = 15
# What make_token writes: a window number and 18 MAC bytes in base64url. Checked before anything else:
# str.isdigit() also takes "١٢" or "²", and compare_digest raises on non-ASCII text.
_TOKEN = re.compile(r"([0-9]{1,15})\.([A-Za-z0-9_-]{24})")


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def window_of(moment: datetime) -> int:
    return int(moment.timestamp()) // WINDOW_SECONDS


def _mac(secret: str, purpose: str, resource_id: str, window: int) -> str:
    digest = hmac.new(secret.encode(), f"{purpose}\0{resource_id}\0{window}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:18]).decode()


def make_token(secret: str, purpose: str, resource_id: str, window: int) -> str:
    return f"{window}.{_mac(secret, purpose, resource_id, window)}"


def current(secret: str, purpose: str, resource_id: str, now: datetime) -> dict:
    """The token to show now: `{token, expires_at, refresh_in}` (refresh_in: seconds to the next window)."""
    window = window_of(now)
    window_start = datetime.fromtimestamp(window * WINDOW_SECONDS, UTC)
    next_start = window_start + timedelta(seconds=WINDOW_SECONDS)
    return {
        "token": make_token(secret, purpose, resource_id, window),
        "expires_at": window_start + timedelta(seconds=2 * WINDOW_SECONDS),
        "refresh_in": max(1, int((next_start - now).total_seconds() + 0.999)),
    }


def verify(secret: str, purpose: str, resource_id: str, token: str, at: datetime) -> None:
    """Accept a token of the window containing `at` or the one before; raise qr_invalid or qr_expired."""
    match = _TOKEN.fullmatch(token)
    if match is None:
        raise ApiError(422, "qr_invalid", "This QR code is not valid.")
    window, mac = int(match[1]), match[2]
    if not hmac.compare_digest(mac, _mac(secret, purpose, resource_id, window)):
        raise ApiError(422, "qr_invalid", "This QR code is not valid for this event.")
    now_window = window_of(at)
    if window > now_window:
        raise ApiError(422, "qr_invalid", "This QR code is not valid yet.")
    if window < now_window - 1:
        raise ApiError(422, "qr_expired", "This QR code has expired; scan the code on the screen again.")


def payload(purpose: str, resource_id: str, token: str) -> str:
    """What the QR image encodes without a link prefix; the mini-program parses it and posts the token."""
    return f"branchline:{purpose}:{resource_id}:{token}"


def shown(secret: str, purpose: str, resource_id: str, now: datetime, link_prefix: str) -> dict:
    """What an organiser's QR answer carries: `current(...)` with its `payload`, and `qr_text` when a
    link prefix is configured."""
    token = current(secret, purpose, resource_id, now)
    out = {**token, "payload": payload(purpose, resource_id, token["token"])}
    if link_prefix:
        out["qr_text"] = link_prefix + token["token"]
    return out


def image(answer: dict, fmt: str) -> bytes:
    """The QR image of a `shown(...)` answer, svg or png: it encodes qr_text when there is one."""
    text = answer.get("qr_text") or answer["payload"]
    return render_svg(text) if fmt == "svg" else render_png(text)


def scanned_token(scanned: str, link_prefix: str) -> str:
    """The bare token in what a member's app sent: the token itself, or the whole qr_text of a camera scan
    (only with the configured prefix; anything else is left to `verify` to refuse)."""
    if link_prefix and scanned.startswith(link_prefix):
        return scanned[len(link_prefix):]
    return scanned


def render_svg(text: str) -> bytes:
    """A standalone SVG document: with its namespace, which a browser needs to draw it as an image
    (segno's svg_inline leaves it out, for SVG embedded in HTML)."""
    import io

    buffer = io.BytesIO()
    segno.make(text, error="m").save(buffer, kind="svg", xmldecl=False, scale=8, border=2)
    return buffer.getvalue()


def render_png(text: str) -> bytes:
    import io

    buffer = io.BytesIO()
    segno.make(text, error="m").save(buffer, kind="png", scale=10, border=2)
    return buffer.getvalue()
