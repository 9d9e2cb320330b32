"""Ingest benchmark: devices → Mosquitto → `palier bridge` → Redis → `palier worker` → PostgreSQL.

Run:  .venv/bin/python bench/ingest.py            (full run, about 4 minutes)
      .venv/bin/python bench/ingest.py --quick    (smaller volumes, about 1.5 minutes)

Everything runs on this machine. The script starts its own Mosquitto on a free port, configured
for a deep queue (`max_queued_messages 0`: Mosquitto's default of 1000 queued messages per
session would drop most of a 500,000-message backlog), its own Redis with an append-only file
(as in docker-compose.yml), and uses a dedicated PostgreSQL database (dropped, recreated and
migrated: BENCH_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/palier_bench). The
bridge and the worker are real subprocesses (`palier bridge`, `palier worker -Q ingest.*`).

Publishers are separate processes speaking MQTT 3.1.1 QoS 1 over a raw socket (a load generator
must not be the bottleneck: paho's publisher tops out near 6,000 messages/s per process here),
with payloads built by `devices.contract.encode`. Phases and what they print:

raw        a bare paho subscriber (stock paho, MQTT 5, QoS 1, counting only) draining a queued
           backlog: the "raw paho receive rate"; the same with the bridge's bulk-read client
throughput messages published as fast as the publishers can, end-to-end rate until stored
latency    5,000 messages/s offered for a while: publish-to-stored p50/p99 (probe devices polled)
two        the throughput phase with two bridges sharing the subscription
backlog    bridge stopped, a backlog queued in its persistent session, bridge restarted: drain
           time, lost and duplicated readings
naive      one Celery task and one INSERT per message (stock paho, auto-ack), for comparison
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import math
import multiprocessing as mp
import os
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

from harness import free_port, scrape

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PYTHON = sys.executable
_VENV_PY_SPY = Path(sys.executable).with_name("py-spy")
PY_SPY = str(_VENV_PY_SPY) if _VENV_PY_SPY.exists() else "py-spy"
FLEET = "bench"
HEATING = ["room_temp", "room_setpoint", "flow_temp", "return_temp", "ch_pressure", "flame"]
HEATING += ["heat_demand", "rssi"]
VENTILATION = ["fan_rpm", "extract_pressure", "rh", "co2", "filter_alarm", "rssi"]
SHARDS = int(os.environ.get("INGEST_SHARDS", "2"))


# --- small helpers ------------------------------------------------------------------------------
def wait_port(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listening on {port}")


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


def device_ids(count: int) -> list[str]:
    return [f"{'hx' if i % 2 == 0 else 'vx'}-bench{i:05d}" for i in range(count)]


# --- publishers (raw MQTT 3.1.1, QoS 1) -----------------------------------------------------------
def _remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _connect(port: int, client_id: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    cid = client_id.encode()
    body = b"\x00\x04MQTT\x04\x02\x00\x3c" + struct.pack("!H", len(cid)) + cid
    sock.sendall(b"\x10" + _remaining_length(len(body)) + body)
    ack = sock.recv(4)
    if len(ack) < 4 or ack[0] != 0x20 or ack[3] != 0:
        raise ConnectionError(f"CONNACK refused: {ack!r}")
    return sock


def _packet(topic: bytes, payload: bytes, mid: int) -> bytes:
    body = struct.pack("!H", len(topic)) + topic + struct.pack("!H", mid) + payload
    return b"\x32" + _remaining_length(len(body)) + body


def _payload(device: str, seq: int, boot: int, ts: float) -> bytes:
    from devices.contract import Envelope, encode, make_record

    names = HEATING if device.startswith("hx") else VENTILATION
    records = []
    for name in names:
        if name in {"flame", "heat_demand", "filter_alarm"}:
            records.append(make_record(name, seq % 3 == 0))
        elif name == "rssi":
            records.append(make_record(name, -70.0 - seq % 9))
        elif name == "co2":
            records.append(make_record(name, 600.0 + seq % 400))
        elif name == "fan_rpm":
            records.append(make_record(name, 1400.0 + seq % 50))
        elif name == "rh":
            records.append(make_record(name, 45.0 + seq % 20))
        elif name == "ch_pressure":
            records.append(make_record(name, 1.4 + (seq % 10) / 100))
        elif name == "extract_pressure":
            records.append(make_record(name, 80.0 + seq % 7))
        else:
            records.append(make_record(name, 19.0 + (seq % 40) / 10))
    return encode(Envelope(v=1, dev=device, boot=boot, seq=seq, ts=ts, m=records))


def _publisher(port, devices, rounds, boot, rate, barrier, results, start_seq):
    """One publisher process: `rounds` messages per device, paced at `rate` msg/s (0: flat out)."""
    sock = _connect(port, f"bench-pub-{os.getpid()}-{time.monotonic_ns()}")
    topics = {d: f"dt/{FLEET}/{d}/telemetry".encode() for d in devices}
    total = rounds * len(devices)
    window = 2000
    acked = sent = 0
    pending = b""
    prebuilt = None
    if not rate:
        now = time.time()
        # Timestamps grow by round, as a real unit's do.
        prebuilt = [
            _packet(topics[d], _payload(d, start_seq + r, boot, now + r / 100), (i % 65535) + 1)
            for i, (r, d) in enumerate((r, d) for r in range(rounds) for d in devices)
        ]
    barrier.wait()
    started = time.time()
    order = [(r, d) for r in range(rounds) for d in devices] if rate else None
    while acked < total:
        if sent < total and sent - acked < window:
            if rate:
                due = int((time.time() - started) * rate) + 1
                upto = min(total, due, acked + window, sent + 200)
                if upto <= sent:
                    time.sleep(0.002)
                    upto = sent
                now = time.time()
                chunk = [
                    _packet(topics[d], _payload(d, start_seq + r, boot, now), (i % 65535) + 1)
                    for i, (r, d) in zip(range(sent, upto), order[sent:upto], strict=True)
                ]
            else:
                upto = min(total, sent + 500, acked + window)
                chunk = prebuilt[sent:upto]
            if chunk:
                sock.sendall(b"".join(chunk))
                sent = upto
                continue
        sock.settimeout(0.05)
        try:
            data = sock.recv(65536)
        except TimeoutError:
            continue
        finally:
            sock.settimeout(None)
        pending += data
        count = len(pending) // 4  # PUBACKs are 4 bytes each
        acked += count
        pending = pending[count * 4 :]
    finished = time.time()
    sock.close()
    results.put((started, finished, total))


def publish(port, devices, *, rounds, boot, rate=0.0, processes=2, start_seq=1) -> dict:
    """Publish `rounds` messages per device from `processes` processes; wait for every PUBACK."""
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(processes + 1)
    results = ctx.Queue()
    slices = [devices[i::processes] for i in range(processes)]
    procs = [
        ctx.Process(
            target=_publisher,
            args=(port, s, rounds, boot, rate / processes, barrier, results, start_seq),
            daemon=True,
        )
        for s in slices
    ]
    for proc in procs:
        proc.start()
    barrier.wait()
    outcome = [results.get(timeout=900) for _ in procs]
    for proc in procs:
        proc.join()
    started = min(o[0] for o in outcome)
    finished = max(o[1] for o in outcome)
    total = sum(o[2] for o in outcome)
    return {"started": started, "finished": finished, "total": total}


class Publishing(threading.Thread):
    """`publish` in the background, so that the main thread can watch the database meanwhile."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(daemon=True)
        self.args, self.kwargs, self.result = args, kwargs, None

    def run(self) -> None:
        self.result = publish(*self.args, **self.kwargs)


