"""The demo's clock: every service reads `ctx.now()`, so placing an event in the past is moving the
context's clock there first (as tests move `api.clock`), never writing a time by hand."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from server.context import Context


class Timeline:
    """Times relative to the moment the demo started, in the org time zone, and travel between them."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.tz = ctx.settings.tz
        self.now = datetime.now(UTC).replace(microsecond=0)
        self.today = self.now.astimezone(self.tz).date()
        this_month = self.today.replace(day=1)
        self.last_month = (this_month - timedelta(days=1)).replace(day=1)
        self.last_month_label = f"{self.last_month:%Y-%m}"

    def at(self, day: date, hour: int, minute: int = 0) -> datetime:
        """`day` at hour:minute on the wall clock of the org time zone, as an aware UTC time."""
        return datetime.combine(day, time(hour, minute), self.tz).astimezone(UTC)

    def days_from_now(self, days: int, hour: int, minute: int = 0) -> datetime:
        return self.at(self.today + timedelta(days=days), hour, minute)

    def in_last_month(self, day: int, hour: int, minute: int = 0) -> datetime:
        return self.at(self.last_month.replace(day=day), hour, minute)

    def go(self, moment: datetime) -> None:
        """Make `ctx.now()` read `moment` (from now on, as time passes). Never beyond the real now:
        what has not happened yet is created now, with its times in the future."""
        real = datetime.now(UTC)
        self.ctx.clock.offset = min(moment, real) - real

    def back_to_now(self) -> None:
        self.ctx.clock.offset = timedelta(0)
