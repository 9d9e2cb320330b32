"""Shapes of the telemetry API."""

import base64

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from api.estate import selectors as estate_selectors

from . import selectors
from .models import Device, DeviceEvent, DeviceKind, DeviceStatus, Quarantine
from .vocabulary import NAME_CODES

# --- Devices ---------------------------------------------------------------------------------


class PlaceSerializer(serializers.Serializer):
    """Where a unit is: its dwelling or common area, building and residence."""

    dwelling_id = serializers.UUIDField(allow_null=True)
    dwelling_reference = serializers.CharField(allow_null=True)
    common_area_id = serializers.UUIDField(allow_null=True)
    common_area_name = serializers.CharField(allow_null=True)
    building_id = serializers.UUIDField(allow_null=True)
    building_reference = serializers.CharField(allow_null=True)
    residence_id = serializers.UUIDField(allow_null=True)
    residence_name = serializers.CharField(allow_null=True)


def device_place(device: Device) -> dict:
    """The location of a unit from its equipment (relations already selected)."""
    equipment = device.equipment
    place = dict.fromkeys(PlaceSerializer().fields)
    building = residence = None
    if equipment.dwelling_id:
        dwelling = equipment.dwelling
        place.update(dwelling_id=dwelling.id, dwelling_reference=dwelling.reference)
        building = dwelling.entrance.building
        residence = building.residence
    elif equipment.common_area_id:
        area = equipment.common_area
        place.update(common_area_id=area.id, common_area_name=str(area))
        if area.entrance_id:
            building = area.entrance.building
        elif area.building_id:
            building = area.building
        residence = building.residence if building else area.residence
    if building is not None:
        place.update(building_id=building.id, building_reference=building.reference)
    if residence is not None:
        place.update(residence_id=residence.id, residence_name=residence.name)
    return place


class DeviceOutputSerializer(serializers.ModelSerializer):
    fleet = serializers.CharField(source="organisation.slug", read_only=True)
    topic_prefix = serializers.CharField(read_only=True)
    equipment_id = serializers.UUIDField(read_only=True)
    place = serializers.SerializerMethodField()

    class Meta:
        model = Device
        fields = [
            "device_id",
            "kind",
            "model",
            "firmware",
            "status",
            "status_changed_at",
            "last_seen_at",
            "last_message_at",
            "last_boot",
            "last_seq",
            "reporting_interval_s",
            "fleet",
            "topic_prefix",
            "equipment_id",
            "place",
            "created_at",
            "revoked_at",
        ]
        read_only_fields = fields

    @extend_schema_field(PlaceSerializer)
    def get_place(self, device: Device) -> dict:
        return device_place(device)


class CurrentReadingSerializer(serializers.Serializer):
    name = serializers.CharField()
    label = serializers.CharField()
    value = serializers.JSONField(help_text="A number, true/false, or a code.")
    unit = serializers.CharField(help_text="Empty for true/false values and codes.")
    at = serializers.DateTimeField()


class DeviceDetailSerializer(DeviceOutputSerializer):
    current = serializers.SerializerMethodField()

    class Meta(DeviceOutputSerializer.Meta):
        fields = [*DeviceOutputSerializer.Meta.fields, "current"]
        read_only_fields = fields

    @extend_schema_field(CurrentReadingSerializer(many=True))
    def get_current(self, device: Device) -> list[dict]:
        request = self.context.get("request")
        language = getattr(getattr(request, "user", None), "language", "") or "fr"
        return selectors.current_readings(device=device, language=language)


class ScopedEquipmentField(serializers.PrimaryKeyRelatedField):
    """An equipment id that must be in the requester's scope (else "does not exist")."""

    def __init__(self, **kwargs):
        kwargs.setdefault("pk_field", serializers.UUIDField())
        super().__init__(**kwargs)

    def get_queryset(self):
        request = self.context.get("request")
        return estate_selectors.equipment_visible_to(getattr(request, "user", None))


class DeviceProvisionInputSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=DeviceKind.choices)
    equipment = ScopedEquipmentField()
    model = serializers.CharField(max_length=64, required=False, default="", allow_blank=True)
    reporting_interval_s = serializers.IntegerField(
        min_value=5, max_value=86_400, required=False, default=60
    )


class DeviceCredentialsSerializer(serializers.Serializer):
    """What a unit needs to connect; the password is shown this once and never again."""

    device_id = serializers.CharField()
    username = serializers.CharField()
    password = serializers.CharField()
    fleet = serializers.CharField()
    topic_prefix = serializers.CharField()