# --- services ---------------------------------------------------------------------------------
class Stack:
    """Own Mosquitto and Redis, the bench database, and the Palier processes under test."""

    def __init__(
        self,
        workdir: Path,
        database_url: str,
        concurrency: int,
        *,
        per_shard: bool = True,
        faults: bool = True,
    ) -> None:
        self.workdir = workdir
        self.database_url = database_url
        self.concurrency = concurrency
        self.per_shard = per_shard
        self.faults = faults
        self.mqtt_port = free_port()
        self.redis_port = free_port()
        self.children: list[subprocess.Popen] = []
        self.bridges: dict[str, subprocess.Popen] = {}
        self.workers: list[subprocess.Popen] = []
        self.named: dict[str, subprocess.Popen] = {}
        self.rss_peak: dict[str, float] = {}
        self._rss_stop = threading.Event()

    @property
    def env(self) -> dict:
        return dict(
            os.environ,
            DATABASE_URL=self.database_url,
            CELERY_BROKER_URL=f"redis://127.0.0.1:{self.redis_port}/0",
            REDIS_URL=f"redis://127.0.0.1:{self.redis_port}/1",
            MQTT_URL=f"mqtt://127.0.0.1:{self.mqtt_port}",
            PALIER_VAR_DIR=str(self.workdir / "var"),
            LOG_LEVEL="WARNING",
            PYTHONUNBUFFERED="1",
        )

    def _spawn(self, name: str, argv: list[str], **kwargs) -> subprocess.Popen:
        log = (self.workdir / f"{name}.log").open("ab")
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, **kwargs)
        self.children.append(proc)
        self.named[name] = proc
        return proc

    def start_brokers(self) -> None:
        conf = self.workdir / "mosquitto.conf"
        conf.write_text(
            f"user {getpass.getuser()}\n"
            f"listener {self.mqtt_port} 127.0.0.1\n"
            "allow_anonymous true\n"
            "persistence false\n"
            # 0 = no maximum: the backlog phase queues 500,000 messages in one session.
            "max_queued_messages 0\n"
            "max_inflight_messages 0\n"
            f"log_dest file {self.workdir / 'mosquitto.log'}\n"
        )
        self._spawn("mosquitto", ["mosquitto", "-c", str(conf)])
        redis_dir = self.workdir / "redis"
        redis_dir.mkdir()
        self._spawn(
            "redis",
            [
                "redis-server",
                "--port",
                str(self.redis_port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "everysec",
                "--dir",
                str(redis_dir),
            ],
        )
        wait_port(self.mqtt_port)
        wait_port(self.redis_port)

    def prepare_database(self, devices: list[str]) -> None:
        import psycopg

        url = urlsplit(self.database_url)
        name = url.path.lstrip("/")
        admin = self.database_url.rsplit("/", 1)[0] + "/postgres"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
        subprocess.run(
            [PYTHON, "-m", "api.cli", "migrate", "--noinput", "-v", "0"],
            cwd=ROOT,
            env=self.env,
            check=True,
        )
        os.environ.update(DATABASE_URL=self.database_url, PALIER_VAR_DIR=self.env["PALIER_VAR_DIR"])
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "api.config.settings")
        import django

        django.setup()
        from api.telemetry.models import Device
        from tests.factories.telemetry import _TEST_HASH, equipment_for

        global FLEET
        boiler = equipment_for("heating")
        FLEET = boiler.organisation.slug  # the publishers are forked after this
        vmc = equipment_for("ventilation", organisation=boiler.organisation)
        Device.objects.bulk_create(
            [
                Device(
                    device_id=d,
                    organisation=boiler.organisation,
                    kind="heating" if d.startswith("hx") else "ventilation",
                    equipment=boiler if d.startswith("hx") else vmc,
                    password_hash=_TEST_HASH,
                )
                for d in devices
            ],
            batch_size=1000,
        )

    def start_workers(self) -> None:
        """One single-process worker per shard queue (as `palier ingest-workers` runs them) and
        one for the quarantine queue; or, with --single-worker, one worker for every queue."""
        common = ["--loglevel", "WARNING", "--without-gossip", "--without-mingle"]
        if self.per_shard:
            groups = [[f"ingest.{n}"] for n in range(SHARDS)] + [["ingest.quarantine"]]
            concurrency = 1
        else:
            groups = [[f"ingest.{n}" for n in range(SHARDS)] + ["ingest.quarantine"]]
            concurrency = self.concurrency
        env, cwd, command = self.env, ROOT, [PYTHON, "-m", "api.cli", "worker"]
        if not self.faults:
            # The same app with fault evaluation left out: the write path alone.
            env = dict(env, BENCH_WITHOUT_FAULTS="1", PYTHONPATH=f"{ROOT}:{ROOT / 'bench'}")
            cwd, command = ROOT / "bench", [PYTHON, "-m", "celery", "-A", "ingest:faultless_app"]
            command += ["worker"]
        for index, queues in enumerate(groups):
            argv = [*command, "-Q", ",".join(queues)]
            argv += ["--concurrency", str(concurrency), "-n", f"bench-{index}@%h", *common]
            self.workers.append(self._spawn(f"worker-{index}", argv, cwd=cwd, env=env))

    def stop_workers(self) -> None:
        for worker in self.workers:
            worker.send_signal(signal.SIGTERM)
        for worker in self.workers:
            worker.wait(60)
        self.workers = []

    def start_bridge(self, client_id: str, *, leave: bool = False) -> subprocess.Popen:
        port = free_port()
        argv = [PYTHON, "-m", "api.cli", "bridge", "--client-id", client_id]
        argv += ["--metrics-port", str(port)] + (["--leave"] if leave else [])
        proc = self._spawn(client_id, argv, cwd=ROOT, env=self.env)
        proc.metrics_port = port
        self.bridges[client_id] = proc
        threading.Thread(target=self._watch_rss, args=(client_id, proc), daemon=True).start()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if scrape(port).get("palier_bridge_connected") == 1.0:
                return proc
            time.sleep(0.1)
        raise RuntimeError(f"bridge {client_id} did not connect: see {self.workdir}")

    def stop_bridge(self, client_id: str) -> None:
        proc = self.bridges.pop(client_id)
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)

    def _watch_rss(self, name: str, proc: subprocess.Popen) -> None:
        import psutil

        try:
            process = psutil.Process(proc.pid)
            while proc.poll() is None:
                rss = process.memory_info().rss / 1e6
                self.rss_peak[name] = max(self.rss_peak.get(name, 0.0), rss)
                time.sleep(0.2)
        except psutil.NoSuchProcess:
            return

    def stop_all(self) -> None:
        for proc in reversed(self.children):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in reversed(self.children):
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()


