from django.contrib import admin
from unfold.admin import ModelAdmin

from .models import DataExport, ErasureRequest, Rectification


class ReadOnlyAdmin(ModelAdmin):
    """Records of a person's rights are written by the services, only read here."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(DataExport)
class DataExportAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "subject", "status", "ready_at", "expires_at"]
    list_filter = ["status"]
    raw_id_fields = ["subject", "requested_by", "organisation"]
    exclude = ["json_file", "pdf_file"]


@admin.register(ErasureRequest)
class ErasureRequestAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "subject", "requested_by", "requested_by_role", "executed_at"]
    raw_id_fields = ["subject", "requested_by", "organisation"]


@admin.register(Rectification)
class RectificationAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "subject", "requested_by", "fields"]
    raw_id_fields = ["subject", "requested_by", "organisation"]
