"""Import time of a 26,000-dwelling property register into PostgreSQL (goal: under 60 s).

Generates the CSV, then times a dry run, the first import (every row new), a re-import of the
same file (every row unchanged) and an import where every dwelling changed. Uses its own
database (created and migrated if needed) so it never touches another one.

Run: .venv/bin/python bench/import_estate.py [--dwellings 26000]
     (BENCH_DATABASE_URL overrides postgres://postgres@127.0.0.1:5432/palier_bench_estate)
"""

import argparse
import csv
import os
import sys
import tempfile
import time
from pathlib import Path

from harness import ensure_database

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DATABASE_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/palier_bench_estate"
)
os.environ["DATABASE_URL"] = DATABASE_URL
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "api.config.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")

SLUG = "bench"
DWELLINGS_PER_ENTRANCE = 25
ENTRANCES_PER_BUILDING = 2
BUILDINGS_PER_RESIDENCE = 2
AGENCIES = 8


def write_register(path: Path, dwellings: int, *, surface_bonus: int = 0) -> None:
    """A realistic register: residences of 2 buildings, 2 entrances each, 25 dwellings each."""
    per_residence = DWELLINGS_PER_ENTRANCE * ENTRANCES_PER_BUILDING * BUILDINGS_PER_RESIDENCE
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            [
                "organisation",
                "agency",
                "residence_reference",
                "residence_name",
                "residence_address",
                "residence_postcode",
                "residence_city",
                "residence_priority_neighbourhood",
                "building_reference",
                "entrance_reference",
                "dwelling_reference",
                "floor",
                "door",
                "type",
                "surface_m2",
            ]
        )
        for n in range(dwellings):
            residence = n // per_residence
            building = n // (DWELLINGS_PER_ENTRANCE * ENTRANCES_PER_BUILDING) % 2
            entrance = n // DWELLINGS_PER_ENTRANCE % 2
            position = n % DWELLINGS_PER_ENTRANCE
            writer.writerow(
                [
                    SLUG,
                    f"Agence {residence % AGENCIES + 1}",
                    f"R{residence:04d}",
                    f"Résidence {residence}",
                    f"{residence % 90 + 1} avenue de la République",
                    f"93{residence % 100:03d}",
                    "Saint-Denis",
                    "oui" if residence % 5 == 0 else "non",
                    f"R{residence:04d}-B{building + 1}",
                    str(entrance + 1),
                    f"LGT{n:07d}",
                    position // 5,
                    f"{position // 5}{position % 5 + 1:02d}",
                    f"T{position % 6 + 1}",
                    f"{45 + position % 6 * 11 + surface_bonus},5",
                ]
            )


def clear_bench_organisation() -> None:
    """Start from an empty register for the bench organisation."""
    from api.estate.models import (
        Agency,
        Building,
        Dwelling,
        Entrance,
        EstateEvent,
        Organisation,
        Residence,
    )

    organisation, _ = Organisation.objects.get_or_create(slug=SLUG, defaults={"name": "Bench"})
    for model in (Dwelling, Entrance, Building, Residence, Agency, EstateEvent):
        model.objects.filter(organisation=organisation).delete()


def timed_import(path: Path, *, dry_run: bool):
    from api.estate.services import estate_register_import

    started, cpu_started = time.perf_counter(), time.process_time()
    report = estate_register_import(content=path.read_bytes(), file_format="csv", dry_run=dry_run)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    if not report.ok:
        raise SystemExit(f"import failed: {report.problems[:5]}")
    return elapsed, cpu, report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dwellings", type=int, default=26_000)
    args = parser.parse_args()

    ensure_database(DATABASE_URL)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    clear_bench_organisation()

    with tempfile.TemporaryDirectory() as tmp:
        first = Path(tmp) / "register.csv"
        changed = Path(tmp) / "register-changed.csv"
        write_register(first, args.dwellings)
        write_register(changed, args.dwellings, surface_bonus=1)
        size = first.stat().st_size / 1e6
        print(f"register: {args.dwellings} dwellings, {size:.1f} MB CSV, database {DATABASE_URL}")

        runs = [
            ("dry run (all new)", first, True),
            ("first import", first, False),
            ("re-import, unchanged", first, False),
            ("import, every dwelling changed", changed, False),
        ]
        slowest = 0.0
        for label, path, dry_run in runs:
            elapsed, cpu, report = timed_import(path, dry_run=dry_run)
            slowest = max(slowest, elapsed)
            totals = ", ".join(f"{k} {v}" for k, v in report.totals.items() if v)
            rate = args.dwellings / elapsed
            print(
                f"{label:32s} {elapsed:6.1f} s  {rate:7.0f} rows/s  "
                f"(Python CPU {cpu:5.1f} s; {totals})"
            )

    load = os.getloadavg()[0]
    goal = "met" if slowest < 60 else "MISSED"
    print(f"slowest import {slowest:.1f} s: goal < 60 s {goal} (load average {load:.1f})")


if __name__ == "__main__":
    main()
