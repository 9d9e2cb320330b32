"""The simulation model: deterministic, valid against the contract, and faults that show."""

import itertools
from datetime import UTC, datetime

import pytest

from devices import contract
from devices.physics import GRID_S
from devices.scenarios import SCENARIOS
from devices.simulator import FleetModel, demo_specs
from tests.devices import fault_signatures as rules

# A Monday in the heating season, midnight UTC.
START = datetime(2026, 11, 16, tzinfo=UTC).timestamp()
HOUR = 3600.0


def _fleet(count: int = 20, interval: float = 60.0) -> FleetModel:
    return FleetModel(demo_specs(count), start=START, interval=interval, seed=7)


def test_same_seed_same_messages_however_time_is_sliced():
    whole = _fleet().step(START + 6 * HOUR)
    sliced_fleet = _fleet()
    sliced = []
    t = START
    for stride in [1.0, 29.0, 61.0, 300.0, 7.5, 3600.0, 1234.0] * 10:
        t = min(t + stride, START + 6 * HOUR)
        sliced += sliced_fleet.step(t)
    sliced += sliced_fleet.step(START + 6 * HOUR)

    def per_device(messages):
        grouped: dict[str, list] = {}
        for topic, payload in messages:
            grouped.setdefault(contract.parse_topic(topic).device_id, []).append((topic, payload))
        return grouped

    assert per_device(sliced) == per_device(whole)
    assert _fleet().step(START + HOUR) != FleetModel(
        demo_specs(20), start=START, interval=60.0, seed=8
    ).step(START + HOUR)


def test_every_message_fits_the_contract_with_increasing_sequence_numbers():
    fleet = _fleet()
    for name in SCENARIOS:
        fleet.schedule(name, START + HOUR, device_id=fleet.eligible(name)[-1])
    messages = fleet.step(START + 12 * HOUR)
    last_seq: dict[str, int] = {}
    for topic, payload in messages:
        decoded = contract.decode(topic, payload, now=START + 12 * HOUR)
        assert decoded.rejected == []
        device = decoded.topic.device_id
        assert decoded.envelope.seq == last_seq.get(device, -1) + 1
        last_seq[device] = decoded.envelope.seq
        assert len(payload) <= contract.MAX_PAYLOAD_BYTES
    assert len(last_seq) == 20


def test_readings_are_realistic_for_healthy_units():
    series = rules.decode_all(_fleet(interval=120.0).step(START + 30 * HOUR), now=START + 30 * HOUR)
    values = {
        name: [v for s in series.values() for _, v in s.get(name)]
        for name in ("room_temp", "ch_pressure", "flow_temp", "extract_pressure", "rh", "co2")
    }
    assert min(values["room_temp"]) >= 16.0 and max(values["room_temp"]) <= 23.0
    assert min(values["ch_pressure"]) >= 1.0 and max(values["ch_pressure"]) <= 1.9
    assert max(values["flow_temp"]) > 45.0  # the boilers do fire
    assert min(values["extract_pressure"]) >= 80.0 and max(values["extract_pressure"]) <= 170.0
    assert min(values["rh"]) >= 25.0 and max(values["rh"]) <= 90.0
    assert min(values["co2"]) >= 350.0 and max(values["co2"]) <= 1500.0
    # Occupancy moves CO2: higher at night than in the working day.
    co2 = [(t, v) for s in series.values() for t, v in s.get("co2")]
    night = [v for t, v in co2 if 2 <= rules._local_hour(t) < 5]
    afternoon = [v for t, v in co2 if 14 <= rules._local_hour(t) < 16]
    assert sum(night) / len(night) > sum(afternoon) / len(afternoon) + 100
    # Flames cycle and the counter follows.
    starts = [v for _, v in series["sim-heat-0000"].get("burner_starts")]
    assert starts == sorted(starts) and starts[-1] - starts[0] >= 10


def test_a_healthy_fleet_raises_no_fault_over_two_nights():
    fleet = FleetModel(demo_specs(30), start=START, interval=120.0, seed=11)
    end = START + 40 * HOUR
    series = rules.decode_all(fleet.step(end), now=end)
    assert dict(rules.raised(series)) == {}
    for s in series.values():
        assert rules.silent(s, interval=120.0, until=end) is None


