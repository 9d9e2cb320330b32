"""Reads of the faults app, each scoped to what the given person may see (staff only)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, Q, QuerySet
from django.db.models.functions import TruncMinute
from django.utils import timezone

from api.core.roles import STAFF_ROLES, Role
from api.estate.selectors import residences_visible_to
from api.telemetry import selectors as telemetry
from api.telemetry.vocabulary import NAME_CODES

from . import engine
from .models import (
    OPEN_STATES,
    SEVERITY_RANK,
    Fault,
    FaultEvent,
    FaultEventKind,
    FaultStateKind,
    RuleOverride,
    RuleVersion,
)
from .rules import RULES_BY_ID

READER_ROLES = STAFF_ROLES
RULE_READER_ROLES = frozenset({Role.MANAGER, Role.ADMIN})
READINGS_BEFORE = timedelta(hours=24)
READINGS_AFTER_MAX = timedelta(days=7)
STANDING_AFTER = timedelta(hours=24)
CHATTER_CHANGES = 3  # changes within one minute
LIFECYCLE_KINDS = (FaultEventKind.RAISED, FaultEventKind.REPEATED, FaultEventKind.CLEARED)


def _is_staff(user) -> bool:
    return bool(
        user is not None
        and getattr(user, "is_authenticated", False)
        and user.is_active
        and user.organisation_id is not None
        and user.role in READER_ROLES
    )


def faults_visible_to(user) -> QuerySet[Fault]:
    """Faults of the units a staff member may see (tenants see none)."""
    if not _is_staff(user):
        return Fault.objects.none()
    return Fault.objects.filter(
        organisation_id=user.organisation_id,
        device_id__in=telemetry.devices_visible_to(user).values("id"),
    )


def fault_list(*, user) -> QuerySet[Fault]:
    """Faults in scope with what a list shows (a fixed number of queries)."""
    return faults_visible_to(user).select_related(
        "device", "residence", "building", "dwelling", "ticket", "incident"
    )


def fault_get(*, user, pk) -> Fault | None:
    """One fault in scope, or None."""
    return fault_list(user=user).filter(pk=pk).first()


def fault_events(*, fault: Fault) -> QuerySet[FaultEvent]:
    """A fault's history, oldest first."""
    return fault.events.select_related("actor").order_by("created_at", "at")


def fault_comments(*, fault: Fault) -> QuerySet[FaultEvent]:
    """The comments on a fault, oldest first."""
    return fault_events(fault=fault).filter(kind=FaultEventKind.COMMENT)


@dataclass(frozen=True)
class ReadingsContext:
    """The readings of a fault's signals around it: 24 h before, until it cleared."""

    start: datetime
    end: datetime
    series: list


def fault_readings(*, fault: Fault) -> ReadingsContext:
    """Series of every signal the fault's rule reads, from 24 h before the raise."""
    rule = RULES_BY_ID.get(fault.rule)
    names = sorted(engine.rule_signals(rule) & set(NAME_CODES)) if rule else []
    start = fault.raised_at - READINGS_BEFORE
    end = min(fault.cleared_at or timezone.now(), fault.raised_at + READINGS_AFTER_MAX)
    end = max(end, fault.raised_at + timedelta(minutes=1))
    series = [
        telemetry.device_series(device=fault.device, name=name, start=start, end=end)
        for name in names
    ]
    return ReadingsContext(start=start, end=end, series=series)


def device_board(*, user, residence_id) -> list[dict] | None:
    """Each unit of a residence with its connection state and open faults (None: not visible)."""
    if not residences_visible_to(user).filter(pk=residence_id).exists() or not _is_staff(user):
        return None
    devices = list(
        telemetry.devices_visible_to(user)
        .filter(telemetry.residence_q(residence_id))
        .select_related("equipment__dwelling", "equipment__common_area")
        .order_by("device_id")
    )
    faults: dict[int, list[Fault]] = {}
    for fault in Fault.objects.filter(
        device_id__in=[d.id for d in devices], state__in=OPEN_STATES
    ).order_by("-raised_at"):
        faults.setdefault(fault.device_id, []).append(fault)
    board = []
    for device in devices:
        own = faults.get(device.id, [])
        worst = max((f.severity for f in own), key=SEVERITY_RANK.__getitem__, default=None)
        equipment = device.equipment
        board.append(
            {
                "device_id": device.device_id,
                "kind": device.kind,
                "model": device.model,
                "status": device.status,
                "last_seen_at": device.last_seen_at,
                "dwelling": equipment.dwelling_id,
                "dwelling_reference": equipment.dwelling.reference if equipment.dwelling_id else "",
                "common_area": equipment.common_area_id,
                "health": "fault" if own else ("offline" if device.status == "offline" else "ok"),
                "worst_severity": worst,
                "faults": own,
            }
        )
    return board


def rule_overrides_visible_to(user) -> QuerySet[RuleOverride]:
    """Rule overrides of the manager's organisation (residence ones within their scope)."""
    if not _is_staff(user) or user.role not in RULE_READER_ROLES:
        return RuleOverride.objects.none()
    return (
        RuleOverride.objects.filter(organisation_id=user.organisation_id)
        .filter(Q(residence__isnull=True) | Q(residence_id__in=residences_visible_to(user)))
        .select_related("residence", "updated_by")
    )


def rule_versions(*, override: RuleOverride) -> QuerySet[RuleVersion]:
    """An override's versions, newest first."""
    return override.versions.select_related("created_by").order_by("-version")


def fault_metrics(*, user, now: datetime | None = None) -> dict:
    """Alarm-management figures over the caller's scope: alarms per team in 10 min, standing
    faults (active > 24 h), chattering faults (≥ 3 changes within a minute in the last hour)."""
    from api.notifications.models import TeamAlert

    now = now or timezone.now()
    faults = faults_visible_to(user)
    per_team = (
        TeamAlert.objects.filter(
            organisation_id=user.organisation_id,
            event="fault.alert",
            created_at__gte=now - timedelta(minutes=10),
        )
        .values("team_id", "team__name")
        .annotate(count=Count("id"))
        .order_by("-count", "team__name")
    )
    standing = faults.filter(
        state__in=(FaultStateKind.ACTIVE_UNACK, FaultStateKind.ACTIVE_ACK),
        condition_active=True,
        raised_at__lt=now - STANDING_AFTER,
    )
    chattering_ids = (
        FaultEvent.objects.filter(
            fault__in=faults, kind__in=LIFECYCLE_KINDS, at__gte=now - timedelta(hours=1)
        )
        .order_by()
        .annotate(minute=TruncMinute("at"))
        .values("fault_id", "minute")
        .annotate(changes=Count("id"))
        .filter(changes__gte=CHATTER_CHANGES)
        .values_list("fault_id", flat=True)
        .distinct()
    )
    return {
        "at": now,
        "alarms_per_team_10_min": [
            {"team": row["team_id"], "team_name": row["team__name"], "count": row["count"]}
            for row in per_team
        ],
        "standing": standing.count(),
        "standing_ids": list(standing.values_list("id", flat=True)[:100]),
        "chattering": len(set(chattering_ids)),
        "chattering_ids": list(set(chattering_ids))[:100],
        "open": faults.filter(state__in=OPEN_STATES).count(),
    }