class DeviceProvisionedSerializer(serializers.Serializer):
    device = DeviceOutputSerializer()
    credentials = DeviceCredentialsSerializer()


class DeviceEventSerializer(serializers.ModelSerializer):
    actor_id = serializers.UUIDField(read_only=True, allow_null=True)

    class Meta:
        model = DeviceEvent
        fields = ["id", "kind", "at", "actor_id", "detail"]
        read_only_fields = fields


# --- Series ----------------------------------------------------------------------------------


class SeriesQuerySerializer(serializers.Serializer):
    name = serializers.ChoiceField(choices=sorted(NAME_CODES))
    # `from` is a Python keyword: the field is declared under its query name below.
    to = serializers.DateTimeField(required=False)
    resolution = serializers.ChoiceField(choices=["raw", "hour", "auto"], default="auto")

    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = serializers.DateTimeField(required=False)
        return fields

    def validate(self, attrs):
        start, end = attrs.get("from"), attrs.get("to")
        for key in ("from", "to"):
            if attrs.get(key) and not 2000 <= attrs[key].year <= 2999:
                raise serializers.ValidationError({key: "Years 2000 to 2999 only."})
        if start and end and end <= start:
            raise serializers.ValidationError({"to": "Must be after `from`."})
        if start and end and (end - start).days > 731:
            raise serializers.ValidationError({"from": "At most two years at a time."})
        return attrs


class SeriesPointSerializer(serializers.Serializer):
    t = serializers.DateTimeField(help_text="Reading time, or the start of its bucket.")
    value = serializers.FloatField(allow_null=True, help_text="Mean over the bucket.")
    min = serializers.FloatField(allow_null=True)
    max = serializers.FloatField(allow_null=True)
    count = serializers.IntegerField()
    text = serializers.CharField(allow_null=True, help_text="For code values (fault_code).")


class SeriesSerializer(serializers.Serializer):
    device_id = serializers.CharField()
    name = serializers.CharField()
    label = serializers.CharField()
    unit = serializers.CharField()
    resolution = serializers.ChoiceField(choices=["raw", "hour"])
    bucket_s = serializers.IntegerField(
        allow_null=True, help_text="Width of the averaging buckets; null for single readings."
    )
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    truncated = serializers.BooleanField()
    points = SeriesPointSerializer(many=True)


# --- A tenant's home -------------------------------------------------------------------------


class HomeUnitSerializer(serializers.Serializer):
    device_id = serializers.CharField()
    kind = serializers.ChoiceField(choices=DeviceKind.choices)
    label = serializers.CharField()
    status = serializers.ChoiceField(choices=DeviceStatus.choices)
    last_seen_at = serializers.DateTimeField(allow_null=True)
    reporting_interval_s = serializers.IntegerField(help_text="How often the unit reports.")
    readings = CurrentReadingSerializer(many=True)


class HomeDwellingSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    reference = serializers.CharField()
    units = HomeUnitSerializer(many=True)


class CollectedSerializer(serializers.Serializer):
    name = serializers.CharField()
    kind = serializers.ChoiceField(choices=DeviceKind.choices)
    label = serializers.CharField()
    unit = serializers.CharField()
    purposes = serializers.ListField(child=serializers.CharField())


class HomeReadingsSerializer(serializers.Serializer):
    language = serializers.CharField()
    dwellings = HomeDwellingSerializer(many=True)
    collected = CollectedSerializer(many=True, help_text="What the units send, and why.")
    who_sees = serializers.CharField()
    retention = serializers.CharField()
    raw_retention_days = serializers.IntegerField()
    aggregate_retention_days = serializers.IntegerField()


# --- Quarantine ------------------------------------------------------------------------------


class QuarantineOutputSerializer(serializers.ModelSerializer):
    raw_b64 = serializers.SerializerMethodField()
    raw_text = serializers.SerializerMethodField()

    class Meta:
        model = Quarantine
        fields = [
            "id",
            "topic",
            "device_ref",
            "reason",
            "detail",
            "size",
            "received_at",
            "raw_b64",
            "raw_text",
        ]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.STR)
    def get_raw_b64(self, row: Quarantine) -> str:
        return base64.b64encode(bytes(row.raw)).decode("ascii")

    @extend_schema_field(OpenApiTypes.STR)
    def get_raw_text(self, row: Quarantine) -> str:
        """The first bytes as text, unprintable characters replaced."""
        text = bytes(row.raw).decode("utf-8", "replace")
        return "".join(c if c.isprintable() else "\ufffd" for c in text)
