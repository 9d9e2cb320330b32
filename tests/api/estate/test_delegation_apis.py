"""Delegations, acting on someone's behalf, and the people directory over the API."""

import datetime as dt

import pytest
from django.test import RequestFactory
from django.utils import timezone
from rest_framework.exceptions import NotFound
from rest_framework.test import APIClient

from api.accounts.models import PersonalDataAccess, User
from api.core.exceptions import ServiceError
from api.estate.acting import acting_context
from api.estate.models import Delegation, EstateEvent
from tests.conftest import client_for
from tests.factories import DelegationFactory, TenantFactory, UserFactory
from tests.factories.estate import HouseholdMemberFactory

pytestmark = pytest.mark.django_db


def _in(days: float) -> str:
    return (timezone.now() + dt.timedelta(days=days)).isoformat()


def _grant(client, *, phone="+33655555555", days=30, headers=None, **extra):
    body = {"phone": phone, "relation": "home_helper", "expires_at": _in(days), **extra}
    return client.post("/api/v1/delegations/", body, format="json", **(headers or {}))


def test_anonymous_is_refused():
    assert APIClient().get("/api/v1/delegations/").status_code == 401
    assert APIClient().get("/api/v1/people/").status_code == 401


def test_tenant_grants_a_delegation_the_helper_uses_then_it_is_revoked(world, as_role):
    tenant_client = as_role("tenant")
    granted = _grant(tenant_client, first_name="Sophie", can_create_requests=False)
    assert granted.status_code == 201, granted.json()
    body = granted.json()
    assert body["is_active"] is True
    assert body["delegate"]["phone"] == "+33655555555", "the grantor sees who they chose"
    helper = User.objects.get(phone="+33655555555")
    assert (helper.role, helper.organisation) == ("tenant", world.home.organisation)

    helper_client = client_for(helper)
    received = helper_client.get("/api/v1/delegations/", {"direction": "received"}).json()
    assert [d["id"] for d in received["results"]] == [body["id"]]
    assert received["results"][0]["grantor"]["phone"] is None
    dwellings = helper_client.get("/api/v1/dwellings/").json()["results"]
    assert [d["id"] for d in dwellings] == [str(world.home.dwelling.pk)]

    given = tenant_client.get("/api/v1/delegations/", {"direction": "given", "active": "true"})
    assert body["id"] in {d["id"] for d in given.json()["results"]}

    revoked = tenant_client.post(f"/api/v1/delegations/{body['id']}/revoke/", {}, format="json")
    assert revoked.status_code == 200
    assert revoked.json()["is_active"] is False
    assert not helper_client.get("/api/v1/dwellings/").json()["results"]
    twice = tenant_client.post(f"/api/v1/delegations/{body['id']}/revoke/", {}, format="json")
    assert twice.status_code == 400
    kinds = set(EstateEvent.objects.filter(subject_id=body["id"]).values_list("kind", flat=True))
    assert kinds == {"delegation_granted", "delegation_revoked"}


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"days": 400}, "expires_at"),
        ({"days": -1}, "expires_at"),
        ({"days": 5000}, "expires_at"),
        ({"phone": "not a phone"}, "phone"),
    ],
)
def test_delegation_input_is_checked(world, as_role, extra, field):
    response = _grant(as_role("tenant"), **extra)
    assert response.status_code == 400
    assert field in response.json()["fields"]


def test_delegation_to_oneself_or_to_staff_is_refused(world, as_role):
    client = as_role("tenant")
    assert _grant(client, phone=str(world.home.tenant.phone)).status_code == 400
    assert _grant(client, phone=str(world.users["caretaker"].phone)).status_code == 400
    assert _grant(client, phone=str(world.users["delegate"].phone)).json()["code"] == (
        "already_delegated"
    )


def test_someone_without_a_lease_cannot_delegate(world):
    drifter = TenantFactory(organisation=world.home.organisation)
    response = _grant(client_for(drifter))
    assert response.status_code == 400
    assert response.json()["code"] == "not_a_tenant"


def test_a_delegate_cannot_pass_it_on(world, as_role):
    response = _grant(
        as_role("delegate"), headers={"HTTP_X_ON_BEHALF_OF": str(world.home.tenant.pk)}
    )
    assert response.status_code == 403
    assert not Delegation.objects.filter(delegate__phone="+33655555555").exists()


def test_agency_staff_grant_on_behalf_with_a_reason(world, as_role):
    client = as_role("agency_staff")
    tenant = world.home.tenant
    no_header = _grant(client)
    assert no_header.status_code == 400
    no_reason = _grant(client, headers={"HTTP_X_ON_BEHALF_OF": str(tenant.pk)})
    assert no_reason.status_code == 400
    assert "X-On-Behalf-Reason" in no_reason.json()["fields"]
    done = _grant(
        client,
        headers={
            "HTTP_X_ON_BEHALF_OF": str(tenant.pk),
            "HTTP_X_ON_BEHALF_REASON": "Demande au guichet de l'agence",
        },
    )
    assert done.status_code == 201, done.json()
    delegation = Delegation.objects.get(pk=done.json()["id"])
    assert delegation.grantor == tenant
    assert delegation.created_by == world.users["agency_staff"]
    event = EstateEvent.objects.get(subject_id=delegation.pk)
    assert (event.actor, event.on_behalf_of) == (world.users["agency_staff"], tenant)
    assert event.reason == "Demande au guichet de l'agence"


