"""`palier device add|revoke`: provision a unit (credentials printed once) or withdraw one."""

import json

from django.core.management.base import BaseCommand, CommandError

from api.core.exceptions import ServiceError
from api.estate.models import Dwelling, Equipment
from api.telemetry import services
from api.telemetry.models import Device, DeviceKind, DeviceStatus


class Command(BaseCommand):
    help = "Provision a connected unit (prints its credentials once, as JSON) or revoke one."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        add = sub.add_parser("add", help="Provision a unit on a dwelling's boiler or VMC.")
        add.add_argument("--kind", required=True, choices=DeviceKind.values)
        add.add_argument("--dwelling", required=True, help="Dwelling reference.")
        add.add_argument("--organisation", help="Organisation slug, if the reference is ambiguous.")
        add.add_argument("--equipment", help="Equipment id, if the dwelling has several.")
        add.add_argument("--model", default="")
        add.add_argument("--interval", type=int, default=60, help="Reporting interval (s).")
        revoke = sub.add_parser("revoke", help="Withdraw a unit's credentials.")
        revoke.add_argument("device_id")

    def handle(self, *args, **options):
        if options["action"] == "add":
            self._add(options)
        else:
            self._revoke(options["device_id"])

    def _dwelling(self, reference: str, organisation: str | None) -> Dwelling:
        dwellings = Dwelling.objects.filter(reference=reference).select_related("organisation")
        if organisation:
            dwellings = dwellings.filter(organisation__slug=organisation)
        found = list(dwellings[:2])
        if not found:
            raise CommandError(f"No dwelling with reference {reference!r}.")
        if len(found) > 1:
            raise CommandError("Several organisations use this reference: add --organisation.")
        return found[0]

    def _equipment(self, dwelling: Dwelling, kind: str, equipment_id: str | None) -> Equipment:
        candidates = Equipment.objects.filter(
            dwelling=dwelling, kind__in=services.EQUIPMENT_KINDS[kind]
        )
        if equipment_id:
            try:
                return candidates.get(pk=equipment_id)
            except (Equipment.DoesNotExist, ValueError) as error:
                raise CommandError(
                    f"No {kind} equipment {equipment_id} in dwelling {dwelling.reference}."
                ) from error
        free = [
            e
            for e in candidates.order_by("created_at")
            if not Device.objects.filter(equipment=e).exclude(status=DeviceStatus.REVOKED).exists()
        ]
        if not free:
            raise CommandError(
                f"Dwelling {dwelling.reference} has no {kind} equipment without a unit: "
                "register it in the estate first, or pass --equipment."
            )
        if len(free) > 1:
            raise CommandError("Several candidate equipment: pass --equipment.")
        return free[0]

    def _add(self, options) -> None:
        dwelling = self._dwelling(options["dwelling"], options.get("organisation"))
        equipment = self._equipment(dwelling, options["kind"], options.get("equipment"))
        try:
            device, password = services.device_provision(
                organisation=dwelling.organisation,
                kind=options["kind"],
                equipment=equipment,
                model=options["model"],
                reporting_interval_s=options["interval"],
            )
        except ServiceError as error:
            raise CommandError(error.message) from error
        self.stdout.write(
            json.dumps(
                {
                    "device_id": device.device_id,
                    "username": device.device_id,
                    "password": password,
                    "fleet": device.fleet,
                    "topic_prefix": device.topic_prefix,
                }
            )
        )

    def _revoke(self, device_id: str) -> None:
        device = Device.objects.filter(device_id=device_id).first()
        if device is None:
            raise CommandError(f"No device {device_id!r}.")
        services.device_revoke(device=device)
        self.stdout.write(f"Revoked {device_id}.")
