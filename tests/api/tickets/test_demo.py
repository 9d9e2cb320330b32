"""The demo requests: routed, at several stages, with an incident; a second run changes nothing."""

import pytest

from api.core.demo import DEMO_CARETAKER_PHONE, DEMO_TENANT_PHONE
from api.estate.demo import seed_demo_estate
from api.tickets.demo import seed_demo_tickets
from api.tickets.models import Appointment, CategoryRoute, Incident, Ticket, TicketEvent
from tests.factories import OrganisationFactory

pytestmark = pytest.mark.django_db


def test_demo_requests_are_varied_and_idempotent():
    organisation = OrganisationFactory(slug="demo")
    seed_demo_estate(organisation)
    seed_demo_tickets(
        organisation, tenant_phone=DEMO_TENANT_PHONE, caretaker_phone=DEMO_CARETAKER_PHONE
    )
    statuses = set(Ticket.objects.values_list("status", flat=True))
    assert {"acknowledged", "resolved"} <= statuses
    assert Appointment.objects.filter(status="proposed").count() == 3
    assert Incident.objects.filter(status="open").count() == 1
    assert CategoryRoute.objects.filter(organisation=organisation).count() == 4
    counts = [model.objects.count() for model in (Ticket, TicketEvent, Appointment, Incident)]
    seed_demo_tickets(
        organisation, tenant_phone=DEMO_TENANT_PHONE, caretaker_phone=DEMO_CARETAKER_PHONE
    )
    assert [
        model.objects.count() for model in (Ticket, TicketEvent, Appointment, Incident)
    ] == counts
