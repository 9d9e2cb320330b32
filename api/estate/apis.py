"""Estate endpoints: the register, leases, delegations and people, each scoped by a selector.

Plain CRUD through ViewSets: reads go through the selectors (so an object out of scope is a 404),
writes through the services.
"""

import uuid

from django.db.models import Prefetch
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from api.accounts.services import personal_data_access_record
from api.core.exceptions import ServiceError
from api.core.roles import Role

from . import selectors, services
from .acting import ACTING_PARAMETERS, acting_context
from .filters import (
    BuildingFilter,
    CommonAreaFilter,
    DelegationFilter,
    DwellingFilter,
    EntranceFilter,
    EquipmentFilter,
    LeaseFilter,
    PersonFilter,
    ResidenceFilter,
)
from .models import HouseholdMember
from .permissions import ALL_ROLES, RoleAccess
from .serializers import (
    BuildingInputSerializer,
    BuildingOutputSerializer,
    CommonAreaInputSerializer,
    CommonAreaOutputSerializer,
    DelegationInputSerializer,
    DelegationOutputSerializer,
    DelegationRevokeInputSerializer,
    DwellingInputSerializer,
    DwellingOutputSerializer,
    EntranceInputSerializer,
    EntranceOutputSerializer,
    EquipmentInputSerializer,
    EquipmentOutputSerializer,
    HouseholdMemberInputSerializer,
    HouseholdMemberOutputSerializer,
    LeaseEndInputSerializer,
    LeaseInputSerializer,
    LeaseOutputSerializer,
    PersonOutputSerializer,
    ResidenceInputSerializer,
    ResidenceOutputSerializer,
)

NO_CONTENT = OpenApiResponse(description="Deleted.")


class ScopedViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """List and detail through a selector; an id that is malformed or out of scope is a 404."""

    permission_classes = [IsAuthenticated, RoleAccess]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    read_roles = ALL_ROLES
    write_roles = selectors.ESTATE_WRITER_ROLES
    selector = None

    def scoped(self):
        return type(self).selector(self.request.user)

    def get_queryset(self):
        return self.scoped()

    def get_object(self):
        try:
            uuid.UUID(str(self.kwargs[self.lookup_field]))
        except ValueError as exc:
            raise NotFound() from exc
        return super().get_object()

    def input(self, serializer_class, *, partial: bool = False) -> dict:
        serializer = serializer_class(
            data=self.request.data, partial=partial, context=self.get_serializer_context()
        )
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    def output(self, instance, *, status_code: int = status.HTTP_200_OK) -> Response:
        # Re-read through the selector for the list's joins; fall back to the object itself.
        fresh = self.get_queryset().filter(pk=instance.pk).first() or instance
        return Response(self.get_serializer(fresh).data, status=status_code)


class RegisterViewSet(ScopedViewSet):
    """Create, change and delete through the estate services (agency staff, managers)."""

    input_serializer = None
    object_name = ""
    create_service = None
    update_service = None
    delete_service = None

    def create(self, request):
        data = self.input(self.input_serializer)
        instance = type(self).create_service(actor=request.user, **data)
        return self.output(instance, status_code=status.HTTP_201_CREATED)

    def partial_update(self, request, pk=None):
        instance = self.get_object()
        data = self.input(self.input_serializer, partial=True)
        type(self).update_service(actor=request.user, **{self.object_name: instance}, data=data)
        return self.output(instance)

    def destroy(self, request, pk=None):
        instance = self.get_object()
        type(self).delete_service(actor=request.user, **{self.object_name: instance})
        return Response(status=status.HTTP_204_NO_CONTENT)


def _register_schema(tag: str, output, input_serializer):
    return extend_schema_view(
        list=extend_schema(tags=[tag]),
        retrieve=extend_schema(tags=[tag]),
        create=extend_schema(tags=[tag], request=input_serializer, responses={201: output}),
        partial_update=extend_schema(tags=[tag], request=input_serializer, responses={200: output}),
        destroy=extend_schema(tags=[tag], responses={204: NO_CONTENT}),
    )