class HandOff(threading.Thread):
    """When the bridges had taken and acknowledged `expected` more messages (their metrics)."""

    def __init__(self, ports: list[int], expected: int) -> None:
        super().__init__(daemon=True)
        self.ports, self.expected = ports, expected
        self.base = self._received()
        self.at: float | None = None
        self.peak_inflight = 0.0
        self.stop = threading.Event()

    def _received(self) -> float:
        return sum(scrape(p).get("palier_bridge_messages_received_total", 0.0) for p in self.ports)

    def run(self) -> None:
        while not self.stop.is_set() and self.at is None:
            samples = [scrape(p) for p in self.ports]
            received = sum(m.get("palier_bridge_messages_received_total", 0.0) for m in samples)
            inflight = sum(m.get("palier_bridge_inflight_messages", 0.0) for m in samples)
            self.peak_inflight = max(self.peak_inflight, inflight)
            if received - self.base >= self.expected and inflight == 0:
                self.at = time.time()
            time.sleep(0.25)  # each scrape costs the bridge a little CPU


class CpuMeter:
    """CPU time (user + system) each part of the path spends per message between start() and
    stop(): unlike rates, it hardly depends on what else loads the machine."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.before: dict[int, tuple[str, float]] = {}
        self.load = 0.0

    def _processes(self) -> list[tuple[str, int]]:
        import psutil
        import psycopg

        stack = self.stack
        found = [("bridge", p.pid) for p in stack.bridges.values()]
        for worker in stack.workers:
            found.append(("workers", worker.pid))
            found += [("workers", c.pid) for c in psutil.Process(worker.pid).children(True)]
        for name in ("mosquitto", "redis"):
            if name in stack.named:
                found.append((name, stack.named[name].pid))
        with psycopg.connect(stack.database_url, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid()"
            ).fetchall()
        found += [("postgresql", row[0]) for row in rows]
        return found

    @staticmethod
    def _seconds(pid: int) -> float | None:
        import psutil

        try:
            times = psutil.Process(pid).cpu_times()
        except psutil.Error:
            return None
        return times.user + times.system

    def start(self) -> None:
        self.load = os.getloadavg()[0]
        self.before = {}
        for group, pid in self._processes():
            seconds = self._seconds(pid)
            if seconds is not None:
                self.before[pid] = (group, seconds)

    def stop(self, messages: int) -> dict[str, float]:
        """µs of CPU per message by group (processes alive at both ends), and load averages."""
        spent: dict[str, float] = {}
        for pid, (group, seconds) in self.before.items():
            now = self._seconds(pid)
            if now is not None:
                spent[group] = spent.get(group, 0.0) + now - seconds
        result = {group: value / messages * 1e6 for group, value in spent.items()}
        result["load_start"], result["load_end"] = self.load, os.getloadavg()[0]
        return result


# --- database probes ----------------------------------------------------------------------------
class Store:
    """Read-only views of what the worker stored."""

    def __init__(self, database_url: str) -> None:
        import psycopg

        self.conn = psycopg.connect(database_url, autocommit=True)
        self.ids = dict(self.conn.execute("SELECT device_id, id FROM telemetry_device").fetchall())

    def progress(self, boot: int) -> int:
        """Messages stored for this boot, as far as devices' last sequence numbers say (cheap)."""
        row = self.conn.execute(
            "SELECT coalesce(sum(last_seq), 0) FROM telemetry_device WHERE last_boot = %s", [boot]
        ).fetchone()
        return int(row[0])

    def count(self, boot: int) -> tuple[int, int]:
        """Rows stored for this boot, and distinct (device, seq) among them."""
        row = self.conn.execute(
            "SELECT count(*), count(DISTINCT (device_id, seq)) FROM telemetry_reading "
            "WHERE boot = %s",
            [boot],
        ).fetchone()
        return int(row[0]), int(row[1])

    def rows(self, boot: int) -> int:
        row = self.conn.execute(
            "SELECT count(*) FROM telemetry_reading WHERE boot = %s", [boot]
        ).fetchone()
        return int(row[0])

    def wait_stored(self, boot: int, target: int, timeout: float) -> float | None:
        """Wall time at which `target` messages of this boot were stored (None: timed out).

        The devices' last sequence numbers say cheaply when it is probably done; an exact
        count confirms it (and is taken every 2 s anyway, should the cheap sign mislead).
        """
        deadline = time.time() + timeout
        exact_at = time.time()
        while time.time() < deadline:
            at = time.time()
            if self.progress(boot) >= target or at - exact_at >= 2.0:
                exact_at = at
                if self.rows(boot) >= target:
                    return at
            time.sleep(0.1)
        return None

    def bytes_per_message(self) -> float:
        size, rows = self.conn.execute(
            "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0), "
            "(SELECT count(*) FROM telemetry_reading) FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent "
            "WHERE p.relname = 'telemetry_reading'"
        ).fetchone()
        return size / rows if rows else 0.0


