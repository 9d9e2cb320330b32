"""Shapes of the notifications endpoints: serializers validate, services write."""

from datetime import time

from django.conf import settings
from rest_framework import serializers

from .fields import AwareDateTimeField
from .models import (
    AlertStatus,
    Broadcast,
    BroadcastKind,
    Channel,
    DeliveryStatus,
    Notification,
    OnCallShift,
    PushDevice,
    PushDeviceKind,
    TeamAlert,
)
from .texts import RTL_LANGUAGES


class DeliveryStateSerializer(serializers.Serializer):
    channel = serializers.ChoiceField(choices=Channel.choices)
    status = serializers.ChoiceField(choices=DeliveryStatus.choices)


class NotificationOutputSerializer(serializers.ModelSerializer):
    direction = serializers.SerializerMethodField()
    deliveries = serializers.SerializerMethodField()

    class Meta:
        model = Notification
        fields = [
            "id",
            "event",
            "title",
            "body",
            "critical",
            "deep_link",
            "language",
            "direction",
            "created_at",
            "read_at",
            "deliveries",
        ]

    def get_direction(self, obj) -> str:
        return "rtl" if obj.language.split("-")[0] in RTL_LANGUAGES else "ltr"

    @staticmethod
    def _states(obj) -> list[dict]:
        return [{"channel": d.channel, "status": d.status} for d in obj.deliveries.all()]

    def get_deliveries(self, obj) -> list[dict]:
        return DeliveryStateSerializer(self._states(obj), many=True).data


class MarkReadOutputSerializer(serializers.Serializer):
    marked = serializers.IntegerField()


QUIET_TIME = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"


def _clock(value: str | None) -> time | None:
    return None if value is None else time(int(value[:2]), int(value[3:5]))


class PreferenceSerializer(serializers.Serializer):
    push_enabled = serializers.BooleanField(required=False)
    sms_enabled = serializers.BooleanField(required=False)
    email_enabled = serializers.BooleanField(required=False)
    quiet_start = serializers.RegexField(
        QUIET_TIME, required=False, allow_null=True, help_text="Local time, HH:MM (e.g. 21:00)."
    )
    quiet_end = serializers.RegexField(
        QUIET_TIME, required=False, allow_null=True, help_text="Local time, HH:MM (e.g. 08:00)."
    )

    def validate_quiet_start(self, value):
        return _clock(value)

    def validate_quiet_end(self, value):
        return _clock(value)

    language = serializers.ChoiceField(choices=settings.LANGUAGES, required=False)


class PreferenceOutputSerializer(PreferenceSerializer):
    reachable_by = serializers.ListField(
        child=serializers.ChoiceField(choices=Channel.choices),
        help_text="The channels an ordinary notification would use now.",
    )
    has_app = serializers.BooleanField()
    has_phone = serializers.BooleanField()
    has_email = serializers.BooleanField()


class PushDeviceInputSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=PushDeviceKind.choices)
    token = serializers.CharField(
        max_length=4096,
        help_text="The app's FCM installation id or token, or the browser's Web Push endpoint.",
    )
    p256dh = serializers.CharField(max_length=200, required=False, default="")
    auth = serializers.CharField(max_length=100, required=False, default="")
    platform = serializers.CharField(max_length=20, required=False, default="")
    label = serializers.CharField(max_length=100, required=False, default="")


class PushDeviceOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = PushDevice
        fields = [
            "id",
            "kind",
            "platform",
            "label",
            "created_at",
            "last_seen_at",
            "disabled_at",
            "disabled_reason",
        ]


class DeliveryReportSerializer(serializers.Serializer):
    provider_id = serializers.CharField(max_length=200, required=False, default="")
    delivery_id = serializers.UUIDField(required=False, allow_null=True, default=None)
    status = serializers.ChoiceField(
        choices=[DeliveryStatus.DELIVERED, DeliveryStatus.FAILED, DeliveryStatus.READ]
    )
    at = AwareDateTimeField(required=False, allow_null=True, default=None)
    error = serializers.CharField(max_length=500, required=False, default="", allow_blank=True)


class DeliveryReportOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=DeliveryStatus.choices)


# --- Broadcasts ---------------------------------------------------------------------------


class BroadcastInputSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=BroadcastKind.choices)
    residence = serializers.UUIDField(required=False, allow_null=True)
    building = serializers.UUIDField(required=False, allow_null=True)
    entrance = serializers.UUIDField(required=False, allow_null=True)
    critical = serializers.BooleanField(required=False, default=False)
    message = serializers.CharField(max_length=1000, required=False, allow_blank=True, default="")
    translations = serializers.DictField(
        child=serializers.CharField(max_length=1000, allow_blank=True),
        required=False,
        default=dict,
        help_text='The message in other languages, e.g. {"ar": "…", "fr-falc": "…"}.',
    )
    starts_at = AwareDateTimeField(required=False, allow_null=True, default=None)
    ends_at = AwareDateTimeField(required=False, allow_null=True, default=None)


class BroadcastOutputSerializer(serializers.ModelSerializer):
    place = serializers.SerializerMethodField()

    class Meta:
        model = Broadcast
        fields = [
            "id",
            "kind",
            "critical",
            "message",
            "translations",
            "residence",
            "building",
            "entrance",
            "place",
            "starts_at",
            "ends_at",
            "status",
            "created_at",
            "created_by",
            "sent_at",
            "sent_by",
        ]

    def get_place(self, obj) -> str:
        from .selectors import broadcast_place_label

        return broadcast_place_label(obj)


