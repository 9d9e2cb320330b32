"""Reads of a person's data: everything held about them, who read it, who a breach touches.

`person_data` walks the models generically: every row of an api.* model with a foreign key to
the person, to one of their leases or to one of their household memberships, or to their home
and written while their lease ran, is part of their export, so a new app's data is included
without changing this module. Explicit sections add
what a key does not reach: the whole timeline of their requests (staff comments included), the
deliveries of their notifications, a summary of the readings of their home during their lease,
and the log of the staff who read their data.
"""

from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from uuid import UUID

from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import models
from django.db.models import Count, Max, Min, Q, QuerySet, Sum
from django.utils import timezone

from api.accounts.models import PersonalDataAccess
from api.core.roles import Role
from api.estate.models import Dwelling, HouseholdMember, Lease
from api.estate.selectors import DELEGATION_SUPERVISOR_ROLES, _organisation_id, people_visible_to

from .models import DataExport, ErasureRequest, Rectification

User = get_user_model()

SECTION_ROW_LIMIT = 5000
# Columns that are secrets or keyed hashes, useless to the person and unsafe in a file.
SECRET_FIELDS = frozenset(
    {
        "password",
        "code_hash",
        "token",
        "token_hash",
        "key_hash",
        "phone_digest",
        "password_hash",
        "auth",
        "p256dh",
        "raw",
        "dedupe_hash",
    }
)
# Models given their own section, or that say nothing about the person.
WALK_EXCLUDED = frozenset(
    {
        "accounts.user",
        "accounts.personaldataaccess",
        "accounts.logincode",
        "estate.householdmember",
        "privacy.dataexport",
    }
)
# Rows about a dwelling belong to its household while their lease runs (a door-knocking visit,
# a fault in the home); these are not about the household, or belong to one person only.
HOME_WALK_EXCLUDED = frozenset(
    {"estate.equipment", "estate.lease", "notifications.notification", "telemetry.device"}
)
PRIVACY_STAFF_ROLES = DELEGATION_SUPERVISOR_ROLES


# --- values ---------------------------------------------------------------------------------


def plain(value):
    """A model value as JSON: ids and decimals as text, instants in ISO 8601, files by name."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, UUID | Decimal | timedelta):
        return str(value)
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, bytes | memoryview):
        return None
    if hasattr(value, "name") and hasattr(value, "storage"):
        return value.name or ""
    return str(value)


def _exported_fields(model) -> list:
    return [
        f
        for f in model._meta.concrete_fields
        if f.name not in SECRET_FIELDS and not isinstance(f, models.BinaryField)
    ]


def row_dict(obj, fields: list | None = None) -> dict:
    """One row's exported columns (foreign keys as ids)."""
    fields = fields if fields is not None else _exported_fields(type(obj))
    return {f.attname: plain(f.value_from_object(obj)) for f in fields}


def _section(queryset: QuerySet, title: str, key: str) -> dict:
    model = queryset.model
    fields = _exported_fields(model)
    rows = [row_dict(obj, fields) for obj in queryset[: SECTION_ROW_LIMIT + 1]]
    return {
        "key": key,
        "title": title,
        "labels": {f.attname: str(f.verbose_name) for f in fields},
        "keys": [f.attname for f in fields if f.is_relation or f.primary_key],
        "rows": rows[:SECTION_ROW_LIMIT],
        "truncated": len(rows) > SECTION_ROW_LIMIT,
    }


# --- who may see what -------------------------------------------------------------------------


def display_viewer(viewer, role: str) -> str:
    """How the access log names a member of staff, as the landlord chose.

    PRIVACY_ACCESS_LOG_NAMES: "full" (name and role, the default), "initial" (first name,
    initial of the last name, role) or "role" (the role only).
    """
    style = getattr(settings, "PRIVACY_ACCESS_LOG_NAMES", "full")
    label = Role(role).label if role in Role.values else role
    if style == "role" or viewer is None:
        return str(label)
    if style == "initial":
        initial = f" {viewer.last_name[:1]}." if viewer.last_name else ""
        name = f"{viewer.first_name}{initial}".strip()
    else:
        name = viewer.full_name
    return f"{name} ({label})" if name else str(label)


def access_log_for(subject) -> QuerySet[PersonalDataAccess]:
    """The reads of `subject`'s data by staff, newest first."""
    return PersonalDataAccess.objects.filter(subject=subject).select_related("viewer")


