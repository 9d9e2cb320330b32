"""Writes of the faults app: rules evaluated on ingest, the fault lifecycle, work and alerts.

`evaluate_stored` runs inside the ingest transaction (devices locked, readings in event-time
order): a handful of queries per batch whatever its size, and more only when a fault changes.
A new fault goes through correlation (a building or substation losing heat is one incident),
then, unless suppressed, opens a ticket (major or worse) and alerts the team. Faults of a class
that can correlate are held for FAULT_CORRELATION_HOLD_S before their work and alerts go out
when a neighbour shows the same trouble, so that a building-wide outage gives one incident and
no individual alerts, while a fault alone in its building goes out at once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import msgspec
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from api.core.exceptions import ServiceError, conflict, refused
from api.core.roles import STAFF_ROLES, Role
from api.telemetry.hooks import StoredMessage
from api.telemetry.models import Device, DeviceStatus
from api.telemetry.storage import pg_cursor

from . import engine, metrics
from .models import (
    OPEN_STATES,
    SEVERITY_RANK,
    DeviceRuleStates,
    Fault,
    FaultCalendar,
    FaultEvent,
    FaultEventKind,
    FaultStateKind,
    RuleOverride,
    RuleVersion,
)
from .rules import RULES, RULES_BY_ID, fault_code_label

logger = logging.getLogger(__name__)

S = FaultStateKind
FAULT_HANDLER_ROLES = STAFF_ROLES
RULE_EDITOR_ROLES = frozenset({Role.MANAGER, Role.ADMIN})
ACTIVE_STATES = frozenset({S.ACTIVE_UNACK, S.ACTIVE_ACK})
OFFLINE_RULE = "device_offline"

# Ticket category (standard tree code) opened for a class of fault; absent: no ticket.
TICKET_CATEGORIES = {
    "boiler": "chauffage-chaudiere",
    "heating": "chauffage-panne",
    "ventilation": "ventilation-vmc",
}
# Incident category (a root of the standard tree, so that the open heating requests of the
# building join the incident) for the classes that correlate across dwellings; faults of
# classes mapping to the same category count together ("the building has no heat").
INCIDENT_CATEGORIES = {
    "boiler": "chauffage",
    "heating": "chauffage",
    "ventilation": "ventilation",
}
DEVICE_PLACE = (
    "id",
    "device_id",
    "organisation_id",
    "kind",
    "model",
    "reporting_interval_s",
    "equipment_id",
    "equipment__common_area_id",
    "equipment__dwelling_id",
    "equipment__dwelling__entrance__building_id",
    "equipment__dwelling__entrance__building__residence_id",
    "equipment__common_area__residence_id",
    "equipment__common_area__building_id",
    "equipment__common_area__building__residence_id",
    "equipment__common_area__entrance__building_id",
    "equipment__common_area__entrance__building__residence_id",
)


def _utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


# --- where a device is ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DevicePlace:
    """A unit with its place, as the rules and faults need it."""

    id: int
    device_id: str
    organisation_id: object
    kind: str
    model: str
    reporting_interval_s: int
    equipment_id: object
    common_area_id: object
    dwelling_id: object
    building_id: object
    residence_id: object


def _place_of(row: dict) -> DevicePlace:
    building = (
        row["equipment__dwelling__entrance__building_id"]
        or row["equipment__common_area__building_id"]
        or row["equipment__common_area__entrance__building_id"]
    )
    residence = (
        row["equipment__dwelling__entrance__building__residence_id"]
        or row["equipment__common_area__residence_id"]
        or row["equipment__common_area__building__residence_id"]
        or row["equipment__common_area__entrance__building__residence_id"]
    )
    return DevicePlace(
        id=row["id"],
        device_id=row["device_id"],
        organisation_id=row["organisation_id"],
        kind=row["kind"],
        model=row["model"],
        reporting_interval_s=row["reporting_interval_s"] or 60,
        equipment_id=row["equipment_id"],
        common_area_id=row["equipment__common_area_id"],
        dwelling_id=row["equipment__dwelling_id"],
        building_id=building,
        residence_id=residence,
    )


# Where each unit is, by primary key: (expiry on the monotonic clock, place). A unit rarely
# moves, and every batch asks for hundreds of them: the query cost more than the rules did.
_PLACES: dict[int, tuple[float, DevicePlace]] = {}


def device_places(device_ids: Iterable[int]) -> dict[int, DevicePlace]:
    """Units by primary key with their dwelling, building and residence.

    Cached for FAULT_RULE_CACHE_S, like the rules: a unit moved to another home or model is
    evaluated as such within that time (`forget_overrides` empties both).
    """
    now = time.monotonic()
    out: dict[int, DevicePlace] = {}
    missing = []
    for device_id in device_ids:
        hit = _PLACES.get(device_id)
        if hit is not None and hit[0] > now:
            out[device_id] = hit[1]
        else:
            missing.append(device_id)
    if missing:
        if len(_PLACES) > 500_000:
            _PLACES.clear()
        expiry = now + settings.FAULT_RULE_CACHE_S
        for row in Device.objects.filter(id__in=missing).values(*DEVICE_PLACE):
            place = _place_of(row)
            _PLACES[place.id] = (expiry, place)
            out[place.id] = place
    return out


# --- rules as data ----------------------------------------------------------------------------

_OVERRIDES: dict[object, tuple[float, dict]] = {}
# Each place's rule set, kept while its organisation's overrides are (same table object), so that
# the rules' compiled forms, cached by identity, are reused from batch to batch.
_RULE_SETS: dict[tuple, tuple[dict, tuple[engine.Rule, ...]]] = {}


def forget_overrides() -> None:
    """Drop the cached overrides, places and calendars (after an edit, and in tests)."""
    _OVERRIDES.clear()
    _RULE_SETS.clear()
    _PLACES.clear()
    _CALENDARS.clear()


def rule_apply_override(rule: engine.Rule, override) -> engine.Rule:
    """The shipped rule with an override's changes, severity and source (validated)."""
    data = msgspec.to_builtins(rule)
    changes = dict(override.changes or {})
    for fixed in ("id", "kind", "category", "offline_after_s"):
        changes.pop(fixed, None)
    data.update(changes)
    data["severity"] = override.severity
    data["source"] = override.source
    data["version"] = override.version * 1000 + rule.version
    try:
        effective = engine.load_rule(msgspec.json.encode(data))
    except (msgspec.ValidationError, msgspec.DecodeError, TypeError) as error:
        raise ServiceError(f"Invalid rule: {error}", field="changes") from None
    for item in engine._walk(effective):
        op = getattr(item, "op", None)
        if op is not None and op not in engine._OPS:
            raise ServiceError(f"Unknown comparison {op!r}.", field="changes")
    for name in ("persistence_s", "off_delay_s", "stale_s"):
        value = getattr(effective, name)
        if not 0 <= value <= 366 * 86_400:
            raise ServiceError(f"{name} must be between 0 and a year.", field="changes")
    return effective


