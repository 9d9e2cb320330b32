"""Acting for someone else: a delegate for the tenant who delegated, or staff with a reason.

A request carries `X-On-Behalf-Of: <user id>` (and `X-On-Behalf-Reason` for staff). Every
history row written for that request records both the actor and the person acted for.
"""

import uuid
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework.exceptions import NotFound

from api.core.exceptions import ServiceError
from api.core.roles import Role

from . import selectors
from .models import Delegation

User = get_user_model()

ON_BEHALF_OF_HEADER = "X-On-Behalf-Of"
ON_BEHALF_REASON_HEADER = "X-On-Behalf-Reason"
REASON_MAX_LENGTH = 500

ACTING_PARAMETERS = [
    OpenApiParameter(
        ON_BEHALF_OF_HEADER,
        OpenApiTypes.UUID,
        OpenApiParameter.HEADER,
        description=(
            "Act for this tenant: as their delegate, or as agency staff / manager "
            "(then with a reason)."
        ),
    ),
    OpenApiParameter(
        ON_BEHALF_REASON_HEADER,
        OpenApiTypes.STR,
        OpenApiParameter.HEADER,
        description="Why staff act for the tenant; required with X-On-Behalf-Of for staff.",
    ),
]


@dataclass(frozen=True)
class ActingContext:
    """Who acts, for whom (None: for themselves), and why."""

    actor: object
    on_behalf_of: object | None = None
    reason: str = ""
    delegation: Delegation | None = None

    @property
    def subject(self):
        """The person the action is for: the tenant acted for, or the actor."""
        return self.on_behalf_of or self.actor

    @property
    def may_create_requests(self) -> bool:
        """A delegate may be limited to viewing."""
        return self.delegation is None or self.delegation.can_create_requests


def acting_context(request) -> ActingContext:
    """Read and check the on-behalf headers of an authenticated request."""
    actor = request.user
    raw = request.headers.get(ON_BEHALF_OF_HEADER, "").strip()
    reason = request.headers.get(ON_BEHALF_REASON_HEADER, "").strip()
    if not raw:
        return ActingContext(actor=actor)
    try:
        target_id = uuid.UUID(raw)
    except ValueError as exc:
        raise ServiceError(
            "Not a valid person id.", code="invalid", field=ON_BEHALF_OF_HEADER
        ) from exc
    if target_id == actor.pk:
        raise ServiceError(
            "You act for yourself without this header.", code="invalid", field=ON_BEHALF_OF_HEADER
        )
    if len(reason) > REASON_MAX_LENGTH:
        raise ServiceError(
            f"At most {REASON_MAX_LENGTH} characters.", field=ON_BEHALF_REASON_HEADER
        )

    if actor.role == Role.TENANT:
        delegation = (
            selectors.active_delegations_received(actor)
            .filter(grantor_id=target_id)
            .select_related("grantor")
            .order_by("-can_create_requests", "-expires_at")
            .first()
        )
        if delegation is None:
            raise NotFound()
        return ActingContext(
            actor=actor, on_behalf_of=delegation.grantor, reason=reason, delegation=delegation
        )

    if actor.role in selectors.DELEGATION_SUPERVISOR_ROLES:
        target = selectors.people_visible_to(actor).filter(pk=target_id, role=Role.TENANT).first()
        if target is None:
            raise NotFound()
        if not reason:
            raise ServiceError(
                "Say why you act for this tenant.", code="required", field=ON_BEHALF_REASON_HEADER
            )
        return ActingContext(actor=actor, on_behalf_of=target, reason=reason)

    raise ServiceError(
        "Your role cannot act on a tenant's behalf.",
        code="acting_not_allowed",
        field=ON_BEHALF_OF_HEADER,
    )
