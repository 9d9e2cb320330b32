"""Erasure and rectification on request, through staff with a reason."""

import datetime as dt

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.utils import timezone

from api.accounts.models import LoginCode, PersonalDataAccess, User
from api.accounts.otp import phone_digest
from api.accounts.services import personal_data_access_record
from api.estate.models import EstateEvent
from api.notifications.models import Delivery, PushDevice
from api.privacy import services, tasks
from api.privacy.models import DataExport, ErasureRequest, Rectification
from api.tickets.models import InboundSms, TicketEvent
from tests.conftest import client_for
from tests.factories import DelegationFactory, UserFactory, place_factory
from tests.factories.estate import AgencyMembershipFactory, CaretakerAssignmentFactory
from tests.factories.notifications import (
    HouseholdReachFactory,
    NotificationFactory,
    PushDeviceFactory,
)
from tests.factories.privacy import ready_export
from tests.factories.tickets import TicketFactory

ERASE_URL = "/api/v1/privacy/erasure-requests/"
RECTIFY_URL = "/api/v1/privacy/rectifications/"
FIRST, LAST = "Zéphyrin", "Quatrebarbes"
PHONE = "+33612345678"
EMAIL = "zephyrin.q@example.org"
# How the person may appear in any text: the scan looks for each of these.
NEEDLES = [
    f"{FIRST} {LAST}",
    LAST,
    EMAIL,
    PHONE,
    "0612345678",
    "06 12 34 56 78",
    "06.12.34.56.78",
]


@pytest.fixture
def run_tasks(monkeypatch, django_capture_on_commit_callbacks):
    """The erasure task runs at commit, in this process."""
    monkeypatch.setattr(
        tasks.execute_erasure, "delay", lambda request_id: tasks.execute_erasure(request_id)
    )

    def post(client, body):
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(ERASE_URL, body, format="json")

    return post


@pytest.fixture
def world(db):
    place = place_factory()
    staff = AgencyMembershipFactory(agency=place.agency).user
    staff.first_name, staff.last_name = "Agathe", "Conseil"
    staff.save()
    return place, staff


def _person_everywhere(place, staff):
    """A tenant whose name and phone are written in every kind of record."""
    person = place.tenant
    person.first_name, person.last_name = FIRST, LAST
    person.phone, person.email = PHONE, EMAIL
    person.save()
    full = f"{FIRST} {LAST}"
    ticket = TicketFactory(
        dwelling=place.dwelling,
        reporter=person,
        description=f"Fuite. Appeler {LAST} au 06 12 34 56 78 après 18 h.",
        answers={"contact": FIRST, "room": "cuisine"},
        external_contact={"name": full, "phone": PHONE},
        rating_comment=f"Merci, signé {FIRST}",
    )
    TicketEvent.objects.create(
        ticket=ticket, kind="comment", actor=staff, actor_role="agency_staff",
        note=f"{LAST} rappelle, joignable au 06.12.34.56.78", public=False,
        data={"phone": "0612345678"},
    )  # fmt: skip
    neighbour = place_factory(residence=place.residence)
    other_ticket = TicketFactory(dwelling=neighbour.dwelling, reporter=neighbour.tenant)
    TicketEvent.objects.create(
        ticket=other_ticket, kind="comment", actor=staff, actor_role="agency_staff",
        note=f"Bruit signalé par Mme {LAST} ({full}) du 3e.", public=False,
    )  # fmt: skip
    notification = NotificationFactory(
        recipient=person, title=f"Bonjour {FIRST}", body=f"{full}, votre demande avance."
    )
    Delivery.objects.create(
        notification=notification, channel="sms", not_before=timezone.now(),
        detail={"to": PHONE}, last_error=f"refused {PHONE}",
    )  # fmt: skip
    NotificationFactory(recipient=staff, body=f"Nouvelle demande de {full} ({EMAIL}).")
    PushDeviceFactory(user=person, label=f"Téléphone de {FIRST}")
    LoginCode.objects.create(
        phone_digest=phone_digest(PHONE), user=person, code_hash="x" * 64,
        expires_at=timezone.now() + dt.timedelta(minutes=5),
    )  # fmt: skip
    InboundSms.objects.create(
        message_id="sms-1", sender=PHONE, body=f"Oui c'est réparé, {FIRST}",
        received_at=timezone.now(), ticket=ticket, outcome="confirmed",
    )  # fmt: skip
    DelegationFactory(grantor=person)
    HouseholdReachFactory(dwelling=place.dwelling, visit_note=f"Vu {full}, tél 06 12 34 56 78")
    EstateEvent.objects.create(
        organisation=place.organisation, kind="updated", subject_type="person",
        subject_id=person.pk, actor=staff, data={"phone": PHONE, "name": full},
    )  # fmt: skip
    LogEntry.objects.create(
        user=staff, content_type=ContentType.objects.get_for_model(User),
        object_id=str(person.pk), object_repr=full, action_flag=CHANGE,
        change_message=f"Changed phone to {PHONE}.",
    )  # fmt: skip
    personal_data_access_record(viewer=staff, subjects=[person], context="people.detail")
    ready_export(person)
    return person


