"""The fault-detection core: rules as data, evaluated on the readings' own time (no Django here).

A rule goes through the stages of a fault-detection tool, for each instant at which the device
reported one of the rule's signals:

1. data quality: a reading outside the rule's plausible range, or a jump larger than its spike
   limit (unless the next reading confirms it), is set aside and its signal becomes unknown;
   a signal not reported for `stale_s` is unknown too;
2. gates (heating season, time of day, heat demanded, fan running for some minutes...): while a
   gate is closed nothing is raised and the persistence timer restarts;
3. the condition, over the current value of each signal (sample and hold);
4. time-weighted persistence: the fault is raised once the condition has held for
   `persistence_s` of event time; it clears once the clear condition (deadband; by default the
   condition's negation) has held for `off_delay_s`. Severity steps escalate an active fault.

An unknown value (missing, stale, rejected) never raises and never clears: the timers hold.
A gap between two evaluations longer than `stale_s` restarts them, so persistence is never
claimed across a silence.

Time comes only from the readings. `evaluate` is a pure function of (rule, state, readings):
it processes readings in event-time order; readings older than the state's watermark (the
latest event time already evaluated) are ignored and counted in `state.late`, so a replay, a
duplicate delivery or a batch split differently gives the same transitions at the same times.
Readings carrying the same timestamp are evaluated together, as one instant: a device's message
is never split between batches, so this holds however the batches are cut. Only the "device
offline" rule looks at the wall clock, through `sweep_offline(rule, state, now=...)`.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import msgspec

Value = float | bool | str
Reading = tuple[float, str, Value]  # (event time in unix seconds, signal name, value)

SEVERITIES = ("info", "minor", "major", "critical")
_RANK = {name: rank for rank, name in enumerate(SEVERITIES)}
DAY_S = 86_400.0
KEPT_DAYS = 14  # daily means remembered per signal: rules may look back at most this far

_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}


# --- conditions (a small tagged union, so a rule serialises to JSON and back) -------------------


class Cmp(msgspec.Struct, frozen=True, tag="cmp"):
    """`signal op value`, e.g. ch_pressure < 0.8, or fan_fault == True."""

    signal: str
    op: str
    value: float | bool | str


class CmpSignals(msgspec.Struct, frozen=True, tag="cmp_signals"):
    """`left op right + offset`, e.g. flow_temp <= room_temp + 5."""

    left: str
    op: str
    right: str
    offset: float = 0.0


class AllOf(msgspec.Struct, frozen=True, tag="all"):
    """Every item holds (unknown if none is false and one is unknown)."""

    items: tuple[Condition, ...]


class AnyOf(msgspec.Struct, frozen=True, tag="any"):
    """One item holds (unknown if none holds and one is unknown)."""

    items: tuple[Condition, ...]


class Not(msgspec.Struct, frozen=True, tag="not"):
    """The item does not hold (unknown stays unknown)."""

    item: Condition


class Held(msgspec.Struct, frozen=True, tag="held"):
    """`signal` has had the value `value` for at least `seconds` (a start-up delay gate)."""

    signal: str
    value: float | bool | str
    seconds: float


class Unchanged(msgspec.Struct, frozen=True, tag="unchanged"):
    """`signal` has reported exactly the same value for at least `seconds` (a stuck sensor)."""

    signal: str
    seconds: float


class EdgeCount(msgspec.Struct, frozen=True, tag="edge_count"):
    """The number of times `item` became true within the last `window_s` is `op n`."""

    item: Condition
    window_s: float
    op: str
    n: int


class CounterRate(msgspec.Struct, frozen=True, tag="counter_rate"):
    """The increase of a cumulative counter over the last `window_s` is `op n`.

    A counter that goes down (the unit rebooted) restarts the window.
    """

    signal: str
    window_s: float
    op: str
    n: float


class DailyMean(msgspec.Struct, frozen=True, tag="daily_mean"):
    """The time-weighted mean of `signal` on each of the last `days` local days is `op value`.

    A day counts only if readings cover at least `min_coverage` of it.
    """

    signal: str
    op: str
    value: float
    days: int
    min_coverage: float = 0.5


class LocalTime(msgspec.Struct, frozen=True, tag="local_time"):
    """The local time of day is within [start_h, end_h) (the context's time zone)."""

    start_h: float
    end_h: float


class Season(msgspec.Struct, frozen=True, tag="season"):
    """The local date is within the heating season given by the context."""


Condition = (
    Cmp
    | CmpSignals
    | AllOf
    | AnyOf
    | Not
    | Held
    | Unchanged
    | EdgeCount
    | CounterRate
    | DailyMean
    | LocalTime
    | Season
)


class Quality(msgspec.Struct, frozen=True):
    """Data-quality limits of one signal: plausible range and largest credible jump."""

    low: float | None = None
    high: float | None = None
    max_step: float | None = None


class Step(msgspec.Struct, frozen=True):
    """A severity reached while `when` holds (an active fault escalates to it)."""

    when: Condition
    severity: str


class Rule(msgspec.Struct, frozen=True):
    """A fault rule: what it watches, when it raises, when it clears, how bad it is, and why."""

    id: str
    version: int
    title: str
    severity: str
    kind: str  # "heating", "ventilation" or "any": the units it applies to
    condition: Condition | None
    signals: tuple[str, ...] = ()
    gates: tuple[Condition, ...] = ()
    clear: Condition | None = None
    persistence_s: float = 0.0
    off_delay_s: float = 0.0
    stale_s: float = 900.0
    quality: dict[str, Quality] = {}
    steps: tuple[Step, ...] = ()
    category: str = ""  # the class of fault, for correlation and ticket routing
    offline_after_s: float | None = None  # only the offline rule
    params: dict[str, dict[str, Any]] = {}  # parameter -> field overrides when it is set
    source: str = ""


class Context(msgspec.Struct, frozen=True):
    """What a rule needs to know about the place: time zone and heating season (month, day)."""

    tz: str = "Europe/Paris"
    season_start: tuple[int, int] = (10, 1)
    season_end: tuple[int, int] = (5, 20)


DEFAULT_CONTEXT = Context()


# --- state -----------------------------------------------------------------------------------


class DailyAcc(msgspec.Struct):
    """Time-weighted accumulation of one signal over the current local day."""

    day: int
    integral: float = 0.0
    covered: float = 0.0
    means: list[tuple[int, float]] = []


class RuleState(msgspec.Struct, omit_defaults=True):
    """What a rule remembers about one device: small, serialisable, movable between workers."""

    rule_id: str = ""
    version: int = 0
    watermark: float | None = None
    last_eval: float | None = None
    late: int = 0
    values: dict[str, Value] = {}
    seen: dict[str, float] = {}
    changed: dict[str, float] = {}
    suspect: dict[str, float] = {}  # a spike set aside, kept to see if the next reading confirms it
    since: float | None = None
    clear_since: float | None = None
    active: bool = False
    severity: str | None = None
    raised_at: float | None = None
    edges: dict[str, list[float]] = {}
    edge_prev: dict[str, bool] = {}
    counter: list[tuple[float, float]] = []
    daily: dict[str, DailyAcc] = {}


class Transition(msgspec.Struct, frozen=True):
    """A change of a fault: raise, update (severity) or clear, at an event time."""

    kind: str
    rule_id: str
    at: float
    severity: str
    since: float | None = None
    values: dict[str, Value] = {}


_state_encoder = msgspec.json.Encoder()
_state_decoder = msgspec.json.Decoder(RuleState)
_rule_decoder = msgspec.json.Decoder(Rule)


def dump_state(state: RuleState) -> bytes:
    """The state as JSON bytes (for Redis or a database column)."""
    return _state_encoder.encode(state)


def load_state(raw: bytes | str) -> RuleState:
    """A state back from `dump_state`."""
    return _state_decoder.decode(raw)


def dump_rule(rule: Rule) -> bytes:
    """The rule as JSON bytes (stored, versioned and edited as data)."""
    return _state_encoder.encode(rule)


def load_rule(raw: bytes | str) -> Rule:
    """A rule back from JSON; invalid shapes raise msgspec.ValidationError."""
    rule = _rule_decoder.decode(raw)
    if rule.severity not in _RANK or any(step.severity not in _RANK for step in rule.steps):
        raise msgspec.ValidationError(f"unknown severity in rule {rule.id}")
    return rule


def resolve(rule: Rule, params: Mapping[str, Any] | None = None) -> Rule:
    """The rule with the overrides of each parameter that is set (e.g. gas interlock)."""
    if not params:
        return rule
    changes: dict[str, Any] = {}
    for name, overrides in rule.params.items():
        if params.get(name):
            changes.update(overrides)
    return msgspec.structs.replace(rule, **changes) if changes else rule


def new_state(rule: Rule) -> RuleState:
    """A fresh state for one device under `rule`."""
    return RuleState(rule_id=rule.id, version=rule.version)


# Rules hold dicts, so they are not hashable: derived facts are cached by identity, the rule
# itself kept alongside so its id is never reused while cached.
_DERIVED: dict[tuple[int, str], tuple[Rule, Any]] = {}


def _derived(rule: Rule, what: str, compute: Callable[[Rule], Any]) -> Any:
    hit = _DERIVED.get((id(rule), what))
    if hit is None or hit[0] is not rule:
        if len(_DERIVED) > 4096:
            _DERIVED.clear()
        hit = (rule, compute(rule))
        _DERIVED[(id(rule), what)] = hit
    return hit[1]


def rule_signals(rule: Rule) -> frozenset[str]:
    """Every signal a rule reads (its own list plus those named in its conditions)."""
    return _derived(rule, "signals", _signals_of)


def _signals_of(rule: Rule) -> frozenset[str]:
    names: set[str] = set(rule.signals)
    items: list[Any] = [rule.condition, rule.clear, *rule.gates, *(s.when for s in rule.steps)]
    while items:
        item = items.pop()
        if item is None:
            continue
        for attr in ("signal", "left", "right"):
            name = getattr(item, attr, None)
            if isinstance(name, str):
                names.add(name)
        if isinstance(item, AllOf | AnyOf):
            items.extend(item.items)
        elif isinstance(item, Not | EdgeCount):
            items.append(item.item)
    return frozenset(names)


# --- evaluation ------------------------------------------------------------------------------


@lru_cache(maxsize=16)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


@lru_cache(maxsize=8192)
def _local_offset(tz: str, hour_index: int) -> float:
    offset = datetime.fromtimestamp(hour_index * 3600, _zone(tz)).utcoffset()
    return offset.total_seconds() if offset is not None else 0.0


def local_seconds(t: float, tz: str) -> float:
    """Seconds since 1970-01-01 in local wall-clock time of zone `tz`."""
    return t + _local_offset(tz, int(t // 3600))


@lru_cache(maxsize=4096)
def _month_day(day: int) -> tuple[int, int]:
    moment = datetime.fromtimestamp(day * DAY_S, UTC)
    return moment.month, moment.day


def in_season(t: float, context: Context) -> bool:
    """Whether event time `t` falls in the context's heating season (local dates, inclusive)."""
    month_day = _month_day(int(local_seconds(t, context.tz) // DAY_S))
    start, end = context.season_start, context.season_end
    if start <= end:
        return start <= month_day <= end
    return month_day >= start or month_day <= end


def _cond_key(cond: Any) -> str:
    return _key_of(cond)


@lru_cache(maxsize=512)
def _key_of(cond: Any) -> str:
    return _state_encoder.encode(cond).decode()


def _current(state: RuleState, rule: Rule, name: str, t: float) -> Value | None:
    value = state.values.get(name)
    if value is None:
        return None
    if t - state.seen.get(name, -math.inf) > rule.stale_s:
        return None
    return value


def _check(cond: Condition, state: RuleState, rule: Rule, t: float, ctx: Context) -> bool | None:
    if isinstance(cond, Cmp):
        value = _current(state, rule, cond.signal, t)
        if value is None:
            return None
        try:
            return bool(_OPS[cond.op](value, cond.value))
        except TypeError:
            return None
    if isinstance(cond, CmpSignals):
        left = _current(state, rule, cond.left, t)
        right = _current(state, rule, cond.right, t)
        if not isinstance(left, int | float) or not isinstance(right, int | float):
            return None
        return bool(_OPS[cond.op](left, right + cond.offset))
    if isinstance(cond, AllOf):
        results = [_check(item, state, rule, t, ctx) for item in cond.items]
        if False in results:
            return False
        return None if None in results else True
    if isinstance(cond, AnyOf):
        results = [_check(item, state, rule, t, ctx) for item in cond.items]
        if True in results:
            return True
        return None if None in results else False
    if isinstance(cond, Not):
        result = _check(cond.item, state, rule, t, ctx)
        return None if result is None else not result
    if isinstance(cond, Held):
        value = _current(state, rule, cond.signal, t)
        if value is None:
            return None
        return value == cond.value and t - state.changed[cond.signal] >= cond.seconds
    if isinstance(cond, Unchanged):
        value = _current(state, rule, cond.signal, t)
        if value is None:
            return None
        return t - state.changed[cond.signal] >= cond.seconds
    if isinstance(cond, EdgeCount):
        times = state.edges.get(_cond_key(cond), [])
        count = sum(1 for moment in times if moment > t - cond.window_s)
        return _OPS[cond.op](count, cond.n)
    if isinstance(cond, CounterRate):
        samples = state.counter
        if not samples or t - samples[0][0] < cond.window_s * 0.9:
            return None  # not yet a window's worth of history since (re)start
        return _OPS[cond.op](samples[-1][1] - samples[0][1], cond.n)
    if isinstance(cond, DailyMean):
        acc = state.daily.get(cond.signal)
        if acc is None or len(acc.means) < cond.days:
            return None
        recent = acc.means[-cond.days :]
        if recent[-1][0] != acc.day - 1 or recent[-1][0] - recent[0][0] != cond.days - 1:
            return False  # the days are not the last ones, or not consecutive
        return all(_OPS[cond.op](mean, cond.value) for _, mean in recent)
    if isinstance(cond, LocalTime):
        hour = (local_seconds(t, ctx.tz) % DAY_S) / 3600.0
        if cond.start_h <= cond.end_h:
            return cond.start_h <= hour < cond.end_h
        return hour >= cond.start_h or hour < cond.end_h
    if isinstance(cond, Season):
        return in_season(t, ctx)
    raise TypeError(f"unknown condition {cond!r}")


# --- compiled rules: each condition turned once into a closure (no type dispatch per reading) --

Check = Callable[["RuleState", float, Context], "bool | None"]


def _compile(cond: Condition, rule: Rule) -> Check:
    """A closure with the meaning of `_check(cond, ...)` for `rule` (pure, cached per rule)."""
    stale = rule.stale_s
    inf = math.inf
    if isinstance(cond, Cmp) and cond.op in _OPS:
        name, op, ref = cond.signal, _OPS[cond.op], cond.value

        def cmp(state: RuleState, t: float, ctx: Context) -> bool | None:
            value = state.values.get(name)
            if value is None or t - state.seen.get(name, -inf) > stale:
                return None
            try:
                return bool(op(value, ref))
            except TypeError:
                return None

        return cmp
    if isinstance(cond, CmpSignals) and cond.op in _OPS:
        left_name, right_name, op, offset = cond.left, cond.right, _OPS[cond.op], cond.offset

        def cmp_signals(state: RuleState, t: float, ctx: Context) -> bool | None:
            values, seen = state.values, state.seen
            left = values.get(left_name)
            if left is None or t - seen.get(left_name, -inf) > stale:
                return None
            right = values.get(right_name)
            if right is None or t - seen.get(right_name, -inf) > stale:
                return None
            if not isinstance(left, int | float) or not isinstance(right, int | float):
                return None
            return bool(op(left, right + offset))

        return cmp_signals
    if isinstance(cond, AllOf):
        parts = tuple(_compile(item, rule) for item in cond.items)

        def all_of(state: RuleState, t: float, ctx: Context) -> bool | None:
            unknown = False
            for part in parts:
                result = part(state, t, ctx)
                if result is None:
                    unknown = True
                elif not result:
                    return False
            return None if unknown else True

        return all_of
    if isinstance(cond, AnyOf):
        parts = tuple(_compile(item, rule) for item in cond.items)

        def any_of(state: RuleState, t: float, ctx: Context) -> bool | None:
            unknown = False
            for part in parts:
                result = part(state, t, ctx)
                if result is None:
                    unknown = True
                elif result:
                    return True
            return None if unknown else False

        return any_of
    if isinstance(cond, Not):
        inner = _compile(cond.item, rule)

        def negation(state: RuleState, t: float, ctx: Context) -> bool | None:
            result = inner(state, t, ctx)
            return None if result is None else not result

        return negation
    if isinstance(cond, Held | Unchanged):
        name, seconds = cond.signal, cond.seconds
        held = isinstance(cond, Held)
        wanted = cond.value if isinstance(cond, Held) else None

        def duration(state: RuleState, t: float, ctx: Context) -> bool | None:
            value = state.values.get(name)
            if value is None or t - state.seen.get(name, -inf) > stale:
                return None
            if held and value != wanted:
                return False
            return t - state.changed[name] >= seconds

        return duration
    if isinstance(cond, Season):
        return lambda state, t, ctx: in_season(t, ctx)
    if isinstance(cond, EdgeCount) and cond.op in _OPS:
        key, window, op, n = _cond_key(cond), cond.window_s, _OPS[cond.op], cond.n

        def edge_count(state: RuleState, t: float, ctx: Context) -> bool | None:
            since = t - window
            return op(sum(1 for moment in state.edges.get(key, ()) if moment > since), n)

        return edge_count
    if isinstance(cond, LocalTime):
        start_h, end_h = cond.start_h, cond.end_h

        def local_time(state: RuleState, t: float, ctx: Context) -> bool | None:
            hour = (local_seconds(t, ctx.tz) % DAY_S) / 3600.0
            if start_h <= end_h:
                return start_h <= hour < end_h
            return hour >= start_h or hour < end_h

        return local_time

    # Windowed and calendar conditions: the general interpreter.
    def general(state: RuleState, t: float, ctx: Context) -> bool | None:
        return _check(cond, state, rule, t, ctx)

    return general


class Compiled(msgspec.Struct, frozen=True):
    """What evaluating a rule needs, derived once per rule instead of once per reading."""

    wanted: frozenset[str]
    condition: Check | None
    clear: Check | None
    gates: tuple[Check, ...]
    steps: tuple[tuple[Check, str, int], ...]
    edges: tuple[tuple[EdgeCount, str, Check], ...]
    rates: tuple[CounterRate, ...]
    dailies: tuple[DailyMean, ...]
    daily_by_signal: dict[str, DailyMean]
    quality: dict[str, Quality]
    plain: frozenset[str]  # signals with no quality limits and no daily mean: stored as they come
    rank: int


def compiled(rule: Rule) -> Compiled:
    """The rule's compiled form (cached by identity, like the other derived facts)."""
    return _derived(rule, "compiled", _compile_rule)


def _compile_rule(rule: Rule) -> Compiled:
    edges, rates, dailies = _stateful(rule)
    by_signal: dict[str, DailyMean] = {}
    for daily in dailies:
        by_signal.setdefault(daily.signal, daily)  # the first one decides, as in `_accept`
    condition = rule.condition
    clear = rule.clear if rule.clear is not None else (Not(condition) if condition else None)
    return Compiled(
        wanted=rule_signals(rule),
        condition=_compile(condition, rule) if condition is not None else None,
        clear=_compile(clear, rule) if clear is not None else None,
        gates=tuple(_compile(gate, rule) for gate in rule.gates),
        steps=tuple(
            (_compile(step.when, rule), step.severity, _RANK[step.severity]) for step in rule.steps
        ),
        edges=tuple((edge, _cond_key(edge), _compile(edge.item, rule)) for edge in edges),
        rates=rates,
        dailies=dailies,
        daily_by_signal=by_signal,
        quality=dict(rule.quality),
        plain=rule_signals(rule) - set(rule.quality) - set(by_signal),
        rank=_RANK[rule.severity],
    )


def _walk(rule: Rule) -> Iterable[Any]:
    items: list[Any] = [rule.condition, rule.clear, *rule.gates, *(s.when for s in rule.steps)]
    while items:
        item = items.pop()
        if item is None:
            continue
        yield item
        if isinstance(item, AllOf | AnyOf):
            items.extend(item.items)
        elif isinstance(item, Not | EdgeCount):
            items.append(item.item)


def _stateful(
    rule: Rule,
) -> tuple[tuple[EdgeCount, ...], tuple[CounterRate, ...], tuple[DailyMean, ...]]:
    return _derived(rule, "stateful", _stateful_of)


def _stateful_of(
    rule: Rule,
) -> tuple[tuple[EdgeCount, ...], tuple[CounterRate, ...], tuple[DailyMean, ...]]:
    items = list(_walk(rule))
    return (
        tuple(i for i in items if isinstance(i, EdgeCount)),
        tuple(i for i in items if isinstance(i, CounterRate)),
        tuple(i for i in items if isinstance(i, DailyMean)),
    )


def _accept(
    rule: Rule, state: RuleState, name: str, value: Value, t: float, ctx: Context, rc: Compiled
) -> None:
    """Data quality, then the signal's new value (with its daily mean and change time)."""
    values = state.values
    quality = rc.quality.get(name)
    if quality is not None and isinstance(value, int | float) and not isinstance(value, bool):
        if (quality.low is not None and value < quality.low) or (
            quality.high is not None and value > quality.high
        ):
            values.pop(name, None)  # out of range: the signal is unknown until a good one
            return
        previous = values.get(name)
        if (
            quality.max_step is not None
            and isinstance(previous, int | float)
            and abs(value - previous) > quality.max_step
        ):
            confirmed = (
                name in state.suspect and abs(value - state.suspect[name]) <= quality.max_step
            )
            if not confirmed:
                state.suspect[name] = float(value)
                return
        if state.suspect:
            state.suspect.pop(name, None)
    # One accumulator per signal, shared by every daily condition on it (the first decides
    # the coverage needed for a day to count).
    daily = rc.daily_by_signal.get(name) if rc.daily_by_signal else None
    if daily is not None and isinstance(value, int | float):
        _accumulate(state, rule, daily, float(value), t, ctx)
    changed = state.changed
    if name not in changed or values.get(name) != value:
        changed[name] = t
    values[name] = value
    state.seen[name] = t


def _accumulate(
    state: RuleState, rule: Rule, daily: DailyMean, value: float, t: float, ctx: Context
) -> None:
    local = local_seconds(t, ctx.tz)
    day = int(local // DAY_S)
    acc = state.daily.get(daily.signal)
    if acc is None:
        state.daily[daily.signal] = DailyAcc(day=day)
        return
    previous = state.values.get(daily.signal)
    last = state.seen.get(daily.signal)
    if isinstance(previous, int | float) and last is not None:
        # The previous value holds until now, capped at the staleness limit, split at midnight.
        start = local_seconds(last, ctx.tz)
        end = min(local, start + rule.stale_s)
        while start < end:
            start_day = int(start // DAY_S)
            if start_day != acc.day:
                _close_day(acc, daily, start_day)
            piece = min(end, (start_day + 1) * DAY_S) - start
            acc.integral += float(previous) * piece
            acc.covered += piece
            start += piece
    if day != acc.day:
        _close_day(acc, daily, day)


def _close_day(acc: DailyAcc, daily: DailyMean, new_day: int) -> None:
    if acc.covered >= daily.min_coverage * DAY_S:
        acc.means.append((acc.day, acc.integral / acc.covered))
        del acc.means[:-KEPT_DAYS]
    acc.day, acc.integral, acc.covered = new_day, 0.0, 0.0


def _track(state: RuleState, t: float, ctx: Context, rc: Compiled) -> None:
    """Windowed counts and counter history, updated once per instant."""
    for edge, key, item in rc.edges:
        now = item(state, t, ctx)
        if now is None:
            continue
        times = state.edges.setdefault(key, [])
        if now and state.edge_prev.get(key) is False:
            times.append(t)
        state.edge_prev[key] = now
        cutoff = t - edge.window_s
        while times and times[0] <= cutoff:
            times.pop(0)
    for rate in rc.rates:
        value = state.values.get(rate.signal)
        if not isinstance(value, int | float) or state.seen.get(rate.signal) != t:
            continue
        samples = state.counter
        if samples and value < samples[-1][1]:
            samples.clear()
        samples.append((t, float(value)))
        while len(samples) > 1 and samples[1][0] <= t - rate.window_s:
            samples.pop(0)


def _severity(rule: Rule, state: RuleState, t: float, ctx: Context, rc: Compiled) -> str:
    severity, rank = rule.severity, rc.rank
    for when, step_severity, step_rank in rc.steps:
        if when(state, t, ctx) and step_rank > rank:
            severity, rank = step_severity, step_rank
    return severity


def _snapshot(rule: Rule, state: RuleState) -> dict[str, Value]:
    return {name: state.values[name] for name in sorted(rule_signals(rule)) if name in state.values}


def _decide(
    rule: Rule, state: RuleState, t: float, ctx: Context, out: list[Transition], rc: Compiled
) -> None:
    if state.last_eval is not None and t - state.last_eval > rule.stale_s:
        state.since = None
        state.clear_since = None
    state.last_eval = t
    condition = rc.condition
    if condition is None:
        return
    gated_open = True
    for gate in rc.gates:
        if gate(state, t, ctx) is not True:
            gated_open = False
            break
    if not state.active:
        holds = condition(state, t, ctx) if gated_open else False
        if holds is None:
            return
        if not holds:
            state.since = None
            return
        if state.since is None:
            state.since = t
        if t - state.since >= rule.persistence_s:
            state.active = True
            state.severity = _severity(rule, state, t, ctx, rc)
            state.raised_at = t
            state.clear_since = None
            out.append(
                Transition("raise", rule.id, t, state.severity, state.since, _snapshot(rule, state))
            )
        return
    cleared = rc.clear(state, t, ctx) if rc.clear is not None else None
    if cleared:
        if state.clear_since is None:
            state.clear_since = t
        if t - state.clear_since >= rule.off_delay_s:
            out.append(
                Transition(
                    "clear",
                    rule.id,
                    t,
                    state.severity or rule.severity,
                    state.since,
                    _snapshot(rule, state),
                )
            )
            state.active, state.severity, state.since, state.clear_since = False, None, None, None
            state.raised_at = None
        return
    if cleared is False:
        state.clear_since = None
    if gated_open:
        severity = _severity(rule, state, t, ctx, rc)
        if _RANK[severity] > _RANK[state.severity or rule.severity]:
            state.severity = severity
            out.append(
                Transition("update", rule.id, t, severity, state.since, _snapshot(rule, state))
            )


def _first(reading: Reading) -> float:
    return reading[0]


def evaluate(
    rule: Rule,
    state: RuleState | None,
    readings: Iterable[Reading],
    *,
    context: Context = DEFAULT_CONTEXT,
    owned: bool = False,
) -> tuple[RuleState, list[Transition]]:
    """Feed a device's new readings to one rule; the new state and the transitions, in event time.

    `readings` may come in any order within the call; they are sorted by event time (stable, so
    two values of a signal at one instant keep their arrival order and the last one wins).
    Readings older than the state's watermark are ignored and counted in `state.late`.
    The input state is not modified, unless `owned` says the caller gives it up (a state just
    decoded and used for nothing else), which saves copying it.
    """
    if state is None:
        state = new_state(rule)
    elif not owned:
        state = msgspec.structs.replace(
            state,
            values=dict(state.values),
            seen=dict(state.seen),
            changed=dict(state.changed),
            suspect=dict(state.suspect),
            edges={k: list(v) for k, v in state.edges.items()},
            edge_prev=dict(state.edge_prev),
            counter=list(state.counter),
            daily={
                k: DailyAcc(v.day, v.integral, v.covered, list(v.means))
                for k, v in state.daily.items()
            },
        )
    if state.rule_id != rule.id or state.version != rule.version:
        # A new version of the rule (thresholds edited): its timers and windows start afresh,
        # but an active fault stays active, so the edit neither repeats nor loses an alarm.
        state = RuleState(
            rule_id=rule.id,
            version=rule.version,
            watermark=state.watermark,
            active=state.active,
            severity=state.severity,
            raised_at=state.raised_at,
            since=state.since if state.active else None,
        )
    out: list[Transition] = []
    if rule.offline_after_s is not None:
        return _evaluate_offline(rule, state, readings, out)
    rc = compiled(rule)
    wanted = rc.wanted
    relevant = [r for r in readings if r[1] in wanted and isinstance(r[0], (int, float))]
    if not relevant:
        return state, out
    relevant.sort(key=_first)
    tracking = bool(rc.edges or rc.rates)
    isfinite = math.isfinite
    plain = rc.plain
    values, seen, changed = state.values, state.seen, state.changed
    count = len(relevant)
    i = 0
    while i < count:
        t = relevant[i][0]
        j = i + 1
        while j < count and relevant[j][0] == t:
            j += 1
        if state.watermark is not None and t < state.watermark:
            state.late += j - i
            i = j
            continue
        for k in range(i, j):
            _, name, value = relevant[k]
            if isinstance(value, float) and not isfinite(value):
                continue
            if name in plain:  # `_accept` without quality limits or daily mean, inlined
                if name not in changed or values.get(name) != value:
                    changed[name] = t
                values[name] = value
                seen[name] = t
            else:
                _accept(rule, state, name, value, t, context, rc)
        if tracking:
            _track(state, t, context, rc)
        _decide(rule, state, t, context, out, rc)
        state.watermark = t
        i = j
    return state, out


def _evaluate_offline(
    rule: Rule, state: RuleState, readings: Iterable[Reading], out: list[Transition]
) -> tuple[RuleState, list[Transition]]:
    latest = max((r[0] for r in readings), default=None)
    if latest is None:
        return state, out
    if state.watermark is None or latest > state.watermark:
        state.watermark = latest
    if state.active:
        # Buffered readings may predate the raise: the unit is back when they arrive, not before.
        at = max(latest, state.raised_at or latest)
        out.append(Transition("clear", rule.id, at, state.severity or rule.severity, state.since))
        state.active, state.severity, state.since, state.raised_at = False, None, None, None
    return state, out


def sweep_offline(
    rule: Rule, state: RuleState | None, *, now: float, last_seen: float | None = None
) -> tuple[RuleState, list[Transition]]:
    """The one wall-clock rule: raise when nothing was heard for `offline_after_s` before `now`."""
    state = new_state(rule) if state is None else msgspec.structs.replace(state)
    heard = last_seen if last_seen is not None else state.watermark
    if heard is not None and (state.watermark is None or heard > state.watermark):
        state.watermark = heard
    out: list[Transition] = []
    limit = rule.offline_after_s or 0.0
    if heard is None or state.active or now - heard <= limit:
        return state, out
    state.active, state.severity, state.since = True, rule.severity, heard
    state.raised_at = heard + limit
    out.append(Transition("raise", rule.id, heard + limit, rule.severity, heard))
    return state, out


def evaluate_device(
    rules: Iterable[Rule],
    states: Mapping[str, RuleState | None],
    readings: list[Reading],
    *,
    context: Context = DEFAULT_CONTEXT,
) -> tuple[dict[str, RuleState], list[Transition]]:
    """Every rule of a device over one batch of its readings; transitions sorted by event time."""
    new_states: dict[str, RuleState] = {}
    transitions: list[Transition] = []
    for rule in rules:
        new_states[rule.id], found = evaluate(rule, states.get(rule.id), readings, context=context)
        transitions.extend(found)
    transitions.sort(key=lambda tr: tr.at)
    return new_states, transitions
