"""Shared body types: the base classes, problem+json, small value types, and the answers that more than one
capability gives (one class each, so each has one clean OpenAPI component name)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

import msgspec


class Body(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A request body: unknown fields are rejected (API.md §1), times are bounded (see `Timestamp`)."""

    def __post_init__(self) -> None:
        # msgspec has no bounds for datetimes: every one a body holds is a Timestamp, checked here,
        # where decoding (and msgspec.convert) runs for each Struct, nested ones included.
        for name in self.__struct_fields__:
            value = getattr(self, name)
            if isinstance(value, datetime):
                check_timestamp(name, value)


def sent_fields(body: msgspec.Struct, *, dates_as_text: bool = False) -> dict[str, Any]:
    """The fields of a decoded `body` the client sent (unset ones left out), nested bodies as dicts, for a
    service. Times and dates stay datetime and date objects, for services that compare and store them;
    `dates_as_text` gives their RFC 3339 text instead (a member's birth_date is stored so)."""
    return msgspec.to_builtins(body, builtin_types=() if dates_as_text else (datetime, date))


class Out(msgspec.Struct, kw_only=True):
    """A response body."""


class FieldError(Out):
    field: str
    message: str


class Problem(Out):
    """RFC 9457 problem details; `code` is the stable constant clients switch on."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    errors: list[FieldError] | None = None
    request_id: str | None = None


class Status(Out):
    status: str


class FieldInvalid(ValueError):
    """Raised by a Body check: msgspec turns it into a ValidationError located at the Struct, and
    APIHandler.decode reads `field` from it (its __cause__) to name the field inside that Struct."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


#: The end of every schema pattern. msgspec matches with re.search, where `$` also matches before a
#: final "\n" ("abc\n" passed `^[a-z]+$`); `(?!\n)` closes that gap. Not \Z, which the OpenAPI
#: document would carry to ECMA-262 validators that lack it.
END = r"$(?!\n)"


def whole(body: str) -> str:
    """A pattern that `body` must match from the first character to the last."""
    return f"^{body}{END}"


# -- texts ------------------------------------------------------------------------------------------
# No text accepts C0 or C1 control characters (most cannot even be written to an xlsx file, and
# they garble logs and screens), bidi overrides and isolates (they reorder what an organiser reads:
# a name can pose as another) or lone surrogates. Long texts keep tab and line feed.
ALWAYS_REFUSED = r"\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff"
LINE_REFUSED = r"\x00-\x1f" + ALWAYS_REFUSED
TEXT_REFUSED = r"\x00-\x08\x0b-\x1f" + ALWAYS_REFUSED
LINE_PATTERN = whole(f"[^{LINE_REFUSED}]*")
TEXT_PATTERN = whole(f"[^{TEXT_REFUSED}]*")
#: What decode() says instead of quoting the patterns above.
PATTERN_MESSAGES = {LINE_PATTERN: "text without control characters, line breaks or bidi overrides",
                    TEXT_PATTERN: "text without control characters or bidi overrides"}


def line(max_length: int, min_length: int = 1) -> Any:
    """One line of text (a name, a title): no control characters at all."""
    return Annotated[str, msgspec.Meta(min_length=min_length, max_length=max_length, pattern=LINE_PATTERN)]


def text(max_length: int, min_length: int = 0) -> Any:
    """Free text (a description, a note): as `line`, but tabs and line breaks are kept."""
    return Annotated[str, msgspec.Meta(min_length=min_length, max_length=max_length, pattern=TEXT_PATTERN)]


def token(max_length: int, alphabet: str = "A-Za-z0-9_-") -> Any:
    """An opaque machine string (an id, a code, a token): only `alphabet`, so it never needs escaping."""
    return Annotated[str, msgspec.Meta(min_length=1, max_length=max_length, pattern=whole(f"[{alphabet}]+"))]


# -- times ------------------------------------------------------------------------------------------
# Years a real event can have. Beyond the datetime range's edges an offset alone overflows the
# conversion to UTC (9999-12-31T23:59:59-23:59); bounding the year as written leaves a day of margin.
FIRST_YEAR, LAST_YEAR = 2000, 2100

#: Every time a body or a query takes (API.md §1: "RFC 3339 strings with an offset").
Timestamp = Annotated[datetime, msgspec.Meta(tz=True, description=f"RFC 3339 with an offset, years "
                                                                  f"{FIRST_YEAR}..{LAST_YEAR}")]


def check_timestamp(field: str, value: datetime) -> None:
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise FieldInvalid(field, f"Expected a time in the years {FIRST_YEAR}..{LAST_YEAR}")


Name = line(100)
ShortText = line(200)
LongText = text(20000)
Id = token(64)
# Phones as people write them; server.members.normalise_phone makes the stored form (and counts the digits).
Phone = Annotated[str, msgspec.Meta(min_length=6, max_length=32, pattern=whole(r"\+?[0-9][0-9 -]*"),
                                    description="6 to 15 digits, optional leading +; spaces and dashes are ignored")]
Password = Annotated[str, msgspec.Meta(min_length=10, max_length=128)]
Tag = line(40)
#: The shape is checked by server.qr (a malformed token is `qr_invalid`, like a forged one).
# The bare token (about 40 characters) or a camera scan's whole qr_text: the link prefix is held to
# server.config.QR_LINK_PREFIX_MAX characters so that the two fit.
QrToken = Annotated[str, msgspec.Meta(max_length=100)]
# server/content_check.py: how WeChat's content check judged a member's text (None: passed, or not checked
# because the check is off); "review" and "unchecked" texts are stored and shown flagged to organisers.
ContentFlag = Literal["review", "unchecked"] | None
Gender = Literal["male", "female"]
PartyStatus = Literal["full", "probationary", "none"]
Role = Literal["organiser", "admin"]
OrgKind = Literal["committee", "general_branch", "branch", "group"]
Day = date
FileIds = Annotated[list[Id], msgspec.Meta(max_length=20)]


# -- answers shared by capabilities -----------------------------------------------------------------

class QrOut(Out):  # the rotating check-in token of an activity or a study session (server/qr.py)
    token: str
    expires_at: datetime
    refresh_in: int
    payload: str
    # BRANCHLINE_QR_LINK_PREFIX + token, only when the prefix is configured: what the image then encodes
    qr_text: str | None = None
