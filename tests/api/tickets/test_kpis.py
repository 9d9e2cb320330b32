"""Service-level figures over a date range: medians, targets met, reopen rate, satisfaction."""

import datetime as dt

import pytest
from django.utils import timezone

from api.tickets import selectors
from tests.factories.tickets import TicketFactory, standard_category

pytestmark = pytest.mark.django_db


def _ticket(place, category, *, ack_hours=None, resolve_hours=None, **fields):
    created = timezone.now() - dt.timedelta(days=2)
    ticket = TicketFactory(dwelling=place.dwelling, category=category, **fields)
    updates = {"created_at": created}
    if ack_hours is not None:
        updates["acknowledged_at"] = created + dt.timedelta(hours=ack_hours)
    if resolve_hours is not None:
        updates["resolved_at"] = created + dt.timedelta(hours=resolve_hours)
    type(ticket).objects.filter(pk=ticket.pk).update(**updates)
    return ticket


def test_figures(world, clients, leak):
    home = world.home
    noise = standard_category("voisinage-bruit")
    _ticket(home, leak, ack_hours=1, resolve_hours=10, rating=5)
    _ticket(
        home,
        leak,
        ack_hours=3,
        resolve_hours=30,
        reopen_count=1,
        rating=2,
        resolve_breached_at=timezone.now(),
    )
    _ticket(home, leak, ack_hours=5, acknowledge_breached_at=timezone.now())
    _ticket(home, noise)
    _ticket(world.other_residence, leak, ack_hours=1)  # out of the agency's scope
    today = timezone.localdate()
    response = clients["agency_staff"].get(
        "/api/v1/kpis/",
        {"date_from": str(today - dt.timedelta(days=7)), "date_to": str(today)},
    )
    assert response.status_code == 200, response.content
    body = response.json()
    overall = body["overall"]
    assert overall["created"] == 4
    assert overall["median_hours_to_acknowledge"] == 3.0
    assert overall["median_hours_to_resolve"] == 20.0
    assert overall["acknowledged_within_target"] == round(2 / 3, 4)
    assert overall["resolved_within_target"] == 0.5
    assert overall["reopen_rate"] == 0.5
    assert overall["satisfaction"] == 3.5 and overall["satisfied_share"] == 0.5
    by_code = {row["code"]: row for row in body["by_category"]}
    assert by_code["plomberie-fuite"]["created"] == 3 and by_code["voisinage-bruit"]["created"] == 1
    assert [row["name"] for row in body["by_residence"]] == [home.residence.name]


def test_filters_and_validation(world, clients, leak):
    _ticket(world.home, leak, ack_hours=1)
    today = timezone.localdate()
    period = {"date_from": str(today - dt.timedelta(days=7)), "date_to": str(today)}
    other = clients["manager"].get(
        "/api/v1/kpis/", {**period, "residence": str(world.other_residence.residence.id)}
    )
    assert other.json()["overall"]["created"] == 0
    family = clients["manager"].get(
        "/api/v1/kpis/", {**period, "category": str(standard_category("plomberie").id)}
    )
    assert family.json()["overall"]["created"] == 1
    backwards = clients["manager"].get(
        "/api/v1/kpis/", {"date_from": str(today), "date_to": str(today - dt.timedelta(days=1))}
    )
    assert backwards.status_code == 400
    assert clients["tenant"].get("/api/v1/kpis/", period).status_code == 403
    assert clients["contractor"].get("/api/v1/kpis/", period).status_code == 403


def test_empty_period(world):
    figures = selectors.ticket_kpis(
        user=world.users["manager"], date_from=dt.date(2020, 1, 1), date_to=dt.date(2020, 1, 31)
    )
    assert figures["overall"]["created"] == 0
    assert figures["overall"]["median_hours_to_resolve"] is None
