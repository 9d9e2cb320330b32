"""Endpoints for in-home data: a household's consent per purpose, and what its home sends."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from api.accounts.services import personal_data_access_record
from api.core.exceptions import ServiceError
from api.estate.acting import ACTING_PARAMETERS, acting_context
from api.estate.models import ConsentChannel, TelemetryPurpose

from . import consent

# --- serializers -----------------------------------------------------------------------------


class ConsentPurposeSerializer(serializers.Serializer):
    purpose = serializers.ChoiceField(choices=TelemetryPurpose.choices)
    label = serializers.CharField()
    allowed = serializers.BooleanField()
    by_default = serializers.BooleanField(help_text="No decision recorded yet: the default.")
    decided_at = serializers.DateTimeField(allow_null=True)
    channel = serializers.CharField(allow_blank=True)
    legal_basis = serializers.CharField()
    without = serializers.CharField(help_text="What cannot be done without this purpose.")


class ConsentHistorySerializer(serializers.Serializer):
    id = serializers.UUIDField()
    purpose = serializers.ChoiceField(choices=TelemetryPurpose.choices)
    granted = serializers.BooleanField()
    channel = serializers.ChoiceField(choices=ConsentChannel.choices)
    decided_at = serializers.DateTimeField()
    recorded_at = serializers.DateTimeField()
    by_staff = serializers.BooleanField()


class ConsentLeaseSerializer(serializers.Serializer):
    lease = serializers.UUIDField()
    dwelling = serializers.UUIDField()
    dwelling_reference = serializers.CharField()
    purposes = ConsentPurposeSerializer(many=True)
    history = ConsentHistorySerializer(many=True)


class ConsentOverviewSerializer(serializers.Serializer):
    leases = ConsentLeaseSerializer(many=True)


class ConsentInputSerializer(serializers.Serializer):
    purpose = serializers.ChoiceField(choices=TelemetryPurpose.choices)
    granted = serializers.BooleanField()
    channel = serializers.ChoiceField(
        choices=ConsentChannel.choices,
        default=ConsentChannel.APP,
        help_text="app for the household itself; paper, phone or in_person for staff.",
    )
    lease = serializers.UUIDField(
        required=False, help_text="Needed only when the person has several leases in force."
    )
    decided_at = serializers.DateTimeField(
        required=False, help_text="When the household decided (paper forms); default: now."
    )


class ConsentRecordedSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    lease = serializers.UUIDField(source="lease_id")
    purpose = serializers.ChoiceField(choices=TelemetryPurpose.choices)
    granted = serializers.BooleanField()
    channel = serializers.ChoiceField(choices=ConsentChannel.choices)
    decided_at = serializers.DateTimeField()
    recorded_at = serializers.DateTimeField(source="created_at")


class SentValueSerializer(serializers.Serializer):
    name = serializers.CharField()
    label = serializers.CharField()
    unit = serializers.CharField(allow_blank=True)
    purposes = serializers.ListField(child=serializers.ChoiceField(TelemetryPurpose.choices))


class HomeUnitDataSerializer(serializers.Serializer):
    device_id = serializers.CharField()
    kind = serializers.CharField()
    label = serializers.CharField()
    sends = SentValueSerializer(many=True)
    every_seconds = serializers.IntegerField()
    how_often = serializers.CharField()
    who_sees = serializers.CharField()
    kept = serializers.CharField()


class HomePurposeSerializer(serializers.Serializer):
    purpose = serializers.ChoiceField(choices=TelemetryPurpose.choices)
    label = serializers.CharField()
    explanation = serializers.CharField()
    allowed = serializers.BooleanField()
    state = serializers.CharField()


class HomeDataSerializer(serializers.Serializer):
    lease = serializers.UUIDField()
    dwelling = serializers.UUIDField()
    dwelling_reference = serializers.CharField()
    units = HomeUnitDataSerializer(many=True)
    purposes = HomePurposeSerializer(many=True)


class MyHomeDataSerializer(serializers.Serializer):
    language = serializers.CharField()
    homes = HomeDataSerializer(many=True)
    raw_retention_days = serializers.IntegerField()
    aggregate_retention_days = serializers.IntegerField()
    after_lease_days = serializers.IntegerField()


# --- views -----------------------------------------------------------------------------------


@extend_schema(tags=["privacy"])
class ConsentApi(APIView):
    """A household's decisions on each purpose of its home's telemetry, with their history.

    Staff (agency staff, managers) read and record them for a tenant with X-On-Behalf-Of and a
    reason; a delegate who may make requests may do so for the tenant who delegated.
    """

    permission_classes = [IsAuthenticated]

    def _language(self, request) -> str:
        return getattr(request.user, "language", "") or "fr"

    @extend_schema(parameters=ACTING_PARAMETERS, responses=ConsentOverviewSerializer)
    def get(self, request):
        context = acting_context(request)
        if context.on_behalf_of is not None:
            personal_data_access_record(
                viewer=request.user, subjects=[context.subject], context="privacy.consents"
            )
        leases = consent.consent_overview(subject=context.subject, language=self._language(request))
        return Response(ConsentOverviewSerializer({"leases": leases}).data)

    @extend_schema(
        parameters=ACTING_PARAMETERS,
        request=ConsentInputSerializer,
        responses={201: ConsentRecordedSerializer},
    )
    def post(self, request):
        context = acting_context(request)
        if not context.may_create_requests:
            raise ServiceError(
                "This delegation only allows viewing.", code="permission_denied", status_code=403
            )
        serializer = ConsentInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        lease = None
        if "lease" in data:
            lease = consent.consent_leases(subject=context.subject).filter(pk=data["lease"]).first()
            if lease is None:
                raise ServiceError("No such lease in force.", code="invalid", field="lease")
        recorded = consent.telemetry_consent_record(
            actor=request.user,
            subject=context.subject,
            purpose=data["purpose"],
            granted=data["granted"],
            channel=data["channel"],
            lease=lease,
            decided_at=data.get("decided_at"),
            reason=context.reason,
        )
        return Response(ConsentRecordedSerializer(recorded).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=["privacy"])
class MyHomeDataApi(APIView):
    """For each unit in the tenant's home, in plain language: what it sends, how often, who
    sees it, how long it is kept, and which purposes the household allows."""

    permission_classes = [IsAuthenticated]

    @extend_schema(responses=MyHomeDataSerializer)
    def get(self, request):
        return Response(MyHomeDataSerializer(consent.my_home_data(user=request.user)).data)
