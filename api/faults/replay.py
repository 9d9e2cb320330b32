"""Run the rule engine over whole devices and fleets in memory (replays, benchmarks, tests)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import msgspec

from api.faults.engine import (
    DEFAULT_CONTEXT,
    Context,
    Reading,
    Rule,
    RuleState,
    Transition,
    evaluate,
    resolve,
    sweep_offline,
)
from api.faults.rules import rules_for


def envelope_points(payload: dict) -> Iterator[Reading]:
    """(event time, name, value) of each record of a contract envelope (as builtins)."""
    ts = payload["ts"]
    for record in payload["m"]:
        value = record.get("v")
        if value is None:
            value = record.get("vb")
        if value is None:
            value = record.get("vs")
        yield ts + record.get("t", 0.0), record["n"], value


@dataclass
class Evaluator:
    """Rule states of many devices, fed batch by batch; states round-trip through JSON bytes.

    Keeping the states as bytes, as a Redis hash would, proves at every batch that they are
    serialisable and that evaluation depends on nothing else.
    """

    context: Context = DEFAULT_CONTEXT
    offline_after_s: float | None = None
    states: dict[tuple[str, str], bytes] = field(default_factory=dict)
    rules: dict[str, tuple[Rule, ...]] = field(default_factory=dict)
    last_seen: dict[str, float] = field(default_factory=dict)

    def register(self, device_id: str, kind: str, params: dict | None = None) -> None:
        """Attach the shipped rules of `kind` to a device (with its parameters)."""
        rules = []
        for rule in rules_for(kind):
            rule = resolve(rule, params)
            if rule.offline_after_s is not None and self.offline_after_s is not None:
                rule = msgspec.structs.replace(rule, offline_after_s=self.offline_after_s)
            rules.append(rule)
        self.rules[device_id] = tuple(rules)

    def _state(self, device_id: str, rule: Rule) -> RuleState | None:
        raw = self.states.get((device_id, rule.id))
        return None if raw is None else msgspec.json.decode(raw, type=RuleState)

    def feed(self, device_id: str, readings: Iterable[Reading]) -> list[Transition]:
        """One batch of a device's readings through all its rules; transitions in event time."""
        readings = list(readings)
        if readings:
            latest = max(r[0] for r in readings)
            self.last_seen[device_id] = max(latest, self.last_seen.get(device_id, latest))
        out: list[Transition] = []
        for rule in self.rules[device_id]:
            state, found = evaluate(
                rule, self._state(device_id, rule), readings, context=self.context
            )
            self.states[(device_id, rule.id)] = msgspec.json.encode(state)
            out.extend(found)
        out.sort(key=lambda tr: tr.at)
        return out

    def sweep(self, now: float) -> list[tuple[str, Transition]]:
        """The offline sweep at wall-clock time `now`, over every device."""
        out = []
        for device_id, rules in self.rules.items():
            for rule in rules:
                if rule.offline_after_s is None:
                    continue
                state, found = sweep_offline(
                    rule,
                    self._state(device_id, rule),
                    now=now,
                    last_seen=self.last_seen.get(device_id),
                )
                self.states[(device_id, rule.id)] = msgspec.json.encode(state)
                out.extend((device_id, tr) for tr in found)
        return out


def run_fleet(
    fleet,
    evaluator: Evaluator,
    *,
    until: float,
    step_s: float = 3600.0,
    sweep: bool = True,
) -> list[tuple[str, Transition]]:
    """Drive a devices.simulator.FleetModel to `until` through the rules, batch per `step_s`.

    Messages are decoded with the contract, exactly as the bridge does, and each device's
    readings of a step form one batch; the offline sweep runs at the end of every step.
    """
    from devices import contract

    out: list[tuple[str, Transition]] = []
    now = min(state.next_report for state in fleet.devices.values()) - fleet.interval
    while now < until:
        now = min(now + step_s, until)
        batches: dict[str, list[Reading]] = {}
        for topic, raw in fleet.step(now):
            decoded = contract.decode(topic, raw, now=now)
            if decoded.envelope is None:
                continue
            batches.setdefault(decoded.topic.device_id, []).extend(
                envelope_points(msgspec.to_builtins(decoded.envelope))
            )
        for device_id, readings in batches.items():
            out.extend((device_id, tr) for tr in evaluator.feed(device_id, readings))
        if sweep:
            out.extend(evaluator.sweep(now))
    return out
