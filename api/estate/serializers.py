"""Shapes of the estate API: scoped input fields, role-filtered output.

Output fields that carry personal data follow a per-viewer allowlist: a field the viewer may not
see is rendered as null (so the response shape never changes with the role).
"""

import datetime as dt

from django.contrib.auth import get_user_model
from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from phonenumber_field.serializerfields import PhoneNumberField
from rest_framework import serializers

from api.core.roles import Role

from . import selectors
from .models import (
    Agency,
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
    HouseholdRelation,
    Lease,
    Residence,
)

User = get_user_model()

STAFF_VIEWER_ROLES = frozenset(
    {Role.CARETAKER, Role.TECHNICIAN, Role.AGENCY_STAFF, Role.MANAGER, Role.ADMIN}
)


class ScopedPrimaryKeyRelatedField(serializers.PrimaryKeyRelatedField):
    """An id that must name an object in the requester's scope (else "does not exist")."""

    def __init__(self, *, selector, **kwargs):
        self.selector = selector
        kwargs.setdefault("pk_field", serializers.UUIDField())
        super().__init__(**kwargs)

    def get_queryset(self):
        request = self.context.get("request")
        return self.selector(getattr(request, "user", None))


def _viewer(serializer) -> object | None:
    request = serializer.context.get("request")
    return getattr(request, "user", None)


# --- output -----------------------------------------------------------------------------------


class AgencyBriefSerializer(serializers.ModelSerializer):
    class Meta:
        model = Agency
        fields = ["id", "name"]


