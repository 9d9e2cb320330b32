"""`palier run` (what `make run` starts) on embedded defaults: up, serving, stopping cleanly."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVICE_VARS = {"DATABASE_URL", "CELERY_BROKER_URL", "MQTT_URL", "REDIS_URL", "CACHE_URL"}

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback only
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_palier_run_serves_the_api_on_sqlite_and_stops_cleanly(tmp_path):
    web_port, mqtt_port = _free_port(), _free_port()
    env = {k: v for k, v in os.environ.items() if k not in SERVICE_VARS}
    env.update(
        PALIER_VAR_DIR=str(tmp_path / "var"),
        PALIER_BIND=f"127.0.0.1:{web_port}",
        EMBEDDED_MQTT_PORT=str(mqtt_port),
        MQTT_URL=f"mqtt://palier-bridge:palier-bridge-dev-password@127.0.0.1:{mqtt_port}",
        SIM_DEVICES="3",
    )
    base = f"http://127.0.0.1:{web_port}"
    log = (tmp_path / "run.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "run"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 90
        status = None
        while time.monotonic() < deadline:
            try:
                status, _ = _get(f"{base}/api/health/")
                if status == 200:
                    break
            except OSError:
                pass
            time.sleep(0.5)
        assert status == 200, (tmp_path / "run.log").read_text()[-3000:]

        status, body = _get(f"{base}/api/schema/?format=json")
        assert status == 200
        assert json.loads(body)["openapi"].startswith("3.")

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            status, body = _get(f"{base}/api/ready/")
            if status == 200:
                break
            time.sleep(0.5)
        report = json.loads(body)
        assert report["ready"], report
        assert report["checks"]["database"]["detail"] == "sqlite"
        assert (tmp_path / "var" / "palier.sqlite3").exists()

        family = [proc.pid] + [p.pid for p in psutil.Process(proc.pid).children(recursive=True)]
        assert len(family) >= 5, "web, MQTT broker, worker and beat should all be running"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        log.close()

    deadline = time.monotonic() + 15
    alive = [pid for pid in family if psutil.pid_exists(pid)]
    while alive and time.monotonic() < deadline:
        time.sleep(0.2)
        alive = [
            pid
            for pid in alive
            if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
        ]
    assert alive == [], "SIGTERM left processes behind"
