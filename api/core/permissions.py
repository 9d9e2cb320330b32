"""Permission and lookup helpers shared by the apps' views."""

import uuid

from rest_framework.exceptions import NotFound
from rest_framework.permissions import BasePermission


class ActionRoles(BasePermission):
    """The roles allowed to call each action of a view (`view.action_roles`)."""

    message = "Your role does not allow this."

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not user or not user.is_authenticated or user.organisation_id is None:
            return False
        roles = view.action_roles.get(getattr(view, "action", None) or request.method.lower())
        if roles is None:
            roles = view.default_read_roles if request.method == "GET" else frozenset()
        return user.role in roles


def uuid_or_404(value) -> uuid.UUID:
    """A path's id as a UUID; anything else names nothing, so it is a 404, not a 400."""
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise NotFound() from None
