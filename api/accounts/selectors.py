"""Reads about people: a person's own profile and roles, and the personal data access log."""

from django.db.models import QuerySet

from api.core.roles import Role

from .models import PersonalDataAccess, User

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