@_register_schema("estate", ResidenceOutputSerializer, ResidenceInputSerializer)
class ResidenceViewSet(RegisterViewSet):
    """Residences in the caller's scope."""

    selector = selectors.residences_visible_to
    serializer_class = ResidenceOutputSerializer
    input_serializer = ResidenceInputSerializer
    filterset_class = ResidenceFilter
    search_fields = ["name", "reference", "address", "city", "postcode"]
    ordering_fields = ["name", "reference", "city", "postcode", "created_at"]
    ordering = ["name"]
    object_name = "residence"
    create_service = staticmethod(services.residence_create)
    update_service = staticmethod(services.residence_update)
    delete_service = staticmethod(services.residence_delete)

    def get_queryset(self):
        return self.scoped().select_related("agency")


@_register_schema("estate", BuildingOutputSerializer, BuildingInputSerializer)
class BuildingViewSet(RegisterViewSet):
    """Buildings in the caller's scope (a tenant: their own)."""

    selector = selectors.buildings_visible_to
    serializer_class = BuildingOutputSerializer
    input_serializer = BuildingInputSerializer
    filterset_class = BuildingFilter
    search_fields = ["reference", "address", "residence__name"]
    ordering_fields = ["reference", "created_at"]
    ordering = ["reference"]
    object_name = "building"
    create_service = staticmethod(services.building_create)
    update_service = staticmethod(services.building_update)
    delete_service = staticmethod(services.building_delete)

    def get_queryset(self):
        return self.scoped().select_related("residence")


@_register_schema("estate", EntranceOutputSerializer, EntranceInputSerializer)
class EntranceViewSet(RegisterViewSet):
    """Entrances ("allées") in the caller's scope."""

    selector = selectors.entrances_visible_to
    serializer_class = EntranceOutputSerializer
    input_serializer = EntranceInputSerializer
    filterset_class = EntranceFilter
    search_fields = ["reference", "label"]
    ordering_fields = ["reference", "created_at"]
    ordering = ["reference"]
    object_name = "entrance"
    create_service = staticmethod(services.entrance_create)
    update_service = staticmethod(services.entrance_update)
    delete_service = staticmethod(services.entrance_delete)

    def get_queryset(self):
        return self.scoped().select_related("building")


@_register_schema("estate", DwellingOutputSerializer, DwellingInputSerializer)
class DwellingViewSet(RegisterViewSet):
    """Dwellings in the caller's scope (a tenant: their own and their grantors')."""

    selector = selectors.dwellings_visible_to
    serializer_class = DwellingOutputSerializer
    input_serializer = DwellingInputSerializer
    filterset_class = DwellingFilter
    search_fields = ["reference", "door"]
    ordering_fields = ["reference", "floor", "surface", "type", "created_at"]
    ordering = ["reference"]
    object_name = "dwelling"
    create_service = staticmethod(services.dwelling_create)
    update_service = staticmethod(services.dwelling_update)
    delete_service = staticmethod(services.dwelling_delete)

    def get_queryset(self):
        return self.scoped().select_related("entrance__building__residence")


@_register_schema("estate", CommonAreaOutputSerializer, CommonAreaInputSerializer)
class CommonAreaViewSet(RegisterViewSet):
    """Common areas of the entrances, buildings and residences in the caller's scope."""

    selector = selectors.common_areas_visible_to
    serializer_class = CommonAreaOutputSerializer
    input_serializer = CommonAreaInputSerializer
    filterset_class = CommonAreaFilter
    search_fields = ["name"]
    ordering_fields = ["kind", "name", "created_at"]
    ordering = ["kind", "name"]
    object_name = "common_area"
    create_service = staticmethod(services.common_area_create)
    update_service = staticmethod(services.common_area_update)
    delete_service = staticmethod(services.common_area_delete)


