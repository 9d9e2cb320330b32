"""Shapes of the rent receipt and balance endpoints."""

from rest_framework import serializers

from .models import LedgerImport, RentReceipt


class RentReceiptOutputSerializer(serializers.ModelSerializer):
    lease_reference = serializers.CharField(source="lease.reference")
    rent = serializers.DecimalField(source="line.rent", max_digits=10, decimal_places=2)
    charges = serializers.DecimalField(source="line.charges", max_digits=10, decimal_places=2)
    amount_paid = serializers.DecimalField(
        source="line.amount_paid", max_digits=10, decimal_places=2
    )
    payment_date = serializers.DateField(source="line.payment_date", allow_null=True)

    class Meta:
        model = RentReceipt
        fields = [
            "id",
            "lease",
            "lease_reference",
            "period",
            "kind",
            "rent",
            "charges",
            "amount_paid",
            "payment_date",
            "version",
            "generated_at",
            "sha256",
        ]


class LedgerImportInputSerializer(serializers.Serializer):
    file = serializers.FileField(
        help_text=(
            "CSV: lease_reference or dwelling_reference, period, rent, charges, amount_paid, "
            "payment_date."
        )
    )
    dry_run = serializers.BooleanField(required=False, default=False)


class ImportErrorSerializer(serializers.Serializer):
    row = serializers.IntegerField()
    field = serializers.CharField()
    message = serializers.CharField()


class LedgerImportOutputSerializer(serializers.ModelSerializer):
    errors = ImportErrorSerializer(many=True)

    class Meta:
        model = LedgerImport
        fields = [
            "id",
            "file_name",
            "dry_run",
            "rows",
            "created",
            "updated",
            "unchanged",
            "errors",
            "created_at",
        ]


class BalanceOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField(help_text="The lease.")
    reference = serializers.CharField()
    dwelling = serializers.UUIDField(source="dwelling_id")
    dwelling_reference = serializers.CharField(source="dwelling.reference")
    start_date = serializers.DateField()
    end_date = serializers.DateField(allow_null=True)
    total_due = serializers.DecimalField(max_digits=12, decimal_places=2)
    total_paid = serializers.DecimalField(max_digits=12, decimal_places=2)
    balance = serializers.SerializerMethodField(
        help_text="What remains to pay (negative: paid in advance)."
    )
    last_period = serializers.DateField(allow_null=True)
    last_payment_date = serializers.DateField(allow_null=True)
    last_payment_amount = serializers.DecimalField(max_digits=10, decimal_places=2, allow_null=True)

    def get_balance(self, obj) -> str:
        return f"{obj.total_due - obj.total_paid:.2f}"