def _overrides_for(organisation_ids: set) -> dict[object, dict]:
    """{organisation: {(rule, model, residence): (enabled, Rule)}}, cached a few seconds."""
    now = time.monotonic()
    ttl = settings.FAULT_RULE_CACHE_S
    missing = {org for org in organisation_ids if org not in _OVERRIDES or _OVERRIDES[org][0] < now}
    if missing:
        found: dict[object, dict] = {org: {} for org in missing}
        for override in RuleOverride.objects.filter(organisation_id__in=missing):
            shipped = RULES_BY_ID.get(override.rule)
            if shipped is None:
                continue
            try:
                rule = rule_apply_override(shipped, override)
            except ServiceError:
                logger.warning("fault rule override %s is invalid; shipped rule used", override.pk)
                continue
            key = (override.rule, override.device_model, override.residence_id)
            found[override.organisation_id][key] = (override.enabled, rule)
        for org, table in found.items():
            _OVERRIDES[org] = (now + ttl, table)
    return {org: _OVERRIDES[org][1] for org in organisation_ids}


def rules_for_device(place: DevicePlace, overrides: dict) -> tuple[engine.Rule, ...]:
    """The rules a unit runs: shipped ones with the most specific override of each."""
    rules = []
    for shipped in RULES:
        if shipped.kind not in ("any", place.kind):
            continue
        rule = shipped
        for key in (
            (shipped.id, place.model, place.residence_id),
            (shipped.id, "", place.residence_id),
            (shipped.id, place.model, None),
            (shipped.id, "", None),
        ):
            hit = overrides.get(key)
            if hit is not None:
                enabled, rule = hit
                if not enabled:
                    rule = None
                break
        if rule is None:
            continue
        if rule.offline_after_s is not None:
            rule = msgspec.structs.replace(
                rule, offline_after_s=settings.FAULT_OFFLINE_INTERVALS * place.reporting_interval_s
            )
        rules.append(rule)
    return tuple(rules)


def rules_for_places(places: Iterable[DevicePlace]) -> dict[int, tuple[engine.Rule, ...]]:
    """Each unit's rules (one query for the overrides, none when cached)."""
    places = list(places)
    overrides = _overrides_for({p.organisation_id for p in places})
    intervals = settings.FAULT_OFFLINE_INTERVALS
    out = {}
    for place in places:
        table = overrides[place.organisation_id]
        key = (
            id(table),
            place.kind,
            place.model,
            place.residence_id,
            place.reporting_interval_s,
            intervals,
        )
        hit = _RULE_SETS.get(key)
        if hit is None or hit[0] is not table:
            if len(_RULE_SETS) > 10_000:
                _RULE_SETS.clear()
            hit = _RULE_SETS[key] = (table, rules_for_device(place, table))
        out[place.id] = hit[1]
    return out


def engine_context() -> engine.Context:
    """Time zone and heating season of the rules where an organisation set none (settings)."""
    start, end = settings.FAULT_HEATING_SEASON
    return engine.Context(tz=settings.TIME_ZONE, season_start=tuple(start), season_end=tuple(end))


# Each organisation's calendar as the engine reads it: (expiry, Context), like the overrides.
_CALENDARS: dict[object, tuple[float, engine.Context]] = {}


def _calendar_context(calendar: FaultCalendar) -> engine.Context:
    return engine.Context(
        tz=calendar.time_zone,
        season_start=(calendar.season_start_month, calendar.season_start_day),
        season_end=(calendar.season_end_month, calendar.season_end_day),
    )


def engine_contexts(organisation_ids: Iterable) -> dict[object, engine.Context]:
    """Each organisation's time zone and heating season (cached FAULT_RULE_CACHE_S)."""
    now = time.monotonic()
    wanted = set(organisation_ids)
    missing = {org for org in wanted if org not in _CALENDARS or _CALENDARS[org][0] < now}
    if missing:
        default = engine_context()
        found = {
            calendar.organisation_id: _calendar_context(calendar)
            for calendar in FaultCalendar.objects.filter(organisation_id__in=missing)
        }
        expiry = now + settings.FAULT_RULE_CACHE_S
        for org in missing:
            _CALENDARS[org] = (expiry, found.get(org, default))
    return {org: _CALENDARS[org][1] for org in wanted}


CALENDAR_EDITOR_ROLES = frozenset({Role.ADMIN})


def fault_calendar_get(*, organisation) -> dict:
    """The organisation's calendar for its rules, or the defaults (`is_default`)."""
    calendar = FaultCalendar.objects.filter(organisation=organisation).first()
    context = _calendar_context(calendar) if calendar is not None else engine_context()
    return {
        "time_zone": context.tz,
        "season_start": f"{context.season_start[0]:02d}-{context.season_start[1]:02d}",
        "season_end": f"{context.season_end[0]:02d}-{context.season_end[1]:02d}",
        "source": calendar.source if calendar is not None else "",
        "is_default": calendar is None,
        "updated_at": calendar.updated_at if calendar is not None else None,
    }


def _month_day(text: str, field: str) -> tuple[int, int]:
    try:
        month, day = (int(part) for part in text.split("-"))
        datetime(2000, month, day, tzinfo=UTC)  # a leap year: 02-29 is a day
    except (ValueError, TypeError):
        raise ServiceError("Give a day of the year as MM-DD.", field=field) from None
    return month, day


