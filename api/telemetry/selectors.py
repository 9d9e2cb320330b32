"""Reads of the telemetry app, each scoped to what the given person may see."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q, QuerySet
from django.utils import timezone

from api.core.roles import STAFF_ROLES, Role
from api.estate import selectors as estate_selectors
from api.estate.models import HouseholdMember

from . import storage
from .models import Device, DeviceEvent, DeviceStatus, Quarantine
from .vocabulary import (
    FIELDS,
    KIND_LABELS,
    LABELS,
    NAME_CODES,
    NAME_PURPOSES,
    PURPOSE_TEXTS,
    RETENTION_TEXTS,
    TEXT_NAMES,
    UNITS,
    WHO_SEES,
    in_language,
    names_for_kind,
)

QUARANTINE_READER_ROLES = frozenset({Role.MANAGER, Role.ADMIN})
MAX_POINTS = 500
AUTO_RAW_SPAN = timedelta(days=2)
DEFAULT_SPAN = timedelta(hours=24)

DEVICE_LOCATION = (
    "organisation",
    "equipment__dwelling__entrance__building__residence",
    "equipment__common_area__residence",
    "equipment__common_area__building__residence",
    "equipment__common_area__entrance__building__residence",
)


def _is_staff(user) -> bool:
    return bool(
        user is not None
        and getattr(user, "is_authenticated", False)
        and user.is_active
        and user.organisation_id is not None
        and user.role in STAFF_ROLES
    )


def devices_visible_to(user) -> QuerySet[Device]:
    """Units measuring equipment in the staff member's scope (tenants: none, see my-home)."""
    if not _is_staff(user):
        return Device.objects.none()
    return Device.objects.filter(
        organisation_id=user.organisation_id,
        equipment_id__in=estate_selectors.equipment_visible_to(user).values("id"),
    )


def device_list(*, user) -> QuerySet[Device]:
    """The units a staff member may see, with their location for display."""
    return devices_visible_to(user).select_related(*DEVICE_LOCATION)


def device_get(*, user, device_id: str) -> Device | None:
    """One unit by its device id, or None when it does not exist for this user."""
    return device_list(user=user).filter(device_id=device_id).first()


def device_events(*, device: Device) -> QuerySet[DeviceEvent]:
    """A unit's history, newest first."""
    return device.events.select_related("actor").order_by("-at", "-id")


def residence_q(residence_id) -> Q:
    """Units located anywhere in a residence (dwellings and every kind of common area)."""
    return (
        Q(equipment__dwelling__entrance__building__residence_id=residence_id)
        | Q(equipment__common_area__residence_id=residence_id)
        | Q(equipment__common_area__building__residence_id=residence_id)
        | Q(equipment__common_area__entrance__building__residence_id=residence_id)
    )


def building_q(building_id) -> Q:
    """Units located in a building (its dwellings and common areas)."""
    return (
        Q(equipment__dwelling__entrance__building_id=building_id)
        | Q(equipment__common_area__building_id=building_id)
        | Q(equipment__common_area__entrance__building_id=building_id)
    )


def device_dwelling_occupants(*, device: Device) -> list:
    """Ids of the people whose current lease covers the unit's dwelling (for the access log)."""
    dwelling_id = device.equipment.dwelling_id
    if dwelling_id is None:
        return []
    today = timezone.localdate()
    return list(
        HouseholdMember.objects.filter(
            estate_selectors.current_lease_q(today, "lease__"), lease__dwelling_id=dwelling_id
        ).values_list("person_id", flat=True)
    )


def device_readings_check_purpose(*, device: Device) -> None:
    """Staff read a home unit's readings for repairs only while the household allows fault
    detection; a withdrawal applies within the consent cache's minute."""
    from api.core.exceptions import ServiceError
    from api.privacy.consent import telemetry_purpose_allowed

    dwelling_id = device.equipment.dwelling_id
    if dwelling_id is not None and not telemetry_purpose_allowed(dwelling_id, "fault_detection"):
        raise ServiceError(
            "The household has withdrawn the use of this unit's readings for repairs.",
            code="consent_withdrawn",
            status_code=403,
        )


# --- Series ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Series:
    """Points of one name of one unit over a time range, at most MAX_POINTS of them."""

    name: str
    resolution: str
    bucket_s: int | None
    start: datetime
    end: datetime
    points: list[storage.Point]
    truncated: bool = False


def device_series(
    *,
    device: Device,
    name: str,
    start: datetime | None = None,
    end: datetime | None = None,
    resolution: str = "auto",
) -> Series:
    """Readings for a chart: raw, hourly aggregates, or chosen by span; downsampled to fit."""
    end = end or timezone.now()
    start = start or end - DEFAULT_SPAN
    span = (end - start).total_seconds()
    if resolution == "auto":
        resolution = "raw" if end - start <= AUTO_RAW_SPAN or name in TEXT_NAMES else "hour"
    if resolution == "hour":
        hours = math.ceil(span / 3600)
        bucket_s = 3600 * max(1, math.ceil(hours / MAX_POINTS))
        points = storage.hourly_points(
            device_id=device.id, name=name, start=start, end=end, bucket_s=bucket_s
        )
        return Series(name, "hour", bucket_s, start, end, points)
    points = storage.raw_points(
        device_id=device.id, name=name, start=start, end=end, limit=MAX_POINTS + 1
    )
    if len(points) <= MAX_POINTS:
        return Series(name, "raw", None, start, end, points)
    if name in TEXT_NAMES:
        return Series(name, "raw", None, start, end, points[:MAX_POINTS], truncated=True)
    bucket_s = max(1, math.ceil(span / MAX_POINTS))
    points = storage.bucketed_raw_points(
        device_id=device.id, name=name, start=start, end=end, bucket_s=bucket_s
    )
    return Series(name, "raw", bucket_s, start, end, points)


