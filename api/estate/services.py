"""Writes to the estate register, leases and delegations; each appends an EstateEvent."""

import dataclasses
import datetime as dt
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.db import models, transaction
from django.db.models import ProtectedError, Q, RestrictedError
from django.utils import timezone

from api.core.exceptions import ServiceError
from api.core.roles import Role

from . import selectors
from .models import (
    Agency,
    Building,
    CommonArea,
    Delegation,
    Dwelling,
    Entrance,
    Equipment,
    EstateEvent,
    EstateEventKind,
    HouseholdMember,
    HouseholdRelation,
    Lease,
    Organisation,
    Residence,
)
from .resources import EstateRegisterResource, RegisterFileError, read_register_file

User = get_user_model()

DELEGATION_MAX_DAYS = 366
DELEGATION_MAX_ACTIVE = 10
# A delegation may start slightly in the past: the client's clock and the request take time.
DELEGATION_START_TOLERANCE = dt.timedelta(minutes=5)


# --- helpers ----------------------------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    """A value as it can be kept in an event's JSON data."""
    if isinstance(value, models.Model):
        return str(value.pk)
    if isinstance(value, Decimal | dt.date | dt.datetime):
        return str(value)
    if isinstance(value, list | tuple | set):
        return [_jsonable(item) for item in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def estate_event_record(
    *,
    organisation_id,
    kind: str,
    subject: models.Model | None,
    actor=None,
    on_behalf_of=None,
    reason: str = "",
    data: dict | None = None,
) -> EstateEvent:
    """Append one row to the estate history."""
    return EstateEvent.objects.create(
        organisation_id=organisation_id,
        kind=kind,
        subject_type=subject._meta.model_name if subject is not None else "",
        subject_id=subject.pk if subject is not None else None,
        actor=actor if actor is not None and actor.pk else None,
        on_behalf_of=on_behalf_of,
        reason=reason[:500],
        data=data or {},
    )


def _apply_changes(instance: models.Model, data: dict, allowed: Iterable[str]) -> dict:
    """Set the allowed fields present in `data`; return {field: [old, new]} of real changes."""
    changes = {}
    for name in allowed:
        if name not in data:
            continue
        field = instance._meta.get_field(name)
        new = data[name]
        if field.many_to_one:
            old, new_key = getattr(instance, field.attname), new.pk if new is not None else None
        else:
            old, new_key = getattr(instance, name), new
        if old != new_key:
            setattr(instance, name, new)
            changes[name] = [_jsonable(old), _jsonable(new_key)]
    return changes


def _require_writer(actor) -> None:
    """Only agency staff, managers and administrators change the register."""
    if actor is None or actor.role not in selectors.ESTATE_WRITER_ROLES:
        raise ServiceError(
            "You may not change the estate register.", code="permission_denied", status_code=403
        )


def _require_visible(queryset: models.QuerySet, obj: models.Model | None, field: str) -> None:
    """The object must be in the actor's scope; otherwise it does not exist for them."""
    if obj is not None and not queryset.filter(pk=obj.pk).exists():
        raise ServiceError("Not found.", code="not_found", field=field)


def _require_unique(queryset: models.QuerySet, instance: models.Model, field: str) -> None:
    if queryset.exclude(pk=instance.pk).exists():
        raise ServiceError("This reference is already used.", code="duplicate", field=field)


def _delete(instance: models.Model, *, actor) -> None:
    """Delete, refusing while other records still point to the object."""
    organisation_id, pk = instance.organisation_id, instance.pk
    try:
        with transaction.atomic():
            instance.delete()
    except (ProtectedError, RestrictedError) as exc:
        raise ServiceError(
            "Still in use: remove or move what depends on it first.",
            code="in_use",
            status_code=409,
        ) from exc
    instance.pk = pk
    estate_event_record(
        organisation_id=organisation_id,
        kind=EstateEventKind.DELETED,
        subject=instance,
        actor=actor,
        data={"label": str(instance)},
    )


def _save_and_record(instance: models.Model, *, actor, created: bool, changes: dict) -> None:
    instance.full_clean(validate_unique=False, validate_constraints=False)
    instance.save()
    if created or changes:
        estate_event_record(
            organisation_id=instance.organisation_id,
            kind=EstateEventKind.CREATED if created else EstateEventKind.UPDATED,
            subject=instance,
            actor=actor,
            data=changes,
        )


# --- register ---------------------------------------------------------------------------------

RESIDENCE_FIELDS = (
    "agency",
    "reference",
    "name",
    "address",
    "postcode",
    "city",
    "priority_neighbourhood",
    "latitude",
    "longitude",
)


@transaction.atomic
def residence_create(
    *,
    actor,
    agency: Agency,
    reference: str,
    name: str,
    address: str = "",
    postcode: str = "",
    city: str = "",
    priority_neighbourhood: bool = False,
    latitude: Decimal | None = None,
    longitude: Decimal | None = None,
) -> Residence:
    """Add a residence to one of the actor's agencies."""
    _require_writer(actor)
    _require_visible(selectors.agencies_visible_to(actor), agency, "agency")
    residence = Residence(organisation_id=agency.organisation_id)
    data = {
        "agency": agency,
        "reference": reference,
        "name": name,
        "address": address,
        "postcode": postcode,
        "city": city,
        "priority_neighbourhood": priority_neighbourhood,
        "latitude": latitude,
        "longitude": longitude,
    }
    changes = _apply_changes(residence, data, RESIDENCE_FIELDS)
    _require_unique(
        Residence.objects.filter(organisation_id=agency.organisation_id, reference=reference),
        residence,
        "reference",
    )
    _save_and_record(residence, actor=actor, created=True, changes=changes)
    return residence


@transaction.atomic
def residence_update(*, actor, residence: Residence, data: dict) -> Residence:
    """Change a residence's details (or move it to another of the actor's agencies)."""
    _require_writer(actor)
    _require_visible(selectors.agencies_visible_to(actor), data.get("agency"), "agency")
    changes = _apply_changes(residence, data, RESIDENCE_FIELDS)
    _require_unique(
        Residence.objects.filter(
            organisation_id=residence.organisation_id, reference=residence.reference
        ),
        residence,
        "reference",
    )
    _save_and_record(residence, actor=actor, created=False, changes=changes)
    return residence


@transaction.atomic
def residence_delete(*, actor, residence: Residence) -> None:
    """Remove a residence that has no buildings or common areas left."""
    _require_writer(actor)
    _delete(residence, actor=actor)


@transaction.atomic
def building_create(*, actor, residence: Residence, reference: str, address: str = "") -> Building:
    """Add a building to a residence."""
    _require_writer(actor)
    _require_visible(selectors.residences_visible_to(actor), residence, "residence")
    building = Building(organisation_id=residence.organisation_id)
    changes = _apply_changes(
        building,
        {"residence": residence, "reference": reference, "address": address},
        ("residence", "reference", "address"),
    )
    _require_unique(
        Building.objects.filter(residence=residence, reference=reference), building, "reference"
    )
    _save_and_record(building, actor=actor, created=True, changes=changes)
    return building


@transaction.atomic
def building_update(*, actor, building: Building, data: dict) -> Building:
    """Change a building's reference or address, or attach it to another residence."""
    _require_writer(actor)
    _require_visible(selectors.residences_visible_to(actor), data.get("residence"), "residence")
    changes = _apply_changes(building, data, ("residence", "reference", "address"))
    _require_unique(
        Building.objects.filter(residence_id=building.residence_id, reference=building.reference),
        building,
        "reference",
    )
    _save_and_record(building, actor=actor, created=False, changes=changes)
    return building


@transaction.atomic
def building_delete(*, actor, building: Building) -> None:
    """Remove a building that has no entrances or common areas left."""
    _require_writer(actor)
    _delete(building, actor=actor)


@transaction.atomic
def entrance_create(*, actor, building: Building, reference: str, label: str = "") -> Entrance:
    """Add an entrance ("allée") to a building."""
    _require_writer(actor)
    _require_visible(selectors.buildings_visible_to(actor), building, "building")
    entrance = Entrance(organisation_id=building.organisation_id)
    changes = _apply_changes(
        entrance,
        {"building": building, "reference": reference, "label": label},
        ("building", "reference", "label"),
    )
    _require_unique(
        Entrance.objects.filter(building=building, reference=reference), entrance, "reference"
    )
    _save_and_record(entrance, actor=actor, created=True, changes=changes)
    return entrance


@transaction.atomic
def entrance_update(*, actor, entrance: Entrance, data: dict) -> Entrance:
    """Change an entrance's reference or label, or attach it to another building."""
    _require_writer(actor)
    _require_visible(selectors.buildings_visible_to(actor), data.get("building"), "building")
    changes = _apply_changes(entrance, data, ("building", "reference", "label"))
    _require_unique(
        Entrance.objects.filter(building_id=entrance.building_id, reference=entrance.reference),
        entrance,
        "reference",
    )
    _save_and_record(entrance, actor=actor, created=False, changes=changes)
    return entrance


@transaction.atomic
def entrance_delete(*, actor, entrance: Entrance) -> None:
    """Remove an entrance that has no dwellings or common areas left."""
    _require_writer(actor)
    _delete(entrance, actor=actor)


DWELLING_FIELDS = ("entrance", "reference", "floor", "door", "type", "surface")


@transaction.atomic
def dwelling_create(
    *,
    actor,
    entrance: Entrance,
    reference: str,
    floor: int = 0,
    door: str = "",
    type: str = "",
    surface: Decimal | None = None,
) -> Dwelling:
    """Add a dwelling; its reference is unique in the organisation."""
    _require_writer(actor)
    _require_visible(selectors.entrances_visible_to(actor), entrance, "entrance")
    dwelling = Dwelling(organisation_id=entrance.organisation_id)
    data = {
        "entrance": entrance,
        "reference": reference,
        "floor": floor,
        "door": door,
        "type": type,
        "surface": surface,
    }
    changes = _apply_changes(dwelling, data, DWELLING_FIELDS)
    _require_unique(
        Dwelling.objects.filter(organisation_id=entrance.organisation_id, reference=reference),
        dwelling,
        "reference",
    )
    _save_and_record(dwelling, actor=actor, created=True, changes=changes)
    return dwelling


@transaction.atomic
def dwelling_update(*, actor, dwelling: Dwelling, data: dict) -> Dwelling:
    """Change a dwelling's details or move it to another entrance."""
    _require_writer(actor)
    _require_visible(selectors.entrances_visible_to(actor), data.get("entrance"), "entrance")
    changes = _apply_changes(dwelling, data, DWELLING_FIELDS)
    _require_unique(
        Dwelling.objects.filter(
            organisation_id=dwelling.organisation_id, reference=dwelling.reference
        ),
        dwelling,
        "reference",
    )
    _save_and_record(dwelling, actor=actor, created=False, changes=changes)
    return dwelling


@transaction.atomic
def dwelling_delete(*, actor, dwelling: Dwelling) -> None:
    """Remove a dwelling that never had a lease or equipment."""
    _require_writer(actor)
    _delete(dwelling, actor=actor)


COMMON_AREA_PLACES = ("entrance", "building", "residence")


def _check_common_area_place(area: CommonArea, actor) -> None:
    places = [name for name in COMMON_AREA_PLACES if getattr(area, f"{name}_id")]
    if len(places) != 1:
        raise ServiceError(
            "A common area belongs to exactly one entrance, building or residence.",
            code="one_place",
            field="non_field_errors",
        )
    visible = {
        "entrance": selectors.entrances_visible_to,
        "building": selectors.buildings_visible_to,
        "residence": selectors.residences_visible_to,
    }
    place = getattr(area, places[0])
    _require_visible(visible[places[0]](actor), place, places[0])
    area.organisation_id = place.organisation_id


@transaction.atomic
def common_area_create(
    *,
    actor,
    kind: str,
    name: str = "",
    entrance: Entrance | None = None,
    building: Building | None = None,
    residence: Residence | None = None,
) -> CommonArea:
    """Add a common area to an entrance, a building or a residence."""
    _require_writer(actor)
    area = CommonArea()
    data = {
        "kind": kind,
        "name": name,
        "entrance": entrance,
        "building": building,
        "residence": residence,
    }
    changes = _apply_changes(area, data, ("kind", "name", *COMMON_AREA_PLACES))
    _check_common_area_place(area, actor)
    _save_and_record(area, actor=actor, created=True, changes=changes)
    return area


@transaction.atomic
def common_area_update(*, actor, common_area: CommonArea, data: dict) -> CommonArea:
    """Rename a common area, change its kind, or attach it elsewhere (give one place)."""
    _require_writer(actor)
    data = dict(data)
    if any(place in data for place in COMMON_AREA_PLACES):
        for place in COMMON_AREA_PLACES:
            data.setdefault(place, None)
    changes = _apply_changes(common_area, data, ("kind", "name", *COMMON_AREA_PLACES))
    _check_common_area_place(common_area, actor)
    _save_and_record(common_area, actor=actor, created=False, changes=changes)
    return common_area


@transaction.atomic
def common_area_delete(*, actor, common_area: CommonArea) -> None:
    """Remove a common area that holds no equipment."""
    _require_writer(actor)
    _delete(common_area, actor=actor)


EQUIPMENT_FIELDS = ("kind", "make", "model", "serial", "install_date", "dwelling", "common_area")


def _check_equipment(equipment: Equipment, actor, served: Sequence[models.Model]) -> None:
    if bool(equipment.dwelling_id) == bool(equipment.common_area_id):
        raise ServiceError(
            "Equipment is located in exactly one dwelling or common area.",
            code="one_location",
            field="non_field_errors",
        )
    if equipment.dwelling_id:
        _require_visible(selectors.dwellings_visible_to(actor), equipment.dwelling, "dwelling")
        equipment.organisation_id = equipment.dwelling.organisation_id
    else:
        _require_visible(
            selectors.common_areas_visible_to(actor), equipment.common_area, "common_area"
        )
        equipment.organisation_id = equipment.common_area.organisation_id
    if any(obj.organisation_id != equipment.organisation_id for obj in served):
        raise ServiceError("Not found.", code="not_found", field="serves_dwellings")


@transaction.atomic
def equipment_create(
    *,
    actor,
    kind: str,
    make: str = "",
    model: str = "",
    serial: str = "",
    install_date: dt.date | None = None,
    dwelling: Dwelling | None = None,
    common_area: CommonArea | None = None,
    serves_dwellings: Sequence[Dwelling] = (),
    serves_entrances: Sequence[Entrance] = (),
) -> Equipment:
    """Register an asset in a dwelling or a common area, with what it serves."""
    _require_writer(actor)
    equipment = Equipment()
    data = {
        "kind": kind,
        "make": make,
        "model": model,
        "serial": serial,
        "install_date": install_date,
        "dwelling": dwelling,
        "common_area": common_area,
    }
    changes = _apply_changes(equipment, data, EQUIPMENT_FIELDS)
    _check_equipment(equipment, actor, [*serves_dwellings, *serves_entrances])
    _save_and_record(equipment, actor=actor, created=True, changes=changes)
    equipment.serves_dwellings.set(serves_dwellings)
    equipment.serves_entrances.set(serves_entrances)
    return equipment


@transaction.atomic
def equipment_update(*, actor, equipment: Equipment, data: dict) -> Equipment:
    """Change an asset's details, location or what it serves."""
    _require_writer(actor)
    data = dict(data)
    if "dwelling" in data or "common_area" in data:
        data.setdefault("dwelling", None)
        data.setdefault("common_area", None)
    changes = _apply_changes(equipment, data, EQUIPMENT_FIELDS)
    served = [*data.get("serves_dwellings", ()), *data.get("serves_entrances", ())]
    _check_equipment(equipment, actor, served)
    for relation in ("serves_dwellings", "serves_entrances"):
        if relation in data:
            old = sorted(
                str(pk) for pk in getattr(equipment, relation).values_list("pk", flat=True)
            )
            new = sorted(str(obj.pk) for obj in data[relation])
            if old != new:
                getattr(equipment, relation).set(data[relation])
                changes[relation] = [old, new]
    _save_and_record(equipment, actor=actor, created=False, changes=changes)
    return equipment


@transaction.atomic
def equipment_delete(*, actor, equipment: Equipment) -> None:
    """Remove an asset from the register."""
    _require_writer(actor)
    equipment.serves_dwellings.clear()
    equipment.serves_entrances.clear()
    _delete(equipment, actor=actor)


# --- people, leases ---------------------------------------------------------------------------


def tenant_resolve(
    *,
    organisation_id,
    person=None,
    phone: str | None = None,
    first_name: str = "",
    last_name: str = "",
    field: str = "phone",
):
    """The tenant given by id, or by phone number (created if nobody has it yet)."""
    if person is not None:
        if person.organisation_id != organisation_id or person.role != Role.TENANT:
            raise ServiceError("Not found.", code="not_found", field="person")
        return person
    if not phone:
        raise ServiceError("Give a person or a phone number.", code="required", field=field)
    existing = User.objects.filter(phone=phone).first()
    if existing is None:
        return User.objects.create_user(
            phone=phone,
            organisation_id=organisation_id,
            role=Role.TENANT,
            first_name=first_name,
            last_name=last_name,
        )
    if existing.organisation_id != organisation_id or existing.role != Role.TENANT:
        raise ServiceError(
            "This phone number cannot be used for this person.",
            code="phone_unavailable",
            field=field,
        )
    return existing


def _check_no_overlap(*, dwelling: Dwelling, start: dt.date, end: dt.date | None, lease_id=None):
    """Two leases of the same dwelling never overlap, so one household at a time sees it."""
    overlapping = Lease.objects.filter(dwelling=dwelling).exclude(pk=lease_id)
    overlapping = overlapping.filter(Q(end_date__isnull=True) | Q(end_date__gte=start))
    if end is not None:
        overlapping = overlapping.filter(start_date__lte=end)
    if overlapping.exists():
        raise ServiceError(
            "Another lease of this dwelling covers these dates.",
            code="lease_overlap",
            field="start_date",
        )


@transaction.atomic
def lease_create(
    *,
    actor,
    dwelling: Dwelling,
    reference: str,
    start_date: dt.date,
    end_date: dt.date | None = None,
    members: Sequence[dict],
    on_behalf_of=None,
    reason: str = "",
) -> Lease:
    """Record a tenancy with its household (exactly one holder)."""
    _require_writer(actor)
    _require_visible(selectors.dwellings_visible_to(actor), dwelling, "dwelling")
    Dwelling.objects.select_for_update().filter(pk=dwelling.pk).first()
    if end_date is not None and end_date < start_date:
        raise ServiceError("The lease cannot end before it starts.", field="end_date")
    holders = [m for m in members if m.get("relation") == HouseholdRelation.HOLDER]
    if len(holders) != 1:
        raise ServiceError("A lease has exactly one holder.", code="one_holder", field="members")
    if Lease.objects.filter(organisation_id=dwelling.organisation_id, reference=reference).exists():
        raise ServiceError("This reference is already used.", code="duplicate", field="reference")
    _check_no_overlap(dwelling=dwelling, start=start_date, end=end_date)
    lease = Lease.objects.create(
        organisation_id=dwelling.organisation_id,
        dwelling=dwelling,
        reference=reference,
        start_date=start_date,
        end_date=end_date,
    )
    seen = set()
    for index, member in enumerate(members):
        person = tenant_resolve(
            organisation_id=dwelling.organisation_id,
            person=member.get("person"),
            phone=member.get("phone"),
            first_name=member.get("first_name", ""),
            last_name=member.get("last_name", ""),
            field=f"members.{index}.phone",
        )
        if person.pk in seen:
            raise ServiceError(
                "This person is listed twice.", code="duplicate", field=f"members.{index}"
            )
        seen.add(person.pk)
        HouseholdMember.objects.create(lease=lease, person=person, relation=member["relation"])
    estate_event_record(
        organisation_id=lease.organisation_id,
        kind=EstateEventKind.CREATED,
        subject=lease,
        actor=actor,
        on_behalf_of=on_behalf_of,
        reason=reason,
        data={
            "dwelling": str(dwelling.pk),
            "start_date": str(start_date),
            "end_date": _jsonable(end_date),
            "members": [str(pk) for pk in seen],
        },
    )
    return lease


@transaction.atomic
def lease_end(
    *, actor, lease: Lease, end_date: dt.date, on_behalf_of=None, reason: str = ""
) -> Lease:
    """Set the last day of a tenancy; from the next day its household no longer sees it."""
    _require_writer(actor)
    _require_visible(selectors.leases_visible_to(actor), lease, "lease")
    Dwelling.objects.select_for_update().filter(pk=lease.dwelling_id).first()
    if end_date < lease.start_date:
        raise ServiceError("The lease cannot end before it starts.", field="end_date")
    _check_no_overlap(
        dwelling=lease.dwelling, start=lease.start_date, end=end_date, lease_id=lease.pk
    )
    old = lease.end_date
    lease.end_date = end_date
    lease.save(update_fields=["end_date", "updated_at"])
    estate_event_record(
        organisation_id=lease.organisation_id,
        kind=EstateEventKind.LEASE_ENDED,
        subject=lease,
        actor=actor,
        on_behalf_of=on_behalf_of,
        reason=reason,
        data={"end_date": [_jsonable(old), str(end_date)]},
    )
    return lease


@transaction.atomic
def household_member_add(
    *,
    actor,
    lease: Lease,
    relation: str,
    person=None,
    phone: str | None = None,
    first_name: str = "",
    last_name: str = "",
) -> HouseholdMember:
    """Add a co-holder or an occupant to a lease (a lease keeps one holder)."""
    _require_writer(actor)
    _require_visible(selectors.leases_visible_to(actor), lease, "lease")
    if relation == HouseholdRelation.HOLDER and lease.members.filter(relation=relation).exists():
        raise ServiceError("This lease already has a holder.", code="one_holder", field="relation")
    person = tenant_resolve(
        organisation_id=lease.organisation_id,
        person=person,
        phone=phone,
        first_name=first_name,
        last_name=last_name,
    )
    if lease.members.filter(person=person).exists():
        raise ServiceError("Already in this household.", code="duplicate", field="person")
    member = HouseholdMember.objects.create(lease=lease, person=person, relation=relation)
    estate_event_record(
        organisation_id=lease.organisation_id,
        kind=EstateEventKind.MEMBER_ADDED,
        subject=lease,
        actor=actor,
        data={"person": str(person.pk), "relation": relation},
    )
    return member


@transaction.atomic
def household_member_remove(*, actor, member: HouseholdMember) -> None:
    """Take someone off a lease; the holder stays (end the lease instead)."""
    _require_writer(actor)
    lease = member.lease
    _require_visible(selectors.leases_visible_to(actor), lease, "lease")
    if member.relation == HouseholdRelation.HOLDER:
        raise ServiceError(
            "The holder cannot be removed; end the lease instead.", code="holder_required"
        )
    person_id, relation = member.person_id, member.relation
    member.delete()
    estate_event_record(
        organisation_id=lease.organisation_id,
        kind=EstateEventKind.MEMBER_REMOVED,
        subject=lease,
        actor=actor,
        data={"person": str(person_id), "relation": relation},
    )


# --- delegations ------------------------------------------------------------------------------


def _may_act_for(actor, tenant) -> bool:
    """The tenant themselves, or agency staff / managers with the tenant in their scope."""
    if actor.pk == tenant.pk:
        return True
    return (
        actor.role in selectors.DELEGATION_SUPERVISOR_ROLES
        and selectors.people_visible_to(actor).filter(pk=tenant.pk).exists()
    )


@transaction.atomic
def delegation_grant(
    *,
    actor,
    grantor,
    phone: str,
    relation: str,
    expires_at: dt.datetime,
    first_name: str = "",
    last_name: str = "",
    can_create_requests: bool = True,
    starts_at: dt.datetime | None = None,
    reason: str = "",
) -> Delegation:
    """A tenant lets someone act for them until `expires_at` (at most a year)."""
    if not _may_act_for(actor, grantor):
        raise ServiceError(
            "Only the tenant, or agency staff for them, may delegate.",
            code="permission_denied",
            status_code=403,
        )
    if grantor.role != Role.TENANT or not selectors.current_household_dwellings(grantor).exists():
        raise ServiceError("Only a tenant with a lease in force can delegate.", code="not_a_tenant")
    now = timezone.now()
    starts_at = starts_at or now
    if starts_at < now - DELEGATION_START_TOLERANCE:
        raise ServiceError("A delegation cannot start in the past.", field="starts_at")
    if expires_at <= starts_at:
        raise ServiceError("It must end after it starts.", field="expires_at")
    if expires_at > starts_at + dt.timedelta(days=DELEGATION_MAX_DAYS):
        raise ServiceError(
            f"A delegation lasts at most {DELEGATION_MAX_DAYS} days; renew it later.",
            code="too_long",
            field="expires_at",
        )
    delegate = tenant_resolve(
        organisation_id=grantor.organisation_id,
        phone=phone,
        first_name=first_name,
        last_name=last_name,
    )
    if delegate.pk == grantor.pk:
        raise ServiceError("You cannot delegate to yourself.", code="self", field="phone")
    pending = Delegation.objects.select_for_update().filter(
        grantor=grantor, revoked_at__isnull=True, expires_at__gt=now
    )
    if pending.filter(delegate=delegate).exists():
        raise ServiceError(
            "This person already has a delegation from this tenant.",
            code="already_delegated",
            field="phone",
        )
    if pending.count() >= DELEGATION_MAX_ACTIVE:
        raise ServiceError(
            f"At most {DELEGATION_MAX_ACTIVE} delegations at a time.", code="too_many"
        )
    delegation = Delegation.objects.create(
        organisation_id=grantor.organisation_id,
        grantor=grantor,
        delegate=delegate,
        relation=relation,
        can_create_requests=can_create_requests,
        starts_at=starts_at,
        expires_at=expires_at,
        created_by=actor,
    )
    estate_event_record(
        organisation_id=grantor.organisation_id,
        kind=EstateEventKind.DELEGATION_GRANTED,
        subject=delegation,
        actor=actor,
        on_behalf_of=grantor if actor.pk != grantor.pk else None,
        reason=reason,
        data={
            "delegate": str(delegate.pk),
            "relation": relation,
            "can_create_requests": can_create_requests,
            "starts_at": str(starts_at),
            "expires_at": str(expires_at),
        },
    )
    return delegation


@transaction.atomic
def delegation_revoke(*, actor, delegation: Delegation, reason: str = "") -> Delegation:
    """End a delegation now: by its grantor, its delegate, or agency staff for the grantor."""
    if actor.pk != delegation.delegate_id and not _may_act_for(actor, delegation.grantor):
        raise ServiceError(
            "You may not revoke this delegation.", code="permission_denied", status_code=403
        )
    delegation = Delegation.objects.select_for_update().get(pk=delegation.pk)
    now = timezone.now()
    if delegation.revoked_at is not None or delegation.expires_at <= now:
        raise ServiceError("This delegation has already ended.", code="not_active")
    delegation.revoked_at = now
    delegation.revoked_by = actor
    delegation.save(update_fields=["revoked_at", "revoked_by", "updated_at"])
    on_behalf_of = None
    if actor.pk not in {delegation.grantor_id, delegation.delegate_id}:
        on_behalf_of = delegation.grantor
    estate_event_record(
        organisation_id=delegation.organisation_id,
        kind=EstateEventKind.DELEGATION_REVOKED,
        subject=delegation,
        actor=actor,
        on_behalf_of=on_behalf_of,
        reason=reason,
    )
    return delegation


# --- the property register file -----------------------------------------------------------------


@dataclasses.dataclass
class RegisterImportReport:
    """What an import did (or, in a dry run, would do), with every problem by file line."""

    dry_run: bool
    totals: dict[str, int] = dataclasses.field(default_factory=dict)
    hierarchy: dict[str, int] = dataclasses.field(default_factory=dict)
    problems: list[tuple[int | None, str, str]] = dataclasses.field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def applied(self) -> bool:
        return self.ok and not self.dry_run


def estate_register_import(
    *, content: bytes, file_format: str, dry_run: bool = False, actor=None
) -> RegisterImportReport:
    """Upsert the register from a CSV or XLSX file; nothing is written if any row is wrong."""
    report = RegisterImportReport(dry_run=dry_run)
    try:
        dataset, lines = read_register_file(content, file_format)
    except RegisterFileError as exc:
        report.problems.append((None, "file", str(exc)))
        return report
    resource = EstateRegisterResource()
    result = resource.import_data(
        dataset,
        dry_run=dry_run,
        use_transactions=True,
        rollback_on_validation_errors=True,
        line_numbers=lines,
    )
    report.totals = dict(result.totals)
    report.hierarchy = dict(resource.plan.counts)
    for error in result.base_errors:
        report.problems.append((None, "file", str(error.error)))
    for row in result.error_rows:
        for error in row.errors:
            report.problems.append((lines[row.number - 1], "row", str(error.error)))
    for row in result.invalid_rows:
        for column, messages in row.error_dict.items():
            for message in messages:
                report.problems.append((lines[row.number - 1], column, message))
    report.problems.sort(key=lambda p: (p[0] or 0, p[1]))
    if report.applied and dataset.height:
        organisations = Organisation.objects.filter(
            slug__in={str(slug).strip() for slug in dataset["organisation"]}
        )
        for organisation in organisations:
            estate_event_record(
                organisation_id=organisation.pk,
                kind=EstateEventKind.IMPORTED,
                subject=None,
                actor=actor,
                data={"totals": report.totals, "hierarchy": report.hierarchy},
            )
    return report
