"""Factories for the estate register, leases, assignments and delegations."""

import datetime as dt
from dataclasses import dataclass

import factory
from django.utils import timezone
from factory.django import DjangoModelFactory

from api.estate.models import (
    Agency,
    AgencyMembership,
    Building,
    CaretakerAssignment,
    CommonArea,
    Contractor,
    ContractorContract,
    ContractorMember,
    Delegation,
    Dwelling,
    Entrance,
    Equipment,
    HouseholdMember,
    Lease,
    Residence,
    Team,
    TeamMembership,
    TeamSector,
)
from tests.factories.accounts import OrganisationFactory, UserFactory


class AgencyFactory(DjangoModelFactory):
    class Meta:
        model = Agency

    organisation = factory.SubFactory(OrganisationFactory)
    name = factory.Sequence(lambda n: f"Agence {n}")


class ResidenceFactory(DjangoModelFactory):
    class Meta:
        model = Residence

    agency = factory.SubFactory(AgencyFactory)
    organisation = factory.SelfAttribute("agency.organisation")
    reference = factory.Sequence(lambda n: f"RES{n:04d}")
    name = factory.Sequence(lambda n: f"Résidence {n}")
    address = "1 rue de la Paix"
    postcode = "75001"
    city = "Paris"


class BuildingFactory(DjangoModelFactory):
    class Meta:
        model = Building

    residence = factory.SubFactory(ResidenceFactory)
    organisation = factory.SelfAttribute("residence.organisation")
    reference = factory.Sequence(lambda n: f"B{n}")


class EntranceFactory(DjangoModelFactory):
    class Meta:
        model = Entrance

    building = factory.SubFactory(BuildingFactory)
    organisation = factory.SelfAttribute("building.organisation")
    reference = factory.Sequence(lambda n: f"E{n}")
    label = factory.LazyAttribute(lambda o: f"Allée {o.reference}")


class DwellingFactory(DjangoModelFactory):
    class Meta:
        model = Dwelling

    entrance = factory.SubFactory(EntranceFactory)
    organisation = factory.SelfAttribute("entrance.organisation")
    reference = factory.Sequence(lambda n: f"LGT{n:06d}")
    floor = 2
    door = factory.Sequence(lambda n: str(n % 40 + 1))
    type = "T3"
    surface = "64.50"


class CommonAreaFactory(DjangoModelFactory):
    class Meta:
        model = CommonArea

    entrance = factory.SubFactory(EntranceFactory)
    organisation = factory.LazyAttribute(
        lambda o: (o.entrance or o.building or o.residence).organisation
    )
    kind = "hall"
    name = factory.Sequence(lambda n: f"Hall {n}")
    building = None
    residence = None


class EquipmentFactory(DjangoModelFactory):
    class Meta:
        model = Equipment

    dwelling = factory.SubFactory(DwellingFactory)
    common_area = None
    organisation = factory.LazyAttribute(lambda o: (o.dwelling or o.common_area).organisation)
    kind = "individual_boiler"
    make = "Saunier Duval"
    model = "ThemaPlus"
    serial = factory.Sequence(lambda n: f"SN{n:08d}")


class TenantFactory(UserFactory):
    role = "tenant"


class LeaseFactory(DjangoModelFactory):
    class Meta:
        model = Lease

    dwelling = factory.SubFactory(DwellingFactory)
    organisation = factory.SelfAttribute("dwelling.organisation")
    reference = factory.Sequence(lambda n: f"BAIL{n:06d}")
    start_date = factory.LazyFunction(lambda: timezone.localdate() - dt.timedelta(days=365))
    end_date = None


class HouseholdMemberFactory(DjangoModelFactory):
    class Meta:
        model = HouseholdMember

    lease = factory.SubFactory(LeaseFactory)
    person = factory.SubFactory(
        TenantFactory, organisation=factory.SelfAttribute("..lease.organisation")
    )
    relation = "holder"