# --- A tenant's home -------------------------------------------------------------------------


def _language(user) -> str:
    language = getattr(user, "language", "") or settings.LANGUAGE_CODE
    return language if language in dict(settings.LANGUAGES) else settings.LANGUAGE_CODE


CURRENT_WINDOW = timedelta(days=2)


def _current_readings(latest: dict[str, storage.Latest], kind: str, language: str) -> list[dict]:
    own = names_for_kind(kind)
    readings = []
    for name in own + [n for n in NAME_CODES if n not in own]:
        reading = latest.get(name)
        if reading is None:
            continue
        if FIELDS[name] == "vs":
            value = reading.text
        elif FIELDS[name] == "vb":
            value = bool(reading.value)
        else:
            value = reading.value
        readings.append(
            {
                "name": name,
                "label": in_language(LABELS[name], language),
                "value": value,
                "unit": UNITS[name],
                "at": reading.t,
            }
        )
    return readings


def current_readings(*, device: Device, language: str) -> list[dict]:
    """A unit's newest value per name (over the last two days), labelled in `language`."""
    since = timezone.now() - CURRENT_WINDOW
    latest = storage.latest_values([device.id], since=since)[device.id]
    return _current_readings(latest, device.kind, language)


def tenancy_starts(*, user, dwelling_ids: list) -> dict:
    """{dwelling id: start of the user's lease in force there}, as an aware datetime."""
    today = timezone.localdate()
    starts = (
        HouseholdMember.objects.filter(
            estate_selectors.current_lease_q(today, "lease__"),
            person=user,
            lease__dwelling_id__in=dwelling_ids,
        )
        .order_by("lease__start_date")
        .values_list("lease__dwelling_id", "lease__start_date")
    )
    return {
        dwelling_id: timezone.make_aware(datetime.combine(start, datetime.min.time()))
        for dwelling_id, start in starts
    }


def home_readings(*, user) -> dict:
    """The current readings of the units in the tenant's own home, and what is collected, why,
    who sees it and for how long, in the tenant's language."""
    language = _language(user)
    dwellings = list(
        estate_selectors.current_household_dwellings(user).order_by("reference")
        if user.role == Role.TENANT
        else []
    )
    devices = (
        Device.objects.filter(equipment__dwelling__in=[d.id for d in dwellings])
        .exclude(status=DeviceStatus.REVOKED)
        .select_related("equipment")
        .order_by("kind", "device_id")
    )
    units_by_dwelling: dict = {d.id: [] for d in dwellings}
    devices = list(devices)
    latest = storage.latest_values([d.id for d in devices], since=timezone.now() - CURRENT_WINDOW)
    # A previous household's readings never reach the next one: only since the lease began.
    moved_in = tenancy_starts(user=user, dwelling_ids=list(units_by_dwelling))
    kinds = set()
    for device in devices:
        kinds.add(device.kind)
        start = moved_in.get(device.equipment.dwelling_id)
        own = {
            name: reading
            for name, reading in latest[device.id].items()
            if start is None or reading.t >= start
        }
        readings = _current_readings(own, device.kind, language)
        units_by_dwelling[device.equipment.dwelling_id].append(
            {
                "device_id": device.device_id,
                "kind": device.kind,
                "label": in_language(KIND_LABELS[device.kind], language),
                "status": device.status,
                "last_seen_at": device.last_seen_at,
                "reporting_interval_s": device.reporting_interval_s,
                "readings": readings,
            }
        )
    collected = []
    for kind in sorted(kinds) or sorted(KIND_LABELS):
        for name in names_for_kind(kind):
            collected.append(
                {
                    "name": name,
                    "kind": kind,
                    "label": in_language(LABELS[name], language),
                    "unit": UNITS[name],
                    "purposes": [
                        in_language(PURPOSE_TEXTS[p], language) for p in NAME_PURPOSES[name]
                    ],
                }
            )
    raw_days = settings.TELEMETRY_RAW_RETENTION_DAYS
    aggregate_days = settings.TELEMETRY_AGGREGATE_RETENTION_DAYS
    return {
        "language": language,
        "dwellings": [
            {"id": d.id, "reference": d.reference, "units": units_by_dwelling[d.id]}
            for d in dwellings
        ],
        "collected": collected,
        "who_sees": in_language(WHO_SEES, language),
        "retention": in_language(RETENTION_TEXTS, language).format(
            raw=raw_days, aggregate=aggregate_days
        ),
        "raw_retention_days": raw_days,
        "aggregate_retention_days": aggregate_days,
    }


# --- Quarantine ------------------------------------------------------------------------------


def quarantine_visible_to(user) -> QuerySet[Quarantine]:
    """Refused messages of the user's fleet (managers and administrators only)."""
    if not _is_staff(user) or user.role not in QUARANTINE_READER_ROLES:
        return Quarantine.objects.none()
    return Quarantine.objects.filter(organisation_id=user.organisation_id)
