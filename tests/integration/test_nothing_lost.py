"""Nothing lost on the ingest path: real Mosquitto, bridge, Redis, worker and PostgreSQL.

One stack per module: a Mosquitto (with persistence) and a Redis (with an append-only file) of
its own on free ports, `palier bridge` and `palier worker` as real subprocesses, the worker
reaching PostgreSQL through a TCP proxy the tests can cut. Each test kills or restarts one part
and checks that every published reading is stored exactly once.

PALIER_TEST_DB_OUTAGE_S sets how long PostgreSQL stays unreachable (default 6 s; the ingest
task waits in place for up to 60 s, so 30 s behaves the same, only slower).
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import psutil
import pytest
from django.conf import settings
from django.db import connection
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from devices import contract
from tests.factories.telemetry import DeviceFactory
from tests.integration.services import (
    Mosquitto,
    Publisher,
    RedisServer,
    TcpProxy,
    envelope,
    free_port,
    queued_tasks,
    unique,
    wait_for,
)
from workers.bridge import ingest_queues

pytestmark = [pytest.mark.services, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
DB_OUTAGE_S = float(os.environ.get("PALIER_TEST_DB_OUTAGE_S", "6"))


class Stack:
    """The processes of the ingest path, each of which a test may kill and bring back."""

    def __init__(self, directory: Path, database: dict) -> None:
        self.directory = directory
        (directory / "mosquitto").mkdir()
        self.mosquitto = Mosquitto(directory / "mosquitto", persistent=True)
        self.redis = RedisServer(directory / "redis", aof=True)
        self.db_proxy = TcpProxy(int(database.get("PORT") or 5432))
        self.database = database
        self.bridge: subprocess.Popen | None = None
        self.worker: subprocess.Popen | None = None
        self.client_id = unique("it-bridge")

    def env(self) -> dict:
        db = self.database
        url = f"postgres://{db['USER']}@127.0.0.1:{self.db_proxy.port}/{db['NAME']}"
        env = dict(os.environ)
        env.update(
            DATABASE_URL=url,
            DB_CONN_MAX_AGE="0",
            CELERY_BROKER_URL=self.redis.url,
            MQTT_URL=f"mqtt://127.0.0.1:{self.mosquitto.port}",
            PALIER_VAR_DIR=str(self.directory / "var"),
            LOG_LEVEL="WARNING",
            INGEST_BATCH_MS="100",
        )
        return env

    def _spawn(self, name: str, *args: str) -> subprocess.Popen:
        log = (self.directory / f"{name}.log").open("ab")
        return subprocess.Popen(
            [sys.executable, "-m", "api.cli", *args],
            cwd=ROOT,
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def start(self) -> Stack:
        self.mosquitto.start()
        self.redis.start()
        self.db_proxy.start()
        self.start_worker()
        self.start_bridge(wait=True)
        return self

    def start_bridge(self, *, wait: bool = False) -> None:
        port = free_port()
        self.bridge = self._spawn(
            "bridge", "bridge", "--client-id", self.client_id, "--metrics-port", str(port)
        )
        if wait:
            # A new session receives only what is published after its first subscription.
            subscribed = wait_for(lambda: b"palier_bridge_connected 1.0" in _metrics(port), 60)
            assert subscribed, self.log("bridge")

    def start_worker(self) -> None:
        queues = ",".join(ingest_queues(settings.INGEST_SHARDS))
        self.worker = self._spawn(
            "worker",
            *("worker", "-Q", queues, "--concurrency", "1", "--loglevel", "WARNING"),
            *("--without-gossip", "--without-mingle"),
        )

    @staticmethod
    def _end(proc: subprocess.Popen | None, sig: int = signal.SIGTERM) -> None:
        if proc is not None and proc.poll() is None:
            proc.send_signal(sig)
            proc.wait(30)

    def stop(self) -> None:
        self._end(self.bridge)
        self._end(self.worker)
        self.db_proxy.cut()
        self.redis.stop()
        self.mosquitto.stop()

    def log(self, name: str) -> str:
        path = self.directory / f"{name}.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""


def _metrics(port: int) -> bytes:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=1) as response:
            return response.read()
    except OSError:
        return b""


@pytest.fixture(scope="module")
def stack(django_db_setup, tmp_path_factory):
    running = Stack(tmp_path_factory.mktemp("ingest"), dict(connection.settings_dict)).start()
    yield running
    running.stop()


def stored(device_ids: list[int]) -> tuple[int, int]:
    """Rows stored for these devices, and distinct (device, boot, seq) among them."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), count(DISTINCT (device_id, boot, seq)) FROM telemetry_reading "
            "WHERE device_id = ANY(%s)",
            [device_ids],
        )
        return cursor.fetchone()


