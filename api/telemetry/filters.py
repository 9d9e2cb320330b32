"""Query filters of the telemetry lists (an id out of scope simply matches nothing)."""

from datetime import UTC

import django_filters
from django import forms
from django_filters.fields import IsoDateTimeField

from . import selectors
from .models import Device, DeviceKind, DeviceStatus, Quarantine


class DeviceFilter(django_filters.FilterSet):
    residence = django_filters.UUIDFilter(method="filter_residence")
    building = django_filters.UUIDFilter(method="filter_building")
    dwelling = django_filters.UUIDFilter(field_name="equipment__dwelling_id")
    equipment = django_filters.UUIDFilter(field_name="equipment_id")
    status = django_filters.ChoiceFilter(choices=DeviceStatus.choices)
    kind = django_filters.ChoiceFilter(choices=DeviceKind.choices)

    class Meta:
        model = Device
        fields = ["residence", "building", "dwelling", "equipment", "status", "kind"]

    def filter_residence(self, queryset, name, value):
        return queryset.filter(selectors.residence_q(value))

    def filter_building(self, queryset, name, value):
        return queryset.filter(selectors.building_q(value))


class UtcDateTimeField(IsoDateTimeField):
    """An ISO 8601 instant, in UTC, between the years 2000 and 2999 (the database's range
    for offsets and dates is narrower than Python's)."""

    def to_python(self, value):
        value = super().to_python(value)
        if value is None:
            return value
        try:
            value = value.astimezone(UTC)
        except (OverflowError, ValueError) as error:
            raise forms.ValidationError("Not a valid instant.", code="invalid") from error
        if not 2000 <= value.year <= 2999:
            raise forms.ValidationError("Years 2000 to 2999 only.", code="invalid")
        return value


class UtcDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UtcDateTimeField


class QuarantineFilter(django_filters.FilterSet):
    reason = django_filters.CharFilter()
    device_ref = django_filters.CharFilter()
    received_after = UtcDateTimeFilter(field_name="received_at", lookup_expr="gte")
    received_before = UtcDateTimeFilter(field_name="received_at", lookup_expr="lt")

    class Meta:
        model = Quarantine
        fields = ["reason", "device_ref", "received_after", "received_before"]
