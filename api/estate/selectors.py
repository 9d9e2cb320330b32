"""Reads of the estate, each scoped to what the given person may see.

Scope rules: a tenant sees the dwellings whose current lease lists them as a household member
(dates decide, so a new tenant never sees the previous one's data), plus those of tenants who
delegated to them, and the common areas of their entrance, building and residence. A caretaker
sees their assigned residences, a technician the residences of their teams' sectors, a contractor
the residences of their contracts in force, agency staff their agencies' residences, a manager or
an administrator the whole organisation. Nobody ever sees another organisation.
"""

from datetime import date, datetime

from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet
from django.utils import timezone

from api.core.roles import Role

from .models import (
    Agency,
    AgencyMembership,
    Building,
    CaretakerAssignment,
    CommonArea,
    ContractorContract,
    ContractorMember,
    Delegation,
    Dwelling,
    Entrance,
    Equipment,
    HouseholdMember,
    Lease,
    Residence,
    TeamMembership,
    TeamSector,
)

User = get_user_model()

ORGANISATION_WIDE_ROLES = frozenset({Role.MANAGER, Role.ADMIN})
RESIDENCE_SCOPED_ROLES = frozenset(
    {Role.CARETAKER, Role.TECHNICIAN, Role.CONTRACTOR, Role.AGENCY_STAFF}
)
LEASE_READER_ROLES = frozenset(
    {Role.TENANT, Role.CARETAKER, Role.TECHNICIAN, Role.AGENCY_STAFF, Role.MANAGER, Role.ADMIN}
)
PEOPLE_READER_ROLES = frozenset(
    {Role.CARETAKER, Role.TECHNICIAN, Role.AGENCY_STAFF, Role.MANAGER, Role.ADMIN}
)
DELEGATION_SUPERVISOR_ROLES = frozenset({Role.AGENCY_STAFF, Role.MANAGER, Role.ADMIN})
ESTATE_WRITER_ROLES = frozenset({Role.AGENCY_STAFF, Role.MANAGER, Role.ADMIN})
SUMMARY_LIMIT = 100


def _organisation_id(user) -> object | None:
    """The user's organisation id, or None when they may see nothing at all."""
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return None
    return user.organisation_id


def as_date(at: date | datetime | None) -> date:
    """A calendar day in the deployment's time zone (now when not given)."""
    if at is None:
        return timezone.localdate()
    if isinstance(at, datetime):
        return timezone.localdate(at)
    return at


def current_lease_q(at: date, prefix: str = "") -> Q:
    """Leases in force on day `at` (the end date is the last day of the tenancy)."""
    return Q(**{f"{prefix}start_date__lte": at}) & (
        Q(**{f"{prefix}end_date__isnull": True}) | Q(**{f"{prefix}end_date__gte": at})
    )


def active_delegation_q(at: datetime, prefix: str = "") -> Q:
    """Delegations in force at instant `at`."""
    return Q(
        **{
            f"{prefix}revoked_at__isnull": True,
            f"{prefix}starts_at__lte": at,
            f"{prefix}expires_at__gt": at,
        }
    )


def current_household_dwellings(user, *, at: date | datetime | None = None) -> QuerySet[Dwelling]:
    """Dwellings whose lease in force on `at` lists the user as a household member."""
    organisation_id = _organisation_id(user)
    if organisation_id is None:
        return Dwelling.objects.none()
    day = as_date(at)
    leases = HouseholdMember.objects.filter(current_lease_q(day, "lease__"), person=user)
    return Dwelling.objects.filter(
        organisation_id=organisation_id, id__in=leases.values("lease__dwelling_id")
    )


def active_delegations_received(user, *, at: datetime | None = None) -> QuerySet[Delegation]:
    """Delegations in force that the user received."""
    organisation_id = _organisation_id(user)
    if organisation_id is None:
        return Delegation.objects.none()
    return Delegation.objects.filter(
        active_delegation_q(at or timezone.now()),
        organisation_id=organisation_id,
        delegate=user,
    )