class SegmentInfoSerializer(serializers.Serializer):
    encoding = serializers.ChoiceField(choices=["GSM-7", "UCS-2"])
    characters = serializers.IntegerField()
    units = serializers.IntegerField(help_text="Septets (GSM-7) or UTF-16 units (UCS-2).")
    segments = serializers.IntegerField()
    per_segment = serializers.IntegerField()
    remaining = serializers.IntegerField(help_text="Room left in the last segment.")


class LanguagePreviewSerializer(serializers.Serializer):
    language = serializers.CharField()
    direction = serializers.ChoiceField(choices=["ltr", "rtl"])
    title = serializers.CharField()
    body = serializers.CharField()
    sms = serializers.CharField()
    sms_segments = SegmentInfoSerializer()
    recipients = serializers.IntegerField()
    sms_recipients = serializers.IntegerField()


class BroadcastPreviewSerializer(serializers.Serializer):
    recipients = serializers.IntegerField()
    households = serializers.IntegerField()
    channels = serializers.DictField(
        child=serializers.IntegerField(),
        help_text='People per channel; "sms_if_unread" is the SMS sent later if not read.',
    )
    sms_segments_total = serializers.IntegerField()
    languages = LanguagePreviewSerializer(many=True)


class HouseholdFiguresSerializer(serializers.Serializer):
    total = serializers.IntegerField()
    reached = serializers.IntegerField()
    listed = serializers.IntegerField(help_text="Put on the door-knocking list.")
    visited = serializers.IntegerField()


class BroadcastStatsSerializer(serializers.Serializer):
    notifications = serializers.IntegerField()
    read = serializers.IntegerField()
    channels = serializers.DictField(
        child=serializers.DictField(child=serializers.IntegerField()),
        help_text="Per channel, deliveries per status.",
    )
    households = HouseholdFiguresSerializer()


# --- Door-knocking ------------------------------------------------------------------------


class ReachMemberSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()
    phone = serializers.CharField(allow_blank=True)
    language = serializers.CharField()
    read_at = serializers.DateTimeField(allow_null=True)
    deliveries = DeliveryStateSerializer(many=True)


class HouseholdReachOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    event = serializers.CharField()
    title = serializers.CharField()
    batch = serializers.UUIDField()
    broadcast = serializers.UUIDField(source="broadcast_id", allow_null=True)
    dwelling = serializers.UUIDField(source="dwelling_id")
    dwelling_reference = serializers.CharField(source="dwelling.reference")
    residence = serializers.CharField(source="dwelling.entrance.building.residence.name")
    building = serializers.CharField(source="dwelling.entrance.building.reference")
    entrance = serializers.CharField(source="dwelling.entrance.__str__")
    floor = serializers.IntegerField(source="dwelling.floor")
    door = serializers.CharField(source="dwelling.door")
    created_at = serializers.DateTimeField()
    listed_at = serializers.DateTimeField(allow_null=True)
    reached_at = serializers.DateTimeField(allow_null=True)
    reached_via = serializers.CharField()
    visited_at = serializers.DateTimeField(allow_null=True)
    visit_outcome = serializers.CharField()
    visit_note = serializers.CharField()
    members = serializers.SerializerMethodField()

    def get_members(self, obj) -> list[dict]:
        members = self.context.get("members", {}).get((obj.batch, obj.dwelling_id), [])
        return ReachMemberSerializer(members, many=True).data


class VisitInputSerializer(serializers.Serializer):
    outcome = serializers.ChoiceField(
        choices=[("told", "Told in person"), ("absent", "Nobody home"), ("refused", "Refused")]
    )
    note = serializers.CharField(max_length=500, required=False, default="", allow_blank=True)


# --- Alerts and on-call ---------------------------------------------------------------------


class TeamAlertOutputSerializer(serializers.ModelSerializer):
    team_name = serializers.CharField(source="team.name")

    class Meta:
        model = TeamAlert
        fields = [
            "id",
            "team",
            "team_name",
            "event",
            "context",
            "critical",
            "status",
            "level",
            "created_at",
            "escalate_at",
            "acknowledged_at",
            "acknowledged_by",
            "digest",
        ]


class AlertAckOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    event = serializers.CharField()
    team_name = serializers.CharField()
    status = serializers.ChoiceField(choices=AlertStatus.choices)
    acknowledged_at = serializers.DateTimeField(allow_null=True)
    acknowledged_by_you = serializers.BooleanField()


class OnCallShiftInputSerializer(serializers.Serializer):
    team = serializers.UUIDField()
    user = serializers.UUIDField()
    starts_at = AwareDateTimeField()
    ends_at = AwareDateTimeField()
    position = serializers.IntegerField(min_value=0, max_value=9, required=False, default=0)


class OnCallShiftOutputSerializer(serializers.ModelSerializer):
    user_name = serializers.CharField(source="user.full_name")

    class Meta:
        model = OnCallShift
        fields = ["id", "team", "user", "user_name", "starts_at", "ends_at", "position"]
