"""Scope of every role: what each selector returns, by dates, delegations and assignments."""

import datetime as dt

import pytest
from django.utils import timezone

from api.estate import selectors
from api.estate.models import Equipment
from tests.factories import (
    CommonAreaFactory,
    DelegationFactory,
    EquipmentFactory,
    LeaseFactory,
    TenantFactory,
    UserFactory,
)
from tests.factories.estate import (
    ROLES,
    ContractorContractFactory,
    HouseholdMemberFactory,
    scope_world,
)

pytestmark = pytest.mark.django_db

SELECTORS = {
    "residence": selectors.residences_visible_to,
    "building": selectors.buildings_visible_to,
    "entrance": selectors.entrances_visible_to,
    "dwelling": selectors.dwellings_visible_to,
}


@pytest.fixture
def world():
    return scope_world()


@pytest.mark.parametrize("role", ROLES)
def test_every_role_sees_home_and_nothing_out_of_scope(world, role):
    user = world.users[role]
    for attribute, selector in SELECTORS.items():
        visible = set(selector(user).values_list("id", flat=True))
        assert getattr(world.home, attribute).id in visible, (role, attribute)
        for case in world.CASES:
            obj = getattr(world.place(case), attribute)
            if obj.id == getattr(world.home, attribute).id:
                continue  # the same residence: not a different object
            expected_hidden = role in world.OUT_OF_SCOPE[case]
            assert (obj.id not in visible) == expected_hidden, (role, attribute, case)


@pytest.mark.parametrize("role", ROLES)
def test_never_another_organisation(world, role):
    user = world.users[role]
    other = world.other_organisation.organisation
    for selector in (
        *SELECTORS.values(),
        selectors.common_areas_visible_to,
        selectors.equipment_visible_to,
        selectors.leases_visible_to,
        selectors.delegations_visible_to,
        selectors.people_visible_to,
        selectors.agencies_visible_to,
    ):
        assert not selector(user).filter(organisation=other).exists(), (role, selector.__name__)


def test_tenant_access_follows_lease_dates(world):
    dwelling = world.home.dwelling
    old_lease = world.home.lease
    previous = world.home.tenant
    today = timezone.localdate()
    old_lease.end_date = today - dt.timedelta(days=1)
    old_lease.save()
    newcomer = TenantFactory(organisation=world.home.organisation)
    new_lease = LeaseFactory(dwelling=dwelling, start_date=today)
    HouseholdMemberFactory(lease=new_lease, person=newcomer)

    assert list(selectors.dwellings_visible_to(newcomer)) == [dwelling]
    assert not selectors.dwellings_visible_to(previous).exists()
    assert set(selectors.leases_visible_to(newcomer)) == {new_lease}, "not the previous lease"
    assert old_lease in selectors.leases_visible_to(previous), "their own past lease"
    assert new_lease not in selectors.leases_visible_to(previous)
    on_last_day = selectors.current_household_dwellings(previous, at=old_lease.end_date)
    assert list(on_last_day) == [dwelling]


def test_future_lease_gives_no_access_yet(world):
    future = LeaseFactory(
        dwelling=world.other_tenant.dwelling,
        start_date=timezone.localdate() + dt.timedelta(days=3),
    )
    tenant = HouseholdMemberFactory(lease=future).person
    assert not selectors.dwellings_visible_to(tenant).exists()
    assert not selectors.common_areas_visible_to(tenant).exists()


def test_delegate_sees_grantor_dwelling_while_delegation_is_in_force(world):
    delegate = world.users["delegate"]
    delegation = delegate.delegations_received.get()
    assert list(selectors.dwellings_visible_to(delegate)) == [world.home.dwelling]
    assert list(selectors.leases_visible_to(delegate)) == [world.home.lease]

    delegation.revoked_at = timezone.now()
    delegation.save()
    assert not selectors.dwellings_visible_to(delegate).exists()
    assert not selectors.leases_visible_to(delegate).exists()


@pytest.mark.parametrize(
    ("starts", "expires"),
    [(-10, -1), (1, 10)],
    ids=["expired", "not-started"],
)
def test_delegation_outside_its_dates_gives_nothing(world, starts, expires):
    now = timezone.now()
    delegation = DelegationFactory(
        grantor=world.other_tenant.tenant,
        starts_at=now + dt.timedelta(days=starts),
        expires_at=now + dt.timedelta(days=expires),
    )
    assert not selectors.dwellings_visible_to(delegation.delegate).exists()


def test_delegation_follows_the_grantors_lease(world):
    world.home.lease.end_date = timezone.localdate() - dt.timedelta(days=1)
    world.home.lease.save()
    assert not selectors.dwellings_visible_to(world.users["delegate"]).exists()


def test_tenant_sees_common_areas_of_their_entrance_building_and_residence(world):
    home = world.home
    mine = [
        CommonAreaFactory(entrance=home.entrance),
        CommonAreaFactory(entrance=None, building=home.building, kind="cellar"),
        CommonAreaFactory(entrance=None, residence=home.residence, kind="outdoor"),
    ]
    neighbours = CommonAreaFactory(entrance=world.other_tenant.entrance)
    visible = set(selectors.common_areas_visible_to(home.tenant))
    assert visible == set(mine)
    assert neighbours in selectors.common_areas_visible_to(world.users["caretaker"])