@transaction.atomic
def fault_calendar_set(
    *, actor, organisation, time_zone: str, season_start: str, season_end: str, source: str = ""
) -> dict:
    """Set the organisation's time zone and heating season for its rules (administrators)."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    if actor is not None and actor.role not in CALENDAR_EDITOR_ROLES:
        raise refused("Only administrators change the organisation's heating season.")
    try:
        ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ServiceError("Unknown time zone.", field="time_zone") from None
    start = _month_day(season_start, "season_start")
    end = _month_day(season_end, "season_end")
    if start == end:
        raise ServiceError("The season must last more than a day.", field="season_end")
    FaultCalendar.objects.update_or_create(
        organisation=organisation,
        defaults={
            "time_zone": time_zone,
            "season_start_month": start[0],
            "season_start_day": start[1],
            "season_end_month": end[0],
            "season_end_day": end[1],
            "source": (source or "").strip(),
            "updated_by": actor,
        },
    )
    transaction.on_commit(forget_overrides)
    return fault_calendar_get(organisation=organisation)


# --- the ingest hook --------------------------------------------------------------------------


def evaluate_stored(device_ids: list[int], readings: dict[int, list[StoredMessage]]) -> int:
    """Evaluate newly stored readings against each unit's rules; persist state and faults.

    Runs in the ingest transaction. Returns the number of transitions applied.
    """
    from api.privacy.consent import telemetry_dwellings_allowed

    started = time.perf_counter()
    places = device_places(device_ids)
    # Homes whose household withdrew fault detection are left out (decisions are cached for a
    # minute at most); common-area units have no household to ask.
    allowed = telemetry_dwellings_allowed(
        {place.dwelling_id for place in places.values()}, "fault_detection"
    )
    places = {pk: place for pk, place in places.items() if place.dwelling_id in allowed}
    if not places:
        return 0
    rules_by_device = rules_for_places(places.values())
    stored = states_load(places)
    contexts = engine_contexts({place.organisation_id for place in places.values()})
    changed: list[tuple[int, UnitStates, float | None]] = []  # units that had a row
    created: list[tuple[int, UnitStates, float | None]] = []
    found: list[tuple[DevicePlace, engine.Rule, engine.Transition]] = []
    for device_id in device_ids:
        place = places.get(device_id)
        if place is None:
            continue
        points = [point for message in readings.get(device_id, ()) for point in message.points()]
        if not points:
            continue
        names = {point[1] for point in points}
        had_row = device_id in stored
        states, watermark = stored.get(device_id, ({}, None))
        dirty = False
        for rule in rules_by_device[device_id]:
            raw = states.get(rule.id)
            raw = bytes(raw) if raw is not None else None
            if rule.offline_after_s is not None:
                # Only an active offline fault needs the readings (they clear it).
                if raw is None or b'"active":true' not in raw:
                    continue
            elif names.isdisjoint(engine.rule_signals(rule)):
                continue
            try:
                state = engine.load_state(raw) if raw is not None else None
                new_state, transitions = engine.evaluate(
                    rule, state, points, context=contexts[place.organisation_id], owned=True
                )
            except Exception:  # one broken rule or state must not stop the others
                logger.exception("rule %s failed on unit %s", rule.id, place.device_id)
                continue
            dumped = engine.dump_state(new_state)
            if dumped != raw:
                states[rule.id] = msgspec.Raw(dumped)
                dirty = True
                if new_state.watermark is not None and (
                    watermark is None or new_state.watermark > watermark
                ):
                    watermark = new_state.watermark
            if transitions:
                found.extend((place, rule, tr) for tr in transitions)
        if dirty:
            (changed if had_row else created).append((device_id, states, watermark))
    if changed:
        states_save(changed, existing=True)
    if created:
        states_save(created)
    if found:
        apply_transitions(found)
    metrics.EVALUATION_SECONDS.observe(time.perf_counter() - started)
    return len(found)


# --- engine states: one row per unit, each rule's state inside ----------------------------------

# A unit's states by rule id, each the engine's JSON as stored (decoded only for the rules
# that run on a batch, re-encoded only when it changed).
UnitStates = dict[str, msgspec.Raw]
_unit_states = msgspec.json.Decoder(UnitStates)
_encoder = msgspec.json.Encoder()


def states_decode(text: str | bytes) -> UnitStates:
    """A unit's stored states document as {rule id: raw state JSON}."""
    return _unit_states.decode(text)


def _states_rows(device_ids: list[int]) -> Iterable[tuple[int, str, float | None]]:
    if connection.vendor != "postgresql":
        return DeviceRuleStates.objects.filter(device_id__in=device_ids).values_list(
            "device_id", "states", "event_at"
        )
    # Straight to psycopg, the ids as one binary array: no model layer on the hot path.
    with pg_cursor() as cursor:
        cursor.execute(_LOAD_STATES, [device_ids])
        return cursor.fetchall()


_LOAD_STATES = (
    "SELECT device_id, states, event_at FROM faults_devicerulestates "
    "WHERE device_id = ANY(%b::int8[])"
)


def states_load(device_ids: Iterable[int]) -> dict[int, tuple[UnitStates, float | None]]:
    """Each unit's engine states and watermark, for the units that have any (one query)."""
    out = {}
    for device_id, text, event_at in _states_rows(list(device_ids)):
        try:
            out[device_id] = (states_decode(text), event_at)
        except msgspec.DecodeError:  # never seen; the unit's rules start afresh
            logger.error("engine states of unit %s are unreadable; rules restart", device_id)
            out[device_id] = ({}, event_at)
    return out


# Each unit's document travels as one element of a binary text[] parameter: the server neither
# parses nor re-quotes it (a single JSON document split by json_array_elements cost more than the
# update itself).
_UPSERT_STATES = """
INSERT INTO faults_devicerulestates (device_id, states, event_at, updated_at)
SELECT v.device_id, v.states, v.event_at, now()
FROM unnest(%b::int8[], %b::text[], %b::float8[]) AS v(device_id, states, event_at)
ON CONFLICT (device_id) DO UPDATE
SET states = EXCLUDED.states, event_at = EXCLUDED.event_at, updated_at = EXCLUDED.updated_at
"""


# Rows known to exist are updated by a join: cheaper than an upsert's attempted insertion.
_UPDATE_STATES = """
UPDATE faults_devicerulestates AS s
SET states = v.states, event_at = v.event_at, updated_at = now()
FROM unnest(%b::int8[], %b::text[], %b::float8[]) AS v(device_id, states, event_at)
WHERE s.device_id = v.device_id
"""


def states_save(
    rows: list[tuple[int, UnitStates, float | None]], *, existing: bool = False
) -> None:
    """Write units' engine states (device pk, {rule: state JSON}, watermark) in one statement.

    Each unit's document is written whole: its rows are read and written under the unit's
    lock (ingest and the offline sweep lock the devices first). `existing`: the rows were
    read in this transaction, so an update suffices; should one be missing after all, every
    row is upserted.
    """
    if connection.vendor != "postgresql":
        DeviceRuleStates.objects.bulk_create(
            [
                DeviceRuleStates(
                    device_id=device,
                    states=msgspec.json.encode(states).decode(),
                    event_at=event_at,
                )
                for device, states, event_at in rows
            ],
            update_conflicts=True,
            unique_fields=["device"],
            update_fields=["states", "event_at", "updated_at"],
        )
        return
    encode = _encoder.encode
    columns = [
        [device for device, _states, _at in rows],
        [encode(states).decode() for _device, states, _at in rows],
        [event_at for _device, _states, event_at in rows],
    ]
    with pg_cursor() as cursor:
        if existing:
            cursor.execute(_UPDATE_STATES, columns)
            if cursor.rowcount == len(rows):
                return
        cursor.execute(_UPSERT_STATES, columns)


def apply_transitions(found: list[tuple[DevicePlace, engine.Rule, engine.Transition]]) -> None:
    """Turn the engine's transitions into fault changes (in event-time order)."""
    found.sort(key=lambda item: item[2].at)
    keys = {(place.id, rule.id) for place, rule, _ in found}
    open_faults = {
        (fault.device_id, fault.rule): fault
        for fault in Fault.objects.select_for_update(of=("self",))
        .filter(
            device_id__in={k[0] for k in keys},
            rule__in={k[1] for k in keys},
            state__in=OPEN_STATES,
        )
        .select_related("ticket", "incident")
    }
    for place, rule, tr in found:
        fault = open_faults.get((place.id, rule.id))
        if tr.kind == "raise":
            open_faults[(place.id, rule.id)] = _raise(place, rule, tr, fault)
        elif fault is None:
            continue  # cleared or escalated while no fault was open (e.g. closed by hand)
        elif tr.kind == "update":
            _escalate(fault, tr)
        elif tr.kind == "clear":
            _clear(fault, tr)
            if fault.state == S.CLEARED:
                open_faults.pop((place.id, rule.id), None)


