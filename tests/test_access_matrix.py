"""The access matrix: every endpoint under /api/v1/ is classified here, and checked for every role.

Each route of the URLconf (relative to /api/v1/, path parameters written `{name}`) must have a
row in MATRIX, or `test_every_endpoint_is_classified` fails. A row says what the route is:

- Public: no login needed (login itself); tested by its own app.
- Own: about the caller only, nothing of anyone else can be named in it: anonymous -> 401.
- Collection / Detail / Action of a Kind: a kind of object, with a factory placing one at a
  given Place, and the roles that may read it and write it. For every role, objects placed out
  of its scope (another organisation, another residence, another tenant's dwelling) must be
  absent from the list and a 404 on detail and on every write; a role outside the read or write
  roles gets a 403 whatever the object; the object placed at home is visible to every reader.

A later app adds its own Kind (a factory `make(world, place)`, its roles, optionally a `create`
body factory) and one row per route.
"""

import datetime as dt
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from django.db import transaction
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from rest_framework.test import APIClient

from api.telemetry.models import Quarantine
from tests.conftest import client_for
from tests.factories import CommonAreaFactory, DelegationFactory, EquipmentFactory
from tests.factories.estate import ROLES, ScopeWorld, scope_world
from tests.factories.telemetry import DeviceFactory

ALL = frozenset(ROLES)
ESTATE_WRITERS = frozenset({"agency_staff", "manager", "admin"})
STAFF_READERS = frozenset({"caretaker", "technician", "agency_staff", "manager", "admin"})
TENANT_SIDE = frozenset({"tenant", "delegate"})
# The other tenant lives in the home residence: only for objects below the residence.
ABOVE_DWELLING = ("other_residence", "other_organisation")


# --- classification -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Public:
    reason: str


@dataclass(frozen=True)
class Own:
    reason: str


@dataclass(frozen=True)
class Kind:
    """A kind of object reachable through the API, and who may read and write it."""

    make: Callable  # (world, place) -> model instance placed there
    read_roles: frozenset = ALL
    write_roles: frozenset = frozenset()
    cases: tuple = ScopeWorld.CASES
    create: Callable | None = None  # (world, place) -> (body, headers) creating one there
    kwargs: Callable = field(default=lambda obj: {"pk": obj.pk})  # the route's parameters
    list_key: str = "id"  # the field naming an object in list results
    identify: Callable = field(default=lambda obj: str(obj.pk))  # its value there


@dataclass(frozen=True)
class Collection:
    kind: Kind


@dataclass(frozen=True)
class Detail:
    kind: Kind
    query: dict = field(default_factory=dict)  # for reads that need parameters


@dataclass(frozen=True)
class Action:
    kind: Kind
    body: Callable = field(default=lambda world, obj: {})


def _today(days: int = 0) -> str:
    return str(timezone.localdate() + dt.timedelta(days=days))


def _new_phone() -> str:
    return f"+3362{uuid.uuid4().int % 10**7:07d}"


RESIDENCES = Kind(
    make=lambda w, p: p.residence,
    write_roles=ESTATE_WRITERS,
    cases=ABOVE_DWELLING,
    create=lambda w, p: ({"agency": p.agency.pk, "reference": "NEW", "name": "Neuve"}, {}),
)
BUILDINGS = Kind(
    make=lambda w, p: p.building,
    write_roles=ESTATE_WRITERS,
    create=lambda w, p: ({"residence": p.residence.pk, "reference": "NEW"}, {}),
)
ENTRANCES = Kind(
    make=lambda w, p: p.entrance,
    write_roles=ESTATE_WRITERS,
    create=lambda w, p: ({"building": p.building.pk, "reference": "NEW"}, {}),
)
DWELLINGS = Kind(
    make=lambda w, p: p.dwelling,
    write_roles=ESTATE_WRITERS,
    create=lambda w, p: ({"entrance": p.entrance.pk, "reference": "NEW-LGT"}, {}),
)
COMMON_AREAS = Kind(
    make=lambda w, p: CommonAreaFactory(entrance=p.entrance),
    write_roles=ESTATE_WRITERS,
    create=lambda w, p: ({"entrance": p.entrance.pk, "kind": "hall"}, {}),
)
EQUIPMENT = Kind(
    make=lambda w, p: EquipmentFactory(dwelling=p.dwelling),
    write_roles=ESTATE_WRITERS,
    create=lambda w, p: ({"dwelling": p.dwelling.pk, "kind": "individual_boiler"}, {}),
)
LEASES = Kind(
    make=lambda w, p: p.lease,
    read_roles=ALL - {"contractor"},
    write_roles=ESTATE_WRITERS,
    create=lambda w, p: (
        {
            "dwelling": p.dwelling.pk,
            "reference": "NEW-BAIL",
            "start_date": _today(3650),
            "members": [{"relation": "holder", "phone": _new_phone()}],
        },
        {},
    ),
)
HOUSEHOLD_MEMBERS = Kind(
    make=lambda w, p: p.lease.members.get(),
    read_roles=LEASES.read_roles,
    write_roles=ESTATE_WRITERS,
    kwargs=lambda member: {"pk": member.lease_id, "member_id": member.pk},
)
DELEGATIONS = Kind(
    make=lambda w, p: p.tenant.delegations_given.first() or DelegationFactory(grantor=p.tenant),
    read_roles=TENANT_SIDE | ESTATE_WRITERS,
    write_roles=TENANT_SIDE | ESTATE_WRITERS,
    create=lambda w, p: (
        {
            "phone": _new_phone(),
            "relation": "relative",
            "expires_at": (timezone.now() + dt.timedelta(days=7)).isoformat(),
        },
        {"HTTP_X_ON_BEHALF_OF": str(p.tenant.pk), "HTTP_X_ON_BEHALF_REASON": "Phone call"},
    ),
)
PEOPLE = Kind(make=lambda w, p: p.tenant, read_roles=STAFF_READERS)


