"""Writes to requests, appointments, incidents and partners; each appends its history rows.

Who may do what is decided here (capabilities per role), on top of the selectors' scope: an
object outside the actor's scope is "not found", an action their role may not take is refused.
`actor=None` is the system itself (sensors, periodic tasks, partners), which may do anything.
"""

import datetime as dt
import hashlib
import hmac
import secrets
import uuid
from collections.abc import Iterable, Sequence
from decimal import Decimal, InvalidOperation
from functools import lru_cache

from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone
from django_fsm import ConcurrentTransition, TransitionNotAllowed, can_proceed

from api.core.exceptions import ServiceError, conflict, not_found, refused
from api.core.roles import Role
from api.estate import selectors as estate
from api.estate.models import (
    Building,
    CommonArea,
    Contractor,
    ContractorMember,
    Dwelling,
    Entrance,
    Equipment,
    Residence,
    Team,
    TeamMembership,
)

from . import notices, selectors
from .calendar import CONTINUOUS, WorkingCalendar
from .models import (
    FINAL_STATUSES,
    OPEN_STATUSES,
    PRIORITY_RANK,
    Appointment,
    AppointmentStatus,
    Category,
    CategoryRoute,
    Confirmation,
    EventKind,
    InboundSms,
    Incident,
    IncidentStatus,
    IncidentUpdate,
    IncidentUpdateKind,
    Partner,
    PlaceKind,
    Priority,
    QuestionKind,
    Source,
    Status,
    SyncTombstone,
    Ticket,
    TicketCounter,
    TicketEvent,
    TicketFollower,
    TicketPhoto,
    WaitingReason,
)
from .photos import CleanPhoto, clean_photo, store_photo

MAX_PHOTOS = 5
MAX_SLOTS = 5
MAX_SLOT_LENGTH = dt.timedelta(hours=8)
MAX_SLOT_AHEAD = dt.timedelta(days=90)
AUTO_CLOSE_AFTER = dt.timedelta(days=7)
TENANT_REOPEN_WINDOW = dt.timedelta(days=14)
REMINDER_BEFORE = dt.timedelta(hours=24)
BULK_ASSIGN_MAX = 500
TEXT_ANSWER_MAX = 500

FIELD_ROLES = frozenset({Role.CARETAKER, Role.TECHNICIAN, Role.CONTRACTOR})
DISPATCH_ROLES = frozenset({Role.CARETAKER, Role.AGENCY_STAFF, Role.MANAGER, Role.ADMIN})
CREATOR_ROLES = frozenset(
    {Role.TENANT, Role.CARETAKER, Role.TECHNICIAN, Role.AGENCY_STAFF, Role.MANAGER, Role.ADMIN}
)
INCIDENT_ROLES = frozenset(
    {Role.CARETAKER, Role.TECHNICIAN, Role.AGENCY_STAFF, Role.MANAGER, Role.ADMIN}
)
DELETE_ROLES = frozenset({Role.MANAGER, Role.ADMIN})

# Which statuses each role may move a request to (scope is checked separately).
STAFF_TARGETS = {
    Role.CARETAKER: {
        Status.ACKNOWLEDGED,
        Status.SCHEDULED,
        Status.IN_PROGRESS,
        Status.WAITING,
        Status.RESOLVED,
        Status.REOPENED,
        Status.DUPLICATE,
    },
    Role.TECHNICIAN: {
        Status.ACKNOWLEDGED,
        Status.SCHEDULED,
        Status.IN_PROGRESS,
        Status.WAITING,
        Status.RESOLVED,
        Status.DUPLICATE,
    },
    Role.CONTRACTOR: {
        Status.ACKNOWLEDGED,
        Status.SCHEDULED,
        Status.IN_PROGRESS,
        Status.WAITING,
        Status.RESOLVED,
    },
    Role.AGENCY_STAFF: set(Status),
    Role.MANAGER: set(Status),
    Role.ADMIN: set(Status),
}


def _role(actor) -> str | None:
    return None if actor is None else actor.role


# --- clocks -------------------------------------------------------------------------------------


def calendar_subdivision(postcode: str) -> str | None:
    """The holidays subdivision of a French postcode (Alsace-Moselle, overseas departments)."""
    code = (postcode or "").strip()
    if code.startswith("57"):
        return "57"
    if code[:2] in {"67", "68"}:
        return "6AE"
    if code[:3] in {"971", "972", "973", "974", "976"}:
        return code[:3]
    return None


@lru_cache(maxsize=32)
def _working_calendar(subdivision: str | None) -> WorkingCalendar:
    return WorkingCalendar(subdivision=subdivision)


def ticket_calendar(ticket: Ticket) -> WorkingCalendar:
    """The calendar a request's clock runs on: continuous when urgent, else working hours."""
    if ticket.category.continuous_clock or ticket.priority == Priority.URGENT:
        return CONTINUOUS
    return _working_calendar(calendar_subdivision(ticket.residence.postcode))


def _set_due_times(ticket: Ticket, start: dt.datetime, *, acknowledge: bool = True) -> None:
    calendar = ticket_calendar(ticket)
    category = ticket.category
    if acknowledge:
        ticket.acknowledge_due_at = (
            calendar.add(start, category.acknowledge_within)
            if category.acknowledge_within is not None
            else None
        )
    ticket.resolve_due_at = (
        calendar.add(start, category.resolve_within)
        if category.resolve_within is not None
        else None
    )


def _pause(ticket: Ticket, now: dt.datetime) -> None:
    if ticket.paused_at is None:
        ticket.paused_at = now


def _unpause(ticket: Ticket, now: dt.datetime) -> None:
    """Push the due times back by the working time the request spent waiting."""
    if ticket.paused_at is None:
        return
    calendar = ticket_calendar(ticket)
    for field in ("acknowledge_due_at", "resolve_due_at"):
        due = getattr(ticket, field)
        if field == "acknowledge_due_at" and ticket.acknowledged_at is not None:
            continue
        if due is not None and due > ticket.paused_at:
            setattr(ticket, field, calendar.add(now, calendar.between(ticket.paused_at, due)))
    ticket.paused_at = None


# --- history ------------------------------------------------------------------------------------


def ticket_event_record(
    *,
    ticket: Ticket,
    kind: str,
    actor=None,
    on_behalf_of=None,
    from_status: str = "",
    to_status: str = "",
    note: str = "",
    public: bool = True,
    data: dict | None = None,
) -> TicketEvent:
    """Append one row to a request's history."""
    return TicketEvent.objects.create(
        ticket=ticket,
        kind=kind,
        actor=actor,
        actor_role=_role(actor) or "system",
        on_behalf_of=on_behalf_of,
        from_status=from_status,
        to_status=to_status,
        note=note,
        public=public,
        data=data or {},
    )


def _save(ticket: Ticket, fields: Iterable[str]) -> None:
    """Save the named fields and bump the version (ETags and If-Match compare it)."""
    ticket.version = F("version") + 1
    try:
        ticket.save(update_fields=[*set(fields), "version", "updated_at"])
    except ConcurrentTransition as exc:
        raise conflict("The request changed meanwhile; reload it.") from exc
    ticket.refresh_from_db(fields=["version"])


def _lock(ticket: Ticket) -> Ticket:
    """The request's current row, locked until the end of the transaction."""
    try:
        return (
            Ticket.objects.select_for_update(of=("self",))
            .select_related("category", "residence", "organisation")
            .get(pk=ticket.pk)
        )
    except Ticket.DoesNotExist as exc:
        raise not_found() from exc


def _context(ticket: Ticket, **extra) -> dict:
    """The plain JSON a notification template words a request's news from."""
    return {
        "ticket_id": str(ticket.id),
        "reference": ticket.reference,
        "category": ticket.category.name,
        "category_code": ticket.category.code,
        "status": ticket.status,
        **extra,
    }


def tenant_side_recipients(ticket: Ticket) -> list:
    """Who hears about a request's progress: its reporter (or else the household), followers."""
    people = [ticket.reporter] if ticket.reporter_id else selectors.household_of(ticket)
    followers = TicketFollower.objects.filter(ticket=ticket).select_related("user")
    return [*people, *(f.user for f in followers)]


def staff_recipients(ticket: Ticket) -> list:
    """Who is told of a new request: the assignee, else the team or company, else caretakers."""
    if ticket.assignee_id:
        return [ticket.assignee]
    if ticket.assigned_team_id:
        members = TeamMembership.objects.filter(team_id=ticket.assigned_team_id)
        return [m.user for m in members.select_related("user")]
    if ticket.assigned_contractor_id:
        members = ContractorMember.objects.filter(contractor_id=ticket.assigned_contractor_id)
        return [m.user for m in members.select_related("user")]
    return selectors.residence_caretakers(ticket.residence_id)


# --- creating a request -------------------------------------------------------------------------


