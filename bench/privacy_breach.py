"""Time of the breach listing and of an erasure on a large requests table.

Fills its own database with TENANTS households and TICKETS requests (and as many history rows),
spread over a year, then times `privacy-breach-subjects` for a one-day window and a whole-year
window on tickets.Ticket and tickets.TicketEvent, and the erasure of one person (which sweeps
every text column of every table).

Run: .venv/bin/python bench/privacy_breach.py [--tenants 20000] [--tickets 1000000]
     (BENCH_DATABASE_URL overrides postgres://postgres@127.0.0.1:5432/palier_bench_privacy)
"""

import argparse
import os
import sys
import time
from datetime import timedelta
from pathlib import Path

from harness import ensure_database

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DATABASE_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/palier_bench_privacy"
)
os.environ["DATABASE_URL"] = DATABASE_URL
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "api.config.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")

SLUG = "bench-privacy"


def _columns(cursor, table: str) -> list[str]:
    cursor.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = %s "
        "ORDER BY ordinal_position",
        [table],
    )
    return [row[0] for row in cursor.fetchall()]


def _copy_rows(cursor, table: str, template_id, count: int, overrides: dict) -> None:
    """Insert `count` copies of one row, some columns computed from g (1..count)."""
    columns = _columns(cursor, table)
    select = ", ".join(overrides.get(name, f't."{name}"') for name in columns)
    names = ", ".join(f'"{name}"' for name in columns)
    cursor.execute(
        f'INSERT INTO "{table}" ({names}) SELECT {select} '  # noqa: S608 - bench's own SQL
        f'FROM "{table}" t, generate_series(1, %s) g WHERE t.id = %s',
        [count, template_id],
    )


def populate(tenants: int, tickets: int) -> None:
    """Households and requests of the bench landlord, written with set-based SQL."""
    from django.db import connection, transaction

    from api.estate.models import Organisation

    if Organisation.objects.filter(slug=SLUG).exists():
        return

    with transaction.atomic():
        _populate(connection, tenants, tickets)


def _populate(connection, tenants: int, tickets: int) -> None:
    from tests.factories import place_factory
    from tests.factories.accounts import OrganisationFactory
    from tests.factories.tickets import TicketFactory

    place = place_factory(organisation=OrganisationFactory(slug=SLUG, name="Bench"))
    ticket = TicketFactory(dwelling=place.dwelling, reporter=place.tenant)
    ticket.events.create(kind="created", note="Demande créée.")
    with connection.cursor() as cursor:
        _copy_rows(cursor, "estate_dwelling", place.dwelling.pk, tenants - 1, {
            "id": "gen_random_uuid()", "reference": "'D' || g",
        })  # fmt: skip
        _copy_rows(cursor, "accounts_user", place.tenant.pk, tenants - 1, {
            "id": "gen_random_uuid()", "phone": "'+3361' || lpad(g::text, 7, '0')",
            "last_name": "'Nom' || g",
        })  # fmt: skip
        cursor.execute(
            "CREATE TEMP TABLE bench_home AS SELECT d.id AS dwelling_id, u.id AS person_id, "
            "gen_random_uuid() AS lease_id, row_number() OVER () AS n FROM "
            "(SELECT id, row_number() OVER (ORDER BY id) r FROM estate_dwelling "
            " WHERE reference LIKE 'D%%') d JOIN "
            "(SELECT id, row_number() OVER (ORDER BY id) r FROM accounts_user "
            " WHERE last_name LIKE 'Nom%%') u ON d.r = u.r"
        )
        cursor.execute("CREATE INDEX ON bench_home (n)")
        lease_columns = _columns(cursor, "estate_lease")
        lease_select = ", ".join(
            {"id": "h.lease_id", "dwelling_id": "h.dwelling_id", "reference": "'L' || h.n"}.get(
                name, f't."{name}"'
            )
            for name in lease_columns
        )
        cursor.execute(
            f"INSERT INTO estate_lease ({', '.join(lease_columns)}) SELECT {lease_select} "  # noqa: S608
            "FROM estate_lease t, bench_home h WHERE t.id = %s",
            [place.lease.pk],
        )
        cursor.execute(
            "INSERT INTO estate_householdmember (id, created_at, updated_at, lease_id, person_id, "
            "relation) SELECT gen_random_uuid(), now(), now(), lease_id, person_id, 'holder' "
            "FROM bench_home"
        )
        cursor.execute("SELECT count(*) FROM bench_home")
        homes = cursor.fetchone()[0]
        spread = "now() - mod(g, 365) * interval '1 day' - mod(g, 1440) * interval '1 minute'"
        _copy_rows(cursor, "tickets_ticket", ticket.pk, tickets - 1, {
            "id": "gen_random_uuid()", "reference": "'B' || g",
            "dwelling_id": f"(SELECT dwelling_id FROM bench_home WHERE n = 1 + mod(g, {homes}))",  # noqa: S608
            "reporter_id": f"(SELECT person_id FROM bench_home WHERE n = 1 + mod(g, {homes}))",  # noqa: S608
            "created_at": spread, "updated_at": spread,
            "description": "'Fuite sous l''évier, appeler le ' || g",
        })  # fmt: skip
        cursor.execute(
            "INSERT INTO tickets_ticketevent (id, created_at, updated_at, ticket_id, kind, "
            "from_status, to_status, actor_role, note, public, data) SELECT gen_random_uuid(), "
            "created_at, created_at, id, 'created', '', '', '', 'Demande créée.', true, '{}' "
            "FROM tickets_ticket WHERE reference LIKE 'B%%'"
        )
        cursor.execute("ANALYZE")


def timed(label: str, function) -> object:
    started = time.perf_counter()
    result = function()
    print(f"{label:<58} {time.perf_counter() - started:8.2f} s")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=20_000)
    parser.add_argument("--tickets", type=int, default=1_000_000)
    args = parser.parse_args()

    ensure_database(DATABASE_URL)
    import django

    django.setup()
    from django.core.management import call_command
    from django.utils import timezone

    call_command("migrate", verbosity=0)
    timed(
        f"populate ({args.tenants} households, {args.tickets} requests)",
        lambda: populate(args.tenants, args.tickets),
    )

    from api.accounts.models import User
    from api.privacy.selectors import breach_subjects
    from api.privacy.services import erasure_execute, person_erase
    from api.tickets.models import Ticket, TicketEvent

    print(f"requests: {Ticket.objects.count()}, history rows: {TicketEvent.objects.count()}")
    now = timezone.now()
    for model in (Ticket, TicketEvent):
        for days in (1, 366):
            start = now - timedelta(days=days)
            people = timed(
                f"breach subjects, {model._meta.label}, {days} day(s)",
                lambda model=model, start=start: list(breach_subjects(model, start=start, end=now)),
            )
            print(f"    {len(people)} people")

    organisation_staff = User.objects.filter(organisation__slug=SLUG).first()
    manager = User.objects.create_user(
        email=f"manager-{int(time.time())}@bench.example",
        organisation=organisation_staff.organisation,
        role="manager",
    )
    person = User.objects.filter(organisation__slug=SLUG, role="tenant", is_active=True).last()
    from api.privacy import tasks

    tasks.execute_erasure.delay = lambda request_id: None  # timed below, in this process
    request = timed(
        "erasure request (account closed at once)",
        lambda: person_erase(actor=manager, subject=person, reason="bench"),
    )
    record = timed(
        "erasure execution (sweeps every text column)",
        lambda: erasure_execute(request_id=request.pk),
    )
    print(f"    summary: {record.summary}")


if __name__ == "__main__":
    main()
