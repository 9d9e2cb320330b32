"""Cost of the consent check on the ingest path, and of a retention run.

Fills its own database with DWELLINGS homes (a lease in force, one unit each, a decision on
every purpose for a third of them), then times `telemetry_devices_allowed` and
`telemetry_dwellings_allowed` for batches of 500 units (the ingest batch size) with an empty
cache and a warm one, and a dry and a real
`retention_run` on that data (nothing expired: the cost of looking).

Run: .venv/bin/python bench/privacy_purposes.py [--dwellings 5000]
     (BENCH_DATABASE_URL overrides postgres://postgres@127.0.0.1:5432/palier_bench_purposes;
     the cache is the one REDIS_URL names)
"""

import argparse
import os
import statistics
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

from harness import ensure_database

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DATABASE_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/palier_bench_purposes"
)
os.environ["DATABASE_URL"] = DATABASE_URL
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "api.config.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")

SLUG = "bench-purposes"
BATCH = 500


def fill(count: int) -> list[int]:
    """Homes, leases, units and decisions; returns the units' primary keys."""
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from api.estate import models as estate
    from api.telemetry.models import Device

    user_model = get_user_model()
    existing = estate.Organisation.objects.filter(slug=SLUG).first()
    if existing is not None and Device.objects.filter(organisation=existing).count() >= count:
        return list(
            Device.objects.filter(organisation=existing).order_by("pk").values_list("pk", flat=True)
        )[:count]
    organisation, _ = estate.Organisation.objects.get_or_create(slug=SLUG, name="Bench")
    agency = estate.Agency.objects.create(organisation=organisation, name=f"A{uuid.uuid4().hex}")
    residence = estate.Residence.objects.create(
        organisation=organisation, agency=agency, reference=uuid.uuid4().hex[:12], name="R"
    )
    building = estate.Building.objects.create(
        organisation=organisation, residence=residence, reference="B"
    )
    entrance = estate.Entrance.objects.create(
        organisation=organisation, building=building, reference="E"
    )
    tag = uuid.uuid4().hex[:6]
    dwellings = estate.Dwelling.objects.bulk_create(
        estate.Dwelling(organisation=organisation, entrance=entrance, reference=f"{tag}-{i}")
        for i in range(count)
    )
    start = timezone.localdate() - timedelta(days=365)
    leases = estate.Lease.objects.bulk_create(
        estate.Lease(
            organisation=organisation, dwelling=d, reference=f"{tag}-{i}", start_date=start
        )
        for i, d in enumerate(dwellings)
    )
    people = user_model.objects.bulk_create(
        user_model(organisation=organisation, role="tenant", phone=f"+3367{tag[:2]}{i:05d}")
        for i, _ in enumerate(leases)
    )
    estate.HouseholdMember.objects.bulk_create(
        estate.HouseholdMember(lease=lease, person=person, relation="holder")
        for lease, person in zip(leases, people, strict=True)
    )
    equipment = estate.Equipment.objects.bulk_create(
        estate.Equipment(organisation=organisation, dwelling=d, kind="individual_boiler")
        for d in dwellings
    )
    devices = Device.objects.bulk_create(
        Device(
            organisation=organisation,
            device_id=f"hx-{tag}{i:06d}",
            kind="heating",
            equipment=e,
            password_hash="",  # never connects
        )
        for i, e in enumerate(equipment)
    )
    now = timezone.now()
    estate.TelemetryConsent.objects.bulk_create(
        estate.TelemetryConsent(
            organisation=organisation,
            lease=lease,
            purpose=purpose,
            granted=purpose == "comfort_statistics",
            channel="app",
            decided_at=now,
            person=person,
            recorded_by=person,
        )
        for index, (lease, person) in enumerate(zip(leases, people, strict=True))
        if index % 3 == 0
        for purpose in ("fault_detection", "comfort_statistics")
    )
    return [device.pk for device in devices]


def timed(func, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        func()
        times.append((time.perf_counter() - started) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dwellings", type=int, default=5000)
    args = parser.parse_args()
    ensure_database(DATABASE_URL)

    import django

    django.setup()
    from django.core.cache import cache
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from api.privacy.consent import telemetry_devices_allowed, telemetry_dwellings_allowed
    from api.privacy.retention import retention_run
    from api.telemetry.models import Device

    device_ids = fill(args.dwellings)
    batches = [device_ids[i : i + BATCH] for i in range(0, len(device_ids), BATCH)]

    def cold():
        cache.clear()
        telemetry_devices_allowed(batches[0], "fault_detection")

    def warm():
        telemetry_devices_allowed(batches[0], "fault_detection")

    dwellings = list(
        Device.objects.filter(pk__in=batches[0]).values_list("equipment__dwelling_id", flat=True)
    )

    def report(name: str, func, repeat: int) -> None:
        ms = timed(func, repeat)
        print(f"{name:48} median {statistics.median(ms):6.1f} ms, max {max(ms):6.1f} ms")

    def comfort():
        telemetry_dwellings_allowed(dwellings, "comfort_statistics")

    print(f"{len(device_ids)} homes, batches of {BATCH} units")
    report("devices, fault_detection, cache empty", cold, 10)
    warm()
    report("devices, fault_detection, cache warm", warm, 30)
    comfort()
    report(
        "dwellings, fault_detection, cache warm",
        lambda: telemetry_dwellings_allowed(dwellings, "fault_detection"),
        30,
    )
    report("dwellings, comfort_statistics, cache warm", comfort, 30)
    started = time.perf_counter()
    report = retention_run(dry_run=True)
    print(
        f"retention_run dry: {(time.perf_counter() - started) * 1000:.0f} ms, "
        f"{report.total} row(s) would go"
    )
    started = time.perf_counter()
    report = retention_run()
    print(f"retention_run: {(time.perf_counter() - started) * 1000:.0f} ms, {report.total} row(s)")


if __name__ == "__main__":
    main()