def _quarantined(world, place):
    return Quarantine.objects.create(
        organisation=place.organisation,
        topic=f"dt/{place.organisation.slug}/hx-x/telemetry",
        reason="bad_json",
        raw=b"{",
        size=1,
        received_at=timezone.now(),
        dedupe_hash=uuid.uuid4().hex,
    )


DEVICES = Kind(
    make=lambda w, p: DeviceFactory(dwelling=p.dwelling),
    read_roles=STAFF_READERS,
    write_roles=frozenset({"technician", "manager", "admin"}),
    create=lambda w, p: (
        {"kind": "heating", "equipment": str(EquipmentFactory(dwelling=p.dwelling).pk)},
        {},
    ),
    kwargs=lambda device: {"device_id": device.device_id},
    list_key="device_id",
    identify=lambda device: device.device_id,
)
QUARANTINE = Kind(
    make=_quarantined,
    read_roles=frozenset({"manager", "admin"}),
    cases=("other_organisation",),
)


def _vulnerability(world, place):
    from api.accounts.models import Vulnerability

    row, _created = Vulnerability.objects.get_or_create(
        person=place.tenant,
        kind="elderly",
        defaults={"consent_at": timezone.now(), "consent_channel": "paper"},
    )
    return row


VULNERABILITY_STAFF = frozenset({"caretaker", "agency_staff", "manager", "admin"})
VULNERABILITIES = Kind(
    make=_vulnerability,
    read_roles=VULNERABILITY_STAFF,
    write_roles=VULNERABILITY_STAFF,
    create=lambda w, p: (
        {"person": str(p.tenant.pk), "kind": "infant", "consent_channel": "paper"},
        {},
    ),
)

MATRIX: dict[str, object] = {
    "auth/token": Public("staff password login"),
    "auth/token/refresh": Public("exchanges a refresh token"),
    "auth/logout": Public("revokes a refresh token"),
    "auth/otp/request": Public("phone login, step 1"),
    "auth/otp/verify": Public("phone login, step 2"),
    "me/": Own("the caller's own profile and scope"),
    "me/vulnerabilities/": Own("the caller's own vulnerabilities, recorded with consent"),
    "me/vulnerabilities/{pk}/": Own("withdraws one of the caller's own vulnerabilities"),
    "vulnerabilities/": Collection(VULNERABILITIES),
    "vulnerabilities/{pk}/": Detail(VULNERABILITIES),
    "residences/": Collection(RESIDENCES),
    "residences/{pk}/": Detail(RESIDENCES),
    "buildings/": Collection(BUILDINGS),
    "buildings/{pk}/": Detail(BUILDINGS),
    "entrances/": Collection(ENTRANCES),
    "entrances/{pk}/": Detail(ENTRANCES),
    "dwellings/": Collection(DWELLINGS),
    "dwellings/{pk}/": Detail(DWELLINGS),
    "common-areas/": Collection(COMMON_AREAS),
    "common-areas/{pk}/": Detail(COMMON_AREAS),
    "equipment/": Collection(EQUIPMENT),
    "equipment/{pk}/": Detail(EQUIPMENT),
    "leases/": Collection(LEASES),
    "leases/{pk}/": Detail(LEASES),
    "leases/{pk}/end/": Action(LEASES, body=lambda w, obj: {"end_date": _today(1)}),
    "leases/{pk}/members/": Action(
        LEASES, body=lambda w, obj: {"relation": "occupant", "phone": _new_phone()}
    ),
    "leases/{pk}/members/{member_id}/": Action(HOUSEHOLD_MEMBERS),
    "delegations/": Collection(DELEGATIONS),
    "delegations/{pk}/": Detail(DELEGATIONS),
    "delegations/{pk}/revoke/": Action(DELEGATIONS),
    "people/": Collection(PEOPLE),
    "people/{pk}/": Detail(PEOPLE),
    "devices/": Collection(DEVICES),
    "devices/{device_id}/": Detail(DEVICES),
    "devices/{device_id}/revoke": Action(DEVICES),
    "devices/{device_id}/series": Detail(DEVICES, query={"name": "room_temp"}),
    "devices/{device_id}/events/": Detail(DEVICES),
    "my-home/readings": Own("the readings of the caller's own home"),
    "quarantine/": Collection(QUARANTINE),
}

