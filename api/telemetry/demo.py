"""Demo units for `palier run`: a boiler unit in ~20 demo dwellings, a VMC unit in every other
one, their broker credentials and the simulator's fleet file (development only)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from urllib.parse import urlparse

from django.conf import settings

from devices import credentials

from . import services
from .models import Device, DeviceStatus

logger = logging.getLogger(__name__)

DEMO_DWELLINGS = 20
EQUIPMENT_FOR_KIND = {"heating": "individual_boiler", "ventilation": "ventilation_unit"}


def fleet_file_path() -> Path:
    return Path(settings.VAR_DIR) / "simulator-fleet.json"


def _demo_dwellings(organisation, tenant_phone: str) -> list:
    """The demo tenant's home first (so their app shows readings), then by reference."""
    from api.accounts.models import User
    from api.estate import selectors as estate_selectors
    from api.estate.models import Dwelling

    first = []
    tenant = User.objects.filter(phone=tenant_phone, organisation=organisation).first()
    if tenant is not None:
        first = list(estate_selectors.current_household_dwellings(tenant))
    others = (
        Dwelling.objects.filter(organisation=organisation)
        .exclude(id__in=[d.id for d in first])
        .order_by("reference")
    )
    dwellings = first + list(others[: max(0, DEMO_DWELLINGS - len(first))])
    return list(
        Dwelling.objects.filter(id__in=[d.id for d in dwellings])
        .select_related("entrance__building")
        .order_by("reference")
    )


def _equipment(dwelling, kind: str, admin):
    """The dwelling's boiler or VMC, registered through the estate when it has none yet."""
    from api.estate.models import Equipment
    from api.estate.services import equipment_create

    found = (
        Equipment.objects.filter(dwelling=dwelling, kind__in=services.EQUIPMENT_KINDS[kind])
        .order_by("created_at")
        .first()
    )
    if found is not None:
        return found
    make, model = (
        ("Saunier Duval", "ThemaPlus Condens") if kind == "heating" else ("Aldes", "EasyHOME")
    )
    return equipment_create(
        actor=admin, kind=EQUIPMENT_FOR_KIND[kind], make=make, model=model, dwelling=dwelling
    )


def _known_passwords() -> dict[str, str]:
    """Passwords from a previous fleet file, so that re-seeding keeps the simulator working."""
    try:
        data = json.loads(fleet_file_path().read_text())
        return {d["device_id"]: d["password"] for d in data.get("devices", [])}
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return {}


def seed_demo_devices(*, organisation, admin, tenant_phone: str) -> int:
    """Provision the demo units (idempotent) and write the simulator's fleet file."""
    if settings.PRODUCTION:
        return 0
    known = _known_passwords()
    entries = []
    for index, dwelling in enumerate(_demo_dwellings(organisation, tenant_phone)):
        kinds = ["heating"] + (["ventilation"] if index % 2 == 0 else [])
        for kind in kinds:
            equipment = _equipment(dwelling, kind, admin)
            device = (
                Device.objects.filter(equipment=equipment)
                .exclude(status=DeviceStatus.REVOKED)
                .first()
            )
            if device is None:
                device, password = services.device_provision(
                    organisation=organisation,
                    kind=kind,
                    equipment=equipment,
                    model="PX-1" if kind == "heating" else "VX-1",
                    reporting_interval_s=60,
                )
            else:
                password = known.get(device.device_id, "")
                if not credentials.verify_password(password, device.password_hash):
                    password = services.device_password_rotate(device=device)
            entries.append(
                {
                    "device_id": device.device_id,
                    "username": device.device_id,
                    "password": password,
                    "fleet": organisation.slug,
                    "topic_prefix": device.topic_prefix,
                    "kind": kind,
                    "building": dwelling.entrance.building.reference,
                    "dwelling": dwelling.reference,
                }
            )
    url = urlparse(settings.MQTT_URL)
    fleet = {
        "broker": f"mqtt://{url.hostname or '127.0.0.1'}:{url.port or 1883}",
        "devices": entries,
    }
    credentials.write_atomically(fleet_file_path(), json.dumps(fleet, indent=2), mode=0o600)
    services.mqtt_credential_files_write()
    return len(entries)
