"""Fault latency: from the message that completes a rule's condition to the fault and its alert.

Ingest and rules run together under load, through the real path (Mosquitto → `palier bridge`
→ Redis → `palier worker` → PostgreSQL, rules inside the ingest transaction):

- background: `--background` healthy simulated units (devices.simulator.FleetModel, a January
  week replayed time-compressed), their messages published at the offered rate;
- probes: `--probes` boilers, each in a small building of its own (below the correlation
  minimum, so that its fault is dispatched at once rather than held for correlation). Each
  sends healthy readings, then, at a known wall-clock time spread over the measured window, an
  event message with `fault_active` and lockout code F28: the message that completes the
  `boiler_lockout` condition (raised at once, major: a ticket and a team alert).

For each probe, the publish time of that message is compared with the fault row's
`created_at` and its team alert's `created_at` (taken inside the ingest transaction), and with
the moment a poller (every 50 ms, so up to 50 ms pessimistic) first saw them committed. Prints
p50/p95/p99 and max, the offered and achieved rates, and the load average.

    .venv/bin/python bench/fault_latency.py                # 5,000 msg/s for 60 s
    .venv/bin/python bench/fault_latency.py --rate 2000 --seconds 30 --probes 100

Uses the same services as bench/fdd_eval.py (BENCH_DATABASE_URL, default
postgres://postgres@127.0.0.1:5432/palier_fbench, dropped and recreated; Redis databases
`--redis-db` and the next one, flushed; the local Mosquitto, BENCH_MQTT_URL).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
for _path in (str(ROOT), str(ROOT / "bench")):
    if _path not in sys.path:
        sys.path.insert(0, _path)

from fdd_eval import (  # noqa: E402 - after the path set-up
    DAY,
    START,
    Progress,
    Publisher,
    Stack,
    Sweeper,
    say,
)
from harness import scrape  # noqa: E402 - after the path set-up

PROBES_PER_TEAM = 8  # below the flood limit (10 alerts per team per 10 min): real alerts


def build_world(fleet: str, *, background: int, probes: int) -> dict:
    """Background units on one boiler and one VMC; each probe boiler in a building of its own."""
    from django.conf import settings
    from django.db import transaction

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    from api.telemetry.models import Device
    from devices.simulator import DeviceSpec
    from tests.factories.accounts import OrganisationFactory
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
        # The background's equipment: one dwelling of a one-dwelling building (no correlation).
        home = DwellingFactory(
            entrance=EntranceFactory(
                building=BuildingFactory(residence=ResidenceFactory(agency=agency))
            )
        )
        boiler = EquipmentFactory(dwelling=home, kind="individual_boiler")
        vmc = EquipmentFactory(dwelling=home, kind="ventilation_unit")
        devices, specs = [], []
        for index in range(background):
            kind = "heating" if index % 2 == 0 else "ventilation"
            device_id = f"{'hx' if kind == 'heating' else 'vx'}-bg{index:05d}"
            devices.append(
                Device(
                    device_id=device_id,
                    organisation=organisation,
                    kind=kind,
                    equipment=boiler if kind == "heating" else vmc,
                    password_hash=_TEST_HASH,
                    reporting_interval_s=60,
                )
            )
            specs.append(DeviceSpec(device_id, fleet, kind, f"bg{index // 2:05d}", "bg"))
        probe_ids = []
        team = residence = None
        for index in range(probes):
            if index % PROBES_PER_TEAM == 0:
                team = TeamFactory(organisation=organisation, name=f"Équipe {index}")
                OnCallShiftFactory(team=team)
                residence = ResidenceFactory(agency=agency)
                TeamSectorFactory(team=team, residence=residence)
            building = BuildingFactory(residence=residence)
            dwelling = DwellingFactory(entrance=EntranceFactory(building=building))
            lease = LeaseFactory(dwelling=dwelling)
            HouseholdMemberFactory(lease=lease, person=TenantFactory(organisation=organisation))
            device_id = f"hx-probe{index:04d}"
            devices.append(
                Device(
                    device_id=device_id,
                    organisation=organisation,
                    kind="heating",
                    equipment=EquipmentFactory(dwelling=dwelling, kind="individual_boiler"),
                    password_hash=_TEST_HASH,
                    reporting_interval_s=60,
                )
            )
            probe_ids.append(device_id)
        Device.objects.bulk_create(devices, batch_size=1000)
    pks = dict(Device.objects.filter(organisation=organisation).values_list("device_id", "id"))
    return {"organisation": organisation, "specs": specs, "probes": probe_ids, "pks": pks}


def probe_message(device_id: str, fleet: str, *, seq: int, ts: float, lockout: bool):
    """A probe boiler's message: healthy telemetry, or the lockout event (F28)."""
    from devices import contract
    from devices.contract import Envelope, make_record

    if lockout:
        records = [make_record("fault_active", True), make_record("fault_code", "F28")]
        topic = contract.event_topic(fleet, device_id)
    else:
        records = [
            make_record("room_temp", 19.6),
            make_record("flow_temp", 55.0),
            make_record("return_temp", 45.0),
            make_record("ch_pressure", 1.5),
            make_record("flame", True),
            make_record("heat_demand", True),
            make_record("fault_active", False),
        ]
        topic = contract.telemetry_topic(fleet, device_id)
    envelope = Envelope(v=1, dev=device_id, boot=1, seq=seq, ts=ts, m=records)
    return topic, contract.encode(envelope)


