from django.contrib import admin
from unfold.admin import ModelAdmin

from .models import Device, DeviceEvent, Quarantine, QuarantineCounter


@admin.register(Device)
class DeviceAdmin(ModelAdmin):
    list_display = ["device_id", "kind", "organisation", "status", "last_seen_at", "firmware"]
    list_filter = ["kind", "status"]
    search_fields = ["device_id", "model", "firmware"]
    list_select_related = ["organisation"]
    raw_id_fields = ["equipment"]
    readonly_fields = [
        "device_id",
        "password_hash",
        "status_changed_at",
        "last_seen_at",
        "last_message_at",
        "last_boot",
        "last_seq",
        "revoked_at",
        "aggregate_dirty_since",
    ]


@admin.register(DeviceEvent)
class DeviceEventAdmin(ModelAdmin):
    list_display = ["device", "kind", "at"]
    list_filter = ["kind"]
    search_fields = ["device__device_id"]
    list_select_related = ["device"]

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Quarantine)
class QuarantineAdmin(ModelAdmin):
    list_display = ["received_at", "reason", "topic", "size"]
    list_filter = ["reason"]
    search_fields = ["topic", "device_ref"]

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(QuarantineCounter)
class QuarantineCounterAdmin(ModelAdmin):
    list_display = ["day", "reason", "count"]
    list_filter = ["reason"]
