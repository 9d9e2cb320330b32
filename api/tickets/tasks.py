"""Periodic tasks of the requests app: service-level breaches, visit reminders, auto-close."""

from celery import shared_task

from . import services


@shared_task(name="tickets.detect_sla_breaches", ignore_result=True)
def detect_sla_breaches() -> dict:
    """Flag requests past their targets and escalate them to the agency (beat: every 5 min)."""
    return services.sla_breaches_detect()


@shared_task(name="tickets.send_appointment_reminders", ignore_result=True)
def send_appointment_reminders() -> int:
    """Remind tenants and staff of tomorrow's visits (beat: every 15 min)."""
    return services.appointment_reminders_send()


@shared_task(name="tickets.auto_close_unconfirmed", ignore_result=True)
def auto_close_unconfirmed() -> int:
    """Close resolved requests left unanswered for 7 days (beat: hourly)."""
    return services.tickets_auto_close()