class DelegationFactory(DjangoModelFactory):
    class Meta:
        model = Delegation

    grantor = factory.SubFactory(TenantFactory)
    organisation = factory.SelfAttribute("grantor.organisation")
    delegate = factory.SubFactory(
        TenantFactory, organisation=factory.SelfAttribute("..grantor.organisation")
    )
    relation = "relative"
    can_create_requests = True
    starts_at = factory.LazyFunction(lambda: timezone.now() - dt.timedelta(days=1))
    expires_at = factory.LazyFunction(lambda: timezone.now() + dt.timedelta(days=30))


class AgencyMembershipFactory(DjangoModelFactory):
    class Meta:
        model = AgencyMembership

    agency = factory.SubFactory(AgencyFactory)
    user = factory.SubFactory(
        UserFactory,
        role="agency_staff",
        organisation=factory.SelfAttribute("..agency.organisation"),
    )


class CaretakerAssignmentFactory(DjangoModelFactory):
    class Meta:
        model = CaretakerAssignment

    residence = factory.SubFactory(ResidenceFactory)
    caretaker = factory.SubFactory(
        UserFactory,
        role="caretaker",
        organisation=factory.SelfAttribute("..residence.organisation"),
    )


class TeamFactory(DjangoModelFactory):
    class Meta:
        model = Team

    organisation = factory.SubFactory(OrganisationFactory)
    name = factory.Sequence(lambda n: f"Équipe {n}")


class TeamMembershipFactory(DjangoModelFactory):
    class Meta:
        model = TeamMembership

    team = factory.SubFactory(TeamFactory)
    user = factory.SubFactory(
        UserFactory, role="technician", organisation=factory.SelfAttribute("..team.organisation")
    )


class TeamSectorFactory(DjangoModelFactory):
    class Meta:
        model = TeamSector

    team = factory.SubFactory(TeamFactory)
    residence = factory.SubFactory(
        ResidenceFactory, agency__organisation=factory.SelfAttribute("...team.organisation")
    )


class ContractorFactory(DjangoModelFactory):
    class Meta:
        model = Contractor

    organisation = factory.SubFactory(OrganisationFactory)
    name = factory.Sequence(lambda n: f"Propreté {n}")
    trade = "cleaning"


class ContractorContractFactory(DjangoModelFactory):
    class Meta:
        model = ContractorContract

    contractor = factory.SubFactory(ContractorFactory)
    residence = factory.SubFactory(
        ResidenceFactory, agency__organisation=factory.SelfAttribute("...contractor.organisation")
    )
    trade = factory.SelfAttribute("contractor.trade")
    start_date = factory.LazyFunction(lambda: timezone.localdate() - dt.timedelta(days=30))
    end_date = None


class ContractorMemberFactory(DjangoModelFactory):
    class Meta:
        model = ContractorMember

    contractor = factory.SubFactory(ContractorFactory)
    user = factory.SubFactory(
        UserFactory,
        role="contractor",
        organisation=factory.SelfAttribute("..contractor.organisation"),
    )


@dataclass
class Place:
    """A dwelling with its whole hierarchy and a household in force (one tenant, the holder)."""

    organisation: object
    agency: object
    residence: object
    building: object
    entrance: object
    dwelling: object
    lease: object
    tenant: object


def place_factory(
    *, organisation=None, agency=None, residence=None, building=None, entrance=None
) -> Place:
    """A new dwelling (and whatever of its hierarchy is not given) leased to a new tenant."""
    if entrance is not None:
        building = entrance.building
    if building is not None:
        residence = building.residence
    if residence is not None:
        agency = residence.agency
    if agency is not None:
        organisation = agency.organisation
    organisation = organisation or OrganisationFactory()
    agency = agency or AgencyFactory(organisation=organisation)
    residence = residence or ResidenceFactory(agency=agency)
    building = building or BuildingFactory(residence=residence)
    entrance = entrance or EntranceFactory(building=building)
    dwelling = DwellingFactory(entrance=entrance)
    lease = LeaseFactory(dwelling=dwelling)
    tenant = TenantFactory(organisation=organisation)
    HouseholdMemberFactory(lease=lease, person=tenant)
    return Place(organisation, agency, residence, building, entrance, dwelling, lease, tenant)


