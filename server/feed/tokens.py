"""Sync tokens: what a token holds, signing and checking it.

Sync tokens are signed (`encode_token`): the org, positions and org lists in them decide whose
item ids a sync names, so a client cannot write its own. A token of another epoch of the counter,
or beyond it, is void (`_void`) and answers 410 sync_token_expired.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

import msgspec

from server.context import Context
from server.errors import ApiError, invalid
from server.feed.sequence import FeedState, state


class Token(msgspec.Struct, array_like=True):
    m: str  # member
    o: str  # the member's org when issued (a move changes what they may see)
    s: int  # position: every change with seq <= s is delivered (or not due in this mode)
    b: int  # base: below it, only items in `x` still need delivering
    x: str | list[str] | None = None  # None: plain changes; "*": first snapshot; [orgs]: newly visible orgs
    d: list[str] | None = None  # after a move: orgs whose items still need a delete (before anything else)
    k: str = ""  # ... the last item id deleted so far (they go in _id order)
    e: str = ""  # the counter's epoch when issued (set by encode_token)


_token_encoder = msgspec.json.Encoder()
_token_decoder = msgspec.json.Decoder(Token)


def _token_key(ctx: Context) -> bytes:
    st = state(ctx)
    if st.token_key is None:
        secret = (ctx.settings.jwt_secret or "").encode()
        st.token_key = hashlib.sha256(b"branchline sync token\0" + secret).digest()
    return st.token_key


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode((text + "=" * (-len(text) % 4)).encode())


def encode_token(ctx: Context, token: Token) -> str:
    """The token, signed: its org, orgs to add or delete and positions decide which items' ids a
    sync names, so a client must not be able to write its own (every API process shares the key)."""
    body = _token_encoder.encode(msgspec.structs.replace(token, e=state(ctx).epoch))
    mac = hmac.new(_token_key(ctx), body, hashlib.sha256).digest()[:16]
    return f"{_b64(body)}.{_b64(mac)}"


def decode_token(ctx: Context, raw: str) -> Token:
    body_text, _, mac_text = raw.partition(".")
    try:
        body = _unb64(body_text)
        if not hmac.compare_digest(_unb64(mac_text), hmac.new(_token_key(ctx), body, hashlib.sha256).digest()[:16]):
            raise ValueError("bad signature")
        token = _token_decoder.decode(body)
    except (ValueError, msgspec.DecodeError):
        raise invalid("since", "Malformed sync token.") from None
    if token.s < 0 or token.b < 0:
        raise invalid("since", "Malformed sync token.")
    return token


def _expired() -> ApiError:
    return ApiError(410, "sync_token_expired", "This sync token is too old; sync again without `since`.")


def _void(st: FeedState, token: Token) -> bool:
    """Issued in another epoch, or beyond the committed counter: it describes lost history."""
    return token.e != st.epoch or max(token.s, token.b) > st.latest
