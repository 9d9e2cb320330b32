"""`palier privacy-register`: regenerate docs/privacy.md, the record of processing."""

from django.core.management.base import BaseCommand, CommandError

from api.privacy.inventory import invalid_entries, unclassified_fields
from api.privacy.register import REGISTER_PATH, render_register, write_register


class Command(BaseCommand):
    help = "Regenerate docs/privacy.md from the field inventory, retention rules and purposes."

    def add_arguments(self, parser):
        parser.add_argument(
            "--check", action="store_true", help="Fail if docs/privacy.md is out of date."
        )

    def handle(self, *args, **options):
        missing = unclassified_fields()
        if missing:
            raise CommandError(
                "Classify these fields in api/privacy/inventory.py first: " + ", ".join(missing)
            )
        invalid = invalid_entries()
        if invalid:
            raise CommandError("Unknown category or processing: " + ", ".join(invalid))
        if options["check"]:
            current = REGISTER_PATH.read_text(encoding="utf-8") if REGISTER_PATH.exists() else ""
            if current != render_register():
                raise CommandError(
                    f"{REGISTER_PATH} is out of date: run `palier privacy-register`."
                )
            self.stdout.write(f"{REGISTER_PATH} is up to date.")
            return
        changed = write_register()
        self.stdout.write(f"{REGISTER_PATH} {'written' if changed else 'already up to date'}.")