# --- the lifecycle ----------------------------------------------------------------------------


def _event(
    fault: Fault,
    kind: str,
    *,
    at: datetime | None = None,
    actor=None,
    from_state: str = "",
    note: str = "",
    data: dict | None = None,
) -> FaultEvent:
    event = FaultEvent(
        fault=fault,
        kind=kind,
        at=at or timezone.now(),
        actor=actor,
        from_state=from_state,
        to_state=fault.state,
        note=note,
        data=data or {},
    )
    event.save(force_insert=True)
    metrics.TRANSITIONS.labels(kind=kind).inc()
    return event


def _detail(rule: engine.Rule, values: dict) -> str:
    if rule.id == "boiler_lockout":
        code = values.get("fault_code")
        code = code if isinstance(code, str) else None
        label = fault_code_label(code, "fr")
        return f"{code} : {label}" if code else label
    return ""


def _raise(
    place: DevicePlace, rule: engine.Rule, tr: engine.Transition, fault: Fault | None
) -> Fault:
    at = _utc(tr.at)
    if fault is not None:
        # One open fault per (device, rule): a repeat counts, it never raises again.
        before = fault.state
        fault.repeat_count += 1
        fault.last_repeat_at = at
        fault.condition_active = True
        fields = ["repeat_count", "last_repeat_at", "condition_active", "updated_at"]
        if fault.state == S.CLEARED_UNACK:
            fault.state = S.ACTIVE_UNACK
            fault.cleared_at = None
            fields += ["state", "cleared_at"]
        if SEVERITY_RANK[tr.severity] > SEVERITY_RANK[fault.severity]:
            fault.severity = tr.severity
            fields.append("severity")
        fault.save(update_fields=fields)
        _event(fault, FaultEventKind.REPEATED, at=at, from_state=before, data={"values": tr.values})
        if fault.ticket_id and fault.ticket.status == "resolved":
            _ticket_reopen(fault)
        return fault
    values = {k: v for k, v in tr.values.items() if isinstance(v, int | float | str | bool)}
    fault = Fault(
        organisation_id=place.organisation_id,
        device_id=place.id,
        rule=rule.id,
        rule_version=rule.version,
        title=rule.title,
        category=rule.category,
        severity=tr.severity,
        state=S.ACTIVE_UNACK,
        raised_at=at,
        since=_utc(tr.since) if tr.since is not None else None,
        values=values,
        detail=_detail(rule, values)[:300],
        dwelling_id=place.dwelling_id,
        building_id=place.building_id,
        residence_id=place.residence_id,
    )
    fault.save(force_insert=True)
    _event(fault, FaultEventKind.RAISED, at=at, data={"values": values, "rule": rule.version})
    metrics.RAISED.labels(rule=rule.id, severity=tr.severity).inc()
    if _correlate(fault):
        return fault
    hold = settings.FAULT_CORRELATION_HOLD_S
    if hold > 0 and _may_correlate(fault):
        fault.dispatch_due_at = timezone.now() + timedelta(seconds=hold)
        fault.save(update_fields=["dispatch_due_at", "updated_at"])
    else:
        fault_dispatch(fault)
    return fault


def _escalate(fault: Fault, tr: engine.Transition) -> None:
    if SEVERITY_RANK[tr.severity] <= SEVERITY_RANK[fault.severity]:
        return
    before = fault.severity
    fault.severity = tr.severity
    fault.save(update_fields=["severity", "updated_at"])
    _event(
        fault,
        FaultEventKind.ESCALATED,
        at=_utc(tr.at),
        from_state=fault.state,
        data={"from": before, "to": tr.severity},
    )
    if fault.dispatched_at is not None:
        fault_dispatch(fault, again=True)


def _close(fault: Fault, at: datetime, *, actor=None, note: str = "") -> None:
    before = fault.state
    fault.state = S.CLEARED
    fault.closed_at = timezone.now()
    fault.dispatch_due_at = None
    fault.save(update_fields=["state", "closed_at", "dispatch_due_at", "updated_at"])
    _event(fault, FaultEventKind.CLOSED, at=at, actor=actor, from_state=before, note=note)


def _clear(fault: Fault, tr: engine.Transition) -> None:
    at = _utc(tr.at)
    before = fault.state
    fault.condition_active = False
    fault.cleared_at = at
    if fault.state == S.ACTIVE_UNACK:
        fault.state = S.CLEARED_UNACK
    fault.save(update_fields=["condition_active", "cleared_at", "state", "updated_at"])
    _event(fault, FaultEventKind.CLEARED, at=at, from_state=before, data={"values": tr.values})
    if fault.state != S.CLEARED_UNACK:
        # Acknowledged, shelved, suppressed or out of service: nothing is left to do.
        _close(fault, at)
    if fault.dispatched_at is None and fault.dispatch_due_at is not None:
        fault.dispatch_due_at = None  # held for correlation and gone already: no work
        fault.save(update_fields=["dispatch_due_at", "updated_at"])
    if fault.ticket_id and fault.ticket.is_open:
        _ticket_resolve(fault)
    if fault.incident_id:
        _incident_maybe_close(fault.incident)


def _base_state(fault: Fault) -> str:
    if fault.condition_active:
        return S.ACTIVE_ACK if fault.acknowledged_at else S.ACTIVE_UNACK
    return S.CLEARED if fault.acknowledged_at else S.CLEARED_UNACK


def _lock(fault: Fault) -> Fault:
    return (
        Fault.objects.select_for_update(of=("self",))
        .select_related("ticket", "incident")
        .get(pk=fault.pk)
    )


def _check_handler(actor, fault: Fault) -> None:
    from . import selectors

    if actor is None:
        return
    if not selectors.faults_visible_to(actor).filter(pk=fault.pk).exists():
        raise ServiceError("Not found.", code="not_found", status_code=404)
    if actor.role not in FAULT_HANDLER_ROLES:
        raise refused("Your role may not handle faults.")


@transaction.atomic
def fault_acknowledge(*, fault: Fault, actor, note: str = "") -> Fault:
    """Someone has seen the fault: active stays active (acknowledged), cleared closes."""
    _check_handler(actor, fault)
    fault = _lock(fault)
    if fault.state not in (S.ACTIVE_UNACK, S.CLEARED_UNACK):
        raise conflict("This fault is not waiting for acknowledgement.", "not_unacknowledged")
    before = fault.state
    now = timezone.now()
    fault.acknowledged_at, fault.acknowledged_by = now, actor
    fault.state = S.ACTIVE_ACK if before == S.ACTIVE_UNACK else S.CLEARED
    fields = ["acknowledged_at", "acknowledged_by", "state", "updated_at"]
    if fault.state == S.CLEARED:
        fault.closed_at = now
        fields.append("closed_at")
    fault.save(update_fields=fields)
    _event(fault, FaultEventKind.ACKNOWLEDGED, at=now, actor=actor, from_state=before, note=note)
    _acknowledge_alerts(fault, actor)
    return fault


