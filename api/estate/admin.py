from django.contrib import admin
from import_export.admin import ImportExportMixin
from unfold.admin import ModelAdmin, TabularInline
from unfold.contrib.import_export.forms import ExportForm, ImportForm

from .models import (
    Agency,
    AgencyMembership,
    Building,
    CaretakerAssignment,
    CommonArea,
    Contractor,
    ContractorContract,
    ContractorMember,
    Delegation,
    Dwelling,
    Entrance,
    Equipment,
    EstateEvent,
    HouseholdMember,
    Lease,
    Organisation,
    Residence,
    Team,
    TeamMembership,
    TeamSector,
)
from .resources import EstateRegisterResource


@admin.register(Organisation)
class OrganisationAdmin(ModelAdmin):
    list_display = ["name", "slug"]
    search_fields = ["name", "slug"]


class AgencyMembershipInline(TabularInline):
    model = AgencyMembership
    autocomplete_fields = ["user"]
    extra = 0


@admin.register(Agency)
class AgencyAdmin(ModelAdmin):
    list_display = ["name", "organisation"]
    list_filter = ["organisation"]
    search_fields = ["name"]
    inlines = [AgencyMembershipInline]


class CaretakerAssignmentInline(TabularInline):
    model = CaretakerAssignment
    autocomplete_fields = ["caretaker"]
    extra = 0


@admin.register(Residence)
class ResidenceAdmin(ModelAdmin):
    list_display = ["name", "reference", "agency", "city", "priority_neighbourhood"]
    list_filter = ["organisation", "priority_neighbourhood", "agency"]
    search_fields = ["name", "reference", "address", "city", "postcode"]
    list_select_related = ["agency"]
    inlines = [CaretakerAssignmentInline]


@admin.register(Building)
class BuildingAdmin(ModelAdmin):
    list_display = ["reference", "residence"]
    list_filter = ["organisation"]
    search_fields = ["reference", "residence__name", "residence__reference"]
    autocomplete_fields = ["residence"]
    list_select_related = ["residence"]


@admin.register(Entrance)
class EntranceAdmin(ModelAdmin):
    list_display = ["reference", "label", "building"]
    list_filter = ["organisation"]
    search_fields = ["reference", "label", "building__reference"]
    autocomplete_fields = ["building"]
    list_select_related = ["building"]


@admin.register(Dwelling)
class DwellingAdmin(ImportExportMixin, ModelAdmin):
    """Also imports and exports the register (one row per dwelling)."""

    resource_classes = [EstateRegisterResource]
    import_form_class = ImportForm
    export_form_class = ExportForm
    list_display = ["reference", "entrance", "floor", "door", "type", "surface"]
    list_filter = ["organisation", "type"]
    search_fields = ["reference", "door"]
    autocomplete_fields = ["entrance"]
    list_select_related = ["entrance"]


@admin.register(CommonArea)
class CommonAreaAdmin(ModelAdmin):
    list_display = ["__str__", "kind", "entrance", "building", "residence"]
    list_filter = ["organisation", "kind"]
    search_fields = ["name"]
    autocomplete_fields = ["entrance", "building", "residence"]


@admin.register(Equipment)
class EquipmentAdmin(ModelAdmin):
    list_display = ["__str__", "kind", "serial", "dwelling", "common_area", "install_date"]
    list_filter = ["organisation", "kind"]
    search_fields = ["make", "model", "serial"]
    autocomplete_fields = ["dwelling", "common_area", "serves_dwellings", "serves_entrances"]


class HouseholdMemberInline(TabularInline):
    model = HouseholdMember
    autocomplete_fields = ["person"]
    extra = 0


@admin.register(Lease)
class LeaseAdmin(ModelAdmin):
    list_display = ["reference", "dwelling", "start_date", "end_date"]
    list_filter = ["organisation"]
    search_fields = ["reference", "dwelling__reference"]
    autocomplete_fields = ["dwelling"]
    inlines = [HouseholdMemberInline]


class TeamMembershipInline(TabularInline):
    model = TeamMembership
    autocomplete_fields = ["user"]
    extra = 0


class TeamSectorInline(TabularInline):
    model = TeamSector
    autocomplete_fields = ["residence"]
    extra = 0


@admin.register(Team)
class TeamAdmin(ModelAdmin):
    list_display = ["name", "kind", "organisation"]
    list_filter = ["organisation"]
    search_fields = ["name"]
    inlines = [TeamMembershipInline, TeamSectorInline]


class ContractorContractInline(TabularInline):
    model = ContractorContract
    autocomplete_fields = ["residence"]
    extra = 0


class ContractorMemberInline(TabularInline):
    model = ContractorMember
    autocomplete_fields = ["user"]
    extra = 0


@admin.register(Contractor)
class ContractorAdmin(ModelAdmin):
    list_display = ["name", "trade", "organisation"]
    list_filter = ["organisation", "trade"]
    search_fields = ["name"]
    inlines = [ContractorContractInline, ContractorMemberInline]


@admin.register(Delegation)
class DelegationAdmin(ModelAdmin):
    list_display = ["grantor", "delegate", "relation", "starts_at", "expires_at", "revoked_at"]
    list_filter = ["organisation", "relation"]
    search_fields = ["grantor__last_name", "delegate__last_name"]
    autocomplete_fields = ["grantor", "delegate"]
    readonly_fields = ["created_by", "revoked_by"]


@admin.register(EstateEvent)
class EstateEventAdmin(ModelAdmin):
    """History is append-only: shown, never changed."""

    list_display = ["created_at", "kind", "subject_type", "actor", "on_behalf_of"]
    list_filter = ["organisation", "kind", "subject_type"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
