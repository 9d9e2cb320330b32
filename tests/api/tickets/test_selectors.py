"""Who sees which request: the household, the entrance's residents, staff in scope."""

import datetime as dt

import pytest
from django.utils import timezone

from api.tickets import selectors
from tests.factories import CommonAreaFactory, place_factory
from tests.factories.estate import HouseholdMemberFactory, LeaseFactory, TenantFactory
from tests.factories.tickets import TicketFactory, common_area_ticket

pytestmark = pytest.mark.django_db


def _visible(user) -> set:
    return set(selectors.tickets_visible_to(user).values_list("id", flat=True))


def test_dwelling_requests_are_private_to_the_household_and_staff(world):
    home, other = world.home, world.other_tenant
    mine = TicketFactory(dwelling=home.dwelling, reporter=home.tenant)
    theirs = TicketFactory(dwelling=other.dwelling, reporter=other.tenant)
    assert _visible(home.tenant) == {mine.id}
    assert _visible(world.users["delegate"]) == {mine.id}
    assert _visible(other.tenant) == {theirs.id}
    for role in ("caretaker", "technician", "agency_staff", "manager", "admin"):
        assert {mine.id, theirs.id} <= _visible(world.users[role]), role


def test_a_new_tenant_does_not_see_the_previous_households_requests(world):
    home = world.home
    old = TicketFactory(dwelling=home.dwelling, reporter=home.tenant)
    home.lease.end_date = timezone.localdate() - dt.timedelta(days=2)
    home.lease.save()
    newcomer = TenantFactory(organisation=home.organisation)
    lease = LeaseFactory(
        dwelling=home.dwelling, start_date=timezone.localdate() - dt.timedelta(days=1)
    )
    HouseholdMemberFactory(lease=lease, person=newcomer)
    type(old).objects.filter(pk=old.pk).update(created_at=timezone.now() - dt.timedelta(days=10))
    new = TicketFactory(dwelling=home.dwelling, reporter=newcomer)
    assert _visible(newcomer) == {new.id}
    assert _visible(home.tenant) == set()


def test_common_area_requests_are_seen_by_the_residents_of_the_entrance(world):
    home = world.home
    neighbour = place_factory(entrance=home.entrance)
    other_building = world.other_tenant
    hall = CommonAreaFactory(entrance=home.entrance)
    ticket = common_area_ticket(hall, reporter=neighbour.tenant)
    assert ticket.id in _visible(home.tenant)
    assert ticket.id in _visible(neighbour.tenant)
    assert ticket.id not in _visible(other_building.tenant)


def test_building_and_residence_wide_requests(world):
    home = world.home
    building_area = CommonAreaFactory(entrance=None, building=home.building)
    residence_area = CommonAreaFactory(entrance=None, residence=home.residence)
    on_building = common_area_ticket(building_area)
    on_residence = common_area_ticket(residence_area)
    assert {on_building.id, on_residence.id} <= _visible(home.tenant)
    other = world.other_tenant.tenant  # another building of the same residence
    assert on_residence.id in _visible(other)
    assert on_building.id not in _visible(other)


def test_a_contractor_sees_only_what_is_assigned_to_their_company(world):
    contractor = world.users["contractor"]
    company = contractor.contractor_memberships.get().contractor
    assigned = TicketFactory(dwelling=world.home.dwelling, assigned_contractor=company)
    TicketFactory(dwelling=world.home.dwelling)
    assert _visible(contractor) == {assigned.id}


def test_a_technician_sees_their_sector_and_their_teams_work(world):
    technician = world.users["technician"]
    team = technician.team_memberships.get().team
    in_sector = TicketFactory(dwelling=world.home.dwelling)
    elsewhere = TicketFactory(dwelling=world.other_residence.dwelling)
    sent_to_team = TicketFactory(dwelling=world.other_residence.dwelling, assigned_team=team)
    assert _visible(technician) == {in_sector.id, sent_to_team.id}
    assert elsewhere.id not in _visible(technician)


def test_nobody_sees_another_organisation(world):
    foreign = TicketFactory(dwelling=world.other_organisation.dwelling)
    for role, user in world.users.items():
        assert foreign.id not in _visible(user), role


def test_an_inactive_person_sees_nothing(world):
    TicketFactory(dwelling=world.home.dwelling)
    tenant = world.home.tenant
    tenant.is_active = False
    assert _visible(tenant) == set()
