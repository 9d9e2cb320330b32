"""Query filters of the news feed."""

import django_filters
from django.db.models import Q

from api.notifications.fields import AwareDateTimeFilter

from .models import Post, PostKind


class PostFilter(django_filters.FilterSet):
    kind = django_filters.ChoiceFilter(choices=PostKind.choices)
    project = django_filters.CharFilter()
    residence = django_filters.UUIDFilter(method="filter_residence")
    building = django_filters.UUIDFilter(method="filter_building")
    entrance = django_filters.UUIDFilter(field_name="entrance_id")
    requires_acknowledgement = django_filters.BooleanFilter()
    since = AwareDateTimeFilter(field_name="publish_at", lookup_expr="gte")

    class Meta:
        model = Post
        fields = [
            "kind",
            "project",
            "residence",
            "building",
            "entrance",
            "requires_acknowledgement",
        ]

    def filter_residence(self, queryset, name, value):
        return queryset.filter(
            Q(residence_id=value)
            | Q(building__residence_id=value)
            | Q(entrance__building__residence_id=value)
        )

    def filter_building(self, queryset, name, value):
        return queryset.filter(Q(building_id=value) | Q(entrance__building_id=value))