def missing(pks: list[int]) -> list[tuple[int, int, int]]:
    """(device, first seq, last seq) of each device's stored range, for failure messages."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT device_id, min(seq), max(seq), count(*) FROM telemetry_reading "
            "WHERE device_id = ANY(%s) GROUP BY device_id ORDER BY device_id",
            [pks],
        )
        return cursor.fetchall()


def wait_stored(stack: Stack, pks: list[int], expected: int, timeout: float = 60) -> None:
    ok = wait_for(lambda: stored(pks)[0] >= expected, timeout=timeout, interval=0.25)
    assert ok, (stored(pks), missing(pks), stack.log("worker"), stack.log("bridge"))
    time.sleep(0.5)  # anything more would be a duplicate
    assert stored(pks) == (expected, expected)


def fleet_devices(count: int) -> list:
    organisation = DeviceFactory().organisation
    return [DeviceFactory(organisation=organisation) for _ in range(count)]


def publish_paced(port: int, devices, seqs, seconds: float) -> threading.Thread:
    """Publish in the background, spread over about `seconds`."""

    def run() -> None:
        publisher = Publisher(port)
        pause = seconds / len(seqs)
        for seq in seqs:
            for device in devices:
                publisher.client.publish(
                    contract.telemetry_topic(device.organisation.slug, device.device_id),
                    envelope(device.device_id, seq),
                    qos=1,
                )
            time.sleep(pause)
        publisher.send([])  # flush
        while publisher.client._out_messages:
            time.sleep(0.05)
        publisher.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def publish_now(port: int, devices, seqs) -> None:
    publisher = Publisher(port)
    for device in devices:
        publisher.telemetry(device.organisation.slug, device.device_id, seqs)
    publisher.close()


@pytest.mark.django_db(transaction=True)
def test_bridge_killed_mid_stream_loses_and_duplicates_nothing(stack):
    devices = fleet_devices(20)
    pks = [d.pk for d in devices]
    sender = publish_paced(stack.mosquitto.port, devices, range(1, 151), seconds=3)
    assert wait_for(lambda: stored(pks)[0] > 200, timeout=30), stack.log("bridge")
    stack._end(stack.bridge, signal.SIGKILL)
    time.sleep(0.5)
    stack.start_bridge()
    sender.join(60)
    wait_stored(stack, pks, 20 * 150)


@pytest.mark.django_db(transaction=True)
def test_worker_killed_mid_batch_loses_nothing(stack):
    devices = fleet_devices(40)
    pks = [d.pk for d in devices]
    publish_now(stack.mosquitto.port, devices, range(1, 101))
    assert wait_for(lambda: stored(pks)[0] > 0, timeout=60, interval=0.02), stack.log("worker")
    children = psutil.Process(stack.worker.pid).children()
    assert children, "a prefork worker process"
    for child in children:
        child.kill()  # SIGKILL, while it holds a batch
    assert stored(pks)[0] < 40 * 100
    wait_stored(stack, pks, 40 * 100, timeout=90)


@pytest.mark.django_db(transaction=True)
def test_mosquitto_restarts_lose_nothing(stack):
    devices = fleet_devices(10)
    pks = [d.pk for d in devices]
    publish_now(stack.mosquitto.port, devices, range(1, 51))
    wait_stored(stack, pks, 500)
    # Queued for the stopped bridge, then Mosquitto restarted: its session survives on disk.
    stack._end(stack.bridge)
    publish_now(stack.mosquitto.port, devices, range(51, 151))
    stack.mosquitto.stop()
    stack.mosquitto.start()
    stack.start_bridge()
    wait_stored(stack, pks, 1500)
    # Restarted under a connected bridge: it reconnects and resumes its session.
    stack.mosquitto.stop()
    stack.mosquitto.start()
    time.sleep(1.5)
    publish_now(stack.mosquitto.port, devices, range(151, 201))
    wait_stored(stack, pks, 2000)


@pytest.mark.django_db(transaction=True)
def test_database_unreachable_then_back_catches_up(stack):
    devices = fleet_devices(10)
    pks = [d.pk for d in devices]
    stack.db_proxy.cut()
    try:
        publish_now(stack.mosquitto.port, devices, range(1, 101))
        time.sleep(DB_OUTAGE_S)
        assert stored(pks) == (0, 0)
    finally:
        stack.db_proxy.restore()
    wait_stored(stack, pks, 1000, timeout=60)


@pytest.mark.django_db(transaction=True)
def test_redis_restart_with_append_only_file_loses_nothing(stack):
    devices = fleet_devices(10)
    pks = [d.pk for d in devices]
    stack._end(stack.worker)
    publish_now(stack.mosquitto.port, devices, range(1, 101))
    queues = ingest_queues(settings.INGEST_SHARDS)

    def queued() -> int:
        return sum(len(items) for _q, _t, items in queued_tasks(stack.redis.url, queues))

    # Everything is in Redis, and acknowledged to Mosquitto: Redis alone holds it now.
    assert wait_for(lambda: queued() == 1000, timeout=30)
    stack.redis.process.kill()
    stack.redis.process.wait(10)
    stack.redis.start()
    assert queued() == 1000
    stack.start_worker()
    wait_stored(stack, pks, 1000, timeout=60)


HOSTILE_CORPUS: list[bytes] = [
    b"",
    b"{",
    b"null",
    b"[]",
    b'{"v": 1}',
    b"\xff\xfe\x00garbage",
    b'{"v": 1, "dev": "x", "boot": 1, "seq": 1, "ts": NaN, "m": []}',
    b'{"v": 1, "dev": "x", "boot": 1, "seq": 1, "ts": Infinity, "m": []}',
    b'{"v": 1, "dev": "x", "boot": 1, "seq": 1, "ts": 1e999, "m": []}',
    b'{"v": 1, "dev": "x", "boot": 1e400, "seq": 1, "ts": 1.7e9, "m": []}',
    b'{"v": "1", "dev": 7, "boot": -1, "seq": "a", "ts": [], "m": {}}',
    b'{"v": 2, "dev": "x", "boot": 1, "seq": 1, "ts": 1.7e9, "m": []}',
    b" " * 9000,
    b"[" * 5000 + b"]" * 5000,
    json.dumps(
        {"v": 1, "dev": "x", "boot": 1, "seq": 1, "ts": 1.7e9, "m": [{"n": "x"}] * 900}
    ).encode(),
]


def hostile_payload(kind: str, device_id: str, seq: int, raw: bytes) -> bytes:
    now = time.time()
    if kind == "corpus":
        return raw.replace(b'"dev": "x"', f'"dev": "{device_id}"'.encode())
    if kind == "future":
        return envelope(device_id, seq, ts=now + 3600)
    if kind == "wrong_device":
        return envelope("someone-else", seq)
    if kind == "unknown_name":
        return contract.encode(
            contract.Envelope(
                v=1, dev=device_id, boot=1, seq=seq, ts=now, m=[contract.Record(n="pin", vs="1234")]
            )
        )
    if kind == "huge":
        body = {"v": 1, "dev": device_id, "boot": 1, "seq": seq, "ts": now}
        body["m"] = [
            {"n": "room_temp", "u": "Cel", "v": 1e308},
            {"n": "co2", "u": "ppm", "v": -math.inf},
        ]
        return json.dumps(body).encode()
    return raw  # random bytes or random JSON from hypothesis


json_values = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
random_payloads = st.binary(max_size=300) | json_values.map(
    lambda value: json.dumps(value, allow_nan=True).encode()
)


@pytest.mark.django_db(transaction=True)
@hypothesis_settings(
    max_examples=1,
    phases=[Phase.generate],
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
@given(data=st.data())
def test_hostile_payloads_are_all_quarantined_and_valid_ones_all_stored(stack, data):
    devices = fleet_devices(10)
    pks = [d.pk for d in devices]
    fleet = unique("hostile")
    kinds = ["corpus", "future", "wrong_device", "unknown_name", "huge", "random"]
    hostile: list[tuple[str, bytes]] = []
    for index in range(1000):
        kind = kinds[index % len(kinds)]
        raw = b""
        if kind == "corpus":
            raw = HOSTILE_CORPUS[(index // len(kinds)) % len(HOSTILE_CORPUS)]
        elif kind == "random":
            raw = data.draw(random_payloads)
        device_id = f"hostile{index:04d}"
        topic = contract.telemetry_topic(fleet, device_id)
        if index % 97 == 0:
            topic = f"dt/{fleet}/{device_id}/firmware-upload"  # a kind the contract lacks
        hostile.append((topic, hostile_payload(kind, device_id, index, raw)))
    valid = [
        (contract.telemetry_topic(d.organisation.slug, d.device_id), envelope(d.device_id, seq))
        for seq in range(1, 101)
        for d in devices
    ]
    mixed = [message for pair in zip(hostile, valid, strict=True) for message in pair]
    publisher = Publisher(stack.mosquitto.port)
    publisher.send(mixed)
    publisher.close()

    wait_stored(stack, pks, 1000)

    def quarantined_topics() -> dict[str, set[str]]:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT topic, reason FROM telemetry_quarantine WHERE topic LIKE %s",
                [f"dt/{fleet}/%"],
            )
            found: dict[str, set[str]] = {}
            for topic, reason in cursor.fetchall():
                found.setdefault(topic, set()).add(reason)
            return found

    assert wait_for(lambda: len(quarantined_topics()) == 1000, timeout=30), len(
        quarantined_topics()
    )
    found = quarantined_topics()
    assert {topic for topic, _raw in hostile} == set(found)
    assert all(reasons and all(reasons) for reasons in found.values())
    assert stack.bridge.poll() is None, "the bridge survived"
