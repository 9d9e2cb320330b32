"""`palier run`: prepare the embedded database, then run every process under honcho."""

import argparse
import os
import shlex
import sys
from collections.abc import Sequence

from honcho.manager import Manager
from honcho.printer import Printer

BANNER = """
  Palier is starting (embedded mode: SQLite, embedded MQTT broker, Celery without Redis).

  API docs      http://{host}/api/docs/      (Redoc: /api/redoc/, schema: /api/schema/)
  Admin         http://{host}/admin/         e-mail {admin_email}  password {admin_password}
  Health        http://{host}/api/health/    readiness: /api/ready/

  Log in as the demo tenant or caretaker with a one-time code (see README.md):
    curl -X POST http://{host}/api/v1/auth/otp/request -H 'Content-Type: application/json' \\
         -d '{{"phone": "{tenant_phone}"}}'
    read the code in this log or in var/outbox/sms.jsonl, POST it to /api/v1/auth/otp/verify.
    Demo caretaker: {caretaker_phone}

  Ctrl-C stops everything.
"""


def _python_cmd(*args: str) -> str:
    return "exec " + " ".join(shlex.quote(a) for a in (sys.executable, "-m", "api.cli", *args))


def process_commands(*, with_simulator: bool, devices: int) -> dict[str, str]:
    """The processes `palier run` starts, as shell commands (the containers' commands)."""
    from api.cli import available_processes

    present = available_processes()
    commands = {
        "web": _python_cmd("web"),
        "mqtt": _python_cmd("mqtt-broker"),
        # One worker for everything: SQLite takes one writer at a time anyway.
        "worker": _python_cmd(
            "worker", "--concurrency", "2", "-Q", ",".join(["celery", *_ingest_queues()])
        ),
        "beat": _python_cmd("beat"),
    }
    if "bridge" in present:
        commands["bridge"] = _python_cmd("bridge")
    if with_simulator and "simulate" in present:
        commands["simulator"] = _python_cmd("simulate", "--devices", str(devices), "--from-demo")
    return commands


def _ingest_queues() -> list[str]:
    from api.telemetry.routing import ingest_queues

    return ingest_queues()


def ingest_worker_commands(shards: Sequence[int], extra: Sequence[str] = ()) -> dict[str, str]:
    """One single-process Celery worker per ingest shard queue.

    A shard's batches then never wait behind another shard's, every core gets work, and one
    unit's batches (always the same shard) are still taken one at a time.
    """
    return {
        f"ingest-{shard}": _python_cmd(
            "worker",
            *("-Q", f"ingest.{shard}", "--concurrency", "1", "-n", f"ingest-{shard}@%h"),
            *("--without-gossip", "--without-mingle", *extra),
        )
        for shard in shards
    }


def run_ingest_workers(argv: list[str]) -> int:
    """`palier ingest-workers`: one worker per shard (INGEST_SHARDS) under one supervisor."""
    from django.conf import settings

    parser = argparse.ArgumentParser(
        prog="palier ingest-workers",
        description="One Celery worker process per ingest shard queue (ingest.0 … "
        "ingest.<INGEST_SHARDS-1>); with --shards, only those (spread shards over hosts). "
        "Other arguments go to each worker.",
    )
    parser.add_argument("--shards", help="comma-separated shard numbers (default: all)")
    args, extra = parser.parse_known_args(argv)
    every = range(settings.INGEST_SHARDS)
    shards = [int(n) for n in args.shards.split(",")] if args.shards else list(every)
    unknown = set(shards) - set(every)
    if unknown:
        parser.error(f"no such shard with INGEST_SHARDS={settings.INGEST_SHARDS}: {unknown}")
    manager = Manager(Printer(sys.stdout))
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    for name, command in ingest_worker_commands(shards, extra).items():
        manager.add_process(name, command, env=env)
    manager.loop()
    return manager.returncode or 0


def prepare() -> dict:
    """Create var/, migrate and seed the demo (idempotent); return what the banner shows."""
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    for folder in (settings.VAR_DIR, settings.OUTBOX_DIR, settings.MEDIA_ROOT):
        os.makedirs(folder, exist_ok=True)
    for name in ("queue", "processed", "control"):
        os.makedirs(settings.VAR_DIR / "celery" / name, exist_ok=True)
    call_command("migrate", interactive=False, verbosity=0)
    from api.core.demo import seed_demo

    return seed_demo()


def run_all(argv: list[str]) -> int:
    """Start every process; Ctrl-C or SIGTERM stops them all."""
    parser = argparse.ArgumentParser(prog="palier run")
    parser.add_argument("--no-simulator", action="store_true")
    parser.add_argument("--devices", type=int, default=int(os.environ.get("SIM_DEVICES", "20")))
    args = parser.parse_args(argv)

    logins = prepare()
    host = os.environ.get("PALIER_BIND", "127.0.0.1:8000")
    sys.stdout.write(BANNER.format(host=host, **logins))
    sys.stdout.flush()

    manager = Manager(Printer(sys.stdout))
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    for name, command in process_commands(
        with_simulator=not args.no_simulator, devices=args.devices
    ).items():
        manager.add_process(name, command, env=env)
    manager.loop()
    return manager.returncode or 0
