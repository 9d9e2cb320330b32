"""Celery tasks of the telemetry app: routing, database waits, and the tasks themselves."""

import time
import zlib

import pytest
from django.db import OperationalError

from api.telemetry import routing, tasks
from api.telemetry.models import Quarantine
from tests.factories.telemetry import DeviceFactory, telemetry_item


def test_batches_are_routed_to_their_devices_shard(settings):
    settings.INGEST_SHARDS = 4
    shard = zlib.crc32(b"hx-abc") % 4
    items = [{"device_id": "hx-abc"}]

    assert routing.route_task("telemetry.ingest_batch", [items], {}, {}) == {
        "queue": f"ingest.{shard}"
    }
    assert routing.route_task("telemetry.quarantine_batch", [[]], {}, {}) == {
        "queue": "ingest.quarantine"
    }
    assert routing.route_task("core.worker_heartbeat", [], {}, {}) is None
    assert routing.ingest_queues() == [
        "ingest.0",
        "ingest.1",
        "ingest.2",
        "ingest.3",
        "ingest.quarantine",
    ]


def test_ingest_tasks_are_late_acked_and_requeued_if_the_worker_dies():
    for task in (tasks.ingest_batch, tasks.quarantine_batch):
        assert task.acks_late and task.reject_on_worker_lost


def test_a_batch_waits_while_the_database_is_unreachable(monkeypatch):
    monkeypatch.setattr(tasks, "DB_WAIT_S", 5.0)
    monkeypatch.setattr(tasks.time, "sleep", lambda seconds: None)
    attempts = []

    def flaky(items):
        attempts.append(items)
        if len(attempts) < 3:
            raise OperationalError("connection refused")
        return "stored"

    assert tasks._with_database(flaky, ["x"]) == "stored"
    assert len(attempts) == 3


def test_a_batch_gives_up_waiting_after_a_while_and_is_retried_later(monkeypatch):
    monkeypatch.setattr(tasks, "DB_WAIT_S", 1.0)
    monkeypatch.setattr(tasks.time, "sleep", lambda seconds: None)

    def down(items):
        raise OperationalError("connection refused")

    with pytest.raises(OperationalError):
        tasks._with_database(down, [])


@pytest.mark.django_db
def test_the_ingest_task_stores_a_batch():
    device = DeviceFactory()
    items = [telemetry_item(device, seq=seq) for seq in (1, 2)]

    summary = tasks.ingest_batch.apply(args=[items]).get()
    again = tasks.ingest_batch.apply(args=[items]).get()

    assert summary["stored"] == 2
    assert (again["stored"], again["duplicates"]) == (0, 2)


@pytest.mark.django_db
def test_the_quarantine_task_stores_refused_messages():
    item = {
        "topic": "dt/f/d/telemetry",
        "reason": "not_json",
        "detail": "",
        "raw_b64": "",
        "size": 0,
        "received_at": time.time(),
    }

    assert tasks.quarantine_batch.apply(args=[[item]]).get() == 1
    assert Quarantine.objects.get().reason == "not_json"
