"""Reads about people: a person's own profile and roles, and the personal data access log."""

from collections.abc import Iterable

from django.db.models import Q, QuerySet
from django.utils import timezone

from api.core.roles import Role

from .models import PersonalDataAccess, User, Vulnerability, VulnerabilityKind

TENANT = "tenant"
DELEGATE = "delegate"
# Roles shown by /me/ beyond the account's own: they follow leases and delegations.
EXTRA_ROLES = (DELEGATE,)


def user_roles(*, user: User) -> list[str]:
    """The account's role (unless tenant), then "tenant" and "delegate" as leases allow.

    A tenant account without a current lease or delegation has no role at all: its scope is
    empty until a lease lists it again.
    """
    from api.estate.selectors import active_delegations_received, current_household_dwellings

    roles: list[str] = []
    if user.role != Role.TENANT:
        roles.append(user.role)
    if current_household_dwellings(user).exists():
        roles.append(TENANT)
    if active_delegations_received(user).exists():
        roles.append(DELEGATE)
    return roles


def me_profile(*, user: User) -> dict:
    """What `GET /api/v1/me/` shows the person about themselves."""
    from api.estate.selectors import user_scope_summary

    return {
        "id": user.id,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "full_name": user.full_name,
        "phone": user.phone.as_e164 if user.phone else None,
        "email": user.email,
        "role": user.role,
        "roles": user_roles(user=user),
        "language": user.language,
        "scope": user_scope_summary(user),
    }


def personal_data_accesses_of(*, subject: User) -> QuerySet[PersonalDataAccess]:
    """Who on the staff read this person's data, newest first."""
    return PersonalDataAccess.objects.filter(subject=subject).select_related("viewer")


# --- Vulnerabilities (kept with consent, read on a need-to-know basis) -----------------------

# Staff in charge of people's homes; technicians and contractors act on priorities alone.
VULNERABILITY_READER_ROLES = frozenset(
    {Role.CARETAKER, Role.AGENCY_STAFF, Role.MANAGER, Role.ADMIN}
)
# Which vulnerabilities make which outage more urgent.
HEATING_VULNERABILITIES = frozenset(
    {
        VulnerabilityKind.ELDERLY,
        VulnerabilityKind.COLD_SENSITIVE,
        VulnerabilityKind.INFANT,
        VulnerabilityKind.DISABILITY,
    }
)
LIFT_VULNERABILITIES = frozenset(
    {
        VulnerabilityKind.REDUCED_MOBILITY,
        VulnerabilityKind.DISABILITY,
        VulnerabilityKind.ELDERLY,
        VulnerabilityKind.POWERED_MEDICAL_EQUIPMENT,
    }
)
POWER_VULNERABILITIES = frozenset({VulnerabilityKind.POWERED_MEDICAL_EQUIPMENT})


def _current_members(dwellings) -> QuerySet:
    """Ids of the people in the current household of the given dwellings (a queryset of ids)."""
    from api.estate.models import HouseholdMember
    from api.estate.selectors import current_lease_q

    return HouseholdMember.objects.filter(
        current_lease_q(timezone.localdate(), "lease__"), lease__dwelling_id__in=dwellings
    ).values("person_id")


def vulnerabilities_visible_to(user) -> QuerySet[Vulnerability]:
    """Vulnerabilities the user may see: their own; for staff in charge, those of the homes
    they look after (current households only)."""
    from api.estate.selectors import dwellings_visible_to

    if user is None or not user.is_authenticated:
        return Vulnerability.objects.none()
    visible = Q(person_id=user.pk)
    if user.role in VULNERABILITY_READER_ROLES and user.organisation_id is not None:
        members = _current_members(dwellings_visible_to(user).values("id"))
        visible |= Q(person_id__in=members, person__organisation_id=user.organisation_id)
    return Vulnerability.objects.filter(visible)


def vulnerability_list(*, viewer, dwelling=None, building=None) -> list[Vulnerability]:
    """The vulnerabilities the viewer may see, in a dwelling or building; staff reads are logged."""
    from api.estate.models import Dwelling

    from .services import personal_data_access_record

    rows = vulnerabilities_visible_to(viewer).select_related("person")
    if dwelling is not None or building is not None:
        dwellings = Dwelling.objects.all()
        if dwelling is not None:
            dwellings = dwellings.filter(pk=getattr(dwelling, "pk", dwelling))
        if building is not None:
            dwellings = dwellings.filter(entrance__building_id=getattr(building, "pk", building))
        rows = rows.filter(person_id__in=_current_members(dwellings.values("id")))
    rows = list(rows)
    personal_data_access_record(
        viewer=viewer, subjects=[row.person_id for row in rows], context="vulnerability.list"
    )
    return rows


def vulnerable_households_exist(
    *, kinds: Iterable[str], dwelling=None, building=None, residence=None
) -> bool:
    """Whether someone in the current household of the dwelling, or of any dwelling of the
    building or residence, has one of these consented vulnerabilities (no one reads them)."""
    from api.estate.models import Dwelling

    if dwelling is not None:
        dwellings = Dwelling.objects.filter(pk=dwelling.pk)
    elif building is not None:
        dwellings = Dwelling.objects.filter(entrance__building_id=building.pk)
    elif residence is not None:
        dwellings = Dwelling.objects.filter(entrance__building__residence_id=residence.pk)
    else:
        return False
    return Vulnerability.objects.filter(
        kind__in=list(kinds), person_id__in=_current_members(dwellings.values("id"))
    ).exists()
