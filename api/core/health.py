"""Liveness and readiness checks of the process and of what it depends on."""

import secrets
import socket
import time
from urllib.parse import urlparse

from django.conf import settings
from django.db import connection


def _timed(check) -> dict:
    started = time.monotonic()
    try:
        detail = check()
        ok = True
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready", reported as text
        ok, detail = False, f"{type(exc).__name__}: {exc}"[:300]
    return {"ok": ok, "detail": detail, "ms": round((time.monotonic() - started) * 1000, 1)}


def check_database() -> str:
    """The database answers a trivial query."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return connection.vendor


def check_task_broker() -> str:
    """The Celery broker accepts a connection."""
    from workers.celery_app import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)
        return conn.transport_cls if isinstance(conn.transport_cls, str) else "connected"


def _mqtt_connect_packet(client_id: str) -> bytes:
    """A bare MQTT 3.1.1 CONNECT (clean session, no credentials)."""
    cid = client_id.encode()
    variable = b"\x00\x04MQTT\x04\x02\x00\x0a" + len(cid).to_bytes(2, "big") + cid
    return bytes([0x10, len(variable)]) + variable


def check_mqtt_broker() -> str:
    """The MQTT broker answers a CONNECT with a CONNACK (accepted or not: it is there)."""
    url = urlparse(settings.MQTT_URL)
    host = url.hostname or "127.0.0.1"
    port = url.port or 1883
    with socket.create_connection((host, port), timeout=2) as sock:
        sock.settimeout(2)
        sock.sendall(_mqtt_connect_packet(f"palier-ready-{secrets.token_hex(4)}"))
        connack = sock.recv(4)
        if len(connack) < 2 or connack[0] != 0x20:
            raise ConnectionError("no CONNACK from the MQTT broker")
        if len(connack) == 4 and connack[3] == 0:
            sock.sendall(b"\xe0\x00")  # DISCONNECT
    return f"{host}:{port}"


def last_worker_heartbeat() -> str | None:
    """When a worker last ran the heartbeat task (informational: workers may scale to zero)."""
    from django.core.cache import cache

    from .tasks import WORKER_HEARTBEAT_KEY

    try:
        return cache.get(WORKER_HEARTBEAT_KEY)
    except Exception:  # noqa: BLE001 - an unreachable cache must not fail the readiness probe
        return None


def readiness() -> dict:
    """Each dependency's state; ready only if all are."""
    checks = {
        "database": _timed(check_database),
        "task_broker": _timed(check_task_broker),
        "mqtt_broker": _timed(check_mqtt_broker),
    }
    return {
        "ready": all(c["ok"] for c in checks.values()),
        "checks": checks,
        "worker_heartbeat": last_worker_heartbeat(),
    }