def exports_of(subject) -> QuerySet[DataExport]:
    """The exports of `subject`'s data; another person's are never reachable."""
    return DataExport.objects.filter(subject=subject)


def _privacy_records_visible_to(user, model) -> QuerySet:
    organisation_id = _organisation_id(user)
    if organisation_id is None or user.role not in PRIVACY_STAFF_ROLES:
        return model.objects.none()
    return model.objects.filter(
        organisation_id=organisation_id,
        subject_id__in=people_visible_to(user).values("id"),
    )


def erasure_requests_visible_to(user) -> QuerySet[ErasureRequest]:
    """Erasure requests of people in the staff member's scope."""
    return _privacy_records_visible_to(user, ErasureRequest)


def rectifications_visible_to(user) -> QuerySet[Rectification]:
    """Rectifications of people in the staff member's scope."""
    return _privacy_records_visible_to(user, Rectification)


def privacy_subject_for(user, person_id) -> object | None:
    """The person a member of staff may erase or correct: in their scope, not themselves.

    Agency staff handle tenants' requests (and their delegates'); a colleague's data is the
    manager's or the administrator's to handle.
    """
    if user.role not in PRIVACY_STAFF_ROLES:
        return None
    people = people_visible_to(user).exclude(pk=user.pk)
    if user.role == Role.AGENCY_STAFF:
        people = people.filter(role=Role.TENANT)
    return people.filter(pk=person_id).first()


# --- everything about a person ----------------------------------------------------------------


def _links(model) -> list[tuple[str, str]]:
    """(field name, what it points to) for the model's keys to a person, lease or membership."""
    targets = {
        User: "person",
        Lease: "lease",
        HouseholdMember: "membership",
        Dwelling: "home",
    }
    names = {f.name for f in model._meta.concrete_fields}
    links = []
    for field in model._meta.concrete_fields:
        if field.is_relation and (field.many_to_one or field.one_to_one):
            target = targets.get(field.related_model)
            if target == "home" and (
                model._meta.label_lower in HOME_WALK_EXCLUDED or "created_at" not in names
            ):
                continue
            if target:
                links.append((field.name, target))
    return links


def walked_models() -> Iterable:
    """The api.* models whose rows can belong to a person through a key."""
    for model in apps.get_models():
        if not model.__module__.startswith("api."):
            continue
        if model._meta.label_lower in WALK_EXCLUDED or not model._meta.managed:
            continue
        links = _links(model)
        if links:
            yield model, links


def _account(subject) -> dict:
    fields = [
        "id",
        "first_name",
        "last_name",
        "email",
        "phone",
        "role",
        "language",
        "is_active",
        "date_joined",
        "last_login",
    ]
    data = {name: plain(getattr(subject, name)) for name in fields}
    data["organisation"] = subject.organisation.name if subject.organisation_id else None
    return data


def _leases(memberships) -> list[dict]:
    leases = []
    for membership in memberships:
        lease = membership.lease
        dwelling = lease.dwelling
        building = dwelling.entrance.building
        residence = building.residence
        leases.append(
            {
                "lease": lease.reference,
                "relation": membership.relation,
                "start_date": plain(lease.start_date),
                "end_date": plain(lease.end_date),
                "dwelling": dwelling.reference,
                "door": dwelling.door,
                "address": building.address or residence.address,
                "postcode": residence.postcode,
                "city": residence.city,
                "residence": residence.name,
                "household": [
                    {"name": m.person.full_name, "relation": m.relation}
                    for m in lease.members.all()
                ],
            }
        )
    return leases


def _timeline(subject) -> dict:
    from api.tickets.models import TicketEvent

    events = (
        TicketEvent.objects.filter(
            Q(ticket__reporter=subject) | Q(on_behalf_of=subject) | Q(ticket__created_by=subject)
        )
        .select_related("ticket", "actor")
        .order_by("ticket__reference", "created_at")
    )
    rows = []
    for event in events[:SECTION_ROW_LIMIT]:
        rows.append(
            {
                "ticket": event.ticket.reference,
                "at": plain(event.created_at),
                "kind": event.kind,
                "from_status": event.from_status,
                "to_status": event.to_status,
                "by": display_viewer(event.actor, event.actor_role) if event.actor else "",
                "note": event.note,
                "shown_to_tenant": event.public,
            }
        )
    return {
        "key": "tickets.timeline",
        "title": "Timeline of your requests, with staff comments",
        "labels": {},
        "keys": [],
        "rows": rows,
        "truncated": events.count() > SECTION_ROW_LIMIT,
    }


