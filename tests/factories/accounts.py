"""Factories for people (and, until the estate has its own module, organisations)."""

import factory
from factory.django import DjangoModelFactory

from api.accounts.models import User
from api.estate.models import Organisation


class OrganisationFactory(DjangoModelFactory):
    class Meta:
        model = Organisation
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Habitat {n}")
    slug = factory.Sequence(lambda n: f"org{n}")


class UserFactory(DjangoModelFactory):
    class Meta:
        model = User

    organisation = factory.SubFactory(OrganisationFactory)
    first_name = factory.Faker("first_name", locale="fr_FR")
    last_name = factory.Faker("last_name", locale="fr_FR")
    phone = factory.Sequence(lambda n: f"+3361{n:07d}")
    email = None
    role = "tenant"
    password = factory.django.Password("correct-horse-battery")


def seed_fuzz_accounts(organisation, manager) -> None:
    """A vulnerability recorded with consent, for the fuzzer's list and withdraw endpoints."""
    from django.utils import timezone

    from api.accounts.models import Vulnerability
    from api.estate.models import HouseholdMember

    member = HouseholdMember.objects.filter(lease__organisation=organisation).first()
    if member is None:
        return
    Vulnerability.objects.get_or_create(
        person=member.person,
        kind="elderly",
        defaults={"consent_at": timezone.now(), "consent_channel": "paper", "recorded_by": manager},
    )
