"""Writes of the telemetry app: devices and their credentials, device state, retention.

The ingest path itself (MQTT batches → readings) is in api.telemetry.ingest.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
from base64 import b32encode
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import unquote, urlparse

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from api.core.exceptions import ServiceError
from api.core.roles import Role
from devices import credentials

from . import storage
from .ingest import IngestResult, ingest_batch, quarantine_batch
from .models import (
    Device,
    DeviceEvent,
    DeviceEventKind,
    DeviceKind,
    DeviceStatus,
    Quarantine,
    QuarantineCounter,
)

logger = logging.getLogger(__name__)

__all__ = [
    "IngestResult",
    "device_password_rotate",
    "device_provision",
    "device_revoke",
    "devices_mark_silent_offline",
    "ingest_batch",
    "mqtt_credential_files_write",
    "quarantine_batch",
    "reading_aggregates_update",
    "reading_partitions_prepare",
    "telemetry_purge",
]

DEVICE_ADMIN_ROLES = frozenset({Role.TECHNICIAN, Role.MANAGER, Role.ADMIN})
DEVICE_ID_PREFIXES = {DeviceKind.HEATING: "hx-", DeviceKind.VENTILATION: "vx-"}
EQUIPMENT_KINDS = {
    DeviceKind.HEATING: ("individual_boiler", "heating_substation", "radiator_thermostat"),
    DeviceKind.VENTILATION: ("ventilation_unit", "collective_ventilation"),
}
DEV_BRIDGE_USERNAME = "palier-bridge"
DEV_BRIDGE_PASSWORD = "palier-bridge-dev-password"  # noqa: S105 - development only
OFFLINE_AFTER_INTERVALS = 3


def new_device_id(kind: str) -> str:
    """A short random id, safe in URLs, MQTT topics and ACL lines: `hx-` + 10 base32 chars."""
    return DEVICE_ID_PREFIXES[kind] + b32encode(secrets.token_bytes(7)).decode()[:10].lower()


def new_device_password() -> str:
    """A random MQTT password (192 bits)."""
    return secrets.token_urlsafe(24)


@transaction.atomic
def device_provision(
    *,
    organisation,
    kind: str,
    equipment,
    model: str = "",
    firmware: str = "",
    reporting_interval_s: int = 60,
    actor=None,
) -> tuple[Device, str]:
    """Register a unit on a piece of equipment; return it with its password (shown only once)."""
    if kind not in DeviceKind.values:
        raise ServiceError("Unknown device kind.", field="kind", code="invalid_choice")
    if actor is not None and actor.role not in DEVICE_ADMIN_ROLES:
        raise ServiceError(
            "You may not provision devices.", code="permission_denied", status_code=403
        )
    if equipment.organisation_id != organisation.id:
        raise ServiceError("Not found.", field="equipment", code="not_found")
    if equipment.kind not in EQUIPMENT_KINDS[kind]:
        raise ServiceError(
            f"A {kind} unit cannot measure this equipment ({equipment.kind}).",
            field="equipment",
            code="wrong_equipment",
        )
    if not 5 <= reporting_interval_s <= 86_400:
        raise ServiceError(
            "The reporting interval must be between 5 s and one day.",
            field="reporting_interval_s",
        )
    password = new_device_password()
    while True:
        device_id = new_device_id(kind)
        if not Device.objects.filter(device_id=device_id).exists():
            break
    device = Device.objects.create(
        device_id=device_id,
        organisation=organisation,
        kind=kind,
        model=model[:64],
        firmware=firmware[:64],
        equipment=equipment,
        password_hash=credentials.hash_password(password),
        reporting_interval_s=reporting_interval_s,
    )
    DeviceEvent.objects.create(
        device=device,
        kind=DeviceEventKind.PROVISIONED,
        at=timezone.now(),
        actor=actor,
        detail={"equipment": str(equipment.pk)},
    )
    transaction.on_commit(mqtt_credential_files_write)
    return device, password


@transaction.atomic
def device_password_rotate(*, device: Device, actor=None) -> str:
    """Give a unit a new password (returned once); the old one stops working at once."""
    if actor is not None and actor.role not in DEVICE_ADMIN_ROLES:
        raise ServiceError(
            "You may not change device credentials.", code="permission_denied", status_code=403
        )
    device = Device.objects.select_for_update().get(pk=device.pk)
    if device.status == DeviceStatus.REVOKED:
        raise ServiceError("This device is revoked.", code="revoked", status_code=409)
    password = new_device_password()
    device.password_hash = credentials.hash_password(password)
    device.save(update_fields=["password_hash", "updated_at"])
    DeviceEvent.objects.create(
        device=device,
        kind=DeviceEventKind.CREDENTIALS,
        at=timezone.now(),
        actor=actor,
    )
    transaction.on_commit(mqtt_credential_files_write)
    return password


@transaction.atomic
def device_revoke(*, device: Device, actor=None) -> Device:
    """Withdraw a unit's credentials: the broker refuses it and ingest ignores it from now on."""
    if actor is not None and actor.role not in DEVICE_ADMIN_ROLES:
        raise ServiceError("You may not revoke devices.", code="permission_denied", status_code=403)
    device = Device.objects.select_for_update().get(pk=device.pk)
    if device.status == DeviceStatus.REVOKED:
        return device
    now = timezone.now()
    device.status = DeviceStatus.REVOKED
    device.status_changed_at = now
    device.revoked_at = now
    device.save(update_fields=["status", "status_changed_at", "revoked_at", "updated_at"])
    DeviceEvent.objects.create(device=device, kind=DeviceEventKind.REVOKED, at=now, actor=actor)
    transaction.on_commit(mqtt_credential_files_write)
    return device


