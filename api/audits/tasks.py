"""Periodic tasks of the audits app."""

from celery import shared_task

from . import reports, services


@shared_task(name="audits.send_survey_invitations", ignore_result=True)
def send_survey_invitations() -> int:
    """Ask the tenants of the entrances audited this week how clean they find them (weekly)."""
    return services.survey_invitations_weekly()


@shared_task(name="audits.store_monthly_reports", ignore_result=True)
def store_monthly_reports(month: str | None = None) -> int:
    """Render last month's PDF per residence and per contractor ahead of reading (monthly)."""
    import datetime as dt

    day = dt.date.fromisoformat(month) if month else None
    return reports.monthly_reports_store(month=day)