def _acknowledge_alerts(fault: Fault, actor) -> None:
    """Someone took the fault: its team alerts stop escalating to the next person on call."""
    from api.notifications.models import AlertStatus, TeamAlert
    from api.notifications.services import alert_acknowledge

    if actor is None:
        return
    alerts = TeamAlert.objects.filter(
        dedupe_key__startswith=f"fault:{fault.id}:", status=AlertStatus.OPEN
    )
    for alert in alerts:
        alert_acknowledge(alert=alert, user=actor, via="app")


@transaction.atomic
def fault_shelve(*, fault: Fault, actor, until: datetime, reason: str) -> Fault:
    """Hide an open fault until a time, for a reason ("contractor booked Thursday")."""
    _check_handler(actor, fault)
    fault = _lock(fault)
    reason = (reason or "").strip()
    if not reason:
        raise ServiceError("Say why the fault is shelved.", code="required", field="reason")
    now = timezone.now()
    if until <= now:
        raise ServiceError("Shelve until a future time.", field="until")
    if until > now + timedelta(days=settings.FAULT_SHELVE_MAX_DAYS):
        raise ServiceError(
            f"Shelve for at most {settings.FAULT_SHELVE_MAX_DAYS} days.", field="until"
        )
    if fault.state not in (S.ACTIVE_UNACK, S.ACTIVE_ACK, S.CLEARED_UNACK, S.SHELVED):
        raise conflict("Only an active or unacknowledged fault can be shelved.", "not_shelvable")
    before = fault.state
    fault.state = S.SHELVED
    fault.shelved_until, fault.shelve_reason, fault.shelved_by = until, reason[:300], actor
    fault.save(
        update_fields=["state", "shelved_until", "shelve_reason", "shelved_by", "updated_at"]
    )
    _event(
        fault,
        FaultEventKind.SHELVED,
        at=now,
        actor=actor,
        from_state=before,
        note=reason,
        data={"until": until.isoformat()},
    )
    return fault


@transaction.atomic
def fault_unshelve(*, fault: Fault, actor, note: str = "") -> Fault:
    """Bring a shelved fault back (by hand, or when its time is up)."""
    _check_handler(actor, fault)
    fault = _lock(fault)
    if fault.state != S.SHELVED:
        raise conflict("This fault is not shelved.", "not_shelved")
    fault.state = _base_state(fault)
    fault.shelved_until = None
    fields = ["state", "shelved_until", "updated_at"]
    if fault.state == S.CLEARED:
        fault.closed_at = timezone.now()
        fields.append("closed_at")
    fault.save(update_fields=fields)
    _event(
        fault,
        FaultEventKind.UNSHELVED,
        actor=actor,
        from_state=S.SHELVED,
        note=note or ("" if actor else "shelving expired"),
    )
    return fault


def faults_unshelve_expired(*, now: datetime | None = None) -> int:
    """Unshelve every fault whose shelving time is up."""
    now = now or timezone.now()
    ids = list(
        Fault.objects.filter(state=S.SHELVED, shelved_until__lte=now).values_list("id", flat=True)
    )
    for fault_id in ids:
        fault = Fault.objects.filter(pk=fault_id, state=S.SHELVED).first()
        if fault is not None:
            fault_unshelve(fault=fault, actor=None)
    return len(ids)


@transaction.atomic
def fault_out_of_service(*, fault: Fault, actor, out: bool, note: str = "") -> Fault:
    """Take a fault out of service (the unit is being worked on) or put it back."""
    _check_handler(actor, fault)
    fault = _lock(fault)
    before = fault.state
    if out:
        if fault.state == S.CLEARED:
            raise conflict("This fault is closed.", "closed")
        fault.state = S.OUT_OF_SERVICE
        kind = FaultEventKind.OUT_OF_SERVICE
    else:
        if fault.state != S.OUT_OF_SERVICE:
            raise conflict("This fault is in service.", "in_service")
        fault.state = _base_state(fault)
        kind = FaultEventKind.RETURNED
    fault.save(update_fields=["state", "updated_at"])
    _event(fault, kind, actor=actor, from_state=before, note=note)
    return fault


@transaction.atomic
def fault_comment_add(*, fault: Fault, actor, text: str) -> FaultEvent:
    """A note on a fault's history."""
    _check_handler(actor, fault)
    text = (text or "").strip()
    if not text:
        raise ServiceError("Write something.", code="required", field="text")
    return _event(fault, FaultEventKind.COMMENT, actor=actor, from_state=fault.state, note=text)


# --- correlation ------------------------------------------------------------------------------


def _category(fault: Fault, codes: dict[str, str]):
    """The ticket category `codes` gives the fault's class (the organisation's own first)."""
    from api.tickets.selectors import category_by_code

    code = codes.get(fault.category)
    return None if code is None else category_by_code(fault.organisation_id, code)


def _incident_category(fault: Fault):
    return _category(fault, INCIDENT_CATEGORIES)


def _classes_of(category_code: str) -> list[str]:
    return [cls for cls, code in INCIDENT_CATEGORIES.items() if code == category_code]


@dataclass
class _Group:
    dwelling_ids: set
    building_id: object | None  # where an incident goes; None: the residence


def _groups(fault: Fault) -> list[_Group]:
    """The sets of dwellings whose common loss this fault may be part of."""
    from api.estate.models import Dwelling, Equipment, EquipmentKind

    groups = []
    if fault.building_id is not None:
        ids = set(
            Dwelling.objects.filter(entrance__building_id=fault.building_id).values_list(
                "id", flat=True
            )
        )
        groups.append(_Group(ids, fault.building_id))
    if fault.category in ("heating", "boiler"):
        substations = Equipment.objects.filter(
            kind=EquipmentKind.HEATING_SUBSTATION, serves_dwellings=fault.dwelling_id
        )
        for substation in substations:
            served = list(substation.serves_dwellings.values_list("id", "entrance__building_id"))
            buildings = {building for _, building in served}
            groups.append(
                _Group({d for d, _ in served}, buildings.pop() if len(buildings) == 1 else None)
            )
    return groups


def _may_correlate(fault: Fault) -> bool:
    """Whether this fault may be the start of a building-wide loss: its class correlates, its
    building (or substation) is big enough, and either its rule raises without a warning stage
    (a lockout: when the gas is cut, every boiler locks out at its next ignition, minutes
    apart) or a neighbour shows the same trouble.

    A fault whose condition had to hold for a while (no heat, cold dwelling) and that is alone
    in its building goes out at once: in a common loss its neighbours' conditions started
    together and are already holding, and then its ticket and alert wait for the incident.
    """
    if fault.category not in INCIDENT_CATEGORIES or fault.dwelling_id is None:
        return False
    groups = [
        group
        for group in _groups(fault)
        if len(group.dwelling_ids) >= settings.FAULT_INCIDENT_MIN_DWELLINGS
    ]
    if not groups:
        return False
    rule = RULES_BY_ID.get(fault.rule)
    if rule is None or rule.persistence_s <= 0:
        return True
    neighbours = set().union(*(group.dwelling_ids for group in groups)) - {fault.dwelling_id}
    return _neighbours_in_trouble(fault, neighbours)