# --- Notifications: the person's own inbox, staff broadcasts, door-knocking, alerts -----------

NOTIFY_STAFF = frozenset({"caretaker", "agency_staff", "manager", "admin"})
AGENCY_WRITERS = frozenset({"agency_staff", "manager", "admin"})
ALERT_READERS = frozenset({"technician", "agency_staff", "manager", "admin"})


def _broadcast(w, p):
    from tests.factories.notifications import BroadcastFactory

    return BroadcastFactory(building=p.building)


def _reach(w, p):
    from tests.factories.notifications import HouseholdReachFactory

    return HouseholdReachFactory(dwelling=p.dwelling)


def _alert(w, p):
    from tests.factories.notifications import TeamAlertFactory, team_at

    return TeamAlertFactory(team=team_at(p))


def _shift(w, p):
    from tests.factories.notifications import OnCallShiftFactory, team_at

    return OnCallShiftFactory(team=team_at(p))


def _shift_body(w, p):
    from tests.factories.notifications import team_at

    starts = timezone.now() + dt.timedelta(days=1)
    return (
        {
            "team": str(team_at(p).pk),
            "user": str(w.users["technician"].pk),
            "starts_at": starts.isoformat(),
            "ends_at": (starts + dt.timedelta(hours=12)).isoformat(),
        },
        {},
    )


BROADCASTS = Kind(
    make=_broadcast,
    read_roles=NOTIFY_STAFF,
    write_roles=AGENCY_WRITERS,
    create=lambda w, p: ({"kind": "water_cut", "building": str(p.building.pk)}, {}),
)
HOUSEHOLD_REACHES = Kind(make=_reach, read_roles=NOTIFY_STAFF, write_roles=NOTIFY_STAFF)
TEAM_ALERTS = Kind(make=_alert, read_roles=ALERT_READERS, write_roles=ALERT_READERS)
ON_CALL_SHIFTS = Kind(
    make=_shift, read_roles=ALERT_READERS, write_roles=AGENCY_WRITERS, create=_shift_body
)

MATRIX.update(
    {
        "notifications/": Own("the caller's inbox"),
        "notifications/{pk}/": Own("one of the caller's notifications (another's is a 404)"),
        "notifications/{pk}/read/": Own("marks one of the caller's notifications read"),
        "notifications/read-all/": Own("marks the caller's notifications read"),
        "notification-preferences/": Own("the caller's channels, quiet hours and language"),
        "push-devices/": Own("the caller's apps and browsers"),
        "push-devices/{pk}/": Own("one of the caller's devices (another's is a 404)"),
        "notifications/delivery-reports/{channel}/": Public("provider webhook, HMAC-signed"),
        "alerts/ack/{token}/": Public("signed acknowledgement link of one alert"),
        "broadcasts/": Collection(BROADCASTS),
        "broadcasts/{pk}/": Detail(BROADCASTS),
        "broadcasts/{pk}/preview/": Detail(BROADCASTS),
        "broadcasts/{pk}/stats/": Detail(BROADCASTS),
        "broadcasts/{pk}/send/": Action(BROADCASTS),
        "door-knocking/": Collection(HOUSEHOLD_REACHES),
        "door-knocking/{pk}/visit/": Action(
            HOUSEHOLD_REACHES, body=lambda w, obj: {"outcome": "told"}
        ),
        "alerts/": Collection(TEAM_ALERTS),
        "alerts/{pk}/": Detail(TEAM_ALERTS),
        "alerts/{pk}/acknowledge/": Action(TEAM_ALERTS),
        "on-call-shifts/": Collection(ON_CALL_SHIFTS),
        "on-call-shifts/{pk}/": Detail(ON_CALL_SHIFTS),
    }
)

# --- Residence news, rent receipts and balances ----------------------------------------------

POST_WRITERS = frozenset({"caretaker", "agency_staff", "manager", "admin"})
FINANCE_READERS = frozenset({"tenant", "delegate", "agency_staff", "manager", "admin"})


def _post(w, p):
    from tests.factories.news import PostFactory

    return PostFactory(building=p.building)


def _attachment(w, p):
    from django.core.files.base import ContentFile

    from api.news.models import PostAttachment

    attachment = PostAttachment(
        post=_post(w, p), name="plan.pdf", content_type="application/pdf", size=9
    )
    attachment.file.save("plan.pdf", ContentFile(b"%PDF-1.7\n"), save=True)
    return attachment


def _receipt(w, p):
    from tests.factories.documents import RentLedgerLineFactory, RentReceiptFactory

    return RentReceiptFactory(line=RentLedgerLineFactory(lease=p.lease))


