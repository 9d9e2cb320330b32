"""Factories for a household's decisions on its home's telemetry purposes."""

import factory
from django.utils import timezone
from factory.django import DjangoModelFactory

from api.estate.models import TelemetryConsent
from tests.factories.estate import place_factory


class TelemetryConsentFactory(DjangoModelFactory):
    """A household's decision on one purpose, made in the app."""

    class Meta:
        model = TelemetryConsent

    lease = factory.LazyAttribute(lambda o: o.person.household_memberships.first().lease)
    organisation = factory.SelfAttribute("lease.organisation")
    purpose = "comfort_statistics"
    granted = True
    channel = "app"
    decided_at = factory.LazyFunction(timezone.now)
    person = factory.LazyFunction(lambda: place_factory().tenant)
    recorded_by = factory.SelfAttribute("person")


def seed_fuzz_consent(organisation, manager) -> None:
    """Consent rows for the API fuzzer (tests/fuzz_data.py)."""
    place = place_factory(organisation=organisation)
    TelemetryConsentFactory(person=place.tenant)
    TelemetryConsentFactory(person=place.tenant, purpose="fault_detection", granted=False)