def _place(*, dwelling, common_area, building, residence, entrance=None) -> dict:
    given = [p for p in (dwelling, common_area, entrance, building, residence) if p is not None]
    if len(given) != 1:
        raise ServiceError(
            "Say what the request is about: one dwelling, common area, entrance, building or "
            "residence.",
            code="invalid_place",
            field="place",
        )
    if dwelling is not None:
        entrance = dwelling.entrance
        building = entrance.building
        return {
            "kind": PlaceKind.DWELLING,
            "dwelling": dwelling,
            "common_area": None,
            "entrance": entrance,
            "building": building,
            "residence": building.residence,
            "organisation_id": dwelling.organisation_id,
        }
    if common_area is not None:
        entrance = common_area.entrance
        building = entrance.building if entrance else common_area.building
        residence = building.residence if building else common_area.residence
        return {
            "kind": PlaceKind.COMMON_AREA,
            "dwelling": None,
            "common_area": common_area,
            "entrance": entrance,
            "building": building,
            "residence": residence,
            "organisation_id": common_area.organisation_id,
        }
    if entrance is not None:
        return {
            "kind": PlaceKind.ENTRANCE,
            "dwelling": None,
            "common_area": None,
            "entrance": entrance,
            "building": entrance.building,
            "residence": entrance.building.residence,
            "organisation_id": entrance.organisation_id,
        }
    if building is not None:
        return {
            "kind": PlaceKind.BUILDING,
            "dwelling": None,
            "common_area": None,
            "entrance": None,
            "building": building,
            "residence": building.residence,
            "organisation_id": building.organisation_id,
        }
    return {
        "kind": PlaceKind.RESIDENCE,
        "dwelling": None,
        "common_area": None,
        "entrance": None,
        "building": None,
        "residence": residence,
        "organisation_id": residence.organisation_id,
    }


def place_resolve(
    *, dwelling=None, common_area=None, entrance=None, building=None, residence=None
) -> dict:
    """The full place of a request (entrance, building, residence) from the one given."""
    return _place(
        dwelling=dwelling,
        common_area=common_area,
        entrance=entrance,
        building=building,
        residence=residence,
    )


def _place_visible(actor, place: dict) -> bool:
    kind = place["kind"]
    if kind == PlaceKind.DWELLING:
        return estate.dwellings_visible_to(actor).filter(pk=place["dwelling"].pk).exists()
    if kind == PlaceKind.COMMON_AREA:
        return estate.common_areas_visible_to(actor).filter(pk=place["common_area"].pk).exists()
    if kind == PlaceKind.ENTRANCE:
        return estate.entrances_visible_to(actor).filter(pk=place["entrance"].pk).exists()
    if kind == PlaceKind.BUILDING:
        return estate.buildings_visible_to(actor).filter(pk=place["building"].pk).exists()
    return estate.residences_visible_to(actor).filter(pk=place["residence"].pk).exists()


def _grantor_for(actor, dwelling: Dwelling):
    """The tenant a delegate acts for when filing about that tenant's dwelling, or None."""
    if estate.current_household_dwellings(actor).filter(pk=dwelling.pk).exists():
        return None
    for delegation in estate.active_delegations_received(actor).select_related("grantor"):
        if estate.current_household_dwellings(delegation.grantor).filter(pk=dwelling.pk).exists():
            if not delegation.can_create_requests:
                raise refused("Your delegation lets you follow requests, not file them.")
            return delegation.grantor
    return None


def _check_category(category: Category, place: dict) -> None:
    organisation_id = place["organisation_id"]
    if not category.is_active or category.organisation_id not in (None, organisation_id):
        raise ServiceError("Unknown category.", code="invalid", field="category")
    if place["kind"] == PlaceKind.DWELLING and not category.in_dwelling:
        raise ServiceError("This category is for common areas, not a dwelling.", field="category")
    if place["kind"] != PlaceKind.DWELLING and not category.in_common_areas:
        raise ServiceError("This category is for a dwelling only.", field="category")


def category_questions(category: Category) -> list:
    """The extra questions of a category and its ancestors, the family's first."""
    chain = list(reversed(selectors.category_ancestors(category)))
    questions = []
    for node in chain:
        questions.extend(node.questions.all())
    return questions


def answers_validate(*, category: Category, answers: dict | None) -> dict:
    """Check the answers to a category's extra questions; return them cleaned."""
    answers = answers or {}
    if not isinstance(answers, dict):
        raise ServiceError("Answers must be an object.", field="answers")
    questions = {q.key: q for q in category_questions(category)}
    clean: dict = {}
    for key in answers:
        if key not in questions:
            raise ServiceError("Unknown question.", code="unknown_question", field=f"answers.{key}")
    for key, question in questions.items():
        value = answers.get(key)
        field = f"answers.{key}"
        if value is None or value == "":
            if question.required:
                raise ServiceError("This answer is required.", code="required", field=field)
            continue
        if question.kind == QuestionKind.BOOL:
            if not isinstance(value, bool):
                raise ServiceError("Answer yes (true) or no (false).", field=field)
        elif question.kind == QuestionKind.TEXT:
            if not isinstance(value, str) or len(value) > TEXT_ANSWER_MAX:
                raise ServiceError(f"At most {TEXT_ANSWER_MAX} characters of text.", field=field)
            value = value.strip()
        elif question.kind == QuestionKind.CHOICE:
            allowed = {choice.get("value") for choice in question.choices}
            if not isinstance(value, str) or value not in allowed:
                raise ServiceError("Not one of the choices.", code="invalid_choice", field=field)
        elif question.kind == QuestionKind.NUMBER:
            if isinstance(value, bool) or not isinstance(value, int | float | str):
                raise ServiceError("A number is expected.", field=field)
            try:
                number = Decimal(str(value))
            except InvalidOperation:
                raise ServiceError("A number is expected.", field=field) from None
            if not number.is_finite():
                raise ServiceError("A number is expected.", field=field)
            if question.min_value is not None and number < question.min_value:
                raise ServiceError(f"At least {question.min_value}.", field=field)
            if question.max_value is not None and number > question.max_value:
                raise ServiceError(f"At most {question.max_value}.", field=field)
            value = float(number)
        clean[key] = value
    return clean


def route_for(*, category: Category, residence: Residence) -> CategoryRoute | None:
    """The team or contractor handling a category in a residence (nearest category first)."""
    chain = selectors.category_ancestors(category)
    routes = CategoryRoute.objects.filter(
        Q(residence=residence) | Q(residence__isnull=True),
        organisation_id=residence.organisation_id,
        category_id__in=[c.id for c in chain],
    ).select_related("team", "contractor")
    depth = {c.id: index for index, c in enumerate(chain)}
    ranked = sorted(routes, key=lambda r: (depth[r.category_id], r.residence_id is None))
    return ranked[0] if ranked else None


def _next_reference(organisation_id, now: dt.datetime) -> str:
    year = timezone.localtime(now).year
    TicketCounter.objects.get_or_create(organisation_id=organisation_id, year=year)
    counter = TicketCounter.objects.select_for_update().get(
        organisation_id=organisation_id, year=year
    )
    counter.last += 1
    counter.save(update_fields=["last"])
    return f"{year}-{counter.last:06d}"


def _matching_incident(ticket: Ticket) -> Incident | None:
    incidents = Incident.objects.filter(
        organisation_id=ticket.organisation_id, status=IncidentStatus.OPEN
    ).select_related("category")
    if ticket.building_id:
        incidents = incidents.filter(
            Q(building_id=ticket.building_id)
            | Q(building__isnull=True, residence_id=ticket.residence_id)
        )
    else:
        incidents = incidents.filter(building__isnull=True, residence_id=ticket.residence_id)
    for incident in incidents.order_by("-started_at"):
        if ticket.category_id in selectors.category_subtree_ids(incident.category):
            return incident
    return None


def _attach_to_incident(ticket: Ticket, incident: Incident, now: dt.datetime) -> None:
    ticket.incident = incident
    fields = ["incident"]
    if ticket.status in (Status.NEW, Status.REOPENED):
        from_status = ticket.status
        ticket.acknowledge()
        ticket.acknowledged_at = ticket.acknowledged_at or now
        fields += ["status", "acknowledged_at"]
        ticket_event_record(
            ticket=ticket,
            kind=EventKind.STATUS,
            from_status=from_status,
            to_status=ticket.status,
            note=incident.public_message,
            data={"incident": str(incident.id)},
        )
    ticket_event_record(
        ticket=ticket,
        kind=EventKind.INCIDENT,
        note=incident.public_message,
        data={"incident": str(incident.id)},
    )
    _save(ticket, fields)


def _open_sensor_ticket(*, dwelling: Dwelling, category: Category) -> Ticket | None:
    """An open request raised by a sensor about the same dwelling and category family."""
    family = selectors.category_subtree_ids(category.parent or category)
    return (
        Ticket.objects.filter(
            dwelling=dwelling,
            source=Source.SENSOR,
            status__in=OPEN_STATUSES,
            category_id__in=family,
        )
        .order_by("-created_at")
        .first()
    )


# Outages made more urgent by a vulnerability someone in the home consented to record: the
# root category of the outage, and the vulnerabilities that count for it.
_VULNERABLE_OUTAGES = {
    "chauffage": "HEATING_VULNERABILITIES",
    "ascenseur": "LIFT_VULNERABILITIES",
    "electricite": "POWER_VULNERABILITIES",
}


def vulnerability_priority(*, category: Category, place: dict, priority: str) -> str:
    """One step up for a heating, lift or power outage where a vulnerable person lives."""
    from api.accounts import selectors as accounts

    kinds = _VULNERABLE_OUTAGES.get(selectors.category_ancestors(category)[-1].code)
    if kinds is None or priority == Priority.URGENT or priority not in PRIORITY_RANK:
        return priority
    if place["dwelling"] is not None:
        where = {"dwelling": place["dwelling"]}
    elif place["building"] is not None:
        where = {"building": place["building"]}
    else:
        where = {"residence": place["residence"]}
    if not accounts.vulnerable_households_exist(kinds=getattr(accounts, kinds), **where):
        return priority
    rank = PRIORITY_RANK[priority] + 1
    return next(level for level, value in PRIORITY_RANK.items() if value == rank)