def delegated_dwellings(user, *, at: datetime | None = None) -> QuerySet[Dwelling]:
    """Current dwellings of the tenants who delegated to the user."""
    organisation_id = _organisation_id(user)
    if organisation_id is None:
        return Dwelling.objects.none()
    moment = at or timezone.now()
    grantors = active_delegations_received(user, at=moment).values("grantor_id")
    leases = HouseholdMember.objects.filter(
        current_lease_q(as_date(moment), "lease__"), person_id__in=grantors
    )
    return Dwelling.objects.filter(
        organisation_id=organisation_id, id__in=leases.values("lease__dwelling_id")
    )


def _tenant_dwelling_ids(user) -> QuerySet:
    """Ids of the dwellings a tenant sees: their own and their grantors'."""
    own = current_household_dwellings(user).values("id")
    delegated = delegated_dwellings(user).values("id")
    return Dwelling.objects.filter(Q(id__in=own) | Q(id__in=delegated)).values("id")


def _staff_residences(user) -> QuerySet[Residence]:
    """Residences a member of staff or a contractor is responsible for."""
    organisation_id = user.organisation_id
    residences = Residence.objects.filter(organisation_id=organisation_id)
    if user.role in ORGANISATION_WIDE_ROLES:
        return residences
    if user.role == Role.CARETAKER:
        ids = CaretakerAssignment.objects.filter(caretaker=user).values("residence_id")
    elif user.role == Role.TECHNICIAN:
        teams = TeamMembership.objects.filter(user=user).values("team_id")
        ids = TeamSector.objects.filter(team_id__in=teams).values("residence_id")
    elif user.role == Role.CONTRACTOR:
        today = timezone.localdate()
        contractors = ContractorMember.objects.filter(user=user).values("contractor_id")
        ids = ContractorContract.objects.filter(
            current_lease_q(today), contractor_id__in=contractors
        ).values("residence_id")
    elif user.role == Role.AGENCY_STAFF:
        agencies = AgencyMembership.objects.filter(user=user).values("agency_id")
        ids = Residence.objects.filter(agency_id__in=agencies).values("id")
    else:
        return residences.none()
    return residences.filter(id__in=ids)


def _is_tenant(user) -> bool:
    return user.role == Role.TENANT


def residences_visible_to(user) -> QuerySet[Residence]:
    """Residences the user may see."""
    organisation_id = _organisation_id(user)
    if organisation_id is None:
        return Residence.objects.none()
    if _is_tenant(user):
        dwellings = Dwelling.objects.filter(id__in=_tenant_dwelling_ids(user))
        return Residence.objects.filter(
            organisation_id=organisation_id,
            id__in=dwellings.values("entrance__building__residence_id"),
        )
    return _staff_residences(user)


def buildings_visible_to(user) -> QuerySet[Building]:
    """Buildings the user may see: a tenant only their own building(s)."""
    organisation_id = _organisation_id(user)
    if organisation_id is None:
        return Building.objects.none()
    if _is_tenant(user):
        dwellings = Dwelling.objects.filter(id__in=_tenant_dwelling_ids(user))
        ids = dwellings.values("entrance__building_id")
        return Building.objects.filter(organisation_id=organisation_id, id__in=ids)
    return Building.objects.filter(
        organisation_id=organisation_id, residence_id__in=_staff_residences(user).values("id")
    )


def entrances_visible_to(user) -> QuerySet[Entrance]:
    """Entrances the user may see: a tenant only their own entrance(s)."""
    organisation_id = _organisation_id(user)
    if organisation_id is None:
        return Entrance.objects.none()
    if _is_tenant(user):
        dwellings = Dwelling.objects.filter(id__in=_tenant_dwelling_ids(user))
        ids = dwellings.values("entrance_id")
        return Entrance.objects.filter(organisation_id=organisation_id, id__in=ids)
    buildings = Building.objects.filter(residence_id__in=_staff_residences(user).values("id"))
    return Entrance.objects.filter(
        organisation_id=organisation_id, building_id__in=buildings.values("id")
    )


def dwellings_visible_to(user) -> QuerySet[Dwelling]:
    """Dwellings the user may see."""
    organisation_id = _organisation_id(user)
    if organisation_id is None:
        return Dwelling.objects.none()
    if _is_tenant(user):
        return Dwelling.objects.filter(
            organisation_id=organisation_id, id__in=_tenant_dwelling_ids(user)
        )
    entrances = Entrance.objects.filter(
        building__residence_id__in=_staff_residences(user).values("id")
    )
    return Dwelling.objects.filter(
        organisation_id=organisation_id, entrance_id__in=entrances.values("id")
    )


