"""Celery tasks of the privacy app."""

from celery import shared_task

from . import services


@shared_task(name="privacy.build_export", ignore_result=True, acks_late=True)
def build_export(export_id: str) -> None:
    """Build the JSON and PDF files of an export (idempotent: a built export is left alone)."""
    services.export_build(export_id=export_id)


@shared_task(name="privacy.expire_exports", ignore_result=True)
def expire_exports() -> int:
    """Delete the files of exports whose download link has expired."""
    return services.exports_expire()


@shared_task(name="privacy.retention", ignore_result=True)
def retention() -> dict:
    """Nightly: delete or anonymise what has been kept long enough (idempotent)."""
    from .retention import retention_run

    report = retention_run()
    return {"total": report.total, "lines": report.lines}


@shared_task(name="privacy.execute_erasure", ignore_result=True, acks_late=True)
def execute_erasure(request_id: str) -> None:
    """Scrub an erased person's details from every table (idempotent: done once)."""
    services.erasure_execute(request_id=request_id)