@transaction.atomic
def tickets_vulnerability_raise(*, person) -> int:
    """Raise a step the open outage requests of a person's home and building, now that a
    vulnerability of theirs is recorded; a priority staff changed stands. Returns how many."""
    dwellings = list(estate.current_household_dwellings(person).select_related("entrance"))
    if not dwellings:
        return 0
    buildings = {dwelling.entrance.building_id for dwelling in dwellings}
    tickets = (
        Ticket.objects.filter(status__in=OPEN_STATUSES)
        .filter(Q(dwelling__in=dwellings) | Q(dwelling__isnull=True, building_id__in=buildings))
        .select_related("category", "dwelling", "building", "residence")
        .select_for_update(of=("self",))
    )
    raised = 0
    for ticket in tickets:
        if ticket.priority != ticket.category.default_priority:
            continue  # set by staff, or raised already
        place = {
            "dwelling": ticket.dwelling,
            "building": ticket.building,
            "residence": ticket.residence,
        }
        priority = vulnerability_priority(
            category=ticket.category, place=place, priority=ticket.priority
        )
        if priority == ticket.priority:
            continue
        changes = {"priority": [ticket.priority, priority], "by": "vulnerability"}
        ticket.priority = priority
        _set_due_times(ticket, ticket.created_at, acknowledge=ticket.acknowledged_at is None)
        _save(ticket, {"priority", "acknowledge_due_at", "resolve_due_at"})
        ticket_event_record(ticket=ticket, kind=EventKind.UPDATED, public=False, data=changes)
        raised += 1
    return raised


@transaction.atomic
def ticket_create(
    *,
    actor,
    on_behalf_of=None,
    source: str,
    category: Category,
    dwelling: Dwelling | None = None,
    common_area: CommonArea | None = None,
    building: Building | None = None,
    residence: Residence | None = None,
    entrance: Entrance | None = None,
    description: str,
    priority: str | None = None,
    client_id: uuid.UUID | None = None,
    answers: dict | None = None,
    equipment: Equipment | None = None,
    related_fault_id: uuid.UUID | None = None,
    partner: Partner | None = None,
    latitude: Decimal | None = None,
    longitude: Decimal | None = None,
    external_contact: dict | None = None,
) -> Ticket:
    """File a request; returns the existing one on a replay of the same client id.

    A tenant filing about a problem a sensor already reported joins that request instead.
    """
    if source not in Source.values:
        raise ServiceError("Unknown source.", field="source")
    place = _place(
        dwelling=dwelling,
        common_area=common_area,
        entrance=entrance,
        building=building,
        residence=residence,
    )
    if actor is not None:
        if actor.role not in CREATOR_ROLES:
            raise refused("Your role does not file requests.")
        if place["organisation_id"] != actor.organisation_id or not _place_visible(actor, place):
            raise not_found("place")
        if actor.role == Role.TENANT and place["kind"] == PlaceKind.DWELLING:
            grantor = _grantor_for(actor, place["dwelling"])
            if on_behalf_of is None:
                on_behalf_of = grantor
        if priority is not None and actor.role == Role.TENANT:
            raise refused("The priority is set by staff.", field="priority")
    elif partner is not None:
        if place["organisation_id"] != partner.organisation_id:
            raise not_found("place")
        allowed = list(partner.residences.values_list("id", flat=True))
        if allowed and place["residence"].id not in allowed:
            raise not_found("place")
    _check_category(category, place)
    if equipment is not None and equipment.organisation_id != place["organisation_id"]:
        raise not_found("equipment")
    clean_answers = answers_validate(category=category, answers=answers)
    description = (description or "").strip()
    if not description:
        raise ServiceError("Describe the problem.", code="required", field="description")

    if client_id is not None:
        existing = Ticket.objects.filter(pk=client_id).first()
        if existing is not None:
            same_author = (
                existing.organisation_id == place["organisation_id"]
                and existing.created_by_id == getattr(actor, "pk", None)
                and existing.partner_id == getattr(partner, "pk", None)
            )
            if not same_author:
                raise conflict("This id is already used.", "id_in_use")
            return existing
    if related_fault_id is not None:
        existing = Ticket.objects.filter(
            related_fault_id=related_fault_id, status__in=OPEN_STATUSES
        ).first()
        if existing is not None:
            return existing
    subject = on_behalf_of or actor
    if (
        place["kind"] == PlaceKind.DWELLING
        and source in (Source.TENANT_APP, Source.AGENCY)
        and subject is not None
        and subject.role == Role.TENANT
    ):
        sensor_ticket = _open_sensor_ticket(dwelling=place["dwelling"], category=category)
        if sensor_ticket is not None:
            return _join_sensor_ticket(
                sensor_ticket, actor=actor, on_behalf_of=on_behalf_of, description=description
            )

    now = timezone.now()
    ticket = Ticket(
        id=client_id or uuid.uuid4(),
        organisation_id=place["organisation_id"],
        reference=_next_reference(place["organisation_id"], now),
        category=category,
        # A priority staff chose stands; the category's default rises for vulnerable homes.
        priority=priority
        or vulnerability_priority(
            category=category, place=place, priority=category.default_priority
        ),
        source=source,
        place_kind=place["kind"],
        residence=place["residence"],
        building=place["building"],
        entrance=place["entrance"],
        dwelling=place["dwelling"],
        common_area=place["common_area"],
        equipment=equipment,
        description=description,
        answers=clean_answers,
        latitude=latitude,
        longitude=longitude,
        reporter=subject if subject is not None and subject.role == Role.TENANT else None,
        created_by=actor,
        partner=partner,
        external_contact=external_contact or {},
        related_fault_id=related_fault_id,
    )
    route = route_for(category=category, residence=place["residence"])
    if route is not None:
        ticket.assigned_team = route.team
        ticket.assigned_contractor = route.contractor
    _set_due_times(ticket, now)
    try:
        with transaction.atomic():
            ticket.save(force_insert=True)
    except IntegrityError as exc:
        raise conflict("This id is already used.", "id_in_use") from exc
    ticket_event_record(
        ticket=ticket,
        kind=EventKind.CREATED,
        actor=actor,
        on_behalf_of=on_behalf_of,
        to_status=Status.NEW,
        data={"source": source, "partner": str(partner.id) if partner else None},
    )
    if route is not None:
        ticket_event_record(
            ticket=ticket,
            kind=EventKind.ASSIGNED,
            public=False,
            data={
                "team": str(route.team_id) if route.team_id else None,
                "contractor": str(route.contractor_id) if route.contractor_id else None,
                "by": "routing",
            },
        )
    incident = _matching_incident(ticket)
    if incident is not None:
        _attach_to_incident(ticket, incident, now)
    link = f"tickets/{ticket.id}"
    notices.tell(
        recipients=staff_recipients(ticket),
        event="ticket.created",
        context=_context(ticket, priority=ticket.priority, residence=ticket.residence.name),
        critical=ticket.priority == Priority.URGENT,
        link=link,
        dedupe_key=f"ticket:{ticket.id}:created",
        actor=actor,
        exclude=actor,
    )
    if ticket.reporter is not None and ticket.reporter != actor:
        notices.tell(
            recipients=[ticket.reporter],
            event="ticket.received",
            context=_context(ticket),
            link=link,
            dedupe_key=f"ticket:{ticket.id}:received",
            actor=actor,
        )
    return ticket


def _join_sensor_ticket(ticket: Ticket, *, actor, on_behalf_of, description: str) -> Ticket:
    ticket = _lock(ticket)
    subject = on_behalf_of or actor
    fields = []
    if ticket.reporter_id is None and subject is not None and subject.role == Role.TENANT:
        ticket.reporter = subject
        fields.append("reporter")
    elif subject is not None:
        TicketFollower.objects.get_or_create(ticket=ticket, user=subject)
    ticket_event_record(
        ticket=ticket,
        kind=EventKind.COMMENT,
        actor=actor,
        on_behalf_of=on_behalf_of,
        note=description,
        data={"joined": True},
    )
    _save(ticket, fields)
    return ticket


# --- moving a request along -----------------------------------------------------------------------

_METHODS = {
    Status.ACKNOWLEDGED: "acknowledge",
    Status.SCHEDULED: "schedule",
    Status.IN_PROGRESS: "start",
    Status.WAITING: "wait",
    Status.RESOLVED: "resolve",
    Status.REOPENED: "reopen",
    Status.REJECTED: "reject",
    Status.DUPLICATE: "mark_duplicate",
}


def _role_refusal(actor, ticket: Ticket, to_status: str, household: bool) -> str | None:
    """Why the actor's role may not move this request to `to_status` (None: it may)."""
    if actor.role == Role.TENANT:
        if not household:
            return "Only the household that filed this request may change it."
        if to_status == Status.CLOSED:
            return None
        if to_status == Status.REOPENED:
            closed = ticket.closed_at
            if ticket.status == Status.CLOSED and (
                closed is None or timezone.now() - closed > TENANT_REOPEN_WINDOW
            ):
                return "This request was closed too long ago; file a new one."
            return None
        return "Staff move requests along; you can confirm, reopen or withdraw yours."
    if to_status not in STAFF_TARGETS.get(actor.role, set()):
        return "Your role may not do this."
    if (
        to_status == Status.CLOSED
        and ticket.status != Status.RESOLVED
        and actor.role not in selectors.AGENCY_ROLES
    ):
        return "Your role may not do this."
    return None


