"""Consent and purposes for in-home telemetry: what each household accepts, per lease.

Two purposes, decided separately. `fault_detection` (safety and repairs) rests on the landlord's
duty to keep heating and ventilation working (loi du 6 juillet 1989, art. 6) and is on until the
household objects; `comfort_statistics` (energy and comfort statistics) rests on consent and is
off until the household accepts. A dwelling without a lease in force has no household: its
readings are about equipment only and every purpose is allowed.

Whoever uses readings for a purpose (the fault engine, the aggregates for statistics) asks
`telemetry_purposes_allowed(dwelling_ids)`; the answer is cached at most CACHE_SECONDS and
dropped as soon as a decision is recorded, so a withdrawal stops that use within a minute.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from api.core.exceptions import ServiceError
from api.core.roles import Role
from api.estate import selectors as estate_selectors
from api.estate.models import (
    ConsentChannel,
    EstateEventKind,
    Lease,
    TelemetryConsent,
    TelemetryPurpose,
)
from api.estate.services import DELEGATION_START_TOLERANCE, estate_event_record
from api.telemetry.models import Device, DeviceStatus
from api.telemetry.vocabulary import (
    KIND_LABELS,
    LABELS,
    NAME_PURPOSES,
    PURPOSE_TEXTS,
    RETENTION_TEXTS,
    UNITS,
    WHO_SEES,
    in_language,
    names_for_kind,
)

from .retention import retention_periods

CACHE_SECONDS = 60
CACHE_PREFIX = "privacy:purposes:"
STAFF_CHANNELS = frozenset({ConsentChannel.PAPER, ConsentChannel.PHONE, ConsentChannel.IN_PERSON})
RECORDER_STAFF_ROLES = frozenset({Role.AGENCY_STAFF, Role.MANAGER, Role.ADMIN})


@dataclass(frozen=True)
class Purpose:
    """What a purpose is for, its legal basis, its default and what stops without it."""

    key: str
    default_allowed: bool
    legal_basis: str
    uses: str
    without: str
    labels: dict[str, str]


PURPOSES: dict[str, Purpose] = {
    TelemetryPurpose.FAULT_DETECTION: Purpose(
        key=TelemetryPurpose.FAULT_DETECTION,
        default_allowed=True,
        legal_basis=(
            "Legitimate interest and the landlord's duty to keep heating and ventilation in "
            "working order (loi n° 89-462 du 6 juillet 1989, art. 6; décret n° 2002-120 on "
            "decent housing); the household may object at any time (RGPD art. 21)."
        ),
        uses=(
            "The fault rules read the unit's readings to open a fault and a repair request, "
            "and the unit's detail and charts are shown to maintenance staff."
        ),
        without=(
            "No fault is detected from the readings of the unit: no automatic repair request, "
            "no alert to the on-call team, and staff no longer see its charts. The unit still "
            "reports that it is online (needed to know it works) and the household can still "
            "report a fault by hand."
        ),
        labels={
            "fr": "Détection des pannes (sécurité et réparations)",
            "en": "Fault detection (safety and repairs)",
        },
    ),
    TelemetryPurpose.COMFORT_STATISTICS: Purpose(
        key=TelemetryPurpose.COMFORT_STATISTICS,
        default_allowed=False,
        legal_basis="Consent of the household (RGPD art. 6.1.a), withdrawable at any time.",
        uses=(
            "Hourly averages of room temperature, humidity and CO2 enter the residence's "
            "comfort and energy statistics."
        ),
        without=(
            "The home's readings are left out of every comfort or energy statistic; repairs "
            "and fault detection are unaffected."
        ),
        labels={
            "fr": "Statistiques de confort et d'énergie",
            "en": "Comfort and energy statistics",
        },
    ),
}


def _cache_key(dwelling_id) -> str:
    return f"{CACHE_PREFIX}{dwelling_id}"


def _defaults() -> dict[str, bool]:
    return {key: purpose.default_allowed for key, purpose in PURPOSES.items()}


def _everything() -> dict[str, bool]:
    return dict.fromkeys(PURPOSES, True)


def current_decisions(lease_ids: Iterable) -> dict:
    """The decision in force per (lease id, purpose): the newest recorded row."""
    newest: dict = {}
    rows = (
        TelemetryConsent.objects.filter(lease_id__in=list(lease_ids))
        .order_by("lease_id", "purpose", "-decided_at", "-created_at")
        .values_list("lease_id", "purpose", "granted")
    )
    for lease_id, purpose, granted in rows:
        newest.setdefault((lease_id, purpose), granted)
    return newest


def _compute(dwelling_ids: list) -> dict:
    today = timezone.localdate()
    leases = dict(
        Lease.objects.filter(estate_selectors.current_lease_q(today), dwelling_id__in=dwelling_ids)
        .order_by("dwelling_id", "-start_date")
        .values_list("dwelling_id", "id")
    )
    decisions = current_decisions(leases.values())
    result = {}
    for dwelling_id in dwelling_ids:
        lease_id = leases.get(dwelling_id)
        if lease_id is None:
            result[dwelling_id] = _everything()
            continue
        allowed = _defaults()
        for purpose in PURPOSES:
            if (lease_id, purpose) in decisions:
                allowed[purpose] = decisions[(lease_id, purpose)]
        result[dwelling_id] = allowed
    return result


def telemetry_purposes_allowed(dwelling_ids: Iterable) -> dict:
    """{dwelling id: {purpose: allowed}} for the households living there today (cached ≤ 60 s)."""
    ids = list(dict.fromkeys(dwelling_ids))
    if not ids:
        return {}
    keys = {_cache_key(dwelling_id): dwelling_id for dwelling_id in ids}
    cached = cache.get_many(list(keys))
    result = {keys[key]: value for key, value in cached.items()}
    missing = [dwelling_id for dwelling_id in ids if dwelling_id not in result]
    if missing:
        computed = _compute(missing)
        cache.set_many(
            {_cache_key(dwelling_id): value for dwelling_id, value in computed.items()},
            timeout=CACHE_SECONDS,
        )
        result.update(computed)
    return result


def telemetry_purpose_allowed(dwelling_id, purpose: str) -> bool:
    """Whether the household of a dwelling allows one purpose (True for common areas)."""
    if dwelling_id is None:
        return True
    return telemetry_purposes_allowed([dwelling_id])[dwelling_id][purpose]


def dwellings_refusing(purpose: str) -> frozenset:
    """Dwellings whose household in force turned off a purpose that is on by default (cached
    ≤ 60 s): one cache read answers for a whole ingest batch."""
    key = f"{CACHE_PREFIX}refusing:{purpose}"
    refusing = cache.get(key)
    if refusing is None:
        today = timezone.localdate()
        newest: dict = {}
        rows = (
            TelemetryConsent.objects.filter(
                estate_selectors.current_lease_q(today, "lease__"), purpose=purpose
            )
            .order_by("lease_id", "-decided_at", "-created_at")
            .values_list("lease_id", "lease__dwelling_id", "granted")
        )
        for lease_id, dwelling_id, granted in rows:
            newest.setdefault(lease_id, (dwelling_id, granted))
        refusing = frozenset(dwelling for dwelling, granted in newest.values() if not granted)
        cache.set(key, refusing, timeout=CACHE_SECONDS)
    return refusing


def telemetry_dwellings_allowed(dwelling_ids: Iterable, purpose: str) -> set:
    """The dwellings (None: common areas) whose readings may serve `purpose`."""
    ids = set(dwelling_ids)
    if PURPOSES[purpose].default_allowed:
        return ids - dwellings_refusing(purpose)
    homes = [dwelling_id for dwelling_id in ids if dwelling_id is not None]
    allowed = telemetry_purposes_allowed(homes)
    return {d for d in ids if d is None or allowed[d][purpose]}


def telemetry_devices_allowed(device_ids: Iterable[int], purpose: str) -> set[int]:
    """The units (primary keys) whose readings may serve `purpose`: common-area units, and
    units in homes whose household allows it. Callers that know the units' dwellings call
    `telemetry_dwellings_allowed` and save the query."""
    dwelling_of = dict(
        Device.objects.filter(pk__in=list(device_ids)).values_list("pk", "equipment__dwelling_id")
    )
    allowed = telemetry_dwellings_allowed(dwelling_of.values(), purpose)
    return {device_id for device_id, dwelling_id in dwelling_of.items() if dwelling_id in allowed}


def purposes_cache_forget(dwelling_ids: Iterable) -> None:
    """Drop cached answers, so a decision applies at once (called after commit)."""
    cache.delete_many(
        [_cache_key(dwelling_id) for dwelling_id in dwelling_ids]
        + [f"{CACHE_PREFIX}refusing:{purpose}" for purpose in PURPOSES]
    )


# --- Reads for the household -----------------------------------------------------------------


def consent_leases(*, subject) -> QuerySet[Lease]:
    """Leases in force today that list the person as a household member."""
    if subject is None or not getattr(subject, "is_active", False):
        return Lease.objects.none()
    today = timezone.localdate()
    return (
        Lease.objects.filter(
            estate_selectors.current_lease_q(today),
            organisation_id=subject.organisation_id,
            members__person=subject,
        )
        .select_related("dwelling", "organisation")
        .distinct()
        .order_by("start_date", "reference")
    )


def consent_overview(*, subject, language: str = "fr") -> list[dict]:
    """For each lease in force of the person: each purpose, its state and the history."""
    leases = list(consent_leases(subject=subject))
    history: dict = {lease.id: [] for lease in leases}
    for row in TelemetryConsent.objects.filter(lease__in=leases).select_related(
        "person", "recorded_by"
    ):
        history[row.lease_id].append(row)
    overview = []
    for lease in leases:
        rows = history[lease.id]
        purposes = []
        for key, purpose in PURPOSES.items():
            newest = next((row for row in rows if row.purpose == key), None)
            purposes.append(
                {
                    "purpose": key,
                    "label": purpose.labels.get(language[:2], purpose.labels["fr"]),
                    "allowed": newest.granted if newest else purpose.default_allowed,
                    "by_default": newest is None,
                    "decided_at": newest.decided_at if newest else None,
                    "channel": newest.channel if newest else "",
                    "legal_basis": purpose.legal_basis,
                    "without": purpose.without,
                }
            )
        overview.append(
            {
                "lease": lease.id,
                "dwelling": lease.dwelling_id,
                "dwelling_reference": lease.dwelling.reference,
                "purposes": purposes,
                "history": [
                    {
                        "id": row.id,
                        "purpose": row.purpose,
                        "granted": row.granted,
                        "channel": row.channel,
                        "decided_at": row.decided_at,
                        "recorded_at": row.created_at,
                        "by_staff": row.recorded_by_id != row.person_id,
                    }
                    for row in rows
                ],
            }
        )
    return overview


# --- Writes ----------------------------------------------------------------------------------


@transaction.atomic
def telemetry_consent_record(
    *,
    actor,
    subject,
    purpose: str,
    granted: bool,
    channel: str,
    lease: Lease | None = None,
    decided_at: datetime | None = None,
    reason: str = "",
) -> TelemetryConsent:
    """Record a household's decision on one purpose of its home's telemetry."""
    if purpose not in PURPOSES:
        raise ServiceError("Unknown purpose.", code="invalid", field="purpose")
    if channel not in ConsentChannel.values:
        raise ServiceError("Unknown channel.", code="invalid", field="channel")
    by_staff = actor.pk != subject.pk and actor.role in RECORDER_STAFF_ROLES
    if actor.pk != subject.pk and not by_staff and actor.role != Role.TENANT:
        raise ServiceError("Your role cannot record consent.", code="permission_denied")
    if by_staff:
        if channel not in STAFF_CHANNELS:
            raise ServiceError(
                "Staff record a decision made on paper, by phone or in person.",
                code="invalid",
                field="channel",
            )
        if not reason.strip():
            raise ServiceError("Say why you record it.", code="required", field="reason")
    elif channel != ConsentChannel.APP:
        raise ServiceError(
            "A decision made in the app has the channel 'app'.", code="invalid", field="channel"
        )
    if subject.role != Role.TENANT:
        raise ServiceError("Only a household member decides.", code="permission_denied")

    leases = consent_leases(subject=subject)
    if lease is None:
        found = list(leases[:2])
        if len(found) != 1:
            raise ServiceError(
                "Say which lease." if found else "No lease in force for this person.",
                code="required" if found else "no_lease",
                field="lease",
            )
        lease = found[0]
    elif not leases.filter(pk=lease.pk).exists():
        raise ServiceError("No such lease in force for this person.", code="invalid", field="lease")
    # Lock the lease so two simultaneous decisions are ordered the same way everywhere.
    Lease.objects.select_for_update().filter(pk=lease.pk).first()

    now = timezone.now()
    decided_at = decided_at or now
    if decided_at > now + DELEGATION_START_TOLERANCE:
        raise ServiceError("A decision cannot be in the future.", field="decided_at")
    consent = TelemetryConsent.objects.create(
        organisation_id=lease.organisation_id,
        lease=lease,
        purpose=purpose,
        granted=granted,
        channel=channel,
        decided_at=min(decided_at, now),
        person=subject,
        recorded_by=actor,
        reason=reason.strip()[:500],
    )
    estate_event_record(
        organisation_id=lease.organisation_id,
        kind=EstateEventKind.CONSENT_RECORDED,
        subject=lease,
        actor=actor,
        on_behalf_of=subject if actor.pk != subject.pk else None,
        reason=reason,
        data={"purpose": purpose, "granted": granted, "channel": channel},
    )
    dwelling_id = lease.dwelling_id
    transaction.on_commit(lambda: purposes_cache_forget([dwelling_id]))
    return consent


# --- What the household's home sends, in plain language --------------------------------------

EVERY_TEXTS = {
    "fr": "Toutes les {n} {unit}.",
    "fr-falc": "Toutes les {n} {unit}.",
    "en": "Every {n} {unit}.",
}
MINUTES = {"fr": "minutes", "fr-falc": "minutes", "en": "minutes"}
SECONDS = {"fr": "secondes", "fr-falc": "secondes", "en": "seconds"}
AFTER_LEASE_TEXTS = {
    "fr": "Quand vous quittez le logement, vos mesures sont effacées {days} jours après la fin "
    "du bail ; le locataire suivant ne les voit jamais.",
    "fr-falc": "Quand vous partez, vos mesures sont effacées après {days} jours. "
    "Le locataire suivant ne les voit pas.",
    "en": "When you move out, your readings are deleted {days} days after your lease ends; "
    "the next tenant never sees them.",
}
STATE_TEXTS = {
    True: {"fr": "Autorisé", "fr-falc": "Oui", "en": "Allowed"},
    False: {"fr": "Refusé", "fr-falc": "Non", "en": "Not allowed"},
}


def _how_often(seconds: int, language: str) -> str:
    if seconds and seconds % 60 == 0:
        n, unit = seconds // 60, in_language(MINUTES, language)
    else:
        n, unit = seconds, in_language(SECONDS, language)
    return in_language(EVERY_TEXTS, language).format(n=n, unit=unit)


def my_home_data(*, user) -> dict:
    """For each unit in the tenant's home: what it sends, how often, who sees it, for how long,
    and what each purpose is allowed, in the tenant's language."""
    language = getattr(user, "language", "") or settings.LANGUAGE_CODE
    leases = list(consent_leases(subject=user)) if user.role == Role.TENANT else []
    allowed = telemetry_purposes_allowed([lease.dwelling_id for lease in leases])
    devices: dict = {}
    for device in (
        Device.objects.filter(equipment__dwelling__in=[lease.dwelling_id for lease in leases])
        .exclude(status=DeviceStatus.REVOKED)
        .select_related("equipment")
        .order_by("kind", "device_id")
    ):
        devices.setdefault(device.equipment.dwelling_id, []).append(device)
    periods = retention_periods(leases[0].organisation if leases else None)
    raw_days = settings.TELEMETRY_RAW_RETENTION_DAYS
    aggregate_days = settings.TELEMETRY_AGGREGATE_RETENTION_DAYS
    kept = " ".join(
        (
            in_language(RETENTION_TEXTS, language).format(raw=raw_days, aggregate=aggregate_days),
            in_language(AFTER_LEASE_TEXTS, language).format(
                days=periods["previous_tenant_readings"]
            ),
        )
    )
    who_sees = in_language(WHO_SEES, language)
    purpose_key = {"repairs": "fault_detection", "comfort": "comfort_statistics"}
    homes = []
    for lease in leases:
        units = []
        for device in devices.get(lease.dwelling_id, []):
            units.append(
                {
                    "device_id": device.device_id,
                    "kind": device.kind,
                    "label": in_language(KIND_LABELS[device.kind], language),
                    "sends": [
                        {
                            "name": name,
                            "label": in_language(LABELS[name], language),
                            "unit": UNITS[name],
                            "purposes": [purpose_key[p] for p in NAME_PURPOSES[name]],
                        }
                        for name in names_for_kind(device.kind)
                    ],
                    "every_seconds": device.reporting_interval_s,
                    "how_often": _how_often(device.reporting_interval_s, language),
                    "who_sees": who_sees,
                    "kept": kept,
                }
            )
        homes.append(
            {
                "lease": lease.id,
                "dwelling": lease.dwelling_id,
                "dwelling_reference": lease.dwelling.reference,
                "units": units,
                "purposes": [
                    {
                        "purpose": key,
                        "label": purpose.labels.get(language[:2], purpose.labels["fr"]),
                        "explanation": in_language(
                            PURPOSE_TEXTS[
                                "repairs" if key == TelemetryPurpose.FAULT_DETECTION else "comfort"
                            ],
                            language,
                        ),
                        "allowed": allowed[lease.dwelling_id][key],
                        "state": in_language(
                            STATE_TEXTS[allowed[lease.dwelling_id][key]], language
                        ),
                    }
                    for key, purpose in PURPOSES.items()
                ],
            }
        )
    return {
        "language": language,
        "homes": homes,
        "raw_retention_days": raw_days,
        "aggregate_retention_days": aggregate_days,
        "after_lease_days": periods["previous_tenant_readings"],
    }
