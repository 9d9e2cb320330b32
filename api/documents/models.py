"""Rent-ledger lines imported from the landlord's accounting system, and rent receipts."""

from django.conf import settings
from django.db import models
from django.db.models import Q

from api.core.models import BaseModel


class LandlordProfile(BaseModel):
    """What a rent receipt says of the landlord: legal name, address, who signs."""

    organisation = models.OneToOneField(
        "estate.Organisation", on_delete=models.CASCADE, related_name="landlord_profile"
    )
    legal_name = models.CharField(max_length=200)
    address = models.CharField(max_length=300)
    postcode = models.CharField(max_length=10)
    city = models.CharField(max_length=100)
    siret = models.CharField(max_length=14, blank=True)
    signatory_name = models.CharField(max_length=200, blank=True)
    signatory_title = models.CharField(max_length=200, blank=True, default="Le bailleur")

    def __str__(self) -> str:
        return self.legal_name


class RentLedgerLine(BaseModel):
    """One month of a lease in the accounting system: what was due and what was paid."""

    organisation = models.ForeignKey(
        "estate.Organisation", on_delete=models.PROTECT, related_name="+"
    )
    lease = models.ForeignKey("estate.Lease", on_delete=models.PROTECT, related_name="ledger_lines")
    period = models.DateField(help_text="First day of the month.")
    rent = models.DecimalField(max_digits=10, decimal_places=2)
    charges = models.DecimalField(max_digits=10, decimal_places=2)
    amount_paid = models.DecimalField(max_digits=10, decimal_places=2)
    payment_date = models.DateField(null=True, blank=True)
    source = models.CharField(max_length=200, blank=True, help_text="The imported file.")

    class Meta:
        ordering = ["-period"]
        constraints = [
            models.UniqueConstraint(fields=["lease", "period"], name="ledger_line_one_per_month"),
            models.CheckConstraint(
                condition=Q(rent__gte=0) & Q(charges__gte=0) & Q(amount_paid__gte=0),
                name="ledger_line_amounts_not_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.lease_id} {self.period:%Y-%m}"

    @property
    def amount_due(self):
        return self.rent + self.charges

    @property
    def paid_in_full(self) -> bool:
        return self.amount_paid >= self.amount_due


class ReceiptKind(models.TextChoices):
    """A quittance once the month is paid in full; a receipt of the sum paid before that."""

    QUITTANCE = "quittance", "Rent receipt (quittance)"
    PARTIAL = "partial", "Receipt of a partial payment"


def receipt_path(instance, filename: str) -> str:
    return f"receipts/{instance.organisation_id}/{instance.lease_id}/{filename}"


class RentReceipt(BaseModel):
    """The PDF receipt of one month of a lease, regenerated when the ledger line changes."""

    organisation = models.ForeignKey(
        "estate.Organisation", on_delete=models.PROTECT, related_name="+"
    )
    lease = models.ForeignKey("estate.Lease", on_delete=models.PROTECT, related_name="receipts")
    line = models.OneToOneField(RentLedgerLine, on_delete=models.CASCADE, related_name="receipt")
    period = models.DateField()
    kind = models.CharField(max_length=10, choices=ReceiptKind.choices)
    file = models.FileField(upload_to=receipt_path, max_length=300)
    sha256 = models.CharField(max_length=64)
    version = models.PositiveIntegerField(default=1)
    generated_at = models.DateTimeField()
    generated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-period"]
        indexes = [models.Index(fields=["lease", "-period"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.period:%Y-%m}"


class LedgerImport(BaseModel):
    """One import of a rent-ledger file: what it changed and which rows it refused."""

    organisation = models.ForeignKey(
        "estate.Organisation", on_delete=models.PROTECT, related_name="+"
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    file_name = models.CharField(max_length=200)
    dry_run = models.BooleanField(default=False)
    rows = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.file_name} ({self.rows} rows)"