def _transition_method(ticket: Ticket, to_status: str) -> str | None:
    if to_status == Status.CLOSED:
        return "close" if ticket.status == Status.RESOLVED else "withdraw"
    return _METHODS.get(to_status)


def allowed_transitions(*, actor, ticket: Ticket) -> list[str]:
    """The statuses the actor may move the request to now (for the app's buttons)."""
    household = actor.role == Role.TENANT and selectors.is_household_side(actor, ticket)
    allowed = []
    for to_status in Status.values:
        method = _transition_method(ticket, to_status)
        if method is None or to_status == ticket.status:
            continue
        if not can_proceed(getattr(ticket, method)):
            continue
        if _role_refusal(actor, ticket, to_status, household) is None:
            allowed.append(to_status)
    return allowed


def _check_transition_allowed(actor, ticket: Ticket, to_status: str) -> None:
    if actor is None:
        return
    if not selectors.tickets_visible_to(actor).filter(pk=ticket.pk).exists():
        raise not_found()
    household = actor.role == Role.TENANT and selectors.is_household_side(actor, ticket)
    refusal = _role_refusal(actor, ticket, to_status, household)
    if refusal is not None:
        raise refused(refusal)


def _duplicate_target(actor, ticket: Ticket, duplicate_of) -> Ticket:
    if duplicate_of is None:
        raise ServiceError(
            "Say which request this one repeats.", code="required", field="duplicate_of"
        )
    scope = selectors.tickets_visible_to(actor) if actor is not None else Ticket.objects.all()
    target = scope.filter(pk=getattr(duplicate_of, "pk", duplicate_of)).first()
    if target is None or target.organisation_id != ticket.organisation_id:
        raise not_found("duplicate_of")
    seen = {ticket.pk}
    while target.duplicate_of_id is not None and target.pk not in seen:
        seen.add(target.pk)
        target = Ticket.objects.get(pk=target.duplicate_of_id)
    if target.pk in seen:
        raise ServiceError("A request cannot repeat itself.", field="duplicate_of")
    if target.status in (Status.REJECTED, Status.DUPLICATE):
        raise ServiceError("Merge into a request still being handled.", field="duplicate_of")
    return target


@transaction.atomic
def ticket_transition(
    *,
    ticket: Ticket,
    actor,
    to_status: str,
    note: str = "",
    public: bool = True,
    on_behalf_of=None,
    waiting_reason: str | None = None,
    duplicate_of: Ticket | None = None,
    cause: str = "",
) -> Ticket:
    """Move a request to another status, if the actor's role may, and record it.

    `cause` is a short code for why the system moved it (no_answer, still_broken...), which
    the tenant's timeline words in their language.
    """
    ticket = _lock(ticket)
    if to_status not in Status.values:
        raise ServiceError("Unknown status.", field="to_status")
    note = (note or "").strip()
    _check_transition_allowed(actor, ticket, to_status)
    if actor is not None and actor.role == Role.TENANT:
        public = True
    from_status = ticket.status
    method = _transition_method(ticket, to_status)
    if method is None or from_status == to_status:
        raise conflict(
            f"A request cannot go from {from_status} to {to_status}.", "invalid_transition"
        )

    data: dict = {"cause": cause} if cause else {}
    target = None
    if to_status == Status.WAITING:
        if waiting_reason not in WaitingReason.values:
            raise ServiceError(
                "Say why the request waits.", code="required", field="waiting_reason"
            )
        data["waiting_reason"] = waiting_reason
    if to_status == Status.REJECTED and not note:
        raise ServiceError("Tell the tenant why.", code="required", field="note")
    if to_status == Status.DUPLICATE:
        target = _duplicate_target(actor, ticket, duplicate_of)
        data["duplicate_of"] = str(target.id)

    try:
        getattr(ticket, method)()
    except TransitionNotAllowed:
        raise conflict(
            f"A request cannot go from {from_status} to {to_status}.", "invalid_transition"
        ) from None

    now = timezone.now()
    fields = {"status"}
    if from_status == Status.WAITING:
        _unpause(ticket, now)
        ticket.waiting_reason = ""
        fields |= {"paused_at", "waiting_reason", "acknowledge_due_at", "resolve_due_at"}
    if to_status == Status.WAITING:
        _pause(ticket, now)
        ticket.waiting_reason = waiting_reason
        fields |= {"paused_at", "waiting_reason"}
    handled = (Status.ACKNOWLEDGED, Status.SCHEDULED, Status.IN_PROGRESS, Status.RESOLVED)
    if to_status in handled and ticket.acknowledged_at is None:
        ticket.acknowledged_at = now
        fields.add("acknowledged_at")
    if to_status == Status.RESOLVED:
        ticket.resolved_at = now
        ticket.confirmation_requested_at = now
        ticket.confirmation = ""
        ticket.confirmed_at = None
        fields |= {"resolved_at", "confirmation_requested_at", "confirmation", "confirmed_at"}
    if to_status in FINAL_STATUSES:
        ticket.closed_at = now
        fields.add("closed_at")
    if to_status == Status.REOPENED:
        ticket.reopen_count += 1
        ticket.closed_at = None
        ticket.resolve_breached_at = None
        _set_due_times(ticket, now, acknowledge=False)
        fields |= {"reopen_count", "closed_at", "resolve_breached_at", "resolve_due_at"}
    if target is not None:
        ticket.duplicate_of = target
        fields.add("duplicate_of")
    _save(ticket, fields)
    event = ticket_event_record(
        ticket=ticket,
        kind=EventKind.STATUS,
        actor=actor,
        on_behalf_of=on_behalf_of,
        from_status=from_status,
        to_status=to_status,
        note=note,
        public=public,
        data=data,
    )
    if target is not None:
        _merge_into(ticket, target, actor=actor)
    _tell_status(ticket, event, actor=actor)
    return ticket


def _merge_into(ticket: Ticket, target: Ticket, *, actor) -> None:
    """The people following a duplicate follow the request it repeats."""
    people = [ticket.reporter] if ticket.reporter_id else []
    people += [f.user for f in TicketFollower.objects.filter(ticket=ticket).select_related("user")]
    for person in people:
        if person.pk != target.reporter_id:
            TicketFollower.objects.get_or_create(ticket=target, user=person)
    ticket_event_record(
        ticket=target,
        kind=EventKind.MERGED,
        actor=actor,
        public=False,
        data={"duplicate": str(ticket.id), "reference": ticket.reference},
    )
    target_locked = _lock(target)
    _save(target_locked, [])


def _tell_status(ticket: Ticket, event: TicketEvent, *, actor) -> None:
    if not event.public:
        return
    link = f"tickets/{ticket.id}"
    if event.to_status == Status.RESOLVED:
        notices.tell(
            recipients=tenant_side_recipients(ticket),
            event="ticket.resolved_confirm_request",
            context=_context(ticket, note=event.note, reply_fixed="1", reply_broken="2"),
            link=link,
            dedupe_key=f"ticket:{ticket.id}:resolved:{event.id}",
            actor=actor,
            exclude=actor,
        )
        return
    notices.tell(
        recipients=tenant_side_recipients(ticket),
        event="ticket.status_changed",
        context=_context(
            ticket,
            from_status=event.from_status,
            note=event.note,
            waiting_reason=ticket.waiting_reason,
        ),
        link=link,
        dedupe_key=f"ticket:{ticket.id}:event:{event.id}",
        actor=actor,
        exclude=actor,
    )


# --- other changes ------------------------------------------------------------------------------


def _require_staff_scope(actor, ticket: Ticket, roles: frozenset | None = None) -> None:
    if actor is None:
        return
    if not selectors.tickets_visible_to(actor).filter(pk=ticket.pk).exists():
        raise not_found()
    if actor.role not in (roles or selectors.STAFF_SIDE_ROLES):
        raise refused("Your role may not do this.")


@transaction.atomic
def ticket_update(
    *,
    ticket: Ticket,
    actor,
    priority: str | None = None,
    category: Category | None = None,
    description: str | None = None,
    equipment: Equipment | None = None,
    note: str = "",
) -> Ticket:
    """Correct a request's priority, category, description or equipment (staff)."""
    ticket = _lock(ticket)
    _require_staff_scope(actor, ticket, selectors.STAFF_SIDE_ROLES - {Role.CONTRACTOR})
    changes: dict = {}
    if priority is not None and priority != ticket.priority:
        if priority not in Priority.values:
            raise ServiceError("Unknown priority.", field="priority")
        changes["priority"] = [ticket.priority, priority]
        ticket.priority = priority
    if category is not None and category.pk != ticket.category_id:
        place = {
            "kind": ticket.place_kind,
            "organisation_id": ticket.organisation_id,
        }
        _check_category(category, place)
        changes["category"] = [str(ticket.category_id), str(category.pk)]
        ticket.category = category
    if description is not None:
        description = description.strip()
        if not description:
            raise ServiceError("Describe the problem.", code="required", field="description")
        if description != ticket.description:
            changes["description"] = True
            ticket.description = description
    if equipment is not None and equipment.pk != ticket.equipment_id:
        if equipment.organisation_id != ticket.organisation_id:
            raise not_found("equipment")
        changes["equipment"] = [str(ticket.equipment_id), str(equipment.pk)]
        ticket.equipment = equipment
    if not changes:
        return ticket
    if "priority" in changes or "category" in changes:
        # New targets from the request's filing time, so that moving it does not buy time.
        if ticket.acknowledged_at is None:
            _set_due_times(ticket, ticket.created_at)
        else:
            _set_due_times(ticket, ticket.created_at, acknowledge=False)
    fields = {"priority", "category", "description", "equipment", "acknowledge_due_at"}
    _save(ticket, fields | {"resolve_due_at"})
    ticket_event_record(
        ticket=ticket,
        kind=EventKind.UPDATED,
        actor=actor,
        note=note,
        public=False,
        data=changes,
    )
    return ticket


