"""The one source of "now" for every rule (so tests can move time without sleeping), and `to_ms`, the one
cut of a time to the precision MongoDB keeps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class Clock:
    """Wall clock in UTC, with an offset that only tests change."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, **delta: float) -> None:
        self.offset += timedelta(**delta)


def to_ms(moment: datetime | None) -> datetime | None:
    """UTC, cut to the millisecond BSON keeps, so what we answer and compare equals what a later read
    finds. None stays None; a naive time is refused (it would be read as the server's local time)."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        raise ValueError("stored times must be timezone-aware")
    return moment.astimezone(UTC).replace(microsecond=moment.microsecond // 1000 * 1000)