POSTS = Kind(
    make=_post,
    write_roles=POST_WRITERS,
    create=lambda w, p: ({"title": "Nouvelle", "building": str(p.building.pk)}, {}),
)
POST_ACKNOWLEDGEMENTS = Kind(make=_post, write_roles=TENANT_SIDE)
POST_HOUSEHOLDS = Kind(make=_post, read_roles=POST_WRITERS)
POST_ATTACHMENTS = Kind(
    make=_attachment,
    write_roles=POST_WRITERS,
    kwargs=lambda a: {"pk": a.post_id, "attachment_id": a.pk},
)
RECEIPTS = Kind(make=_receipt, read_roles=FINANCE_READERS, write_roles=AGENCY_WRITERS)
RECEIPT_IMPORT = Kind(
    make=_receipt,
    read_roles=FINANCE_READERS,
    write_roles=AGENCY_WRITERS,
    create=lambda w, p: ({}, {}),
)
BALANCES = Kind(make=lambda w, p: p.lease, read_roles=FINANCE_READERS)

MATRIX.update(
    {
        "news/": Collection(POSTS),
        "news/{pk}/": Detail(POSTS),
        "news/{pk}/acknowledge/": Action(POST_ACKNOWLEDGEMENTS),
        "news/{pk}/acknowledgements/": Detail(POST_HOUSEHOLDS),
        "news/{pk}/attachments/": Action(POSTS),
        "news/{pk}/attachments/{attachment_id}/": Detail(POST_ATTACHMENTS),
        "rent-receipts/": Collection(RECEIPTS),
        "rent-receipts/{pk}/": Detail(RECEIPTS),
        "rent-receipts/{pk}/pdf/": Detail(RECEIPTS),
        "rent-receipts/{pk}/regenerate/": Action(RECEIPTS),
        "rent-receipts/import/": Collection(RECEIPT_IMPORT),
        "balance/": Collection(BALANCES),
    }
)


# --- Requests, appointments, incidents, categories ----------------------------------------------

TICKET_CREATORS = ALL - {"contractor"}
TICKET_EDITORS = frozenset({"caretaker", "technician", "agency_staff", "manager", "admin"})
TICKET_DISPATCHERS = frozenset({"caretaker", "agency_staff", "manager", "admin"})
TICKET_ANSWERERS = TENANT_SIDE | ESTATE_WRITERS
FIELD_STAFF = TICKET_EDITORS | {"contractor"}


def _ticket(w, p):
    from api.estate.models import ContractorContract
    from tests.factories.tickets import TicketFactory

    contract = ContractorContract.objects.filter(residence=p.residence).first()
    return TicketFactory(
        dwelling=p.dwelling,
        reporter=p.tenant,
        assigned_contractor=contract.contractor if contract else None,
    )


def _photo(w, p):
    from tests.factories.tickets import TicketPhotoFactory

    return TicketPhotoFactory(ticket=_ticket(w, p))


def _appointment(w, p):
    from tests.factories.tickets import AppointmentFactory

    return AppointmentFactory(ticket=_ticket(w, p))


def _category(w, p):
    from tests.factories.tickets import CategoryFactory

    return CategoryFactory(organisation=p.organisation)


def _incident(w, p):
    from tests.factories.tickets import IncidentFactory

    return IncidentFactory(building=p.building)


def _ticket_body(w, p):
    from tests.factories.tickets import standard_category

    category = standard_category("plomberie-fuite")
    return (
        {
            "category": str(category.pk),
            "dwelling": str(p.dwelling.pk),
            "description": "Fuite",
            "answers": {"room": "wc"},
        },
        {},
    )


def _incident_body(w, p):
    from tests.factories.tickets import standard_category

    category = standard_category("chauffage")
    return (
        {"category": str(category.pk), "building": str(p.building.pk), "public_message": "x"},
        {},
    )


TICKETS = Kind(make=_ticket, write_roles=ALL, create=_ticket_body)
TICKET_FILING = Kind(make=_ticket, write_roles=TICKET_CREATORS, create=_ticket_body)
TICKET_EDITING = Kind(make=_ticket, write_roles=TICKET_EDITORS)
TICKET_ASSIGNING = Kind(make=_ticket, write_roles=TICKET_EDITORS)
TICKET_ANSWERS = Kind(make=_ticket, write_roles=TICKET_ANSWERERS)
TICKET_BULK = Kind(
    make=_ticket,
    write_roles=TICKET_DISPATCHERS,
    create=lambda w, p: ({"tickets": [str(_ticket(w, p).pk)], "assignee": str(p.tenant.pk)}, {}),
)
TICKET_PHOTOS = Kind(
    make=_photo, kwargs=lambda photo: {"pk": photo.ticket_id, "photo_id": photo.pk}
)
APPOINTMENTS = Kind(make=_appointment, write_roles=ALL)
APPOINTMENT_BOOKING = Kind(make=_appointment, write_roles=ALL - {"technician", "contractor"})
APPOINTMENT_OUTCOMES = Kind(make=_appointment, write_roles=FIELD_STAFF)
CATEGORIES = Kind(make=_category, cases=("other_organisation",))
INCIDENTS = Kind(make=_incident, write_roles=TICKET_EDITORS, create=_incident_body)