def _check_assignment(actor, organisation_id, team, contractor, assignee) -> None:
    if team is not None and team.organisation_id != organisation_id:
        raise not_found("team")
    if contractor is not None and contractor.organisation_id != organisation_id:
        raise not_found("contractor")
    if assignee is not None:
        if assignee.organisation_id != organisation_id or assignee.role not in (
            Role.TECHNICIAN,
            Role.CARETAKER,
            Role.CONTRACTOR,
            Role.AGENCY_STAFF,
        ):
            raise not_found("assignee")
        if actor is not None and actor.role == Role.TECHNICIAN and assignee.pk != actor.pk:
            raise refused("A technician may only take a request for themselves.", field="assignee")


@transaction.atomic
def ticket_assign(
    *,
    ticket: Ticket,
    actor,
    team: Team | None = None,
    contractor: Contractor | None = None,
    assignee=None,
    note: str = "",
) -> Ticket:
    """Hand a request to a team, a contractor and/or a person."""
    ticket = _lock(ticket)
    roles = DISPATCH_ROLES | {Role.TECHNICIAN}
    _require_staff_scope(actor, ticket, roles)
    if actor is not None and actor.role == Role.TECHNICIAN and (team or contractor):
        raise refused("A technician may only take a request for themselves.")
    _check_assignment(actor, ticket.organisation_id, team, contractor, assignee)
    _apply_assignment(
        ticket, actor=actor, team=team, contractor=contractor, assignee=assignee, note=note
    )
    return ticket


def _apply_assignment(ticket: Ticket, *, actor, team, contractor, assignee, note: str) -> None:
    if team is None and contractor is None and assignee is None:
        raise ServiceError("Say who handles it.", code="required", field="assignee")
    fields = set()
    if team is not None:
        ticket.assigned_team = team
        ticket.assigned_contractor = None
        fields |= {"assigned_team", "assigned_contractor"}
    if contractor is not None:
        ticket.assigned_contractor = contractor
        if team is None:
            ticket.assigned_team = None
        fields |= {"assigned_team", "assigned_contractor"}
    if assignee is not None:
        ticket.assignee = assignee
        fields.add("assignee")
    _save(ticket, fields)
    ticket_event_record(
        ticket=ticket,
        kind=EventKind.ASSIGNED,
        actor=actor,
        note=note,
        public=False,
        data={
            "team": str(ticket.assigned_team_id) if ticket.assigned_team_id else None,
            "contractor": (
                str(ticket.assigned_contractor_id) if ticket.assigned_contractor_id else None
            ),
            "assignee": str(ticket.assignee_id) if ticket.assignee_id else None,
        },
    )
    notices.tell(
        recipients=staff_recipients(ticket),
        event="ticket.assigned",
        context=_context(ticket, priority=ticket.priority, residence=ticket.residence.name),
        link=f"tickets/{ticket.id}",
        actor=actor,
        exclude=actor,
    )


@transaction.atomic
def tickets_bulk_assign(
    *,
    actor,
    ticket_ids: Sequence[uuid.UUID],
    team: Team | None = None,
    contractor: Contractor | None = None,
    assignee=None,
    note: str = "",
) -> int:
    """Hand many requests at once; all must be in the actor's scope."""
    if actor is None or actor.role not in DISPATCH_ROLES:
        raise refused("Your role may not assign requests.")
    ids = list(dict.fromkeys(ticket_ids))
    if not ids or len(ids) > BULK_ASSIGN_MAX:
        raise ServiceError(f"Between 1 and {BULK_ASSIGN_MAX} requests.", field="tickets")
    tickets = list(
        selectors.tickets_visible_to(actor)
        .filter(pk__in=ids)
        .select_for_update(of=("self",))
        .select_related("category", "residence")
    )
    if len(tickets) != len(ids):
        raise not_found("tickets")
    _check_assignment(actor, actor.organisation_id, team, contractor, assignee)
    for ticket in tickets:
        _apply_assignment(
            ticket, actor=actor, team=team, contractor=contractor, assignee=assignee, note=note
        )
    return len(tickets)


@transaction.atomic
def ticket_comment_add(
    *, ticket: Ticket, actor, text: str, public: bool = True, on_behalf_of=None
) -> TicketEvent:
    """Add a comment; tenants' comments are public, staff may keep theirs internal."""
    ticket = _lock(ticket)
    if not selectors.tickets_visible_to(actor).filter(pk=ticket.pk).exists():
        raise not_found()
    text = (text or "").strip()
    if not text:
        raise ServiceError("Write something.", code="required", field="text")
    if actor.role == Role.TENANT:
        public = True
    event = ticket_event_record(
        ticket=ticket,
        kind=EventKind.COMMENT,
        actor=actor,
        on_behalf_of=on_behalf_of,
        note=text,
        public=public,
    )
    _save(ticket, [])
    link = f"tickets/{ticket.id}"
    if actor.role == Role.TENANT:
        notices.tell(
            recipients=staff_recipients(ticket),
            event="ticket.comment",
            context=_context(ticket, text=text[:300]),
            link=link,
            actor=actor,
        )
    elif public:
        notices.tell(
            recipients=tenant_side_recipients(ticket),
            event="ticket.comment",
            context=_context(ticket, text=text[:300]),
            link=link,
            dedupe_key=f"ticket:{ticket.id}:comment:{event.id}",
            actor=actor,
            exclude=actor,
        )
    return event


@transaction.atomic
def ticket_follow(*, ticket: Ticket, actor) -> tuple[TicketFollower, bool]:
    """Follow a request ("me too" for a tenant): every update reaches the follower."""
    ticket = _lock(ticket)
    if not selectors.tickets_visible_to(actor).filter(pk=ticket.pk).exists():
        raise not_found()
    if ticket.status in FINAL_STATUSES:
        raise conflict("This request is closed; file a new one if the problem is back.")
    follower, created = TicketFollower.objects.get_or_create(
        ticket=ticket, user=actor, defaults={"me_too": actor.role == Role.TENANT}
    )
    if created:
        ticket_event_record(
            ticket=ticket,
            kind=EventKind.FOLLOWED,
            actor=actor,
            public=False,
            data={"me_too": follower.me_too},
        )
        _save(ticket, [])
    return follower, created


@transaction.atomic
def ticket_unfollow(*, ticket: Ticket, actor) -> None:
    """Stop following a request."""
    ticket = _lock(ticket)
    deleted, _ = TicketFollower.objects.filter(ticket=ticket, user=actor).delete()
    if deleted:
        _save(ticket, [])


def _require_household(actor, ticket: Ticket, on_behalf_of=None) -> None:
    if actor is None:
        return
    if not selectors.tickets_visible_to(actor).filter(pk=ticket.pk).exists():
        raise not_found()
    if actor.role == Role.TENANT:
        if selectors.is_household_side(actor, ticket):
            return
        raise refused("Only the household that filed this request may answer.")
    if actor.role in selectors.AGENCY_ROLES and on_behalf_of is not None:
        return
    raise refused("Only the tenant, or staff acting for them, may answer.")


@transaction.atomic
def ticket_confirm(
    *, ticket: Ticket, actor, fixed: bool, on_behalf_of=None, via: str = "app"
) -> Ticket:
    """The tenant's answer to "is it fixed?": closes the request, or reopens it."""
    ticket = _lock(ticket)
    _require_household(actor, ticket, on_behalf_of)
    if ticket.status != Status.RESOLVED:
        raise conflict("There is nothing to confirm on this request now.", "not_resolved")
    ticket.confirmation = Confirmation.FIXED if fixed else Confirmation.STILL_BROKEN
    ticket.confirmed_at = timezone.now()
    _save(ticket, ["confirmation", "confirmed_at"])
    ticket_event_record(
        ticket=ticket,
        kind=EventKind.CONFIRMED,
        actor=actor,
        on_behalf_of=on_behalf_of,
        data={"fixed": fixed, "via": via},
    )
    return ticket_transition(
        ticket=ticket,
        actor=actor,
        on_behalf_of=on_behalf_of,
        to_status=Status.CLOSED if fixed else Status.REOPENED,
        cause="confirmed_fixed" if fixed else "still_broken",
    )


