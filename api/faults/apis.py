"""Faults endpoints: the fault list and lifecycle, a fault's readings, the residence's device
board, alarm figures, and rule overrides (managers).

Thin views: reads go through the selectors (out of scope is a 404), writes through the services.
"""

from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from api.accounts.services import personal_data_access_record
from api.core.sensitive_text import staff_text_guard
from api.estate.selectors import residences_visible_to
from api.telemetry.apis import RoleAccess
from api.telemetry.selectors import device_dwelling_occupants

from . import selectors, services
from .filters import FaultFilter, RuleOverrideFilter
from .models import Fault, RuleOverride
from .serializers import (
    DeviceBoardSerializer,
    FaultCalendarSerializer,
    FaultCommentInputSerializer,
    FaultDetailSerializer,
    FaultEventSerializer,
    FaultMetricsSerializer,
    FaultNoteInputSerializer,
    FaultOutputSerializer,
    FaultReadingsSerializer,
    FaultShelveInputSerializer,
    RuleOverrideInputSerializer,
    RuleOverrideOutputSerializer,
    RuleOverrideUpdateSerializer,
    RuleVersionSerializer,
)


class FaultScopedMixin:
    """Finds the fault named in the URL among those the user may see."""

    permission_classes = [IsAuthenticated, RoleAccess]
    read_roles = selectors.READER_ROLES
    write_roles = services.FAULT_HANDLER_ROLES

    def get_fault(self) -> Fault:
        fault = selectors.fault_get(user=self.request.user, pk=self.kwargs["pk"])
        if fault is None:
            raise Http404
        return fault

    def detail(self, fault: Fault) -> Response:
        fault = selectors.fault_get(user=self.request.user, pk=fault.pk)
        return Response(FaultDetailSerializer(fault).data)


@extend_schema(tags=["faults"])
class FaultListApi(FaultScopedMixin, generics.ListAPIView):
    """Faults of the units in the caller's scope (staff), newest first."""

    serializer_class = FaultOutputSerializer
    filterset_class = FaultFilter
    search_fields = ["title", "rule", "device__device_id", "detail"]
    ordering_fields = ["raised_at", "severity", "state", "repeat_count", "updated_at"]
    ordering = ["-raised_at", "id"]

    def get_queryset(self):
        return selectors.fault_list(user=self.request.user)


@extend_schema(tags=["faults"])
class FaultDetailApi(FaultScopedMixin, APIView):
    """One fault with its history."""

    @extend_schema(responses=FaultDetailSerializer)
    def get(self, request, pk):
        return self.detail(self.get_fault())


@extend_schema(tags=["faults"])
class FaultAcknowledgeApi(FaultScopedMixin, APIView):
    """Acknowledge a fault: an active one stays active, a cleared one closes."""

    @extend_schema(request=FaultNoteInputSerializer, responses=FaultDetailSerializer)
    def post(self, request, pk):
        fault = self.get_fault()
        data = FaultNoteInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fault = services.fault_acknowledge(
            fault=fault, actor=request.user, note=data.validated_data["note"]
        )
        return self.detail(fault)


@extend_schema(tags=["faults"])
class FaultShelveApi(FaultScopedMixin, APIView):
    """Shelve a fault until a time, with a reason; it comes back by itself then."""

    @extend_schema(request=FaultShelveInputSerializer, responses=FaultDetailSerializer)
    def post(self, request, pk):
        fault = self.get_fault()
        data = FaultShelveInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fault = services.fault_shelve(
            fault=fault,
            actor=request.user,
            until=data.validated_data["until"],
            reason=data.validated_data["reason"],
        )
        return self.detail(fault)


@extend_schema(tags=["faults"])
class FaultUnshelveApi(FaultScopedMixin, APIView):
    """Bring a shelved fault back now."""

    @extend_schema(request=FaultNoteInputSerializer, responses=FaultDetailSerializer)
    def post(self, request, pk):
        fault = self.get_fault()
        data = FaultNoteInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fault = services.fault_unshelve(
            fault=fault, actor=request.user, note=data.validated_data["note"]
        )
        return self.detail(fault)