def _found(needles: list[str]) -> dict[str, set[str]]:
    """Every table with a text, character or JSON column holding one of the needles."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = 'public' AND data_type IN "
            "('character varying', 'text', 'jsonb', 'json', 'character')"
        )
        columns = cursor.fetchall()
        found: dict[str, set[str]] = {}
        for table, column in columns:
            for needle in needles:
                cursor.execute(
                    f'SELECT 1 FROM "{table}" WHERE "{column}"::text ILIKE %s LIMIT 1',  # noqa: S608
                    [f"%{needle}%"],
                )
                if cursor.fetchone():
                    found.setdefault(table, set()).add(needle)
    return found


def _legal_hold_tables() -> set[str]:
    from django.apps import apps

    return {apps.get_model(label)._meta.db_table for label in services.LEGAL_HOLD_MODELS}


def test_erasure_leaves_name_and_phone_only_in_legal_hold_records(world, run_tasks):
    place, staff = world
    person = _person_everywhere(place, staff)
    before = _found(NEEDLES)
    assert {"accounts_user", "tickets_ticket", "tickets_ticketevent", "django_admin_log"} <= set(
        before
    )
    response = run_tasks(
        client_for(staff),
        {"person": str(person.pk), "reason": f"Courrier de {FIRST} {LAST} du 3 mars."},
    )
    assert response.status_code == 201, response.content
    after = _found(NEEDLES)
    assert set(after) <= _legal_hold_tables(), after

    person.refresh_from_db()
    assert (person.first_name, person.last_name, person.phone) == ("", "", None)
    assert not person.is_active and not person.has_usable_password()
    assert not PushDevice.objects.filter(user=person).exists()
    assert not LoginCode.objects.filter(user=person).exists()
    assert not DataExport.objects.filter(subject=person).exists()
    assert not person.delegations_given.filter(revoked_at__isnull=True).exists()
    # The history stays, without the person's details.
    assert TicketEvent.objects.filter(ticket__reporter=person).count() == 1
    assert PersonalDataAccess.objects.filter(subject=person).exists()
    record = ErasureRequest.objects.get()
    assert record.requested_by == staff and record.executed_at is not None
    assert record.summary["login_codes"] == 1
    assert client_for(staff).get(f"{ERASE_URL}{record.pk}/").status_code == 200


def test_erasure_needs_staff_scope_and_a_reason(world):
    place, staff = world
    other = place_factory(organisation=place.organisation).tenant
    client = client_for(staff)
    assert client.post(ERASE_URL, {"person": str(other.pk), "reason": "x"}).status_code == 404
    response = client.post(ERASE_URL, {"person": str(place.tenant.pk), "reason": " "})
    assert response.status_code == 400
    assert client.post(ERASE_URL, {"person": str(staff.pk), "reason": "x"}).status_code == 404
    caretaker = CaretakerAssignmentFactory(residence=place.residence).caretaker
    assert client.post(ERASE_URL, {"person": str(caretaker.pk), "reason": "x"}).status_code == 404
    tenant = client_for(place.tenant)
    assert tenant.post(ERASE_URL, {"person": str(place.tenant.pk), "reason": "x"}).status_code == (
        403
    )
    assert User.objects.get(pk=place.tenant.pk).is_active


def test_access_closes_at_once_and_execution_happens_once(world, monkeypatch):
    place, staff = world
    person = _person_everywhere(place, staff)
    monkeypatch.setattr(tasks.execute_erasure, "delay", lambda request_id: None)
    record = services.person_erase(actor=staff, subject=person, reason="Demande écrite")
    person.refresh_from_db()
    assert not person.is_active and record.executed_at is None
    assert not PushDevice.objects.filter(user=person).exists()
    assert person.last_name == LAST  # scrubbed by the worker
    services.erasure_execute(request_id=record.pk)
    done = services.erasure_execute(request_id=record.pk)
    assert done.executed_at is not None and done.summary["login_codes"] == 1
    person.refresh_from_db()
    assert person.last_name == ""
    again = services.person_erase(actor=staff, subject=person, reason="Rappel")
    assert services.erasure_execute(request_id=again.pk).executed_at is not None
    assert ErasureRequest.objects.filter(subject=person).count() == 2


def test_rectification_corrects_and_is_audited(world):
    place, staff = world
    response = client_for(staff).post(
        RECTIFY_URL,
        {
            "person": str(place.tenant.pk),
            "reason": "Nom mal orthographié sur le bail",
            "last_name": "Dupond",
            "phone": "06 98 76 54 32",
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    tenant = User.objects.get(pk=place.tenant.pk)
    assert tenant.last_name == "Dupond" and str(tenant.phone) == "+33698765432"
    record = Rectification.objects.get()
    assert sorted(record.fields) == ["last_name", "phone"]
    assert record.requested_by == staff and record.reason.startswith("Nom mal")
    assert PersonalDataAccess.objects.filter(
        viewer=staff, subject=tenant, context="privacy.rectify"
    ).exists()
    listed = client_for(staff).get(RECTIFY_URL).json()["results"]
    assert [row["id"] for row in listed] == [str(record.pk)]


def test_rectification_refusals(world):
    place, staff = world
    taken = UserFactory(organisation=place.organisation)
    client = client_for(staff)
    person = str(place.tenant.pk)
    duplicate = client.post(
        RECTIFY_URL, {"person": person, "reason": "x", "phone": str(taken.phone)}, format="json"
    )
    assert duplicate.status_code == 400 and duplicate.json()["code"] == "already_used"
    nothing = client.post(RECTIFY_URL, {"person": person, "reason": "x"}, format="json")
    assert nothing.status_code == 400
    bad_phone = client.post(
        RECTIFY_URL, {"person": person, "reason": "x", "phone": "12"}, format="json"
    )
    assert bad_phone.status_code == 400
    assert not Rectification.objects.exists()