@transaction.atomic
def ticket_rate(
    *, ticket: Ticket, actor, rating: int, comment: str = "", on_behalf_of=None
) -> Ticket:
    """The tenant's 1–5 rating of how the request was handled, with a comment."""
    ticket = _lock(ticket)
    _require_household(actor, ticket, on_behalf_of)
    if ticket.status not in (Status.RESOLVED, Status.CLOSED):
        raise conflict("A request is rated once it has been dealt with.", "not_resolved")
    if isinstance(rating, bool) or not isinstance(rating, int) or not 1 <= rating <= 5:
        raise ServiceError("A rating from 1 to 5.", field="rating")
    ticket.rating = rating
    ticket.rating_comment = (comment or "").strip()[:1000]
    ticket.rated_at = timezone.now()
    _save(ticket, ["rating", "rating_comment", "rated_at"])
    ticket_event_record(
        ticket=ticket,
        kind=EventKind.RATED,
        actor=actor,
        on_behalf_of=on_behalf_of,
        note=ticket.rating_comment,
        public=False,
        data={"rating": rating},
    )
    return ticket


@transaction.atomic
def ticket_photo_add(
    *,
    ticket: Ticket,
    actor,
    upload=None,
    client_id: uuid.UUID | None = None,
    clean: CleanPhoto | None = None,
) -> TicketPhoto:
    """Attach a photo, checked by content and stripped of its metadata (`clean`: one already
    checked and cleaned, such as an audit's, is stored as it is)."""
    ticket = _lock(ticket)
    if actor is not None:
        if not selectors.tickets_visible_to(actor).filter(pk=ticket.pk).exists():
            raise not_found()
        if actor.role == Role.TENANT and not selectors.is_household_side(actor, ticket):
            raise refused("Add photos to your own requests.")
    if client_id is not None:
        existing = TicketPhoto.objects.filter(pk=client_id).first()
        if existing is not None:
            if existing.ticket_id != ticket.pk:
                raise conflict("This id is already used.", "id_in_use")
            return existing
    if ticket.photos.count() >= MAX_PHOTOS:
        raise ServiceError(
            f"At most {MAX_PHOTOS} photos per request.", code="too_many", field="image"
        )
    if clean is None:
        clean = clean_photo(upload)
    photo = TicketPhoto(id=client_id or uuid.uuid4(), ticket=ticket, uploaded_by=actor)
    store_photo(photo, clean)
    ticket_event_record(
        ticket=ticket, kind=EventKind.PHOTO, actor=actor, data={"photo": str(photo.id)}
    )
    _save(ticket, [])
    return photo


@transaction.atomic
def ticket_delete(*, ticket: Ticket, actor) -> None:
    """Erase a request filed by mistake (or whose data must go); phones learn it at next sync."""
    ticket = _lock(ticket)
    _require_staff_scope(actor, ticket, DELETE_ROLES)
    if ticket.duplicates.exists():
        raise conflict("Other requests were merged into this one.", "in_use")
    SyncTombstone.objects.create(
        organisation_id=ticket.organisation_id,
        kind="ticket",
        object_id=ticket.pk,
        residence_id=ticket.residence_id,
        deleted_at=timezone.now(),
    )
    for photo in ticket.photos.all():
        photo.image.delete(save=False)
        photo.thumbnail.delete(save=False)
    ticket.delete()


# --- appointments -------------------------------------------------------------------------------


def _appointment_ticket(appointment: Appointment) -> Ticket:
    return _lock(appointment.ticket)


@transaction.atomic
def appointment_propose(
    *, ticket: Ticket, actor, slots: Sequence[tuple[dt.datetime, dt.datetime]], note: str = ""
) -> list[Appointment]:
    """Offer visit slots; earlier unbooked offers are withdrawn."""
    ticket = _lock(ticket)
    _require_staff_scope(actor, ticket, selectors.STAFF_SIDE_ROLES)
    if ticket.status not in OPEN_STATUSES:
        raise conflict("Visits are arranged for requests still being handled.", "not_open")
    if ticket.place_kind != PlaceKind.DWELLING:
        raise ServiceError("Visits are arranged for requests about a dwelling.", field="slots")
    if not slots or len(slots) > MAX_SLOTS:
        raise ServiceError(f"Propose 1 to {MAX_SLOTS} slots.", field="slots")
    now = timezone.now()
    for index, (starts_at, ends_at) in enumerate(slots):
        if starts_at <= now or starts_at > now + MAX_SLOT_AHEAD:
            raise ServiceError("A slot must be in the next 90 days.", field=f"slots.{index}")
        if not dt.timedelta(0) < ends_at - starts_at <= MAX_SLOT_LENGTH:
            raise ServiceError("A slot lasts at most 8 hours.", field=f"slots.{index}")
    Appointment.objects.filter(ticket=ticket, status=AppointmentStatus.PROPOSED).update(
        status=AppointmentStatus.DECLINED, updated_at=now
    )
    proposal = uuid.uuid4()
    appointments = [
        Appointment.objects.create(
            ticket=ticket,
            proposal=proposal,
            starts_at=starts_at,
            ends_at=ends_at,
            proposed_by=actor,
            note=(note or "")[:500],
        )
        for starts_at, ends_at in sorted(slots)
    ]
    ticket_event_record(
        ticket=ticket,
        kind=EventKind.APPOINTMENT,
        actor=actor,
        note=note,
        data={"action": "proposed", "slots": [a.starts_at.isoformat() for a in appointments]},
    )
    _save(ticket, [])
    notices.tell(
        recipients=tenant_side_recipients(ticket),
        event="appointment.proposed",
        context=_context(
            ticket, slots=[[a.starts_at.isoformat(), a.ends_at.isoformat()] for a in appointments]
        ),
        link=f"tickets/{ticket.id}/appointments",
        dedupe_key=f"appointment:{proposal}:proposed",
        actor=actor,
    )
    return appointments


@transaction.atomic
def appointment_book(
    *, appointment: Appointment, actor, key_with_caretaker: bool = False, on_behalf_of=None
) -> Appointment:
    """The tenant picks a proposed slot (or leaves a key with the caretaker)."""
    appointment = Appointment.objects.select_for_update().get(pk=appointment.pk)
    ticket = _appointment_ticket(appointment)
    if actor.role == Role.TENANT or on_behalf_of is not None:
        _require_household(actor, ticket, on_behalf_of)
    else:
        _require_staff_scope(actor, ticket, DISPATCH_ROLES)
    if appointment.status != AppointmentStatus.PROPOSED:
        raise conflict("This slot can no longer be chosen.", "not_available")
    now = timezone.now()
    if appointment.starts_at <= now:
        raise conflict("This slot has passed.", "not_available")
    for booked in Appointment.objects.filter(ticket=ticket, status=AppointmentStatus.BOOKED):
        booked.status = AppointmentStatus.CANCELLED
        booked.save(update_fields=["status", "updated_at"])
    Appointment.objects.filter(
        proposal=appointment.proposal, status=AppointmentStatus.PROPOSED
    ).exclude(pk=appointment.pk).update(status=AppointmentStatus.DECLINED, updated_at=now)
    appointment.status = AppointmentStatus.BOOKED
    appointment.booked_by = actor
    appointment.booked_at = now
    appointment.key_with_caretaker = key_with_caretaker
    appointment.save()
    ticket_event_record(
        ticket=ticket,
        kind=EventKind.APPOINTMENT,
        actor=actor,
        on_behalf_of=on_behalf_of,
        data={
            "action": "booked",
            "starts_at": appointment.starts_at.isoformat(),
            "ends_at": appointment.ends_at.isoformat(),
            "key_with_caretaker": key_with_caretaker,
        },
    )
    if ticket.status in (Status.NEW, Status.ACKNOWLEDGED, Status.REOPENED, Status.WAITING):
        ticket_transition(ticket=ticket, actor=None, to_status=Status.SCHEDULED)
    else:
        _save(ticket, [])
    context = _context(
        ticket,
        starts_at=appointment.starts_at.isoformat(),
        ends_at=appointment.ends_at.isoformat(),
        key_with_caretaker=key_with_caretaker,
    )
    recipients = [appointment.proposed_by] if appointment.proposed_by_id else []
    if key_with_caretaker:
        recipients += selectors.residence_caretakers(ticket.residence_id)
    notices.tell(
        recipients=recipients,
        event="appointment.booked",
        context=context,
        link=f"tickets/{ticket.id}/appointments",
        dedupe_key=f"appointment:{appointment.id}:booked:{now.isoformat()}",
        actor=actor,
        exclude=actor,
    )
    return appointment


@transaction.atomic
def appointment_cancel(
    *, appointment: Appointment, actor, reason: str = "", on_behalf_of=None
) -> Appointment:
    """Call off a booked or proposed visit; the request goes back to acknowledged."""
    appointment = Appointment.objects.select_for_update().get(pk=appointment.pk)
    ticket = _appointment_ticket(appointment)
    if actor.role == Role.TENANT:
        _require_household(actor, ticket, on_behalf_of)
    else:
        _require_staff_scope(actor, ticket, selectors.STAFF_SIDE_ROLES)
    if appointment.status not in (AppointmentStatus.PROPOSED, AppointmentStatus.BOOKED):
        raise conflict("This visit is not planned any more.", "not_available")
    was_booked = appointment.status == AppointmentStatus.BOOKED
    appointment.status = AppointmentStatus.CANCELLED
    appointment.note = (reason or appointment.note)[:500]
    appointment.save(update_fields=["status", "note", "updated_at"])
    ticket_event_record(
        ticket=ticket,
        kind=EventKind.APPOINTMENT,
        actor=actor,
        on_behalf_of=on_behalf_of,
        note=reason,
        data={"action": "cancelled", "starts_at": appointment.starts_at.isoformat()},
    )
    still_booked = Appointment.objects.filter(
        ticket=ticket, status=AppointmentStatus.BOOKED
    ).exists()
    if was_booked and ticket.status == Status.SCHEDULED and not still_booked:
        ticket_transition(ticket=ticket, actor=None, to_status=Status.ACKNOWLEDGED, note=reason)
    else:
        _save(ticket, [])
    if was_booked:
        other_side = (
            tenant_side_recipients(ticket)
            if actor.role != Role.TENANT
            else [appointment.proposed_by]
        )
        notices.tell(
            recipients=other_side,
            event="appointment.cancelled",
            context=_context(ticket, starts_at=appointment.starts_at.isoformat(), reason=reason),
            link=f"tickets/{ticket.id}/appointments",
            dedupe_key=f"appointment:{appointment.id}:cancelled",
            actor=actor,
            exclude=actor,
        )
    return appointment


