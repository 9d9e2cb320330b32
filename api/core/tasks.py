"""Housekeeping tasks shared by every app."""

from celery import shared_task
from django.core.cache import cache
from django.utils import timezone

WORKER_HEARTBEAT_KEY = "palier:worker-heartbeat"


@shared_task(name="core.worker_heartbeat", ignore_result=True)
def worker_heartbeat() -> None:
    """Record that a worker is consuming the queue (beat sends one every 30 s)."""
    cache.set(WORKER_HEARTBEAT_KEY, timezone.now().isoformat(), timeout=3600)