class ResidenceOutputSerializer(serializers.ModelSerializer):
    agency = AgencyBriefSerializer(read_only=True)

    class Meta:
        model = Residence
        fields = [
            "id",
            "reference",
            "name",
            "address",
            "postcode",
            "city",
            "priority_neighbourhood",
            "latitude",
            "longitude",
            "agency",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class BuildingOutputSerializer(serializers.ModelSerializer):
    residence_reference = serializers.CharField(source="residence.reference", read_only=True)
    residence_name = serializers.CharField(source="residence.name", read_only=True)

    class Meta:
        model = Building
        fields = [
            "id",
            "reference",
            "address",
            "residence",
            "residence_reference",
            "residence_name",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class EntranceOutputSerializer(serializers.ModelSerializer):
    building_reference = serializers.CharField(source="building.reference", read_only=True)
    residence = serializers.UUIDField(source="building.residence_id", read_only=True)

    class Meta:
        model = Entrance
        fields = [
            "id",
            "reference",
            "label",
            "building",
            "building_reference",
            "residence",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class DwellingOutputSerializer(serializers.ModelSerializer):
    label = serializers.SerializerMethodField()
    entrance_label = serializers.SerializerMethodField()
    building = serializers.UUIDField(source="entrance.building_id", read_only=True)
    building_reference = serializers.CharField(source="entrance.building.reference", read_only=True)
    residence = serializers.UUIDField(source="entrance.building.residence_id", read_only=True)
    residence_name = serializers.CharField(
        source="entrance.building.residence.name", read_only=True
    )

    class Meta:
        model = Dwelling
        fields = [
            "id",
            "reference",
            "label",
            "floor",
            "door",
            "type",
            "surface",
            "entrance",
            "entrance_label",
            "building",
            "building_reference",
            "residence",
            "residence_name",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_label(self, dwelling: Dwelling) -> str:
        return selectors.dwelling_label(dwelling)

    def get_entrance_label(self, dwelling: Dwelling) -> str:
        return dwelling.entrance.label or dwelling.entrance.reference


class CommonAreaOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = CommonArea
        fields = [
            "id",
            "kind",
            "name",
            "entrance",
            "building",
            "residence",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class EquipmentOutputSerializer(serializers.ModelSerializer):
    """Staff see what a unit serves; tenants only the unit (not their neighbours' dwellings)."""

    serves_dwellings = serializers.SerializerMethodField()
    serves_entrances = serializers.SerializerMethodField()

    class Meta:
        model = Equipment
        fields = [
            "id",
            "kind",
            "make",
            "model",
            "serial",
            "install_date",
            "dwelling",
            "common_area",
            "serves_dwellings",
            "serves_entrances",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def _served(self, equipment: Equipment, relation: str) -> list | None:
        viewer = _viewer(self)
        if viewer is None or viewer.role not in STAFF_VIEWER_ROLES | {Role.CONTRACTOR}:
            return None
        return [obj.pk for obj in getattr(equipment, relation).all()]

    @extend_schema_field(serializers.ListField(child=serializers.UUIDField(), allow_null=True))
    def get_serves_dwellings(self, equipment: Equipment) -> list | None:
        return self._served(equipment, "serves_dwellings")

    @extend_schema_field(serializers.ListField(child=serializers.UUIDField(), allow_null=True))
    def get_serves_entrances(self, equipment: Equipment) -> list | None:
        return self._served(equipment, "serves_entrances")


NullableString = extend_schema_field({"type": "string", "nullable": True})


class HouseholdMemberOutputSerializer(serializers.ModelSerializer):
    """A household member; contact details only for staff and for the person themselves."""

    person = serializers.UUIDField(source="person_id", read_only=True)
    first_name = serializers.CharField(source="person.first_name", read_only=True)
    last_name = serializers.CharField(source="person.last_name", read_only=True)
    phone = serializers.SerializerMethodField()
    email = serializers.SerializerMethodField()

    class Meta:
        model = HouseholdMember
        fields = ["id", "relation", "person", "first_name", "last_name", "phone", "email"]
        read_only_fields = fields

    def _may_see_contact(self, member: HouseholdMember) -> bool:
        viewer = _viewer(self)
        if viewer is None:
            return False
        return viewer.role in STAFF_VIEWER_ROLES or viewer.pk == member.person_id

    @NullableString
    def get_phone(self, member: HouseholdMember) -> str | None:
        phone = member.person.phone
        return str(phone) if phone and self._may_see_contact(member) else None

    @NullableString
    def get_email(self, member: HouseholdMember) -> str | None:
        email = member.person.email
        return email if email and self._may_see_contact(member) else None


class LeaseOutputSerializer(serializers.ModelSerializer):
    dwelling_reference = serializers.CharField(source="dwelling.reference", read_only=True)
    is_current = serializers.SerializerMethodField()
    members = HouseholdMemberOutputSerializer(many=True, read_only=True)

    class Meta:
        model = Lease
        fields = [
            "id",
            "reference",
            "dwelling",
            "dwelling_reference",
            "start_date",
            "end_date",
            "is_current",
            "members",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_is_current(self, lease: Lease) -> bool:
        today = timezone.localdate()
        return lease.start_date <= today and (lease.end_date is None or lease.end_date >= today)


class PersonBriefSerializer(serializers.Serializer):
    """A party to a delegation; the phone only for staff, for themselves, and for the grantor."""

    id = serializers.UUIDField(read_only=True)
    first_name = serializers.CharField(read_only=True)
    last_name = serializers.CharField(read_only=True)
    phone = serializers.CharField(read_only=True, allow_null=True)


class DelegationOutputSerializer(serializers.ModelSerializer):
    grantor = serializers.SerializerMethodField()
    delegate = serializers.SerializerMethodField()
    is_active = serializers.SerializerMethodField()

    class Meta:
        model = Delegation
        fields = [
            "id",
            "grantor",
            "delegate",
            "relation",
            "can_create_requests",
            "starts_at",
            "expires_at",
            "revoked_at",
            "is_active",
            "created_at",
        ]
        read_only_fields = fields

    def _person(self, delegation: Delegation, person) -> dict:
        viewer = _viewer(self)
        phone = None
        if (
            person.phone
            and viewer is not None
            and (
                viewer.role in selectors.DELEGATION_SUPERVISOR_ROLES
                or viewer.pk == person.pk
                or (viewer.pk == delegation.grantor_id and person.pk == delegation.delegate_id)
            )
        ):
            phone = str(person.phone)
        return {
            "id": person.pk,
            "first_name": person.first_name,
            "last_name": person.last_name,
            "phone": phone,
        }

    @extend_schema_field(PersonBriefSerializer)
    def get_grantor(self, delegation: Delegation) -> dict:
        return self._person(delegation, delegation.grantor)

    @extend_schema_field(PersonBriefSerializer)
    def get_delegate(self, delegation: Delegation) -> dict:
        return self._person(delegation, delegation.delegate)

    def get_is_active(self, delegation: Delegation) -> bool:
        return delegation.is_active_at(timezone.now())


class DwellingBriefSerializer(serializers.Serializer):
    id = serializers.UUIDField(read_only=True)
    reference = serializers.CharField(read_only=True)


class PersonOutputSerializer(serializers.Serializer):
    """A person as staff see them; field-level caretakers and technicians get less."""

    id = serializers.UUIDField(read_only=True)
    first_name = serializers.CharField(read_only=True)
    last_name = serializers.CharField(read_only=True)
    role = serializers.ChoiceField(choices=Role.choices, read_only=True)
    phone = serializers.SerializerMethodField()
    email = serializers.SerializerMethodField()
    language = serializers.CharField(read_only=True)
    is_active = serializers.BooleanField(read_only=True)
    dwellings = serializers.SerializerMethodField()

    @NullableString
    def get_phone(self, person) -> str | None:
        return str(person.phone) if person.phone else None

    @NullableString
    def get_email(self, person) -> str | None:
        viewer = _viewer(self)
        field_staff = viewer is not None and viewer.role in {Role.CARETAKER, Role.TECHNICIAN}
        if field_staff and person.pk != viewer.pk:
            return None
        return person.email or None

    @extend_schema_field(DwellingBriefSerializer(many=True))
    def get_dwellings(self, person) -> list[dict]:
        memberships = getattr(person, "current_memberships", [])
        return [
            {"id": m.lease.dwelling_id, "reference": m.lease.dwelling.reference}
            for m in memberships
        ]


class ScopeSummarySerializer(serializers.Serializer):
    """The shape of `selectors.user_scope_summary()`, for `GET /api/v1/me/`."""

    class _Organisation(serializers.Serializer):
        id = serializers.UUIDField()
        name = serializers.CharField()
        slug = serializers.CharField()

    class _Agency(serializers.Serializer):
        id = serializers.UUIDField()
        name = serializers.CharField()

    class _Residence(serializers.Serializer):
        id = serializers.UUIDField()
        reference = serializers.CharField()
        name = serializers.CharField()

    class _Dwelling(serializers.Serializer):
        id = serializers.UUIDField()
        reference = serializers.CharField()
        label = serializers.CharField()
        via = serializers.ChoiceField(choices=["household", "delegation"])

    organisation = _Organisation(allow_null=True)
    agencies = _Agency(many=True)
    residences = _Residence(many=True, help_text="The first 100, by name.")
    residence_count = serializers.IntegerField()
    dwellings = _Dwelling(many=True, help_text="A tenant's own and delegated dwellings.")
    dwelling_count = serializers.IntegerField()


# --- input ------------------------------------------------------------------------------------


class ResidenceInputSerializer(serializers.Serializer):
    agency = ScopedPrimaryKeyRelatedField(
        selector=selectors.agencies_visible_to, queryset=Agency.objects.all()
    )
    reference = serializers.CharField(max_length=50)
    name = serializers.CharField(max_length=200)
    address = serializers.CharField(max_length=300, required=False, allow_blank=True)
    postcode = serializers.CharField(max_length=10, required=False, allow_blank=True)
    city = serializers.CharField(max_length=100, required=False, allow_blank=True)
    priority_neighbourhood = serializers.BooleanField(required=False)
    latitude = serializers.DecimalField(
        max_digits=9, decimal_places=6, min_value=-90, max_value=90, required=False, allow_null=True
    )
    longitude = serializers.DecimalField(
        max_digits=9,
        decimal_places=6,
        min_value=-180,
        max_value=180,
        required=False,
        allow_null=True,
    )


class BuildingInputSerializer(serializers.Serializer):
    residence = ScopedPrimaryKeyRelatedField(
        selector=selectors.residences_visible_to, queryset=Residence.objects.all()
    )
    reference = serializers.CharField(max_length=50)
    address = serializers.CharField(max_length=300, required=False, allow_blank=True)


class EntranceInputSerializer(serializers.Serializer):
    building = ScopedPrimaryKeyRelatedField(
        selector=selectors.buildings_visible_to, queryset=Building.objects.all()
    )
    reference = serializers.CharField(max_length=50)
    label = serializers.CharField(max_length=100, required=False, allow_blank=True)


class DwellingInputSerializer(serializers.Serializer):
    entrance = ScopedPrimaryKeyRelatedField(
        selector=selectors.entrances_visible_to, queryset=Entrance.objects.all()
    )
    reference = serializers.CharField(max_length=50)
    floor = serializers.IntegerField(min_value=-5, max_value=99, required=False)
    door = serializers.CharField(max_length=20, required=False, allow_blank=True)
    type = serializers.ChoiceField(choices=DwellingType.choices, required=False, allow_blank=True)
    surface = serializers.DecimalField(
        max_digits=6, decimal_places=2, min_value=1, max_value=9999, required=False, allow_null=True
    )


class CommonAreaInputSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=CommonAreaKind.choices)
    name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    entrance = ScopedPrimaryKeyRelatedField(
        selector=selectors.entrances_visible_to,
        queryset=Entrance.objects.all(),
        required=False,
        allow_null=True,
    )
    building = ScopedPrimaryKeyRelatedField(
        selector=selectors.buildings_visible_to,
        queryset=Building.objects.all(),
        required=False,
        allow_null=True,
    )
    residence = ScopedPrimaryKeyRelatedField(
        selector=selectors.residences_visible_to,
        queryset=Residence.objects.all(),
        required=False,
        allow_null=True,
    )


class EquipmentInputSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=EquipmentKind.choices)
    make = serializers.CharField(max_length=100, required=False, allow_blank=True)
    model = serializers.CharField(max_length=100, required=False, allow_blank=True)
    serial = serializers.CharField(max_length=100, required=False, allow_blank=True)
    install_date = serializers.DateField(required=False, allow_null=True)
    dwelling = ScopedPrimaryKeyRelatedField(
        selector=selectors.dwellings_visible_to,
        queryset=Dwelling.objects.all(),
        required=False,
        allow_null=True,
    )
    common_area = ScopedPrimaryKeyRelatedField(
        selector=selectors.common_areas_visible_to,
        queryset=CommonArea.objects.all(),
        required=False,
        allow_null=True,
    )
    serves_dwellings = ScopedPrimaryKeyRelatedField(
        selector=selectors.dwellings_visible_to,
        queryset=Dwelling.objects.all(),
        many=True,
        required=False,
    )
    serves_entrances = ScopedPrimaryKeyRelatedField(
        selector=selectors.entrances_visible_to,
        queryset=Entrance.objects.all(),
        many=True,
        required=False,
    )


def _people(user):
    return selectors.people_visible_to(user).filter(role=Role.TENANT)


class HouseholdMemberInputSerializer(serializers.Serializer):
    """Someone already known (`person`), or a new tenant by phone number."""

    relation = serializers.ChoiceField(choices=HouseholdRelation.choices)
    person = ScopedPrimaryKeyRelatedField(
        selector=_people, queryset=User.objects.all(), required=False, allow_null=True
    )
    phone = PhoneNumberField(required=False, allow_null=True)
    first_name = serializers.CharField(max_length=150, required=False, allow_blank=True)
    last_name = serializers.CharField(max_length=150, required=False, allow_blank=True)

    def validate(self, attrs):
        if not attrs.get("person") and not attrs.get("phone"):
            raise serializers.ValidationError({"phone": "Give a person or a phone number."})
        if attrs.get("phone") is not None:
            attrs["phone"] = attrs["phone"].as_e164
        return attrs


class LeaseInputSerializer(serializers.Serializer):
    dwelling = ScopedPrimaryKeyRelatedField(
        selector=selectors.dwellings_visible_to, queryset=Dwelling.objects.all()
    )
    reference = serializers.CharField(max_length=50)
    start_date = serializers.DateField()
    end_date = serializers.DateField(required=False, allow_null=True)
    members = HouseholdMemberInputSerializer(many=True, min_length=1, max_length=20)


class LeaseEndInputSerializer(serializers.Serializer):
    end_date = serializers.DateField()


class DelegationInputSerializer(serializers.Serializer):
    phone = PhoneNumberField(help_text="The delegate's mobile number, for their login.")
    first_name = serializers.CharField(max_length=150, required=False, allow_blank=True)
    last_name = serializers.CharField(max_length=150, required=False, allow_blank=True)
    relation = serializers.ChoiceField(choices=DelegationRelation.choices)
    can_create_requests = serializers.BooleanField(required=False, default=True)
    starts_at = serializers.DateTimeField(required=False, allow_null=True)
    expires_at = serializers.DateTimeField()

    def validate_phone(self, value):
        return value.as_e164

    def validate(self, attrs):
        # Bounded so that date arithmetic downstream never overflows.
        now = timezone.now()
        earliest, latest = now - dt.timedelta(days=1), now + dt.timedelta(days=800)
        for field in ("starts_at", "expires_at"):
            value = attrs.get(field)
            if value is not None and not earliest <= value <= latest:
                raise serializers.ValidationError({field: "Too far in the past or the future."})
        return attrs


class DelegationRevokeInputSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True)
