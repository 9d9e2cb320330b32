"""Leases and households over the API: who sees what, the tenancy's dates, logged staff reads."""

import datetime as dt

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from api.accounts.models import PersonalDataAccess, User
from api.estate.models import EstateEvent, Lease
from tests.conftest import client_for
from tests.factories import DwellingFactory, LeaseFactory, TenantFactory
from tests.factories.estate import HouseholdMemberFactory

pytestmark = pytest.mark.django_db


def test_anonymous_is_refused():
    assert APIClient().get("/api/v1/leases/").status_code == 401


def test_agency_staff_create_a_lease_with_a_new_household(world, as_role):
    dwelling = DwellingFactory(entrance=world.home.entrance)
    response = as_role("agency_staff").post(
        "/api/v1/leases/",
        {
            "dwelling": str(dwelling.pk),
            "reference": "BAIL-2026-001",
            "start_date": str(timezone.localdate()),
            "members": [
                {
                    "relation": "holder",
                    "phone": "06 12 34 56 78",
                    "first_name": "Amina",
                    "last_name": "Benali",
                },
                {"relation": "occupant", "person": str(world.other_tenant.tenant.pk)},
            ],
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["is_current"] is True
    holder = User.objects.get(phone="+33612345678")
    assert holder.role == "tenant"
    assert holder.organisation == world.home.organisation
    assert {m["person"] for m in body["members"]} == {
        str(holder.pk),
        str(world.other_tenant.tenant.pk),
    }
    assert EstateEvent.objects.filter(subject_id=body["id"], kind="created").exists()

    mine = client_for(holder).get("/api/v1/dwellings/")
    assert [d["id"] for d in mine.json()["results"]] == [str(dwelling.pk)]


def test_lease_dates_cannot_overlap(world, as_role):
    response = as_role("manager").post(
        "/api/v1/leases/",
        {
            "dwelling": str(world.home.dwelling.pk),
            "reference": "BAIL-OVERLAP",
            "start_date": str(timezone.localdate()),
            "members": [{"relation": "holder", "phone": "+33699999999"}],
        },
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["code"] == "lease_overlap"
    assert not User.objects.filter(phone="+33699999999").exists(), "rolled back"


@pytest.mark.parametrize(
    "members",
    [
        [{"relation": "occupant", "phone": "+33699999998"}],
        [
            {"relation": "holder", "phone": "+33699999998"},
            {"relation": "holder", "phone": "+33699999997"},
        ],
    ],
    ids=["no-holder", "two-holders"],
)
def test_a_lease_has_exactly_one_holder(world, as_role, members):
    response = as_role("manager").post(
        "/api/v1/leases/",
        {
            "dwelling": str(DwellingFactory(entrance=world.home.entrance).pk),
            "reference": "BAIL-X",
            "start_date": "2026-01-01",
            "members": members,
        },
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["code"] == "one_holder"


def test_a_staff_phone_cannot_become_a_tenant(world, as_role):
    caretaker = world.users["caretaker"]
    response = as_role("manager").post(
        "/api/v1/leases/",
        {
            "dwelling": str(DwellingFactory(entrance=world.home.entrance).pk),
            "reference": "BAIL-Y",
            "start_date": "2026-01-01",
            "members": [{"relation": "holder", "phone": str(caretaker.phone)}],
        },
        format="json",
    )
    assert response.status_code == 400
    assert "members.0.phone" in response.json()["fields"]


def test_ending_a_lease_ends_the_households_access(world, as_role):
    tenant_client = as_role("tenant")
    url = f"/api/v1/dwellings/{world.home.dwelling.pk}/"
    assert tenant_client.get(url).status_code == 200
    yesterday = timezone.localdate() - dt.timedelta(days=1)
    ended = as_role("agency_staff").post(
        f"/api/v1/leases/{world.home.lease.pk}/end/", {"end_date": str(yesterday)}, format="json"
    )
    assert ended.status_code == 200
    assert ended.json()["is_current"] is False
    assert tenant_client.get(url).status_code == 404
    assert EstateEvent.objects.filter(subject_id=world.home.lease.pk, kind="lease_ended").exists()

    before_start = as_role("agency_staff").post(
        f"/api/v1/leases/{world.home.lease.pk}/end/", {"end_date": "2000-01-01"}, format="json"
    )
    assert before_start.status_code == 400


def test_new_tenant_never_sees_the_previous_lease(world):
    world.home.lease.end_date = timezone.localdate() - dt.timedelta(days=1)
    world.home.lease.save()
    newcomer = TenantFactory(organisation=world.home.organisation)
    lease = LeaseFactory(dwelling=world.home.dwelling, start_date=timezone.localdate())
    HouseholdMemberFactory(lease=lease, person=newcomer)
    client = client_for(newcomer)
    listed = client.get("/api/v1/leases/").json()["results"]
    assert [item["id"] for item in listed] == [str(lease.pk)]
    assert client.get(f"/api/v1/leases/{world.home.lease.pk}/").status_code == 404


def test_household_contact_details_follow_the_allowlist(world, as_role):
    lease = world.home.lease
    partner = TenantFactory(organisation=world.home.organisation, email="p@example.org")
    HouseholdMemberFactory(lease=lease, person=partner, relation="co_holder")

    as_tenant = as_role("tenant").get(f"/api/v1/leases/{lease.pk}/").json()
    by_person = {m["person"]: m for m in as_tenant["members"]}
    assert by_person[str(world.home.tenant.pk)]["phone"] == str(world.home.tenant.phone)
    assert by_person[str(partner.pk)]["phone"] is None
    assert by_person[str(partner.pk)]["email"] is None
    assert by_person[str(partner.pk)]["first_name"] == partner.first_name

    as_delegate = as_role("delegate").get(f"/api/v1/leases/{lease.pk}/").json()
    assert all(m["phone"] is None for m in as_delegate["members"])

    as_caretaker = as_role("caretaker").get(f"/api/v1/leases/{lease.pk}/").json()
    assert {m["phone"] for m in as_caretaker["members"]} == {
        str(world.home.tenant.phone),
        str(partner.phone),
    }


def test_staff_reads_of_a_household_are_logged(world, as_role):
    as_role("caretaker").get(f"/api/v1/leases/{world.home.lease.pk}/")
    as_role("manager").get("/api/v1/leases/")
    as_role("tenant").get("/api/v1/leases/")
    reads = PersonalDataAccess.objects.filter(subject=world.home.tenant)
    assert {(r.viewer_id, r.context) for r in reads} == {
        (world.users["caretaker"].pk, "lease.detail"),
        (world.users["manager"].pk, "lease.list"),
    }


def test_household_members_are_added_and_removed(world, as_role):
    client = as_role("agency_staff")
    url = f"/api/v1/leases/{world.home.lease.pk}/members/"
    added = client.post(
        url, {"relation": "occupant", "phone": "+33688888888", "first_name": "Léo"}, format="json"
    )
    assert added.status_code == 201, added.json()
    again = client.post(url, {"relation": "occupant", "phone": "+33688888888"}, format="json")
    assert again.status_code == 400
    second_holder = client.post(url, {"relation": "holder", "phone": "+33677777777"}, format="json")
    assert second_holder.json()["code"] == "one_holder"

    removed = client.delete(f"{url}{added.json()['id']}/")
    assert removed.status_code == 204
    holder = world.home.lease.members.get()
    refused = client.delete(f"{url}{holder.pk}/")
    assert refused.status_code == 400
    assert refused.json()["code"] == "holder_required"
    assert client.delete(f"{url}{added.json()['id']}/").status_code == 404


def test_lease_filters(world, as_role):
    world.other_tenant.lease.end_date = timezone.localdate() - dt.timedelta(days=1)
    world.other_tenant.lease.save()
    client = as_role("manager")
    current = client.get("/api/v1/leases/", {"current": "true"}).json()["results"]
    assert str(world.other_tenant.lease.pk) not in {lease["id"] for lease in current}
    person = client.get("/api/v1/leases/", {"person": str(world.home.tenant.pk)}).json()
    assert [lease["id"] for lease in person["results"]] == [str(world.home.lease.pk)]


@pytest.mark.parametrize("role", ["tenant", "agency_staff"])
def test_lease_list_query_count(world, as_role, django_assert_max_num_queries, role):
    for _ in range(15):
        lease = LeaseFactory(dwelling=DwellingFactory(entrance=world.home.entrance))
        HouseholdMemberFactory(lease=lease)
        HouseholdMemberFactory(lease=lease, person=world.home.tenant, relation="occupant")
    assert Lease.objects.count() > 15
    with django_assert_max_num_queries(7):
        response = as_role(role).get("/api/v1/leases/")
    assert response.json()["count"] >= 15
