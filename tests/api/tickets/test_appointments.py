"""Visits: slots proposed by staff, picked by the tenant, reminders, missed visits."""

import datetime as dt

import pytest
from django.utils import timezone

from api.core.exceptions import ServiceError
from api.notifications.models import Notification
from api.tickets import services, tasks
from api.tickets.models import Appointment, AppointmentStatus, Status
from tests.conftest import client_for

pytestmark = pytest.mark.django_db


def _slots(*days):
    base = timezone.now().replace(minute=0, second=0, microsecond=0) + dt.timedelta(days=1)
    return [(base + dt.timedelta(days=d), base + dt.timedelta(days=d, hours=2)) for d in days]


@pytest.fixture
def proposed(world, file_leak):
    ticket = file_leak()
    technician = world.users["technician"]
    services.ticket_transition(ticket=ticket, actor=technician, to_status="acknowledged")
    slots = services.appointment_propose(
        ticket=ticket, actor=technician, slots=_slots(0, 1, 2), note="Prévoir 1 h"
    )
    return ticket, slots


def test_the_tenant_is_offered_slots(world, proposed):
    _, slots = proposed
    assert [s.status for s in slots] == ["proposed"] * 3
    assert Notification.objects.filter(
        recipient=world.home.tenant, event="appointment.proposed"
    ).exists()


def test_picking_a_slot_books_it_and_schedules_the_request(world, proposed):
    ticket, slots = proposed
    booked = services.appointment_book(appointment=slots[1], actor=world.home.tenant)
    assert booked.status == AppointmentStatus.BOOKED
    statuses = dict(Appointment.objects.values_list("id", "status"))
    assert statuses == {slots[0].id: "declined", slots[1].id: "booked", slots[2].id: "declined"}
    ticket.refresh_from_db()
    assert ticket.status == Status.SCHEDULED
    assert Notification.objects.filter(
        recipient=world.users["technician"], event="appointment.booked"
    ).exists()


def test_a_key_with_the_caretaker_tells_the_caretaker(world, proposed):
    _, slots = proposed
    services.appointment_book(
        appointment=slots[0], actor=world.home.tenant, key_with_caretaker=True
    )
    assert Notification.objects.filter(
        recipient=world.users["caretaker"], event="appointment.booked"
    ).exists()


def test_another_tenant_cannot_book(world, proposed):
    _, slots = proposed
    with pytest.raises(ServiceError) as refused:
        services.appointment_book(appointment=slots[0], actor=world.other_tenant.tenant)
    assert refused.value.status_code == 404


def test_slots_must_be_sensible(world, file_leak):
    ticket = file_leak()
    technician = world.users["technician"]
    now = timezone.now()
    for slots in (
        [],
        _slots(0, 1, 2, 3, 4, 5),
        [(now - dt.timedelta(hours=1), now + dt.timedelta(hours=1))],
        [(now + dt.timedelta(days=1), now + dt.timedelta(days=1, hours=9))],
    ):
        with pytest.raises(ServiceError):
            services.appointment_propose(ticket=ticket, actor=technician, slots=slots)


def test_a_new_offer_withdraws_the_unbooked_one(world, proposed):
    ticket, slots = proposed
    services.appointment_propose(ticket=ticket, actor=world.users["technician"], slots=_slots(5))
    assert set(
        Appointment.objects.filter(pk__in=[s.id for s in slots]).values_list("status", flat=True)
    ) == {"declined"}


def test_cancelling_the_visit_unschedules_the_request(world, proposed):
    ticket, slots = proposed
    services.appointment_book(appointment=slots[0], actor=world.home.tenant)
    services.appointment_cancel(appointment=slots[0], actor=world.home.tenant, reason="Malade")
    ticket.refresh_from_db()
    assert ticket.status == Status.ACKNOWLEDGED
    assert Notification.objects.filter(
        recipient=world.users["technician"], event="appointment.cancelled"
    ).exists()


def test_a_missed_visit_is_counted_and_the_request_waits_for_access(world, proposed):
    ticket, slots = proposed
    services.appointment_book(appointment=slots[0], actor=world.home.tenant)
    Appointment.objects.filter(pk=slots[0].pk).update(
        starts_at=timezone.now() - dt.timedelta(hours=1), ends_at=timezone.now()
    )
    services.appointment_record_outcome(
        appointment=slots[0], actor=world.users["technician"], outcome="missed", note="Absent"
    )
    ticket.refresh_from_db()
    assert (ticket.status, ticket.waiting_reason, ticket.missed_appointments) == (
        Status.WAITING,
        "no_access",
        1,
    )


def test_an_outcome_waits_for_the_visit(world, proposed):
    _, slots = proposed
    services.appointment_book(appointment=slots[0], actor=world.home.tenant)
    with pytest.raises(ServiceError):
        services.appointment_record_outcome(
            appointment=slots[0], actor=world.users["technician"], outcome="done"
        )


def test_reminders_go_once_the_day_before(world, proposed):
    _, slots = proposed
    services.appointment_book(appointment=slots[0], actor=world.home.tenant)
    Appointment.objects.filter(pk=slots[0].pk).update(
        starts_at=timezone.now() + dt.timedelta(hours=20),
        ends_at=timezone.now() + dt.timedelta(hours=22),
    )
    assert tasks.send_appointment_reminders() == 1
    assert tasks.send_appointment_reminders() == 0
    reminded = set(
        Notification.objects.filter(event="appointment.reminder").values_list(
            "recipient", flat=True
        )
    )
    assert reminded == {world.home.tenant.pk, world.users["technician"].pk}


def test_appointment_endpoints(world, clients, proposed):
    ticket, slots = proposed
    listed = clients["tenant"].get("/api/v1/appointments/")
    assert {row["id"] for row in listed.json()["results"]} == {str(s.id) for s in slots}
    neighbour = client_for(world.other_tenant.tenant)
    assert neighbour.get(f"/api/v1/appointments/{slots[0].id}/").status_code == 404
    response = clients["tenant"].post(
        f"/api/v1/appointments/{slots[0].id}/book/", {"key_with_caretaker": True}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["status"] == "booked"
    offered = clients["technician"].post(
        f"/api/v1/tickets/{ticket.id}/appointments/",
        {
            "slots": [
                {"starts_at": a.isoformat(), "ends_at": b.isoformat()} for a, b in _slots(3, 4)
            ]
        },
        format="json",
    )
    assert offered.status_code == 201
    assert len(offered.json()) == 2
    refused = clients["tenant"].post(
        f"/api/v1/tickets/{ticket.id}/appointments/", {"slots": []}, format="json"
    )
    assert refused.status_code == 403