# --- Broker credentials ----------------------------------------------------------------------


def bridge_credentials() -> tuple[str, str]:
    """The bridge's MQTT username and password: from MQTT_URL, or fixed ones in development."""
    url = urlparse(settings.MQTT_URL)
    if url.username:
        return unquote(url.username), unquote(url.password or "")
    if settings.PRODUCTION:
        raise ServiceError(
            "MQTT_URL must carry the bridge's username and password in production.",
            code="misconfigured",
        )
    return DEV_BRIDGE_USERNAME, DEV_BRIDGE_PASSWORD


def mqtt_credentials_dir() -> Path:
    return Path(settings.VAR_DIR) / "mqtt"


def mqtt_credential_files_write(out_dir: Path | str | None = None) -> tuple[Path, Path]:
    """Rewrite the broker's password and ACL files from the registry; reload Mosquitto.

    Each file is replaced in one rename, so a broker never reads half of one. Mosquitto runs
    as another user in its container, hence files readable by all: the password file holds
    only PBKDF2 hashes of long random secrets.
    """
    directory = Path(out_dir) if out_dir else mqtt_credentials_dir()
    bridge_username, bridge_password = bridge_credentials()
    active = list(
        Device.objects.exclude(status=DeviceStatus.REVOKED)
        .order_by("device_id")
        .values_list("device_id", "password_hash", "organisation__slug")
    )
    entries = [(bridge_username, credentials.hash_password(bridge_password))]
    entries += [(device_id, password_hash) for device_id, password_hash, _fleet in active]
    passwd = credentials.render_passwd(entries)
    acl = credentials.render_acl(
        [(device_id, fleet) for device_id, _hash, fleet in active],
        bridge_username=bridge_username,
    )
    passwd_path, acl_path = directory / "passwd", directory / "acl"
    credentials.write_atomically(acl_path, acl, mode=0o644)
    credentials.write_atomically(passwd_path, passwd, mode=0o644)
    _reload_mosquitto()
    return passwd_path, acl_path


def _reload_mosquitto() -> None:
    """SIGHUP a local Mosquitto (settings.MOSQUITTO_PID_FILE) so it re-reads its files."""
    pid_file = getattr(settings, "MOSQUITTO_PID_FILE", "")
    if not pid_file:
        return
    try:
        pid = int(Path(pid_file).read_text().strip())
        os.kill(pid, signal.SIGHUP)
    except (OSError, ValueError) as error:
        logger.warning("could not reload Mosquitto from %s: %s", pid_file, error)


# --- Device state ----------------------------------------------------------------------------


