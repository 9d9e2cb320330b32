"""The worker processes `palier run` and `palier ingest-workers` start, from INGEST_SHARDS."""

from workers import supervisor


def test_the_embedded_worker_consumes_every_shard_queue(settings):
    settings.INGEST_SHARDS = 3

    command = supervisor.process_commands(with_simulator=False, devices=1)["worker"]

    assert "celery,ingest.0,ingest.1,ingest.2,ingest.quarantine" in command


def test_ingest_workers_run_one_single_process_worker_per_shard():
    commands = supervisor.ingest_worker_commands([0, 1, 2], ["--loglevel", "WARNING"])

    assert list(commands) == ["ingest-0", "ingest-1", "ingest-2"]
    assert "-Q ingest.1 --concurrency 1 -n ingest-1@%h" in commands["ingest-1"]
    assert commands["ingest-2"].endswith("--loglevel WARNING")
