"""`palier open311_partner add|rotate|disable`: manage the partners of the Open311 API."""

import uuid

from django.core.management.base import BaseCommand, CommandError

from api.estate.models import Organisation, Residence
from api.tickets import services
from api.tickets.models import Partner


class Command(BaseCommand):
    help = "Register an Open311 partner (its API key is printed once), rotate or disable its key."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        add = sub.add_parser("add", help="Register a partner system.")
        add.add_argument("--organisation", required=True, help="Organisation slug.")
        add.add_argument("--name", required=True)
        add.add_argument(
            "--residence",
            action="append",
            default=[],
            help="Residence reference it may use (repeat; none: the whole organisation).",
        )
        rotate = sub.add_parser("rotate", help="Give a partner a new key.")
        rotate.add_argument("partner_id")
        disable = sub.add_parser("disable", help="Stop a partner's key working.")
        disable.add_argument("partner_id")

    def handle(self, *args, **options):
        if options["action"] == "add":
            organisation = Organisation.objects.filter(slug=options["organisation"]).first()
            if organisation is None:
                raise CommandError("Unknown organisation.")
            residences = list(
                Residence.objects.filter(
                    organisation=organisation, reference__in=options["residence"]
                )
            )
            if len(residences) != len(set(options["residence"])):
                raise CommandError("Unknown residence reference.")
            partner, key = services.partner_create(
                organisation=organisation, name=options["name"], residences=residences
            )
            self.stdout.write(f"partner {partner.id}\napi_key {key}")
            return
        try:
            partner = Partner.objects.get(pk=uuid.UUID(options["partner_id"]))
        except (ValueError, Partner.DoesNotExist):
            raise CommandError("Unknown partner.") from None
        if options["action"] == "rotate":
            self.stdout.write(f"api_key {services.partner_rotate_key(partner=partner)}")
        else:
            services.partner_disable(partner=partner)
            self.stdout.write(f"partner {partner.id} disabled")
