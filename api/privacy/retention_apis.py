"""Endpoint for an organisation's retention periods (managers and administrators)."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from api.core.exceptions import ServiceError

from .retention import (
    MAX_DAYS,
    MIN_DAYS,
    OVERRIDE_ROLES,
    RULES,
    retention_overrides_update,
    retention_periods,
)


class RetentionRuleSerializer(serializers.Serializer):
    rule = serializers.CharField()
    what = serializers.CharField()
    action = serializers.CharField()
    default_days = serializers.IntegerField()
    days = serializers.IntegerField(help_text="In force for the organisation.")
    overridden = serializers.BooleanField()
    per_organisation = serializers.BooleanField(help_text="False: a deployment setting.")
    source = serializers.CharField(help_text="Why that long.")


class RetentionSerializer(serializers.Serializer):
    rules = RetentionRuleSerializer(many=True)


class RetentionInputSerializer(serializers.Serializer):
    overrides = serializers.DictField(
        child=serializers.IntegerField(min_value=MIN_DAYS, max_value=MAX_DAYS, allow_null=True),
        help_text="{rule: days}; null puts a rule back to its default.",
    )


def _body(organisation) -> dict:
    periods = retention_periods(organisation)
    overrides = organisation.retention or {}
    return {
        "rules": [
            {
                "rule": key,
                "what": rule.what,
                "action": rule.action,
                "default_days": rule.default_days,
                "days": periods[key],
                "overridden": rule.per_organisation and key in overrides,
                "per_organisation": rule.per_organisation,
                "source": rule.source,
            }
            for key, rule in RULES.items()
        ]
    }


@extend_schema(tags=["privacy"])
class RetentionApi(APIView):
    """How long the organisation keeps each kind of data, and its overrides of the defaults."""

    permission_classes = [IsAuthenticated]

    def _organisation(self, request):
        if request.user.role not in OVERRIDE_ROLES or request.user.organisation is None:
            raise ServiceError(
                "Only managers see and set retention periods.",
                code="permission_denied",
                status_code=403,
            )
        return request.user.organisation

    @extend_schema(responses=RetentionSerializer)
    def get(self, request):
        return Response(RetentionSerializer(_body(self._organisation(request))).data)

    @extend_schema(request=RetentionInputSerializer, responses=RetentionSerializer)
    def patch(self, request):
        organisation = self._organisation(request)
        serializer = RetentionInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        organisation = retention_overrides_update(
            actor=request.user,
            organisation=organisation,
            overrides=serializer.validated_data["overrides"],
        )
        return Response(RetentionSerializer(_body(organisation)).data)
