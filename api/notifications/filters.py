"""Query filters of the notifications lists (plain UUIDs: an id out of scope matches nothing)."""

import django_filters
from django.db.models import Q

from .fields import AwareDateTimeFilter
from .models import (
    AlertStatus,
    Broadcast,
    BroadcastKind,
    BroadcastStatus,
    HouseholdReach,
    Notification,
    OnCallShift,
    TeamAlert,
)


class NotificationFilter(django_filters.FilterSet):
    unread = django_filters.BooleanFilter(field_name="read_at", lookup_expr="isnull")
    critical = django_filters.BooleanFilter()
    event = django_filters.CharFilter()
    since = AwareDateTimeFilter(field_name="created_at", lookup_expr="gte")

    class Meta:
        model = Notification
        fields = ["unread", "critical", "event", "since"]


class BroadcastFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=BroadcastStatus.choices)
    kind = django_filters.ChoiceFilter(choices=BroadcastKind.choices)
    critical = django_filters.BooleanFilter()
    residence = django_filters.UUIDFilter(method="filter_residence")

    class Meta:
        model = Broadcast
        fields = ["status", "kind", "critical", "residence"]

    def filter_residence(self, queryset, name, value):
        return queryset.filter(
            Q(residence_id=value)
            | Q(building__residence_id=value)
            | Q(entrance__building__residence_id=value)
        )


class HouseholdReachFilter(django_filters.FilterSet):
    batch = django_filters.UUIDFilter()
    broadcast = django_filters.UUIDFilter(field_name="broadcast_id")
    residence = django_filters.UUIDFilter(field_name="dwelling__entrance__building__residence_id")
    building = django_filters.UUIDFilter(field_name="dwelling__entrance__building_id")
    entrance = django_filters.UUIDFilter(field_name="dwelling__entrance_id")
    reached = django_filters.BooleanFilter(
        field_name="reached_at", lookup_expr="isnull", exclude=True
    )
    visited = django_filters.BooleanFilter(
        field_name="visited_at", lookup_expr="isnull", exclude=True
    )

    class Meta:
        model = HouseholdReach
        fields = ["batch", "broadcast", "residence", "building", "entrance", "reached", "visited"]


class TeamAlertFilter(django_filters.FilterSet):
    team = django_filters.UUIDFilter(field_name="team_id")
    status = django_filters.ChoiceFilter(choices=AlertStatus.choices)
    critical = django_filters.BooleanFilter()

    class Meta:
        model = TeamAlert
        fields = ["team", "status", "critical"]


class OnCallShiftFilter(django_filters.FilterSet):
    team = django_filters.UUIDFilter(field_name="team_id")
    user = django_filters.UUIDFilter(field_name="user_id")
    active_at = AwareDateTimeFilter(method="filter_active_at")

    class Meta:
        model = OnCallShift
        fields = ["team", "user", "active_at"]

    def filter_active_at(self, queryset, name, value):
        return queryset.filter(starts_at__lte=value, ends_at__gt=value)