@_register_schema("estate", EquipmentOutputSerializer, EquipmentInputSerializer)
class EquipmentViewSet(RegisterViewSet):
    """Equipment located in, or serving, places in the caller's scope."""

    selector = selectors.equipment_visible_to
    serializer_class = EquipmentOutputSerializer
    input_serializer = EquipmentInputSerializer
    filterset_class = EquipmentFilter
    search_fields = ["make", "model", "serial"]
    ordering_fields = ["kind", "make", "install_date", "created_at"]
    ordering = ["kind", "make", "model"]
    object_name = "equipment"
    create_service = staticmethod(services.equipment_create)
    update_service = staticmethod(services.equipment_update)
    delete_service = staticmethod(services.equipment_delete)

    def get_queryset(self):
        return self.scoped().prefetch_related("serves_dwellings", "serves_entrances")


def _log_household_reads(viewer, leases, context: str) -> None:
    personal_data_access_record(
        viewer=viewer,
        subjects=[member.person_id for lease in leases for member in lease.members.all()],
        context=context,
    )


@extend_schema_view(
    list=extend_schema(tags=["leases"]),
    retrieve=extend_schema(tags=["leases"]),
    create=extend_schema(
        tags=["leases"], request=LeaseInputSerializer, responses={201: LeaseOutputSerializer}
    ),
)
class LeaseViewSet(ScopedViewSet):
    """Leases with their households: staff in their scope, a tenant their own."""

    selector = selectors.leases_visible_to
    serializer_class = LeaseOutputSerializer
    read_roles = selectors.LEASE_READER_ROLES
    filterset_class = LeaseFilter
    search_fields = ["reference", "dwelling__reference"]
    ordering_fields = ["start_date", "end_date", "reference", "created_at"]
    ordering = ["-start_date"]

    def get_queryset(self):
        return (
            self.scoped()
            .select_related("dwelling")
            .prefetch_related(Prefetch("members", HouseholdMember.objects.select_related("person")))
        )

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        _log_household_reads(request.user, page, "lease.list")
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    def retrieve(self, request, *args, **kwargs):
        lease = self.get_object()
        _log_household_reads(request.user, [lease], "lease.detail")
        return Response(self.get_serializer(lease).data)

    def create(self, request):
        data = self.input(LeaseInputSerializer)
        lease = services.lease_create(actor=request.user, **data)
        return self.output(lease, status_code=status.HTTP_201_CREATED)

    @extend_schema(
        tags=["leases"], request=LeaseEndInputSerializer, responses={200: LeaseOutputSerializer}
    )
    @action(detail=True, methods=["post"])
    def end(self, request, pk=None):
        """Set the last day of the tenancy."""
        lease = self.get_object()
        data = self.input(LeaseEndInputSerializer)
        services.lease_end(actor=request.user, lease=lease, **data)
        return self.output(lease)

    @extend_schema(
        tags=["leases"],
        request=HouseholdMemberInputSerializer,
        responses={201: HouseholdMemberOutputSerializer},
    )
    @action(detail=True, methods=["post"], url_path="members")
    def add_member(self, request, pk=None):
        """Add a co-holder or an occupant (an existing tenant, or a new one by phone)."""
        lease = self.get_object()
        data = self.input(HouseholdMemberInputSerializer)
        member = services.household_member_add(actor=request.user, lease=lease, **data)
        serializer = HouseholdMemberOutputSerializer(member, context=self.get_serializer_context())
        return Response(serializer.data, status=status.HTTP_201_CREATED)

    @extend_schema(tags=["leases"], request=None, responses={204: NO_CONTENT})
    @action(detail=True, methods=["delete"], url_path=r"members/(?P<member_id>[0-9a-fA-F-]{32,36})")
    def remove_member(self, request, pk=None, member_id=None):
        """Take an occupant or co-holder off the lease."""
        lease = self.get_object()
        member = lease.members.filter(pk=member_id).first()
        if member is None:
            raise NotFound()
        services.household_member_remove(actor=request.user, member=member)
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema_view(
    list=extend_schema(tags=["delegations"]),
    retrieve=extend_schema(tags=["delegations"]),
    create=extend_schema(
        tags=["delegations"],
        parameters=ACTING_PARAMETERS,
        request=DelegationInputSerializer,
        responses={201: DelegationOutputSerializer},
    ),
)
class DelegationViewSet(ScopedViewSet):
    """A tenant's delegations, given and received; agency staff see their tenants'."""

    selector = selectors.delegations_visible_to
    serializer_class = DelegationOutputSerializer
    read_roles = frozenset({Role.TENANT}) | selectors.DELEGATION_SUPERVISOR_ROLES
    write_roles = read_roles
    filterset_class = DelegationFilter
    search_fields = ["delegate__first_name", "delegate__last_name", "grantor__last_name"]
    ordering_fields = ["starts_at", "expires_at", "created_at"]
    ordering = ["-starts_at"]

    def get_queryset(self):
        return self.scoped().select_related("grantor", "delegate")

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        personal_data_access_record(
            viewer=request.user,
            subjects=[p for d in page for p in (d.grantor_id, d.delegate_id)],
            context="delegation.list",
        )
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    def retrieve(self, request, *args, **kwargs):
        delegation = self.get_object()
        personal_data_access_record(
            viewer=request.user,
            subjects=[delegation.grantor_id, delegation.delegate_id],
            context="delegation.detail",
        )
        return Response(self.get_serializer(delegation).data)

    def create(self, request):
        """Grant a delegation: a tenant for themselves, or agency staff for a tenant."""
        context = acting_context(request)
        if context.delegation is not None:
            raise ServiceError(
                "A delegate cannot pass a delegation on.", code="permission_denied", status_code=403
            )
        if request.user.role != Role.TENANT and context.on_behalf_of is None:
            raise ServiceError(
                "Say for which tenant you grant it.", code="required", field="X-On-Behalf-Of"
            )
        data = self.input(DelegationInputSerializer)
        delegation = services.delegation_grant(
            actor=request.user, grantor=context.subject, reason=context.reason, **data
        )
        return self.output(delegation, status_code=status.HTTP_201_CREATED)

    @extend_schema(
        tags=["delegations"],
        request=DelegationRevokeInputSerializer,
        responses={200: DelegationOutputSerializer},
    )
    @action(detail=True, methods=["post"])
    def revoke(self, request, pk=None):
        """End the delegation now (grantor, delegate, or agency staff for the grantor)."""
        delegation = self.get_object()
        data = self.input(DelegationRevokeInputSerializer)
        services.delegation_revoke(actor=request.user, delegation=delegation, **data)
        return self.output(delegation)


