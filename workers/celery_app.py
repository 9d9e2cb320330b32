"""The Celery application: configured from Django settings, tasks found in each app's tasks.py."""

import gc
import os

import msgspec
from celery import Celery
from celery.signals import worker_process_init, worker_ready
from kombu.serialization import register

from api.telemetry.batch import INGEST_CONTENT_TYPE, decode_body, encode_body

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "api.config.settings")

# Ingest batches (workers/bridge.py) are plain JSON written and read with msgspec: the same
# bytes Celery's json serializer would carry, without kombu's per-object decoding hook
# (about half the decoding time of a 500-message batch).
BATCH_SERIALIZER = "palier-batch"
BATCH_CONTENT_TYPE = "application/x-palier-batch+json"
register(
    BATCH_SERIALIZER,
    msgspec.json.Encoder().encode,
    msgspec.json.Decoder().decode,
    content_type=BATCH_CONTENT_TYPE,
    content_encoding="utf-8",
)

# Ingest batches proper: items as JSON arrays, decoded straight into typed structs.
INGEST_SERIALIZER = "palier-ingest"
register(
    INGEST_SERIALIZER,
    encode_body,
    decode_body,
    content_type=INGEST_CONTENT_TYPE,
    content_encoding="utf-8",
)

app = Celery("palier")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.accept_content = [*app.conf.accept_content, BATCH_CONTENT_TYPE, INGEST_CONTENT_TYPE]
# Celery's Django fixup closes the database connection before and after every task unless
# told to reuse it: a new PostgreSQL session (a forked backend, cold caches) for every batch.
# A broken connection is still replaced (the ingest task retries on a fresh one).
app.conf.CELERY_DB_REUSE_MAX = int(os.environ.get("CELERY_DB_REUSE_MAX", "1000"))
app.autodiscover_tasks()


@worker_process_init.connect
@worker_ready.connect
def freeze_startup_objects(**_kwargs) -> None:
    """Leave the objects a worker starts with (Django's and Celery's modules, settings, URL
    patterns...) out of the garbage collector's full passes.

    A batch allocates thousands of containers, so the collector runs often; every full pass
    walked these hundreds of thousands of long-lived objects again (about a third of an ingest
    worker's CPU time per message in bench/ingest_store.py). Python's `gc.freeze()` is meant
    for this, and in a forked pool child it also keeps those pages shared with the parent.
    """
    gc.collect()
    gc.freeze()
