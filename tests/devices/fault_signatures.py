"""Simplified versions of the fault rules, to check what the simulator's readings would raise.

They follow the thresholds of the fault-rules specification on the readings' own timestamps,
without the engine's gates and deadbands: enough to tell a scenario apart from a healthy unit.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

from devices import contract

PARIS = ZoneInfo("Europe/Paris")


@dataclass
class Series:
    """Decoded readings of one device: name -> [(t, value)] in time order."""

    device_id: str
    messages: list[float] = field(default_factory=list)
    values: dict[str, list[tuple[float, object]]] = field(default_factory=lambda: defaultdict(list))

    def get(self, name: str) -> list[tuple[float, object]]:
        return sorted(self.values.get(name, []), key=lambda item: item[0])


def decode_all(messages, *, now: float) -> dict[str, Series]:
    """Every message through the contract (which must accept it), grouped per device."""
    series: dict[str, Series] = {}
    for topic, payload in messages:
        decoded = contract.decode(topic, payload, now=now)
        assert decoded.rejected == [], decoded.rejected
        device = decoded.topic.device_id
        item = series.setdefault(device, Series(device))
        if decoded.envelope is None:
            continue
        item.messages.append(decoded.envelope.ts)
        for record in decoded.envelope.m:
            value = (
                record.v
                if record.v is not None
                else record.vb
                if record.vb is not None
                else record.vs
            )
            item.values[record.n].append((decoded.envelope.ts + record.t, value))
    return series


def held_for(points: list[tuple[float, bool]], duration: float) -> float | None:
    """First time a condition has held continuously for `duration` seconds, or None."""
    since = None
    for t, ok in points:
        if ok:
            since = t if since is None else since
            if t - since >= duration:
                return t
        else:
            since = None
    return None


def _joined(series: Series, *names: str) -> list[tuple[float, dict]]:
    by_time: dict[float, dict] = defaultdict(dict)
    for name in names:
        for t, value in series.get(name):
            by_time[t][name] = value
    return [(t, values) for t, values in sorted(by_time.items()) if len(values) == len(names)]


@lru_cache(maxsize=100_000)
def _local_hour(t: float) -> float:
    moment = datetime.fromtimestamp(t, PARIS)
    return moment.hour + moment.minute / 60


def boiler_fault(s: Series) -> float | None:
    return next((t for t, v in s.get("fault_active") if v), None)


def low_pressure(s: Series) -> float | None:
    return held_for([(t, v < 0.8) for t, v in s.get("ch_pressure")], 1800)


def high_pressure(s: Series) -> float | None:
    return next((t for t, v in s.get("ch_pressure") if v > 2.7), None)


def no_heat(s: Series) -> float | None:
    rows = _joined(s, "heat_demand", "flow_temp", "room_temp")
    return held_for(
        [(t, r["heat_demand"] and r["flow_temp"] <= r["room_temp"] + 5) for t, r in rows], 1800
    )


def cold_dwelling(s: Series) -> float | None:
    rows = _joined(s, "heat_demand", "room_temp")
    return held_for(
        [
            (t, r["heat_demand"] and r["room_temp"] < 18 and 7 <= _local_hour(t) < 23)
            for t, r in rows
        ],
        3 * 3600,
    )


def overheating(s: Series) -> float | None:
    return held_for([(t, v > 26) for t, v in s.get("room_temp")], 6 * 3600)


def short_cycling(s: Series) -> float | None:
    starts = s.get("burner_starts")
    hourly = []
    first = 0
    for t, value in starts:
        while starts[first][0] < t - 3600:
            first += 1
        hourly.append((t, value - starts[first][1] > 6))
    return held_for(hourly, 2 * 3600)


def fan_stopped(s: Series) -> float | None:
    rows = _joined(s, "fan_rpm", "fan_fault")
    return held_for([(t, r["fan_rpm"] == 0 or r["fan_fault"]) for t, r in rows], 600)


def extract_pressure(s: Series) -> float | None:
    return held_for([(t, not 50 <= v <= 200) for t, v in s.get("extract_pressure")], 1800)


def filter_alarm(s: Series) -> float | None:
    return next((t for t, v in s.get("filter_alarm") if v), None)


def damp(s: Series) -> float | None:
    days: dict[int, list[float]] = defaultdict(list)
    for t, v in s.get("rh"):
        days[int(t // 86400)].append(v)
    run = 0
    for day in sorted(days):
        values = days[day]
        run = run + 1 if len(values) > 100 and sum(values) / len(values) > 70 else 0
        if run >= 3:
            return (day + 1) * 86400.0
    return None


def co2_high(s: Series) -> float | None:
    return held_for([(t, v > 1500) for t, v in s.get("co2")], 3600)


def co2_implausible(s: Series) -> float | None:
    return held_for([(t, v < 300) for t, v in s.get("co2")], 3600)


def battery_low(s: Series) -> float | None:
    return next((t for t, v in s.get("battery") if v < 15), None)


def stuck(s: Series) -> float | None:
    for name in ("room_temp", "ch_pressure", "rh", "co2", "extract_pressure"):
        points = s.get(name)
        if not points:
            continue
        changes = [(t, points[i - 1][1] == v) for i, (t, v) in enumerate(points) if i > 0]
        found = held_for(changes, 6 * 3600)
        if found is not None:
            return found
    return None


def silent(s: Series, *, interval: float, until: float) -> float | None:
    times = [*sorted(s.messages), until]
    for before, after in itertools.pairwise(times):
        if after - before > 3 * interval:
            return before + 3 * interval
    return None


RULES = {
    "boiler_fault": boiler_fault,
    "low_pressure": low_pressure,
    "high_pressure": high_pressure,
    "no_heat": no_heat,
    "cold_dwelling": cold_dwelling,
    "overheating": overheating,
    "short_cycling": short_cycling,
    "fan_stopped": fan_stopped,
    "extract_pressure": extract_pressure,
    "filter_alarm": filter_alarm,
    "damp": damp,
    "co2_high": co2_high,
    "co2_implausible": co2_implausible,
    "battery_low": battery_low,
    "stuck": stuck,
}


def raised(series: dict[str, Series]) -> dict[str, dict[str, float]]:
    """rule -> {device: time first raised} over all devices."""
    found: dict[str, dict[str, float]] = defaultdict(dict)
    for device, s in series.items():
        for rule, check in RULES.items():
            t = check(s)
            if t is not None:
                found[rule][device] = t
    return found
