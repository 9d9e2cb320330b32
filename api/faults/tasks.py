"""Celery tasks of the faults app: the offline sweep, held work, shelving expiry, metrics."""

from celery import shared_task

from . import metrics, services


@shared_task(name="faults.sweep_offline", ignore_result=True)
def sweep_offline() -> int:
    """Raise "unit offline" for units silent too long (the one wall-clock rule)."""
    return services.faults_sweep_offline()


@shared_task(name="faults.dispatch_due", ignore_result=True)
def dispatch_due() -> int:
    """Send the work and alerts of faults whose correlation hold is over."""
    return services.faults_dispatch_due()


@shared_task(name="faults.unshelve_expired", ignore_result=True)
def unshelve_expired() -> int:
    """Bring back the faults whose shelving time is up."""
    return services.faults_unshelve_expired()


@shared_task(name="faults.refresh_metrics", ignore_result=True)
def refresh_metrics() -> dict:
    """Set the alarm-management gauges (alarms per team, standing, chattering)."""
    figures = services.fault_figures()
    metrics.STANDING.set(figures["standing"])
    metrics.CHATTERING.set(figures["chattering"])
    for team, count in figures["alarms_per_team_10_min"].items():
        metrics.ALARMS_10_MIN.labels(team=team).set(count)
    return figures
