"""A person's rights over their data: exports of it, erasures and rectifications on request."""

from django.conf import settings
from django.db import models

from api.core.models import BaseModel


class ExportStatus(models.TextChoices):
    """Where an export stands: queued, being built, ready to download, failed, or expired."""

    PENDING = "pending", "Pending"
    RUNNING = "running", "Being built"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"
    EXPIRED = "expired", "Expired"


def export_path(instance, filename: str) -> str:
    return f"privacy/exports/{instance.organisation_id}/{instance.id}/{filename}"


class DataExport(BaseModel):
    """One export of everything Palier holds about a person, as a JSON file and a PDF."""

    organisation = models.ForeignKey(
        "estate.Organisation", on_delete=models.PROTECT, related_name="+"
    )
    subject = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="data_exports"
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    reason = models.CharField(max_length=500, blank=True, help_text="Why staff asked for it.")
    status = models.CharField(
        max_length=10, choices=ExportStatus.choices, default=ExportStatus.PENDING
    )
    json_file = models.FileField(upload_to=export_path, max_length=300, blank=True)
    pdf_file = models.FileField(upload_to=export_path, max_length=300, blank=True)
    sections = models.JSONField(default=dict, blank=True, help_text="Rows per section.")
    started_at = models.DateTimeField(null=True, blank=True)
    ready_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    error = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["subject", "-created_at"], name="export_subject_recent")]

    def __str__(self) -> str:
        return f"export {self.id} ({self.status})"


class ErasureRequest(BaseModel):
    """A person's request to be erased, recorded by staff with its reason, and what was done.

    The row keeps no name: only the person's id, who acted, why, and counts per table.
    """

    organisation = models.ForeignKey(
        "estate.Organisation", on_delete=models.PROTECT, related_name="+"
    )
    subject = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="erasure_requests"
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    requested_by_role = models.CharField(max_length=20)
    reason = models.TextField(max_length=1000)
    executed_at = models.DateTimeField(null=True, blank=True)
    summary = models.JSONField(default=dict, blank=True, help_text="What was scrubbed, by table.")

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"erasure of {self.subject_id}"


class Rectification(BaseModel):
    """A correction of a person's name, phone or e-mail by staff, with its reason.

    Only the names of the corrected fields are kept, not the old values.
    """

    organisation = models.ForeignKey(
        "estate.Organisation", on_delete=models.PROTECT, related_name="+"
    )
    subject = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="rectifications"
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    requested_by_role = models.CharField(max_length=20)
    reason = models.TextField(max_length=1000)
    fields = models.JSONField(default=list, help_text="The fields corrected.")

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"rectification of {self.subject_id}"
