from django.contrib import admin
from unfold.admin import ModelAdmin

from .models import Organisation


@admin.register(Organisation)
class OrganisationAdmin(ModelAdmin):
    list_display = ["name", "slug"]
    search_fields = ["name", "slug"]
