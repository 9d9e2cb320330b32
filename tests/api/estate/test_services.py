"""Estate services: capabilities, invariants and the history they append."""

import datetime as dt

import pytest
from django.utils import timezone

from api.core.exceptions import ServiceError
from api.estate import services
from api.estate.models import CommonArea, Delegation, EstateEvent
from tests.factories import CommonAreaFactory, DwellingFactory, EquipmentFactory, TenantFactory
from tests.factories.estate import HouseholdMemberFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("role", ["tenant", "delegate", "caretaker", "technician", "contractor"])
def test_only_agency_staff_and_managers_change_the_register(world, role):
    with pytest.raises(ServiceError) as refused:
        services.building_create(
            actor=world.users[role], residence=world.home.residence, reference="Z"
        )
    assert refused.value.status_code == 403


def test_agency_staff_stay_in_their_agency(world):
    staff = world.users["agency_staff"]
    with pytest.raises(ServiceError) as refused:
        services.building_create(
            actor=staff, residence=world.other_residence.residence, reference="Z"
        )
    assert refused.value.field == "residence"
    building = services.building_create(
        actor=staff, residence=world.home.residence, reference="Z", address="2 rue Basse"
    )
    event = EstateEvent.objects.get(subject_id=building.pk)
    assert event.kind == "created"
    assert event.data == {
        "residence": [None, str(world.home.residence.pk)],
        "reference": ["", "Z"],
        "address": ["", "2 rue Basse"],
    }


def test_update_records_only_real_changes(world):
    manager = world.users["manager"]
    dwelling = world.home.dwelling
    door = dwelling.door
    services.dwelling_update(actor=manager, dwelling=dwelling, data={"floor": dwelling.floor})
    assert not EstateEvent.objects.filter(subject_id=dwelling.pk).exists()
    services.dwelling_update(actor=manager, dwelling=dwelling, data={"floor": 4, "door": "42"})
    event = EstateEvent.objects.get(subject_id=dwelling.pk)
    assert event.data == {"floor": [2, 4], "door": [door, "42"]}


def test_delete_is_refused_while_in_use_and_recorded_when_done(world):
    manager = world.users["manager"]
    with pytest.raises(ServiceError) as refused:
        services.dwelling_delete(actor=manager, dwelling=world.home.dwelling)
    assert refused.value.status_code == 409
    spare = DwellingFactory(entrance=world.home.entrance)
    services.dwelling_delete(actor=manager, dwelling=spare)
    assert EstateEvent.objects.get(subject_id=spare.pk).kind == "deleted"


def test_common_area_moves_to_exactly_one_place(world):
    manager = world.users["manager"]
    area = CommonAreaFactory(entrance=world.home.entrance)
    services.common_area_update(
        actor=manager, common_area=area, data={"building": world.home.building}
    )
    area.refresh_from_db()
    assert (area.entrance_id, area.building_id) == (None, world.home.building.pk)
    with pytest.raises(ServiceError):
        services.common_area_update(
            actor=manager,
            common_area=area,
            data={"building": world.home.building, "residence": world.home.residence},
        )
    assert CommonArea.objects.get(pk=area.pk).building_id == world.home.building.pk


def test_equipment_serves_only_its_organisation(world):
    manager = world.users["manager"]
    unit = EquipmentFactory(dwelling=world.home.dwelling)
    services.equipment_update(
        actor=manager, equipment=unit, data={"serves_dwellings": [world.other_tenant.dwelling]}
    )
    assert list(unit.serves_dwellings.all()) == [world.other_tenant.dwelling]
    with pytest.raises(ServiceError):
        services.equipment_update(
            actor=manager,
            equipment=unit,
            data={"serves_entrances": [world.other_organisation.entrance]},
        )


def test_lease_end_cannot_overlap_the_next_lease(world):
    staff = world.users["agency_staff"]
    lease = world.home.lease
    today = timezone.localdate()
    services.lease_end(actor=staff, lease=lease, end_date=today)
    next_lease = services.lease_create(
        actor=staff,
        dwelling=world.home.dwelling,
        reference="BAIL-NEXT",
        start_date=today + dt.timedelta(days=1),
        members=[{"relation": "holder", "phone": "+33644444444"}],
    )
    with pytest.raises(ServiceError) as refused:
        services.lease_end(actor=staff, lease=lease, end_date=today + dt.timedelta(days=5))
    assert refused.value.code == "lease_overlap"
    assert next_lease.members.get().person.phone == "+33644444444"


def test_tenant_resolve_reuses_or_creates_only_tenants_of_the_organisation(world):
    organisation_id = world.home.organisation.pk
    same = services.tenant_resolve(
        organisation_id=organisation_id, phone=str(world.home.tenant.phone)
    )
    assert same == world.home.tenant
    with pytest.raises(ServiceError):
        services.tenant_resolve(
            organisation_id=organisation_id, phone=str(world.other_organisation.tenant.phone)
        )
    with pytest.raises(ServiceError):
        services.tenant_resolve(organisation_id=organisation_id, person=world.users["manager"])
    with pytest.raises(ServiceError):
        services.tenant_resolve(organisation_id=organisation_id)


def test_delegations_are_capped_and_bounded(world):
    tenant = world.home.tenant
    now = timezone.now()
    for n in range(services.DELEGATION_MAX_ACTIVE - 1):
        services.delegation_grant(
            actor=tenant,
            grantor=tenant,
            phone=f"+336430000{n:02d}",
            relation="relative",
            expires_at=now + dt.timedelta(days=10),
        )
    with pytest.raises(ServiceError) as refused:
        services.delegation_grant(
            actor=tenant,
            grantor=tenant,
            phone="+33643000099",
            relation="relative",
            expires_at=now + dt.timedelta(days=10),
        )
    assert refused.value.code == "too_many"
    with pytest.raises(ServiceError):
        services.delegation_grant(
            actor=tenant,
            grantor=tenant,
            phone="+33643000098",
            relation="relative",
            starts_at=now - dt.timedelta(days=2),
            expires_at=now + dt.timedelta(days=10),
        )


def test_only_the_tenant_or_their_agency_may_delegate_for_them(world):
    other = world.other_residence.tenant
    now = timezone.now()
    for actor in (world.home.tenant, world.users["caretaker"], world.users["agency_staff"]):
        with pytest.raises(ServiceError) as refused:
            services.delegation_grant(
                actor=actor,
                grantor=other,
                phone="+33642000000",
                relation="other",
                expires_at=now + dt.timedelta(days=3),
            )
        assert refused.value.status_code == 403
    granted = services.delegation_grant(
        actor=world.users["manager"],
        grantor=other,
        phone="+33642000000",
        relation="social_worker",
        expires_at=now + dt.timedelta(days=3),
        reason="Signalement du CCAS",
    )
    assert granted.created_by == world.users["manager"]
    assert not Delegation.objects.filter(grantor=other, revoked_at__isnull=False).exists()


def test_revoke_by_someone_else_is_refused(world):
    delegation = world.home.tenant.delegations_given.get()
    stranger = TenantFactory(organisation=world.home.organisation)
    HouseholdMemberFactory(lease=world.other_tenant.lease, person=stranger, relation="occupant")
    with pytest.raises(ServiceError):
        services.delegation_revoke(actor=stranger, delegation=delegation)
    services.delegation_revoke(actor=world.users["agency_staff"], delegation=delegation)
    event = EstateEvent.objects.get(subject_id=delegation.pk, kind="delegation_revoked")
    assert event.on_behalf_of == world.home.tenant