# scenario -> (rules that must fire on the target, hours to run, latest detection in hours)
EXPECTED = {
    "boiler_lockout": ({"boiler_fault"}, 8, 0.1),
    "slow_pressure_leak": ({"low_pressure", "boiler_fault"}, 8, 6),
    "pump_failure": ({"no_heat"}, 8, 4),
    "cold_dwelling": ({"cold_dwelling"}, 14, 12),
    "fan_stopped": ({"fan_stopped"}, 4, 0.5),
    "clogged_filter": ({"filter_alarm", "extract_pressure"}, 8, 6),
    "damp_dwelling": ({"damp"}, 4 * 24, 4 * 24),
    "co2_stuck_zero": ({"co2_implausible"}, 4, 1.2),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_scenario_raises_its_fault_on_its_target_only(name):
    expected, hours, latest = EXPECTED[name]
    fleet = _fleet(8, interval=60.0 if hours < 24 else 180.0)
    at = START + 6 * HOUR
    target = fleet.eligible(name)[3]
    assert fleet.schedule(name, at, device_id=target) == [target]
    end = START + (6 + hours) * HOUR
    found = rules.raised(rules.decode_all(fleet.step(end), now=end))
    for rule in expected:
        assert target in found[rule], f"{name} did not raise {rule}"
        assert at <= found[rule][target] <= at + latest * HOUR
    others = {device for devices in found.values() for device in devices} - {target}
    assert others == set()


def test_device_silent_stops_one_unit_only():
    fleet = _fleet()
    target = fleet.eligible("device_silent")[5]
    fleet.schedule("device_silent", START + HOUR, device_id=target)
    end = START + 3 * HOUR
    series = rules.decode_all(fleet.step(end), now=end)
    silent = {d for d, s in series.items() if rules.silent(s, interval=60.0, until=end)}
    assert silent == {target}
    assert max(series[target].messages) < START + HOUR + GRID_S


def test_building_heat_loss_locks_out_most_of_the_building_within_30_minutes():
    fleet = _fleet(40)  # 20 dwellings, two buildings of ten
    at = START + 8 * HOUR  # 09:00 in Paris: people up, heating on
    affected = fleet.schedule("building_heat_loss", at, device_id="sim-heat-0012")
    assert sorted(affected) == [f"sim-heat-{i:04d}" for i in range(10, 20)]
    end = at + 2 * HOUR
    found = rules.raised(rules.decode_all(fleet.step(end), now=end))["boiler_fault"]
    assert set(found) == set(affected)
    within = [d for d, t in found.items() if t <= at + 30 * 60]
    assert len(within) >= 0.3 * len(affected)
    assert max(found.values()) <= at + 35 * 60


def test_healing_clears_the_fault_and_an_event_says_so():
    fleet = _fleet()
    target = fleet.eligible("boiler_lockout")[0]
    fleet.schedule("boiler_lockout", START + HOUR, device_id=target)
    fleet.heal([target], START + 2 * HOUR)
    events = [
        contract.decode(t, p, now=START + 3 * HOUR).envelope
        for t, p in fleet.step(START + 3 * HOUR)
        if t == contract.event_topic("sim", target)
    ]
    assert [[(r.n, r.vb if r.vb is not None else r.vs) for r in e.m] for e in events] == [
        [("fault_active", True), ("fault_code", "F28")],
        [("fault_active", False)],
    ]
    assert START + HOUR <= events[0].ts < START + HOUR + 2 * GRID_S


def test_offline_readings_are_buffered_then_sent_with_negative_offsets():
    fleet = _fleet(2)
    device = "sim-heat-0000"
    offline_from, offline_to = START + HOUR, START + 2 * HOUR
    messages = []
    t = START
    while t < START + 3 * HOUR:
        t += 60
        messages += fleet.step(t, online=lambda d, t=t: not (offline_from <= t < offline_to))
    envelopes = [
        contract.decode(topic, payload, now=t).envelope
        for topic, payload in messages
        if contract.parse_topic(topic).device_id == device
    ]
    seqs = [e.seq for e in envelopes]
    assert seqs == list(range(len(seqs)))
    flushed = [e for e in envelopes if any(r.t < 0 for r in e.m)]
    assert flushed, "buffered readings were never sent"
    # Connectivity is sampled once a step (a minute here): the flush is the first report after.
    assert all(offline_to - 60 <= e.ts <= offline_to + 60 for e in flushed)
    reading_times = sorted({e.ts + r.t for e in envelopes for r in e.m if r.n == "room_temp"})
    # Nothing was lost while offline: one reading a minute all along.
    gaps = [b - a for a, b in itertools.pairwise(reading_times)]
    assert max(gaps) <= 60.0 + GRID_S
    assert all(len(contract.encode(e)) <= contract.MAX_PAYLOAD_BYTES for e in flushed)


def test_reboot_starts_a_new_boot_with_sequence_zero():
    fleet = _fleet(2)
    fleet.step(START + 600)
    assert fleet.reboot("sim-heat-0000") == 2
    topic, payload = fleet.meta("sim-heat-0000")
    assert contract.decode(topic, payload, now=START).meta.boot == 2
    first = next(
        contract.decode(t, p, now=START + 1200).envelope
        for t, p in fleet.step(START + 1200)
        if "sim-heat-0000" in t
    )
    assert (first.boot, first.seq) == (2, 0)


def test_reset_fault_clears_a_lockout():
    fleet = _fleet(2)
    fleet.schedule("boiler_lockout", START + 600, device_id="sim-heat-0000")
    fleet.step(START + 1200)
    assert fleet.dwellings["sim-dw-0000"].fault_code() == "F28"
    fleet.reset_fault("sim-heat-0000", START + 1200)
    fleet.step(START + 1300)
    assert fleet.dwellings["sim-dw-0000"].fault_code() is None


def test_scenarios_are_documented_and_refuse_the_wrong_kind():
    for scenario in SCENARIOS.values():
        assert scenario.description and scenario.expect
    fleet = _fleet(4)
    with pytest.raises(ValueError, match="needs a ventilation unit"):
        fleet.schedule("fan_stopped", START, device_id="sim-heat-0000")
    with pytest.raises(ValueError):
        FleetModel(demo_specs(2), start=START, interval=10.0)


def test_command_line_refuses_impossible_settings(capsys):
    from devices.simulator import main

    for argv in (["--interval", "5"], ["--speed", "0"], ["--scenario", "nonsense"]):
        with pytest.raises(SystemExit) as exited:
            main(argv)
        assert exited.value.code not in (0, None)