def devices_mark_silent_offline(*, now: datetime | None = None, chunk: int = 500) -> int:
    """Mark online units silent for 3 reporting intervals as offline, each with an event.

    The change is dated when the silence passed the limit, not when it was noticed, so that
    messages which were already on their way (an ingest backlog) bring the unit back online.
    """
    now = now or timezone.now()
    # A coarse SQL filter with the shortest allowed interval, then the exact test per device.
    horizon = now - timedelta(seconds=OFFLINE_AFTER_INTERVALS * 5)
    marked = 0
    last_id = 0
    while True:
        with transaction.atomic():
            devices = list(
                Device.objects.select_for_update(skip_locked=True)
                .filter(status=DeviceStatus.ONLINE, last_seen_at__lt=horizon, id__gt=last_id)
                .order_by("id")[:chunk]
            )
            if not devices:
                return marked
            last_id = devices[-1].id
            events = []
            for device in devices:
                limit = timedelta(seconds=OFFLINE_AFTER_INTERVALS * device.reporting_interval_s)
                if device.last_seen_at + limit > now:
                    continue
                at = device.last_seen_at + limit
                device.status = DeviceStatus.OFFLINE
                device.status_changed_at = at
                device.updated_at = now
                device.save(update_fields=["status", "status_changed_at", "updated_at"])
                events.append(
                    DeviceEvent(
                        device=device,
                        kind=DeviceEventKind.OFFLINE,
                        at=at,
                        detail={
                            "reason": "silent",
                            "last_seen_at": device.last_seen_at.isoformat(),
                            "intervals": OFFLINE_AFTER_INTERVALS,
                        },
                    )
                )
            DeviceEvent.objects.bulk_create(events)
            marked += len(events)


def reading_aggregates_update(*, chunk: int = 200) -> int:
    """Bring the hourly aggregates up to date for every unit with new readings; return units.

    A unit is locked while its hours are recomputed (skipping units an ingest holds), so a
    batch committed meanwhile keeps the unit marked and is aggregated on the next run.
    """
    done = 0
    while True:
        with transaction.atomic():
            dirty = dict(
                Device.objects.select_for_update(skip_locked=True)
                .filter(aggregate_dirty_since__isnull=False)
                .order_by("id")
                .values_list("id", "aggregate_dirty_since")[:chunk]
            )
            if not dirty:
                return done
            storage.recompute_hours(dirty)
            Device.objects.filter(id__in=list(dirty)).update(aggregate_dirty_since=None)
            done += len(dirty)
        if len(dirty) < chunk:
            return done


def reading_partitions_prepare(*, now: datetime | None = None, days_ahead: int = 7) -> None:
    """Create the reading partitions of the coming days, so ingest never has to."""
    today = storage.utc_day(now or timezone.now())
    storage.ensure_partitions(today + timedelta(days=offset) for offset in range(-1, days_ahead))


def telemetry_purge(*, now: datetime | None = None) -> dict:
    """Apply retention: raw readings, hourly aggregates, quarantined messages."""
    now = now or timezone.now()
    raw_cutoff = now - timedelta(days=settings.TELEMETRY_RAW_RETENTION_DAYS)
    hour_cutoff = now - timedelta(days=settings.TELEMETRY_AGGREGATE_RETENTION_DAYS)
    quarantine_cutoff = now - timedelta(days=settings.TELEMETRY_QUARANTINE_RETENTION_DAYS)
    readings = storage.purge_readings(raw_cutoff)
    hours = storage.purge_hours(hour_cutoff)
    quarantined = 0
    while True:
        with transaction.atomic():
            rows = list(
                Quarantine.objects.filter(received_at__lt=quarantine_cutoff)
                .order_by("id")
                .values_list("id", "received_at", "reason")[:5000]
            )
            if not rows:
                break
            _quarantine_counters_add(rows)
            quarantined += Quarantine.objects.filter(id__in=[r[0] for r in rows]).delete()[0]
    return {"readings": readings, "hours": hours, "quarantined": quarantined}


def _quarantine_counters_add(rows: list[tuple]) -> None:
    """Fold quarantine rows about to be purged into the per-day, per-reason counters."""
    counts: dict[tuple, int] = {}
    for _id, received_at, reason in rows:
        key = (timezone.localdate(received_at), reason)
        counts[key] = counts.get(key, 0) + 1
    for (day, reason), count in sorted(counts.items()):
        counter, _ = QuarantineCounter.objects.select_for_update().get_or_create(
            day=day, reason=reason
        )
        counter.count = F("count") + count
        counter.save(update_fields=["count"])