def _neighbours_in_trouble(fault: Fault, dwelling_ids: set) -> bool:
    incident_category = INCIDENT_CATEGORIES[fault.category]
    categories = [c for c, target in INCIDENT_CATEGORIES.items() if target == incident_category]
    window = timedelta(minutes=settings.FAULT_INCIDENT_WINDOW_MINUTES)
    if Fault.objects.filter(
        dwelling_id__in=dwelling_ids,
        category__in=categories,
        raised_at__gte=fault.raised_at - window,
        state__in=OPEN_STATES,
    ).exists():
        return True
    rule_ids = {rule.id for rule in RULES if rule.category in categories}
    devices = Device.objects.filter(equipment__dwelling_id__in=dwelling_ids).values("pk")
    documents = DeviceRuleStates.objects.filter(device__in=devices).values_list("states", flat=True)
    for text in documents.iterator(chunk_size=500):
        try:
            states = states_decode(text)
        except msgspec.DecodeError:
            continue
        for rule_id, raw in states.items():
            if rule_id not in rule_ids:
                continue
            state = msgspec.json.decode(raw, type=engine.RuleState)
            if state.since is not None or state.active:
                return True
    return False


def _open_incident_for(fault: Fault, category):
    from api.tickets import selectors as ticket_selectors
    from api.tickets.models import Incident, IncidentStatus

    incidents = Incident.objects.filter(
        organisation_id=fault.organisation_id, status=IncidentStatus.OPEN
    ).select_related("category")
    incidents = incidents.filter(
        Q(building_id=fault.building_id) | Q(building__isnull=True, residence_id=fault.residence_id)
    )
    for incident in incidents.order_by("-started_at"):
        if category.id in ticket_selectors.category_subtree_ids(incident.category):
            return incident
    return None


def _suppress(fault: Fault, incident, *, at: datetime | None = None) -> None:
    before = fault.state
    fault.state = S.SUPPRESSED
    fault.incident = incident
    fault.dispatch_due_at = None
    fault.save(update_fields=["state", "incident", "dispatch_due_at", "updated_at"])
    _event(
        fault,
        FaultEventKind.SUPPRESSED,
        at=at,
        from_state=before,
        data={"incident": str(incident.id)},
    )


def _siblings(fault: Fault, category, group: _Group):
    """Open faults of the same class in the group, raised within the window of this one."""
    window = timedelta(minutes=settings.FAULT_INCIDENT_WINDOW_MINUTES)
    return Fault.objects.filter(
        organisation_id=fault.organisation_id,
        category__in=_classes_of(category.code),
        dwelling_id__in=group.dwelling_ids,
        state__in=OPEN_STATES,
        condition_active=True,
        raised_at__gte=fault.raised_at - window,
        raised_at__lte=fault.raised_at + window,
    )


def _neighbours_failing(fault: Fault) -> bool:
    """Whether other dwellings of its group have the same class of fault (a loss may be forming)."""
    category = _incident_category(fault)
    if category is None or fault.dwelling_id is None:
        return False
    return any(
        _siblings(fault, category, group).exclude(dwelling_id=fault.dwelling_id).exists()
        for group in _groups(fault)
        if len(group.dwelling_ids) >= settings.FAULT_INCIDENT_MIN_DWELLINGS
    )


def _correlate(fault: Fault) -> bool:
    """Join an open incident, or open one when enough dwellings lost the same thing at once.

    Returns True when the fault is now suppressed (a child of an incident).
    """
    if fault.category not in INCIDENT_CATEGORIES or fault.dwelling_id is None:
        return False
    category = _incident_category(fault)
    if category is None:
        return False
    incident = _open_incident_for(fault, category)
    if incident is not None:
        _suppress(fault, incident, at=fault.raised_at)  # joins silently
        return True
    for group in _groups(fault):
        total = len(group.dwelling_ids)
        if total < settings.FAULT_INCIDENT_MIN_DWELLINGS:
            continue
        siblings = _siblings(fault, category, group)
        affected = siblings.values("dwelling_id").distinct().count()
        if affected / total >= settings.FAULT_INCIDENT_SHARE:
            _open_incident(
                fault, category, group, list(siblings.select_for_update(of=("self",))), affected
            )
            return True
    return False


def _open_incident(fault: Fault, category, group: _Group, children: list, affected: int) -> None:
    from api.estate.models import Building, Residence
    from api.tickets.services import incident_open

    if group.building_id is not None:
        place = {"building": Building.objects.get(pk=group.building_id)}
    else:
        place = {"residence": Residence.objects.get(pk=fault.residence_id)}
    incident = incident_open(
        actor=None,
        category=category,
        public_message=settings.FAULT_INCIDENT_MESSAGES.get(
            category.code, settings.FAULT_INCIDENT_MESSAGES["default"]
        ),
        source="sensor",
        related_fault_id=fault.id,
        **place,
    )
    for child in children:
        if child.state != S.SUPPRESSED:
            _suppress(child, incident, at=fault.raised_at)
    metrics.INCIDENTS.inc()
    team = _team_for(fault)
    if team is not None:
        from api.notifications.services import notify_team

        building = place.get("building")
        where = incident.residence.name
        if building is not None:
            where = f"{where}, bât. {building.reference}"
        notify_team(
            team=team,
            event="fault.alert",
            context={
                "incident_id": str(incident.id),
                "rule": f"{category.name} ({affected}/{len(group.dwelling_ids)} logements)",
                "place": where,
                "severity": "critical",
                "count": affected,
            },
            critical=True,
            dedupe_key=f"incident:{incident.id}:opened",
        )
        metrics.ALARMS.labels(team=team.name).inc()


def _incident_maybe_close(incident) -> None:
    """A sensor incident ends once none of its faults still holds."""
    from api.tickets.models import IncidentStatus
    from api.tickets.services import incident_close

    if incident is None or incident.status != IncidentStatus.OPEN or incident.source != "sensor":
        return
    if Fault.objects.filter(incident=incident, condition_active=True).exists():
        return
    incident_close(
        incident=incident, actor=None, public_message=settings.FAULT_INCIDENT_OVER_MESSAGE
    )


# --- work and alerts --------------------------------------------------------------------------


def _team_for(fault: Fault):
    from api.estate.models import TeamSector

    if fault.ticket_id and fault.ticket.assigned_team_id:
        return fault.ticket.assigned_team
    sector = (
        TeamSector.objects.filter(residence_id=fault.residence_id)
        .select_related("team")
        .order_by("created_at")
        .first()
    )
    return sector.team if sector else None


def _place_label(fault: Fault) -> str:
    from api.estate.selectors import dwelling_label

    if fault.dwelling_id:
        return dwelling_label(fault.dwelling)
    return fault.residence.name