class LatencyProbe(threading.Thread):
    """Poll the probe devices' new rows every 50 ms; latency = seen - device timestamp."""

    def __init__(self, database_url: str, device_pks: list[int], boot: int) -> None:
        import psycopg

        super().__init__(daemon=True)
        self.conn = psycopg.connect(database_url, autocommit=True)
        self.pks, self.boot = device_pks, boot
        self.seen: set[tuple[int, int]] = set()
        self.latencies: list[float] = []
        self.stop = threading.Event()

    def poll(self, window: float) -> None:
        rows = self.conn.execute(
            "SELECT device_id, seq, extract(epoch FROM ts)::float8 FROM telemetry_reading "
            "WHERE device_id = ANY(%s) AND boot = %s AND ts > now() - make_interval(secs => %s)",
            [self.pks, self.boot, window],
        ).fetchall()
        now = time.time()
        for device, seq, ts in rows:
            if (device, seq) not in self.seen:
                self.seen.add((device, seq))
                self.latencies.append(now - ts)

    def run(self) -> None:
        while not self.stop.is_set():
            self.poll(4.0)
            time.sleep(0.05)
        self.poll(3600.0)


# --- the raw receive rate ---------------------------------------------------------------------
def _raw_subscriber(port: int, expected: int, bulk: bool, ready, go, results) -> None:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    from workers.bridge_mqtt import BulkClient

    client_id = f"bench-raw-{'bulk' if bulk else 'paho'}"
    state = {"n": 0, "first": 0.0, "last": 0.0}

    def count_one(client, userdata, message) -> None:
        state["n"] += 1
        if state["n"] == 1:
            state["first"] = time.time()
        if state["n"] >= expected:
            state["last"] = time.time()
            client.disconnect()

    def count_many(messages) -> None:
        if not state["n"]:
            state["first"] = time.time()
        state["n"] += len(messages)
        client.ack_many([m[2] for m in messages])
        if state["n"] >= expected:
            state["last"] = time.time()
            client.disconnect()

    def make():
        if bulk:
            return BulkClient(client_id=client_id, protocol=mqtt.MQTTv5, on_publishes=count_many)
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        c.on_message = count_one
        return c

    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 3600
    props.ReceiveMaximum = 65535
    client = make()
    client.on_connect = lambda c, u, f, rc, p: c.subscribe("dt/+/+/+", qos=1)
    client.connect("127.0.0.1", port, clean_start=False, properties=props)
    client.loop_start()
    time.sleep(1.0)
    client.disconnect()
    client.loop_stop()
    ready.set()
    go.get()  # the backlog is queued
    client = make()
    props.SessionExpiryInterval = 0  # the session ends with this connection
    client.connect("127.0.0.1", port, clean_start=False, properties=props)
    client.loop_forever()
    results.put((state["n"] - 1) / (state["last"] - state["first"]))


