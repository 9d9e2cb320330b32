"""Health and readiness against the machine's real PostgreSQL, Redis and Mosquitto."""

import time

import pytest
from celery.contrib.testing.worker import start_worker
from django.core.cache import cache

from api.core.tasks import WORKER_HEARTBEAT_KEY, worker_heartbeat
from workers.celery_app import app as celery_app

pytestmark = pytest.mark.services


def test_health_needs_no_auth(api_client):
    response = api_client.get("/api/health/")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_ready_reports_each_real_dependency(api_client):
    response = api_client.get("/api/ready/")
    body = response.json()
    assert response.status_code == 200, body
    assert body["ready"] is True
    assert body["checks"]["database"]["detail"] == "postgresql"
    assert set(body["checks"]) == {"database", "task_broker", "mqtt_broker"}


@pytest.mark.django_db
def test_ready_is_503_when_mqtt_is_unreachable(api_client, settings):
    settings.MQTT_URL = "mqtt://127.0.0.1:1"
    response = api_client.get("/api/ready/")
    assert response.status_code == 503
    body = response.json()
    assert body["ready"] is False
    assert body["checks"]["mqtt_broker"]["ok"] is False
    assert body["checks"]["database"]["ok"] is True


@pytest.mark.django_db(transaction=True)
def test_a_task_travels_through_redis_to_a_worker():
    cache.delete(WORKER_HEARTBEAT_KEY)
    with start_worker(celery_app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        worker_heartbeat.delay()
        deadline = time.monotonic() + 10
        while cache.get(WORKER_HEARTBEAT_KEY) is None and time.monotonic() < deadline:
            time.sleep(0.1)
    assert cache.get(WORKER_HEARTBEAT_KEY) is not None
    assert celery_app.conf.broker_url.startswith("redis://")
