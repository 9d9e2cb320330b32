"""Date-time input that the database can always store: aware, converted to UTC, in range.

An ISO 8601 value may carry any offset and any year; PostgreSQL refuses offsets beyond
±15:59 and converting a year-1 instant can overflow. Such input is a 400, never a 500.
"""

from datetime import UTC, datetime

import django_filters
from rest_framework import serializers

MIN_YEAR, MAX_YEAR = 1900, 2200


def in_range(value: datetime) -> datetime | None:
    """The instant in UTC, or None when it cannot be stored."""
    try:
        value = value.astimezone(UTC)
    except (OverflowError, ValueError):
        return None
    return value if MIN_YEAR <= value.year <= MAX_YEAR else None


class AwareDateTimeField(serializers.DateTimeField):
    """A DRF date-time field refusing instants outside 1900–2200."""

    default_error_messages = {"range": f"Give a date between {MIN_YEAR} and {MAX_YEAR}."}

    def to_internal_value(self, value):
        try:
            parsed = super().to_internal_value(value)
        except OverflowError:
            self.fail("invalid", format="YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z]")
        stored = in_range(parsed)
        if stored is None:
            self.fail("range")
        return stored


class AwareDateTimeFilter(django_filters.IsoDateTimeFilter):
    """An ISO 8601 filter value outside what can be stored matches nothing."""

    def filter(self, qs, value):
        if value in (None, ""):
            return qs
        stored = in_range(value)
        if stored is None:
            return qs.none()
        return super().filter(qs, stored)