def common_areas_visible_to(user) -> QuerySet[CommonArea]:
    """Common areas of the entrances, buildings and residences the user may see."""
    organisation_id = _organisation_id(user)
    if organisation_id is None:
        return CommonArea.objects.none()
    if _is_tenant(user):
        dwellings = Dwelling.objects.filter(id__in=_tenant_dwelling_ids(user))
        place = (
            Q(entrance_id__in=dwellings.values("entrance_id"))
            | Q(building_id__in=dwellings.values("entrance__building_id"))
            | Q(residence_id__in=dwellings.values("entrance__building__residence_id"))
        )
    else:
        residences = _staff_residences(user).values("id")
        place = (
            Q(
                entrance_id__in=Entrance.objects.filter(
                    building__residence_id__in=residences
                ).values("id")
            )
            | Q(building_id__in=Building.objects.filter(residence_id__in=residences).values("id"))
            | Q(residence_id__in=residences)
        )
    return CommonArea.objects.filter(place, organisation_id=organisation_id)


def equipment_visible_to(user) -> QuerySet[Equipment]:
    """Equipment located in, or serving, a dwelling, entrance or common area the user may see."""
    organisation_id = _organisation_id(user)
    if organisation_id is None:
        return Equipment.objects.none()
    dwellings = dwellings_visible_to(user).values("id")
    entrances = entrances_visible_to(user).values("id")
    serving = Equipment.serves_dwellings.through.objects.filter(dwelling_id__in=dwellings)
    serving_entrances = Equipment.serves_entrances.through.objects.filter(entrance_id__in=entrances)
    return Equipment.objects.filter(
        Q(dwelling_id__in=dwellings)
        | Q(common_area_id__in=common_areas_visible_to(user).values("id"))
        | Q(id__in=serving.values("equipment_id"))
        | Q(id__in=serving_entrances.values("equipment_id")),
        organisation_id=organisation_id,
    )


def leases_visible_to(user) -> QuerySet[Lease]:
    """Leases: a tenant their own and their grantors' current ones; staff those of their scope."""
    organisation_id = _organisation_id(user)
    if organisation_id is None or user.role not in LEASE_READER_ROLES:
        return Lease.objects.none()
    leases = Lease.objects.filter(organisation_id=organisation_id)
    if _is_tenant(user):
        own = HouseholdMember.objects.filter(person=user).values("lease_id")
        grantors = active_delegations_received(user).values("grantor_id")
        delegated = HouseholdMember.objects.filter(
            current_lease_q(timezone.localdate(), "lease__"), person_id__in=grantors
        ).values("lease_id")
        return leases.filter(Q(id__in=own) | Q(id__in=delegated))
    if user.role in ORGANISATION_WIDE_ROLES:
        return leases
    return leases.filter(dwelling_id__in=dwellings_visible_to(user).values("id"))


def delegations_visible_to(user) -> QuerySet[Delegation]:
    """Delegations given or received; agency staff and managers also see their tenants'."""
    organisation_id = _organisation_id(user)
    if organisation_id is None:
        return Delegation.objects.none()
    delegations = Delegation.objects.filter(organisation_id=organisation_id)
    if user.role in ORGANISATION_WIDE_ROLES:
        return delegations
    if user.role == Role.AGENCY_STAFF:
        tenants = HouseholdMember.objects.filter(
            lease__dwelling_id__in=dwellings_visible_to(user).values("id")
        ).values("person_id")
        return delegations.filter(grantor_id__in=tenants)
    if _is_tenant(user):
        return delegations.filter(Q(grantor=user) | Q(delegate=user))
    return delegations.none()


