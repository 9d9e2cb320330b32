"""The demo estate: the promised sizes and people, and a second run that changes nothing."""

import pytest

from api.accounts.models import User
from api.estate import selectors
from api.estate.demo import seed_demo_estate
from api.estate.models import (
    Building,
    CommonArea,
    Dwelling,
    Entrance,
    Equipment,
    Lease,
    Residence,
)
from tests.factories import OrganisationFactory

pytestmark = pytest.mark.django_db

MODELS = (Residence, Building, Entrance, Dwelling, CommonArea, Equipment, Lease, User)


def test_demo_estate_is_complete_and_idempotent():
    organisation = OrganisationFactory(slug="demo")
    logins = seed_demo_estate(organisation)
    counts = {model: model.objects.count() for model in MODELS}
    assert (counts[Residence], counts[Building], counts[Entrance], counts[Dwelling]) == (
        2,
        4,
        8,
        160,
    )
    assert Residence.objects.filter(priority_neighbourhood=True).count() == 1
    assert (
        Equipment.objects.filter(
            kind__in=["individual_boiler", "ventilation_unit"], dwelling__isnull=False
        ).count()
        == 160
    )

    tenant = User.objects.get(phone="+33600000101")
    assert selectors.current_household_dwellings(tenant).count() == 1
    caretakers = User.objects.filter(phone__in=["+33600000001", "+33600000002"])
    assert [selectors.residences_visible_to(c).count() for c in caretakers] == [1, 1]
    technician = User.objects.get(phone=logins["technician_phone"])
    assert selectors.residences_visible_to(technician).count() == 2
    contractor = User.objects.get(phone=logins["contractor_phone"])
    assert selectors.residences_visible_to(contractor).count() == 1
    agent = User.objects.get(email=logins["agency_staff_email"])
    assert agent.check_password(logins["staff_password"])
    assert selectors.dwellings_visible_to(agent).count() == 160
    delegate = User.objects.get(phone=logins["delegate_phone"])
    assert list(selectors.dwellings_visible_to(delegate)) == list(
        selectors.current_household_dwellings(tenant)
    )

    seed_demo_estate(organisation)
    assert {model: model.objects.count() for model in MODELS} == counts