MATRIX.update(
    {
        "tickets/": Collection(TICKET_FILING),
        "tickets/{pk}/": Detail(TICKET_EDITING),
        "tickets/similar/": Own("a pre-filing check within the caller's scope (tested in tickets)"),
        "tickets/export/": Own("CSV/XLSX of the caller's own queue (tested in tickets)"),
        "tickets/bulk-assign/": Collection(TICKET_BULK),
        "tickets/{pk}/transition/": Action(TICKETS),
        "tickets/{pk}/assign/": Action(TICKET_ASSIGNING),
        "tickets/{pk}/comments/": Action(TICKETS),
        "tickets/{pk}/events/": Detail(TICKETS),
        "tickets/{pk}/timeline/": Detail(TICKETS),
        "tickets/{pk}/photos/": Action(TICKETS),
        "tickets/{pk}/photos/{photo_id}/": Detail(TICKET_PHOTOS),
        "tickets/{pk}/photos/{photo_id}/thumbnail/": Detail(TICKET_PHOTOS),
        "tickets/{pk}/follow/": Action(TICKETS),
        "tickets/{pk}/confirm/": Action(TICKET_ANSWERS, body=lambda w, obj: {"fixed": True}),
        "tickets/{pk}/rate/": Action(TICKET_ANSWERS, body=lambda w, obj: {"rating": 5}),
        "tickets/{pk}/appointments/": Action(TICKETS),
        "appointments/": Collection(APPOINTMENTS),
        "appointments/{pk}/": Detail(APPOINTMENTS),
        "appointments/{pk}/book/": Action(APPOINTMENT_BOOKING),
        "appointments/{pk}/cancel/": Action(APPOINTMENTS),
        "appointments/{pk}/outcome/": Action(
            APPOINTMENT_OUTCOMES, body=lambda w, obj: {"outcome": "done"}
        ),
        "categories/": Collection(CATEGORIES),
        "categories/{pk}/": Detail(CATEGORIES),
        "incidents/": Collection(INCIDENTS),
        "incidents/{pk}/": Detail(INCIDENTS),
        "incidents/{pk}/updates/": Action(INCIDENTS),
        "incidents/{pk}/close/": Action(INCIDENTS),
        "incidents/banner/": Own("incidents affecting the caller's home"),
        "sync/": Own("changes in the caller's scope since the caller's cursor"),
        "kpis/": Own("figures over the caller's scope (roles tested in tickets)"),
        "sms/inbound/": Public("SMS provider webhook, HMAC-signed"),
    }
)

# --- Faults: staff only; rule changes for managers ----------------------------------------------

RULE_EDITORS = frozenset({"manager", "admin"})


def _fault(w, p):
    from tests.factories.faults import FaultFactory

    return FaultFactory(place=p)


def _rule_override(w, p):
    from tests.factories.faults import RuleOverrideFactory

    return RuleOverrideFactory(residence=p.residence)


FAULTS = Kind(make=_fault, read_roles=STAFF_READERS, write_roles=STAFF_READERS)
DEVICE_BOARDS = Kind(make=lambda w, p: p.residence, read_roles=STAFF_READERS, cases=ABOVE_DWELLING)
FAULT_RULES = Kind(
    make=_rule_override,
    read_roles=RULE_EDITORS,
    write_roles=RULE_EDITORS,
    cases=ABOVE_DWELLING,
    create=lambda w, p: (
        {"rule": "no_heat", "residence": str(p.residence.pk), "source": "Notice"},
        {},
    ),
)

MATRIX.update(
    {
        "faults/": Collection(FAULTS),
        "faults/metrics/": Own("alarm figures over the caller's scope (roles tested in faults)"),
        "faults/{pk}/": Detail(FAULTS),
        "faults/{pk}/acknowledge/": Action(FAULTS),
        "faults/{pk}/shelve/": Action(
            FAULTS, body=lambda w, obj: {"until": _today(2) + "T12:00:00Z", "reason": "Jeudi"}
        ),
        "faults/{pk}/unshelve/": Action(FAULTS),
        "faults/{pk}/out-of-service/": Action(FAULTS),
        "faults/{pk}/back-in-service/": Action(FAULTS),
        "faults/{pk}/comments/": Action(FAULTS, body=lambda w, obj: {"text": "Vu"}),
        "faults/{pk}/readings/": Detail(FAULTS),
        "residences/{pk}/device-board/": Detail(DEVICE_BOARDS),
        "fault-calendar/": Own(
            "the caller's organisation's heating season (roles tested in faults)"
        ),
        "fault-rules/": Collection(FAULT_RULES),
        "fault-rules/{pk}/": Detail(FAULT_RULES),
        "fault-rules/{pk}/versions/": Detail(FAULT_RULES),
    }
)

# --- A person's rights: export, access log, erasure and rectification by staff --------------

PRIVACY_STAFF = frozenset({"agency_staff", "manager", "admin"})


def _erasure(w, p):
    from tests.factories.privacy import ErasureRequestFactory

    return ErasureRequestFactory(subject=p.tenant)


def _rectification(w, p):
    from tests.factories.privacy import RectificationFactory

    return RectificationFactory(subject=p.tenant)


ERASURES = Kind(
    make=_erasure,
    read_roles=PRIVACY_STAFF,
    write_roles=PRIVACY_STAFF,
    create=lambda w, p: ({"person": str(p.tenant.pk), "reason": "Demande écrite"}, {}),
)
RECTIFICATIONS = Kind(
    make=_rectification,
    read_roles=PRIVACY_STAFF,
    write_roles=PRIVACY_STAFF,
    create=lambda w, p: (
        {"person": str(p.tenant.pk), "reason": "Faute de frappe", "last_name": "Martin"},
        {},
    ),
)