@extend_schema(tags=["faults"])
class FaultOutOfServiceApi(FaultScopedMixin, APIView):
    """Take a fault out of service while its unit is being worked on: it stays on record, off
    the alarm lists, until it is put back."""

    @extend_schema(request=FaultNoteInputSerializer, responses=FaultDetailSerializer)
    def post(self, request, pk):
        return self._set(request, out=True)

    def _set(self, request, *, out: bool) -> Response:
        fault = self.get_fault()
        data = FaultNoteInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fault = services.fault_out_of_service(
            fault=fault, actor=request.user, out=out, note=data.validated_data["note"]
        )
        return self.detail(fault)


@extend_schema(tags=["faults"])
class FaultBackInServiceApi(FaultOutOfServiceApi):
    """Put a fault taken out of service back: active or cleared, as its condition now is."""

    @extend_schema(request=FaultNoteInputSerializer, responses=FaultDetailSerializer)
    def post(self, request, pk):
        return self._set(request, out=False)


@extend_schema(tags=["faults"])
class FaultCommentsApi(FaultScopedMixin, APIView):
    """A fault's comments; staff add one."""

    @extend_schema(responses=FaultEventSerializer(many=True))
    def get(self, request, pk):
        comments = selectors.fault_comments(fault=self.get_fault())
        return Response(FaultEventSerializer(comments, many=True).data)

    @extend_schema(request=FaultCommentInputSerializer, responses={201: FaultEventSerializer})
    def post(self, request, pk):
        fault = self.get_fault()
        data = FaultCommentInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        staff_text_guard(request, data.validated_data)
        event = services.fault_comment_add(
            fault=fault, actor=request.user, text=data.validated_data["text"]
        )
        return Response(FaultEventSerializer(event).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=["faults"])
class FaultReadingsApi(FaultScopedMixin, APIView):
    """The readings of the fault's signals from 24 h before it was raised until it cleared."""

    @extend_schema(responses=FaultReadingsSerializer)
    def get(self, request, pk):
        fault = self.get_fault()
        context = selectors.fault_readings(fault=fault)
        personal_data_access_record(
            viewer=request.user,
            subjects=device_dwelling_occupants(device=fault.device),
            context="faults.readings",
        )
        body = {
            "fault_id": fault.id,
            "device_id": fault.device.device_id,
            "start": context.start,
            "end": context.end,
            "raised_at": fault.raised_at,
            "cleared_at": fault.cleared_at,
            "series": [
                {
                    "name": series.name,
                    "resolution": series.resolution,
                    "bucket_s": series.bucket_s,
                    "truncated": series.truncated,
                    "points": [
                        {
                            "t": p.t,
                            "value": p.value,
                            "min": p.vmin,
                            "max": p.vmax,
                            "count": p.count,
                            "text": p.text,
                        }
                        for p in series.points
                    ],
                }
                for series in context.series
            ],
        }
        return Response(FaultReadingsSerializer(body).data)


@extend_schema(tags=["faults"])
class FaultMetricsApi(APIView):
    """Alarm figures over the caller's scope: alarms per team (10 min), standing, chattering."""

    permission_classes = [IsAuthenticated, RoleAccess]
    read_roles = selectors.READER_ROLES
    write_roles = frozenset()

    @extend_schema(responses=FaultMetricsSerializer)
    def get(self, request):
        return Response(FaultMetricsSerializer(selectors.fault_metrics(user=request.user)).data)


@extend_schema(tags=["faults"])
class DeviceBoardApi(APIView):
    """Each unit of a residence: connection state, health and open faults."""

    permission_classes = [IsAuthenticated, RoleAccess]
    read_roles = selectors.READER_ROLES
    write_roles = frozenset()

    @extend_schema(responses=DeviceBoardSerializer)
    def get(self, request, pk):
        board = selectors.device_board(user=request.user, residence_id=pk)
        if board is None:
            raise Http404
        return Response(DeviceBoardSerializer({"residence_id": pk, "devices": board}).data)


