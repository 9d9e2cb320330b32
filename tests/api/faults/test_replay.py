"""Replay invariance, properties, real recorded data and the simulator's scenarios."""

import csv
import random
from datetime import UTC, datetime, timedelta, timezone
from itertools import groupby
from pathlib import Path

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.faults.engine import RuleState, evaluate, new_state
from api.faults.replay import Evaluator, run_fleet
from api.faults.rules import RULES, RULES_BY_ID, rules_for
from devices.scenarios import SCENARIOS
from devices.simulator import DeviceSpec, FleetModel

DATA = Path("/work/shared/data/indoor-climate")
START = 1_736_121_600.0  # 2025-01-06 00:00 Europe/Paris
DAY = 86_400.0
HYPOTHESIS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def fleet_readings(scenario: str | None, days: float = 1.0, seed: int = 3):
    """The readings per device of a one-dwelling simulated building, message by message."""
    specs = [
        DeviceSpec(f"{kind[0]}{i}", "t", kind, f"D{i}", "B")
        for i in range(1)
        for kind in ("heating", "ventilation")
    ]
    fleet = FleetModel(specs, start=START, interval=60.0, seed=seed)
    if scenario:
        fleet.schedule(scenario, START + 6 * 3600)
    from devices import contract

    per_device: dict[str, list] = {spec.device_id: [] for spec in specs}
    for topic, raw in fleet.step(START + days * DAY):
        decoded = contract.decode(topic, raw, now=START + days * DAY)
        if decoded.envelope is not None:
            env = msgspec.to_builtins(decoded.envelope)
            per_device[env["dev"]].append(
                [
                    (
                        env["ts"] + r.get("t", 0.0),
                        r["n"],
                        next(r[k] for k in ("v", "vb", "vs") if k in r),
                    )
                    for r in env["m"]
                ]
            )
    return specs, per_device


def feed(rule, batches):
    state, out = None, []
    for batch in batches:
        state, found = evaluate(rule, state, batch)
        # Through JSON, as between workers.
        state = msgspec.json.decode(msgspec.json.encode(state), type=RuleState)
        out.extend(found)
    return out


@pytest.fixture(scope="module")
def pressure_leak():
    return fleet_readings("slow_pressure_leak")


@pytest.mark.parametrize("rule_id", ["low_pressure", "no_heat", "cold_dwelling", "boiler_lockout"])
def test_one_batch_many_batches_or_buffered_give_the_same_transitions(pressure_leak, rule_id):
    _, per_device = pressure_leak
    messages = per_device["h0"]
    rule = RULES_BY_ID[rule_id]
    whole = feed(rule, [[r for m in messages for r in m]])
    one_by_one = feed(rule, messages)
    # Buffered: groups of up to 90 messages delivered together, as after an outage.
    rng = random.Random(7)
    buffered, i = [], 0
    while i < len(messages):
        size = rng.randint(1, 90)
        buffered.append([r for m in messages[i : i + size] for r in m])
        i += size
    assert whole == one_by_one == feed(rule, buffered)
    if rule_id == "low_pressure":
        assert [tr.kind for tr in whole][:1] == ["raise"]


@given(cuts=st.lists(st.integers(min_value=1, max_value=400), min_size=1, max_size=30))
@HYPOTHESIS
def test_any_batch_split_gives_the_same_transitions(pressure_leak, cuts):
    _, per_device = pressure_leak
    messages = per_device["h0"][:600]
    batches, i = [], 0
    for cut in cuts:
        batches.append([r for m in messages[i : i + cut] for r in m])
        i += cut
    batches.append([r for m in messages[i:] for r in m])
    for rule_id in ("low_pressure", "short_cycling", "no_heat"):
        rule = RULES_BY_ID[rule_id]
        assert feed(rule, batches) == feed(rule, [[r for m in messages for r in m]])


