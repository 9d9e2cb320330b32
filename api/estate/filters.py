"""Query filters of the estate lists (plain UUIDs: an id out of scope just matches nothing)."""

import django_filters
from django.contrib.auth import get_user_model
from django.db.models import Q
from django.utils import timezone

from api.core.roles import Role

from .models import (
    Building,
    CommonArea,
    CommonAreaKind,
    Delegation,
    DelegationRelation,
    Dwelling,
    DwellingType,
    Entrance,
    Equipment,
    EquipmentKind,
    HouseholdMember,
    Lease,
    Residence,
)
from .selectors import active_delegation_q, current_lease_q

User = get_user_model()


class ResidenceFilter(django_filters.FilterSet):
    agency = django_filters.UUIDFilter(field_name="agency_id")
    priority_neighbourhood = django_filters.BooleanFilter()
    city = django_filters.CharFilter(lookup_expr="iexact")
    postcode = django_filters.CharFilter()

    class Meta:
        model = Residence
        fields = ["agency", "priority_neighbourhood", "city", "postcode"]


class BuildingFilter(django_filters.FilterSet):
    residence = django_filters.UUIDFilter(field_name="residence_id")

    class Meta:
        model = Building
        fields = ["residence"]


class EntranceFilter(django_filters.FilterSet):
    building = django_filters.UUIDFilter(field_name="building_id")
    residence = django_filters.UUIDFilter(field_name="building__residence_id")

    class Meta:
        model = Entrance
        fields = ["building", "residence"]


class DwellingFilter(django_filters.FilterSet):
    entrance = django_filters.UUIDFilter(field_name="entrance_id")
    building = django_filters.UUIDFilter(field_name="entrance__building_id")
    residence = django_filters.UUIDFilter(field_name="entrance__building__residence_id")
    type = django_filters.MultipleChoiceFilter(choices=DwellingType.choices)
    floor = django_filters.NumberFilter()
    floor_min = django_filters.NumberFilter(field_name="floor", lookup_expr="gte")
    floor_max = django_filters.NumberFilter(field_name="floor", lookup_expr="lte")
    occupied = django_filters.BooleanFilter(
        method="filter_occupied", label="With a lease in force today."
    )

    class Meta:
        model = Dwelling
        fields = ["entrance", "building", "residence", "type", "floor"]

    def filter_occupied(self, queryset, name, value):
        current = Lease.objects.filter(current_lease_q(timezone.localdate())).values("dwelling_id")
        return queryset.filter(id__in=current) if value else queryset.exclude(id__in=current)


class CommonAreaFilter(django_filters.FilterSet):
    kind = django_filters.MultipleChoiceFilter(choices=CommonAreaKind.choices)
    entrance = django_filters.UUIDFilter(field_name="entrance_id")
    building = django_filters.UUIDFilter(method="filter_building", label="In this building.")
    residence = django_filters.UUIDFilter(method="filter_residence", label="In this residence.")

    class Meta:
        model = CommonArea
        fields = ["kind", "entrance", "building", "residence"]

    def filter_building(self, queryset, name, value):
        return queryset.filter(Q(building_id=value) | Q(entrance__building_id=value))

    def filter_residence(self, queryset, name, value):
        return queryset.filter(
            Q(residence_id=value)
            | Q(building__residence_id=value)
            | Q(entrance__building__residence_id=value)
        )


class EquipmentFilter(django_filters.FilterSet):
    kind = django_filters.MultipleChoiceFilter(choices=EquipmentKind.choices)
    dwelling = django_filters.UUIDFilter(field_name="dwelling_id")
    common_area = django_filters.UUIDFilter(field_name="common_area_id")
    serves_dwelling = django_filters.UUIDFilter(field_name="serves_dwellings")
    residence = django_filters.UUIDFilter(method="filter_residence", label="In this residence.")
    serial = django_filters.CharFilter(lookup_expr="iexact")

    class Meta:
        model = Equipment
        fields = ["kind", "dwelling", "common_area", "serial"]

    def filter_residence(self, queryset, name, value):
        return queryset.filter(
            Q(dwelling__entrance__building__residence_id=value)
            | Q(common_area__residence_id=value)
            | Q(common_area__building__residence_id=value)
            | Q(common_area__entrance__building__residence_id=value)
        )


class LeaseFilter(django_filters.FilterSet):
    dwelling = django_filters.UUIDFilter(field_name="dwelling_id")
    residence = django_filters.UUIDFilter(field_name="dwelling__entrance__building__residence_id")
    person = django_filters.UUIDFilter(method="filter_person", label="With this household member.")
    current = django_filters.BooleanFilter(method="filter_current", label="In force today.")

    class Meta:
        model = Lease
        fields = ["dwelling", "residence"]

    def filter_person(self, queryset, name, value):
        leases = HouseholdMember.objects.filter(person_id=value).values("lease_id")
        return queryset.filter(id__in=leases)

    def filter_current(self, queryset, name, value):
        condition = current_lease_q(timezone.localdate())
        return queryset.filter(condition) if value else queryset.exclude(condition)


class DelegationFilter(django_filters.FilterSet):
    direction = django_filters.ChoiceFilter(
        choices=[("given", "Given"), ("received", "Received")],
        method="filter_direction",
        label="Given by me or received by me.",
    )
    active = django_filters.BooleanFilter(method="filter_active", label="In force now.")
    relation = django_filters.ChoiceFilter(choices=DelegationRelation.choices)
    grantor = django_filters.UUIDFilter(field_name="grantor_id")

    class Meta:
        model = Delegation
        fields = ["direction", "active", "relation", "grantor"]

    def filter_direction(self, queryset, name, value):
        user = self.request.user
        return queryset.filter(grantor=user) if value == "given" else queryset.filter(delegate=user)

    def filter_active(self, queryset, name, value):
        condition = active_delegation_q(timezone.now())
        return queryset.filter(condition) if value else queryset.exclude(condition)


class PersonFilter(django_filters.FilterSet):
    role = django_filters.MultipleChoiceFilter(choices=Role.choices)
    residence = django_filters.UUIDFilter(
        method="filter_residence", label="Household member of a lease in force in this residence."
    )
    dwelling = django_filters.UUIDFilter(
        method="filter_dwelling", label="Household member of this dwelling's lease in force."
    )

    class Meta:
        model = User
        fields = ["role", "is_active", "language"]

    def _current_members(self):
        return HouseholdMember.objects.filter(current_lease_q(timezone.localdate(), "lease__"))

    def filter_residence(self, queryset, name, value):
        members = self._current_members().filter(
            lease__dwelling__entrance__building__residence_id=value
        )
        return queryset.filter(id__in=members.values("person_id"))

    def filter_dwelling(self, queryset, name, value):
        members = self._current_members().filter(lease__dwelling_id=value)
        return queryset.filter(id__in=members.values("person_id"))