def _deliveries(subject) -> dict:
    from api.notifications.models import Delivery

    return _section(
        Delivery.objects.filter(notification__recipient=subject).order_by("created_at"),
        "Deliveries of your notifications",
        "notifications.delivery",
    )


def readings_summary(memberships) -> list[dict]:
    """Per unit and measure of the person's homes, during each lease: count, min, mean, max."""
    from api.telemetry.models import ReadingHour
    from api.telemetry.vocabulary import CODE_NAMES

    summary = []
    for membership in memberships:
        lease = membership.lease
        start = datetime.combine(lease.start_date, time.min, tzinfo=UTC)
        window = Q(hour__gte=start)
        if lease.end_date is not None:
            end = datetime.combine(lease.end_date + timedelta(days=1), time.min, UTC)
            window &= Q(hour__lt=end)
        rows = (
            ReadingHour.objects.filter(window, device__equipment__dwelling_id=lease.dwelling_id)
            .values("device__device_id", "device__kind", "name")
            .annotate(
                hours=Count("hour"),
                readings=Sum("count"),
                total=Sum("vsum"),
                low=Min("vmin"),
                high=Max("vmax"),
                first=Min("hour"),
                last=Max("hour"),
            )
            .order_by("device__device_id", "name")
        )
        for row in rows:
            summary.append(
                {
                    "lease": lease.reference,
                    "unit": row["device__device_id"],
                    "kind": row["device__kind"],
                    "measure": CODE_NAMES.get(row["name"], str(row["name"])),
                    "hours": row["hours"],
                    "readings": row["readings"],
                    "min": row["low"],
                    "mean": round(row["total"] / row["readings"], 2) if row["readings"] else None,
                    "max": row["high"],
                    "from": plain(row["first"]),
                    "to": plain(row["last"]),
                }
            )
    return summary


def _access_log(subject) -> list[dict]:
    return [
        {
            "at": plain(read.at),
            "who": display_viewer(read.viewer, read.viewer_role),
            "role": read.viewer_role,
            "what": read.context,
        }
        for read in access_log_for(subject)[:SECTION_ROW_LIMIT]
    ]


def person_data(subject) -> dict:
    """Everything Palier holds about `subject`, as plain JSON-ready data."""
    memberships = list(
        HouseholdMember.objects.filter(person=subject)
        .select_related("lease__dwelling__entrance__building__residence")
        .prefetch_related("lease__members__person")
        .order_by("lease__start_date")
    )
    lease_ids = [m.lease_id for m in memberships]
    membership_ids = [m.pk for m in memberships]
    homes = []
    for membership in memberships:
        lease = membership.lease
        during = Q(created_at__gte=datetime.combine(lease.start_date, time.min, UTC))
        if lease.end_date is not None:
            end = datetime.combine(lease.end_date + timedelta(days=1), time.min, UTC)
            during &= Q(created_at__lt=end)
        homes.append((lease.dwelling_id, during))
    sections = []
    for model, links in walked_models():
        condition = Q()
        for name, target in links:
            if target == "person":
                condition |= Q(**{name: subject})
            elif target == "lease" and lease_ids:
                condition |= Q(**{f"{name}_id__in": lease_ids})
            elif target == "membership" and membership_ids:
                condition |= Q(**{f"{name}_id__in": membership_ids})
            elif target == "home":
                for dwelling_id, during in homes:
                    condition |= Q(**{f"{name}_id": dwelling_id}) & during
        if not condition:
            continue
        queryset = model._base_manager.filter(condition).order_by("pk")
        if not queryset.exists():
            continue
        meta = model._meta
        sections.append(_section(queryset, str(meta.verbose_name_plural).capitalize(), meta.label))
    sections.append(_timeline(subject))
    sections.append(_deliveries(subject))
    return {
        "generated_at": timezone.now().isoformat(),
        "account": _account(subject),
        "leases": _leases(memberships),
        "sections": [s for s in sections if s["rows"]],
        "readings_summary": readings_summary(memberships),
        "access_log": _access_log(subject),
    }


