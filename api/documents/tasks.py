"""Celery tasks of the documents app."""

from celery import shared_task

from . import services


@shared_task(name="documents.generate_receipts", ignore_result=True, acks_late=True)
def generate_receipts(line_ids: list[str]) -> int:
    """Generate the PDF receipts of these ledger lines (idempotent: regenerating is harmless)."""
    return services.receipts_generate(line_ids=line_ids)
