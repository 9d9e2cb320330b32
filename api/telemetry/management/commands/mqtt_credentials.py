"""`palier mqtt-credentials [--out DIR]`: write the broker's password and ACL files."""

from django.core.management.base import BaseCommand, CommandError

from api.core.exceptions import ServiceError
from api.telemetry import services


class Command(BaseCommand):
    help = (
        "Write Mosquitto's password and ACL files from the device registry (default: "
        "VAR_DIR/mqtt; for docker compose: --out deploy/mosquitto/generated)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--out", help="Directory to write passwd and acl into.")

    def handle(self, *args, **options):
        try:
            passwd, acl = services.mqtt_credential_files_write(options.get("out"))
        except ServiceError as error:
            raise CommandError(error.message) from error
        self.stdout.write(f"Wrote {passwd} and {acl}.")
