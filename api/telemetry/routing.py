"""Which Celery queue an ingest batch goes to: one queue per device-hash shard."""

import zlib

from django.conf import settings

QUARANTINE_QUEUE = "ingest.quarantine"


def ingest_shard(device_id: str) -> int:
    """The shard of a device: stable across processes and restarts (CRC-32, not hash())."""
    return zlib.crc32(device_id.encode("utf-8")) % settings.INGEST_SHARDS


def ingest_queue(device_id: str) -> str:
    return f"ingest.{ingest_shard(device_id)}"


def ingest_queues() -> list[str]:
    """Every queue a worker must consume for ingest to progress."""
    return [f"ingest.{shard}" for shard in range(settings.INGEST_SHARDS)] + [QUARANTINE_QUEUE]


def route_task(name, args, kwargs, options, task=None, **_kw):
    """Celery router: ingest batches by their first device's shard (the bridge batches per
    shard and names the queue itself; this covers a plain `.delay()`)."""
    if name == "telemetry.quarantine_batch":
        return {"queue": QUARANTINE_QUEUE}
    if name == "telemetry.ingest_batch":
        items = (args or [None])[0] if args else (kwargs or {}).get("items")
        if isinstance(items, list) and items and isinstance(items[0], dict):
            device_id = items[0].get("device_id")
            if isinstance(device_id, str):
                return {"queue": ingest_queue(device_id)}
        return {"queue": "ingest.0"}
    return None