def _ticket_category(fault: Fault):
    return _category(fault, TICKET_CATEGORIES)


def _description(fault: Fault) -> str:
    local = timezone.localtime(fault.raised_at)
    lines = [
        f"{fault.title} : détecté par l'appareil {fault.device.device_id} "
        f"le {local:%d/%m/%Y à %H:%M}.",
    ]
    if fault.detail:
        lines.append(fault.detail)
    if fault.values:
        shown = ", ".join(f"{name} = {value}" for name, value in sorted(fault.values.items()))
        lines.append(f"Mesures : {shown}.")
    lines.append(f"Relevés des 24 h précédentes : /api/v1/faults/{fault.id}/readings/")
    return "\n".join(lines)


def _answers(category, fault: Fault, equipment) -> dict:
    """Answers to the category's questions, from what the unit knows (required ones filled)."""
    from api.tickets.services import category_questions

    known = {
        "whole_dwelling": True,
        "heating_type": {
            "individual_boiler": "chaudiere",
            "heating_substation": "collectif",
        }.get(equipment.kind),
        "error_code": fault.values.get("fault_code"),
    }
    answers = {}
    for question in category_questions(category):
        value = known.get(question.key)
        allowed = [choice.get("value") for choice in question.choices or []]
        if question.kind == "choice" and value not in allowed:
            value = allowed[0] if question.required and allowed else None
        elif question.kind == "bool" and not isinstance(value, bool):
            value = False if question.required else None
        elif question.kind == "text" and not (isinstance(value, str) and value):
            value = "Signalé par le capteur" if question.required else None
        elif question.kind == "number" and not isinstance(value, int | float):
            value = float(question.min_value or 0) if question.required else None
        if value is not None:
            answers[question.key] = value[:200] if isinstance(value, str) else value
    return answers


def _open_ticket(fault: Fault) -> None:
    from api.tickets import notices
    from api.tickets.services import tenant_side_recipients, ticket_create

    category = _ticket_category(fault)
    if category is None:
        return
    device = fault.device
    equipment = device.equipment
    answers = _answers(category, fault, equipment)
    try:
        with transaction.atomic():
            ticket = ticket_create(
                actor=None,
                source="sensor",
                category=category,
                dwelling=equipment.dwelling if equipment.dwelling_id else None,
                common_area=equipment.common_area if equipment.common_area_id else None,
                description=_description(fault),
                priority="urgent" if fault.severity == "critical" else None,
                answers=answers,
                equipment=equipment,
                related_fault_id=fault.id,
            )
    except ServiceError as error:
        logger.warning("no ticket for fault %s: %s", fault.id, error.message)
        return
    fault.ticket = ticket
    fault.save(update_fields=["ticket", "updated_at"])
    _event(fault, FaultEventKind.TICKET, data={"ticket": str(ticket.id), "ref": ticket.reference})
    if ticket.incident_id is None:
        notices.tell(
            recipients=tenant_side_recipients(ticket),
            event="fault.detected",
            context={
                "ticket_id": str(ticket.id),
                "reference": ticket.reference,
                "category": ticket.category.name,
                "category_code": ticket.category.code,
            },
            link=f"tickets/{ticket.id}",
            dedupe_key=f"fault:{fault.id}:tenant",
        )


def _ticket_resolve(fault: Fault) -> None:
    from api.tickets.models import Status
    from api.tickets.services import ticket_transition

    ticket = fault.ticket
    if ticket.incident_id is not None:
        return  # the incident resolves its requests when it ends
    try:
        ticket_transition(
            ticket=ticket,
            actor=None,
            to_status=Status.RESOLVED,
            note=settings.FAULT_CLEARED_TICKET_NOTE,
            cause="fault_cleared",
        )
    except ServiceError as error:
        logger.info("ticket of fault %s not resolved: %s", fault.id, error.message)


def _ticket_reopen(fault: Fault) -> None:
    from api.tickets.models import Status
    from api.tickets.services import ticket_transition

    try:
        ticket_transition(
            ticket=fault.ticket, actor=None, to_status=Status.REOPENED, cause="still_broken"
        )
    except ServiceError as error:
        logger.info("ticket of fault %s not reopened: %s", fault.id, error.message)


def fault_dispatch(fault: Fault, *, again: bool = False) -> None:
    """Open the fault's ticket (major or worse) and alert its team (major or worse)."""
    from api.notifications.services import notify_team

    now = timezone.now()
    fault.dispatched_at = now
    fault.dispatch_due_at = None
    fault.save(update_fields=["dispatched_at", "dispatch_due_at", "updated_at"])
    if fault.state not in ACTIVE_STATES or not fault.condition_active:
        return
    rank = SEVERITY_RANK[fault.severity]
    if rank < SEVERITY_RANK[settings.FAULT_TICKET_SEVERITY]:
        return
    if fault.ticket_id is None:
        _open_ticket(fault)
    if rank < SEVERITY_RANK[settings.FAULT_ALERT_SEVERITY]:
        return
    team = _team_for(fault)
    if team is None:
        return
    critical = fault.severity == "critical"
    alerts = notify_team(
        team=team,
        event="fault.alert",
        context={
            "fault_id": str(fault.id),
            "rule": fault.title,
            "place": _place_label(fault),
            "severity": fault.severity,
            "device": fault.device.device_id,
            "detail": fault.detail,
        },
        critical=critical,
        dedupe_key=f"fault:{fault.id}:{fault.severity}",
    )
    _event(fault, FaultEventKind.ALERTED, data={"team": str(team.id), "sent": len(alerts)})
    metrics.ALARMS.labels(team=team.name).inc()


def faults_dispatch_due(*, now: datetime | None = None) -> int:
    """Send out the work and alerts of faults held for correlation whose hold is over."""
    now = now or timezone.now()
    ids = list(
        Fault.objects.filter(dispatched_at__isnull=True, dispatch_due_at__lte=now).values_list(
            "id", flat=True
        )[:1000]
    )
    done = 0
    for fault_id in ids:
        with transaction.atomic():
            fault = (
                Fault.objects.select_for_update(skip_locked=True, of=("self",))
                .filter(pk=fault_id, dispatched_at__isnull=True, dispatch_due_at__isnull=False)
                .select_related("ticket", "incident")
                .first()
            )
            if fault is None:
                continue
            if fault.state in OPEN_STATES and fault.condition_active:
                if _correlate(fault):
                    continue  # the incident formed while it was held
                window = timedelta(minutes=settings.FAULT_INCIDENT_WINDOW_MINUTES)
                if now < fault.created_at + window and _neighbours_failing(fault):
                    # Neighbours fail too, not yet enough for an incident: wait a bit more.
                    fault.dispatch_due_at = now + timedelta(
                        seconds=settings.FAULT_CORRELATION_HOLD_S
                    )
                    fault.save(update_fields=["dispatch_due_at", "updated_at"])
                    continue
            fault_dispatch(fault)
            done += 1
    return done


# --- the offline sweep (the one wall-clock rule) ----------------------------------------------