MATRIX.update(
    {
        "privacy/export/": Own("exports of the caller's own data (tested in privacy)"),
        "privacy/export/{pk}/": Own("one of the caller's exports (another's is a 404)"),
        "privacy/access-log/": Own("who on the staff read the caller's data"),
        "privacy/erasure-requests/": Collection(ERASURES),
        "privacy/erasure-requests/{pk}/": Detail(ERASURES),
        "privacy/rectifications/": Collection(RECTIFICATIONS),
        "privacy/rectifications/{pk}/": Detail(RECTIFICATIONS),
    }
)

MATRIX.update(
    {
        "privacy/consents/": Own("the caller's own household's consents (tested in privacy)"),
        "privacy/my-home-data/": Own("what the units of the caller's own home send"),
        "privacy/retention/": Own("the caller's organisation's retention periods (managers)"),
    }
)

# --- Cleanliness audits: staff audit, caretakers read, contractors countersign ------------------

AUDITORS = frozenset({"agency_staff", "manager", "admin"})
AUDIT_READERS = AUDITORS | {"caretaker", "contractor"}
ROUND_READERS = AUDITORS | {"caretaker"}
SURVEY_READERS = TENANT_SIDE | ROUND_READERS


def _cleaning_contractor(w, p):
    from api.estate.models import ContractorContract
    from tests.factories.estate import ContractorContractFactory

    contract = ContractorContract.objects.filter(residence=p.residence).first()
    if contract is None:
        contract = ContractorContractFactory(
            residence=p.residence, contractor__organisation=p.organisation
        )
    return contract.contractor


def _audit(w, p):
    from tests.factories.audits import AuditFactory

    return AuditFactory(entrance=p.entrance, contractor=_cleaning_contractor(w, p))


def _audit_photo(w, p):
    from django.core.files.base import ContentFile

    from api.audits.models import AuditPhoto

    audit = _audit(w, p)
    answer = audit.answers.create(question=audit.template.questions.first(), value="0", failed=True)
    photo = AuditPhoto(
        audit=audit, answer=answer, content_type="image/jpeg", width=1, height=1, size=4
    )
    photo.image.save("p.jpg", ContentFile(b"\xff\xd8\xff\xd9"), save=False)
    photo.thumbnail.save("t.jpg", ContentFile(b"\xff\xd8\xff\xd9"), save=False)
    photo.save()
    return photo


def _audit_template(w, p):
    from api.audits.models import AuditTemplate

    return AuditTemplate.objects.create(
        organisation=p.organisation, code=f"grille-{uuid.uuid4().hex[:8]}", name="Grille"
    )


def _round(w, p):
    from tests.factories.audits import RoundFactory

    return RoundFactory(residence=p.residence, targets=[p.entrance])


def _survey(w, p):
    from tests.factories.audits import SurveyResponseFactory

    return SurveyResponseFactory(entrance=p.entrance, respondent=p.tenant)


def _audit_body(w, p):
    from tests.factories.audits import audit_body

    return audit_body(p.entrance), {}


AUDITS = Kind(make=_audit, read_roles=AUDIT_READERS, write_roles=AUDITORS, create=_audit_body)
AUDIT_PHOTO_UPLOADS = Kind(make=_audit, read_roles=AUDIT_READERS, write_roles=AUDIT_READERS)
AUDIT_PHOTOS = Kind(
    make=_audit_photo,
    read_roles=AUDIT_READERS,
    kwargs=lambda photo: {"pk": photo.audit_id, "photo_id": photo.pk},
)
AUDIT_COUNTERSIGNING = Kind(make=_audit, read_roles=AUDIT_READERS, write_roles={"contractor"})


def _disputed_answer(w, p):
    audit = _audit(w, p)
    question = audit.template.questions.first()
    return audit.answers.create(question=question, value="0", failed=True, disputed=True)


AUDIT_SETTLING = Kind(
    make=_disputed_answer,
    read_roles=AUDIT_READERS,
    write_roles=AUDITORS,
    kwargs=lambda answer: {"pk": answer.audit_id, "item_id": answer.pk},
)
AUDIT_TEMPLATES = Kind(
    make=_audit_template, read_roles=AUDIT_READERS, cases=("other_organisation",)
)
AUDIT_TEMPLATE_REVISING = Kind(
    make=_audit_template,
    read_roles=AUDIT_READERS,
    write_roles={"manager", "admin"},
    cases=("other_organisation",),
)
SURVEY_INVITATIONS = Kind(
    make=_survey,
    write_roles=AUDITORS,
    create=lambda w, p: ({"entrance": str(p.entrance.pk)}, {}),
)
AUDIT_ROUNDS = Kind(
    make=_round,
    read_roles=ROUND_READERS,
    write_roles=AUDITORS,
    create=lambda w, p: (
        {
            "residence": str(p.residence.pk),
            "period_start": _today(),
            "period_end": _today(7),
        },
        {},
    ),
)
AUDIT_SCORES = Kind(
    make=_audit, read_roles=AUDIT_READERS, identify=lambda audit: str(audit.residence_id)
)
AUDIT_REPORTS = Kind(
    make=_audit,
    read_roles=AUDIT_READERS,
    list_key="residence",
    identify=lambda audit: str(audit.residence_id),
    kwargs=lambda audit: {"residence_id": audit.residence_id},
)
CONTRACTOR_REPORTS = Kind(
    make=_cleaning_contractor,
    read_roles=AUDITORS | {"contractor"},
    kwargs=lambda contractor: {"contractor_id": contractor.pk},
)
CLEANLINESS_SURVEYS = Kind(
    make=_survey,
    read_roles=SURVEY_READERS,
    write_roles=TENANT_SIDE,
    create=lambda w, p: ({"entrance": str(p.entrance.pk), "rating": 3}, {}),
)

