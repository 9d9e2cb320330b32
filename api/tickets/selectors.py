"""Reads of requests, incidents and appointments, each scoped to what the given person may see.

Scope rules: a tenant (or their delegate) sees the requests about their dwellings filed since their
lease began (a new tenant never sees the previous household's), and the requests about the common
areas of their entrance, building and residence, without who filed them. Caretakers, agency staff,
managers and administrators see every request of the residences in their scope; a technician
those of their teams' sectors and whatever is assigned to them or their team; a contractor only
what is assigned to their company.
"""

import datetime as dt
import statistics
from collections import defaultdict
from collections.abc import Iterable

from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from api.core.roles import Role
from api.estate import selectors as estate
from api.estate.models import (
    AgencyMembership,
    CaretakerAssignment,
    ContractorMember,
    Dwelling,
    HouseholdMember,
    TeamMembership,
)

from .models import (
    OPEN_STATUSES,
    Appointment,
    Category,
    Incident,
    IncidentStatus,
    PlaceKind,
    Status,
    Ticket,
    TicketFollower,
)

RESIDENCE_WIDE_ROLES = frozenset({Role.CARETAKER, Role.AGENCY_STAFF, Role.MANAGER, Role.ADMIN})
STAFF_SIDE_ROLES = frozenset(
    {Role.CARETAKER, Role.TECHNICIAN, Role.CONTRACTOR, Role.AGENCY_STAFF, Role.MANAGER, Role.ADMIN}
)
AGENCY_ROLES = frozenset({Role.AGENCY_STAFF, Role.MANAGER, Role.ADMIN})
# Incidents stay on the tenant's banner for a while after they end ("heating is back").
INCIDENT_BANNER_AFTER_END = dt.timedelta(hours=24)


def _organisation_id(user) -> object | None:
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return None
    return user.organisation_id


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=timezone.get_current_timezone())


def tenant_leases(user) -> list[tuple[object, dt.date]]:
    """(dwelling id, lease start) of the leases in force for the tenant and their grantors."""
    today = timezone.localdate()
    grantors = estate.active_delegations_received(user).values("grantor_id")
    members = HouseholdMember.objects.filter(
        estate.current_lease_q(today, "lease__"),
        Q(person=user) | Q(person_id__in=grantors),
        lease__organisation_id=user.organisation_id,
    )
    return sorted(set(members.values_list("lease__dwelling_id", "lease__start_date")))


def tenant_places(user) -> dict[str, set]:
    """Ids of the dwellings, entrances, buildings and residences a tenant lives in (or acts for)."""
    leases = tenant_leases(user)
    dwelling_ids = {dwelling_id for dwelling_id, _ in leases}
    rows = Dwelling.objects.filter(id__in=dwelling_ids).values_list(
        "entrance_id", "entrance__building_id", "entrance__building__residence_id"
    )
    return {
        "dwellings": dwelling_ids,
        "entrances": {row[0] for row in rows},
        "buildings": {row[1] for row in rows},
        "residences": {row[2] for row in rows},
        "leases": set(leases),
    }


def _shared_places_q(places: dict[str, set]) -> Q:
    """Requests about the common parts of the places (not about a dwelling)."""
    return ~Q(place_kind=PlaceKind.DWELLING) & (
        Q(entrance_id__in=places["entrances"])
        | Q(entrance__isnull=True, building_id__in=places["buildings"])
        | Q(building__isnull=True, residence_id__in=places["residences"])
    )


def _household_q(places: dict[str, set]) -> Q:
    """Requests about the tenant's dwellings filed since their lease began."""
    q = Q(pk__in=[])
    for dwelling_id, start in places["leases"]:
        q |= Q(dwelling_id=dwelling_id, created_at__gte=_midnight(start))
    return q


