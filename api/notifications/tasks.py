"""Celery tasks of the notifications app: deliver the outbox, sweep, escalate, publish."""

from celery import shared_task

from . import outbox, services


@shared_task(name="notifications.drain", ignore_result=True, acks_late=True)
def drain() -> dict:
    """Claim and send due deliveries until none is left (or the time budget is spent)."""
    return outbox.drain()


@shared_task(name="notifications.sweep", ignore_result=True)
def sweep() -> dict:
    """Recover deliveries of dead workers and start drains for any due delivery left waiting."""
    return outbox.sweep()


@shared_task(name="notifications.escalate", ignore_result=True)
def escalate() -> dict:
    """Alert escalation, alert digests, and households not reached by a critical notice."""
    return {
        "alerts_escalated": services.alerts_escalate_due(),
        "digests_sent": services.alert_digests_send(),
        "households_listed": services.households_list_unreached(),
    }