@extend_schema(tags=["fault-rules"])
class FaultCalendarApi(APIView):
    """The organisation's time zone and heating season for its fault rules (read: managers;
    change: administrators). Until set, the shipped defaults apply (`is_default`)."""

    permission_classes = [IsAuthenticated, RoleAccess]
    read_roles = selectors.RULE_READER_ROLES
    write_roles = services.CALENDAR_EDITOR_ROLES

    @extend_schema(responses=FaultCalendarSerializer)
    def get(self, request):
        calendar = services.fault_calendar_get(organisation=request.user.organisation)
        return Response(FaultCalendarSerializer(calendar).data)

    @extend_schema(request=FaultCalendarSerializer, responses=FaultCalendarSerializer)
    def put(self, request):
        data = FaultCalendarSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        calendar = services.fault_calendar_set(
            actor=request.user, organisation=request.user.organisation, **data.validated_data
        )
        return Response(FaultCalendarSerializer(calendar).data)


class RuleScopedMixin:
    permission_classes = [IsAuthenticated, RoleAccess]
    read_roles = selectors.RULE_READER_ROLES
    write_roles = services.RULE_EDITOR_ROLES

    def get_override(self) -> RuleOverride:
        override = (
            selectors.rule_overrides_visible_to(self.request.user)
            .filter(pk=self.kwargs["pk"])
            .first()
        )
        if override is None:
            raise Http404
        return override


@extend_schema(tags=["fault-rules"])
class RuleOverrideListCreateApi(RuleScopedMixin, generics.ListAPIView):
    """Changes to the shipped fault rules in the organisation (managers); add one."""

    serializer_class = RuleOverrideOutputSerializer
    filterset_class = RuleOverrideFilter
    search_fields = ["rule", "device_model", "source"]
    ordering_fields = ["rule", "updated_at"]
    ordering = ["rule", "device_model", "id"]

    def get_queryset(self):
        return selectors.rule_overrides_visible_to(self.request.user)

    @extend_schema(
        request=RuleOverrideInputSerializer, responses={201: RuleOverrideOutputSerializer}
    )
    def post(self, request):
        data = RuleOverrideInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        residence = None
        if values.get("residence"):
            residence = residences_visible_to(request.user).filter(pk=values["residence"]).first()
            if residence is None:
                raise Http404
        override = services.rule_override_create(
            actor=request.user,
            organisation=request.user.organisation,
            rule=values["rule"],
            device_model=values.get("device_model", ""),
            residence=residence,
            enabled=values["enabled"],
            changes=values["changes"],
            severity=values.get("severity"),
            source=values["source"],
        )
        return Response(RuleOverrideOutputSerializer(override).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=["fault-rules"])
class RuleOverrideDetailApi(RuleScopedMixin, APIView):
    """One rule change: read it, edit it (a new version), or remove it (back to shipped)."""

    @extend_schema(responses=RuleOverrideOutputSerializer)
    def get(self, request, pk):
        return Response(RuleOverrideOutputSerializer(self.get_override()).data)

    @extend_schema(request=RuleOverrideUpdateSerializer, responses=RuleOverrideOutputSerializer)
    def patch(self, request, pk):
        override = self.get_override()
        data = RuleOverrideUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        override = services.rule_override_update(
            override=override, actor=request.user, **data.validated_data
        )
        return Response(RuleOverrideOutputSerializer(override).data)

    @extend_schema(request=None, responses={204: None})
    def delete(self, request, pk):
        services.rule_override_delete(override=self.get_override(), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(tags=["fault-rules"])
class RuleOverrideVersionsApi(RuleScopedMixin, APIView):
    """Every saved version of a rule change, newest first."""

    @extend_schema(responses=RuleVersionSerializer(many=True))
    def get(self, request, pk):
        versions = selectors.rule_versions(override=self.get_override())
        return Response(RuleVersionSerializer(versions, many=True).data)
