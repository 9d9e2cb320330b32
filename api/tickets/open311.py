"""Open311 GeoReport v2 server for partner systems (city, contractors, tenants' associations).

Endpoints under /open311/v2/, each in JSON or XML by suffix (`services.json`, `services.xml`):
discovery, services, services/{code}, requests (GET with the standard filters, POST with a
partner's `api_key`), requests/{id}. The jurisdiction is the organisation (its slug as
`jurisdiction_id`, or the partner's own). `address_id` names a dwelling, a residence, a building
(`RES/BAT`) or an entrance (`RES/BAT/ALLEE`) by reference; `lat`/`long` alone find the nearest
residence. No tenant's personal data ever goes out: no names, no contact details, no door or
floor; a request about a dwelling is shown at its building's address, and its description only
to the partner who filed it (anonymous readers see only common parts).

Errors follow the standard shape: `[{"code": 400, "description": "..."}]` (or `<errors>`).
"""

import datetime as dt
import math
import uuid
from decimal import Decimal, InvalidOperation
from xml.etree import ElementTree as ET

from django.conf import settings
from django.db.models import Q
from django.http import HttpResponse, JsonResponse
from django.urls import re_path
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from api.core.exceptions import ServiceError
from api.estate.models import Building, Dwelling, Entrance, Organisation, Residence

from . import services, wording
from .models import (
    OPEN_STATUSES,
    Category,
    PlaceKind,
    QuestionKind,
    Source,
    Status,
    Ticket,
)

CHANGESET = "2026-01-15T00:00:00Z"
SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
DEFAULT_WINDOW = dt.timedelta(days=90)
MAX_RESULTS = 1000
NEAREST_RESIDENCE_METRES = 300
OPEN311_STATUSES = {"open", "closed"}


class Open311Error(Exception):
    def __init__(self, code: int, description: str) -> None:
        super().__init__(description)
        self.code = code
        self.description = description


# --- rendering ----------------------------------------------------------------------------------


_XML_ITEM = {
    "attributes": "attribute",
    "values": "value",
    "endpoints": "endpoint",
    "formats": "format",
}


def _xml_append(parent: ET.Element, key: str, value) -> None:
    element = ET.SubElement(parent, key)
    if isinstance(value, dict):
        for child_key, child in value.items():
            _xml_append(element, child_key, child)
    elif isinstance(value, list):
        for item in value:
            _xml_append(element, _XML_ITEM.get(key, "item"), item)
    elif isinstance(value, bool):
        element.text = "true" if value else "false"
    elif value is not None:
        element.text = str(value)


def _render(fmt: str, data, root: str, item: str | None = None, status: int = 200):
    if fmt == "json":
        return JsonResponse(
            data, status=status, safe=False, json_dumps_params={"ensure_ascii": False}
        )
    top = ET.Element(root)
    if item is None:
        for key, value in data.items():
            _xml_append(top, key, value)
    else:
        for entry in data:
            _xml_append(top, item, entry)
    body = ET.tostring(top, encoding="utf-8", xml_declaration=True)
    return HttpResponse(body, status=status, content_type="text/xml; charset=utf-8")


def _error(fmt: str, code: int, description: str):
    return _render(fmt, [{"code": code, "description": description}], "errors", "error", code)


def open311_view(methods):
    """Wrap a view: format check, standard errors, never a 5xx for bad input."""

    def decorator(view):
        @csrf_exempt
        @require_http_methods(methods)
        def wrapped(request, fmt, **kwargs):
            try:
                return view(request, fmt, **kwargs)
            except Open311Error as exc:
                return _error(fmt, exc.code, exc.description)
            except ServiceError as exc:
                code = exc.status_code if exc.status_code in (400, 403, 404, 409) else 400
                field = f"{exc.field}: " if exc.field else ""
                return _error(fmt, code, f"{field}{exc.message}")

        return wrapped

    return decorator


# --- jurisdiction and partner -------------------------------------------------------------------


def _partner(request, *, required: bool):
    key = request.POST.get("api_key") if request.method == "POST" else None
    key = key or request.GET.get("api_key") or request.headers.get("X-Api-Key")
    if not key:
        if required:
            raise Open311Error(403, "An api_key is required.")
        return None
    partner = services.partner_authenticate(key)
    if partner is None:
        raise Open311Error(403, "Invalid api_key.")
    return partner