def tickets_visible_to(user) -> QuerySet[Ticket]:
    """Requests the user may see."""
    organisation_id = _organisation_id(user)
    if organisation_id is None:
        return Ticket.objects.none()
    tickets = Ticket.objects.filter(organisation_id=organisation_id)
    if user.role == Role.TENANT:
        places = tenant_places(user)
        return tickets.filter(_household_q(places) | _shared_places_q(places))
    if user.role in RESIDENCE_WIDE_ROLES:
        return tickets.filter(residence_id__in=estate.residences_visible_to(user).values("id"))
    if user.role == Role.TECHNICIAN:
        teams = TeamMembership.objects.filter(user=user).values("team_id")
        return tickets.filter(
            Q(residence_id__in=estate.residences_visible_to(user).values("id"))
            | Q(assigned_team_id__in=teams)
            | Q(assignee=user)
        )
    if user.role == Role.CONTRACTOR:
        companies = ContractorMember.objects.filter(user=user).values("contractor_id")
        return tickets.filter(assigned_contractor_id__in=companies)
    return tickets.none()


def ticket_list(*, user, open_only: bool = False, lean: bool = False) -> QuerySet[Ticket]:
    """Requests with what their rows show loaded in the same query (`lean`: only that)."""
    tickets = with_row_data(tickets_visible_to(user), user=user, lean=lean)
    if open_only:
        tickets = tickets.filter(status__in=OPEN_STATUSES)
    return tickets


def ticket_rows(*, user, ids: list) -> list[Ticket]:
    """The rows of a page of requests, in the order of `ids` (taken from a scoped query).

    Lists sort and cut the page on the requests table alone, then load what the rows show
    for those few ids: sorting thousands of rows already joined to eight tables is slow.
    """
    tickets = with_row_data(Ticket.objects.filter(pk__in=ids), user=user, lean=True)
    rows = {t.pk: t for t in tickets}
    return [rows[pk] for pk in ids if pk in rows]


# What a list row shows: loading only this keeps thousands of rows cheap to build.
ROW_FIELDS = (
    "id",
    "organisation_id",
    "reference",
    "priority",
    "source",
    "status",
    "place_kind",
    "description",
    "created_at",
    "updated_at",
    "acknowledge_due_at",
    "resolve_due_at",
    "acknowledged_at",
    "resolved_at",
    "incident_id",
    "duplicate_of_id",
    "reporter_id",
    "created_by_id",
    "waiting_reason",
    "rating",
    "version",
    "category__id",
    "category__code",
    "category__name",
    "category__labels",
    "residence__id",
    "residence__name",
    "building__id",
    "building__reference",
    "entrance__id",
    "entrance__label",
    "entrance__reference",
    "dwelling__id",
    "dwelling__reference",
    "common_area__id",
    "common_area__name",
    "common_area__kind",
    "assigned_team__id",
    "assigned_team__name",
    "assigned_contractor__id",
    "assigned_contractor__name",
    "assignee__id",
    "assignee__first_name",
    "assignee__last_name",
)


def with_row_data(tickets: QuerySet[Ticket], *, user, lean: bool = False) -> QuerySet[Ticket]:
    """Join and annotate what a list row shows (places, handlers, followers)."""
    tickets = tickets.select_related(
        "category",
        "residence",
        "building",
        "entrance",
        "dwelling",
        "common_area",
        "assigned_team",
        "assigned_contractor",
        "assignee",
    )
    followers = (
        TicketFollower.objects.filter(ticket=OuterRef("pk"))
        .order_by()
        .values("ticket")
        .annotate(n=Count("id"))
        .values("n")
    )
    if lean:
        tickets = tickets.only(*ROW_FIELDS)
    return tickets.annotate(
        followers_count=Coalesce(Subquery(followers), 0),
        following=Exists(TicketFollower.objects.filter(ticket=OuterRef("pk"), user=user)),
    )


def ticket_get(*, user, ticket_id) -> Ticket | None:
    """One request in the user's scope, or None."""
    return ticket_list(user=user).filter(pk=ticket_id).first()


def is_household_side(user, ticket: Ticket) -> bool:
    """The user filed the request, or lives in (or acts for) the dwelling it is about."""
    if user is None or user.role != Role.TENANT:
        return False
    if ticket.reporter_id == user.id:
        return True
    if ticket.dwelling_id is None:
        return False
    return any(
        dwelling_id == ticket.dwelling_id and ticket.created_at >= _midnight(start)
        for dwelling_id, start in tenant_leases(user)
    )


def household_of(ticket: Ticket) -> list:
    """The people living in the dwelling of a request today (for messages when nobody filed it)."""
    if ticket.dwelling_id is None:
        return []
    members = HouseholdMember.objects.filter(
        estate.current_lease_q(timezone.localdate(), "lease__"),
        lease__dwelling_id=ticket.dwelling_id,
    ).select_related("person")
    return [member.person for member in members if member.person.is_active]


