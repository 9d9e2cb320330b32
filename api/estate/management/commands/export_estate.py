"""`palier export-estate [--organisation SLUG] [--format csv|xlsx] [--output FILE]`."""

import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from api.estate.models import Organisation
from api.estate.resources import EstateRegisterResource, export_register


class Command(BaseCommand):
    help = "Export the property register, one row per dwelling, in the format import-estate reads."

    def add_arguments(self, parser):
        parser.add_argument("--organisation", help="Slug of one organisation (default: all).")
        parser.add_argument("--format", choices=["csv", "xlsx"], default=None)
        parser.add_argument("--output", "-o", type=Path, help="Default: standard output (CSV).")

    def handle(self, *args, organisation: str | None, format: str | None, output, **options):
        file_format = format or (output.suffix.lower().lstrip(".") if output else "csv")
        if file_format not in {"csv", "xlsx"}:
            raise CommandError("Give --format csv or xlsx.")
        if file_format == "xlsx" and output is None:
            raise CommandError("XLSX needs --output FILE.")
        queryset = EstateRegisterResource().get_queryset()
        if organisation:
            if not Organisation.objects.filter(slug=organisation).exists():
                raise CommandError(f"No organisation “{organisation}”.")
            queryset = queryset.filter(organisation__slug=organisation)
        data = export_register(queryset, file_format)
        if output is None:
            sys.stdout.write(data.decode("utf-8"))
            return
        output.write_bytes(data)
        self.stderr.write(f"{queryset.count()} dwellings written to {output}.")