def faults_sweep_offline(*, now: datetime | None = None) -> int:
    """Raise "unit offline" for units silent for their rule's limit; returns faults raised."""
    now = now or timezone.now()
    horizon = now - timedelta(
        seconds=settings.FAULT_OFFLINE_INTERVALS * settings.FAULT_OFFLINE_MIN_INTERVAL_S
    )
    candidates = list(
        Device.objects.filter(
            status__in=(DeviceStatus.ONLINE, DeviceStatus.OFFLINE),
            last_seen_at__lt=horizon,
        )
        .exclude(
            id__in=Fault.objects.filter(rule=OFFLINE_RULE, state__in=OPEN_STATES).values(
                "device_id"
            )
        )
        .values_list("id", flat=True)[:5000]
    )
    raised = 0
    for start in range(0, len(candidates), 200):
        chunk = candidates[start : start + 200]
        with transaction.atomic():
            locked = list(
                Device.objects.select_for_update(skip_locked=True)
                .filter(id__in=chunk)
                .values_list("id", "last_seen_at")
            )
            if not locked:
                continue
            seen = dict(locked)
            places = device_places(seen)
            rules = rules_for_places(places.values())
            stored = states_load(seen)
            rows, found = [], []
            for device_id, place in places.items():
                rule = next((r for r in rules[device_id] if r.offline_after_s is not None), None)
                if rule is None or seen[device_id] is None:
                    continue
                states, watermark = stored.get(device_id, ({}, None))
                raw = states.get(rule.id)
                state = engine.load_state(bytes(raw)) if raw is not None else None
                new_state, transitions = engine.sweep_offline(
                    rule, state, now=now.timestamp(), last_seen=seen[device_id].timestamp()
                )
                if transitions:
                    states[rule.id] = msgspec.Raw(engine.dump_state(new_state))
                    if new_state.watermark is not None and (
                        watermark is None or new_state.watermark > watermark
                    ):
                        watermark = new_state.watermark
                    rows.append((device_id, states, watermark))
                    found.extend((place, rule, tr) for tr in transitions)
            if rows:
                states_save(rows)
            if found:
                apply_transitions(found)
                raised += len(found)
    return raised


# --- rule overrides ---------------------------------------------------------------------------


def _check_rule_editor(actor, residence) -> None:
    from api.estate.selectors import residences_visible_to

    if actor is None:
        return
    if actor.role not in RULE_EDITOR_ROLES:
        raise refused("Only managers change fault rules.")
    if residence is not None and (
        residence.organisation_id != actor.organisation_id
        or not residences_visible_to(actor).filter(pk=residence.pk).exists()
    ):
        raise ServiceError("Not found.", code="not_found", field="residence", status_code=404)


def _record_version(override: RuleOverride, rule: engine.Rule, actor) -> None:
    RuleVersion.objects.create(
        override=override,
        version=override.version,
        enabled=override.enabled,
        changes=override.changes,
        severity=override.severity,
        source=override.source,
        definition=msgspec.to_builtins(rule),
        created_by=actor,
    )


@transaction.atomic
def rule_override_create(
    *,
    actor,
    organisation,
    rule: str,
    device_model: str = "",
    residence=None,
    enabled: bool = True,
    changes: dict | None = None,
    severity: str | None = None,
    source: str,
) -> RuleOverride:
    """Change a shipped rule for the organisation, a device model and/or a residence."""
    _check_rule_editor(actor, residence)
    shipped = RULES_BY_ID.get(rule)
    if shipped is None:
        raise ServiceError("Unknown rule.", field="rule")
    source = (source or "").strip()
    if not source:
        raise ServiceError("Say where the threshold comes from.", code="required", field="source")
    exists = RuleOverride.objects.filter(
        organisation=organisation, rule=rule, device_model=device_model, residence=residence
    ).exists()
    if exists:
        raise conflict("This rule is already changed there; edit that change.", "already_exists")
    override = RuleOverride(
        organisation=organisation,
        rule=rule,
        device_model=device_model,
        residence=residence,
        enabled=enabled,
        changes=changes or {},
        severity=severity or shipped.severity,
        source=source,
        updated_by=actor,
    )
    effective = rule_apply_override(shipped, override)
    override.save(force_insert=True)
    _record_version(override, effective, actor)
    transaction.on_commit(forget_overrides)
    forget_overrides()
    return override


@transaction.atomic
def rule_override_update(
    *,
    override: RuleOverride,
    actor,
    enabled: bool | None = None,
    changes: dict | None = None,
    severity: str | None = None,
    source: str | None = None,
) -> RuleOverride:
    """A new version of an override (the previous ones stay in its history)."""
    override = RuleOverride.objects.select_for_update().get(pk=override.pk)
    _check_rule_editor(actor, override.residence)
    if enabled is not None:
        override.enabled = enabled
    if changes is not None:
        override.changes = changes
    if severity is not None:
        override.severity = severity
    if source is not None:
        if not source.strip():
            raise ServiceError(
                "Say where the threshold comes from.", code="required", field="source"
            )
        override.source = source.strip()
    override.version += 1
    override.updated_by = actor
    effective = rule_apply_override(RULES_BY_ID[override.rule], override)
    override.save()
    _record_version(override, effective, actor)
    transaction.on_commit(forget_overrides)
    forget_overrides()
    return override


@transaction.atomic
def rule_override_delete(*, override: RuleOverride, actor) -> None:
    """Back to the shipped rule there."""
    _check_rule_editor(actor, override.residence)
    override.delete()
    transaction.on_commit(forget_overrides)
    forget_overrides()


def effective_rule(*, override: RuleOverride) -> engine.Rule:
    """The rule an override makes (for display)."""
    return rule_apply_override(RULES_BY_ID[override.rule], override)


def fault_figures(*, now: datetime | None = None) -> dict:
    """Alarm-management figures over every organisation (for the Prometheus gauges)."""
    from django.db.models import Count
    from django.db.models.functions import TruncMinute

    from api.notifications.models import TeamAlert

    now = now or timezone.now()
    per_team = (
        TeamAlert.objects.filter(event="fault.alert", created_at__gte=now - timedelta(minutes=10))
        .values_list("team__name")
        .annotate(count=Count("id"))
    )
    standing = Fault.objects.filter(
        state__in=ACTIVE_STATES, condition_active=True, raised_at__lt=now - timedelta(hours=24)
    ).count()
    chattering = (
        FaultEvent.objects.filter(
            kind__in=(FaultEventKind.RAISED, FaultEventKind.REPEATED, FaultEventKind.CLEARED),
            at__gte=now - timedelta(hours=1),
        )
        .order_by()
        .annotate(minute=TruncMinute("at"))
        .values("fault_id", "minute")
        .annotate(changes=Count("id"))
        .filter(changes__gte=3)
        .values_list("fault_id", flat=True)
        .distinct()
    )
    return {
        "alarms_per_team_10_min": dict(per_team),
        "standing": standing,
        "chattering": len(set(chattering)),
    }
