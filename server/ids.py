"""Opaque, roughly time-ordered string ids (ObjectId hex), and opaque list cursors."""

from __future__ import annotations

import base64
import binascii

from bson import ObjectId

from server.errors import invalid


def new_id() -> str:
    return str(ObjectId())


def encode_cursor(value: str) -> str:
    return base64.urlsafe_b64encode(value.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        return base64.urlsafe_b64decode(padded.encode()).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise invalid("cursor", "Malformed cursor.") from None
