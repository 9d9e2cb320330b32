"""The Celery application: configured from Django settings, tasks found in each app's tasks.py."""

import os

import msgspec
from celery import Celery
from kombu.serialization import register

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

app = Celery("palier")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.accept_content = [*app.conf.accept_content, BATCH_CONTENT_TYPE]
# Celery's Django fixup closes the database connection before and after every task unless
# told to reuse it: a new PostgreSQL session (a forked backend, cold caches) for every batch.
# A broken connection is still replaced (the ingest task retries on a fresh one).
app.conf.CELERY_DB_REUSE_MAX = int(os.environ.get("CELERY_DB_REUSE_MAX", "1000"))
app.autodiscover_tasks()
