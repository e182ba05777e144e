"""Demo bodies pass the request schemas first, as a client's would: the demo cannot store what the API
would refuse (a title too long, a time without an offset)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import msgspec


def checked(schema: type, values: dict[str, Any], *, keep: tuple[type, ...] = (datetime, date)) -> dict[str, Any]:
    """`values` validated by `schema`, then the fields as the handler hands them to the service: plain JSON
    values, except the types in `keep` (the study, activity and announcement handlers keep datetimes;
    the member and org handlers give ISO strings, `keep=()`)."""
    return msgspec.to_builtins(msgspec.convert(values, schema), builtin_types=keep)
