"""Notifications endpoints: the inbox, preferences, push devices, provider reports, staff
broadcasts, the door-knocking list, maintenance alerts and on-call schedules."""

import hashlib
import hmac

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Prefetch
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from api.accounts.services import personal_data_access_record
from api.core.exceptions import ServiceError
from api.core.permissions import uuid_or_404
from api.estate.models import Building, Entrance, Residence
from api.estate.permissions import RoleAccess
from api.estate.selectors import (
    buildings_visible_to,
    entrances_visible_to,
    people_visible_to,
    residences_visible_to,
)

from . import selectors, services
from .filters import (
    BroadcastFilter,
    HouseholdReachFilter,
    NotificationFilter,
    OnCallShiftFilter,
    TeamAlertFilter,
)
from .models import Channel, Delivery, Notification
from .serializers import (
    AlertAckOutputSerializer,
    BroadcastInputSerializer,
    BroadcastOutputSerializer,
    BroadcastPreviewSerializer,
    BroadcastStatsSerializer,
    DeliveryReportOutputSerializer,
    DeliveryReportSerializer,
    HouseholdReachOutputSerializer,
    MarkReadOutputSerializer,
    NotificationOutputSerializer,
    OnCallShiftInputSerializer,
    OnCallShiftOutputSerializer,
    PreferenceOutputSerializer,
    PreferenceSerializer,
    PushDeviceInputSerializer,
    PushDeviceOutputSerializer,
    TeamAlertOutputSerializer,
    VisitInputSerializer,
)

User = get_user_model()
NO_CONTENT = OpenApiResponse(description="Done.")
SIGNATURE_HEADER = "X-Palier-Signature"


def _input(serializer_class, request, *, partial: bool = False) -> dict:
    serializer = serializer_class(data=request.data, partial=partial)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class ScopedObjectMixin:
    """Detail lookups through the list's selector: malformed or out-of-scope ids are a 404."""

    def get_object(self):
        uuid_or_404(self.kwargs[self.lookup_field])
        return super().get_object()


# --- The person's own inbox, preferences and devices ----------------------------------------


