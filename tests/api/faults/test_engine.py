"""The rule engine on hand-made series: each shipped rule's timing, deadband, off-delay, gates."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import msgspec
import pytest

from api.faults import engine
from api.faults.engine import Context, Transition, evaluate, load_rule, load_state, sweep_offline
from api.faults.rules import RULES, RULES_BY_ID, fault_code_label, rules_for

PARIS = ZoneInfo("Europe/Paris")
MIN = 60.0
HOUR = 3600.0
# Tuesday 7 January 2025, 00:00 in Paris: heating season.
T0 = datetime(2025, 1, 7, tzinfo=PARIS).timestamp()


def at(hour: float, day: int = 0) -> float:
    return T0 + day * 86_400 + hour * HOUR


def run(rule_id, readings, state=None, **kw) -> list[Transition]:
    return evaluate(RULES_BY_ID[rule_id], state, readings, **kw)[1]


def series(start: float, minutes: int, step_s: float = MIN, **signals):
    """Readings every `step_s` from `start`; each signal is a constant or a function of i."""
    out = []
    for i in range(minutes):
        t = start + i * step_s
        for name, value in signals.items():
            out.append((t, name, value(i) if callable(value) else value))
    return out


def kinds(transitions):
    return [(tr.kind, tr.at, tr.severity) for tr in transitions]


def test_low_pressure_raises_after_30_min_with_deadband_off_delay_and_escalation():
    start = at(10)
    readings = series(start, 10, ch_pressure=1.2)
    readings += series(start + 10 * MIN, 40, ch_pressure=0.7)  # below 0.8 from minute 10
    readings += series(start + 50 * MIN, 20, ch_pressure=0.9)  # inside the deadband: held
    readings += series(start + 70 * MIN, 10, ch_pressure=0.45)  # critical
    readings += series(start + 80 * MIN, 10, ch_pressure=1.1)  # clears after 5 min
    found = run("low_pressure", readings)
    assert kinds(found) == [
        ("raise", start + 40 * MIN, "major"),
        ("update", start + 70 * MIN, "critical"),
        ("clear", start + 85 * MIN, "critical"),
    ]
    assert found[0].since == start + 10 * MIN
    assert found[0].values == {"ch_pressure": 0.7}


def test_low_pressure_needs_the_condition_to_hold_without_interruption():
    start = at(10)
    readings = series(start, 25, ch_pressure=0.7) + series(start + 25 * MIN, 1, ch_pressure=1.0)
    readings += series(start + 26 * MIN, 25, ch_pressure=0.7)
    assert run("low_pressure", readings) == []


def test_a_single_implausible_pressure_reading_is_set_aside():
    start = at(10)
    spike = [(start + 5 * MIN + 1, "ch_pressure", 5.5)]  # a 4 bar jump: a spike, ignored
    readings = series(start, 60, ch_pressure=1.5) + spike
    assert run("high_pressure", readings) == []
    # Confirmed by the next reading, a jump is real.
    confirmed = [*spike, (start + 5 * MIN + 2, "ch_pressure", 5.4)]
    confirmed += series(start + 6 * MIN, 10, ch_pressure=5.5)
    assert run("high_pressure", series(start, 5, ch_pressure=1.5) + confirmed)[0].kind == "raise"


def test_out_of_range_values_make_the_signal_unknown_and_hold_the_timers():
    start = at(10)
    readings = series(start, 70, co2=lambda i: -5.0 if i == 30 else 1800.0)
    found = run("co2_high", readings)
    assert kinds(found) == [("raise", start + 60 * MIN, "minor")]


def test_a_silence_longer_than_the_stale_limit_restarts_persistence():
    start = at(10)
    readings = series(start, 20, ch_pressure=0.7) + series(start + 50 * MIN, 20, ch_pressure=0.7)
    assert run("low_pressure", readings) == []


def test_boiler_lockout_raises_at_once_and_clears_when_reset():
    readings = [(at(9), "fault_active", False), (at(9, 0) + 30, "fault_active", True)]
    readings += [(at(9) + 30, "fault_code", "F28"), (at(11), "fault_active", False)]
    found = run("boiler_lockout", readings)
    assert kinds(found) == [("raise", at(9) + 30, "major"), ("clear", at(11), "major")]
    assert found[0].values["fault_code"] == "F28"
    assert fault_code_label("F28", "en").startswith("Ignition failed")
    assert fault_code_label("f22") == "Manque d'eau : pression du circuit de chauffage trop basse"
    assert fault_code_label("X99", "en") == "Boiler fault (maker code)"


def test_no_heat_waits_for_the_start_up_delay():
    start = at(8)
    cold = series(start, 60, heat_demand=True, flow_temp=22.0, room_temp=19.0)
    found = run("no_heat", cold)
    # Heat demanded from `start`; the 10 min start-up gate opens, then 30 min of persistence.
    assert kinds(found) == [("raise", start + 40 * MIN, "major")]
    warm = series(start, 60, heat_demand=True, flow_temp=lambda i: 22.0 + i, room_temp=19.0)
    assert run("no_heat", warm) == []


def test_cold_dwelling_gates_season_daytime_and_heat_demand():
    day = series(at(7), 6 * 60, room_temp=17.0, heat_demand=True)
    found = run("cold_dwelling", day)
    assert kinds(found) == [("raise", at(10), "minor")]
    night = series(at(0), 6 * 60, room_temp=17.0, heat_demand=True)
    assert run("cold_dwelling", night) == []
    no_demand = series(at(7), 6 * 60, room_temp=17.0, heat_demand=False)
    assert run("cold_dwelling", no_demand) == []
    july = datetime(2025, 7, 8, 7, tzinfo=PARIS).timestamp()
    assert run("cold_dwelling", series(july, 6 * 60, room_temp=17.0, heat_demand=True)) == []
    # The organisation's own heating season decides.
    summer_season = Context(season_start=(6, 1), season_end=(9, 30))
    found = run(
        "cold_dwelling",
        series(july, 6 * 60, room_temp=17.0, heat_demand=True),
        context=summer_season,
    )
    assert [tr.kind for tr in found] == ["raise"]


def test_cold_dwelling_escalates_and_clears_above_the_deadband():
    readings = series(at(7), 3 * 60 + 1, room_temp=17.0, heat_demand=True)
    readings += series(at(10, 0) + MIN, 30, room_temp=15.5, heat_demand=True)
    readings += series(at(10, 0) + 31 * MIN, 30, room_temp=13.5, heat_demand=True)
    readings += series(at(11, 0) + MIN, 30, room_temp=18.2, heat_demand=True)  # in the deadband
    readings += series(at(11, 0) + 31 * MIN, 40, room_temp=18.6, heat_demand=True)
    found = run("cold_dwelling", readings)
    assert [(tr.kind, tr.severity) for tr in found] == [
        ("raise", "minor"),
        ("update", "major"),
        ("update", "critical"),
        ("clear", "critical"),
    ]
    assert found[-1].at == at(11) + 61 * MIN  # 30 min off-delay from 11:31


def test_overheating_needs_six_hours():
    assert run("overheating", series(at(8), 5 * 60, room_temp=27.0)) == []
    assert kinds(run("overheating", series(at(8), 7 * 60, room_temp=27.0))) == [
        ("raise", at(14), "minor")
    ]


def test_repeated_flame_loss_counts_within_an_hour():
    def cycles(start, count, gap):
        out = []
        for k in range(count):
            t = start + k * gap
            out += [(t, "heat_demand", True), (t, "flow_temp", 30.0), (t, "flame", True)]
            out += [(t + 60, "flame", False), (t + 60, "flow_temp", 30.0)]
        return out

    found = run("flame_loss", cycles(at(8), 3, 15 * MIN))
    assert kinds(found) == [("raise", at(8) + 30 * MIN + 60, "major")]
    assert run("flame_loss", cycles(at(8), 3, 40 * MIN)) == []


def test_short_cycling_needs_more_than_six_starts_an_hour_for_two_hours():
    counter = series(at(6), 5 * 60, burner_starts=lambda i: float(100 + i // 8))  # 7.5/h
    found = run("short_cycling", counter)
    assert found and found[0].kind == "raise"
    assert at(8) <= found[0].at <= at(9)
    calm = series(at(6), 5 * 60, burner_starts=lambda i: float(100 + i // 12))  # 5/h
    assert run("short_cycling", calm) == []


def test_fan_stopped_after_10_min_or_at_once_when_interlocked_with_gas():
    stopped = series(at(9), 15, fan_rpm=0.0, fan_fault=True)
    assert kinds(run("fan_stopped", stopped)) == [("raise", at(9) + 10 * MIN, "major")]
    rule = engine.resolve(RULES_BY_ID["fan_stopped"], {"gas_interlock": True})
    assert kinds(evaluate(rule, None, stopped)[1]) == [("raise", at(9), "critical")]


def test_extract_pressure_outside_50_200_pa_only_with_the_fan_running():
    high = series(at(9), 45, extract_pressure=230.0, fan_fault=False)
    assert kinds(run("extract_pressure", high)) == [("raise", at(9) + 35 * MIN, "minor")]
    fan_off = series(at(9), 45, extract_pressure=2.0, fan_fault=True)
    assert run("extract_pressure", fan_off) == []


def test_damp_risk_after_three_days_of_mean_rh_above_70():
    wet = series(at(0), 4 * 24 * 6 + 1, step_s=10 * MIN, rh=lambda i: 78.0 if i % 2 else 66.0)
    found = run("damp_risk", wet)
    assert kinds(found) == [("raise", at(0, 3), "minor")]
    dry = series(at(0), 4 * 24 * 6 + 1, step_s=10 * MIN, rh=lambda i: 74.0 if i % 2 else 64.0)
    assert run("damp_risk", dry) == []


def test_sensor_stuck_and_filter_and_battery():
    frozen = series(at(0), 7 * 60, rh=55.5)
    assert kinds(run("sensor_stuck", frozen)) == [("raise", at(6), "minor")]
    assert run("sensor_stuck", series(at(0), 7 * 60, rh=lambda i: 55 + (i % 7) / 10)) == []
    assert kinds(run("filter_alarm", [(at(3), "filter_alarm", True)])) == [
        ("raise", at(3), "minor")
    ]
    low = series(at(0), 90, battery=14.0)
    assert kinds(run("battery_low", low)) == [("raise", at(1), "minor")]


def test_co2_implausible_after_one_hour_below_300():
    assert kinds(run("co2_implausible", series(at(0), 70, co2=0.0))) == [("raise", at(1), "minor")]


def test_device_offline_uses_the_wall_clock_and_clears_on_the_next_reading():
    rule = RULES_BY_ID["device_offline"]
    state, found = sweep_offline(rule, None, now=at(1), last_seen=at(1) - 100)
    assert found == []
    state, found = sweep_offline(rule, state, now=at(1) + 200, last_seen=at(1) - 100)
    assert kinds(found) == [("raise", at(1) + 80, "minor")]
    state, again = sweep_offline(rule, state, now=at(2), last_seen=at(1) - 100)
    assert again == []  # one active fault: a repeat never raises again
    # Readings buffered while silent come back older than the raise: cleared when they arrive.
    state, found = evaluate(rule, state, [(at(1) + 30, "battery", 80.0)])
    assert kinds(found) == [("clear", at(1) + 80, "minor")]
    assert not state.active


def test_readings_older_than_the_watermark_are_ignored_and_counted():
    start = at(10)
    state, found = evaluate(RULES_BY_ID["low_pressure"], None, series(start, 35, ch_pressure=0.7))
    assert kinds(found) == [("raise", start + 30 * MIN, "major")]
    late = series(start, 10, ch_pressure=2.0)
    state2, found = evaluate(RULES_BY_ID["low_pressure"], state, late)
    assert found == []
    assert state2.late == 10
    assert state2.active
    assert state.late == 0  # the input state is never modified


def test_duplicates_do_not_change_anything():
    readings = series(at(10), 40, ch_pressure=0.7)
    doubled = readings + readings
    assert run("low_pressure", doubled) == run("low_pressure", readings)


def test_rules_are_data_and_states_serialise():
    for rule in RULES:
        assert load_rule(engine.dump_rule(rule)) == rule
        assert rule.source, rule.id
        assert rule.severity in engine.SEVERITIES
    bad = msgspec.json.encode({**msgspec.to_builtins(RULES[0]), "severity": "apocalyptic"})
    with pytest.raises(msgspec.ValidationError):
        load_rule(bad)
    state, _ = evaluate(RULES_BY_ID["damp_risk"], None, series(at(0), 300, rh=80.0))
    assert load_state(engine.dump_state(state)) == state
    assert {rule.id for rule in rules_for("heating")} >= {"boiler_lockout", "device_offline"}
    assert "co2_high" not in {rule.id for rule in rules_for("heating")}


def test_event_times_are_reported_in_utc_seconds():
    found = run("filter_alarm", [(at(3), "filter_alarm", True)])
    assert datetime.fromtimestamp(found[0].at, UTC).hour == 2  # 03:00 in Paris in winter


def test_a_new_rule_version_restarts_timers_but_keeps_the_active_fault():
    rule = RULES_BY_ID["low_pressure"]
    state, found = evaluate(rule, None, series(at(10), 35, ch_pressure=0.7))
    assert state.active
    edited = msgspec.structs.replace(rule, version=2, clear=engine.Cmp("ch_pressure", ">=", 1.2))
    state, found = evaluate(edited, state, series(at(10) + 35 * MIN, 10, ch_pressure=1.1))
    assert found == []  # 1.1 bar no longer clears, and nothing is raised again
    assert state.active
    assert state.version == 2
    state, found = evaluate(edited, state, series(at(10) + 45 * MIN, 10, ch_pressure=1.3))
    assert kinds(found) == [("clear", at(10) + 50 * MIN, "major")]


def _conditions(rule):
    return [item for item in engine._walk(rule) if item is not None]


def test_compiled_conditions_agree_with_the_reference_interpreter():
    # The hot path runs each condition as a closure built once per rule; `_check` interprets
    # the same condition from its data. Both must say the same on any state.
    rules = [*RULES, *(engine.resolve(r, dict.fromkeys(r.params, True)) for r in RULES)]
    signals = sorted({name for rule in rules for name in engine.rule_signals(rule)})
    samples = [None, True, False, 0.0, 0.4, 0.9, 1.2, 3.0, 17.0, 25.0, 60.0, 250.0, 1600.0, "E0"]
    checked = 0
    for i in range(40):
        t = at(i * 0.7, day=i % 3)
        state = engine.RuleState(
            values={n: samples[(i + k) % len(samples)] for k, n in enumerate(signals)},
            seen={n: t - ((i * 7 + k * 13) % 40) * MIN for k, n in enumerate(signals)},
            changed={n: t - ((i + k) % 9) * HOUR for k, n in enumerate(signals)},
            edges={
                engine._cond_key(item): [t - k * 7 * MIN for k in range(i % 9)]
                for rule in rules
                for item in _conditions(rule)
                if isinstance(item, engine.EdgeCount)
            },
        )
        state.values = {n: v for n, v in state.values.items() if v is not None}
        for rule in rules:
            for cond in _conditions(rule):
                expected = engine._check(cond, state, rule, t, engine.DEFAULT_CONTEXT)
                got = engine._compile(cond, rule)(state, t, engine.DEFAULT_CONTEXT)
                assert got == expected and type(got) is type(expected), (rule.id, cond)
                checked += 1
    assert checked > 1000


def test_an_owned_state_gives_the_same_result_and_a_lent_one_is_left_alone():
    rule = RULES_BY_ID["low_pressure"]
    first = series(at(10), 20, ch_pressure=0.7)
    then = series(at(10) + 20 * MIN, 20, ch_pressure=0.7)
    state, _ = evaluate(rule, None, first)
    before = engine.dump_state(state)
    lent, found_lent = evaluate(rule, state, then)
    assert engine.dump_state(state) == before
    owned, found_owned = evaluate(rule, load_state(before), then, owned=True)
    assert engine.dump_state(owned) == engine.dump_state(lent)
    assert found_owned == found_lent
    assert kinds(found_lent) == [("raise", at(10) + 30 * MIN, "major")]
