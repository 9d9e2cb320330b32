"""Two workers ingesting batches of the same device at the same time lose no update."""

import threading
import time

import pytest
from django.db import connection
from django.utils import timezone

from api.telemetry.ingest import ingest_batch
from api.telemetry.models import DeviceEvent
from tests.factories.telemetry import DeviceFactory, telemetry_item


@pytest.mark.django_db(transaction=True)
def test_concurrent_batches_of_one_device_serialise_without_lost_updates():
    """One worker stores buffered readings from hours ago while another stores live ones.

    Without the per-device lock, both read the same state and the later write wins: the
    earliest hour to re-aggregate is lost, the sequence number goes back, or the unit gets
    announced online twice.
    """
    device = DeviceFactory()
    now = time.time()
    old_hour = timezone.now().replace(minute=0, second=0, microsecond=0).timestamp() - 5 * 3600
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def worker(base: float, seqs: range) -> None:
        try:
            barrier.wait(timeout=10)
            for start in range(seqs.start, seqs.stop, 4):
                items = [
                    telemetry_item(device, seq=seq, ts=base + seq, received_at=now - 100 + seq)
                    for seq in range(start, min(start + 4, seqs.stop))
                ]
                ingest_batch(items)
        except BaseException as error:  # noqa: BLE001 - reported by the main thread
            errors.append(error)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=worker, args=(old_hour + 60, range(1, 41))),
        threading.Thread(target=worker, args=(now - 100, range(41, 81))),
    ]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert not errors, errors
        device.refresh_from_db()
        assert device.aggregate_dirty_since.timestamp() == old_hour
        assert device.last_seq == 80
        assert DeviceEvent.objects.filter(device=device, kind="online").count() == 1
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*), count(DISTINCT seq) FROM telemetry_reading WHERE device_id = %s",
                [device.id],
            )
            assert cursor.fetchone() == (80, 80)
    finally:
        # The reading table is not a Django-managed table: the test flush does not empty it.
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM telemetry_reading WHERE device_id = %s", [device.id])