def test_agency_staff_cannot_act_for_a_tenant_out_of_scope(world, as_role):
    response = _grant(
        as_role("agency_staff"),
        headers={
            "HTTP_X_ON_BEHALF_OF": str(world.other_residence.tenant.pk),
            "HTTP_X_ON_BEHALF_REASON": "x",
        },
    )
    assert response.status_code == 404


def test_the_delegate_may_renounce(world, as_role):
    delegation = world.home.tenant.delegations_given.get()
    response = as_role("delegate").post(
        f"/api/v1/delegations/{delegation.pk}/revoke/", {"reason": "plus besoin"}, format="json"
    )
    assert response.status_code == 200
    delegation.refresh_from_db()
    assert delegation.revoked_by == world.users["delegate"]


def _request(user, **headers):
    request = RequestFactory().get("/", **headers)
    request.user = user
    return request


def test_acting_context(world):
    tenant, delegate = world.home.tenant, world.users["delegate"]
    alone = acting_context(_request(delegate))
    assert (alone.actor, alone.on_behalf_of, alone.subject) == (delegate, None, delegate)

    acting = acting_context(_request(delegate, HTTP_X_ON_BEHALF_OF=str(tenant.pk)))
    assert acting.on_behalf_of == tenant
    assert acting.subject == tenant
    assert acting.may_create_requests is True

    with pytest.raises(NotFound):
        acting_context(_request(delegate, HTTP_X_ON_BEHALF_OF=str(world.other_tenant.tenant.pk)))
    with pytest.raises(ServiceError):
        acting_context(_request(delegate, HTTP_X_ON_BEHALF_OF="not-a-uuid"))
    with pytest.raises(ServiceError):
        acting_context(_request(delegate, HTTP_X_ON_BEHALF_OF=str(delegate.pk)))
    with pytest.raises(ServiceError) as refused:
        acting_context(_request(world.users["caretaker"], HTTP_X_ON_BEHALF_OF=str(tenant.pk)))
    assert refused.value.code == "acting_not_allowed"

    manager = acting_context(
        _request(
            world.users["manager"],
            HTTP_X_ON_BEHALF_OF=str(world.other_residence.tenant.pk),
            HTTP_X_ON_BEHALF_REASON="Appel du locataire",
        )
    )
    assert manager.on_behalf_of == world.other_residence.tenant
    assert manager.reason == "Appel du locataire"
    with pytest.raises(NotFound):
        acting_context(
            _request(
                world.users["manager"],
                HTTP_X_ON_BEHALF_OF=str(world.users["caretaker"].pk),
                HTTP_X_ON_BEHALF_REASON="x",
            )
        )


def test_view_only_delegation(world):
    delegation = world.home.tenant.delegations_given.get()
    delegation.can_create_requests = False
    delegation.save()
    acting = acting_context(
        _request(world.users["delegate"], HTTP_X_ON_BEHALF_OF=str(world.home.tenant.pk))
    )
    assert acting.may_create_requests is False


def test_people_for_staff_with_search_filters_and_a_logged_read(world, as_role):
    client = as_role("agency_staff")
    tenant = world.home.tenant
    listed = client.get("/api/v1/people/", {"search": tenant.last_name, "role": "tenant"})
    assert listed.status_code == 200
    assert str(tenant.pk) in {p["id"] for p in listed.json()["results"]}
    detail = client.get(f"/api/v1/people/{tenant.pk}/").json()
    assert detail["phone"] == str(tenant.phone)
    assert detail["dwellings"] == [
        {"id": str(world.home.dwelling.pk), "reference": world.home.dwelling.reference}
    ]
    contexts = set(
        PersonalDataAccess.objects.filter(subject=tenant).values_list("context", flat=True)
    )
    assert contexts == {"people.list", "people.detail"}

    by_residence = client.get("/api/v1/people/", {"residence": str(world.home.residence.pk)})
    assert {p["id"] for p in by_residence.json()["results"]} == {
        str(tenant.pk),
        str(world.other_tenant.tenant.pk),
    }


def test_people_is_for_staff_only_and_field_staff_see_less(world, as_role):
    assert as_role("tenant").get("/api/v1/people/").status_code == 403
    assert as_role("contractor").get("/api/v1/people/").status_code == 403
    with_email = UserFactory(organisation=world.home.organisation, email="locataire@example.org")
    HouseholdMemberFactory(lease=world.home.lease, person=with_email, relation="occupant")
    as_caretaker = as_role("caretaker").get(f"/api/v1/people/{with_email.pk}/").json()
    assert as_caretaker["email"] is None
    assert as_caretaker["phone"] == str(with_email.phone)
    as_manager = as_role("manager").get(f"/api/v1/people/{with_email.pk}/").json()
    assert as_manager["email"] == "locataire@example.org"


@pytest.mark.parametrize("route", ["people", "delegations"])
def test_list_query_counts(world, as_role, django_assert_max_num_queries, route):
    for _ in range(15):
        DelegationFactory(grantor=world.home.tenant, delegate__organisation=world.home.organisation)
    with django_assert_max_num_queries(7):
        response = as_role("manager").get(f"/api/v1/{route}/")
    assert response.json()["count"] >= 15
