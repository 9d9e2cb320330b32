"""Delta sync for the caretaker's phone: changes, deletions, paging, scope changes."""

import datetime as dt

import pytest
from django.utils import timezone

from api.estate import services as estate_services
from api.estate.models import CommonArea, Dwelling
from api.tickets import services
from api.tickets.models import Incident, Ticket
from tests.factories import CommonAreaFactory, DwellingFactory
from tests.factories.estate import CaretakerAssignmentFactory
from tests.factories.tickets import IncidentFactory, TicketFactory

pytestmark = pytest.mark.django_db
URL = "/api/v1/sync/"


def _ids(section) -> set:
    return {row["id"] for row in section["changed"]}


def _age_everything():
    """Move every change back in time, as if the phone had synced long ago."""
    past = timezone.now() - dt.timedelta(hours=1)
    for model in (Ticket, Incident, Dwelling, CommonArea):
        model.objects.update(updated_at=past)


def test_first_sync_returns_the_whole_scope(world, clients):
    home = world.home
    mine = TicketFactory(dwelling=home.dwelling)
    foreign = TicketFactory(dwelling=world.other_residence.dwelling)
    incident = IncidentFactory(building=home.building)
    area = CommonAreaFactory(entrance=home.entrance)
    body = clients["caretaker"].get(URL).json()
    assert body["reset"] is True and body["has_more"] is False
    assert str(mine.id) in _ids(body["tickets"]) and str(foreign.id) not in _ids(body["tickets"])
    assert _ids(body["incidents"]) == {str(incident.id)}
    assert str(home.dwelling.id) in _ids(body["dwellings"])
    assert str(world.other_residence.dwelling.id) not in _ids(body["dwellings"])
    assert str(area.id) in _ids(body["common_areas"])


def test_the_next_sync_returns_only_what_changed(world, clients, file_leak):
    TicketFactory(dwelling=world.home.dwelling)
    cursor = clients["caretaker"].get(URL).json()["cursor"]
    _age_everything()
    cursor = clients["caretaker"].get(URL, {"since": cursor}).json()["cursor"]
    _age_everything()
    quiet = clients["caretaker"].get(URL, {"since": cursor}).json()
    assert quiet["reset"] is False
    assert quiet["tickets"]["changed"] == [] and quiet["dwellings"]["changed"] == []
    ticket = file_leak()
    later = clients["caretaker"].get(URL, {"since": quiet["cursor"]}).json()
    assert _ids(later["tickets"]) == {str(ticket.id)}


def test_deletions_come_as_tombstones(world, clients, file_leak):
    ticket = file_leak()
    spare = DwellingFactory(entrance=world.home.entrance)
    cursor = clients["caretaker"].get(URL).json()["cursor"]
    services.ticket_delete(ticket=ticket, actor=world.users["manager"])
    estate_services.dwelling_delete(actor=world.users["manager"], dwelling=spare)
    body = clients["caretaker"].get(URL, {"since": cursor}).json()
    assert body["tickets"]["deleted"] == [str(ticket.id)]
    assert body["dwellings"]["deleted"] == [str(spare.id)]
    assert str(ticket.id) not in _ids(body["tickets"])


def test_large_scopes_come_in_pages(world, clients):
    for _ in range(5):
        TicketFactory(dwelling=world.home.dwelling)
    seen, cursor, pages = set(), None, 0
    while True:
        params = {"limit": 2, **({"since": cursor} if cursor else {})}
        body = clients["caretaker"].get(URL, params).json()
        seen |= _ids(body["tickets"])
        cursor, pages = body["cursor"], pages + 1
        if not body["has_more"]:
            break
    assert len(seen) == 5 and pages == 3


def test_a_scope_change_starts_over(world, clients):
    cursor = clients["caretaker"].get(URL).json()["cursor"]
    CaretakerAssignmentFactory(
        residence=world.other_residence.residence, caretaker=world.users["caretaker"]
    )
    body = clients["caretaker"].get(URL, {"since": cursor}).json()
    assert body["reset"] is True
    assert str(world.other_residence.dwelling.id) in _ids(body["dwellings"])


def test_a_forged_cursor_is_refused(world, clients):
    response = clients["caretaker"].get(URL, {"since": "not-a-cursor"})
    assert response.status_code == 400 and response.json()["fields"]["since"]
    assert clients["caretaker"].get(URL, {"limit": "many"}).status_code == 400


def test_sync_query_count_does_not_grow(world, clients, django_assert_max_num_queries):
    for _ in range(3):
        TicketFactory(dwelling=world.home.dwelling)
    with django_assert_max_num_queries(40) as few:
        clients["caretaker"].get(URL)
    for _ in range(20):
        TicketFactory(dwelling=world.home.dwelling)
        DwellingFactory(entrance=world.home.entrance)
    with django_assert_max_num_queries(len(few.captured_queries)):
        clients["caretaker"].get(URL)
