"""`palier import-rent-ledger FILE --organisation SLUG [--dry-run]`: the month's ledger lines."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from api.core.exceptions import ServiceError
from api.documents.services import rent_ledger_import
from api.estate.models import Organisation


class Command(BaseCommand):
    help = "Import rent-ledger lines (CSV) from the accounting system; receipts follow."

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument("--organisation", required=True, help="The landlord's slug.")
        parser.add_argument("--dry-run", action="store_true", help="Report, change nothing.")

    def handle(self, *args, **options):
        organisation = Organisation.objects.filter(slug=options["organisation"]).first()
        if organisation is None:
            raise CommandError(f"No organisation {options['organisation']!r}.")
        path: Path = options["file"]
        if not path.is_file():
            raise CommandError(f"No file {path}.")
        try:
            record = rent_ledger_import(
                organisation=organisation,
                actor=None,
                raw=path.read_bytes(),
                file_name=path.name,
                dry_run=options["dry_run"],
            )
        except ServiceError as error:
            raise CommandError(error.message) from error
        self.stdout.write(
            f"{record.rows} rows: {record.created} new, {record.updated} changed, "
            f"{record.unchanged} unchanged, {len(record.errors)} refused"
            + (" (dry run, nothing written)" if record.dry_run else "")
        )
        for error in record.errors:
            self.stdout.write(f"  row {error['row']} {error['field']}: {error['message']}")