MATRIX.update(
    {
        "audit-templates/": Collection(AUDIT_TEMPLATES),
        "audit-templates/{pk}/": Detail(AUDIT_TEMPLATES),
        "audit-templates/{pk}/revise/": Action(AUDIT_TEMPLATE_REVISING),
        "audit-rounds/": Collection(AUDIT_ROUNDS),
        "audit-rounds/{pk}/": Detail(AUDIT_ROUNDS),
        "audit-rounds/{pk}/cancel/": Action(AUDIT_ROUNDS),
        "audit-rounds/today/": Own("the rounds the caller walks today"),
        "audits/": Collection(AUDITS),
        "audits/{pk}/": Detail(AUDITS),
        "audits/{pk}/photos/": Action(AUDIT_PHOTO_UPLOADS),
        "audits/{pk}/photos/{photo_id}/": Detail(AUDIT_PHOTOS),
        "audits/{pk}/countersign/": Action(AUDIT_COUNTERSIGNING),
        "audits/{pk}/items/{item_id}/settle/": Action(AUDIT_SETTLING),
        "audit-scoring-policy/": Own("the thresholds of the caller's organisation"),
        "audit-scores/": Collection(AUDIT_SCORES),
        "audit-scores/trends/": Own("monthly figures over the caller's scope"),
        "audit-reports/": Collection(AUDIT_REPORTS),
        "audit-reports/residences/{residence_id}/": Detail(AUDIT_REPORTS),
        "audit-reports/contractors/{contractor_id}/": Detail(CONTRACTOR_REPORTS),
        "audit-reports/export/": Own("CSV of the audits in the caller's scope"),
        "cleanliness-surveys/": Collection(CLEANLINESS_SURVEYS),
        "cleanliness-surveys/invite/": Collection(SURVEY_INVITATIONS),
        "cleanliness-surveys/sms/{token}/": Public("signed SMS link of the tenants' survey"),
    }
)

# --- the URLconf --------------------------------------------------------------------------------

_NAMED_GROUP = re.compile(r"\(\?P<(\w+)>[^)]*\)")
_CONVERTER = re.compile(r"<(?:\w+:)?(\w+)>")


def _route_text(pattern) -> str:
    text = str(pattern.pattern)
    text = text.removeprefix("^").removesuffix("$").removesuffix("\\Z")
    text = _NAMED_GROUP.sub(r"{\1}", text)
    return _CONVERTER.sub(r"{\1}", text)


def _methods(callback) -> set[str]:
    actions = getattr(callback, "actions", None)
    if actions:
        return {method for method in actions if method not in {"head", "options"}}
    view_class = getattr(callback, "view_class", None) or getattr(callback, "cls", None)
    return {
        method
        for method in ("get", "post", "put", "patch", "delete")
        if hasattr(view_class, method)
    }


def api_routes() -> dict[str, set[str]]:
    """Every route under /api/v1/ (relative, `{param}` for parameters) with its methods."""
    routes: dict[str, set[str]] = {}

    def walk(patterns, prefix: str) -> None:
        for entry in patterns:
            if isinstance(entry, URLResolver):
                walk(entry.url_patterns, prefix + _route_text(entry))
            elif isinstance(entry, URLPattern):
                route = prefix + _route_text(entry)
                if route.startswith("api/v1/"):
                    routes.setdefault(route.removeprefix("api/v1/"), set()).update(
                        _methods(entry.callback)
                    )

    walk(get_resolver().url_patterns, "")
    return routes


def _url(route: str, **kwargs) -> str:
    return "/api/v1/" + re.sub(r"\{(\w+)\}", lambda m: str(kwargs[m.group(1)]), route)


# --- tests --------------------------------------------------------------------------------------


def test_every_endpoint_is_classified():
    unclassified = sorted(set(api_routes()) - set(MATRIX))
    assert not unclassified, (
        "Endpoints missing from the access matrix (tests/test_access_matrix.py): "
        + ", ".join(unclassified)
    )