def test_equipment_in_or_serving_a_visible_place(world):
    home = world.home
    boiler = EquipmentFactory(dwelling=home.dwelling)
    neighbours_boiler = EquipmentFactory(dwelling=world.other_tenant.dwelling)
    substation = EquipmentFactory(
        dwelling=None,
        common_area=CommonAreaFactory(entrance=world.other_tenant.entrance, kind="cellar"),
        kind="heating_substation",
    )
    substation.serves_dwellings.add(home.dwelling)
    vmc = EquipmentFactory(
        dwelling=None,
        common_area=CommonAreaFactory(entrance=None, building=world.other_tenant.building),
        kind="collective_ventilation",
    )
    vmc.serves_entrances.add(home.entrance)

    assert set(selectors.equipment_visible_to(home.tenant)) == {boiler, substation, vmc}
    staff_view = set(selectors.equipment_visible_to(world.users["caretaker"]))
    assert staff_view == {boiler, neighbours_boiler, substation, vmc}
    assert Equipment.objects.count() == 4


def test_contractor_loses_scope_when_contract_ends(world):
    contractor = world.users["contractor"]
    contract = contractor.contractor_memberships.get().contractor.contracts.get()
    contract.end_date = timezone.localdate() - dt.timedelta(days=1)
    contract.save()
    assert not selectors.residences_visible_to(contractor).exists()
    ContractorContractFactory(
        contractor=contract.contractor, residence=world.other_residence.residence
    )
    assert list(selectors.residences_visible_to(contractor)) == [world.other_residence.residence]


def test_people_in_scope(world):
    staff = world.users["agency_staff"]
    people = set(selectors.people_visible_to(staff))
    assert {world.home.tenant, world.other_tenant.tenant, world.users["delegate"]} <= people
    assert {
        world.users["caretaker"],
        world.users["technician"],
        world.users["contractor"],
    } <= people
    assert world.other_residence.tenant not in people
    assert world.other_organisation.tenant not in people

    caretaker_people = set(selectors.people_visible_to(world.users["caretaker"]))
    assert {world.home.tenant, world.other_tenant.tenant} <= caretaker_people
    assert world.other_residence.tenant not in caretaker_people

    assert list(selectors.people_visible_to(world.home.tenant)) == [world.home.tenant]
    manager_people = selectors.people_visible_to(world.users["manager"])
    assert world.other_residence.tenant in manager_people


def test_delegations_visible(world):
    tenant, delegate = world.home.tenant, world.users["delegate"]
    given = tenant.delegations_given.get()
    assert list(selectors.delegations_visible_to(tenant)) == [given]
    assert list(selectors.delegations_visible_to(delegate)) == [given]
    staff_view = selectors.delegations_visible_to(world.users["agency_staff"])
    assert {given, world.other_tenant.tenant.delegations_given.get()} == set(staff_view)
    assert not selectors.delegations_visible_to(world.users["caretaker"]).exists()


@pytest.mark.parametrize("change", ["inactive", "no-organisation"])
def test_inactive_or_unattached_users_see_nothing(world, change):
    user = world.users["manager"]
    if change == "inactive":
        user.is_active = False
    else:
        user.organisation = None
    for selector in (*SELECTORS.values(), selectors.people_visible_to):
        assert not selector(user).exists()


def test_unknown_role_sees_nothing(world):
    user = UserFactory(organisation=world.home.organisation, role="tenant")
    user.role = "nobody"
    assert not selectors.residences_visible_to(user).exists()


def test_scope_summary_of_a_tenant_and_of_staff(world):
    summary = selectors.user_scope_summary(world.users["delegate"])
    assert summary["organisation"]["slug"] == world.home.organisation.slug
    assert [d["id"] for d in summary["dwellings"]] == [world.home.dwelling.id]
    assert summary["dwellings"][0]["via"] == "delegation"
    assert summary["residences"] == [
        {
            "id": world.home.residence.id,
            "reference": world.home.residence.reference,
            "name": world.home.residence.name,
        }
    ]

    own = selectors.user_scope_summary(world.home.tenant)
    assert own["dwellings"][0]["via"] == "household"
    assert own["dwellings"][0]["label"].startswith(world.home.dwelling.reference)

    staff = selectors.user_scope_summary(world.users["agency_staff"])
    assert staff["dwellings"] == []
    assert staff["dwelling_count"] == 2
    assert staff["agencies"] == [{"id": world.home.agency.id, "name": world.home.agency.name}]

    manager = selectors.user_scope_summary(world.users["manager"])
    assert manager["residence_count"] == 2
    assert manager["dwelling_count"] == 3

    nobody = UserFactory(organisation=None)
    assert selectors.user_scope_summary(nobody)["organisation"] is None
