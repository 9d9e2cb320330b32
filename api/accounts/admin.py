from django.contrib import admin
from unfold.admin import ModelAdmin

from .models import User


@admin.register(User)
class UserAdmin(ModelAdmin):
    list_display = ["__str__", "role", "organisation", "phone", "email", "is_active"]
    list_filter = ["role", "organisation", "is_active"]
    search_fields = ["first_name", "last_name", "email", "phone"]
    readonly_fields = ["last_login", "date_joined"]
    exclude = ["password"]
