"""Crisis mode: one incident for a building, its requests attached, every household told."""

import datetime as dt

import pytest
from django.utils import timezone

from api.core.exceptions import ServiceError
from api.notifications.models import Notification
from api.tickets import services
from api.tickets.models import EventKind, IncidentUpdate, Status
from tests.conftest import client_for
from tests.factories import place_factory
from tests.factories.tickets import standard_category

pytestmark = pytest.mark.django_db


@pytest.fixture
def heating():
    return standard_category("chauffage")


@pytest.fixture
def no_heating():
    return standard_category("chauffage-panne")


def _file_no_heating(place, category):
    return services.ticket_create(
        actor=place.tenant,
        source="tenant_app",
        category=category,
        dwelling=place.dwelling,
        description="Radiateurs froids",
        answers={"whole_dwelling": True},
    )


def _open(world, category, **kwargs):
    params = {
        "actor": world.users["agency_staff"],
        "building": world.home.building,
        "category": category,
        "public_message": "Panne de chaufferie : retour prévu ce soir.",
        "expected_end": timezone.now() + dt.timedelta(hours=6),
    }
    params.update(kwargs)
    return services.incident_open(**params)


def test_opening_attaches_open_requests_and_tells_every_household(world, heating, no_heating):
    neighbour = place_factory(building=world.home.building)
    before = _file_no_heating(world.home, no_heating)
    elsewhere = _file_no_heating(world.other_tenant, no_heating)  # another building
    incident = _open(world, heating)
    before.refresh_from_db()
    elsewhere.refresh_from_db()
    assert before.incident == incident and before.status == Status.ACKNOWLEDGED
    assert elsewhere.incident is None
    told = set(
        Notification.objects.filter(event="incident.started").values_list("recipient", flat=True)
    )
    assert told == {world.home.tenant.pk, neighbour.tenant.pk}
    assert Notification.objects.filter(event="incident.started", critical=True).exists()
    assert IncidentUpdate.objects.get(incident=incident).recipients == 2


def test_a_new_request_joins_the_incident(world, heating, no_heating):
    incident = _open(world, heating)
    ticket = _file_no_heating(world.home, no_heating)
    assert ticket.incident == incident
    assert ticket.status == Status.ACKNOWLEDGED
    assert ticket.events.filter(kind=EventKind.INCIDENT, public=True).exists()


def test_updates_and_end_are_told_and_requests_resolved(world, heating, no_heating):
    incident = _open(world, heating)
    ticket = _file_no_heating(world.home, no_heating)
    staff = world.users["agency_staff"]
    services.incident_update(
        incident=incident,
        actor=staff,
        public_message="La pièce arrive demain matin.",
        expected_end=timezone.now() + dt.timedelta(days=1),
    )
    services.incident_close(incident=incident, actor=staff, public_message="Chauffage rétabli.")
    ticket.refresh_from_db()
    assert ticket.status == Status.RESOLVED
    events = [n.event for n in Notification.objects.filter(recipient=world.home.tenant)]
    assert {"incident.started", "incident.updated", "incident.ended"} <= set(events)
    assert "ticket.resolved_confirm_request" in events
    with pytest.raises(ServiceError):
        services.incident_close(incident=incident, actor=staff)


def test_one_incident_per_place_and_category(world, heating):
    incident = _open(world, heating)
    with pytest.raises(ServiceError) as refused:
        _open(world, heating)
    assert refused.value.status_code == 409
    # The fault engine (no actor) gets the open incident back instead.
    assert _open(world, heating, actor=None, source="sensor").pk == incident.pk


def test_out_of_scope_or_tenant_cannot_declare(world, heating):
    with pytest.raises(ServiceError) as refused:
        _open(world, heating, building=world.other_residence.building)
    assert refused.value.status_code == 404
    with pytest.raises(ServiceError) as refused:
        _open(world, heating, actor=world.home.tenant)
    assert refused.value.status_code == 403


def test_banner_and_endpoints(world, clients, heating):
    incident = _open(world, heating)
    banner = clients["tenant"].get("/api/v1/incidents/banner/")
    assert banner.status_code == 200
    assert [b["id"] for b in banner.json()] == [str(incident.id)]
    assert banner.json()[0]["message"].startswith("Panne de chaufferie")
    other = client_for(world.other_tenant.tenant)  # another building of the residence
    assert other.get("/api/v1/incidents/banner/").json() == []
    assert other.get(f"/api/v1/incidents/{incident.id}/").status_code == 404

    detail = clients["caretaker"].get(f"/api/v1/incidents/{incident.id}/")
    assert detail.status_code == 200 and detail.json()["updates"][0]["kind"] == "started"
    response = clients["caretaker"].post(
        f"/api/v1/incidents/{incident.id}/updates/",
        {"public_message": "Technicien sur place."},
        format="json",
        HTTP_IF_MATCH=detail["ETag"],
    )
    assert response.status_code == 200
    stale = clients["caretaker"].post(
        f"/api/v1/incidents/{incident.id}/close/", {}, format="json", HTTP_IF_MATCH=detail["ETag"]
    )
    assert stale.status_code == 412
    closed = clients["caretaker"].post(f"/api/v1/incidents/{incident.id}/close/", {}, format="json")
    assert closed.status_code == 200 and closed.json()["status"] == "closed"
    assert (
        clients["tenant"]
        .post(
            "/api/v1/incidents/",
            {
                "category": str(heating.id),
                "building": str(world.home.building.id),
                "public_message": "x",
            },
            format="json",
        )
        .status_code
        == 403
    )


def test_creating_through_the_api(world, clients, heating):
    response = clients["agency_staff"].post(
        "/api/v1/incidents/",
        {
            "category": str(heating.id),
            "residence": str(world.home.residence.id),
            "public_message": "Coupure d'eau chaude dans toute la résidence.",
        },
        format="json",
    )
    assert response.status_code == 201
    assert response.json()["building"] is None
    assert response.json()["residence"]["id"] == str(world.home.residence.id)
