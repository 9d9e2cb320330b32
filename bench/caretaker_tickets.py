"""A caretaker's queue of 2,000 open requests: list latency (goal p95 < 100 ms) and query count.

Builds, in its own database, an organisation whose caretaker looks after 4 residences holding
2,000 open requests (and 500 closed ones), then times `GET /api/v1/tickets/?open=true` through
the whole Django stack in-process (middleware, JWT, DRF, serializers; no network), at the
default page size and at the largest one, plus a full delta sync of the caretaker's phone.
Prints p50/p95 and the number of SQL queries per request (which must not depend on the rows).

Run: .venv/bin/python bench/caretaker_tickets.py [--tickets 2000] [--runs 200]
     (BENCH_DATABASE_URL overrides postgres://postgres@127.0.0.1:5432/palier_bench_tickets)
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

from harness import ensure_database

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DATABASE_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/palier_bench_tickets"
)
os.environ["DATABASE_URL"] = DATABASE_URL
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "api.config.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")

SLUG = "bench-tickets"
RESIDENCES, BUILDINGS, ENTRANCES, DWELLINGS = 4, 2, 2, 25


def build_world(open_tickets: int):
    """The bench organisation, its caretaker and the requests; rebuilt on each run."""
    import datetime as dt
    import random

    from django.utils import timezone

    from api.accounts.models import User
    from api.estate.models import (
        Agency,
        Building,
        CaretakerAssignment,
        CommonArea,
        Contractor,
        Dwelling,
        Entrance,
        Organisation,
        Residence,
        Team,
    )
    from api.tickets.models import Category, Status, Ticket, TicketCounter

    organisation = Organisation.objects.filter(slug=SLUG).first()
    if organisation is not None:
        Ticket.objects.filter(organisation=organisation).delete()
        TicketCounter.objects.filter(organisation=organisation).delete()
        CaretakerAssignment.objects.filter(residence__organisation=organisation).delete()
        User.objects.filter(organisation=organisation).delete()
        for model in (
            CommonArea,
            Dwelling,
            Entrance,
            Building,
            Residence,
            Agency,
            Team,
            Contractor,
        ):
            model.objects.filter(organisation=organisation).delete()
    else:
        organisation = Organisation.objects.create(slug=SLUG, name="Bench")
    agency = Agency.objects.create(organisation=organisation, name="Agence Nord")
    caretaker = User.objects.create_user(
        phone="+33600009999", role="caretaker", organisation=organisation, first_name="Karim"
    )
    teams = [Team.objects.create(organisation=organisation, name=f"Équipe {n}") for n in range(3)]
    contractors = [
        Contractor.objects.create(organisation=organisation, name=f"Prestataire {n}", trade="other")
        for n in range(2)
    ]
    places = []
    for r in range(RESIDENCES):
        residence = Residence.objects.create(
            organisation=organisation,
            agency=agency,
            reference=f"R{r}",
            name=f"Résidence {r}",
            postcode="93200",
        )
        CaretakerAssignment.objects.create(caretaker=caretaker, residence=residence)
        for b in range(BUILDINGS):
            building = Building.objects.create(
                organisation=organisation, residence=residence, reference=f"B{b}"
            )
            for e in range(ENTRANCES):
                entrance = Entrance.objects.create(
                    organisation=organisation, building=building, reference=f"E{e}"
                )
                hall = CommonArea.objects.create(
                    organisation=organisation, entrance=entrance, kind="hall"
                )
                places.append(("common_area", hall, entrance))
                for d in range(DWELLINGS):
                    dwelling = Dwelling.objects.create(
                        organisation=organisation,
                        entrance=entrance,
                        reference=f"R{r}B{b}E{e}D{d}",
                        floor=d // 4,
                    )
                    places.append(("dwelling", dwelling, entrance))
    categories = list(Category.objects.filter(organisation__isnull=True, parent__isnull=False))
    statuses = [
        Status.NEW,
        Status.ACKNOWLEDGED,
        Status.SCHEDULED,
        Status.IN_PROGRESS,
        Status.WAITING,
        Status.REOPENED,
    ]
    rng = random.Random(7)
    now = timezone.now()
    rows = []
    for n in range(open_tickets + 500):
        kind, place, entrance = rng.choice(places)
        building = entrance.building
        created = now - dt.timedelta(hours=rng.randint(1, 24 * 60))
        rows.append(
            Ticket(
                organisation=organisation,
                reference=f"2026-{n:06d}",
                category=rng.choice(categories),
                priority=rng.choice(["low", "normal", "high", "urgent"]),
                source="tenant_app",
                status=rng.choice(statuses) if n < open_tickets else Status.CLOSED,
                place_kind=kind,
                residence=building.residence,
                building=building,
                entrance=entrance,
                dwelling=place if kind == "dwelling" else None,
                common_area=place if kind == "common_area" else None,
                description="Le problème revient tous les soirs depuis une semaine. " * 3,
                assigned_team=rng.choice([*teams, None]),
                assigned_contractor=rng.choice([*contractors, None, None]),
                acknowledge_due_at=created + dt.timedelta(hours=8),
                resolve_due_at=created + dt.timedelta(days=5),
            )
        )
    Ticket.objects.bulk_create(rows, batch_size=1000)
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")  # fresh statistics, as a live database has
    return caretaker


def measure(client, url: str, params: dict, runs: int) -> tuple[list[float], float, int, int]:
    """Timings (ms) of `runs` requests, their mean CPU time in this process (ms), the SQL
    queries of one request and the rows it returned."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for _ in range(10):
        client.get(url, params)
    timings = []
    cpu_started = time.process_time()
    for _ in range(runs):
        started = time.perf_counter()
        response = client.get(url, params)
        timings.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise SystemExit(f"{url}: HTTP {response.status_code} {response.content[:200]!r}")
    cpu = (time.process_time() - cpu_started) * 1000 / runs
    with CaptureQueriesContext(connection) as queries:
        body = client.get(url, params).json()
    rows = len(body["results"]) if "results" in body else len(body["tickets"]["changed"])
    return timings, cpu, len(queries.captured_queries), rows


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()

    ensure_database(DATABASE_URL)
    import django

    django.setup()
    from django.core.management import call_command
    from django.test.utils import setup_test_environment
    from rest_framework.test import APIClient
    from rest_framework_simplejwt.tokens import RefreshToken

    setup_test_environment()
    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    caretaker = build_world(args.tickets)
    print(
        f"world: {args.tickets} open + 500 closed requests in {RESIDENCES} residences "
        f"({time.perf_counter() - started:.1f} s to build), database {DATABASE_URL}"
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(caretaker).access_token}")

    cases = [
        ("list, open, default page (50)", "/api/v1/tickets/", {"open": "true"}),
        ("list, open, page_size=200", "/api/v1/tickets/", {"open": "true", "page_size": 200}),
        (
            "list, open, overdue first",
            "/api/v1/tickets/",
            {"open": "true", "ordering": "resolve_due_at"},
        ),
        ("sync, first page (500 per kind)", "/api/v1/sync/", {}),
    ]
    verdicts = []
    for label, url, params in cases:
        runs = args.runs if url.endswith("tickets/") else max(20, args.runs // 10)
        timings, cpu, queries, rows = measure(client, url, params, runs)
        p50, p95 = statistics.median(timings), percentile(timings, 0.95)
        print(
            f"{label:36s} p50 {p50:6.1f} ms  p95 {p95:6.1f} ms  (API CPU {cpu:5.1f} ms)  "
            f"{queries:2d} queries  {rows:4d} rows  ({runs} runs)"
        )
        if url.endswith("tickets/") and "page_size" not in params:
            verdicts.append(p95 < 100)
    load = os.getloadavg()[0]
    goal = "met" if all(verdicts) else "MISSED"
    print(f"goal p95 < 100 ms on the caretaker's list: {goal} (load average {load:.1f})")


if __name__ == "__main__":
    main()
