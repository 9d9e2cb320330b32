from django.contrib import admin
from unfold.admin import ModelAdmin, TabularInline

from .models import Category, CategoryQuestion, CategoryRoute, Incident, Partner, Ticket


class QuestionInline(TabularInline):
    model = CategoryQuestion
    extra = 0


@admin.register(Category)
class CategoryAdmin(ModelAdmin):
    list_display = ["name", "code", "parent", "organisation", "default_priority", "payer"]
    list_filter = ["organisation", "payer", "default_priority", "is_active"]
    search_fields = ["name", "code"]
    inlines = [QuestionInline]


@admin.register(CategoryRoute)
class CategoryRouteAdmin(ModelAdmin):
    list_display = ["category", "organisation", "residence", "team", "contractor"]
    list_filter = ["organisation"]
    autocomplete_fields = ["category"]


@admin.register(Ticket)
class TicketAdmin(ModelAdmin):
    """Read-only: requests change through the API so that their history stays complete."""

    list_display = ["reference", "category", "status", "priority", "residence", "created_at"]
    list_filter = ["status", "priority", "source", "organisation"]
    search_fields = ["reference", "description"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Incident)
class IncidentAdmin(ModelAdmin):
    list_display = ["category", "residence", "building", "status", "started_at", "ended_at"]
    list_filter = ["status", "organisation"]

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Partner)
class PartnerAdmin(ModelAdmin):
    """Keys are issued by `palier open311_partner add` (shown once, kept hashed)."""

    list_display = ["name", "organisation", "key_prefix", "is_active", "last_used_at"]
    list_filter = ["organisation", "is_active"]
    readonly_fields = ["key_prefix", "key_hash", "last_used_at"]
    filter_horizontal = ["residences"]

    def has_add_permission(self, request):
        return False
