"""Shapes of the privacy endpoints."""

from rest_framework import serializers

from . import services
from .models import DataExport, ErasureRequest, Rectification
from .selectors import display_viewer


class ExportRequestSerializer(serializers.Serializer):
    """Nothing to give: the person is the caller, or the tenant staff act for."""


class ExportOutputSerializer(serializers.ModelSerializer):
    """An export: its state and, once ready, its signed links."""

    download = serializers.SerializerMethodField()

    class Meta:
        model = DataExport
        fields = [
            "id",
            "subject",
            "status",
            "created_at",
            "ready_at",
            "expires_at",
            "sections",
            "download",
        ]

    def get_download(self, obj) -> dict:
        request = self.context.get("request")
        base = request.build_absolute_uri("/") if request is not None else ""
        return services.export_download_urls(obj, base)


class AccessLogSerializer(serializers.Serializer):
    """One read of the person's data by a member of staff."""

    at = serializers.DateTimeField()
    who = serializers.SerializerMethodField()
    role = serializers.CharField(source="viewer_role")
    context = serializers.CharField()

    def get_who(self, obj) -> str:
        return display_viewer(obj.viewer, obj.viewer_role)


class ErasureInputSerializer(serializers.Serializer):
    """Whom to erase, and why (the person's request, as received)."""

    person = serializers.UUIDField()
    reason = serializers.CharField(max_length=1000, trim_whitespace=True)


class ErasureOutputSerializer(serializers.ModelSerializer):
    """An erasure request and what it did."""

    class Meta:
        model = ErasureRequest
        fields = [
            "id",
            "subject",
            "requested_by",
            "requested_by_role",
            "reason",
            "created_at",
            "executed_at",
            "summary",
        ]


class RectificationInputSerializer(serializers.Serializer):
    """Whom to correct, what, and why; only the fields given are changed."""

    person = serializers.UUIDField()
    reason = serializers.CharField(max_length=1000, trim_whitespace=True)
    first_name = serializers.CharField(max_length=150, required=False, allow_blank=True)
    last_name = serializers.CharField(max_length=150, required=False, allow_blank=True)
    phone = serializers.CharField(max_length=30, required=False, allow_blank=True)
    email = serializers.EmailField(max_length=254, required=False, allow_blank=True)

    def validate_phone(self, value: str):
        if not value:
            return None
        from phonenumber_field.phonenumber import to_python

        number = to_python(value, region="FR")
        if number is None or not number.is_valid():
            raise serializers.ValidationError("Not a valid phone number.")
        return number.as_e164

    def validate_email(self, value: str):
        return value.lower() or None


class RectificationOutputSerializer(serializers.ModelSerializer):
    """A correction: who, whose, which fields, why."""

    class Meta:
        model = Rectification
        fields = [
            "id",
            "subject",
            "requested_by",
            "requested_by_role",
            "reason",
            "fields",
            "created_at",
        ]
