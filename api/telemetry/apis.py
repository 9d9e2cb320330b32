"""Telemetry endpoints: the device registry, series for charts, a tenant's home, quarantine.

One view per operation; reads go through the selectors (a unit out of scope is a 404),
writes through the services.
"""

from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, status
from rest_framework.permissions import SAFE_METHODS, BasePermission, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from api.accounts.services import personal_data_access_record
from api.core.roles import STAFF_ROLES

from . import selectors, services
from .filters import DeviceFilter, QuarantineFilter
from .models import Device
from .serializers import (
    DeviceDetailSerializer,
    DeviceEventSerializer,
    DeviceOutputSerializer,
    DeviceProvisionedSerializer,
    DeviceProvisionInputSerializer,
    HomeReadingsSerializer,
    QuarantineOutputSerializer,
    SeriesQuerySerializer,
    SeriesSerializer,
)
from .vocabulary import LABELS, UNITS, in_language


class RoleAccess(BasePermission):
    """Reads need a role in `view.read_roles`, writes one in `view.write_roles`."""

    message = "Your role does not allow this."

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not user or not user.is_authenticated or user.organisation_id is None:
            return False
        roles = view.read_roles if request.method in SAFE_METHODS else view.write_roles
        return user.role in roles


class DeviceScopedMixin:
    """Finds the unit named in the URL among those the user may see."""

    permission_classes = [IsAuthenticated, RoleAccess]
    read_roles = STAFF_ROLES
    write_roles = services.DEVICE_ADMIN_ROLES

    def get_device(self) -> Device:
        device = selectors.device_get(user=self.request.user, device_id=self.kwargs["device_id"])
        if device is None:
            raise Http404
        return device


@extend_schema(tags=["devices"])
class DeviceListCreateApi(DeviceScopedMixin, generics.ListAPIView):
    """Connected units in the caller's scope; provisioning a new one returns its password once."""

    serializer_class = DeviceOutputSerializer
    filterset_class = DeviceFilter
    search_fields = ["device_id", "model", "firmware"]
    ordering_fields = ["device_id", "last_seen_at", "status", "created_at"]
    ordering = ["device_id"]

    def get_queryset(self):
        return selectors.device_list(user=self.request.user)

    @extend_schema(
        request=DeviceProvisionInputSerializer,
        responses={201: DeviceProvisionedSerializer},
    )
    def post(self, request):
        serializer = DeviceProvisionInputSerializer(
            data=request.data, context=self.get_serializer_context()
        )
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        device, password = services.device_provision(
            organisation=request.user.organisation,
            kind=data["kind"],
            equipment=data["equipment"],
            model=data["model"],
            reporting_interval_s=data["reporting_interval_s"],
            actor=request.user,
        )
        device = selectors.device_get(user=request.user, device_id=device.device_id)
        body = {
            "device": DeviceOutputSerializer(device).data,
            "credentials": {
                "device_id": device.device_id,
                "username": device.device_id,
                "password": password,
                "fleet": device.fleet,
                "topic_prefix": device.topic_prefix,
            },
        }
        return Response(body, status=status.HTTP_201_CREATED)


@extend_schema(tags=["devices"])
class DeviceDetailApi(DeviceScopedMixin, APIView):
    """One unit: its state, place and newest readings."""

    @extend_schema(responses=DeviceDetailSerializer)
    def get(self, request, device_id: str):
        device = self.get_device()
        personal_data_access_record(
            viewer=request.user,
            subjects=selectors.device_dwelling_occupants(device=device),
            context="telemetry.device",
        )
        return Response(DeviceDetailSerializer(device, context={"request": request}).data)


@extend_schema(tags=["devices"])
class DeviceRevokeApi(DeviceScopedMixin, APIView):
    """Withdraw a unit's credentials: the broker refuses it and its messages are ignored."""

    @extend_schema(request=None, responses=DeviceOutputSerializer)
    def post(self, request, device_id: str):
        device = self.get_device()
        services.device_revoke(device=device, actor=request.user)
        device = self.get_device()
        return Response(DeviceOutputSerializer(device).data)


@extend_schema(tags=["devices"])
class DeviceSeriesApi(DeviceScopedMixin, APIView):
    """Readings of one name for a chart: raw or hourly, at most 500 points (averaged buckets)."""

    @extend_schema(
        parameters=[
            SeriesQuerySerializer,
            OpenApiParameter(
                "from", OpenApiTypes.DATETIME, description="Start (default: `to` − 24 h)."
            ),
        ],
        responses=SeriesSerializer,
    )
    def get(self, request, device_id: str):
        device = self.get_device()
        selectors.device_readings_check_purpose(device=device)
        query = SeriesQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = query.validated_data
        series = selectors.device_series(
            device=device,
            name=params["name"],
            start=params.get("from"),
            end=params.get("to"),
            resolution=params["resolution"],
        )
        personal_data_access_record(
            viewer=request.user,
            subjects=selectors.device_dwelling_occupants(device=device),
            context=f"telemetry.series.{series.name}",
        )
        body = {
            "device_id": device.device_id,
            "name": series.name,
            "label": in_language(LABELS[series.name], request.user.language),
            "unit": UNITS[series.name],
            "resolution": series.resolution,
            "bucket_s": series.bucket_s,
            "start": series.start,
            "end": series.end,
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
        return Response(SeriesSerializer(body).data)


@extend_schema(tags=["devices"])
class DeviceEventListApi(DeviceScopedMixin, generics.ListAPIView):
    """A unit's history: provisioned, online, offline, rebooted, revoked."""

    serializer_class = DeviceEventSerializer
    filter_backends: list = []

    def get_queryset(self):
        return selectors.device_events(device=self.get_device())


@extend_schema(tags=["my-home"])
class MyHomeReadingsApi(APIView):
    """The tenant's home: each unit's current readings, and what is collected, why, who sees it
    and how long it is kept, in the tenant's language."""

    permission_classes = [IsAuthenticated]

    @extend_schema(responses=HomeReadingsSerializer)
    def get(self, request):
        return Response(HomeReadingsSerializer(selectors.home_readings(user=request.user)).data)


@extend_schema(tags=["devices"])
class QuarantineListApi(generics.ListAPIView):
    """Messages from the organisation's fleet that were refused, with the reason (managers)."""

    permission_classes = [IsAuthenticated, RoleAccess]
    read_roles = selectors.QUARANTINE_READER_ROLES
    write_roles = frozenset()
    serializer_class = QuarantineOutputSerializer
    filterset_class = QuarantineFilter
    search_fields: list = []
    ordering_fields = ["received_at", "reason"]
    ordering = ["-received_at", "-id"]

    def get_queryset(self):
        return selectors.quarantine_visible_to(self.request.user)