def raw_receive_rate(port: int, devices: list[str], rounds: int, *, bulk: bool) -> float:
    ctx = mp.get_context("fork")
    ready, go, channel = ctx.Event(), ctx.Queue(), ctx.Queue()
    expected = rounds * len(devices)
    proc = ctx.Process(target=_raw_subscriber, args=(port, expected, bulk, ready, go, channel))
    proc.start()
    ready.wait(30)
    publish(port, devices, rounds=rounds, boot=9_000 + bulk)
    go.put("go")
    rate = channel.get(timeout=600)
    proc.join(30)
    return rate


# --- the naive baseline -------------------------------------------------------------------------
def _naive_app():
    from celery import Celery

    app = Celery("naive", broker=os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0"))
    app.conf.update(task_acks_late=True, worker_prefetch_multiplier=1, task_ignore_result=True)
    connection = {}

    @app.task(name="bench.naive_store")
    def naive_store(item: dict) -> None:
        """One message, one INSERT, autocommit: what a first implementation would do."""
        import psycopg

        from api.telemetry.vocabulary import NAME_CODES

        conn = connection.get("db")
        if conn is None:
            conn = connection["db"] = psycopg.connect(os.environ["DATABASE_URL"], autocommit=True)
        payload = item["payload"]
        records = payload["m"]
        names = [NAME_CODES[r["n"]] for r in records]
        vals = [float(r["v"]) if "v" in r else (1.0 if r.get("vb") else 0.0) for r in records]
        conn.execute(
            "INSERT INTO telemetry_reading (device_id, ts, boot, seq, names, vals) "
            "SELECT id, to_timestamp(%s), %s, %s, %s::int2[], %s::float8[] "
            "FROM telemetry_device WHERE device_id = %s ON CONFLICT DO NOTHING",
            [payload["ts"], payload["boot"], payload["seq"], names, vals, item["device_id"]],
        )

    return app


naive_app = _naive_app() if os.environ.get("BENCH_NAIVE_WORKER") else None


def _faultless_app():
    """Palier's Celery app with fault evaluation (hooks.on_readings_stored) switched off."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "api.config.settings")
    from api.telemetry import hooks

    hooks.on_readings_stored = lambda device_ids, readings: None
    from workers.celery_app import app

    return app


faultless_app = _faultless_app() if os.environ.get("BENCH_WITHOUT_FAULTS") else None


def naive_bridge(port: int, ready_file: str) -> None:
    """Stock paho (auto-ack after on_message), one task per message."""
    import msgspec
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from devices.contract import ContractError, decode

    app = _naive_app()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    def on_message(client, userdata, message) -> None:
        try:
            decoded = decode(message.topic, message.payload, now=time.time())
        except ContractError:
            return
        item = {
            "device_id": decoded.topic.device_id,
            "payload": msgspec.to_builtins(decoded.envelope),
        }
        app.send_task("bench.naive_store", args=[item], queue="naive")

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-naive", protocol=mqtt.MQTTv5)
    client.on_message = on_message
    client.on_connect = lambda c, u, f, rc, p: c.subscribe("dt/+/+/+", qos=1)
    client.on_subscribe = lambda *_: Path(ready_file).touch()
    client.connect("127.0.0.1", port)
    client.loop_start()
    stop.wait()
    client.loop_stop()


# --- profiles ---------------------------------------------------------------------------------
def profile(pids: dict[str, int], seconds: float, workdir: Path) -> threading.Thread:
    """Sample the given processes with py-spy for `seconds` (in the background)."""

    def run() -> None:
        procs = {
            name: subprocess.Popen(
                [
                    *(PY_SPY, "record", "--nonblocking", "-f", "raw", "-r", "200"),
                    *("-d", str(int(seconds)), "-p", str(pid), "-o", str(workdir / f"{name}.prof")),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for name, pid in pids.items()
        }
        for proc in procs.values():
            proc.wait()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def print_profile(path: Path, top: int = 14) -> None:
    """Self time by function (file:line of the function), from a py-spy raw profile."""
    if not path.exists():
        print(f"  (no profile: {path.name}; is py-spy installed?)")
        return
    own: dict[str, int] = {}
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        frame = stack.split(";")[-1]
        name = frame.split(" (")[0] + " (" + frame.split(" (")[-1].split(":")[0] + ")"
        own[name] = own.get(name, 0) + int(count)
        total += int(count)
    print(f"  {path.stem}: {total} samples, self time")
    for name, count in sorted(own.items(), key=lambda kv: -kv[1])[:top]:
        print(f"    {count / total:6.1%}  {name[:110]}")


# --- the phases ---------------------------------------------------------------------------------
def throughput(
    stack: Stack, store: Store, devices, rounds: int, boot: int, procs: int, prof: bool = False
) -> dict:
    expected = rounds * len(devices)
    if prof:
        import psutil

        pids = {f"profile-{name}": proc.pid for name, proc in stack.bridges.items()}
        children = [c for w in stack.workers for c in psutil.Process(w.pid).children()]
        for index, child in enumerate(children):
            pids[f"profile-worker-{index}"] = child.pid
        profile(pids, 10, stack.workdir)
    handoff = HandOff([b.metrics_port for b in stack.bridges.values()], expected)
    handoff.start()
    meter = CpuMeter(stack)
    meter.start()
    job = Publishing(stack.mqtt_port, devices, rounds=rounds, boot=boot, processes=procs)
    job.start()
    stored_at = store.wait_stored(boot, expected, timeout=900)
    cpu = meter.stop(expected)
    job.join()
    handoff.stop.set()
    handoff.join()
    rows, distinct = store.count(boot)
    started = job.result["started"]
    return {
        "messages": expected,
        "publish_rate": expected / (job.result["finished"] - started),
        "handoff_rate": expected / (handoff.at - started) if handoff.at else 0.0,
        "rate": expected / (stored_at - started) if stored_at else 0.0,
        "seconds": (stored_at - started) if stored_at else float("nan"),
        "lost": expected - distinct,
        "duplicated": rows - distinct,
        "cpu_us": cpu,
    }


def latency(stack: Stack, store: Store, devices, seconds: float, boot: int, rate: float) -> dict:
    rounds = max(1, int(rate * seconds / len(devices)))
    probes = [store.ids[d] for d in devices[:: max(1, len(devices) // 60)]]
    probe = LatencyProbe(stack.database_url, probes, boot)
    probe.start()
    result = publish(stack.mqtt_port, devices, rounds=rounds, boot=boot, rate=rate, processes=1)
    expected = rounds * len(devices)
    store.wait_stored(boot, expected, timeout=120)
    probe.stop.set()
    probe.join()
    lat = sorted(probe.latencies)
    offered = expected / (result["finished"] - result["started"])
    return {
        "offered": offered,
        "samples": len(lat),
        "p50": statistics.median(lat) if lat else float("nan"),
        "p99": lat[min(len(lat) - 1, int(len(lat) * 0.99))] if lat else float("nan"),
        "max": lat[-1] if lat else float("nan"),
    }


def backlog(stack: Stack, store: Store, devices, rounds: int, boot: int, procs: int) -> dict:
    expected = rounds * len(devices)
    stack.stop_bridge("bench-bridge-0")
    publish(stack.mqtt_port, devices, rounds=rounds, boot=boot, processes=procs)
    say(f"  {expected:,} messages queued in the stopped bridge's session; restarting it")
    started = time.time()
    bridge = stack.start_bridge("bench-bridge-0", leave=True)
    handoff = HandOff([bridge.metrics_port], expected)
    handoff.base = 0.0  # a new process: its counters start at zero
    handoff.start()
    stored_at = store.wait_stored(boot, expected, timeout=900)
    handoff.stop.set()
    handoff.join()
    rows, distinct = store.count(boot)
    return {
        "messages": expected,
        "handoff_seconds": (handoff.at - started) if handoff.at else float("nan"),
        "peak_inflight": handoff.peak_inflight,
        "seconds": (stored_at - started) if stored_at else float("nan"),
        "lost": expected - distinct,
        "duplicated": rows - distinct,
    }


def naive(stack: Stack, store: Store, devices, rounds: int, boot: int) -> dict:
    env = dict(stack.env, BENCH_NAIVE_WORKER="1", PYTHONPATH=f"{ROOT}:{ROOT / 'bench'}")
    worker = stack._spawn(
        "naive-worker",
        [
            PYTHON,
            "-m",
            "celery",
            "-A",
            "ingest:naive_app",
            "worker",
            "-Q",
            "naive",
            "--concurrency",
            str(stack.concurrency),
            "--loglevel",
            "WARNING",
            "--without-gossip",
            "--without-mingle",
        ],
        cwd=ROOT / "bench",
        env=env,
    )
    ready = stack.workdir / "naive-bridge.ready"
    bridge = stack._spawn(
        "naive-bridge",
        [PYTHON, __file__, "--naive-bridge", str(stack.mqtt_port), "--ready-file", str(ready)],
        env=env,
    )
    deadline = time.time() + 60
    while not ready.exists() and time.time() < deadline:
        time.sleep(0.1)
    time.sleep(2)  # the naive worker's start
    expected = rounds * len(devices)
    result = publish(stack.mqtt_port, devices, rounds=rounds, boot=boot)
    deadline = time.time() + 600
    while store.rows(boot) < expected and time.time() < deadline:
        time.sleep(0.25)
    stored_at = time.time()
    for proc in (bridge, worker):
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    return {"messages": expected, "rate": expected / (stored_at - result["started"])}


PHASES = ("raw", "one", "latency", "two", "backlog", "naive")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="smaller volumes")
    parser.add_argument("--only", help=f"comma-separated phases among {', '.join(PHASES)}")
    parser.add_argument("--devices", type=int, default=2000)
    parser.add_argument("--messages", type=int, help="messages in the throughput phases")
    parser.add_argument("--backlog", type=int, help="messages in the backlog phase")
    parser.add_argument("--publishers", type=int, default=2, help="publisher processes")
    parser.add_argument(
        "--concurrency", type=int, default=1, help="worker processes (--single-worker, naive)"
    )
    parser.add_argument(
        "--without-faults",
        action="store_true",
        help="ingest workers without fault evaluation (the write path alone)",
    )
    parser.add_argument(
        "--single-worker",
        action="store_true",
        help="one worker for every shard queue instead of one per shard",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    parser.add_argument(
        "--profile", action="store_true", help="py-spy the bridge and worker (throughput phase)"
    )
    parser.add_argument("--naive-bridge", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--ready-file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.naive_bridge:
        naive_bridge(args.naive_bridge, args.ready_file)
        return

    quick = args.quick
    phases = set(args.only.split(",")) if args.only else set(PHASES)
    messages = args.messages or (20_000 if quick else 300_000)
    backlog_n = args.backlog or (50_000 if quick else 500_000)
    raw_n = 40_000 if quick else 100_000
    naive_n = 2_000 if quick else 20_000
    latency_s = 5.0 if quick else 20.0
    devices = device_ids(args.devices)
    per = len(devices)
    database_url = os.environ.get(
        "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/palier_bench"
    )
    workdir = Path(tempfile.mkdtemp(prefix="palier-bench-"))
    stack = Stack(
        workdir,
        database_url,
        args.concurrency,
        per_shard=not args.single_worker,
        faults=not args.without_faults,
    )
    figures: dict[str, dict] = {}
    metrics: dict[str, float] = {}
    try:
        say(f"work directory {workdir}; {per} simulated devices")
        stack.start_brokers()
        stack.prepare_database(devices)
        store = Store(database_url)

        if "raw" in phases:
            say(f"raw receive rate: a bare paho subscriber draining {raw_n:,} queued messages")
            figures["raw"] = {
                "paho": raw_receive_rate(stack.mqtt_port, devices, raw_n // per, bulk=False),
                "bulk": raw_receive_rate(stack.mqtt_port, devices, raw_n // per, bulk=True),
            }
            say(f"  {figures['raw']}")

        if phases & {"one", "latency", "two", "backlog"}:
            stack.start_workers()
            # The backlog phase needs this session to outlive a stop; otherwise leave on stop.
            stack.start_bridge("bench-bridge-0", leave="backlog" not in phases)
            say("warm-up")
            warm = publish(stack.mqtt_port, devices, rounds=1, boot=1, processes=1)
            store.wait_stored(1, warm["total"], timeout=300)

        if "one" in phases:
            say(f"throughput, one bridge: {messages:,} messages")
            figures["one"] = throughput(
                stack, store, devices, messages // per, 2, args.publishers, prof=args.profile
            )
            say(f"  {figures['one']}")
            if args.profile:
                time.sleep(1)
                for path in sorted(stack.workdir.glob("profile-*.prof")):
                    print_profile(path)

        if "latency" in phases:
            say(f"latency at 5,000 msg/s offered for {latency_s:.0f} s")
            figures["latency"] = latency(stack, store, devices, latency_s, 3, 5000.0)
            say(f"  {figures['latency']}")

        if "two" in phases:
            say(f"throughput, two bridges: {messages:,} messages")
            stack.start_bridge("bench-bridge-1", leave=True)
            figures["two"] = throughput(stack, store, devices, messages // per, 4, args.publishers)
            stack.stop_bridge("bench-bridge-1")
            say(f"  {figures['two']}")

        if "backlog" in phases:
            say(f"backlog: {backlog_n:,} messages queued while the bridge is down")
            figures["backlog"] = backlog(
                stack, store, devices, backlog_n // per, 5, args.publishers
            )
            say(f"  {figures['backlog']}")
        if "bench-bridge-0" in stack.bridges:
            metrics = scrape(stack.bridges["bench-bridge-0"].metrics_port)
            stack.stop_bridge("bench-bridge-0")
        stack.stop_workers()

        if "naive" in phases:
            say(f"naive baseline: {naive_n:,} messages, one task and one INSERT each")
            figures["naive"] = naive(stack, store, devices, max(1, naive_n // per), 6)
            say(f"  {figures['naive']}")
        figures["bytes"] = {"per_message": store.bytes_per_message()}
    finally:
        stack.stop_all()
        if not args.keep:
            import shutil

            shutil.rmtree(workdir, ignore_errors=True)
    report(figures, stack.rss_peak, metrics, args)


def _fmt(value: float | None, spec: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return format(value, spec)


def report(f: dict, rss: dict, metrics: dict, args) -> None:
    """The final table; a phase that was not run shows '-'."""
    nan = float("nan")
    raw, one, two = f.get("raw", {}), f.get("one", {}), f.get("two", {})
    lat, back, nai = f.get("latency", {}), f.get("backlog", {}), f.get("naive", {})
    best_raw = max(raw.values()) if raw else nan
    e2e = one.get("rate", nan)
    rows = [
        ("end-to-end, one bridge (msg/s)", _fmt(e2e, ",.0f"), ">= 20,000"),
        (
            "  bridge hand-off, MQTT to Redis, acked (msg/s)",
            _fmt(one.get("handoff_rate"), ",.0f"),
            "",
        ),
        ("  publishers' rate (msg/s)", _fmt(one.get("publish_rate"), ",.0f"), ""),
        ("raw paho QoS 1 receive, stock paho (msg/s)", _fmt(raw.get("paho"), ",.0f"), ""),
        ("raw paho QoS 1 receive, bulk read (msg/s)", _fmt(raw.get("bulk"), ",.0f"), ""),
        (
            "end-to-end / stock raw receive",
            _fmt(e2e / raw["paho"] if raw else nan, ".2f"),
            ">= 0.5",
        ),
        ("end-to-end / best raw receive", _fmt(e2e / best_raw, ".2f"), ""),
        ("naive baseline (msg/s)", _fmt(nai.get("rate"), ",.0f"), ""),
        ("one bridge / naive", _fmt(e2e / nai["rate"] if nai else nan, ".1f") + "x", ">= 15x"),
        ("latency at 5,000 msg/s offered: p50 (s)", _fmt(lat.get("p50"), ".3f"), ""),
        ("latency at 5,000 msg/s offered: p99 (s)", _fmt(lat.get("p99"), ".3f"), "< 1"),
        (
            "  achieved offered rate (msg/s), samples",
            _fmt(lat.get("offered"), ",.0f") + f", {lat.get('samples', '-')}",
            "",
        ),
        ("bridge peak RSS (MB)", _fmt(max(rss.values()) if rss else nan, ".0f"), "< 200"),
        (
            f"backlog of {back.get('messages', 0):,} drained, stored (s)",
            _fmt(back.get("seconds"), ".1f"),
            "<= 45",
        ),
        ("  of which the bridge's hand-off (s)", _fmt(back.get("handoff_seconds"), ".1f"), ""),
        (
            "  lost / duplicated",
            f"{back.get('lost', '-')} / {back.get('duplicated', '-')}",
            "0 / 0",
        ),
        ("end-to-end, two bridges (msg/s)", _fmt(two.get("rate"), ",.0f"), "> one bridge"),
        ("  two bridges' hand-off (msg/s)", _fmt(two.get("handoff_rate"), ",.0f"), ""),
        (
            "lost / duplicated (throughput runs)",
            f"{one.get('lost', 0) + two.get('lost', 0)} / "
            f"{one.get('duplicated', 0) + two.get('duplicated', 0)}",
            "0 / 0",
        ),
        ("bytes stored per message", _fmt(f.get("bytes", {}).get("per_message"), ".0f"), ""),
        (
            "CPU µs per message, one bridge run: bridge",
            _fmt(one.get("cpu_us", {}).get("bridge"), ".0f"),
            "",
        ),
        (
            "  ingest workers (all processes)",
            _fmt(one.get("cpu_us", {}).get("workers"), ".0f"),
            "",
        ),
        (
            "  PostgreSQL (the workers' sessions)",
            _fmt(one.get("cpu_us", {}).get("postgresql"), ".0f"),
            "",
        ),
        (
            "  Mosquitto, Redis",
            f"{_fmt(one.get('cpu_us', {}).get('mosquitto'), '.0f')}, "
            f"{_fmt(one.get('cpu_us', {}).get('redis'), '.0f')}",
            "",
        ),
        (
            "  load average at its start, end",
            f"{_fmt(one.get('cpu_us', {}).get('load_start'), '.1f')}, "
            f"{_fmt(one.get('cpu_us', {}).get('load_end'), '.1f')}",
            "",
        ),
        (
            "bridge: quarantined, records rejected",
            f"{metrics.get('palier_bridge_messages_quarantined_total', 0):.0f}, "
            f"{metrics.get('palier_bridge_records_rejected_total', 0):.0f}",
            "",
        ),
    ]
    print()
    print(
        f"Palier ingest bench ({'quick' if args.quick else 'full'}; {os.cpu_count()} cores, "
        f"load average {os.getloadavg()[0]:.1f}; {args.devices} devices, {args.publishers} "
        f"publisher processes; ingest workers: "
        f"{'one' if args.single_worker else 'one per shard'}, {SHARDS} shards; fault "
        f"evaluation {'off' if args.without_faults else 'on'})"
    )
    width = max(len(r[0]) for r in rows)
    print(f"{'figure':<{width}}  {'measured':>16}  goal")
    for name, value, goal in rows:
        print(f"{name:<{width}}  {value:>16}  {goal}")


if __name__ == "__main__":
    # SIGTERM unwinds like Ctrl-C, so that the brokers and processes started here are stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with contextlib.suppress(KeyboardInterrupt):
        main()