@extend_schema_view(
    list=extend_schema(tags=["notifications"], summary="The person's inbox, newest first"),
    retrieve=extend_schema(tags=["notifications"]),
)
class NotificationViewSet(
    ScopedObjectMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """The notifications sent to the caller."""

    permission_classes = [IsAuthenticated]
    serializer_class = NotificationOutputSerializer
    filterset_class = NotificationFilter
    search_fields = ["title", "body"]
    ordering_fields = ["created_at"]
    ordering = ["-created_at"]

    def get_queryset(self):
        return selectors.inbox(self.request.user).prefetch_related(
            Prefetch("deliveries", Delivery.objects.order_by("channel"))
        )

    @extend_schema(
        tags=["notifications"], request=None, responses={200: NotificationOutputSerializer}
    )
    @action(detail=True, methods=["post"])
    def read(self, request, pk=None):
        """Mark one notification read (it cancels a pending SMS reminder of it)."""
        notification = self.get_object()
        services.notifications_mark_read(user=request.user, notification_ids=[notification.pk])
        return Response(self.get_serializer(self.get_queryset().get(pk=notification.pk)).data)

    @extend_schema(tags=["notifications"], request=None, responses={200: MarkReadOutputSerializer})
    @action(detail=False, methods=["post"], url_path="read-all")
    def read_all(self, request):
        """Mark every unread notification read."""
        marked = services.notifications_mark_read(user=request.user)
        return Response({"marked": marked})


def _hhmm(value) -> str | None:
    return value.strftime("%H:%M") if value is not None else None


def _preference_body(user) -> dict:
    preference = selectors.preference_for(user)
    kinds = set(user.push_devices.filter(disabled_at__isnull=True).values_list("kind", flat=True))
    from django.utils import timezone

    plans = services.plan_channels(
        user=user, preference=preference, device_kinds=kinds, critical=False, now=timezone.now()
    )
    return {
        "push_enabled": preference.push_enabled,
        "sms_enabled": preference.sms_enabled,
        "email_enabled": preference.email_enabled,
        "quiet_start": _hhmm(preference.quiet_start),
        "quiet_end": _hhmm(preference.quiet_end),
        "language": user.language,
        "reachable_by": [plan.channel for plan in plans],
        "has_app": bool(kinds),
        "has_phone": bool(user.phone),
        "has_email": bool(user.email),
    }


class PreferenceApi(APIView):
    """How the caller is reached: channels, quiet hours (critical notices pass), language."""

    permission_classes = [IsAuthenticated]

    @extend_schema(tags=["notifications"], responses={200: PreferenceOutputSerializer})
    def get(self, request):
        return Response(PreferenceOutputSerializer(_preference_body(request.user)).data)

    @extend_schema(
        tags=["notifications"],
        request=PreferenceSerializer,
        responses={200: PreferenceOutputSerializer},
    )
    def patch(self, request):
        data = _input(PreferenceSerializer, request, partial=True)
        clear = ("quiet_start" in data and data["quiet_start"] is None) or (
            "quiet_end" in data and data["quiet_end"] is None
        )
        services.preferences_update(
            user=request.user,
            push_enabled=data.get("push_enabled"),
            sms_enabled=data.get("sms_enabled"),
            email_enabled=data.get("email_enabled"),
            quiet_start=data.get("quiet_start"),
            quiet_end=data.get("quiet_end"),
            clear_quiet_hours=clear,
            language=data.get("language"),
        )
        request.user.refresh_from_db()
        return Response(PreferenceOutputSerializer(_preference_body(request.user)).data)


@extend_schema_view(
    list=extend_schema(tags=["notifications"]),
    create=extend_schema(
        tags=["notifications"],
        request=PushDeviceInputSerializer,
        responses={201: PushDeviceOutputSerializer},
    ),
    destroy=extend_schema(tags=["notifications"], responses={204: NO_CONTENT}),
)
class PushDeviceViewSet(
    ScopedObjectMixin, mixins.ListModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet
):
    """The caller's apps and browsers that receive push notifications."""

    permission_classes = [IsAuthenticated]
    serializer_class = PushDeviceOutputSerializer
    ordering = ["-created_at"]
    filter_backends: list = []

    def get_queryset(self):
        return selectors.push_devices_of(self.request.user)

    def create(self, request):
        """Register the app's push id or the browser's subscription (again on each start)."""
        data = _input(PushDeviceInputSerializer, request)
        device = services.push_device_register(user=request.user, **data)
        return Response(self.get_serializer(device).data, status=status.HTTP_201_CREATED)

    def destroy(self, request, pk=None):
        services.push_device_remove(user=request.user, device=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- Provider delivery reports --------------------------------------------------------------


def _signature_ok(request) -> bool:
    secret = settings.NOTIFY_WEBHOOK_SECRET
    given = request.headers.get(SIGNATURE_HEADER, "")
    if not secret or not given.startswith("sha256="):
        return False
    expected = hmac.new(secret.encode(), request.body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(given.removeprefix("sha256="), expected)


class DeliveryReportApi(APIView):
    """A provider reports a message delivered, failed or read (signed with the shared secret:
    header X-Palier-Signature: sha256=HMAC-SHA256(body))."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        tags=["notifications"],
        parameters=[
            OpenApiParameter(
                SIGNATURE_HEADER,
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                description="sha256=<hex HMAC-SHA256 of the body with NOTIFY_WEBHOOK_SECRET>",
            ),
        ],
        request=DeliveryReportSerializer,
        responses={200: DeliveryReportOutputSerializer},
    )
    def post(self, request, channel: str):
        if channel not in Channel.values:
            raise NotFound()
        if not _signature_ok(request):
            raise ServiceError("Bad signature.", code="permission_denied", status_code=403)
        data = _input(DeliveryReportSerializer, request)
        delivery = services.delivery_status_record(channel=channel, **data)
        return Response({"id": delivery.pk, "status": delivery.status})


# --- Broadcasts -----------------------------------------------------------------------------


def _target(model, selector, user, value, field: str):
    if value is None:
        return None
    found = selector(user).filter(pk=value).first()
    if found is None:
        raise ServiceError(f"No such {model._meta.verbose_name} in your scope.", field=field)
    return found


def _broadcast_targets(user, data: dict) -> dict:
    targets = {}
    for field, model, selector in (
        ("residence", Residence, residences_visible_to),
        ("building", Building, buildings_visible_to),
        ("entrance", Entrance, entrances_visible_to),
    ):
        if field in data:
            targets[field] = _target(model, selector, user, data.pop(field), field)
    return targets


@extend_schema_view(
    list=extend_schema(tags=["broadcasts"]),
    retrieve=extend_schema(tags=["broadcasts"]),
    create=extend_schema(
        tags=["broadcasts"],
        request=BroadcastInputSerializer,
        responses={201: BroadcastOutputSerializer},
    ),
    partial_update=extend_schema(
        tags=["broadcasts"],
        request=BroadcastInputSerializer,
        responses={200: BroadcastOutputSerializer},
    ),
    destroy=extend_schema(tags=["broadcasts"], responses={204: NO_CONTENT}),
)
class BroadcastViewSet(
    ScopedObjectMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Notices from the agency to every household of a residence, building or entrance."""

    permission_classes = [IsAuthenticated, RoleAccess]
    read_roles = selectors.BROADCAST_READER_ROLES
    write_roles = selectors.BROADCAST_WRITER_ROLES
    serializer_class = BroadcastOutputSerializer
    filterset_class = BroadcastFilter
    search_fields = ["message"]
    ordering_fields = ["created_at", "sent_at", "starts_at"]
    ordering = ["-created_at"]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self):
        return selectors.broadcasts_visible_to(self.request.user).select_related(
            "residence", "building__residence", "entrance__building__residence"
        )

    def _output(self, broadcast, code=status.HTTP_200_OK) -> Response:
        return Response(self.get_serializer(self.get_queryset().get(pk=broadcast.pk)).data, code)

    def create(self, request):
        data = dict(_input(BroadcastInputSerializer, request))
        targets = _broadcast_targets(request.user, data)
        broadcast = services.broadcast_create(actor=request.user, **targets, **data)
        return self._output(broadcast, status.HTTP_201_CREATED)

    def partial_update(self, request, pk=None):
        broadcast = self.get_object()
        data = dict(_input(BroadcastInputSerializer, request, partial=True))
        data.update(_broadcast_targets(request.user, data))
        services.broadcast_update(actor=request.user, broadcast=broadcast, data=data)
        return self._output(broadcast)

    def destroy(self, request, pk=None):
        services.broadcast_delete(actor=request.user, broadcast=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(tags=["broadcasts"], responses={200: BroadcastPreviewSerializer})
    @action(detail=True, methods=["get"])
    def preview(self, request, pk=None):
        """What each language's recipients will read, SMS segments (GSM-7 or UCS-2) and how
        many people each channel will reach, before sending."""
        return Response(
            BroadcastPreviewSerializer(selectors.broadcast_preview(self.get_object())).data
        )

    @extend_schema(tags=["broadcasts"], responses={200: BroadcastStatsSerializer})
    @action(detail=True, methods=["get"])
    def stats(self, request, pk=None):
        """Deliveries per channel and status, and households reached, not reached, visited."""
        return Response(BroadcastStatsSerializer(selectors.broadcast_stats(self.get_object())).data)

    @extend_schema(tags=["broadcasts"], request=None, responses={200: BroadcastOutputSerializer})
    @action(detail=True, methods=["post"])
    def send(self, request, pk=None):
        """Send the notice now to every household of its place."""
        broadcast = services.broadcast_send(actor=request.user, broadcast=self.get_object())
        return self._output(broadcast)


# --- Door-knocking --------------------------------------------------------------------------


def _members_by_household(reaches) -> dict:
    """The people a critical notice was sent to in each household, with their deliveries."""
    pairs = {(r.batch, r.dwelling_id) for r in reaches}
    if not pairs:
        return {}
    notifications = (
        Notification.objects.filter(
            batch__in={b for b, _ in pairs}, dwelling_id__in={d for _, d in pairs}
        )
        .select_related("recipient")
        .prefetch_related(Prefetch("deliveries", Delivery.objects.order_by("channel")))
    )
    members: dict = {}
    for n in notifications:
        person = n.recipient
        members.setdefault((n.batch, n.dwelling_id), []).append(
            {
                "id": person.pk,
                "name": person.full_name,
                "phone": str(person.phone or ""),
                "language": person.language,
                "read_at": n.read_at,
                "deliveries": [
                    {"channel": d.channel, "status": d.status} for d in n.deliveries.all()
                ],
            }
        )
    return members


@extend_schema_view(list=extend_schema(tags=["notifications"]))
class DoorKnockingViewSet(ScopedObjectMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    """Households nobody in which read a critical notice in time: the caretaker's list."""

    permission_classes = [IsAuthenticated, RoleAccess]
    read_roles = selectors.DOOR_KNOCKING_ROLES
    write_roles = selectors.DOOR_KNOCKING_ROLES
    serializer_class = HouseholdReachOutputSerializer
    filterset_class = HouseholdReachFilter
    ordering_fields = ["listed_at", "created_at"]
    ordering = ["dwelling__entrance__building__reference", "dwelling__floor", "dwelling__door"]

    def get_queryset(self):
        return selectors.door_knocking_visible_to(self.request.user).select_related(
            "dwelling__entrance__building__residence"
        )

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        members = _members_by_household(page)
        personal_data_access_record(
            viewer=request.user,
            subjects=[m["id"] for rows in members.values() for m in rows],
            context="door_knocking.list",
        )
        serializer = self.get_serializer(page, many=True, context={"members": members})
        return self.get_paginated_response(serializer.data)

    @extend_schema(
        tags=["notifications"],
        request=VisitInputSerializer,
        responses={200: HouseholdReachOutputSerializer},
    )
    @action(detail=True, methods=["post"])
    def visit(self, request, pk=None):
        """Record the caretaker's visit: told in person, nobody home, or refused."""
        reach = self.get_object()
        data = _input(VisitInputSerializer, request)
        services.household_visit_record(actor=request.user, reach=reach, **data)
        reach = self.get_queryset().get(pk=reach.pk)
        members = _members_by_household([reach])
        return Response(self.get_serializer(reach, context={"members": members}).data)


# --- Maintenance alerts and on-call ---------------------------------------------------------


@extend_schema_view(list=extend_schema(tags=["alerts"]), retrieve=extend_schema(tags=["alerts"]))
class TeamAlertViewSet(
    ScopedObjectMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Maintenance alerts of the caller's teams, with who acknowledged them."""

    permission_classes = [IsAuthenticated, RoleAccess]
    read_roles = selectors.ALERT_READER_ROLES
    write_roles = selectors.ALERT_READER_ROLES
    serializer_class = TeamAlertOutputSerializer
    filterset_class = TeamAlertFilter
    ordering_fields = ["created_at"]
    ordering = ["-created_at"]

    def get_queryset(self):
        return selectors.alerts_visible_to(self.request.user).select_related("team")

    @extend_schema(tags=["alerts"], request=None, responses={200: TeamAlertOutputSerializer})
    @action(detail=True, methods=["post"])
    def acknowledge(self, request, pk=None):
        """Take the alert: escalation to the next person on call stops."""
        alert = services.alert_acknowledge(alert=self.get_object(), user=request.user)
        return Response(self.get_serializer(self.get_queryset().get(pk=alert.pk)).data)


def _ack_body(alert, user) -> dict:
    return {
        "id": alert.pk,
        "event": alert.event,
        "team_name": alert.team.name,
        "status": alert.status,
        "acknowledged_at": alert.acknowledged_at,
        "acknowledged_by_you": alert.acknowledged_by_id == user.pk,
    }


class AlertAckApi(APIView):
    """Acknowledge an alert from the notification itself, with its signed link (no login)."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(tags=["alerts"], responses={200: AlertAckOutputSerializer})
    def get(self, request, token: str):
        alert, user = services.alert_from_token(token)
        return Response(AlertAckOutputSerializer(_ack_body(alert, user)).data)

    @extend_schema(tags=["alerts"], request=None, responses={200: AlertAckOutputSerializer})
    def post(self, request, token: str):
        alert, user = services.alert_from_token(token)
        alert = services.alert_acknowledge(alert=alert, user=user, via="link")
        return Response(AlertAckOutputSerializer(_ack_body(alert, user)).data)


@extend_schema_view(
    list=extend_schema(tags=["alerts"]),
    retrieve=extend_schema(tags=["alerts"]),
    create=extend_schema(
        tags=["alerts"],
        request=OnCallShiftInputSerializer,
        responses={201: OnCallShiftOutputSerializer},
    ),
    destroy=extend_schema(tags=["alerts"], responses={204: NO_CONTENT}),
)
class OnCallShiftViewSet(
    ScopedObjectMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """Who is on call for each team, when, and in which order they are called."""

    permission_classes = [IsAuthenticated, RoleAccess]
    read_roles = selectors.ALERT_READER_ROLES
    write_roles = selectors.SCHEDULE_WRITER_ROLES
    serializer_class = OnCallShiftOutputSerializer
    filterset_class = OnCallShiftFilter
    ordering_fields = ["starts_at"]
    ordering = ["starts_at", "position"]
    http_method_names = ["get", "post", "delete", "head", "options"]

    def get_queryset(self):
        return selectors.on_call_shifts_visible_to(self.request.user).select_related("user")

    def create(self, request):
        data = dict(_input(OnCallShiftInputSerializer, request))
        team = selectors.teams_visible_to(request.user).filter(pk=data.pop("team")).first()
        if team is None:
            raise ServiceError("No such team in your scope.", field="team")
        user = people_visible_to(request.user).filter(pk=data.pop("user")).first()
        if user is None:
            raise ServiceError("No such person in your scope.", field="user")
        shift = services.on_call_shift_create(actor=request.user, team=team, user=user, **data)
        return Response(
            self.get_serializer(self.get_queryset().get(pk=shift.pk)).data,
            status=status.HTTP_201_CREATED,
        )

    def destroy(self, request, pk=None):
        services.on_call_shift_delete(actor=request.user, shift=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)