def residence_caretakers(residence_id) -> list:
    """The caretakers looking after a residence."""
    assignments = CaretakerAssignment.objects.filter(residence_id=residence_id).select_related(
        "caretaker"
    )
    return [a.caretaker for a in assignments if a.caretaker.is_active]


def agency_staff_of(residence) -> list:
    """Agency staff of the agency managing a residence (they get escalations)."""
    memberships = AgencyMembership.objects.filter(agency_id=residence.agency_id).select_related(
        "user"
    )
    return [m.user for m in memberships if m.user.is_active]


def similar_open_tickets(*, user, category: Category, place: dict) -> QuerySet[Ticket]:
    """Open requests of the same category family about the same entrance or building."""
    family = category_subtree_ids(category.parent or category)
    tickets = ticket_list(user=user, open_only=True).filter(category_id__in=family)
    if place.get("entrance") is not None:
        near = Q(entrance_id=place["entrance"].id) | Q(
            entrance__isnull=True, building_id=place["building"].id
        )
    elif place.get("building") is not None:
        near = Q(building_id=place["building"].id)
    else:
        near = Q(residence_id=place["residence"].id, building__isnull=True)
    tickets = tickets.filter(near)
    if user.role == Role.TENANT:
        # Another household's dwelling is private: only shared parts and their own home.
        tickets = tickets.filter(
            ~Q(place_kind=PlaceKind.DWELLING) | Q(dwelling=place.get("dwelling"))
        )
    return tickets.order_by("-created_at")


# --- categories ---------------------------------------------------------------------------------


def categories_of(organisation_id) -> QuerySet[Category]:
    """Active categories an organisation files under: the standard tree and its own."""
    return Category.objects.filter(
        Q(organisation__isnull=True) | Q(organisation_id=organisation_id), is_active=True
    )


def categories_visible_to(user) -> QuerySet[Category]:
    """Active categories: the standard tree and the user's organisation's own."""
    organisation_id = _organisation_id(user)
    if organisation_id is None:
        return Category.objects.none()
    return categories_of(organisation_id)


def category_by_code(organisation_id, code: str, **filters) -> Category | None:
    """The organisation's own active category with this code, else the standard one."""
    return (
        categories_of(organisation_id)
        .filter(code=code, **filters)
        .order_by(F("organisation_id").asc(nulls_last=True))
        .first()
    )


def category_subtree_ids(category: Category) -> set:
    """The category and all its descendants."""
    ids = {category.id}
    frontier = {category.id}
    while frontier:
        frontier = (
            set(Category.objects.filter(parent_id__in=frontier).values_list("id", flat=True)) - ids
        )
        ids |= frontier
    return ids


def category_ancestors(category: Category) -> list[Category]:
    """The category and its ancestors, nearest first."""
    chain, seen = [], set()
    node = category
    while node is not None and node.id not in seen:
        chain.append(node)
        seen.add(node.id)
        node = node.parent
    return chain


# --- incidents ----------------------------------------------------------------------------------


def incidents_visible_to(user) -> QuerySet[Incident]:
    """Incidents about the places the user may see."""
    organisation_id = _organisation_id(user)
    if organisation_id is None:
        return Incident.objects.none()
    incidents = Incident.objects.filter(organisation_id=organisation_id)
    if user.role == Role.TENANT:
        places = tenant_places(user)
        return incidents.filter(
            Q(building_id__in=places["buildings"])
            | Q(building__isnull=True, residence_id__in=places["residences"])
        )
    return incidents.filter(residence_id__in=estate.residences_visible_to(user).values("id"))


def incident_banner(*, user) -> QuerySet[Incident]:
    """Incidents a tenant app shows as a banner: open, or ended in the last day."""
    recent = timezone.now() - INCIDENT_BANNER_AFTER_END
    return (
        incidents_visible_to(user)
        .filter(Q(status=IncidentStatus.OPEN) | Q(ended_at__gte=recent))
        .select_related("category", "residence", "building")
        .order_by("status", "-started_at")
    )


