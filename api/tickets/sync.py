"""Delta sync for phones that are often offline (the caretaker's app).

`GET /api/v1/sync/?since=CURSOR` returns, per kind (tickets, incidents, dwellings, common
areas), what changed in the caller's scope since the cursor and the ids deleted since, with the
next cursor. The cursor is opaque and signed; it holds, per kind, a keyset position
(updated_at, id). A page holds at most `limit` rows per kind (`has_more` says to call again at
once). When nothing more is pending, the position moves to "now minus a short overlap", so a
row whose transaction committed late is sent again rather than missed: clients upsert by id.

When the caller's scope changed (a residence assigned or taken away, a lease ended...), or the
cursor is unknown, the answer starts over with `reset: true`: the phone drops what it holds
and takes everything in scope again.
"""

import datetime as dt
import hashlib

from django.core import signing
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from api.core.exceptions import ServiceError
from api.core.roles import Role
from api.estate import selectors as estate
from api.estate.models import EstateEvent, EstateEventKind, TeamMembership

from . import selectors
from .models import SyncTombstone

CURSOR_SALT = "palier.tickets.sync"
CURSOR_MAX_AGE = dt.timedelta(days=90)
OVERLAP = dt.timedelta(seconds=60)
DEFAULT_LIMIT = 500
MAX_LIMIT = 2000
KINDS = ("tickets", "incidents", "dwellings", "common_areas")
_ESTATE_SUBJECTS = {"dwellings": "dwelling", "common_areas": "commonarea"}


def scope_fingerprint(user) -> str:
    """A digest of what decides the user's scope; when it changes, phones start over."""
    parts = [str(user.pk), user.role, str(user.organisation_id)]
    if user.role == Role.TENANT:
        parts += [f"{d}:{s}" for d, s in selectors.tenant_leases(user)]
    else:
        parts += sorted(
            str(pk) for pk in estate.residences_visible_to(user).values_list("id", flat=True)
        )
        parts += sorted(
            str(pk)
            for pk in TeamMembership.objects.filter(user=user).values_list("team_id", flat=True)
        )
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]


def _querysets(user) -> dict[str, QuerySet]:
    return {
        "tickets": selectors.ticket_list(user=user, lean=True),
        "incidents": selectors.incidents_visible_to(user).select_related(
            "category", "residence", "building"
        ),
        "dwellings": estate.dwellings_visible_to(user).select_related(
            "entrance__building__residence"
        ),
        "common_areas": estate.common_areas_visible_to(user),
    }


def decode_cursor(raw: str) -> dict:
    """The state held in a cursor; a forged, stale or garbled one is refused."""
    try:
        state = signing.loads(raw, salt=CURSOR_SALT, max_age=CURSOR_MAX_AGE)
    except (signing.BadSignature, ValueError, TypeError):
        raise ServiceError(
            "Unknown cursor; sync again without `since`.", code="invalid_cursor", field="since"
        ) from None
    if not isinstance(state, dict) or not isinstance(state.get("p"), dict):
        raise ServiceError("Unknown cursor.", code="invalid_cursor", field="since")
    return state


def encode_cursor(state: dict) -> str:
    return signing.dumps(state, salt=CURSOR_SALT, compress=True)


def _after(queryset: QuerySet, position) -> QuerySet:
    if not position:
        return queryset
    moment = parse_datetime(position[0]) if isinstance(position[0], str) else None
    if moment is None:
        raise ServiceError("Unknown cursor.", code="invalid_cursor", field="since")
    if position[1]:
        return queryset.filter(Q(updated_at__gt=moment) | Q(updated_at=moment, id__gt=position[1]))
    return queryset.filter(updated_at__gte=moment)


def _deleted(user, kind: str, since: dt.datetime | None) -> list[str]:
    if since is None:
        return []
    if kind == "tickets":
        tombstones = SyncTombstone.objects.filter(
            organisation_id=user.organisation_id, kind="ticket", deleted_at__gte=since
        )
        if user.role == Role.TENANT:
            residences = selectors.tenant_places(user)["residences"]
        else:
            residences = estate.residences_visible_to(user).values("id")
        tombstones = tombstones.filter(residence_id__in=residences)
        return [str(pk) for pk in tombstones.values_list("object_id", flat=True)]
    if kind in _ESTATE_SUBJECTS:
        events = EstateEvent.objects.filter(
            organisation_id=user.organisation_id,
            kind=EstateEventKind.DELETED,
            subject_type=_ESTATE_SUBJECTS[kind],
            created_at__gte=since,
        )
        return [str(pk) for pk in events.values_list("subject_id", flat=True) if pk]
    return []


def sync_changes(*, user, since: str | None, limit: int = DEFAULT_LIMIT) -> dict:
    """What changed in the user's scope since the cursor (rows not yet serialized)."""
    now = timezone.now()
    scope = scope_fingerprint(user)
    state = decode_cursor(since) if since else None
    reset = state is None or state.get("s") != scope
    positions = {} if reset else state["p"]
    limit = max(1, min(limit, MAX_LIMIT))
    result: dict = {"reset": reset, "has_more": False, "server_time": now}
    next_positions = {}
    for kind, queryset in _querysets(user).items():
        position = positions.get(kind)
        rows = list(_after(queryset, position).order_by("updated_at", "id")[: limit + 1])
        more = len(rows) > limit
        rows = rows[:limit]
        if more:
            last = rows[-1]
            next_positions[kind] = [last.updated_at.isoformat(), str(last.id)]
            result["has_more"] = True
        else:
            next_positions[kind] = [(now - OVERLAP).isoformat(), ""]
        since_moment = parse_datetime(position[0]) if position else None
        result[kind] = {"changed": rows, "deleted": _deleted(user, kind, since_moment)}
    result["cursor"] = encode_cursor({"s": scope, "p": next_positions})
    return result