def _organisation(request, partner) -> Organisation:
    source = request.POST if request.method == "POST" else request.GET
    jurisdiction = (source.get("jurisdiction_id") or "").strip()
    if partner is not None:
        if jurisdiction and jurisdiction != partner.organisation.slug:
            raise Open311Error(404, "Unknown jurisdiction_id.")
        return partner.organisation
    if jurisdiction:
        organisation = Organisation.objects.filter(slug=jurisdiction).first()
        if organisation is None:
            raise Open311Error(404, "Unknown jurisdiction_id.")
        return organisation
    organisations = list(Organisation.objects.all()[:2])
    if len(organisations) != 1:
        raise Open311Error(400, "jurisdiction_id is required.")
    return organisations[0]


def _categories(organisation):
    return Category.objects.filter(
        Q(organisation__isnull=True) | Q(organisation=organisation), is_active=True
    ).select_related("parent")


# --- discovery and services ---------------------------------------------------------------------


@open311_view(["GET"])
def discovery(request, fmt):
    """Where the endpoints are, and what they speak."""
    base = request.build_absolute_uri("/open311/v2/")
    data = {
        "changeset": CHANGESET,
        "contact": settings.DEFAULT_FROM_EMAIL,
        "key_service": "Ask the landlord's agency for a partner API key.",
        "endpoints": [
            {
                "specification": SPECIFICATION,
                "url": base,
                "changeset": CHANGESET,
                "type": "production" if settings.PRODUCTION else "test",
                "formats": ["application/json", "text/xml"],
            }
        ],
    }
    return _render(fmt, data, "discovery")


def _service(category: Category) -> dict:
    return {
        "service_code": category.code,
        "service_name": category.name,
        "description": category.help.get("fr", "") or category.name,
        "metadata": category.questions.exists()
        or (category.parent is not None and category.parent.questions.exists()),
        "type": "realtime",
        "keywords": ", ".join(
            filter(None, [category.labels.get("en", ""), category.code.replace("-", " ")])
        ),
        "group": category.parent.name if category.parent else category.name,
    }


@open311_view(["GET"])
def service_list(request, fmt):
    """Every category requests can be filed under."""
    partner = _partner(request, required=False)
    organisation = _organisation(request, partner)
    categories = _categories(organisation).prefetch_related("questions", "parent__questions")
    data = [_service(category) for category in categories.order_by("parent__position", "position")]
    return _render(fmt, data, "services", "service")


_DATATYPES = {
    QuestionKind.CHOICE: "singlevaluelist",
    QuestionKind.BOOL: "singlevaluelist",
    QuestionKind.TEXT: "string",
    QuestionKind.NUMBER: "number",
}


@open311_view(["GET"])
def service_definition(request, fmt, code):
    """A category's extra questions, as Open311 attributes."""
    partner = _partner(request, required=False)
    organisation = _organisation(request, partner)
    category = _categories(organisation).filter(code=code).first()
    if category is None:
        raise Open311Error(404, "Unknown service_code.")
    attributes = []
    for order, question in enumerate(services.category_questions(category), start=1):
        if question.kind == QuestionKind.BOOL:
            values = [{"key": "true", "name": "Oui"}, {"key": "false", "name": "Non"}]
        else:
            values = [
                {"key": c.get("value"), "name": (c.get("labels") or {}).get("fr") or c.get("value")}
                for c in question.choices
            ]
        described = question.text
        if question.kind == QuestionKind.NUMBER and (
            question.min_value is not None or question.max_value is not None
        ):
            described += f" ({question.min_value} – {question.max_value})"
        attribute = {
            "variable": True,
            "code": question.key,
            "datatype": _DATATYPES[question.kind],
            "required": question.required,
            "datatype_description": described,
            "order": order,
            "description": question.text,
        }
        if values:
            attribute["values"] = values
        attributes.append(attribute)
    return _render(
        fmt, {"service_code": category.code, "attributes": attributes}, "service_definition"
    )


# --- requests -----------------------------------------------------------------------------------


def _open311_status(ticket: Ticket) -> str:
    return "open" if ticket.status in OPEN_STATUSES else "closed"


def _address(ticket: Ticket) -> str:
    residence = ticket.residence
    street = (ticket.building.address if ticket.building and ticket.building.address else "") or (
        residence.address
    )
    return ", ".join(filter(None, [street, residence.postcode, residence.city]))


def _address_id(ticket: Ticket) -> str:
    residence = ticket.residence.reference
    if ticket.entrance is not None and ticket.place_kind != PlaceKind.DWELLING:
        return f"{residence}/{ticket.building.reference}/{ticket.entrance.reference}"
    if ticket.building is not None:
        return f"{residence}/{ticket.building.reference}"
    return residence