@transaction.atomic
def appointment_record_outcome(
    *, appointment: Appointment, actor, outcome: str, note: str = ""
) -> Appointment:
    """After the visit: done, or missed because nobody let the technician in."""
    appointment = Appointment.objects.select_for_update().get(pk=appointment.pk)
    ticket = _appointment_ticket(appointment)
    _require_staff_scope(actor, ticket, selectors.STAFF_SIDE_ROLES)
    if outcome not in (AppointmentStatus.DONE, AppointmentStatus.MISSED):
        raise ServiceError("done or missed.", field="outcome")
    if appointment.status != AppointmentStatus.BOOKED:
        raise conflict("Only a booked visit has an outcome.", "not_booked")
    if appointment.starts_at > timezone.now():
        raise conflict("This visit has not started yet.", "not_started")
    appointment.status = outcome
    appointment.note = (note or appointment.note)[:500]
    appointment.save(update_fields=["status", "note", "updated_at"])
    ticket_event_record(
        ticket=ticket,
        kind=EventKind.APPOINTMENT,
        actor=actor,
        note=note,
        data={"action": outcome, "starts_at": appointment.starts_at.isoformat()},
    )
    if outcome == AppointmentStatus.MISSED:
        ticket.missed_appointments += 1
        _save(ticket, ["missed_appointments"])
        if ticket.status in OPEN_STATUSES - {Status.WAITING}:
            ticket_transition(
                ticket=ticket,
                actor=actor,
                to_status=Status.WAITING,
                waiting_reason=WaitingReason.NO_ACCESS,
                note=note,
            )
    elif ticket.status == Status.SCHEDULED:
        ticket_transition(ticket=ticket, actor=actor, to_status=Status.IN_PROGRESS)
    else:
        _save(ticket, [])
    return appointment


def appointment_reminders_send(*, now: dt.datetime | None = None) -> int:
    """Remind tenants and staff of the visits of the next 24 hours (once each)."""
    now = now or timezone.now()
    due = Appointment.objects.filter(
        status=AppointmentStatus.BOOKED,
        reminder_sent_at__isnull=True,
        starts_at__gt=now,
        starts_at__lte=now + REMINDER_BEFORE,
    ).values_list("id", flat=True)
    sent = 0
    for appointment_id in list(due[:1000]):
        with transaction.atomic():
            appointment = (
                Appointment.objects.select_for_update(skip_locked=True, of=("self",))
                .filter(pk=appointment_id, reminder_sent_at__isnull=True)
                .select_related("ticket__category", "ticket__residence", "proposed_by")
                .first()
            )
            if appointment is None:
                continue
            ticket = appointment.ticket
            context = _context(
                ticket,
                starts_at=appointment.starts_at.isoformat(),
                ends_at=appointment.ends_at.isoformat(),
                key_with_caretaker=appointment.key_with_caretaker,
            )
            notices.tell(
                recipients=[*tenant_side_recipients(ticket), appointment.proposed_by],
                event="appointment.reminder",
                context=context,
                link=f"tickets/{ticket.id}/appointments",
                dedupe_key=f"appointment:{appointment.id}:reminder",
            )
            appointment.reminder_sent_at = now
            appointment.save(update_fields=["reminder_sent_at", "updated_at"])
            sent += 1
    return sent


# --- service levels -----------------------------------------------------------------------------


def sla_breaches_detect(*, now: dt.datetime | None = None) -> dict:
    """Flag requests past their targets (not while waiting) and escalate them to the agency."""
    now = now or timezone.now()
    counts = {"acknowledge": 0, "resolve": 0}
    checks = {
        "acknowledge": Q(
            acknowledged_at__isnull=True,
            acknowledge_due_at__lt=now,
            acknowledge_breached_at__isnull=True,
        ),
        "resolve": Q(resolve_due_at__lt=now, resolve_breached_at__isnull=True),
    }
    for target, condition in checks.items():
        ids = list(
            Ticket.objects.filter(condition, status__in=OPEN_STATUSES - {Status.WAITING})
            .order_by("resolve_due_at")
            .values_list("id", flat=True)[:2000]
        )
        for ticket_id in ids:
            with transaction.atomic():
                ticket = (
                    Ticket.objects.select_for_update(skip_locked=True, of=("self",))
                    .filter(condition, pk=ticket_id, status__in=OPEN_STATUSES - {Status.WAITING})
                    .select_related("category", "residence")
                    .first()
                )
                if ticket is None:
                    continue
                _breach(ticket, target, now)
                counts[target] += 1
    return counts


def _breach(ticket: Ticket, target: str, now: dt.datetime) -> None:
    field = f"{target}_breached_at"
    due = getattr(ticket, f"{target}_due_at")
    setattr(ticket, field, now)
    fields = [field]
    first_escalation = ticket.escalated_at is None
    ticket.escalated_at = ticket.escalated_at or now
    fields.append("escalated_at")
    _save(ticket, fields)
    ticket_event_record(
        ticket=ticket,
        kind=EventKind.SLA_BREACHED,
        public=False,
        data={"target": target, "due_at": due.isoformat() if due else None},
    )
    staff = selectors.agency_staff_of(ticket.residence)
    ticket_event_record(
        ticket=ticket,
        kind=EventKind.ESCALATED,
        public=False,
        data={"target": target, "to": [str(p.pk) for p in staff], "first": first_escalation},
    )
    notices.tell(
        recipients=staff,
        event="ticket.sla_breached",
        context=_context(
            ticket,
            target=target,
            due_at=due.isoformat() if due else None,
            priority=ticket.priority,
            residence=ticket.residence.name,
        ),
        critical=ticket.priority == Priority.URGENT,
        link=f"tickets/{ticket.id}",
        dedupe_key=f"ticket:{ticket.id}:breach:{target}:{ticket.reopen_count}",
    )


def tickets_auto_close(*, now: dt.datetime | None = None) -> int:
    """Close resolved requests whose tenant has not answered within 7 days."""
    now = now or timezone.now()
    ids = list(
        Ticket.objects.filter(
            status=Status.RESOLVED, confirmation_requested_at__lt=now - AUTO_CLOSE_AFTER
        ).values_list("id", flat=True)[:2000]
    )
    closed = 0
    for ticket_id in ids:
        with transaction.atomic():
            ticket = (
                Ticket.objects.select_for_update(skip_locked=True, of=("self",))
                .filter(pk=ticket_id, status=Status.RESOLVED)
                .first()
            )
            if ticket is None:
                continue
            ticket_transition(ticket=ticket, actor=None, to_status=Status.CLOSED, cause="no_answer")
            closed += 1
    return closed


# --- closing the loop by SMS --------------------------------------------------------------------

SMS_FIXED = {"1", "oui", "yes", "ok", "répar", "repar", "نعم"}
SMS_BROKEN = {"2", "non", "no", "لا"}


def _sms_answer(body: str) -> bool | None:
    word = (body or "").strip().lower().strip(".!")
    if word in SMS_FIXED or word.startswith(("1 ", "répar", "repar")):
        return True
    if word in SMS_BROKEN or word.startswith("2 "):
        return False
    return None


@transaction.atomic
def inbound_sms_handle(
    *, message_id: str, sender: str, body: str, received_at: dt.datetime | None = None
) -> InboundSms:
    """A tenant's SMS answer: "1" fixed, "2" still broken, about their latest resolved request."""
    from django.contrib.auth import get_user_model

    existing = InboundSms.objects.filter(message_id=message_id).first()
    if existing is not None:
        return existing
    received_at = received_at or timezone.now()
    record = InboundSms(
        message_id=message_id,
        sender=sender[:20],
        body=(body or "")[:1600],
        received_at=received_at,
        outcome="ignored",
    )
    person = get_user_model().objects.filter(phone=sender, is_active=True).first()
    answer = _sms_answer(body)
    if person is None:
        record.outcome = "unknown_sender"
    elif answer is None:
        record.outcome = "not_understood"
    else:
        ticket = (
            Ticket.objects.filter(
                status=Status.RESOLVED, organisation_id=person.organisation_id, reporter=person
            )
            .order_by("-confirmation_requested_at")
            .first()
        )
        if ticket is None and person.role == Role.TENANT:
            households = estate.current_household_dwellings(person).values("id")
            ticket = (
                Ticket.objects.filter(
                    status=Status.RESOLVED, dwelling_id__in=households, reporter__isnull=True
                )
                .order_by("-confirmation_requested_at")
                .first()
            )
        if ticket is None:
            record.outcome = "no_pending_request"
        else:
            record.ticket = ticket
            locked = _lock(ticket)
            locked.confirmation = Confirmation.FIXED if answer else Confirmation.STILL_BROKEN
            locked.confirmed_at = received_at
            _save(locked, ["confirmation", "confirmed_at"])
            ticket_event_record(
                ticket=locked,
                kind=EventKind.CONFIRMED,
                actor=person,
                data={"fixed": answer, "via": "sms"},
            )
            ticket_transition(
                ticket=locked,
                actor=None,
                on_behalf_of=person,
                to_status=Status.CLOSED if answer else Status.REOPENED,
                cause="confirmed_fixed" if answer else "still_broken",
            )
            record.outcome = "closed" if answer else "reopened"
    record.save(force_insert=True)
    return record


