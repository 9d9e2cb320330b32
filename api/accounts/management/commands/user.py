"""`palier user add`: create a person from the command line, and place them in the estate."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from api.accounts.services import (
    PASSWORD_ONLY_ROLES,
    user_create,
    user_household_join,
    user_residence_assign,
)
from api.core.exceptions import ServiceError
from api.core.roles import Role


class Command(BaseCommand):
    help = "Manage people. `user add` creates a person and places them in the estate."

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
        add = actions.add_parser(
            "add",
            help="Create a person (a tenant needs only a phone number).",
            description=(
                "Create a person. With --dwelling, a tenant joins the household of that "
                "dwelling's lease in force; with --residence, a caretaker is put in charge of "
                "the residence (agency staff join its agency)."
            ),
        )
        add.add_argument("--role", required=True, choices=Role.values)
        add.add_argument("--phone", help="E.164 (+33612345678) or French (06 12 34 56 78).")
        add.add_argument("--email", help="Needed for agency staff, managers and admins.")
        add.add_argument("--name", default="", help='First and last name: "Amina Benali".')
        add.add_argument(
            "--language", default=settings.LANGUAGE_CODE, choices=[c for c, _ in settings.LANGUAGES]
        )
        place = add.add_mutually_exclusive_group()
        place.add_argument("--dwelling", metavar="REF", help="Dwelling reference (tenants).")
        place.add_argument("--residence", metavar="REF", help="Residence reference (caretakers).")
        add.add_argument(
            "--relation",
            default="occupant",
            choices=["holder", "co_holder", "occupant"],
            help="Place in the household with --dwelling (default: occupant).",
        )
        add.add_argument(
            "--organisation",
            metavar="SLUG",
            help="Needed when the deployment has several organisations and no place is given, "
            "or when a reference exists in several.",
        )

    def handle(self, *args, **options):
        if options["action"] == "add":
            self.add(options)

    def add(self, options) -> None:
        from api.estate.models import Dwelling, Organisation, Residence

        organisations = Organisation.objects.all()
        if options["organisation"]:
            organisations = organisations.filter(slug=options["organisation"])
            if not organisations.exists():
                raise CommandError(f"No organisation with slug {options['organisation']!r}.")

        dwelling = residence = None
        if options["dwelling"]:
            dwelling = self._one(
                Dwelling.objects.filter(organisation__in=organisations),
                options["dwelling"],
                "dwelling",
            )
            organisation = dwelling.organisation
        elif options["residence"]:
            residence = self._one(
                Residence.objects.filter(organisation__in=organisations),
                options["residence"],
                "residence",
            )
            organisation = residence.organisation
        else:
            found = list(organisations[:2])
            if not found:
                raise CommandError(
                    "There is no organisation yet: run `palier seed-demo` or import one."
                )
            if len(found) > 1:
                slugs = ", ".join(organisations.values_list("slug", flat=True))
                raise CommandError(
                    f"Several organisations ({slugs}): choose one with --organisation."
                )
            organisation = found[0]

        first_name, _, last_name = options["name"].strip().partition(" ")
        try:
            with transaction.atomic():
                user = user_create(
                    organisation=organisation,
                    role=options["role"],
                    phone=options["phone"],
                    email=options["email"],
                    first_name=first_name,
                    last_name=last_name,
                    language=options["language"],
                )
                where = ""
                if dwelling is not None:
                    member = user_household_join(
                        user=user, dwelling=dwelling, relation=options["relation"]
                    )
                    where = (
                        f"; {member.get_relation_display().lower()} under lease "
                        f"{member.lease.reference} of dwelling {dwelling.reference}"
                    )
                elif residence is not None:
                    user_residence_assign(user=user, residence=residence)
                    where = f"; assigned to residence {residence.reference} ({residence.name})"
        except ServiceError as exc:
            field = f"--{exc.field}: " if exc.field else ""
            raise CommandError(f"{field}{exc.message}") from None

        login = user.phone.as_e164 if user.phone else user.email
        self.stdout.write(
            self.style.SUCCESS(
                f"Created {Role(user.role).label.lower()} {user} ({login}) in "
                f"{organisation.slug}, id {user.id}{where}."
            )
        )
        if user.role in PASSWORD_ONLY_ROLES:
            self.stdout.write(f"Set their password with: palier changepassword {user.email}")
        elif user.phone:
            self.stdout.write("They log in with their phone number and a code sent by SMS.")

    @staticmethod
    def _one(queryset, reference: str, kind: str):
        matches = list(queryset.filter(reference=reference).select_related("organisation")[:2])
        if not matches:
            raise CommandError(f"No {kind} with reference {reference!r}.")
        if len(matches) > 1:
            raise CommandError(
                f"The {kind} reference {reference!r} exists in several organisations: "
                "choose one with --organisation."
            )
        return matches[0]