def _request(ticket: Ticket, partner) -> dict:
    private = ticket.place_kind == PlaceKind.DWELLING and (
        partner is None or ticket.partner_id != partner.pk
    )
    latitude = ticket.latitude if ticket.latitude is not None else ticket.residence.latitude
    longitude = ticket.longitude if ticket.longitude is not None else ticket.residence.longitude
    return {
        "service_request_id": str(ticket.id),
        "status": _open311_status(ticket),
        "status_notes": wording.status_label(ticket.status, "fr"),
        "service_name": ticket.category.name,
        "service_code": ticket.category.code,
        "description": "" if private else ticket.description,
        "agency_responsible": ticket.residence.agency.name,
        "service_notice": "",
        "requested_datetime": ticket.created_at.isoformat(),
        "updated_datetime": ticket.updated_at.isoformat(),
        "expected_datetime": ticket.resolve_due_at.isoformat() if ticket.resolve_due_at else None,
        "address": _address(ticket),
        "address_id": _address_id(ticket),
        "zipcode": ticket.residence.postcode,
        "lat": float(latitude) if latitude is not None else None,
        "long": float(longitude) if longitude is not None else None,
        "media_url": None,
    }


def _visible_requests(organisation, partner):
    tickets = Ticket.objects.filter(organisation=organisation).exclude(status=Status.DUPLICATE)
    if partner is None:
        return tickets.exclude(place_kind=PlaceKind.DWELLING)
    residences = list(partner.residences.values_list("id", flat=True))
    if residences:
        tickets = tickets.filter(residence_id__in=residences)
    return tickets


def _parse_time(raw: str, name: str) -> dt.datetime:
    moment = parse_datetime(raw.strip().replace(" ", "+")) if raw else None
    if moment is None:
        raise Open311Error(400, f"{name} must be a W3C date-time.")
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    return moment


def _requests_get(request, fmt):
    partner = _partner(request, required=False)
    organisation = _organisation(request, partner)
    tickets = _visible_requests(organisation, partner).select_related(
        "category", "residence__agency", "building", "entrance"
    )
    ids = [i.strip() for i in request.GET.get("service_request_id", "").split(",") if i.strip()]
    if ids:
        valid = [i for i in ids if _is_uuid(i)]
        tickets = tickets.filter(pk__in=valid)
    else:
        codes = [c.strip() for c in request.GET.get("service_code", "").split(",") if c.strip()]
        if codes:
            tickets = tickets.filter(category__code__in=codes)
        end = (
            _parse_time(request.GET["end_date"], "end_date")
            if request.GET.get("end_date")
            else None
        )
        start = (
            _parse_time(request.GET["start_date"], "start_date")
            if request.GET.get("start_date")
            else None
        )
        if start is None and end is None:
            start = timezone.now() - DEFAULT_WINDOW
        if start is not None:
            tickets = tickets.filter(created_at__gte=start)
        if end is not None:
            tickets = tickets.filter(created_at__lte=end)
        wanted = {s.strip() for s in request.GET.get("status", "").split(",") if s.strip()}
        if wanted - OPEN311_STATUSES:
            raise Open311Error(400, "status is open or closed.")
        if wanted == {"open"}:
            tickets = tickets.filter(status__in=OPEN_STATUSES)
        elif wanted == {"closed"}:
            tickets = tickets.exclude(status__in=OPEN_STATUSES)
    data = [_request(t, partner) for t in tickets.order_by("-created_at")[:MAX_RESULTS]]
    return _render(fmt, data, "service_requests", "request")


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _coordinate(raw: str | None, name: str, bound: int) -> Decimal | None:
    if raw in (None, ""):
        return None
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise Open311Error(400, f"{name} must be a number.") from None
    if not value.is_finite() or abs(value) > bound:
        raise Open311Error(400, f"{name} is out of range.")
    return value.quantize(Decimal("0.000001"))