@pytest.mark.django_db
def test_anonymous_gets_401_everywhere():
    client = APIClient()
    failures = []
    for route, methods in sorted(api_routes().items()):
        if isinstance(MATRIX.get(route), Public):
            continue
        params = {name: uuid.uuid4() for name in re.findall(r"\{(\w+)\}", route)}
        for method in sorted(methods):
            response = getattr(client, method)(_url(route, **params), {}, format="json")
            if response.status_code != 401:
                failures.append(f"{method.upper()} {route}: {response.status_code}")
    assert not failures, failures


SCOPED_ROUTES = [
    route for route, row in MATRIX.items() if isinstance(row, Collection | Detail | Action)
]


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker):
    """One world for the whole matrix, built once in a transaction rolled back at the end;
    each test runs in a savepoint inside it, so what a test creates or changes is undone."""
    with django_db_blocker.unblock(), transaction.atomic():
        yield scope_world()
        transaction.set_rollback(True)


@pytest.fixture(scope="module")
def clients(world):
    return {role: client_for(user) for role, user in world.users.items()}


def _ids(response, key: str) -> set[str]:
    return {str(item[key]) for item in response.json()["results"]}


class Checker:
    def __init__(self, route: str, row, world: ScopeWorld, clients: dict, methods: set[str]):
        self.route, self.row, self.world, self.clients = route, row, world, clients
        self.methods = methods
        self.kind = row.kind
        self.failures: list[str] = []

    def expect(self, role, label, response, allowed: set[int]) -> None:
        if response.status_code not in allowed:
            detail = response.content[:200]
            self.failures.append(
                f"{role}: {label} -> {response.status_code} (expected {sorted(allowed)}) {detail}"
            )

    def run(self) -> list[str]:
        home = self.kind.make(self.world, self.world.home)
        away = {
            case: self.kind.make(self.world, self.world.place(case)) for case in self.kind.cases
        }
        for role in ROLES:
            client = self.clients[role]
            out_of_scope = {
                case: obj for case, obj in away.items() if role in ScopeWorld.OUT_OF_SCOPE[case]
            }
            if isinstance(self.row, Collection):
                self.check_collection(role, client, home, out_of_scope)
            elif isinstance(self.row, Detail):
                self.check_detail(role, client, home, out_of_scope)
            else:
                self.check_action(role, client, home, out_of_scope)
        return self.failures

    def check_collection(self, role, client, home, out_of_scope) -> None:
        reads = role in self.kind.read_roles
        if "get" in self.methods:
            response = client.get(_url(self.route), {"page_size": 200})
            self.expect(role, "list", response, {200} if reads else {403})
            if response.status_code == 200:
                ids = _ids(response, self.kind.list_key)
                if self.kind.identify(home) not in ids:
                    self.failures.append(f"{role}: list misses the object at home")
                for case, obj in out_of_scope.items():
                    if self.kind.identify(obj) in ids:
                        self.failures.append(f"{role}: list shows the object of {case}")
        if "post" in self.methods and self.kind.create is not None:
            writes = role in self.kind.write_roles
            targets = list(out_of_scope) if writes else [*out_of_scope, "home"]
            for case in targets:
                place = self.world.home if case == "home" else self.world.place(case)
                body, headers = self.kind.create(self.world, place)
                response = client.post(_url(self.route), body, format="json", **headers)
                self.expect(role, f"create at {case}", response, {400, 404} if writes else {403})

    def check_detail(self, role, client, home, out_of_scope) -> None:
        reads = role in self.kind.read_roles
        writes = role in self.kind.write_roles
        if "get" in self.methods:
            query = self.row.query
            response = client.get(_url(self.route, **self.kind.kwargs(home)), query)
            self.expect(role, "detail at home", response, {200} if reads else {403})
            for case, obj in out_of_scope.items():
                response = client.get(_url(self.route, **self.kind.kwargs(obj)), query)
                self.expect(role, f"detail of {case}", response, {404} if reads else {403})
        for method in sorted(self.methods & {"put", "patch", "delete"}):
            if not writes:
                response = getattr(client, method)(
                    _url(self.route, **self.kind.kwargs(home)), {}, format="json"
                )
                self.expect(role, f"{method} at home", response, {403})
            for case, obj in out_of_scope.items():
                response = getattr(client, method)(
                    _url(self.route, **self.kind.kwargs(obj)), {}, format="json"
                )
                self.expect(role, f"{method} of {case}", response, {404} if writes else {403})

    def check_action(self, role, client, home, out_of_scope) -> None:
        writes = role in self.kind.write_roles
        for method in sorted(self.methods):
            targets = dict(out_of_scope)
            if not writes:
                targets["home"] = home
            for case, obj in targets.items():
                body = self.row.body(self.world, obj)
                response = getattr(client, method)(
                    _url(self.route, **self.kind.kwargs(obj)), body, format="json"
                )
                expected = {404} if writes else {403}
                self.expect(role, f"{method} on {case}", response, expected)


@pytest.mark.parametrize("route", SCOPED_ROUTES)
def test_every_role_is_confined_to_its_scope(route, db, world, clients):
    routes = api_routes()
    if route not in routes:
        pytest.skip(f"{route} is not in this URLconf")
    failures = Checker(route, MATRIX[route], world, clients, routes[route]).run()
    assert not failures, "\n".join([route, *failures])
