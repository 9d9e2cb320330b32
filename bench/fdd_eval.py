"""Fault detection through the real path: simulated units → Mosquitto → bridge → worker → rules.

Every fault scenario of devices/scenarios.py, and a fault-free heating-season week of a
200-dwelling residence, replayed time-compressed through the same processes as production:

    devices.simulator.FleetModel (the simulator's physics and messages, in event time)
      → the local Mosquitto (MQTT 3.1.1, QoS 1, one connection for the fleet)
      → `palier bridge` (one, subscribed to this run's fleet only)
      → Redis → `palier worker` (ingest queues + default queue)
      → PostgreSQL: readings, then the fault rules inside the ingest transaction → Fault rows

Messages carry their own `ts` and the rules run on event time, so a simulated week can be
published as fast as the path stores it: the replay is paced by the path itself (never more
than `--ahead` messages published and not yet stored). Only "device offline" uses the wall
clock: the offline sweeps (`telemetry.mark_silent_offline` and the faults app's periodic tasks)
are sent every 20 s during the run, as beat would, and its delay is measured in wall-clock
time from the silent unit's last message.

Prints, per rule: detection rate over the scenarios, false alarms per dwelling per week over
the fault-free residence, median delay from fault start (scenario onset, event time) to fault
raised (`raised_at`); then whether the whole-building heat loss gave exactly one incident and
no individual team alert; and a PASS/FAIL line per goal.

    .venv/bin/python bench/fdd_eval.py                 # 200 dwellings, 7 days, 60 s interval
    .venv/bin/python bench/fdd_eval.py --quick         # 40 dwellings, 7 days: a smoke run
    .venv/bin/python bench/fdd_eval.py --days 3 --interval 120

Services: PostgreSQL database `BENCH_DATABASE_URL` (default
postgres://postgres@127.0.0.1:5432/palier_fbench; dropped, recreated and migrated), Redis
`BENCH_REDIS_URL` (default redis://127.0.0.1:6379) databases `--redis-db` and the next one
(flushed), Mosquitto `BENCH_MQTT_URL` (default mqtt://127.0.0.1:1883, anonymous).
"""

from __future__ import annotations

import argparse
import contextlib
import math
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
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from harness import free_port, scrape

ROOT = Path(__file__).resolve().parents[1]
for _path in (str(ROOT), str(ROOT / "bench")):
    if _path not in sys.path:
        sys.path.insert(0, _path)

from fdd_engine import DAY, EXPECTED, START  # noqa: E402 - after the path set-up

PYTHON = sys.executable
HOUR = 3600.0
INGEST_QUEUES = "ingest.0,ingest.1,ingest.2,ingest.3,ingest.quarantine,celery"
SWEEP_TASKS = ("telemetry.mark_silent_offline",)
ONSET = START + DAY + 6 * HOUR  # Tuesday 06:00 local, as in bench/fdd_engine.py
HEAT_LOSS_ONSET = START + 2 * DAY + 17 * HOUR  # Wednesday 18:00 local: heat is demanded
HEAT_LOSS_REPAIR = HEAT_LOSS_ONSET + 6 * HOUR  # gas back, boilers reset


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S', time.gmtime())}] {text}", flush=True)


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="minutes")


# --- MQTT publishing: raw 3.1.1 QoS 1, one connection for the whole fleet ---------------------
def _remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