class Poller(threading.Thread):
    """When each probe's fault and team alert became visible (committed), every 50 ms."""

    def __init__(self, database_url: str, probe_pks: list[int]) -> None:
        import psycopg

        super().__init__(daemon=True)
        self.conn = psycopg.connect(database_url, autocommit=True)
        self.pks = probe_pks
        self.fault_seen: dict[int, float] = {}
        self.alert_seen: dict[str, float] = {}
        self.stop = threading.Event()

    def poll(self) -> None:
        now = time.time()
        rows = self.conn.execute(
            "SELECT device_id, id::text FROM faults_fault "
            "WHERE device_id = ANY(%s) AND rule = 'boiler_lockout'",
            [self.pks],
        ).fetchall()
        fresh = [(device, fid) for device, fid in rows if device not in self.fault_seen]
        for device, _ in fresh:
            self.fault_seen[device] = now
        pending = [fid for _, fid in rows if fid not in self.alert_seen]
        if pending:
            found = self.conn.execute(
                "SELECT context->>'fault_id' FROM notifications_teamalert "
                "WHERE context->>'fault_id' = ANY(%s)",
                [pending],
            ).fetchall()
            for (fid,) in found:
                self.alert_seen[fid] = now

    def run(self) -> None:
        while not self.stop.is_set():
            with contextlib.suppress(Exception):
                self.poll()
            time.sleep(0.05)
        self.poll()


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=5000.0, help="messages/s offered")
    parser.add_argument("--seconds", type=float, default=60.0, help="measured window")
    parser.add_argument("--warmup", type=float, default=10.0, help="load before the probes")
    parser.add_argument(
        "--patience", type=float, default=120.0, help="s to wait for the last alerts after"
    )
    parser.add_argument("--background", type=int, default=2000, help="healthy units")
    parser.add_argument("--probes", type=int, default=200, help="probe boilers (one fault each)")
    parser.add_argument(
        "--workers", type=int, default=2, help="worker processes, each on its own shard queues"
    )
    parser.add_argument("--redis-db", type=int, default=int(os.environ.get("BENCH_REDIS_DB", 5)))
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    args = parser.parse_args()

    fleet = f"fddlat{os.getpid()}"
    mqtt_url = os.environ.get("BENCH_MQTT_URL", "mqtt://127.0.0.1:1883")
    workdir = Path(tempfile.mkdtemp(prefix="palier-fault-latency-"))
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
        retention_days=int((time.time() - START) / DAY) + 30,
    )
    publisher = poller = sweeper = None
    ok = False
    try:
        say(f"work directory {workdir}; fleet {fleet}")
        stack.flush_redis()
        stack.prepare_database()
        world = build_world(fleet, background=args.background, probes=args.probes)
        from devices.simulator import FleetModel

        total = int(args.rate * (args.warmup + args.seconds + 5))
        model = FleetModel(world["specs"], start=START, interval=60.0, seed=3, boot=1)
        say(f"generating {total:,} background messages from {args.background} units")
        background: list = [model.meta(d) for d in model.devices]
        now = START
        while len(background) < total:
            now += 600.0
            background.extend(model.step(now))
        background = background[:total]

        stack.start_workers()
        stack.start_bridge()
        sweeper = Sweeper()
        sweeper.start()
        host = urlsplit(mqtt_url).hostname or "127.0.0.1"
        port = urlsplit(mqtt_url).port or 1883
        publisher = Publisher(host, port, f"{fleet}-publisher", window=5000)
        # Probes: a healthy message each now, the lockout at a known time in the window.
        wall = time.time()
        probes = world["probes"]
        publisher.publish([probe_message(d, fleet, seq=0, ts=wall, lockout=False) for d in probes])
        progress = Progress(stack.database_url, world["organisation"].id, 1)
        # The path is live (workers started and warm) once those are stored.
        deadline = time.time() + 300
        while progress.stored() < len(probes) and time.time() < deadline:
            time.sleep(0.2)
            publisher.keepalive()
        say(f"path live: {progress.stored()} of {len(probes)} probe messages stored")
        poller = Poller(stack.database_url, [world["pks"][d] for d in probes])
        poller.start()

        say(
            f"offering {args.rate:,.0f} msg/s: {args.warmup:g} s warm-up, "
            f"{args.seconds:g} s measured"
        )
        began = time.time()
        first_probe = began + args.warmup
        due = {
            d: first_probe + args.seconds * (i + 0.5) / len(probes) for i, d in enumerate(probes)
        }
        order = sorted(probes, key=due.get)
        sent_at: dict[str, float] = {}
        sent = 0
        probe_index = 0
        stored_at_start = stored_at_end = None
        end = first_probe + args.seconds
        while sent < len(background) and time.time() < end:
            now = time.time()
            if stored_at_start is None and now >= first_probe:
                stored_at_start = (now, progress.stored())
            target = min(len(background), int((now - began) * args.rate))
            chunk = background[sent:target]
            while probe_index < len(order) and due[order[probe_index]] <= now:
                device = order[probe_index]
                chunk.append(probe_message(device, fleet, seq=1, ts=now, lockout=True))
                probe_index += 1
            if chunk:
                publisher.publish(chunk)
                stamp = time.time()
                for topic, _ in chunk:
                    if topic.endswith("/event"):
                        sent_at[topic.split("/")[2]] = stamp
                sent = target
            if stored_at_end is None and now >= end:
                stored_at_end = (now, progress.stored())
            time.sleep(0.005)
        offered = sent / (time.time() - began)
        publisher.flush()
        if stored_at_end is None:
            stored_at_end = (time.time(), progress.stored())
        load = os.getloadavg()
        say(f"waiting up to {args.patience:g} s for the last probes' faults and alerts")
        deadline = time.time() + args.patience
        while time.time() < deadline and len(poller.alert_seen) < len(sent_at):
            time.sleep(0.5)
            publisher.keepalive()
        time.sleep(0.5)
        poller.stop.set()
        poller.join()
        achieved = (stored_at_end[1] - stored_at_start[1]) / (stored_at_end[0] - stored_at_start[0])
        overall = (progress.stored() - len(probes)) / (time.time() - began)
        ok = report(world, sent_at, poller, args, (offered, achieved, overall), load, stack)
    finally:
        for thread in (sweeper, poller):
            if thread is not None:
                thread.stop.set()
        if publisher is not None:
            publisher.close()
        stack.stop_all()
        if args.keep:
            say(f"logs kept in {workdir}")
        else:
            import shutil

            shutil.rmtree(workdir, ignore_errors=True)
    sys.exit(0 if ok else 1)


