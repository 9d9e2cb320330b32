"""`palier privacy-retention`: delete or anonymise what has been kept long enough."""

import json

from django.core.management.base import BaseCommand, CommandError

from api.estate.models import Organisation
from api.privacy.retention import RULES, retention_periods, retention_run


class Command(BaseCommand):
    help = (
        "Apply the retention periods (per organisation overrides included): delete or anonymise "
        "what has expired and say what was done. --dry-run only counts."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--dry-run", action="store_true", help="Count what would go; change nothing."
        )
        parser.add_argument(
            "--organisation", metavar="SLUG", help="Only this organisation (no global rules)."
        )
        parser.add_argument(
            "--periods", action="store_true", help="List each rule's period in days and stop."
        )
        parser.add_argument("--json", action="store_true", help="Print the report as JSON.")

    def handle(self, *args, **options):
        organisations = None
        organisation = None
        if options["organisation"]:
            organisation = Organisation.objects.filter(slug=options["organisation"]).first()
            if organisation is None:
                raise CommandError(f"No organisation {options['organisation']!r}.")
            organisations = [organisation]
        if options["periods"]:
            for key, days in retention_periods(organisation).items():
                self.stdout.write(f"{key:28} {days:>6} days  {RULES[key].what}")
            return
        report = retention_run(dry_run=options["dry_run"], organisations=organisations)
        if options["json"]:
            self.stdout.write(
                json.dumps(
                    {"dry_run": report.dry_run, "total": report.total, "lines": report.lines}
                )
            )
            return
        verb = "would be" if report.dry_run else "were"
        for line in report.lines:
            where = f" [{line['organisation']}]" if line["organisation"] else ""
            self.stdout.write(
                f"{line['rule']:28}{where:24} {line['count']:>8} {verb} {line['action']}"
                f" (after {line['days']} days)"
            )
        self.stdout.write(
            f"{'Dry run: ' if report.dry_run else ''}{report.total} row(s) {verb} affected."
        )
