"""The caretaker's queue answers in a constant number of queries (bench/ measures its time)."""

import pytest

from tests.factories import CommonAreaFactory, DwellingFactory
from tests.factories.estate import ContractorFactory, TeamFactory
from tests.factories.tickets import TicketFactory, common_area_ticket

pytestmark = pytest.mark.django_db

# The person behind the token, the count, the page's ids, then the page's rows.
QUEUE_QUERIES = 4


def _fill(world, count):
    organisation = world.home.organisation
    team = TeamFactory(organisation=organisation)
    contractor = ContractorFactory(organisation=organisation)
    hall = CommonAreaFactory(entrance=world.home.entrance)
    for index in range(count):
        if index % 3 == 0:
            common_area_ticket(hall, assigned_contractor=contractor)
        else:
            dwelling = DwellingFactory(entrance=world.home.entrance)
            TicketFactory(dwelling=dwelling, assigned_team=team, status="acknowledged")


@pytest.mark.parametrize("count", [5, 60])
def test_the_queue_takes_a_fixed_number_of_queries(
    world, clients, count, django_assert_num_queries
):
    _fill(world, count)
    with django_assert_num_queries(QUEUE_QUERIES):
        response = clients["caretaker"].get("/api/v1/tickets/", {"open": "true", "page_size": 200})
    assert response.json()["count"] == count