def _metres(lat1, lon1, lat2, lon2) -> float:
    """Great-circle distance (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 6_371_000 * 2 * math.asin(math.sqrt(a))


def _place_from_address_id(organisation, address_id: str) -> dict:
    dwelling = Dwelling.objects.filter(organisation=organisation, reference=address_id).first()
    if dwelling is not None:
        return {"dwelling": dwelling}
    parts = address_id.split("/")
    residence = Residence.objects.filter(organisation=organisation, reference=parts[0]).first()
    if residence is not None and len(parts) == 1:
        return {"residence": residence}
    if residence is not None and len(parts) in (2, 3):
        building = Building.objects.filter(residence=residence, reference=parts[1]).first()
        if building is not None and len(parts) == 2:
            return {"building": building}
        if building is not None:
            entrance = Entrance.objects.filter(building=building, reference=parts[2]).first()
            if entrance is not None:
                return {"entrance": entrance}
    raise Open311Error(400, "Unknown address_id.")


def _place_from_coordinates(organisation, partner, latitude, longitude) -> dict:
    residences = Residence.objects.filter(
        organisation=organisation, latitude__isnull=False, longitude__isnull=False
    )
    allowed = list(partner.residences.values_list("id", flat=True))
    if allowed:
        residences = residences.filter(id__in=allowed)
    best, best_distance = None, None
    for residence in residences:
        distance = _metres(
            float(latitude), float(longitude), float(residence.latitude), float(residence.longitude)
        )
        if best_distance is None or distance < best_distance:
            best, best_distance = residence, distance
    if best is None or best_distance > NEAREST_RESIDENCE_METRES:
        raise Open311Error(400, "No residence of the landlord at this location.")
    return {"residence": best}


def _requests_post(request, fmt):
    partner = _partner(request, required=True)
    organisation = _organisation(request, partner)
    data = request.POST
    code = (data.get("service_code") or "").strip()
    category = _categories(organisation).filter(code=code).first()
    if category is None:
        raise Open311Error(404, "Unknown service_code.")
    latitude = _coordinate(data.get("lat"), "lat", 90)
    longitude = _coordinate(data.get("long"), "long", 180)
    address_id = (data.get("address_id") or "").strip()[:200]
    if address_id:
        place = _place_from_address_id(organisation, address_id)
    elif latitude is not None and longitude is not None:
        place = _place_from_coordinates(organisation, partner, latitude, longitude)
    else:
        raise Open311Error(400, "address_id, or lat and long, is required.")
    answers = {}
    for key, value in data.items():
        if key.startswith("attribute[") and key.endswith("]"):
            answers[key[len("attribute[") : -1]] = value
    description = (data.get("description") or "").strip()[:4000] or category.name
    ticket = services.ticket_create(
        actor=None,
        partner=partner,
        source=Source.OPEN311,
        category=category,
        description=description,
        answers=_typed_answers(category, answers),
        latitude=latitude,
        longitude=longitude,
        external_contact={
            key: (data.get(key) or "")[:200]
            for key in ("email", "first_name", "last_name", "phone", "account_id", "device_id")
            if data.get(key)
        },
        **place,
    )
    response = [
        {
            "service_request_id": str(ticket.id),
            "service_notice": f"Référence {ticket.reference}",
            "account_id": None,
        }
    ]
    return _render(fmt, response, "service_requests", "request", status=201)


def _typed_answers(category: Category, raw: dict) -> dict:
    """Open311 sends every attribute as text: give each the type of its question."""
    kinds = {q.key: q.kind for q in services.category_questions(category)}
    typed: dict = {}
    for key, value in raw.items():
        kind = kinds.get(key)
        if kind == QuestionKind.BOOL:
            typed[key] = {"true": True, "false": False}.get(value.lower(), value)
        elif kind == QuestionKind.NUMBER:
            try:
                typed[key] = float(value)
            except ValueError:
                typed[key] = value
        else:
            typed[key] = value
    return typed


@open311_view(["GET", "POST"])
def requests_view(request, fmt):
    """GET: requests with the standard filters; POST: file one (api_key required)."""
    if request.method == "POST":
        return _requests_post(request, fmt)
    return _requests_get(request, fmt)


@open311_view(["GET"])
def request_detail(request, fmt, request_id):
    """One request."""
    partner = _partner(request, required=False)
    organisation = _organisation(request, partner)
    ticket = None
    if _is_uuid(request_id):
        ticket = (
            _visible_requests(organisation, partner)
            .select_related("category", "residence__agency", "building", "entrance")
            .filter(pk=request_id)
            .first()
        )
    if ticket is None:
        raise Open311Error(404, "Unknown service_request_id.")
    return _render(fmt, [_request(ticket, partner)], "service_requests", "request")


_FMT = r"\.(?P<fmt>json|xml)$"

urlpatterns = [
    re_path(r"^discovery" + _FMT, discovery, name="open311-discovery"),
    re_path(r"^services" + _FMT, service_list, name="open311-services"),
    re_path(r"^services/(?P<code>[\w-]{1,60})" + _FMT, service_definition, name="open311-service"),
    re_path(r"^requests" + _FMT, requests_view, name="open311-requests"),
    re_path(
        r"^requests/(?P<request_id>[\w-]{1,64})" + _FMT, request_detail, name="open311-request"
    ),
]
