"""List endpoints cost the same number of queries for one row or many."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.conftest import client_for
from tests.factories.audits import AuditFactory, RoundFactory, SurveyResponseFactory

pytestmark = pytest.mark.django_db

LISTS = [
    "/api/v1/audits/",
    "/api/v1/audit-rounds/",
    "/api/v1/audit-templates/",
    "/api/v1/audit-scores/?group=entrance",
    "/api/v1/audit-reports/",
    "/api/v1/cleanliness-surveys/",
]


def _add(site):
    from tests.factories.estate import EntranceFactory

    entrance = EntranceFactory(building=site.entrance.building)
    AuditFactory(entrance=entrance, contractor=site.contractor)
    RoundFactory(residence=site.residence, targets=[entrance, site.entrance])
    SurveyResponseFactory(entrance=entrance)


def _counts(client) -> dict:
    counts = {}
    for url in LISTS:
        with CaptureQueriesContext(connection) as queries:
            assert client.get(url).status_code == 200
        counts[url] = len(queries)
    return counts


def test_list_queries_do_not_grow_with_rows(site):
    client = client_for(site.auditor)
    _add(site)
    one = _counts(client)
    for _ in range(4):
        _add(site)
    assert _counts(client) == one
