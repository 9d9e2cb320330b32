from django.contrib import admin
from unfold.admin import ModelAdmin, TabularInline

from .models import (
    Broadcast,
    Delivery,
    HouseholdReach,
    Notification,
    NotificationPreference,
    OnCallShift,
    PushDevice,
    TeamAlert,
)


class DeliveryInline(TabularInline):
    model = Delivery
    extra = 0
    can_delete = False
    fields = ["channel", "status", "attempts", "not_before", "sent_at", "last_error"]
    readonly_fields = fields


@admin.register(Notification)
class NotificationAdmin(ModelAdmin):
    list_display = ["created_at", "event", "recipient", "critical", "read_at"]
    list_filter = ["event", "critical"]
    search_fields = ["title", "recipient__last_name", "recipient__phone"]
    list_select_related = ["recipient"]
    raw_id_fields = ["recipient", "actor", "dwelling", "broadcast", "alert", "organisation"]
    readonly_fields = ["batch", "dedupe_key", "read_at"]
    inlines = [DeliveryInline]


@admin.register(Delivery)
class DeliveryAdmin(ModelAdmin):
    list_display = ["created_at", "channel", "status", "attempts", "sent_at", "last_error"]
    list_filter = ["channel", "status"]
    raw_id_fields = ["notification"]
    readonly_fields = ["provider_id", "claimed_until", "detail"]


@admin.register(PushDevice)
class PushDeviceAdmin(ModelAdmin):
    list_display = ["user", "kind", "platform", "last_seen_at", "disabled_at"]
    list_filter = ["kind", "platform"]
    raw_id_fields = ["user"]
    exclude = ["token", "token_hash", "p256dh", "auth"]


@admin.register(NotificationPreference)
class NotificationPreferenceAdmin(ModelAdmin):
    list_display = [
        "user",
        "push_enabled",
        "sms_enabled",
        "email_enabled",
        "quiet_start",
        "quiet_end",
    ]
    raw_id_fields = ["user"]


@admin.register(Broadcast)
class BroadcastAdmin(ModelAdmin):
    list_display = ["created_at", "kind", "critical", "status", "sent_at"]
    list_filter = ["kind", "status", "critical"]
    raw_id_fields = ["residence", "building", "entrance", "created_by", "sent_by", "organisation"]
    readonly_fields = ["status", "sent_at", "sent_by", "batch"]


@admin.register(HouseholdReach)
class HouseholdReachAdmin(ModelAdmin):
    list_display = ["created_at", "event", "dwelling", "reached_at", "listed_at", "visited_at"]
    list_filter = ["event", "reached_via", "visit_outcome"]
    raw_id_fields = ["dwelling", "broadcast", "visited_by", "organisation"]


@admin.register(OnCallShift)
class OnCallShiftAdmin(ModelAdmin):
    list_display = ["team", "user", "position", "starts_at", "ends_at"]
    list_filter = ["team"]
    raw_id_fields = ["user"]


@admin.register(TeamAlert)
class TeamAlertAdmin(ModelAdmin):
    list_display = ["created_at", "team", "event", "critical", "status", "level", "acknowledged_at"]
    list_filter = ["status", "critical", "team"]
    raw_id_fields = ["acknowledged_by", "digest", "organisation"]
