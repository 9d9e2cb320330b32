"""Query filters of the audits, rounds and surveys lists (ids out of scope match nothing)."""

import django_filters

from api.tickets.fields import SafeDateTimeFilter

from .models import Audit, AuditRound, AuditStatus, RoundStatus, SurveyResponse


class AuditFilter(django_filters.FilterSet):
    residence = django_filters.UUIDFilter(field_name="residence_id")
    entrance = django_filters.UUIDFilter(field_name="entrance_id")
    contractor = django_filters.UUIDFilter(field_name="contractor_id")
    round = django_filters.UUIDFilter(field_name="round_id")
    status = django_filters.MultipleChoiceFilter(choices=AuditStatus.choices)
    capped = django_filters.BooleanFilter()
    finished_after = SafeDateTimeFilter(field_name="finished_at", lookup_expr="gte")
    finished_before = SafeDateTimeFilter(field_name="finished_at", lookup_expr="lt")

    class Meta:
        model = Audit
        fields = []


class RoundFilter(django_filters.FilterSet):
    residence = django_filters.UUIDFilter(field_name="residence_id")
    status = django_filters.MultipleChoiceFilter(choices=RoundStatus.choices)
    assignee = django_filters.UUIDFilter(field_name="assignee_id")

    class Meta:
        model = AuditRound
        fields = []


class SurveyFilter(django_filters.FilterSet):
    entrance = django_filters.UUIDFilter(field_name="entrance_id")

    class Meta:
        model = SurveyResponse
        fields = []