# --- incidents ----------------------------------------------------------------------------------


def _incident_context(incident: Incident, message: str) -> dict:
    return {
        "incident_id": str(incident.id),
        "category": incident.category.name,
        "category_code": incident.category.code,
        "residence": incident.residence.name,
        "building": incident.building.reference if incident.building_id else None,
        "message": message,
        "expected_end": incident.expected_end.isoformat() if incident.expected_end else None,
    }


def _tell_incident(incident: Incident, update: IncidentUpdate, event: str, *, actor) -> None:
    people = selectors.incident_affected_people(incident)
    update.recipients = notices.tell(
        recipients=people,
        event=event,
        context=_incident_context(incident, update.public_message),
        critical=event == "incident.started",
        link=f"incidents/{incident.id}",
        dedupe_key=f"incident:{incident.id}:{update.id}",
        actor=actor,
    )
    update.save(update_fields=["recipients", "updated_at"])


def _incident_place_check(actor, *, building, residence, category) -> tuple:
    if (building is None) == (residence is None):
        raise ServiceError("Say which building or residence.", code="invalid_place", field="place")
    residence = building.residence if building is not None else residence
    if actor is not None:
        if actor.role not in INCIDENT_ROLES:
            raise refused("Your role may not declare incidents.")
        visible = (
            estate.buildings_visible_to(actor).filter(pk=building.pk)
            if building is not None
            else estate.residences_visible_to(actor).filter(pk=residence.pk)
        )
        if not visible.exists():
            raise not_found("place")
    if not category.is_active or category.organisation_id not in (None, residence.organisation_id):
        raise ServiceError("Unknown category.", field="category")
    return building, residence


@transaction.atomic
def incident_open(
    *,
    actor,
    building: Building | None = None,
    residence: Residence | None = None,
    category: Category,
    public_message: str,
    expected_end: dt.datetime | None = None,
    source: str = "staff",
    related_fault_id: uuid.UUID | None = None,
) -> Incident:
    """Declare an outage: matching requests join it and every household there is told."""
    building, residence = _incident_place_check(
        actor, building=building, residence=residence, category=category
    )
    public_message = (public_message or "").strip()
    if not public_message:
        raise ServiceError(
            "Tell the tenants what is happening.", code="required", field="public_message"
        )
    now = timezone.now()
    if expected_end is not None and expected_end <= now:
        raise ServiceError("The expected end must be in the future.", field="expected_end")
    existing = Incident.objects.filter(
        organisation_id=residence.organisation_id,
        status=IncidentStatus.OPEN,
        category=category,
        residence=residence,
        building=building,
    ).first()
    if existing is not None:
        if actor is None:
            return existing
        raise conflict("This incident is already declared; update it instead.", "already_open")
    incident = Incident.objects.create(
        organisation_id=residence.organisation_id,
        category=category,
        residence=residence,
        building=building,
        public_message=public_message,
        expected_end=expected_end,
        started_at=now,
        opened_by=actor,
        source=source[:20],
        related_fault_id=related_fault_id,
    )
    update = IncidentUpdate.objects.create(
        incident=incident,
        kind=IncidentUpdateKind.STARTED,
        public_message=public_message,
        expected_end=expected_end,
        actor=actor,
    )
    family = selectors.category_subtree_ids(category)
    tickets = Ticket.objects.filter(
        organisation_id=residence.organisation_id,
        status__in=OPEN_STATUSES,
        incident__isnull=True,
        category_id__in=family,
    ).select_related("category", "residence")
    tickets = (
        tickets.filter(building=building)
        if building is not None
        else tickets.filter(residence=residence)
    )
    for ticket in tickets.select_for_update(of=("self",)):
        _attach_to_incident(ticket, incident, now)
    _tell_incident(incident, update, "incident.started", actor=actor)
    return incident


def _lock_incident(incident: Incident, actor) -> Incident:
    incident = (
        Incident.objects.select_for_update(of=("self",))
        .select_related("category", "residence", "building")
        .get(pk=incident.pk)
    )
    if actor is not None:
        if actor.role not in INCIDENT_ROLES:
            raise refused("Your role may not change incidents.")
        if not selectors.incidents_visible_to(actor).filter(pk=incident.pk).exists():
            raise not_found()
    return incident


@transaction.atomic
def incident_update(
    *,
    incident: Incident,
    actor,
    public_message: str | None = None,
    expected_end: dt.datetime | None = None,
) -> Incident:
    """Tell the households news of an incident (a new message and/or expected end)."""
    incident = _lock_incident(incident, actor)
    if incident.status != IncidentStatus.OPEN:
        raise conflict("This incident is over.", "closed")
    message = (public_message or "").strip()
    if not message and expected_end is None:
        raise ServiceError("Give news: a message or a new expected end.", field="public_message")
    if expected_end is not None and expected_end <= timezone.now():
        raise ServiceError("The expected end must be in the future.", field="expected_end")
    if message:
        incident.public_message = message
    if expected_end is not None:
        incident.expected_end = expected_end
    incident.version = F("version") + 1
    incident.save(update_fields=["public_message", "expected_end", "version", "updated_at"])
    incident.refresh_from_db(fields=["version"])
    update = IncidentUpdate.objects.create(
        incident=incident,
        kind=IncidentUpdateKind.UPDATED,
        public_message=incident.public_message,
        expected_end=incident.expected_end,
        actor=actor,
    )
    _tell_incident(incident, update, "incident.updated", actor=actor)
    return incident


@transaction.atomic
def incident_close(*, incident: Incident, actor, public_message: str = "") -> Incident:
    """End an incident: its open requests are resolved (tenants confirm) and everyone is told."""
    incident = _lock_incident(incident, actor)
    if incident.status != IncidentStatus.OPEN:
        raise conflict("This incident is already over.", "closed")
    now = timezone.now()
    message = (public_message or "").strip() or incident.public_message
    incident.status = IncidentStatus.CLOSED
    incident.ended_at = now
    incident.public_message = message
    incident.version = F("version") + 1
    incident.save(update_fields=["status", "ended_at", "public_message", "version", "updated_at"])
    incident.refresh_from_db(fields=["version"])
    update = IncidentUpdate.objects.create(
        incident=incident, kind=IncidentUpdateKind.ENDED, public_message=message, actor=actor
    )
    for ticket in Ticket.objects.filter(incident=incident, status__in=OPEN_STATUSES):
        ticket_transition(
            ticket=ticket, actor=None, to_status=Status.RESOLVED, note=message, cause="incident"
        )
    _tell_incident(incident, update, "incident.ended", actor=actor)
    return incident


# --- Open311 partners ---------------------------------------------------------------------------

PARTNER_KEY_PREFIX = "p311"


def _key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@transaction.atomic
def partner_create(
    *, organisation, name: str, residences: Iterable[Residence] = ()
) -> tuple[Partner, str]:
    """Register a partner system; returns it with its API key (shown once, kept hashed)."""
    prefix = secrets.token_hex(4)
    key = f"{PARTNER_KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    partner = Partner.objects.create(
        organisation=organisation, name=name, key_prefix=prefix, key_hash=_key_hash(key)
    )
    residences = list(residences)
    if any(r.organisation_id != organisation.id for r in residences):
        raise ServiceError("Residences of another organisation.", field="residences")
    partner.residences.set(residences)
    return partner, key


@transaction.atomic
def partner_rotate_key(*, partner: Partner) -> str:
    """Give a partner a new API key; the old one stops working at once."""
    prefix = secrets.token_hex(4)
    key = f"{PARTNER_KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    partner.key_prefix = prefix
    partner.key_hash = _key_hash(key)
    partner.save(update_fields=["key_prefix", "key_hash", "updated_at"])
    return key


@transaction.atomic
def partner_disable(*, partner: Partner) -> Partner:
    """Stop a partner's key working."""
    partner.is_active = False
    partner.save(update_fields=["is_active", "updated_at"])
    return partner


def partner_authenticate(key: str) -> Partner | None:
    """The active partner holding this API key, or None."""
    parts = (key or "").split("_", 2)
    if len(parts) != 3 or parts[0] != PARTNER_KEY_PREFIX or len(key) > 200:
        return None
    partner = (
        Partner.objects.filter(key_prefix=parts[1], is_active=True)
        .select_related("organisation")
        .first()
    )
    if partner is None or not hmac.compare_digest(partner.key_hash, _key_hash(key)):
        return None
    Partner.objects.filter(pk=partner.pk).update(last_used_at=timezone.now())
    return partner
