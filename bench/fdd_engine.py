"""Fault rules against the simulator, in memory: detection, false alarms and delay per rule.

Runs every scenario of devices/scenarios.py on a small building, and a fault-free heating-season
week of a residence, through devices.simulator.FleetModel -> contract decode -> rule engine (no
broker, no database: bench/fdd_eval.py measures the real path). Prints, per rule: detection rate,
false alarms per dwelling per week, median delay from fault start to fault raised.

    .venv/bin/python bench/fdd_engine.py [--dwellings 20] [--days 7] [--seed 1]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from api.faults.replay import Evaluator, envelope_points, run_fleet
from api.faults.rules import RULES
from devices.scenarios import SCENARIOS
from devices.simulator import DeviceSpec, FleetModel

START = 1_736_121_600.0  # 2025-01-06 00:00 Europe/Paris, a Monday in the heating season
DAY = 86_400.0
INTERVAL = 60.0
# Which rule must catch each scenario, and how long to watch for it.
EXPECTED: dict[str, tuple[str, float]] = {
    "boiler_lockout": ("boiler_lockout", 1 * DAY),
    "slow_pressure_leak": ("low_pressure", 1 * DAY),
    "pump_failure": ("no_heat", 1 * DAY),
    "cold_dwelling": ("cold_dwelling", 2 * DAY),
    "fan_stopped": ("fan_stopped", 1 * DAY),
    "clogged_filter": ("filter_alarm", 2 * DAY),
    "damp_dwelling": ("damp_risk", 6 * DAY),
    "co2_stuck_zero": ("co2_implausible", 1 * DAY),
    "device_silent": ("device_offline", 1 * DAY),
    "building_heat_loss": ("boiler_lockout", 1 * DAY),
}


def specs(dwellings: int, building: str = "B1") -> list[DeviceSpec]:
    """One boiler and one ventilation unit per dwelling."""
    out = []
    for i in range(dwellings):
        for kind in ("heating", "ventilation"):
            out.append(DeviceSpec(f"{kind[0]}{i:03d}", "bench", kind, f"D{i:03d}", building))
    return out


def evaluator_for(fleet_specs: list[DeviceSpec]) -> Evaluator:
    evaluator = Evaluator(offline_after_s=3 * INTERVAL)
    for spec in fleet_specs:
        evaluator.register(spec.device_id, spec.kind)
    return evaluator


def run_scenario(name: str, *, seed: int, dwellings: int = 3) -> tuple[bool, float | None, int]:
    """(detected, delay in s, other raises) for one scenario on a small building."""
    rule_id, watch = EXPECTED[name]
    fleet_specs = specs(dwellings)
    fleet = FleetModel(fleet_specs, start=START, interval=INTERVAL, seed=seed)
    at = START + DAY + 6 * 3600  # Tuesday 06:00 local
    affected = set(fleet.schedule(name, at))
    found = run_fleet(fleet, evaluator_for(fleet_specs), until=at + watch, step_s=600.0)
    raises = [(d, tr) for d, tr in found if tr.kind == "raise"]
    hits = [
        tr.at - at for d, tr in raises if d in affected and tr.rule_id == rule_id and tr.at >= at
    ]
    others = sum(1 for d, tr in raises if tr.at < at)
    return bool(hits), (min(hits) if hits else None), others


def run_healthy(*, dwellings: int, days: float, seed: int) -> Counter:
    """Raises per rule over a fault-free period."""
    fleet_specs = specs(dwellings)
    fleet = FleetModel(fleet_specs, start=START, interval=INTERVAL, seed=seed)
    found = run_fleet(fleet, evaluator_for(fleet_specs), until=START + days * DAY)
    return Counter(tr.rule_id for _, tr in found if tr.kind == "raise")


def throughput(*, dwellings: int, seed: int) -> tuple[int, int, float]:
    """(messages, readings, seconds) to evaluate a day of a fleet, in batches of 10 messages."""
    from devices import contract

    fleet_specs = specs(dwellings)
    fleet = FleetModel(fleet_specs, start=START, interval=INTERVAL, seed=seed)
    per_device: dict[str, list[list]] = defaultdict(list)
    for topic, raw in fleet.step(START + DAY):
        decoded = contract.decode(topic, raw, now=START + DAY)
        if decoded.envelope is not None:
            env = msgspec.to_builtins(decoded.envelope)
            per_device[env["dev"]].append(list(envelope_points(env)))
    evaluator = evaluator_for(fleet_specs)
    messages = sum(len(batches) for batches in per_device.values())
    readings = sum(len(m) for batches in per_device.values() for m in batches)
    began = time.perf_counter()
    for device_id, batches in per_device.items():
        for i in range(0, len(batches), 10):
            evaluator.feed(device_id, [r for m in batches[i : i + 10] for r in m])
    return messages, readings, time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dwellings", type=int, default=20)
    parser.add_argument("--days", type=float, default=7.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    began = time.perf_counter()
    detection: dict[str, list[bool]] = defaultdict(list)
    delays: dict[str, list[float]] = defaultdict(list)
    print("scenario               rule              detected  delay")
    for name in SCENARIOS:
        rule_id = EXPECTED[name][0]
        detected, delay, _ = run_scenario(name, seed=args.seed)
        detection[rule_id].append(detected)
        if delay is not None:
            delays[rule_id].append(delay)
        shown = f"{delay / 60:7.1f} min" if delay is not None else "      -"
        print(f"{name:22} {rule_id:17} {'yes' if detected else 'NO':8} {shown}")

    healthy = run_healthy(dwellings=args.dwellings, days=args.days, seed=args.seed)
    dwelling_weeks = args.dwellings * args.days / 7.0
    print(
        f"\nfault-free: {args.dwellings} dwellings x {args.days:g} days "
        f"({dwelling_weeks:g} dwelling-weeks)\n"
    )
    print("rule               detection  false alarms/dwelling/week  median delay")
    total_false = 0
    for rule in RULES:
        rate = detection.get(rule.id)
        shown_rate = f"{100 * sum(rate) / len(rate):5.0f} %" if rate else "    - "
        false = healthy.get(rule.id, 0)
        total_false += false
        median = (
            f"{statistics.median(delays[rule.id]) / 60:8.1f} min" if delays.get(rule.id) else "-"
        )
        print(f"{rule.id:18} {shown_rate:10} {false / dwelling_weeks:26.3f}  {median}")
    per_dwelling_week = total_false / dwelling_weeks
    all_detected = all(all(v) for v in detection.values())
    print(
        f"\nall rules: {per_dwelling_week:.3f} false alarms per dwelling per week (goal <= 0.05); "
        f"scenarios detected: {'100 %' if all_detected else 'NOT ALL'}; "
        f"{time.perf_counter() - began:.0f} s"
    )
    messages, readings, seconds = throughput(dwellings=4, seed=args.seed)
    print(
        f"engine alone (one process, states through JSON per batch of 10 messages): "
        f"{messages / seconds:,.0f} messages/s, {readings / seconds:,.0f} readings/s"
    )
    if per_dwelling_week > 0.05 or not all_detected:
        sys.exit(1)


if __name__ == "__main__":
    main()
