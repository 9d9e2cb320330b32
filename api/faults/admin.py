from django.contrib import admin
from unfold.admin import ModelAdmin, TabularInline

from .models import DeviceRuleStates, Fault, FaultEvent, RuleOverride, RuleVersion


class FaultEventInline(TabularInline):
    model = FaultEvent
    extra = 0
    can_delete = False
    fields = ["at", "kind", "from_state", "to_state", "actor", "note"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Fault)
class FaultAdmin(ModelAdmin):
    list_display = ["rule", "device", "severity", "state", "raised_at", "repeat_count"]
    list_filter = ["state", "severity", "rule"]
    search_fields = ["rule", "title", "device__device_id"]
    list_select_related = ["device"]
    raw_id_fields = ["device", "ticket", "incident", "dwelling", "building", "residence"]
    readonly_fields = ["raised_at", "since", "cleared_at", "closed_at", "values"]
    inlines = [FaultEventInline]


class RuleVersionInline(TabularInline):
    model = RuleVersion
    extra = 0
    can_delete = False
    fields = ["version", "enabled", "severity", "changes", "source", "created_by", "created_at"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(RuleOverride)
class RuleOverrideAdmin(ModelAdmin):
    list_display = ["rule", "organisation", "device_model", "residence", "severity", "version"]
    list_filter = ["rule", "enabled"]
    raw_id_fields = ["residence", "updated_by"]
    readonly_fields = ["version"]
    inlines = [RuleVersionInline]


@admin.register(DeviceRuleStates)
class DeviceRuleStatesAdmin(ModelAdmin):
    list_display = ["device", "event_at", "updated_at"]
    raw_id_fields = ["device"]