class Publisher:
    """Publishes with QoS 1 and a window of unacknowledged messages; counts the PUBACKs.

    paho's publisher tops out near 6,000 messages/s per process on this machine; a load
    generator must not be what is measured.
    """

    def __init__(self, host: str, port: int, client_id: str, window: int = 2000) -> None:
        self.sock = socket.create_connection((host, port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        cid = client_id.encode()
        body = b"\x00\x04MQTT\x04\x02\x00\x3c" + struct.pack("!H", len(cid)) + cid
        self.sock.sendall(b"\x10" + _remaining_length(len(body)) + body)
        ack = self.sock.recv(4)
        if len(ack) < 4 or ack[0] != 0x20 or ack[3] != 0:
            raise ConnectionError(f"CONNACK refused: {ack!r}")
        self.window = window
        self.sent = 0
        self.acked = 0
        self._mid = 0
        self._pending = b""
        self._last_ping = time.monotonic()

    def _packet(self, topic: str, payload: bytes) -> bytes:
        self._mid = self._mid % 65535 + 1
        t = topic.encode()
        body = struct.pack("!H", len(t)) + t + struct.pack("!H", self._mid) + payload
        return b"\x32" + _remaining_length(len(body)) + body

    def _read(self, timeout: float) -> None:
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            return
        finally:
            self.sock.settimeout(None)
        if not data:
            raise ConnectionError("the broker closed the connection")
        self._pending += data
        # PUBACK (0x40 0x02 mid) and PINGRESP (0xd0 0x00) are the only packets we receive.
        while len(self._pending) >= 2:
            kind = self._pending[0]
            if kind == 0x40 and len(self._pending) >= 4:
                self.acked += 1
                self._pending = self._pending[4:]
            elif kind == 0xD0:
                self._pending = self._pending[2:]
            else:
                break

    def publish(self, messages: list[tuple[str, bytes]]) -> None:
        """Send `messages` in order, never more than `window` unacknowledged."""
        index = 0
        while index < len(messages):
            room = self.window - (self.sent - self.acked)
            if room <= 0:
                self._read(0.05)
                continue
            chunk = messages[index : index + min(room, 500)]
            self.sock.sendall(b"".join(self._packet(t, p) for t, p in chunk))
            self.sent += len(chunk)
            index += len(chunk)
        self.keepalive()

    def keepalive(self) -> None:
        if time.monotonic() - self._last_ping > 20:
            self.sock.sendall(b"\xc0\x00")
            self._last_ping = time.monotonic()

    def flush(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while self.acked < self.sent and time.monotonic() < deadline:
            self._read(0.05)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.flush(10.0)
            self.sock.sendall(b"\xe0\x00")
            self.sock.close()


# --- the processes under test -------------------------------------------------------------------
class Stack:
    """The bench database, this run's Redis databases, and the bridge and worker processes."""

    def __init__(
        self,
        *,
        workdir: Path,
        database_url: str,
        redis_url: str,
        redis_db: int,
        mqtt_url: str,
        fleet: str,
        workers: int,
        retention_days: int,
    ) -> None:
        self.workdir = workdir
        self.database_url = database_url
        self.redis_url = redis_url.rstrip("/")
        self.redis_db = redis_db
        self.mqtt_url = mqtt_url
        self.fleet = fleet
        self.workers = workers
        self.retention_days = retention_days
        self.children: list[subprocess.Popen] = []
        self.bridge: subprocess.Popen | None = None
        self.bridge_metrics_port = free_port()

    @property
    def env(self) -> dict:
        return dict(
            os.environ,
            DJANGO_SETTINGS_MODULE="api.config.settings",
            DATABASE_URL=self.database_url,
            CELERY_BROKER_URL=f"{self.redis_url}/{self.redis_db}",
            REDIS_URL=f"{self.redis_url}/{self.redis_db + 1}",
            MQTT_URL=self.mqtt_url,
            MQTT_BRIDGE_FLEETS=self.fleet,
            MQTT_BRIDGE_CLIENT_ID=f"{self.fleet}-bridge",
            PALIER_VAR_DIR=str(self.workdir / "var"),
            # Event time of the replayed week is in the past: keep it within raw retention.
            TELEMETRY_RAW_RETENTION_DAYS=str(self.retention_days),
            LOG_LEVEL="WARNING",
            PYTHONUNBUFFERED="1",
        )

    def _spawn(self, name: str, argv: list[str]) -> subprocess.Popen:
        log = (self.workdir / f"{name}.log").open("ab")
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env=self.env)
        self.children.append(proc)
        return proc

    def flush_redis(self) -> None:
        import redis

        for db in (self.redis_db, self.redis_db + 1):
            redis.Redis.from_url(f"{self.redis_url}/{db}").flushdb()

    def prepare_database(self) -> None:
        """Drop, create and migrate the bench database; set Django up in this process."""
        import psycopg

        name = urlsplit(self.database_url).path.lstrip("/")
        admin = self.database_url.rsplit("/", 1)[0] + "/postgres"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
        (self.workdir / "var").mkdir(exist_ok=True)
        subprocess.run(
            [PYTHON, "-m", "api.cli", "migrate", "--noinput", "-v", "0"],
            cwd=ROOT,
            env=self.env,
            check=True,
        )
        os.environ.update({k: v for k, v in self.env.items() if k != "PYTHONUNBUFFERED"})
        import django

        django.setup()

    def start_workers(self) -> None:
        """One process per subset of the shard queues: a shard is only ever consumed by one
        process, one batch at a time, so each unit's batches are ingested in order."""
        shards = [q for q in INGEST_QUEUES.split(",") if q[-1].isdigit()]
        for index in range(self.workers):
            queues = shards[index :: self.workers]
            if index == 0:
                queues += ["ingest.quarantine", "celery"]
            argv = [PYTHON, "-m", "api.cli", "worker", "-Q", ",".join(queues)]
            argv += ["--concurrency", "1", "--loglevel", "WARNING"]
            argv += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
            argv += ["-n", f"{self.fleet}-{index}@%h"]
            self._spawn(f"worker-{index}", argv)

    def start_bridge(self) -> None:
        argv = [PYTHON, "-m", "api.cli", "bridge", "--client-id", f"{self.fleet}-bridge"]
        argv += ["--metrics-port", str(self.bridge_metrics_port), "--leave"]
        self.bridge = self._spawn("bridge", argv)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if scrape(self.bridge_metrics_port).get("palier_bridge_connected") == 1.0:
                return
            if self.bridge.poll() is not None:
                break
            time.sleep(0.2)
        raise RuntimeError(f"the bridge did not connect: see {self.workdir / 'bridge.log'}")

    def queued(self) -> int:
        """Task messages waiting in this run's Celery queues."""
        import redis

        client = redis.Redis.from_url(f"{self.redis_url}/{self.redis_db}")
        return sum(client.llen(q) for q in INGEST_QUEUES.split(","))

    def stop_all(self) -> None:
        for proc in reversed(self.children):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in reversed(self.children):
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()


def sweep_tasks() -> list[str]:
    """The periodic tasks that detection depends on: the offline sweep and the faults app's."""
    from django.conf import settings

    names = list(SWEEP_TASKS)
    for entry in settings.CELERY_BEAT_SCHEDULE.values():
        task = entry.get("task", "")
        if task.startswith("faults.") and task not in names:
            names.append(task)
    return names


class Sweeper(threading.Thread):
    """Send the sweeps every `every` seconds, as beat would (only those detection needs)."""

    def __init__(self, every: float = 20.0) -> None:
        super().__init__(daemon=True)
        from workers.celery_app import app

        self.app = app
        self.every = every
        self.tasks = sweep_tasks()
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(self.every):
            for name in self.tasks:
                with contextlib.suppress(Exception):
                    self.app.send_task(name, queue="celery")


# --- the estate and its units ---------------------------------------------------------------
@dataclass
class World:
    """What was built, and the ground truth of what happens to it."""

    organisation: object
    specs: list = field(default_factory=list)
    healthy_dwellings: int = 0
    healthy_devices: set = field(default_factory=set)
    # (scenario, target device, onset, affected devices)
    scenarios: list = field(default_factory=list)
    heat_loss_building: object = None
    heat_loss_devices: set = field(default_factory=set)
    device_pks: dict = field(default_factory=dict)


def build_world(
    fleet: str, *, dwellings: int, per_building: int, targets: int, interval: float
) -> World:
    """A fault-free residence, a residence of scenario buildings, and a heat-loss building.

    Each scenario target lives in a building of its own with three neighbours (not connected),
    so that one dwelling's fault stays below the 30 % building correlation share while the
    building is big enough to correlate; the heat-loss building has 10 connected dwellings,
    all of which lose their boiler.
    """
    from django.conf import settings
    from django.db import transaction

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    from api.telemetry.models import Device
    from devices.scenarios import SCENARIOS
    from devices.simulator import DeviceSpec
    from tests.factories.accounts import OrganisationFactory, UserFactory
    from tests.factories.estate import (
        AgencyFactory,
        BuildingFactory,
        DwellingFactory,
        EntranceFactory,
        EquipmentFactory,
        HouseholdMemberFactory,
        LeaseFactory,
        ResidenceFactory,
        TeamFactory,
        TeamSectorFactory,
        TenantFactory,
    )
    from tests.factories.notifications import OnCallShiftFactory
    from tests.factories.telemetry import _TEST_HASH

    with transaction.atomic():
        organisation = OrganisationFactory(slug=fleet, name=f"Bench {fleet}")
        agency = AgencyFactory(organisation=organisation)
        world = World(organisation=organisation)
        team = TeamFactory(organisation=organisation, name="Chauffage et ventilation")
        OnCallShiftFactory(team=team)
        devices: list[Device] = []

        def dwelling_in(building, ref: str, *, units: bool = True) -> list[str]:
            entrance = EntranceFactory(building=building)
            dwelling = DwellingFactory(entrance=entrance, reference=ref)
            lease = LeaseFactory(dwelling=dwelling)
            HouseholdMemberFactory(lease=lease, person=TenantFactory(organisation=organisation))
            out = []
            if not units:
                return out
            for kind, equipment_kind, short in (
                ("heating", "individual_boiler", "hx"),
                ("ventilation", "ventilation_unit", "vx"),
            ):
                equipment = EquipmentFactory(dwelling=dwelling, kind=equipment_kind)
                device_id = f"{short}-{ref.lower()}"
                devices.append(
                    Device(
                        device_id=device_id,
                        organisation=organisation,
                        kind=kind,
                        equipment=equipment,
                        password_hash=_TEST_HASH,
                        reporting_interval_s=int(interval),
                    )
                )
                world.specs.append(DeviceSpec(device_id, fleet, kind, ref, building.reference))
                out.append(device_id)
            return out

        healthy = ResidenceFactory(agency=agency, name="Résidence des Tilleuls")
        TeamSectorFactory(team=team, residence=healthy)
        buildings = [
            BuildingFactory(residence=healthy, reference=f"T{b:02d}")
            for b in range((dwellings + per_building - 1) // per_building)
        ]
        for index in range(dwellings):
            world.healthy_devices.update(
                dwelling_in(buildings[index // per_building], f"T{index:04d}")
            )
        world.healthy_dwellings = dwellings

        scenario_home = ResidenceFactory(agency=agency, name="Résidence des Essais")
        TeamSectorFactory(team=team, residence=scenario_home)
        slot = 0
        for name, scenario in SCENARIOS.items():
            if scenario.building_wide:
                continue
            for k in range(targets):
                building = BuildingFactory(residence=scenario_home, reference=f"S{slot:02d}")
                heating, ventilation = dwelling_in(building, f"S{slot:02d}0")
                # Neighbours without connected units: the building counts 4 dwellings, so one
                # dwelling's fault (25 %) stays below the correlation share.
                for n in range(1, 4):
                    dwelling_in(building, f"S{slot:02d}{n}", units=False)
                target = {"heating": heating, "ventilation": ventilation}.get(
                    scenario.kind, heating if k % 2 == 0 else ventilation
                )
                # Onsets 20 min apart, so that no two scenarios start at the same instant.
                world.scenarios.append((name, target, ONSET + slot * 1200.0, None))
                slot += 1

        heat_loss = BuildingFactory(residence=scenario_home, reference="HL")
        world.heat_loss_building = heat_loss
        for n in range(10):
            world.heat_loss_devices.update(dwelling_in(heat_loss, f"HL{n:02d}"))
        Device.objects.bulk_create(devices, batch_size=500)
    world.device_pks = dict(
        Device.objects.filter(organisation=organisation).values_list("device_id", "id")
    )
    UserFactory  # noqa: B018 - imported for symmetry with the factories used above
    return world


# --- the replay -----------------------------------------------------------------------------
class Progress:
    """How many of this run's messages are stored (devices' last sequence numbers)."""

    def __init__(self, database_url: str, organisation_id, boot: int) -> None:
        import psycopg

        self.conn = psycopg.connect(database_url, autocommit=True)
        self.organisation_id = organisation_id
        self.boot = boot

    def stored(self) -> int:
        row = self.conn.execute(
            "SELECT coalesce(sum(last_seq + 1), 0) FROM telemetry_device "
            "WHERE organisation_id = %s AND last_boot = %s",
            [self.organisation_id, self.boot],
        ).fetchone()
        return int(row[0])


@dataclass
class ReplayResult:
    published: int = 0
    wall_s: float = 0.0
    sim_s: float = 0.0
    last_publish: dict = field(default_factory=dict)  # watched device -> wall time
    max_lag: int = 0
    ended: float = 0.0  # wall time of the last message published


def replay(
    model,
    publisher: Publisher,
    progress: Progress,
    *,
    until: float,
    step_s: float,
    ahead: int,
    watch: set[str],
    label: str,
) -> ReplayResult:
    """Drive the fleet model to `until`, publishing each step once the path has caught up."""
    from devices import contract

    result = ReplayResult()
    began = time.time()
    # Retained births first: model, firmware and boot of every unit.
    births = [model.meta(device_id) for device_id in model.devices]
    publisher.publish(births)
    now = model.start
    last_report = time.monotonic()
    data_published = 0
    while now < until:
        now = min(now + step_s, until)
        messages = model.step(now)
        while True:
            lag = data_published - progress.stored()
            result.max_lag = max(result.max_lag, lag)
            if lag + len(messages) <= ahead or lag <= 0:
                break
            time.sleep(0.1)
            publisher.keepalive()
        publisher.publish(messages)
        data_published += len(messages)
        if watch:
            wall = time.time()
            for topic, _ in messages:
                device = contract.parse_topic(topic).device_id
                if device in watch:
                    result.last_publish[device] = wall
        if time.monotonic() - last_report >= 30:
            last_report = time.monotonic()
            elapsed = time.time() - began
            say(
                f"  {label}: event time {iso(now)}, {data_published:,} messages published, "
                f"{data_published / elapsed:,.0f} msg/s, {lag:,} not yet stored, "
                f"load {os.getloadavg()[0]:.1f}"
            )
    publisher.flush()
    result.ended = time.time()
    result.published = data_published
    result.wall_s = time.time() - began
    result.sim_s = until - model.start
    return result


def wait_drained(
    stack: Stack, progress: Progress, expected: int, timeout: float = 1800.0
) -> float | None:
    """Wall time when every published message is stored and the queues are empty."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if progress.stored() >= expected and stack.queued() == 0:
            return time.time()
        time.sleep(0.5)
    return None


# --- reading the outcome ------------------------------------------------------------------------
def faults_available() -> bool:
    """Whether the faults app has its Fault model and table (it is wired into ingest)."""
    try:
        from django.db import connection

        from api.faults.models import Fault
    except ImportError:
        return False
    return Fault._meta.db_table in connection.introspection.table_names()


def fault_rows(organisation) -> list[dict]:
    """Every fault of the run: device id, rule, raised_at (unix s), created_at, incident."""
    from api.faults.models import Fault

    rows = []
    for row in Fault.objects.filter(organisation=organisation).values(
        "id",
        "device__device_id",
        "rule",
        "raised_at",
        "created_at",
        "incident_id",
        "state",
        "building_id",
    ):
        row["raised_at"] = row["raised_at"].timestamp()
        row["created_at"] = row["created_at"].timestamp()
        row["device"] = row.pop("device__device_id")
        row["id"] = str(row["id"])
        rows.append(row)
    return rows


def team_alerts(organisation) -> list[dict]:
    from api.notifications.models import TeamAlert

    return list(
        TeamAlert.objects.filter(organisation=organisation).values(
            "event", "context", "dedupe_key", "created_at"
        )
    )


def incidents(organisation) -> list[dict]:
    from api.tickets.models import Incident

    return list(
        Incident.objects.filter(organisation=organisation).values(
            "id",
            "building_id",
            "residence_id",
            "started_at",
            "ended_at",
            "status",
            "category__code",
        )
    )


@dataclass
class Outcome:
    detection: dict = field(default_factory=lambda: defaultdict(list))
    delays: dict = field(default_factory=lambda: defaultdict(list))
    per_scenario: list = field(default_factory=list)
    false_alarms: Counter = field(default_factory=Counter)
    dwelling_weeks: float = 0.0
    heat_loss_incidents: int = 0
    all_incidents: int = 0
    heat_loss_alerts: int = 0
    heat_loss_faults: int = 0
    faults: list = field(default_factory=list)  # the faults that count


def assess(world: World, faults: list[dict], replayed: ReplayResult, days: float) -> Outcome:
    """Compare the faults stored with the ground truth.

    Every unit falls silent when the replay ends: "offline" faults stored after that moment are
    the end of the bench, not alarms (except for the unit whose silence is the scenario).
    """
    out = Outcome()
    silent_targets = {t for n, t, _, _ in world.scenarios if n == "device_silent"}
    faults = [
        f
        for f in faults
        if f["rule"] != "device_offline"
        or f["created_at"] <= replayed.ended
        or (
            f["device"] in silent_targets
            and replayed.last_publish.get(f["device"], replayed.ended) < replayed.ended - 1.0
        )
    ]
    out.faults = faults
    by_device: dict[str, list[dict]] = defaultdict(list)
    for fault in faults:
        by_device[fault["device"]].append(fault)
    for name, target, onset, affected in world.scenarios:
        rule, watch = EXPECTED[name]
        hits = [
            f
            for device in affected or [target]
            for f in by_device.get(device, [])
            if f["rule"] == rule and f["raised_at"] >= onset
        ]
        if name == "device_silent":
            # The wall-clock rule: from the unit's last message to the fault.
            last = replayed.last_publish.get(target)
            delays = [f["raised_at"] - last for f in hits if last is not None]
        else:
            delays = [f["raised_at"] - onset for f in hits if f["raised_at"] <= onset + watch]
        detected = bool(delays)
        out.detection[rule].append(detected)
        if detected:
            out.delays[rule].append(min(delays))
        out.per_scenario.append((name, target, rule, detected, min(delays) if delays else None))
    for fault in faults:
        if fault["device"] in world.healthy_devices:
            out.false_alarms[fault["rule"]] += 1
    out.dwelling_weeks = world.healthy_dwellings * days / 7.0
    out.heat_loss_faults = sum(1 for f in faults if f["device"] in world.heat_loss_devices)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="40 dwellings: a smoke run")
    parser.add_argument("--dwellings", type=int, default=None, help="fault-free residence (200)")
    parser.add_argument("--per-building", type=int, default=20)
    parser.add_argument("--days", type=float, default=7.0, help="simulated days (7)")
    parser.add_argument("--interval", type=float, default=60.0, help="reporting interval, s")
    parser.add_argument("--targets", type=int, default=2, help="dwellings per scenario")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--step", type=float, default=600.0, help="simulated s per publish step")
    parser.add_argument("--ahead", type=int, default=20_000, help="max messages not yet stored")
    parser.add_argument(
        "--workers", type=int, default=2, help="worker processes, each on its own shard queues"
    )
    parser.add_argument("--redis-db", type=int, default=int(os.environ.get("BENCH_REDIS_DB", 5)))
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    args = parser.parse_args()
    dwellings = args.dwellings or (40 if args.quick else 200)

    fleet = f"fddeval{os.getpid()}"
    mqtt_url = os.environ.get("BENCH_MQTT_URL", "mqtt://127.0.0.1:1883")
    workdir = Path(tempfile.mkdtemp(prefix="palier-fdd-eval-"))
    retention = int((time.time() - START) / DAY) + 30
    stack = Stack(
        workdir=workdir,
        database_url=os.environ.get(
            "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/palier_fbench"
        ),
        redis_url=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379"),
        redis_db=args.redis_db,
        mqtt_url=mqtt_url,
        fleet=fleet,
        workers=args.workers,
        retention_days=retention,
    )
    began = time.time()
    load_before = os.getloadavg()
    sweeper = None
    publisher = None
    try:
        say(f"work directory {workdir}; fleet {fleet}; event time from {iso(START)}")
        stack.flush_redis()
        stack.prepare_database()
        world = build_world(
            fleet,
            dwellings=dwellings,
            per_building=args.per_building,
            targets=args.targets,
            interval=args.interval,
        )
        from devices.simulator import FleetModel

        boot = 1
        model = FleetModel(
            world.specs, start=START, interval=args.interval, seed=args.seed, boot=boot
        )
        scenarios = []
        for name, target, onset, _ in world.scenarios:
            affected = model.schedule(name, onset, device_id=target)
            scenarios.append((name, target, onset, affected))
        world.scenarios = scenarios
        heat_target = sorted(d for d in world.heat_loss_devices if d.startswith("hx-"))[0]
        affected = model.schedule("building_heat_loss", HEAT_LOSS_ONSET, device_id=heat_target)
        world.scenarios.append(("building_heat_loss", heat_target, HEAT_LOSS_ONSET, affected))
        model.heal(affected, HEAT_LOSS_REPAIR)
        say(
            f"{len(world.specs)} units: {dwellings} fault-free dwellings, "
            f"{len(world.scenarios)} scenario targets, a 10-dwelling heat-loss building; "
            f"faults models present: {faults_available()}"
        )
        stack.start_workers()
        stack.start_bridge()
        sweeper = Sweeper()
        sweeper.start()
        say(f"sweeps sent every {sweeper.every:.0f} s: {', '.join(sweeper.tasks)}")
        progress = Progress(stack.database_url, world.organisation.id, boot)
        host = urlsplit(mqtt_url).hostname or "127.0.0.1"
        port = urlsplit(mqtt_url).port or 1883
        publisher = Publisher(host, port, f"{fleet}-publisher")
        silent = {t for n, t, _, _ in world.scenarios if n == "device_silent"}
        say(f"replaying {args.days:g} days of event time, {args.step:g} s steps")
        replayed = replay(
            model,
            publisher,
            progress,
            until=START + args.days * DAY,
            step_s=args.step,
            ahead=args.ahead,
            watch=silent,
            label="replay",
        )
        drained_at = wait_drained(stack, progress, replayed.published)
        # A unit that fell silent late in the replay: give the offline sweep its intervals.
        silent_since = [t for t in replayed.last_publish.values() if t < replayed.ended - 1.0]
        grace = 3 * args.interval + 2 * sweeper.every
        if silent_since and time.time() - max(silent_since) < grace:
            time.sleep(grace - (time.time() - max(silent_since)))
        time.sleep(2 * sweeper.every)
        wait_drained(stack, progress, replayed.published, timeout=120)
        sweeper.stop.set()
        metrics = scrape(stack.bridge_metrics_port)
        load_after = os.getloadavg()
        stored = progress.stored()
        say(
            f"replayed {replayed.published:,} messages ({replayed.sim_s / DAY:g} days of event "
            f"time) in {replayed.wall_s:.0f} s: {replayed.published / replayed.wall_s:,.0f} "
            f"msg/s through the whole path, {replayed.sim_s / replayed.wall_s:,.0f}x real time; "
            f"stored {stored:,}; drained {'yes' if drained_at else 'NO'}"
        )
        say(
            f"bridge: {metrics.get('palier_bridge_messages_received_total', 0):,.0f} received, "
            f"{metrics.get('palier_bridge_messages_quarantined_total', 0):,.0f} quarantined"
        )
        ok = report(world, replayed, args.days, stored, load_before, load_after, began)
    finally:
        if sweeper is not None:
            sweeper.stop.set()
        if publisher is not None:
            publisher.close()
        stack.stop_all()
        if args.keep:
            say(f"logs kept in {workdir}")
        else:
            import shutil

            shutil.rmtree(workdir, ignore_errors=True)
    sys.exit(0 if ok else 1)


def report(world, replayed, days, stored, load_before, load_after, began) -> bool:
    from api.faults.rules import RULES

    print()
    print(
        f"Palier fault detection through the real path ({os.cpu_count()} cores; load average "
        f"{load_before[0]:.1f} before, {load_after[0]:.1f} after; {time.time() - began:.0f} s)"
    )
    if not faults_available():
        print("api.faults.models has no Fault model yet: detection cannot be measured.")
        print(f"ingest only: {stored:,} of {replayed.published:,} messages stored")
        print("FAIL  faults stored (no Fault model)")
        return False
    faults = fault_rows(world.organisation)
    outcome = assess(world, faults, replayed, days)
    faults = outcome.faults
    print("\nscenario               target              rule              detected  delay")
    for name, target, rule, detected, delay in outcome.per_scenario:
        unit = "s wall" if name == "device_silent" else "min"
        shown = (
            "-"
            if delay is None
            else (f"{delay:7.0f} s (wall)" if unit == "s wall" else f"{delay / 60:7.1f} min")
        )
        print(f"{name:22} {target:19} {rule:17} {'yes' if detected else 'NO':8}  {shown}")
    print(
        f"\nfault-free residence: {world.healthy_dwellings} dwellings x {days:g} days "
        f"({outcome.dwelling_weeks:g} dwelling-weeks)\n"
    )
    print("rule               detection  false alarms/dwelling/week  median delay")
    total_false = 0
    for rule in RULES:
        rate = outcome.detection.get(rule.id)
        shown_rate = f"{100 * sum(rate) / len(rate):5.0f} %" if rate else "    - "
        false = outcome.false_alarms.get(rule.id, 0)
        total_false += false
        delays = outcome.delays.get(rule.id)
        if delays:
            median = statistics.median(delays)
            shown = (
                f"{median:8.0f} s (wall)"
                if rule.id == "device_offline"
                else f"{median / 60:8.1f} min"
            )
        else:
            shown = "-"
        print(f"{rule.id:18} {shown_rate:10} {false / outcome.dwelling_weeks:26.3f}  {shown}")
    per_dwelling_week = total_false / outcome.dwelling_weeks
    detected = [d for values in outcome.detection.values() for d in values]
    all_incidents = incidents(world.organisation)
    building_incidents = [
        i for i in all_incidents if i.get("building_id") == world.heat_loss_building.id
    ]
    alerts = team_alerts(world.organisation)
    heat_faults = [f for f in faults if f["device"] in world.heat_loss_devices]
    heat_ids = {f["id"] for f in heat_faults}
    individual = [a for a in alerts if (a["context"] or {}).get("fault_id") in heat_ids]
    incident_ids = {str(i["id"]) for i in building_incidents}
    incident_alerts = [a for a in alerts if (a["context"] or {}).get("incident_id") in incident_ids]
    suppressed = sum(1 for f in heat_faults if f["incident_id"] is not None)
    print(
        f"\nheat loss of building HL (10 dwellings): {len(heat_faults)} faults "
        f"({suppressed} children of an incident), {len(building_incidents)} incident(s) on the "
        f"building ({len(all_incidents)} in the whole run), {len(incident_alerts)} incident "
        f"alert(s), {len(individual)} individual team alert(s) about its units "
        f"({len(alerts)} team alerts in the whole run)"
    )
    for incident in building_incidents:
        print(
            f"  incident {incident['category__code']}: {incident['status']}, opened "
            f"{incident['started_at']:%H:%M:%S}, ended "
            f"{incident['ended_at'] and format(incident['ended_at'], '%H:%M:%S')} (wall clock)"
        )
    from django.conf import settings

    lockouts = sorted(f["raised_at"] for f in heat_faults if f["rule"] == "boiler_lockout")
    need = math.ceil(settings.FAULT_INCIDENT_SHARE * 10 - 1e-9)
    hold = settings.FAULT_CORRELATION_HOLD_S
    if len(lockouts) >= need:
        spread = lockouts[need - 1] - lockouts[0]
        print(
            f"  event time from the first lockout to lockout #{need} (the "
            f"{settings.FAULT_INCIDENT_SHARE:.0%} share): {spread / 60:.1f} min; the correlation "
            f"hold is {hold} s of wall-clock time, compressed here: live, the first fault "
            f"{'WOULD' if spread > hold else 'would not'} be alerted on its own first"
        )
    goals = [
        (f"scenarios detected: {sum(detected)}/{len(detected)} (goal 100 %)", all(detected)),
        (
            f"false alarms: {per_dwelling_week:.3f} per dwelling per week (goal <= 0.05)",
            per_dwelling_week <= 0.05,
        ),
        (
            f"whole-building heat loss: {len(building_incidents)} incident (goal exactly 1), "
            f"{len(individual)} individual alerts (goal 0)",
            len(building_incidents) == 1 and not individual,
        ),
        (
            f"every message stored: {stored:,} of {replayed.published:,}",
            stored == replayed.published,
        ),
    ]
    print()
    for text, passed in goals:
        print(f"{'PASS' if passed else 'FAIL'}  {text}")
    return all(passed for _, passed in goals)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with contextlib.suppress(KeyboardInterrupt):
        main()