@extend_schema_view(
    list=extend_schema(tags=["people"]),
    retrieve=extend_schema(tags=["people"]),
)
class PersonViewSet(ScopedViewSet):
    """People in a member of staff's scope; every read is logged."""

    selector = selectors.people_visible_to
    serializer_class = PersonOutputSerializer
    read_roles = selectors.PEOPLE_READER_ROLES
    write_roles = frozenset()
    http_method_names = ["get", "head", "options"]
    filterset_class = PersonFilter
    search_fields = ["first_name", "last_name", "phone", "email"]
    ordering_fields = ["last_name", "first_name", "role", "created_at"]
    ordering = ["last_name", "first_name"]

    def get_queryset(self):
        user = self.request.user
        memberships = HouseholdMember.objects.filter(
            selectors.current_lease_q(timezone.localdate(), "lease__"),
            lease__dwelling_id__in=selectors.dwellings_visible_to(user).values("id"),
        ).select_related("lease__dwelling")
        return self.scoped().prefetch_related(
            Prefetch("household_memberships", memberships, to_attr="current_memberships")
        )

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        personal_data_access_record(viewer=request.user, subjects=page, context="people.list")
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    def retrieve(self, request, *args, **kwargs):
        person = self.get_object()
        personal_data_access_record(viewer=request.user, subjects=[person], context="people.detail")
        return Response(self.get_serializer(person).data)
