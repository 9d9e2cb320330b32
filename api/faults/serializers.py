"""Shapes of the faults API."""

from rest_framework import serializers

from api.telemetry.serializers import SeriesPointSerializer

from .models import Fault, FaultEvent, FaultStateKind, RuleOverride, RuleVersion, Severity
from .rules import RULES_BY_ID


class FaultOutputSerializer(serializers.ModelSerializer):
    device_id = serializers.CharField(source="device.device_id", read_only=True)
    residence_id = serializers.UUIDField(read_only=True)
    residence_name = serializers.CharField(source="residence.name", read_only=True)
    building_id = serializers.UUIDField(read_only=True, allow_null=True)
    building_reference = serializers.SerializerMethodField()
    dwelling_id = serializers.UUIDField(read_only=True, allow_null=True)
    dwelling_reference = serializers.SerializerMethodField()
    ticket_id = serializers.UUIDField(read_only=True, allow_null=True)
    ticket_reference = serializers.SerializerMethodField()
    incident_id = serializers.UUIDField(read_only=True, allow_null=True)

    class Meta:
        model = Fault
        fields = [
            "id",
            "rule",
            "rule_version",
            "title",
            "category",
            "severity",
            "state",
            "condition_active",
            "detail",
            "values",
            "device_id",
            "residence_id",
            "residence_name",
            "building_id",
            "building_reference",
            "dwelling_id",
            "dwelling_reference",
            "raised_at",
            "since",
            "cleared_at",
            "closed_at",
            "acknowledged_at",
            "shelved_until",
            "shelve_reason",
            "repeat_count",
            "last_repeat_at",
            "ticket_id",
            "ticket_reference",
            "incident_id",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_building_reference(self, fault) -> str | None:
        return fault.building.reference if fault.building_id else None

    def get_dwelling_reference(self, fault) -> str | None:
        return fault.dwelling.reference if fault.dwelling_id else None

    def get_ticket_reference(self, fault) -> str | None:
        return fault.ticket.reference if fault.ticket_id else None


class FaultEventSerializer(serializers.ModelSerializer):
    actor_id = serializers.UUIDField(read_only=True, allow_null=True)
    actor_name = serializers.SerializerMethodField()

    class Meta:
        model = FaultEvent
        fields = ["id", "kind", "at", "from_state", "to_state", "note", "data", "actor_id"]
        fields += ["actor_name", "created_at"]
        read_only_fields = fields

    def get_actor_name(self, event) -> str | None:
        return event.actor.get_full_name() if event.actor_id else None


class FaultDetailSerializer(FaultOutputSerializer):
    events = FaultEventSerializer(many=True, read_only=True)
    rule_source = serializers.SerializerMethodField()

    class Meta(FaultOutputSerializer.Meta):
        fields = [*FaultOutputSerializer.Meta.fields, "rule_source", "events"]
        read_only_fields = fields

    def get_rule_source(self, fault) -> str:
        rule = RULES_BY_ID.get(fault.rule)
        return rule.source if rule else ""


class FaultNoteInputSerializer(serializers.Serializer):
    note = serializers.CharField(required=False, allow_blank=True, max_length=2000, default="")


class FaultShelveInputSerializer(serializers.Serializer):
    until = serializers.DateTimeField()
    reason = serializers.CharField(max_length=300)

    def validate_until(self, value):
        if not 2000 <= value.year <= 2999:
            raise serializers.ValidationError("Years 2000 to 2999 only.")
        return value


class FaultCommentInputSerializer(serializers.Serializer):
    text = serializers.CharField(max_length=5000)


class FaultReadingsSeriesSerializer(serializers.Serializer):
    name = serializers.CharField()
    resolution = serializers.ChoiceField(choices=["raw", "hour"])
    bucket_s = serializers.IntegerField(allow_null=True)
    truncated = serializers.BooleanField()
    points = SeriesPointSerializer(many=True)


class FaultReadingsSerializer(serializers.Serializer):
    fault_id = serializers.UUIDField()
    device_id = serializers.CharField()
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    raised_at = serializers.DateTimeField()
    cleared_at = serializers.DateTimeField(allow_null=True)
    series = FaultReadingsSeriesSerializer(many=True)


class BoardFaultSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    rule = serializers.CharField()
    title = serializers.CharField()
    severity = serializers.ChoiceField(choices=Severity.choices)
    state = serializers.ChoiceField(choices=FaultStateKind.choices)
    raised_at = serializers.DateTimeField()
    repeat_count = serializers.IntegerField()


class BoardDeviceSerializer(serializers.Serializer):
    device_id = serializers.CharField()
    kind = serializers.CharField()
    model = serializers.CharField(allow_blank=True)
    status = serializers.CharField()
    last_seen_at = serializers.DateTimeField(allow_null=True)
    dwelling = serializers.UUIDField(allow_null=True)
    dwelling_reference = serializers.CharField(allow_blank=True)
    common_area = serializers.UUIDField(allow_null=True)
    health = serializers.ChoiceField(choices=["ok", "fault", "offline"])
    worst_severity = serializers.ChoiceField(choices=Severity.choices, allow_null=True)
    faults = BoardFaultSerializer(many=True)


class DeviceBoardSerializer(serializers.Serializer):
    residence_id = serializers.UUIDField()
    devices = BoardDeviceSerializer(many=True)


class FaultTeamAlarmsSerializer(serializers.Serializer):
    team = serializers.UUIDField()
    team_name = serializers.CharField()
    count = serializers.IntegerField()


class FaultMetricsSerializer(serializers.Serializer):
    at = serializers.DateTimeField()
    alarms_per_team_10_min = FaultTeamAlarmsSerializer(many=True)
    standing = serializers.IntegerField(help_text="Faults active for more than 24 h.")
    standing_ids = serializers.ListField(child=serializers.UUIDField())
    chattering = serializers.IntegerField(help_text="≥ 3 changes within a minute, last hour.")
    chattering_ids = serializers.ListField(child=serializers.UUIDField())
    open = serializers.IntegerField()


class RuleOverrideOutputSerializer(serializers.ModelSerializer):
    residence_id = serializers.UUIDField(read_only=True, allow_null=True)
    definition = serializers.SerializerMethodField()

    class Meta:
        model = RuleOverride
        fields = [
            "id",
            "rule",
            "device_model",
            "residence_id",
            "enabled",
            "changes",
            "severity",
            "source",
            "version",
            "definition",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_definition(self, override) -> dict:
        import msgspec

        from .services import effective_rule

        try:
            return msgspec.to_builtins(effective_rule(override=override))
        except Exception:  # noqa: BLE001 - an invalid stored change shows as empty
            return {}


def _has_nul(value) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


class RuleChangesField(serializers.DictField):
    """A rule's changed fields, stored as JSON: PostgreSQL refuses NUL characters there."""

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if _has_nul(value):
            raise serializers.ValidationError("Null characters are not allowed.")
        return value


class RuleOverrideInputSerializer(serializers.Serializer):
    rule = serializers.ChoiceField(choices=sorted(RULES_BY_ID))
    device_model = serializers.CharField(max_length=64, required=False, allow_blank=True)
    residence = serializers.UUIDField(required=False, allow_null=True)
    enabled = serializers.BooleanField(required=False, default=True)
    changes = RuleChangesField(required=False, default=dict)
    severity = serializers.ChoiceField(choices=Severity.choices, required=False)
    source = serializers.CharField(max_length=2000)


class RuleOverrideUpdateSerializer(serializers.Serializer):
    enabled = serializers.BooleanField(required=False)
    changes = RuleChangesField(required=False)
    severity = serializers.ChoiceField(choices=Severity.choices, required=False)
    source = serializers.CharField(max_length=2000, required=False)


class RuleVersionSerializer(serializers.ModelSerializer):
    class Meta:
        model = RuleVersion
        fields = ["id", "version", "enabled", "changes", "severity", "source", "definition"]
        fields += ["created_by", "created_at"]
        read_only_fields = fields


class FaultCalendarSerializer(serializers.Serializer):
    """The organisation's time zone and heating season, as its fault rules read them."""

    time_zone = serializers.CharField(max_length=64)
    season_start = serializers.RegexField(
        r"^\d{2}-\d{2}$", help_text="First day of the heating season, MM-DD."
    )
    season_end = serializers.RegexField(
        r"^\d{2}-\d{2}$", help_text="Last day of the heating season, MM-DD."
    )
    source = serializers.CharField(max_length=2000, allow_blank=True, required=False, default="")
    is_default = serializers.BooleanField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True, allow_null=True)
