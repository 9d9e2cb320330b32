"""Fault rules on the ingest path: what evaluating a batch costs, per batch and per message.

Feeds batches of 500 messages (100 heating units x 5 messages, 5 signals each: room and flow
temperature, circuit pressure, heat demand, flame) through the real ingest service
(api.telemetry.ingest.ingest_batch, one committed transaction per batch), first with the fault
rules on the path, then without them. Prints, for each: median and p90 wall time per batch,
microseconds per message; and for fault evaluation alone (api.faults.services.evaluate_stored):
wall time, CPU time (time.process_time, in-process, which other load on the machine affects less
than wall time) and the part spent writing engine state. The load average is printed with them.

    .venv/bin/python bench/fault_hotpath.py [--batches 30] [--units 100] [--profile out.prof]
    .venv/bin/python bench/fault_hotpath.py --engine-only   # the engine alone, no database

BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/palier_bench_faults) is created
if missing, migrated and emptied (flush) at the start of each run; the script's units and their
data are deleted at the end.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

from harness import ensure_database

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/palier_bench_faults"
MESSAGES_PER_UNIT = 5


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def engine_only(batches: int, units: int) -> None:
    """The same batches through the engine alone: states decoded and encoded as on ingest."""
    from api.faults import engine
    from api.faults.rules import RULES

    rules = [r for r in RULES if r.kind in ("any", "heating") and r.offline_after_s is None]
    names = {"room_temp", "flow_temp", "ch_pressure", "heat_demand", "flame"}
    start = time.time() - 5 * 3600
    states: dict[tuple[int, str], bytes] = {}
    cpu_per_batch = []
    for b in range(batches + 3):
        points = {}
        for unit in range(units):
            points[unit] = [
                point
                for k in range(MESSAGES_PER_UNIT)
                for point in (
                    (start + (b * MESSAGES_PER_UNIT + k) * 60, "room_temp", 20.0 + (k % 3) * 0.1),
                    (start + (b * MESSAGES_PER_UNIT + k) * 60, "flow_temp", 45.0),
                    (start + (b * MESSAGES_PER_UNIT + k) * 60, "ch_pressure", 1.5),
                    (start + (b * MESSAGES_PER_UNIT + k) * 60, "heat_demand", True),
                    (start + (b * MESSAGES_PER_UNIT + k) * 60, "flame", True),
                )
            ]
        cpu = time.process_time()
        for unit, unit_points in points.items():
            for rule in rules:
                if names.isdisjoint(engine.rule_signals(rule)):
                    continue
                raw = states.get((unit, rule.id))
                state = engine.load_state(raw) if raw is not None else None
                state, _ = engine.evaluate(rule, state, unit_points, owned=True)
                states[(unit, rule.id)] = engine.dump_state(state)
        if b >= 3:  # the first batches create the states
            cpu_per_batch.append(time.process_time() - cpu)
    cpu = statistics.median(cpu_per_batch)
    print(
        f"rule engine alone, {units * MESSAGES_PER_UNIT}-message batches: CPU median "
        f"{cpu * 1e3:.1f} ms per batch = {cpu / (units * MESSAGES_PER_UNIT) * 1e6:.1f} us/msg; "
        f"load average {os.getloadavg()[0]:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=30, help="measured batches with rules")
    parser.add_argument("--units", type=int, default=100)
    parser.add_argument(
        "--per-unit",
        type=int,
        default=MESSAGES_PER_UNIT,
        help="messages per unit in a batch (1: a live stream, each unit once per batch)",
    )
    parser.add_argument("--profile", help="write a cProfile of evaluate_stored to this file")
    parser.add_argument(
        "--engine-only", action="store_true", help="the rule engine alone, in memory (no database)"
    )
    args = parser.parse_args()
    if args.engine_only:
        engine_only(args.batches, args.units)
        return

    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL)
    ensure_database(url)
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "api.config.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    call_command("flush", interactive=False, verbosity=0)  # the bench database only

    from api.faults import services
    from api.telemetry import hooks
    from api.telemetry.ingest import ingest_batch
    from api.telemetry.models import Device
    from devices.contract import make_record
    from tests.factories.estate import place_factory
    from tests.factories.telemetry import DeviceFactory, telemetry_item

    place = place_factory()
    devices = [
        DeviceFactory(dwelling=place_factory(entrance=place.entrance).dwelling)
        for _ in range(args.units)
    ]
    start = time.time() - 5 * 3600
    seq = {d.id: 0 for d in devices}
    per_unit = args.per_unit
    per_batch = args.units * per_unit

    def batch(minute: int) -> list[dict]:
        items = []
        for k in range(per_unit):
            for d in devices:
                seq[d.id] += 1
                records = [
                    make_record("room_temp", 20.0 + (seq[d.id] % 3) * 0.1),
                    make_record("flow_temp", 45.0),
                    make_record("ch_pressure", 1.5),
                    make_record("heat_demand", True),
                    make_record("flame", True),
                ]
                items.append(
                    telemetry_item(d, seq=seq[d.id], ts=start + (minute + k) * 60, records=records)
                )
        return items

    evals: list[tuple[float, float]] = []
    saves: list[float] = []
    original_eval = services.evaluate_stored
    original_save = services.states_save
    profiler = None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()

    def timed_eval(device_ids, readings):
        wall, cpu = time.perf_counter(), time.process_time()
        if profiler is not None:
            profiler.enable()
        try:
            return original_eval(device_ids, readings)
        finally:
            if profiler is not None:
                profiler.disable()
            evals.append((time.perf_counter() - wall, time.process_time() - cpu))

    def timed_save(*a, **kw):
        wall = time.perf_counter()
        try:
            return original_save(*a, **kw)
        finally:
            saves.append(time.perf_counter() - wall)

    def run(n: int, minute: int) -> list[tuple[float, float]]:
        out = []
        for i in range(n):
            items = batch(minute + i * per_unit)
            wall, cpu = time.perf_counter(), time.process_time()
            ingest_batch(items)
            out.append((time.perf_counter() - wall, time.process_time() - cpu))
        return out

    try:
        run(3, 0)  # warm-up: states created, caches filled
        services.evaluate_stored = timed_eval
        services.states_save = timed_save
        with_rules = run(args.batches, 20)
        services.evaluate_stored = original_eval
        services.states_save = original_save
        hook = hooks.on_readings_stored
        hooks.on_readings_stored = lambda device_ids, readings: None
        without = run(max(10, args.batches // 2), 20 + (args.batches + 2) * per_unit)
        hooks.on_readings_stored = hook
    finally:
        Device.objects.filter(id__in=[d.id for d in devices]).delete()

    def line(label: str, rows: list[tuple[float, float]]) -> str:
        walls = [w for w, _ in rows]
        cpus = [c for _, c in rows]
        wall, cpu = statistics.median(walls), statistics.median(cpus)
        per_message = f"{wall / per_batch * 1e6:6.1f} us/msg wall, {cpu / per_batch * 1e6:6.1f}"
        return (
            f"{label:<22} wall median {wall * 1e3:7.1f} ms  p90 {pct(walls, 0.9) * 1e3:7.1f} ms"
            f"  = {per_message} us/msg CPU"
        )

    print(
        f"batch: {per_batch} messages ({args.units} units x {per_unit}, 5 signals), "
        f"{args.batches} batches; load average {os.getloadavg()[0]:.2f} "
        f"on {os.cpu_count()} cores"
    )
    print(line("ingest without rules", without))
    print(line("ingest with rules", with_rules))
    print(line("fault evaluation", evals))
    if saves:
        print(
            f"{'  of which state write':<22} wall median {statistics.median(saves) * 1e3:7.1f} ms"
            f"  ({len(saves) / len(evals):.1f} writes per batch)"
        )
    if profiler is not None:
        profiler.dump_stats(args.profile)
        print(f"profile written to {args.profile}")


if __name__ == "__main__":
    main()
