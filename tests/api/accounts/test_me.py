"""GET and PATCH /api/v1/me/: the person, their roles, language and scope."""

import datetime as dt

import pytest
from django.utils import timezone

from tests.conftest import client_for
from tests.factories import DelegationFactory, LeaseFactory, UserFactory, place_factory
from tests.factories.estate import CaretakerAssignmentFactory, HouseholdMemberFactory

ME = "/api/v1/me/"


@pytest.fixture
def place(db):
    return place_factory()


@pytest.mark.django_db
def test_anonymous_is_refused(api_client):
    assert api_client.get(ME).status_code == 401
    assert api_client.patch(ME, {"language": "en"}).status_code == 401


@pytest.mark.django_db
def test_a_tenant_sees_themselves_their_roles_and_their_home(place, django_assert_max_num_queries):
    tenant = place.tenant
    client = client_for(tenant)
    with django_assert_max_num_queries(12):
        answer = client.get(ME)
    assert answer.status_code == 200
    me = answer.json()
    assert me["id"] == str(tenant.id)
    assert me["first_name"] == tenant.first_name
    assert me["last_name"] == tenant.last_name
    assert me["phone"] == str(tenant.phone)
    assert me["email"] is None
    assert me["role"] == "tenant"
    assert me["roles"] == ["tenant"]
    assert me["language"] == "fr"
    scope = me["scope"]
    assert scope["organisation"]["id"] == str(place.organisation.id)
    assert [d["id"] for d in scope["dwellings"]] == [str(place.dwelling.id)]
    assert scope["dwellings"][0]["via"] == "household"


@pytest.mark.django_db
def test_a_former_tenant_has_no_role_and_sees_no_home(place):
    place.lease.end_date = timezone.localdate() - dt.timedelta(days=1)
    place.lease.save()
    me = client_for(place.tenant).get(ME).json()
    assert me["role"] == "tenant"
    assert me["roles"] == []
    assert me["scope"]["dwellings"] == []


@pytest.mark.django_db
def test_a_new_tenant_does_not_see_the_previous_home(place):
    newcomer = UserFactory(organisation=place.organisation)
    later = LeaseFactory(
        dwelling=place.dwelling, start_date=timezone.localdate() + dt.timedelta(days=30)
    )
    HouseholdMemberFactory(lease=later, person=newcomer)
    assert client_for(newcomer).get(ME).json()["roles"] == []


@pytest.mark.django_db
def test_a_delegate_is_shown_as_such_with_the_grantors_home(place):
    delegation = DelegationFactory(grantor=place.tenant)
    me = client_for(delegation.delegate).get(ME).json()
    assert me["roles"] == ["delegate"]
    assert [(d["id"], d["via"]) for d in me["scope"]["dwellings"]] == [
        (str(place.dwelling.id), "delegation")
    ]


@pytest.mark.django_db
def test_a_revoked_delegation_is_no_role(place):
    delegation = DelegationFactory(grantor=place.tenant, revoked_at=timezone.now())
    assert client_for(delegation.delegate).get(ME).json()["roles"] == []


@pytest.mark.django_db
def test_a_caretaker_who_also_rents_holds_both_roles(place):
    caretaker = CaretakerAssignmentFactory(residence=place.residence).caretaker
    HouseholdMemberFactory(lease=place.lease, person=caretaker, relation="occupant")
    me = client_for(caretaker).get(ME).json()
    assert me["role"] == "caretaker"
    assert me["roles"] == ["caretaker", "tenant"]
    assert [r["id"] for r in me["scope"]["residences"]] == [str(place.residence.id)]


@pytest.mark.django_db
def test_a_manager_sees_their_organisation(place):
    manager = UserFactory(
        organisation=place.organisation, role="manager", email="m@x.example", phone=None
    )
    me = client_for(manager).get(ME).json()
    assert me["roles"] == ["manager"]
    assert me["phone"] is None
    assert me["email"] == "m@x.example"
    assert me["scope"]["organisation"]["slug"] == place.organisation.slug
    assert me["scope"]["dwelling_count"] == 1


@pytest.mark.django_db
def test_a_person_changes_their_language_and_names(place):
    client = client_for(place.tenant)
    answer = client.patch(ME, {"language": "ar", "first_name": "  Amina ", "last_name": "Benali"})
    assert answer.status_code == 200
    assert answer.json()["language"] == "ar"
    assert answer.json()["first_name"] == "Amina"
    place.tenant.refresh_from_db()
    assert (place.tenant.language, place.tenant.first_name, place.tenant.last_name) == (
        "ar",
        "Amina",
        "Benali",
    )
    assert client.patch(ME, {"language": "fr-falc"}).json()["language"] == "fr-falc"
    assert client.patch(ME, {}).status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body",
    [
        {"language": "de"},
        {"first_name": "x" * 151},
        {"last_name": None},
        {"first_name": "nul\x00char"},
    ],
)
def test_invalid_changes_are_refused_field_by_field(place, body):
    answer = client_for(place.tenant).patch(ME, body, format="json")
    assert answer.status_code == 400
    assert answer.json()["code"] == "validation_error"
    assert set(answer.json()["fields"]) == set(body)


@pytest.mark.django_db
def test_role_and_phone_cannot_be_changed_here(place):
    client = client_for(place.tenant)
    answer = client.patch(ME, {"role": "admin", "phone": "+33699999999", "email": "a@b.example"})
    assert answer.status_code == 200
    place.tenant.refresh_from_db()
    assert place.tenant.role == "tenant"
    assert str(place.tenant.phone) != "+33699999999"
    assert place.tenant.email is None
