from django.contrib import admin
from unfold.admin import ModelAdmin

from .models import LandlordProfile, LedgerImport, RentLedgerLine, RentReceipt


@admin.register(LandlordProfile)
class LandlordProfileAdmin(ModelAdmin):
    list_display = ["legal_name", "organisation", "city"]


@admin.register(RentLedgerLine)
class RentLedgerLineAdmin(ModelAdmin):
    list_display = ["lease", "period", "rent", "charges", "amount_paid", "payment_date"]
    list_filter = ["period"]
    search_fields = ["lease__reference"]
    raw_id_fields = ["lease", "organisation"]


@admin.register(RentReceipt)
class RentReceiptAdmin(ModelAdmin):
    list_display = ["lease", "period", "kind", "version", "generated_at"]
    list_filter = ["kind"]
    raw_id_fields = ["lease", "line", "organisation", "generated_by"]
    readonly_fields = ["sha256", "version", "generated_at"]


@admin.register(LedgerImport)
class LedgerImportAdmin(ModelAdmin):
    list_display = ["created_at", "file_name", "dry_run", "rows", "created", "updated"]
    readonly_fields = ["errors"]