def incident_affected_people(incident: Incident) -> list:
    """Everyone living today in the building or residence of an incident."""
    dwellings = Dwelling.objects.filter(organisation_id=incident.organisation_id)
    if incident.building_id:
        dwellings = dwellings.filter(entrance__building_id=incident.building_id)
    else:
        dwellings = dwellings.filter(entrance__building__residence_id=incident.residence_id)
    members = HouseholdMember.objects.filter(
        estate.current_lease_q(timezone.localdate(), "lease__"),
        lease__dwelling_id__in=dwellings.values("id"),
        person__is_active=True,
    ).select_related("person")
    people = {member.person_id: member.person for member in members}
    return list(people.values())


# --- appointments -------------------------------------------------------------------------------


def appointments_visible_to(user) -> QuerySet[Appointment]:
    """Visits of the requests the user may see (a tenant: only those about their home)."""
    tickets = tickets_visible_to(user)
    if user is not None and getattr(user, "role", None) == Role.TENANT:
        tickets = tickets.filter(place_kind=PlaceKind.DWELLING)
    return Appointment.objects.filter(ticket_id__in=tickets.values("id"))


# --- figures ------------------------------------------------------------------------------------


def _median_hours(values: Iterable[dt.timedelta]) -> float | None:
    values = [value.total_seconds() / 3600 for value in values if value is not None]
    return round(statistics.median(values), 2) if values else None


def _figures(rows: list[dict]) -> dict:
    created = len(rows)
    acknowledged = [r for r in rows if r["acknowledged_at"]]
    resolved = [r for r in rows if r["resolved_at"]]
    with_ack_target = [r for r in acknowledged if r["acknowledge_due_at"]]
    with_resolve_target = [r for r in resolved if r["resolve_due_at"]]
    ratings = [r["rating"] for r in rows if r["rating"]]
    return {
        "created": created,
        "acknowledged": len(acknowledged),
        "resolved": len(resolved),
        "median_hours_to_acknowledge": _median_hours(
            r["acknowledged_at"] - r["created_at"] for r in acknowledged
        ),
        "median_hours_to_resolve": _median_hours(
            r["resolved_at"] - r["created_at"] for r in resolved
        ),
        "acknowledged_within_target": _share(
            sum(1 for r in with_ack_target if r["acknowledge_breached_at"] is None),
            len(with_ack_target),
        ),
        "resolved_within_target": _share(
            sum(1 for r in with_resolve_target if r["resolve_breached_at"] is None),
            len(with_resolve_target),
        ),
        "reopen_rate": _share(sum(1 for r in resolved if r["reopen_count"]), len(resolved)),
        "satisfaction": round(sum(ratings) / len(ratings), 2) if ratings else None,
        "ratings": len(ratings),
        "satisfied_share": _share(sum(1 for rating in ratings if rating >= 4), len(ratings)),
    }


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def ticket_kpis(
    *, user, date_from: dt.date, date_to: dt.date, tickets: QuerySet[Ticket] | None = None
) -> dict:
    """Service-level figures of the requests filed between two days, overall and per group."""
    start = _midnight(date_from)
    end = _midnight(date_to + dt.timedelta(days=1))
    scoped = tickets if tickets is not None else tickets_visible_to(user)
    rows = list(
        scoped.filter(created_at__gte=start, created_at__lt=end)
        .exclude(status=Status.DUPLICATE)
        .values(
            "category_id",
            "category__name",
            "category__code",
            "residence_id",
            "residence__name",
            "created_at",
            "acknowledged_at",
            "resolved_at",
            "acknowledge_due_at",
            "resolve_due_at",
            "acknowledge_breached_at",
            "resolve_breached_at",
            "reopen_count",
            "rating",
        )
    )
    by_category: dict = defaultdict(list)
    by_residence: dict = defaultdict(list)
    for row in rows:
        by_category[(row["category_id"], row["category__code"], row["category__name"])].append(row)
        by_residence[(row["residence_id"], row["residence__name"])].append(row)
    return {
        "date_from": date_from,
        "date_to": date_to,
        "overall": _figures(rows),
        "by_category": [
            {"id": key[0], "code": key[1], "name": key[2], **_figures(group)}
            for key, group in sorted(by_category.items(), key=lambda item: item[0][2])
        ],
        "by_residence": [
            {"id": key[0], "name": key[1], **_figures(group)}
            for key, group in sorted(by_residence.items(), key=lambda item: item[0][1])
        ],
    }