ROLES = (
    "tenant",
    "delegate",
    "caretaker",
    "technician",
    "contractor",
    "agency_staff",
    "manager",
    "admin",
)


@dataclass
class ScopeWorld:
    """One person per role around `home`, and three places each out of some roles' scope.

    - other_tenant: same residence and organisation as home, another building and tenant;
      out of scope for the tenant and their delegate only.
    - other_residence: same organisation, another agency and residence; in scope for the
      manager and the administrator only.
    - other_organisation: another landlord; out of scope for everyone.
    """

    home: Place
    other_tenant: Place
    other_residence: Place
    other_organisation: Place
    users: dict

    CASES = ("other_tenant", "other_residence", "other_organisation")
    OUT_OF_SCOPE = {
        "other_tenant": frozenset({"tenant", "delegate"}),
        "other_residence": frozenset(ROLES) - {"manager", "admin"},
        "other_organisation": frozenset(ROLES),
    }

    def place(self, case: str) -> Place:
        return getattr(self, case)


def scope_world() -> ScopeWorld:
    """Build the world the selector tests and the access matrix share."""
    home = place_factory()
    organisation = home.organisation
    other_tenant = place_factory(residence=home.residence)
    other_residence = place_factory(organisation=organisation)
    other_organisation = place_factory()

    delegation = DelegationFactory(grantor=home.tenant)
    caretaker = CaretakerAssignmentFactory(residence=home.residence).caretaker
    team = TeamFactory(organisation=organisation)
    TeamSectorFactory(team=team, residence=home.residence)
    technician = TeamMembershipFactory(team=team).user
    contractor_company = ContractorFactory(organisation=organisation)
    ContractorContractFactory(contractor=contractor_company, residence=home.residence)
    contractor = ContractorMemberFactory(contractor=contractor_company).user
    agency_staff = AgencyMembershipFactory(agency=home.agency).user
    manager = UserFactory(organisation=organisation, role="manager")
    admin = UserFactory(organisation=organisation, role="admin", is_staff=True)

    # Everyone in the other places has a counterpart, so "absent" is never "absent anyway".
    CaretakerAssignmentFactory(residence=other_residence.residence)
    CaretakerAssignmentFactory(residence=other_organisation.residence)
    AgencyMembershipFactory(agency=other_residence.agency)
    DelegationFactory(grantor=other_tenant.tenant)

    users = {
        "tenant": home.tenant,
        "delegate": delegation.delegate,
        "caretaker": caretaker,
        "technician": technician,
        "contractor": contractor,
        "agency_staff": agency_staff,
        "manager": manager,
        "admin": admin,
    }
    return ScopeWorld(home, other_tenant, other_residence, other_organisation, users)


def seed_fuzz_estate(organisation) -> Place:
    """Estate objects of every kind for the API fuzzer (tests/fuzz_data.py)."""
    home = place_factory(organisation=organisation)
    neighbour = place_factory(entrance=home.entrance)
    area = CommonAreaFactory(entrance=home.entrance)
    CommonAreaFactory(entrance=None, building=home.building, kind="cellar")
    CommonAreaFactory(entrance=None, residence=home.residence, kind="outdoor")
    EquipmentFactory(dwelling=home.dwelling)
    substation = EquipmentFactory(dwelling=None, common_area=area, kind="heating_substation")
    substation.serves_dwellings.add(home.dwelling, neighbour.dwelling)
    substation.serves_entrances.add(home.entrance)
    DelegationFactory(grantor=home.tenant)
    CaretakerAssignmentFactory(residence=home.residence)
    return home