def report(world, sent_at, poller, args, rates, load, stack) -> bool:
    offered, achieved, overall = rates
    from api.faults.models import Fault
    from api.notifications.models import TeamAlert

    pks = world["pks"]
    by_pk = {pk: d for d, pk in pks.items()}
    faults = {
        by_pk[row["device_id"]]: row
        for row in Fault.objects.filter(
            device_id__in=[pks[d] for d in world["probes"]], rule="boiler_lockout"
        ).values("id", "device_id", "created_at", "dispatched_at", "ticket_id")
    }
    alerts = {
        row["context"].get("fault_id"): row
        for row in TeamAlert.objects.filter(organisation=world["organisation"]).values(
            "context", "created_at", "status"
        )
    }
    fault_created, fault_seen, alert_created, alert_seen = [], [], [], []
    for device, published in sent_at.items():
        fault = faults.get(device)
        if fault is None:
            continue
        fault_created.append(fault["created_at"].timestamp() - published)
        if pks[device] in poller.fault_seen:
            fault_seen.append(poller.fault_seen[pks[device]] - published)
        alert = alerts.get(str(fault["id"]))
        if alert is not None:
            alert_created.append(alert["created_at"].timestamp() - published)
            if str(fault["id"]) in poller.alert_seen:
                alert_seen.append(poller.alert_seen[str(fault["id"])] - published)
    tickets = sum(1 for f in faults.values() if f["ticket_id"])
    digested = sum(1 for a in alerts.values() if a["status"] == "digested")
    metrics = scrape(stack.bridge_metrics_port)
    print()
    print(
        f"Palier fault latency ({os.cpu_count()} cores; load average {load[0]:.2f} / "
        f"{load[1]:.2f} / {load[2]:.2f} at the end of the window; {args.background} background "
        f"units, {len(sent_at)} probes, {args.workers} worker processes)"
    )
    print(
        f"offered {offered:,.0f} msg/s (goal {args.rate:,.0f}); achieved (stored) "
        f"{achieved:,.0f} msg/s over the measured window, {overall:,.0f} msg/s from the start "
        f"of the load to the end of the wait; bridge quarantined "
        f"{metrics.get('palier_bridge_messages_quarantined_total', 0):,.0f}"
    )
    print(
        f"probes: {len(faults)} faults raised of {len(sent_at)} lockouts sent, {tickets} tickets, "
        f"{len(alerts)} team alerts ({digested} digested)"
    )
    print(
        f"\n{'publish of the completing message to':44} {'n':>4} {'p50':>7} {'p95':>7} "
        f"{'p99':>7} {'max':>7}  (s)"
    )
    for label, values in (
        ("fault row created (in the transaction)", fault_created),
        ("fault committed, seen by a 50 ms poller", fault_seen),
        ("team alert created (in the transaction)", alert_created),
        ("team alert committed, seen by the poller", alert_seen),
    ):
        print(
            f"{label:44} {len(values):4d} {percentile(values, 0.5):7.3f} "
            f"{percentile(values, 0.95):7.3f} {percentile(values, 0.99):7.3f} "
            f"{max(values) if values else float('nan'):7.3f}"
        )
    missing = len(sent_at) - len(alert_seen)
    if missing:
        print(
            f"{missing} probe alert(s) not committed within {args.patience:g} s of the window's "
            f"end: counted as slower than every figure above"
        )
        alert_seen = alert_seen + [float("inf")] * missing
    p99 = percentile(alert_seen, 0.99)
    passed = bool(alert_seen) and not missing and p99 < 1.0
    print(
        f"\n{'PASS' if passed else 'FAIL'}  p99 publish to alert committed: {p99:.3f} s "
        f"(goal < 1 s) at {offered:,.0f} msg/s offered, {len(sent_at) - missing}/{len(sent_at)} "
        f"alerts committed in time"
    )
    return passed


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with contextlib.suppress(KeyboardInterrupt):
        main()
