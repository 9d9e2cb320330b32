"""`palier import-estate FILE [--dry-run]`: load the property register from CSV or XLSX."""

import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from api.estate.services import estate_register_import

MAX_PROBLEMS_SHOWN = 200


class Command(BaseCommand):
    help = (
        "Import the property register (one row per dwelling) from a CSV or XLSX file: upsert "
        "by reference; with --dry-run, report what would change and every row-level error."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument("--dry-run", action="store_true", help="Check only; write nothing.")
        parser.add_argument(
            "--format",
            choices=["csv", "xlsx"],
            help="Default: from the file name's extension.",
        )

    def handle(self, *args, file: Path, dry_run: bool, format: str | None, **options):
        if not file.is_file():
            raise CommandError(f"No such file: {file}")
        file_format = format or file.suffix.lower().lstrip(".")
        started = time.monotonic()
        report = estate_register_import(
            content=file.read_bytes(), file_format=file_format, dry_run=dry_run
        )
        elapsed = time.monotonic() - started

        for line, column, message in report.problems[:MAX_PROBLEMS_SHOWN]:
            where = f"line {line}" if line else "file"
            self.stderr.write(f"{where}: {column}: {message}")
        if len(report.problems) > MAX_PROBLEMS_SHOWN:
            self.stderr.write(f"… and {len(report.problems) - MAX_PROBLEMS_SHOWN} more problems.")
        totals = report.totals
        self.stdout.write(
            "Dwellings: {new} new, {update} updated, {skip} unchanged, "
            "{invalid} invalid, {error} failed.".format(
                **{k: totals.get(k, 0) for k in ("new", "update", "skip", "invalid", "error")}
            )
        )
        if report.hierarchy:
            self.stdout.write(
                ", ".join(
                    f"{key.replace('_', ' ')}: {value}" for key, value in report.hierarchy.items()
                )
            )
        self.stdout.write(f"{elapsed:.1f} s.")
        if not report.ok:
            raise CommandError(f"{len(report.problems)} problem(s): nothing was written.")
        if dry_run:
            self.stdout.write(
                self.style.SUCCESS("Dry run: the file is valid; nothing was written.")
            )
        else:
            self.stdout.write(self.style.SUCCESS("Register imported."))
