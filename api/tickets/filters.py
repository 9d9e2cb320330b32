"""Query filters of the requests, appointments, incidents and categories lists.

Ids are plain UUIDs: an id out of the caller's scope simply matches nothing.
"""

import django_filters
from django.db.models import Q
from django.utils import timezone

from .fields import SafeDateTimeFilter
from .models import (
    OPEN_STATUSES,
    Appointment,
    AppointmentStatus,
    Category,
    Incident,
    IncidentStatus,
    PlaceKind,
    Priority,
    Source,
    Status,
    Ticket,
    WaitingReason,
)


def overdue_q(now=None) -> Q:
    """Past a target and still being handled (not while waiting)."""
    now = now or timezone.now()
    return Q(status__in=OPEN_STATUSES - {Status.WAITING}) & (
        Q(acknowledged_at__isnull=True, acknowledge_due_at__lt=now) | Q(resolve_due_at__lt=now)
    )


class TicketFilter(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=Status.choices)
    open = django_filters.BooleanFilter(method="filter_open", label="Still being handled")
    priority = django_filters.MultipleChoiceFilter(choices=Priority.choices)
    source = django_filters.MultipleChoiceFilter(choices=Source.choices)
    place_kind = django_filters.ChoiceFilter(choices=PlaceKind.choices)
    waiting_reason = django_filters.ChoiceFilter(choices=WaitingReason.choices)
    category = django_filters.UUIDFilter(field_name="category_id")
    category_family = django_filters.UUIDFilter(
        method="filter_family", label="A category and everything below it"
    )
    agency = django_filters.UUIDFilter(field_name="residence__agency_id")
    residence = django_filters.UUIDFilter(field_name="residence_id")
    building = django_filters.UUIDFilter(field_name="building_id")
    entrance = django_filters.UUIDFilter(field_name="entrance_id")
    dwelling = django_filters.UUIDFilter(field_name="dwelling_id")
    common_area = django_filters.UUIDFilter(field_name="common_area_id")
    team = django_filters.UUIDFilter(field_name="assigned_team_id")
    contractor = django_filters.UUIDFilter(field_name="assigned_contractor_id")
    assignee = django_filters.UUIDFilter(field_name="assignee_id")
    unassigned = django_filters.BooleanFilter(method="filter_unassigned")
    incident = django_filters.UUIDFilter(field_name="incident_id")
    overdue = django_filters.BooleanFilter(method="filter_overdue")
    created_after = SafeDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = SafeDateTimeFilter(field_name="created_at", lookup_expr="lt")
    updated_after = SafeDateTimeFilter(field_name="updated_at", lookup_expr="gte")

    class Meta:
        model = Ticket
        fields = ["status", "priority", "source", "place_kind"]

    def filter_open(self, queryset, name, value):
        if value is None:
            return queryset
        condition = Q(status__in=OPEN_STATUSES)
        return queryset.filter(condition) if value else queryset.exclude(condition)

    def filter_family(self, queryset, name, value):
        from .selectors import category_subtree_ids

        category = Category.objects.filter(pk=value).first()
        if category is None:
            return queryset.none()
        return queryset.filter(category_id__in=category_subtree_ids(category))

    def filter_unassigned(self, queryset, name, value):
        condition = Q(
            assigned_team__isnull=True, assigned_contractor__isnull=True, assignee__isnull=True
        )
        if value is None:
            return queryset
        return queryset.filter(condition) if value else queryset.exclude(condition)

    def filter_overdue(self, queryset, name, value):
        if value is None:
            return queryset
        return queryset.filter(overdue_q()) if value else queryset.exclude(overdue_q())


class AppointmentFilter(django_filters.FilterSet):
    ticket = django_filters.UUIDFilter(field_name="ticket_id")
    status = django_filters.MultipleChoiceFilter(choices=AppointmentStatus.choices)
    starts_after = SafeDateTimeFilter(field_name="starts_at", lookup_expr="gte")
    starts_before = SafeDateTimeFilter(field_name="starts_at", lookup_expr="lt")
    residence = django_filters.UUIDFilter(field_name="ticket__residence_id")
    key_with_caretaker = django_filters.BooleanFilter()

    class Meta:
        model = Appointment
        fields = ["ticket", "status", "key_with_caretaker"]


class IncidentFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=IncidentStatus.choices)
    residence = django_filters.UUIDFilter(field_name="residence_id")
    building = django_filters.UUIDFilter(field_name="building_id")
    category = django_filters.UUIDFilter(field_name="category_id")

    class Meta:
        model = Incident
        fields = ["status", "residence", "building", "category"]


class CategoryFilter(django_filters.FilterSet):
    parent = django_filters.UUIDFilter(field_name="parent_id")
    root = django_filters.BooleanFilter(field_name="parent", lookup_expr="isnull")
    place = django_filters.ChoiceFilter(
        choices=[("dwelling", "Dwelling"), ("common_area", "Common areas")],
        method="filter_place",
    )
    code = django_filters.CharFilter()

    class Meta:
        model = Category
        fields = ["parent", "code"]

    def filter_place(self, queryset, name, value):
        if value == "dwelling":
            return queryset.filter(in_dwelling=True)
        return queryset.filter(in_common_areas=True)
