"""`palier`: the operations entry point.

`palier run` starts the whole system on embedded defaults; `palier web|worker|beat|bridge|
mqtt-broker|simulate` start one process each, `palier ingest-workers` one per ingest shard (the
same commands the containers run); any other subcommand is a Django management command
(`palier seed-demo`, `palier import-estate FILE`, `palier user add ...`, `palier migrate`).
"""

import os
import shlex
import sys
from collections.abc import Callable
from importlib.util import find_spec
from pathlib import Path

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "api.config.settings")

PYTHON = shlex.quote(sys.executable)


def _exec(argv: list[str]) -> None:
    """Replace this process, so that signals reach the real program."""
    sys.stdout.flush()
    os.execvp(argv[0], argv)  # noqa: S606 - argv is built here, never from a shell string


def _bin(name: str) -> str:
    """A console script installed beside this interpreter (the venv's bin/)."""
    candidate = Path(sys.executable).with_name(name)
    return str(candidate) if candidate.exists() else name


def web(args: list[str]) -> None:
    """The API under gunicorn."""
    bind = os.environ.get("PALIER_BIND", "127.0.0.1:8000")
    workers = os.environ.get("WEB_CONCURRENCY", "2")
    _exec(
        [
            _bin("gunicorn"),
            "api.config.wsgi:application",
            "--bind",
            bind,
            "--workers",
            workers,
            "--access-logfile",
            "-",
            "--forwarded-allow-ips",
            "*",
            *args,
        ]
    )


def worker(args: list[str]) -> None:
    """A Celery worker."""
    _exec([_bin("celery"), "-A", "workers.celery_app", "worker", "--loglevel", "INFO", *args])


def beat(args: list[str]) -> None:
    """The Celery beat scheduler (exactly one per deployment)."""
    from django.conf import settings

    schedule = os.environ.get(
        "CELERY_BEAT_SCHEDULE_FILENAME", settings.CELERY_BEAT_SCHEDULE_FILENAME
    )
    Path(schedule).parent.mkdir(parents=True, exist_ok=True)
    _exec(
        [
            _bin("celery"),
            "-A",
            "workers.celery_app",
            "beat",
            "--loglevel",
            "INFO",
            "--schedule",
            schedule,
            *args,
        ]
    )


def mqtt_broker(args: list[str]) -> None:
    """The embedded MQTT broker of `palier run`."""
    from workers.embedded_broker import main as broker_main

    broker_main(args)


def ingest_workers(args: list[str]) -> None:
    """One Celery worker per ingest shard queue (INGEST_SHARDS), supervised together."""
    from workers.supervisor import run_ingest_workers

    sys.exit(run_ingest_workers(args))


def bridge(args: list[str]) -> None:
    """The MQTT → task-queue bridge."""
    from workers.bridge import main as bridge_main

    bridge_main(args)


def simulate(args: list[str]) -> None:
    """The device fleet simulator."""
    from devices.simulator import main as simulator_main

    simulator_main(args)


def run(args: list[str]) -> None:
    """Prepare the embedded database and start every process in one terminal."""
    from workers.supervisor import run_all

    sys.exit(run_all(args))


def manage(argv: list[str]) -> None:
    """Any Django management command, hyphens allowed (`seed-demo` → `seed_demo`)."""
    from django.core.management import execute_from_command_line

    command = argv[0].replace("-", "_")
    execute_from_command_line(["palier", command, *argv[1:]])


PROCESSES: dict[str, Callable[[list[str]], None]] = {
    "run": run,
    "web": web,
    "worker": worker,
    "ingest-workers": ingest_workers,
    "beat": beat,
    "mqtt-broker": mqtt_broker,
    "bridge": bridge,
    "simulate": simulate,
}


def available_processes() -> set[str]:
    """Process commands whose code exists in this checkout."""
    optional = {"bridge": "workers.bridge", "simulate": "devices.simulator"}
    present = set(PROCESSES) - set(optional)
    for command, module in optional.items():
        try:
            if find_spec(module):
                present.add(command)
        except ModuleNotFoundError:
            continue
    return present


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help", "help"}:
        print(__doc__)
        print("Processes:", ", ".join(sorted(available_processes())))
        print("Management commands: palier help-commands")
        return
    if argv[0] == "help-commands":
        manage(["help"])
        return
    handler = PROCESSES.get(argv[0])
    if handler:
        handler(argv[1:])
    else:
        manage(argv)


if __name__ == "__main__":
    main()
