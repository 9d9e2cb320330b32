"""`palier privacy-breach-subjects`: the people affected by a breach of one table in a window.

For the notice to the CNIL within 72 hours and to the people concerned (RGPD art. 33 and 34):
everyone whose data is in rows of the table created or changed in the window, with how to
reach them. One query of subqueries, so it answers in minutes on large tables.
"""

import csv
import json
from datetime import datetime

from django.apps import apps
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from api.estate.models import Organisation
from api.privacy.selectors import breach_subjects, postal_addresses, window_q

COLUMNS = ["id", "name", "role", "phone", "email", "language", "postal_address", "reach_by"]


def _instant(value: str, label: str) -> datetime:
    parsed = parse_datetime(value)
    if parsed is None:
        day = parse_date(value)
        if day is None:
            raise CommandError(f"--{label}: not an ISO 8601 date or date-time: {value!r}")
        parsed = datetime(day.year, day.month, day.day, tzinfo=timezone.get_current_timezone())
    if timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed)
    return parsed


class Command(BaseCommand):
    help = "List the people affected by records of a table created or updated in a window."

    def add_arguments(self, parser):
        parser.add_argument("--table", required=True, help="app_label.Model, e.g. tickets.Ticket")
        parser.add_argument("--from", dest="start", required=True, help="ISO 8601, inclusive")
        parser.add_argument("--to", dest="end", required=True, help="ISO 8601, exclusive")
        parser.add_argument("--format", choices=["csv", "json"], default="csv")
        parser.add_argument("--organisation", help="Only this landlord (its slug).")

    def handle(self, *args, **options):
        try:
            model = apps.get_model(options["table"])
        except (LookupError, ValueError) as exc:
            raise CommandError(f"--table: no such model: {options['table']!r}") from exc
        start, end = _instant(options["start"], "from"), _instant(options["end"], "to")
        if end <= start:
            raise CommandError("--to must come after --from.")
        organisation = None
        if options["organisation"]:
            organisation = Organisation.objects.filter(slug=options["organisation"]).first()
            if organisation is None:
                raise CommandError(f"--organisation: no such landlord: {options['organisation']}")
        try:
            window_q(model, start, end)
        except LookupError as exc:
            raise CommandError(str(exc)) from exc
        people = list(breach_subjects(model, start=start, end=end, organisation=organisation))
        rows = self._rows(people)
        out = self.stdout
        if options["format"] == "json":
            out.write(json.dumps(rows, ensure_ascii=False, indent=1))
        else:
            writer = csv.DictWriter(out, fieldnames=COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
        self.stderr.write(f"{len(rows)} people affected in {model._meta.label}.")

    def _rows(self, people) -> list[dict]:
        from api.notifications.models import PushDevice

        ids = [person.pk for person in people]
        addresses = postal_addresses(ids)
        with_push = set(
            PushDevice.objects.filter(user_id__in=ids, disabled_at__isnull=True).values_list(
                "user_id", flat=True
            )
        )
        rows = []
        for person in people:
            reach = []
            if person.phone:
                reach.append("sms")
            if person.email and not person.email.endswith("@erased.invalid"):
                reach.append("email")
            if person.pk in with_push:
                reach.append("push")
            address = addresses.get(person.pk, "")
            if address:
                reach.append("post")
            rows.append(
                {
                    "id": str(person.pk),
                    "name": person.full_name,
                    "role": person.role,
                    "phone": str(person.phone) if person.phone else "",
                    "email": person.email or "",
                    "language": person.language,
                    "postal_address": address,
                    "reach_by": " ".join(reach),
                }
            )
        return rows