# --- a breach: who is affected ----------------------------------------------------------------

TIME_FIELDS = ("at", "ts", "hour", "received_at", "sent_at", "starts_at")
MAX_PATH_DEPTH = 3


def _targets() -> dict:
    return {User: "person", Lease: "lease", HouseholdMember: "membership", Dwelling: "dwelling"}


def paths_to_people(model, depth: int = MAX_PATH_DEPTH) -> list[tuple[str, str]]:
    """Forward key paths from `model` to a person, lease, membership or dwelling.

    Paths stop at the first such target. Only required keys are followed through (an optional
    link, such as a request's incident, leads to other people's records), and keys back to a
    model already on the path are not followed (a duplicate's reporter is another request's).
    """
    targets = _targets()
    if model in targets:
        return [("pk", targets[model])]
    found: list[tuple[str, str]] = []

    def walk(current, prefix: str, level: int, seen: frozenset) -> None:
        for field in current._meta.concrete_fields:
            if not field.is_relation or field.related_model is None:
                continue
            related = field.related_model
            if related in seen:
                continue
            path = f"{prefix}{field.name}"
            if related in targets:
                found.append((path, targets[related]))
            elif level < depth and not field.null:
                walk(related, f"{path}__", level + 1, seen | {related})

    walk(model, "", 1, frozenset({model}))
    return found


def window_q(model, start: datetime, end: datetime) -> Q:
    """Rows created or changed in [start, end): by created_at/updated_at or their own time."""
    names = {f.name for f in model._meta.concrete_fields}
    if "created_at" in names or "updated_at" in names:
        q = Q()
        for name in ("created_at", "updated_at"):
            if name in names:
                q |= Q(**{f"{name}__gte": start, f"{name}__lt": end})
        return q
    for name in TIME_FIELDS:
        if name in names:
            return Q(**{f"{name}__gte": start, f"{name}__lt": end})
    for field in model._meta.concrete_fields:
        if isinstance(field, models.DateTimeField):
            return Q(**{f"{field.name}__gte": start, f"{field.name}__lt": end})
    raise LookupError(f"{model._meta.label} has no time column.")


def breach_subjects(model, *, start: datetime, end: datetime, organisation=None) -> QuerySet:
    """People whose data is in rows of `model` created or updated in [start, end).

    A single query of subqueries (no loop over rows): direct keys to a person, and the
    household members of the leases and dwellings the rows point to, in force in the window.
    """
    rows = model._base_manager.filter(window_q(model, start, end))
    in_window = Q(lease__start_date__lte=end.date()) & (
        Q(lease__end_date__isnull=True) | Q(lease__end_date__gte=start.date())
    )
    people = Q()
    for path, target in paths_to_people(model):
        ids = rows.exclude(**{f"{path}__isnull": True}).values(path)
        if target == "person":
            people |= Q(id__in=ids)
        elif target == "lease":
            people |= Q(id__in=HouseholdMember.objects.filter(lease_id__in=ids).values("person"))
        elif target == "membership":
            people |= Q(id__in=HouseholdMember.objects.filter(id__in=ids).values("person"))
        else:
            people |= Q(
                id__in=HouseholdMember.objects.filter(in_window, lease__dwelling_id__in=ids).values(
                    "person"
                )
            )
    if not people:
        return User.objects.none()
    found = User.objects.filter(people)
    if organisation is not None:
        found = found.filter(organisation=organisation)
    return found.order_by("last_name", "first_name", "id")


def postal_addresses(person_ids) -> dict:
    """The address of each person's current home, when they have one."""
    today = timezone.localdate()
    members = (
        HouseholdMember.objects.filter(person_id__in=person_ids, lease__start_date__lte=today)
        .filter(Q(lease__end_date__isnull=True) | Q(lease__end_date__gte=today))
        .select_related("lease__dwelling__entrance__building__residence")
    )
    addresses = {}
    for member in members:
        dwelling = member.lease.dwelling
        building = dwelling.entrance.building
        residence = building.residence
        street = building.address or residence.address
        door = f", porte {dwelling.door}" if dwelling.door else ""
        addresses[member.person_id] = (
            f"{street}{door}, {residence.postcode} {residence.city}".strip(", ")
        )
    return addresses