def people_visible_to(user) -> QuerySet:
    """People a member of staff may look up; anyone else sees only themselves."""
    organisation_id = _organisation_id(user)
    if organisation_id is None:
        return User.objects.none()
    people = User.objects.filter(organisation_id=organisation_id)
    if user.role in ORGANISATION_WIDE_ROLES:
        return people
    if user.role not in PEOPLE_READER_ROLES:
        return people.filter(id=user.id)
    residences = _staff_residences(user).values("id")
    dwellings = dwellings_visible_to(user).values("id")
    members = HouseholdMember.objects.filter(lease__dwelling_id__in=dwellings)
    if user.role != Role.AGENCY_STAFF:
        members = members.filter(current_lease_q(timezone.localdate(), "lease__"))
    visible = Q(id=user.id) | Q(id__in=members.values("person_id"))
    if user.role == Role.AGENCY_STAFF:
        grantors = members.values("person_id")
        agencies = AgencyMembership.objects.filter(user=user).values("agency_id")
        contracts = ContractorContract.objects.filter(residence_id__in=residences)
        visible |= (
            Q(id__in=Delegation.objects.filter(grantor_id__in=grantors).values("delegate_id"))
            | Q(id__in=AgencyMembership.objects.filter(agency_id__in=agencies).values("user_id"))
            | Q(
                id__in=CaretakerAssignment.objects.filter(residence_id__in=residences).values(
                    "caretaker_id"
                )
            )
            | Q(
                id__in=TeamMembership.objects.filter(
                    team__sectors__residence_id__in=residences
                ).values("user_id")
            )
            | Q(
                id__in=ContractorMember.objects.filter(
                    contractor_id__in=contracts.values("contractor_id")
                ).values("user_id")
            )
        )
    elif user.role == Role.TECHNICIAN:
        teams = TeamMembership.objects.filter(user=user).values("team_id")
        visible |= Q(id__in=TeamMembership.objects.filter(team_id__in=teams).values("user_id"))
    return people.filter(visible)


def agencies_visible_to(user) -> QuerySet[Agency]:
    """Agencies of the residences the user may see (a manager: all of the organisation's)."""
    organisation_id = _organisation_id(user)
    if organisation_id is None:
        return Agency.objects.none()
    agencies = Agency.objects.filter(organisation_id=organisation_id)
    if user.role in ORGANISATION_WIDE_ROLES:
        return agencies
    if user.role == Role.AGENCY_STAFF:
        mine = AgencyMembership.objects.filter(user=user).values("agency_id")
        return agencies.filter(id__in=mine)
    return agencies.filter(id__in=residences_visible_to(user).values("agency_id"))


def dwelling_label(dwelling: Dwelling) -> str:
    """A human label: reference, residence, building and entrance, floor and door."""
    entrance = dwelling.entrance
    building = entrance.building
    parts = [
        building.residence.name,
        f"bât. {building.reference}",
        entrance.label or entrance.reference,
        f"étage {dwelling.floor}",
    ]
    if dwelling.door:
        parts.append(f"porte {dwelling.door}")
    return f"{dwelling.reference} – " + ", ".join(parts)


def user_scope_summary(user) -> dict:
    """What the person's scope covers, as shown by `GET /api/v1/me/`."""
    organisation_id = _organisation_id(user)
    if organisation_id is None:
        return {
            "organisation": None,
            "agencies": [],
            "residences": [],
            "residence_count": 0,
            "dwellings": [],
            "dwelling_count": 0,
        }
    organisation = user.organisation
    residences = residences_visible_to(user).order_by("name")
    summary = {
        "organisation": {
            "id": organisation.id,
            "name": organisation.name,
            "slug": organisation.slug,
        },
        "agencies": [
            {"id": agency.id, "name": agency.name}
            for agency in agencies_visible_to(user).order_by("name")[:SUMMARY_LIMIT]
        ],
        "residences": [
            {"id": r.id, "reference": r.reference, "name": r.name}
            for r in residences[:SUMMARY_LIMIT]
        ],
        "residence_count": residences.count(),
        "dwellings": [],
        "dwelling_count": 0,
    }
    if _is_tenant(user):
        own = set(current_household_dwellings(user).values_list("id", flat=True))
        dwellings = (
            dwellings_visible_to(user)
            .select_related("entrance__building__residence")
            .order_by("reference")
        )
        summary["dwellings"] = [
            {
                "id": d.id,
                "reference": d.reference,
                "label": dwelling_label(d),
                "via": "household" if d.id in own else "delegation",
            }
            for d in dwellings
        ]
        summary["dwelling_count"] = len(summary["dwellings"])
    else:
        summary["dwelling_count"] = dwellings_visible_to(user).count()
    return summary