@given(
    values=st.lists(
        st.one_of(
            st.floats(min_value=-1e6, max_value=1e6, allow_nan=False),
            st.just(float("nan")),
            st.just(float("inf")),
        ),
        min_size=1,
        max_size=200,
    ),
    step=st.floats(min_value=1.0, max_value=7200.0),
    shuffle_seed=st.integers(min_value=0, max_value=1000),
)
@HYPOTHESIS
def test_every_rule_survives_any_values_in_any_order(values, step, shuffle_seed):
    names = ["ch_pressure", "room_temp", "co2", "rh", "fan_rpm", "burner_starts", "battery"]
    readings = [(START + i * step, names[i % len(names)], v) for i, v in enumerate(values)]
    shuffled = readings[:]
    random.Random(shuffle_seed).shuffle(shuffled)
    for rule in RULES:
        state, found = evaluate(rule, None, readings)
        assert [tr.at for tr in found] == sorted(tr.at for tr in found)
        kinds = [tr.kind for tr in found if tr.kind != "update"]
        # Raise and clear alternate, starting with a raise: one active fault at a time.
        assert kinds == ["raise", "clear"] * (len(kinds) // 2) + ["raise"] * (len(kinds) % 2)
        assert state.active == (kinds[-1:] == ["raise"])
        # Within one call, order of arrival does not matter.
        assert evaluate(rule, None, shuffled)[1] == found


@given(
    pressures=st.lists(st.floats(min_value=0.0, max_value=3.0), min_size=1, max_size=300),
)
@HYPOTHESIS
def test_low_pressure_raises_only_after_30_min_below_and_clears_only_at_or_above_1_bar(pressures):
    readings = [(START + 60.0 * i, "ch_pressure", p) for i, p in enumerate(pressures)]
    by_time = {t: p for t, _, p in readings}
    _, found = evaluate(RULES_BY_ID["low_pressure"], None, readings)
    for tr in found:
        if tr.kind == "raise":
            window = [p for t, p in by_time.items() if tr.since <= t <= tr.at]
            assert tr.at - tr.since >= 1800
            assert all(p < 0.8 for p in window)
        if tr.kind == "clear":
            assert all(p >= 1.0 for t, p in by_time.items() if tr.at - 300 <= t <= tr.at)


# --- real recorded data -------------------------------------------------------------------------


def windesheim(source: str):
    path = DATA / "windesheim-b4b2022" / "917810_raw_properties.csv"
    out = []
    with path.open() as handle:
        for row in csv.DictReader(handle):
            if row["source"] != source:
                continue
            t = datetime.fromisoformat(row["timestamp"]).timestamp()
            if row["co2__ppm"]:
                out.append((t, "co2", float(row["co2__ppm"])))
            if row["rel_humidity__0"]:
                out.append((t, "rh", 100 * float(row["rel_humidity__0"])))
    return out


def uci(name: str):
    out = []
    with (DATA / "uci-occupancy-detection" / name).open() as handle:
        rows = csv.reader(handle)
        next(rows)
        for row in rows:
            moment = datetime.fromisoformat(row[1]).replace(tzinfo=timezone(timedelta(hours=1)))
            t = moment.timestamp()
            out += [(t, "co2", float(row[5])), (t, "rh", float(row[3]))]
    return out


def test_windesheim_bms_co2_dropouts_raise_sensor_dropouts_on_15_october():
    readings = windesheim("bms")
    _, found = evaluate(RULES_BY_ID["sensor_dropouts"], None, readings)
    raises = [tr for tr in found if tr.kind == "raise"]
    # The third 0 ppm drop-out within 24 h: 00:03, 03:15 and 03:34 on 15 October 2022 (+02:00).
    first = datetime.fromtimestamp(raises[0].at, UTC)
    assert first == datetime(2022, 10, 15, 1, 34, 34, tzinfo=UTC)
    assert len(raises) >= 3
    # Each drop-out is a single reading: too brief for the one-hour implausible-CO2 rule.
    assert evaluate(RULES_BY_ID["co2_implausible"], None, readings)[1] == []
    # Nor do they disturb the CO2 and damp rules: the 0 values fail the data-quality stage.
    assert evaluate(RULES_BY_ID["co2_high"], None, readings)[1] == []
    assert evaluate(RULES_BY_ID["damp_risk"], None, readings)[1] == []


def test_windesheim_miscalibrated_scd41_raises_co2_implausible():
    readings = windesheim("CO2-meter-SCD4x")
    _, found = evaluate(RULES_BY_ID["co2_implausible"], None, readings)
    raises = [tr for tr in found if tr.kind == "raise"]
    assert raises
    assert all(tr.values["co2"] < 300 for tr in raises)
    # The minimum, 236 ppm on 1 November 23:40 (+01:00), falls in a raised period.
    minimum = datetime(2022, 11, 1, 22, 40, tzinfo=UTC).timestamp()
    periods = []
    for tr in found:
        if tr.kind == "raise":
            periods.append([tr.since, float("inf")])
        elif tr.kind == "clear":
            periods[-1][1] = tr.at
    assert any(start <= minimum <= end for start, end in periods)


@pytest.mark.parametrize("name", ["datatraining.txt", "datatest.txt", "datatest2.txt"])
def test_clean_uci_office_data_stays_quiet(name):
    readings = uci(name)
    for rule_id in ("co2_implausible", "sensor_dropouts", "damp_risk", "sensor_stuck"):
        assert evaluate(RULES_BY_ID[rule_id], None, readings)[1] == [], rule_id
    # High CO2 raises only where the office really was above 1,500 ppm for a whole hour.
    _, found = evaluate(RULES_BY_ID["co2_high"], None, readings)
    co2 = [(t, v) for t, n, v in readings if n == "co2"]
    for tr in found:
        if tr.kind == "raise":
            assert tr.at - tr.since >= 3600
            assert all(v > 1500 for t, v in co2 if tr.since <= t <= tr.at)


# --- the simulator ------------------------------------------------------------------------------

SCENARIO_RULES = {
    "boiler_lockout": ("boiler_lockout", 0.5),
    "slow_pressure_leak": ("low_pressure", 0.6),
    "pump_failure": ("no_heat", 0.5),
    "cold_dwelling": ("cold_dwelling", 1.0),
    "fan_stopped": ("fan_stopped", 0.5),
    "clogged_filter": ("filter_alarm", 0.5),
    "damp_dwelling": ("damp_risk", 4.5),
    "co2_stuck_zero": ("co2_implausible", 0.5),
    "device_silent": ("device_offline", 0.5),
    "building_heat_loss": ("boiler_lockout", 0.5),
}


def simulate(scenario: str | None, days: float, dwellings: int = 1):
    specs = [
        DeviceSpec(f"{kind[0]}{i}", "t", kind, f"D{i}", "B")
        for i in range(dwellings)
        for kind in ("heating", "ventilation")
    ]
    fleet = FleetModel(specs, start=START, interval=60.0, seed=5)
    begins = START + 6 * 3600  # Monday 06:00, local time
    affected = fleet.schedule(scenario, begins) if scenario else []
    evaluator = Evaluator(offline_after_s=180.0)
    for spec in specs:
        evaluator.register(spec.device_id, spec.kind)
    found = run_fleet(fleet, evaluator, until=begins + days * DAY, step_s=900.0)
    return begins, affected, [(d, tr) for d, tr in found if tr.kind == "raise"]


@pytest.mark.parametrize("scenario", sorted(SCENARIO_RULES))
def test_every_simulator_scenario_is_caught_by_its_rule(scenario):
    rule_id, days = SCENARIO_RULES[scenario]
    begins, affected, raises = simulate(
        scenario, days, dwellings=2 if SCENARIOS[scenario].building_wide else 1
    )
    assert affected
    caught = {d for d, tr in raises if tr.rule_id == rule_id and tr.at >= begins}
    assert caught >= set(affected), (scenario, raises)
    assert not [tr for _, tr in raises if tr.at < begins]  # nothing before the fault starts


def test_a_healthy_fleet_raises_nothing_over_two_days():
    """Two dwellings, Monday and Tuesday of a January week (bench/fdd_engine.py runs longer)."""
    _, _, raises = simulate(None, 1.75, dwellings=2)
    assert raises == []


def test_every_rule_is_attached_to_some_unit():
    attached = {rule.id for kind in ("heating", "ventilation") for rule in rules_for(kind)}
    assert attached == {rule.id for rule in RULES}
    assert [key for key, _ in groupby(sorted(r.id for r in RULES))] == sorted(RULES_BY_ID)
    assert new_state(RULES[0]).rule_id == RULES[0].id
