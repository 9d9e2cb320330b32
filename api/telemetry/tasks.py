"""Celery tasks of the telemetry app: ingest batches from the bridge, and housekeeping."""

import logging
import time

from celery import shared_task
from django.db import InterfaceError, OperationalError, close_old_connections, connection

from . import ingest, services

logger = logging.getLogger(__name__)

# While the database is unreachable a batch waits in place (keeping its queue's order) for up
# to this long, then goes back to the queue with a delay; it is never dropped.
DB_WAIT_S = 60.0
DB_RETRY_COUNTDOWN_S = 30
DB_ERRORS = (OperationalError, InterfaceError)


def _with_database(func, items):
    """Run `func(items)`, waiting with back-off while the database is unreachable."""
    delay, waited = 0.5, 0.0
    while True:
        try:
            return func(items)
        except DB_ERRORS as error:
            if waited >= DB_WAIT_S:
                raise
            logger.warning("database unavailable (%s); retrying in %.1f s", error, delay)
            # The broken connection must go, or every retry fails on it.
            if not connection.in_atomic_block:
                connection.close()
            time.sleep(delay)
            waited += delay
            delay = min(delay * 2, 8.0)
            close_old_connections()


@shared_task(
    name="telemetry.ingest_batch",
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    max_retries=None,
)
def ingest_batch(self, items: list) -> dict:
    """Store one batch of validated MQTT messages (idempotent: redelivery stores nothing)."""
    try:
        return _with_database(_ingest_or_split, items)
    except DB_ERRORS as error:
        raise self.retry(exc=error, countdown=DB_RETRY_COUNTDOWN_S) from error


def _ingest_or_split(items: list[dict]) -> dict:
    """Ingest the batch; should it fail for an unforeseen reason, ingest item by item and
    quarantine the items that still fail, so that one bad item never loses a whole batch."""
    try:
        return ingest.ingest_batch(items).summary()
    except DB_ERRORS:
        raise
    except Exception:
        logger.exception("ingest batch of %d items failed; retrying item by item", len(items))
    totals = {"stored": 0, "duplicates": 0, "quarantined": 0, "unknown": 0, "devices": 0}
    for item in items if isinstance(items, list) else []:
        try:
            summary = ingest.ingest_batch([item]).summary()
        except DB_ERRORS:
            raise
        except Exception as error:  # noqa: BLE001 - kept in quarantine with its reason
            ingest.quarantine_failed_item(item, error)
            totals["quarantined"] += 1
            continue
        for key, value in summary.items():
            totals[key] += value
    return totals


@shared_task(
    name="telemetry.quarantine_batch",
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    max_retries=None,
)
def quarantine_batch(self, items: list[dict]) -> int:
    """Keep the messages the bridge refused, with their reason (idempotent)."""
    try:
        return _with_database(ingest.quarantine_batch, items)
    except DB_ERRORS as error:
        raise self.retry(exc=error, countdown=DB_RETRY_COUNTDOWN_S) from error


@shared_task(name="telemetry.mark_silent_offline", ignore_result=True)
def mark_silent_offline() -> int:
    """Mark units silent for 3 reporting intervals as offline."""
    return services.devices_mark_silent_offline()


@shared_task(name="telemetry.update_aggregates", ignore_result=True)
def update_aggregates() -> int:
    """Recompute the hourly aggregates that new readings changed."""
    return services.reading_aggregates_update()


@shared_task(name="telemetry.prepare_partitions", ignore_result=True)
def prepare_partitions() -> None:
    """Create the coming days' reading partitions ahead of ingest."""
    services.reading_partitions_prepare()


@shared_task(name="telemetry.purge", ignore_result=True)
def purge() -> dict:
    """Apply the retention periods to readings, aggregates and quarantined messages."""
    result = services.telemetry_purge()
    logger.info("telemetry retention applied: %s", result)
    return result
