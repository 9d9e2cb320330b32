"""Query filters of the faults list (an id out of scope simply matches nothing)."""

import django_filters

from api.telemetry.filters import UtcDateTimeFilter

from .models import OPEN_STATES, Fault, FaultStateKind, RuleOverride, Severity


class FaultFilter(django_filters.FilterSet):
    state = django_filters.MultipleChoiceFilter(choices=FaultStateKind.choices)
    severity = django_filters.MultipleChoiceFilter(choices=Severity.choices)
    rule = django_filters.CharFilter(max_length=40)
    category = django_filters.CharFilter(max_length=30)
    residence = django_filters.UUIDFilter(field_name="residence_id")
    building = django_filters.UUIDFilter(field_name="building_id")
    dwelling = django_filters.UUIDFilter(field_name="dwelling_id")
    device = django_filters.CharFilter(field_name="device__device_id", max_length=32)
    incident = django_filters.UUIDFilter(field_name="incident_id")
    is_open = django_filters.BooleanFilter(method="filter_open", label="Open (not closed)")
    raised_after = UtcDateTimeFilter(field_name="raised_at", lookup_expr="gte")
    raised_before = UtcDateTimeFilter(field_name="raised_at", lookup_expr="lt")

    class Meta:
        model = Fault
        fields = ["state", "severity", "rule", "residence", "building", "dwelling", "device"]

    def filter_open(self, queryset, name, value):
        if value is None:
            return queryset
        if value:
            return queryset.filter(state__in=OPEN_STATES)
        return queryset.exclude(state__in=OPEN_STATES)


class RuleOverrideFilter(django_filters.FilterSet):
    rule = django_filters.CharFilter(max_length=40)
    residence = django_filters.UUIDFilter(field_name="residence_id")
    device_model = django_filters.CharFilter(max_length=64)

    class Meta:
        model = RuleOverride
        fields = ["rule", "residence", "device_model"]
