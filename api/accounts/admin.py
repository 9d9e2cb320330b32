from django.contrib import admin
from unfold.admin import ModelAdmin

from .models import LoginCode, PersonalDataAccess, User


@admin.register(User)
class UserAdmin(ModelAdmin):
    list_display = ["__str__", "role", "organisation", "phone", "email", "is_active"]
    list_filter = ["role", "organisation", "is_active"]
    search_fields = ["first_name", "last_name", "email", "phone"]
    readonly_fields = ["last_login", "date_joined"]
    exclude = ["password"]


class ReadOnlyAdmin(ModelAdmin):
    """Shown, never changed from the admin site."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(PersonalDataAccess)
class PersonalDataAccessAdmin(ReadOnlyAdmin):
    """The append-only log of staff reads of people's personal data."""

    list_display = ["at", "viewer", "viewer_role", "subject", "context"]
    list_filter = ["viewer_role", "at"]
    search_fields = ["context", "viewer__email", "subject__last_name"]
    list_select_related = ["viewer", "subject"]
    date_hierarchy = "at"


@admin.register(LoginCode)
class LoginCodeAdmin(ReadOnlyAdmin):
    """Login codes requested in the last 24 hours (hashes only, never the codes)."""

    list_display = ["created_at", "user", "expires_at", "used_at", "throttling_failure_count"]
    list_select_related = ["user"]
    exclude = ["code_hash", "phone_digest"]
