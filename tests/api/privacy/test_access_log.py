"""The person sees which members of staff read their data, and when."""

import pytest
from rest_framework.test import APIClient

from api.accounts.models import PersonalDataAccess
from api.accounts.services import personal_data_access_record
from tests.conftest import client_for
from tests.factories import UserFactory, place_factory
from tests.factories.estate import AgencyMembershipFactory

URL = "/api/v1/privacy/access-log/"


@pytest.fixture
def home(db):
    place = place_factory()
    place.caretaker = UserFactory(
        organisation=place.organisation, role="caretaker", first_name="Paul", last_name="Durand"
    )
    personal_data_access_record(
        viewer=place.caretaker, subjects=[place.tenant], context="people.detail"
    )
    return place


def test_the_person_sees_who_read_their_data(home):
    neighbour = place_factory(residence=home.residence).tenant
    personal_data_access_record(viewer=home.caretaker, subjects=[neighbour], context="lease.list")
    response = client_for(home.tenant).get(URL)
    assert response.status_code == 200
    rows = response.json()["results"]
    assert len(rows) == 1
    assert rows[0]["who"] == "Paul Durand (Caretaker)"
    assert rows[0]["role"] == "caretaker"
    assert rows[0]["context"] == "people.detail"


@pytest.mark.parametrize(
    ("style", "expected"), [("initial", "Paul D. (Caretaker)"), ("role", "Caretaker")]
)
def test_the_landlord_chooses_how_staff_are_named(home, settings, style, expected):
    settings.PRIVACY_ACCESS_LOG_NAMES = style
    rows = client_for(home.tenant).get(URL).json()["results"]
    assert rows[0]["who"] == expected


def test_anonymous_is_refused():
    assert APIClient().get(URL).status_code == 401


def test_staff_reading_a_tenants_log_is_itself_logged(home):
    staff = AgencyMembershipFactory(agency=home.agency).user
    response = client_for(staff).get(
        URL,
        HTTP_X_ON_BEHALF_OF=str(home.tenant.pk),
        HTTP_X_ON_BEHALF_REASON="Question du locataire au téléphone",
    )
    assert response.status_code == 200
    assert PersonalDataAccess.objects.filter(
        viewer=staff, subject=home.tenant, context="privacy.access_log"
    ).exists()
    own = client_for(home.tenant).get(URL).json()["results"]
    assert {row["context"] for row in own} == {"people.detail", "privacy.access_log"}


def test_staff_cannot_read_the_log_of_someone_out_of_scope(home):
    other = place_factory(organisation=home.organisation).tenant
    staff = AgencyMembershipFactory(agency=home.agency).user
    response = client_for(staff).get(
        URL, HTTP_X_ON_BEHALF_OF=str(other.pk), HTTP_X_ON_BEHALF_REASON="x"
    )
    assert response.status_code == 404


def test_list_endpoints_pin_their_query_count(home, django_assert_max_num_queries):
    from tests.factories.privacy import ErasureRequestFactory, RectificationFactory

    for _ in range(5):
        personal_data_access_record(
            viewer=UserFactory(organisation=home.organisation, role="technician"),
            subjects=[home.tenant],
            context="people.detail",
        )
        ErasureRequestFactory(subject=place_factory(residence=home.residence).tenant)
        RectificationFactory(subject=home.tenant)
    tenant = client_for(home.tenant)
    with django_assert_max_num_queries(4):
        assert len(tenant.get(URL).json()["results"]) == 6
    with django_assert_max_num_queries(4):
        tenant.get("/api/v1/privacy/export/")
    staff = client_for(UserFactory(organisation=home.organisation, role="manager"))
    for url in ("/api/v1/privacy/erasure-requests/", "/api/v1/privacy/rectifications/"):
        with django_assert_max_num_queries(4):
            assert len(staff.get(url).json()["results"]) == 5
