"""Working-time arithmetic for service-level clocks, on a French calendar with public holidays.

Targets such as "acknowledge within 8 working hours" count only the landlord's opening hours:
weekdays, outside public holidays (the `holidays` library, with Alsace-Moselle and overseas
departments as subdivisions). Urgent categories use the continuous calendar instead (24/7).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import cached_property
from zoneinfo import ZoneInfo

import holidays

_MAX_DAYS_SCANNED = 3660  # ten years: a bound so bad input cannot loop for ever


@dataclass(frozen=True)
class WorkingCalendar:
    """Opening hours on working days in one time zone; `continuous` counts every minute."""

    opens: time = time(8, 0)
    closes: time = time(18, 0)
    weekdays: frozenset[int] = frozenset({0, 1, 2, 3, 4})
    timezone: str = "Europe/Paris"
    subdivision: str | None = None
    continuous: bool = False
    extra_closed_days: frozenset[date] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        if not self.continuous and self.opens >= self.closes:
            raise ValueError("opening time must be before closing time")
        if not self.continuous and not self.weekdays:
            raise ValueError("a working calendar needs at least one working weekday")

    @cached_property
    def _tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @cached_property
    def _holidays(self) -> holidays.HolidayBase:
        return holidays.France(subdiv=self.subdivision)

    def is_working_day(self, day: date) -> bool:
        """A weekday of the calendar that is neither a public holiday nor a closed day."""
        return (
            day.weekday() in self.weekdays
            and day not in self._holidays
            and day not in self.extra_closed_days
        )

    def _window(self, day: date) -> tuple[datetime, datetime]:
        return (
            datetime.combine(day, self.opens, tzinfo=self._tz),
            datetime.combine(day, self.closes, tzinfo=self._tz),
        )

    def _working_windows(self, start: datetime):
        """Working windows from the day of `start` onwards, in local time."""
        day = start.astimezone(self._tz).date()
        for _ in range(_MAX_DAYS_SCANNED):
            if self.is_working_day(day):
                yield self._window(day)
            day += timedelta(days=1)
        raise ValueError("no working time within ten years")

    def add(self, start: datetime, duration: timedelta) -> datetime:
        """The moment when `duration` of working time has elapsed after `start`."""
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        if duration < timedelta(0):
            raise ValueError("duration must not be negative")
        if self.continuous:
            return start + duration
        remaining = duration
        for opens, closes in self._working_windows(start):
            begin = max(opens, start)
            if begin >= closes:
                continue
            available = closes - begin
            if remaining <= available:
                return (begin + remaining).astimezone(start.tzinfo)
            remaining -= available
        raise AssertionError("unreachable: _working_windows raises when exhausted")

    def between(self, start: datetime, end: datetime) -> timedelta:
        """Working time elapsed from `start` to `end` (zero if `end` is not after `start`)."""
        if start.tzinfo is None or end.tzinfo is None:
            raise ValueError("datetimes must be timezone-aware")
        if end <= start:
            return timedelta(0)
        if self.continuous:
            return end - start
        total = timedelta(0)
        for opens, closes in self._working_windows(start):
            if opens >= end:
                break
            begin, finish = max(opens, start), min(closes, end)
            if finish > begin:
                total += finish - begin
        return total


CONTINUOUS = WorkingCalendar(continuous=True)
