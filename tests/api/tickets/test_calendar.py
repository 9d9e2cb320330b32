"""Working-time arithmetic on the French calendar."""

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.tickets.calendar import CONTINUOUS, WorkingCalendar

PARIS = ZoneInfo("Europe/Paris")
CAL = WorkingCalendar()


def at(y, m, d, hh=0, mm=0):
    return datetime(y, m, d, hh, mm, tzinfo=PARIS)


def test_friday_evening_request_is_due_on_monday():
    # 8 working hours from Friday 16:00: 2 h on Friday, 6 h on Monday.
    assert CAL.add(at(2026, 11, 20, 16), timedelta(hours=8)) == at(2026, 11, 23, 14)


def test_public_holidays_do_not_count():
    # Wednesday 11 November 2026 is Armistice Day.
    assert CAL.add(at(2026, 11, 10, 17), timedelta(hours=2)) == at(2026, 11, 12, 9)
    assert CAL.between(at(2026, 11, 10, 18), at(2026, 11, 12, 8)) == timedelta(0)


def test_alsace_moselle_has_saint_stephen():
    # Tuesday 26 December 2028 is a holiday in Moselle only.
    assert not WorkingCalendar(subdivision="57").is_working_day(date(2028, 12, 26))
    assert WorkingCalendar().is_working_day(date(2028, 12, 26))


def test_start_outside_hours_begins_at_opening():
    assert CAL.add(at(2026, 11, 23, 6), timedelta(hours=1)) == at(2026, 11, 23, 9)


def test_continuous_calendar_counts_every_minute():
    start = at(2026, 12, 24, 22)
    assert CONTINUOUS.add(start, timedelta(hours=4)) == start + timedelta(hours=4)


def test_daylight_saving_change_keeps_working_hours_local():
    # Clocks go back on Sunday 25 October 2026; Monday still opens at 08:00 local.
    assert CAL.add(at(2026, 10, 23, 17), timedelta(hours=2)) == at(2026, 10, 26, 9)


def test_naive_datetimes_are_refused():
    with pytest.raises(ValueError, match="aware"):
        CAL.add(datetime(2026, 1, 5, 9), timedelta(hours=1))


def test_invalid_calendar_is_refused():
    with pytest.raises(ValueError, match="before closing"):
        WorkingCalendar(opens=time(18), closes=time(8))


moments = st.datetimes(
    min_value=datetime(2024, 1, 1), max_value=datetime(2030, 12, 31), timezones=st.just(UTC)
)
durations = st.timedeltas(min_value=timedelta(0), max_value=timedelta(hours=200))


@given(start=moments, duration=durations)
def test_between_inverts_add(start, duration):
    due = CAL.add(start, duration)
    assert due >= start
    assert CAL.between(start, due) == duration


@given(start=moments, duration=durations)
def test_due_time_falls_within_opening_hours(start, duration):
    due = CAL.add(start, duration).astimezone(PARIS)
    if duration > timedelta(0):
        assert CAL.is_working_day(due.date())
        assert time(8) < due.time() <= time(18)
