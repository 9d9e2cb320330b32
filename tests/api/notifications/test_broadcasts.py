"""Staff broadcasts: preview with SMS segments, send to every household, figures, and the
door-knocking list of households not reached."""

import datetime as dt

import pytest
from django.utils import timezone

from api.notifications import outbox
from api.notifications.models import HouseholdReach, Notification
from api.notifications.services import households_list_unreached, notifications_mark_read
from tests.conftest import client_for
from tests.factories import DelegationFactory, place_factory
from tests.factories.estate import AgencyMembershipFactory, CaretakerAssignmentFactory
from tests.factories.notifications import BroadcastFactory, PushDeviceFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def home():
    return place_factory()


@pytest.fixture
def staff(home):
    return AgencyMembershipFactory(agency=home.agency).user


@pytest.fixture
def staff_client(staff):
    return client_for(staff)


def _neighbours(home, count):
    return [place_factory(entrance=home.entrance) for _ in range(count)]


def test_staff_drafts_previews_and_sends_a_water_cut(home, staff, staff_client, outbox_dir):
    neighbours = _neighbours(home, 3)
    neighbours[0].tenant.language = "ar"
    neighbours[0].tenant.save()
    PushDeviceFactory(user=neighbours[1].tenant)
    starts = (timezone.now() + dt.timedelta(days=1)).replace(
        hour=8, minute=0, second=0, microsecond=0
    )
    response = staff_client.post(
        "/api/v1/broadcasts/",
        {
            "kind": "water_cut",
            "building": str(home.building.pk),
            "critical": True,
            "starts_at": starts.isoformat(),
            "ends_at": (starts + dt.timedelta(hours=4)).isoformat(),
            "message": "Remplissez des bouteilles.",
            "translations": {"ar": "املأوا بعض الزجاجات."},
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    broadcast_id = response.json()["id"]
    assert response.json()["status"] == "draft"

    preview = staff_client.get(f"/api/v1/broadcasts/{broadcast_id}/preview/").json()
    assert preview["recipients"] == 4
    assert preview["households"] == 4
    assert preview["channels"] == {"sms": 3, "push": 1, "sms_if_unread": 1}
    by_language = {p["language"]: p for p in preview["languages"]}
    assert by_language["fr"]["sms"].startswith("Palier : coupure d'eau")
    assert by_language["fr"]["sms_segments"]["encoding"] == "GSM-7"
    assert by_language["ar"]["sms_segments"]["encoding"] == "UCS-2"
    assert by_language["ar"]["direction"] == "rtl"
    assert "املأوا" in by_language["ar"]["body"]
    assert by_language["fr-falc"]["title"] == "Il n'y aura pas d'eau"
    assert preview["sms_segments_total"] == (
        3 * by_language["fr"]["sms_segments"]["segments"]  # one is the later reminder
        + by_language["ar"]["sms_segments"]["segments"]
    )

    sent = staff_client.post(f"/api/v1/broadcasts/{broadcast_id}/send/")
    assert sent.status_code == 200
    assert sent.json()["status"] == "sent"
    assert staff_client.post(f"/api/v1/broadcasts/{broadcast_id}/send/").status_code == 409
    assert (
        staff_client.patch(
            f"/api/v1/broadcasts/{broadcast_id}/", {"message": "x"}, format="json"
        ).status_code
        == 409
    )
    assert Notification.objects.filter(broadcast_id=broadcast_id).count() == 4
    assert HouseholdReach.objects.filter(broadcast_id=broadcast_id).count() == 4

    outbox.drain()
    stats = staff_client.get(f"/api/v1/broadcasts/{broadcast_id}/stats/").json()
    assert stats["notifications"] == 4
    assert stats["channels"]["sms"]["sent"] == 3
    assert stats["channels"]["sms"]["queued"] == 1  # the reminder of the one with the app
    assert stats["channels"]["push"]["sent"] == 1
    assert stats["households"] == {"total": 4, "reached": 0, "listed": 0, "visited": 0}


def test_a_critical_broadcast_also_reaches_the_tenants_delegates(home, staff):
    helper = DelegationFactory(grantor=home.tenant).delegate
    from api.notifications.services import broadcast_create, broadcast_send

    broadcast = broadcast_create(actor=staff, kind="gas_cut", building=home.building, critical=True)
    broadcast_send(actor=staff, broadcast=broadcast)
    recipients = set(
        Notification.objects.filter(broadcast=broadcast).values_list("recipient", flat=True)
    )
    assert recipients == {home.tenant.pk, helper.pk}
    # The relative read it: the household counts as reached.
    notifications_mark_read(user=helper)
    assert HouseholdReach.objects.get(broadcast=broadcast).reached_via == "app"


def test_staff_cannot_target_a_place_outside_their_scope(staff_client):
    elsewhere = place_factory()
    response = staff_client.post(
        "/api/v1/broadcasts/",
        {"kind": "works", "building": str(elsewhere.building.pk)},
        format="json",
    )
    assert response.status_code == 400
    assert "building" in response.json()["fields"]


def test_a_broadcast_needs_exactly_one_place_and_its_own_words_when_free(home, staff_client):
    response = staff_client.post(
        "/api/v1/broadcasts/",
        {"kind": "works", "building": str(home.building.pk), "entrance": str(home.entrance.pk)},
        format="json",
    )
    assert response.status_code == 400
    response = staff_client.post(
        "/api/v1/broadcasts/",
        {"kind": "information", "residence": str(home.residence.pk)},
        format="json",
    )
    assert response.json()["fields"] == {"message": ["Write the message of this notice."]}


def test_tenants_and_technicians_cannot_see_broadcasts(home):
    BroadcastFactory(building=home.building)
    assert client_for(home.tenant).get("/api/v1/broadcasts/").status_code == 403


def test_broadcast_list_has_a_constant_number_of_queries(
    home, staff_client, django_assert_max_num_queries
):
    for _ in range(5):
        BroadcastFactory(building=home.building)
    BroadcastFactory(entrance=home.entrance, building=None)
    with django_assert_max_num_queries(6):
        response = staff_client.get("/api/v1/broadcasts/")
    assert response.json()["count"] == 6


def test_unreached_households_go_to_the_caretakers_list(home, settings, outbox_dir):
    caretaker = CaretakerAssignmentFactory(residence=home.residence).caretaker
    neighbour = place_factory(entrance=home.entrance)
    staff = AgencyMembershipFactory(agency=home.agency).user
    from api.notifications.services import broadcast_create, broadcast_send

    broadcast = broadcast_create(
        actor=staff, kind="water_cut", entrance=home.entrance, critical=True
    )
    broadcast_send(actor=staff, broadcast=broadcast)
    notifications_mark_read(user=neighbour.tenant)
    assert households_list_unreached() == 0
    later = timezone.now() + dt.timedelta(minutes=settings.NOTIFY_NOT_REACHED_AFTER_MINUTES + 1)
    assert households_list_unreached(now=later) == 1
    told = Notification.objects.get(recipient=caretaker, event="household.not_reached")
    assert told.title == "Foyers à prévenir"
    assert "1 foyers" in told.body

    client = client_for(caretaker)
    listing = client.get("/api/v1/door-knocking/").json()
    assert listing["count"] == 1
    (row,) = listing["results"]
    assert row["dwelling"] == str(home.dwelling.pk)
    assert row["members"][0]["name"] == home.tenant.full_name
    assert row["members"][0]["deliveries"] == [{"channel": "sms", "status": "queued"}]

    visit = client.post(
        f"/api/v1/door-knocking/{row['id']}/visit/", {"outcome": "told"}, format="json"
    )
    assert visit.status_code == 200
    assert visit.json()["reached_via"] == "visit"
    assert client_for(home.tenant).get("/api/v1/door-knocking/").status_code == 403


def test_door_knocking_list_has_a_constant_number_of_queries(home, django_assert_max_num_queries):
    from tests.factories.notifications import HouseholdReachFactory

    caretaker = CaretakerAssignmentFactory(residence=home.residence).caretaker
    for _ in range(4):
        HouseholdReachFactory(dwelling=place_factory(entrance=home.entrance).dwelling)
    with django_assert_max_num_queries(10):
        response = client_for(caretaker).get("/api/v1/door-knocking/")
    assert response.json()["count"] == 4
