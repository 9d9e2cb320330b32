"""The roles a person can hold in Palier."""

from django.db import models


class Role(models.TextChoices):
    """What a person does for (or with) the landlord; decides their scope."""

    TENANT = "tenant", "Tenant"
    CARETAKER = "caretaker", "Caretaker"
    TECHNICIAN = "technician", "Technician"
    CONTRACTOR = "contractor", "Contractor"
    AGENCY_STAFF = "agency_staff", "Agency staff"
    MANAGER = "manager", "Manager"
    ADMIN = "admin", "Administrator"


STAFF_ROLES = frozenset(
    {Role.CARETAKER, Role.TECHNICIAN, Role.AGENCY_STAFF, Role.MANAGER, Role.ADMIN}
)
