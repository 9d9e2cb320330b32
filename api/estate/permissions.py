"""Which roles may use an endpoint at all; which objects they reach is the selectors' job."""

from rest_framework.permissions import SAFE_METHODS, BasePermission

from api.core.roles import Role

ALL_ROLES = frozenset(Role)


class RoleAccess(BasePermission):
    """Reads need a role in `view.read_roles`, writes a role in `view.write_roles`."""

    message = "Your role does not allow this."

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not user or not user.is_authenticated or user.organisation_id is None:
            return False
        roles = view.read_roles if request.method in SAFE_METHODS else view.write_roles
        return user.role in roles
