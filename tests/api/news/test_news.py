"""Residence news and works: the tenant feed, scheduled and emergency posts, files, and
access requests every household must acknowledge."""

import datetime as dt

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from api.news.services import post_create, posts_publish_due
from api.notifications.models import Notification
from tests.conftest import client_for
from tests.factories import DelegationFactory, place_factory
from tests.factories.estate import CaretakerAssignmentFactory
from tests.factories.news import PostFactory
from tests.factories.notifications import PushDeviceFactory

pytestmark = pytest.mark.django_db

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture
def home():
    return place_factory()


@pytest.fixture
def caretaker(home):
    return CaretakerAssignmentFactory(residence=home.residence).caretaker


def test_the_feed_shows_posts_for_the_tenants_places_only(home, django_assert_max_num_queries):
    mine = PostFactory(building=home.building)
    residence_wide = PostFactory(residence=home.residence, building=None)
    other_building = PostFactory(building=place_factory(residence=home.residence).building)
    scheduled = PostFactory(
        building=home.building, publish_at=timezone.now() + dt.timedelta(days=1), notified_at=None
    )
    client = client_for(home.tenant)
    with django_assert_max_num_queries(8):
        response = client.get("/api/v1/news/")
    ids = {p["id"] for p in response.json()["results"]}
    assert ids == {str(mine.pk), str(residence_wide.pk)}
    assert client.get(f"/api/v1/news/{other_building.pk}/").status_code == 404
    assert client.get(f"/api/v1/news/{scheduled.pk}/").status_code == 404


def test_emergency_posts_are_pinned_first_and_pushed_as_critical(home, caretaker):
    PushDeviceFactory(user=home.tenant)
    PostFactory(building=home.building, publish_at=timezone.now() - dt.timedelta(hours=1))
    response = client_for(caretaker).post(
        "/api/v1/news/",
        {
            "kind": "emergency",
            "title": "Fuite de gaz : n'utilisez pas l'ascenseur",
            "building": str(home.building.pk),
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    assert response.json()["pinned"] is True
    feed = client_for(home.tenant).get("/api/v1/news/").json()["results"]
    assert feed[0]["id"] == response.json()["id"]
    assert feed[0]["pinned_now"] is True
    notice = Notification.objects.get(recipient=home.tenant, event="news.emergency")
    assert notice.critical
    assert notice.deep_link == f"palier://news/{response.json()['id']}"
    assert set(notice.deliveries.values_list("channel", flat=True)) == {"push", "sms"}


def test_ordinary_news_never_goes_by_sms(home, caretaker):
    post_create(actor=caretaker, title="Fête des voisins", building=home.building)
    notice = Notification.objects.get(recipient=home.tenant)
    assert notice.event == "news.published"
    assert not notice.deliveries.exists()  # no app, no e-mail: the feed and inbox only


def test_scheduled_posts_are_published_and_told_when_due(home, caretaker):
    post = post_create(
        actor=caretaker,
        kind="water_cut",
        title="Remplacement de la colonne d'eau",
        building=home.building,
        publish_at=timezone.now() + dt.timedelta(hours=2),
        starts_at=timezone.now() + dt.timedelta(days=2),
    )
    assert not Notification.objects.exists()
    assert posts_publish_due() == 0
    assert posts_publish_due(now=timezone.now() + dt.timedelta(hours=3)) == 1
    notice = Notification.objects.get(recipient=home.tenant)
    assert notice.event == "broadcast.water_cut"
    assert notice.critical
    assert "Remplacement de la colonne d'eau" in notice.body
    post.refresh_from_db()
    assert post.notified_at is not None
    assert posts_publish_due(now=timezone.now() + dt.timedelta(hours=4)) == 0


def test_access_requests_are_acknowledged_per_household_and_staff_see_who_has_not(home, caretaker):
    neighbour = place_factory(entrance=home.entrance)
    helper = DelegationFactory(grantor=neighbour.tenant).delegate
    post = post_create(
        actor=caretaker, kind="access_request", title="Relevé des compteurs", entrance=home.entrance
    )
    assert post.requires_acknowledgement
    response = client_for(home.tenant).post(f"/api/v1/news/{post.pk}/acknowledge/")
    assert response.status_code == 200
    assert client_for(home.tenant).post(f"/api/v1/news/{post.pk}/acknowledge/").status_code == 200
    assert client_for(home.tenant).get(f"/api/v1/news/{post.pk}/").json()["acknowledged"] is True
    staff_view = client_for(caretaker).get(f"/api/v1/news/{post.pk}/acknowledgements/").json()
    assert staff_view["households"] == 2
    assert staff_view["acknowledged"] == 1
    missing = [row for row in staff_view["rows"] if row["acknowledged_at"] is None]
    assert [row["dwelling"] for row in missing] == [str(neighbour.dwelling.pk)]
    # A relative with a delegation answers for the household.
    on_behalf = client_for(helper).post(
        f"/api/v1/news/{post.pk}/acknowledge/", HTTP_X_ON_BEHALF_OF=str(neighbour.tenant.pk)
    )
    assert on_behalf.status_code == 200, on_behalf.content
    assert (
        client_for(caretaker).get(f"/api/v1/news/{post.pk}/acknowledgements/").json()["missing"]
        == 0
    )
    assert (
        client_for(home.tenant).get(f"/api/v1/news/{post.pk}/acknowledgements/").status_code == 403
    )


def test_staff_attach_files_tenants_download_them(home, caretaker):
    post = PostFactory(building=home.building)
    client = client_for(caretaker)
    upload = SimpleUploadedFile("plan.png", PNG, content_type="image/png")
    response = client.post(
        f"/api/v1/news/{post.pk}/attachments/", {"file": upload}, format="multipart"
    )
    assert response.status_code == 201, response.content
    attachment = response.json()
    assert attachment["content_type"] == "image/png"
    download = client_for(home.tenant).get(
        f"/api/v1/news/{post.pk}/attachments/{attachment['id']}/"
    )
    assert download.status_code == 200
    assert download["Content-Type"] == "image/png"
    assert b"".join(download.streaming_content) == PNG
    fake = SimpleUploadedFile("virus.pdf", b"MZ\x90\x00", content_type="application/pdf")
    refused = client.post(
        f"/api/v1/news/{post.pk}/attachments/", {"file": fake}, format="multipart"
    )
    assert refused.status_code == 400
    assert (
        client_for(home.tenant)
        .delete(f"/api/v1/news/{post.pk}/attachments/{attachment['id']}/")
        .status_code
        == 403
    )
    assert (
        client.delete(f"/api/v1/news/{post.pk}/attachments/{attachment['id']}/").status_code == 204
    )


def test_tenants_cannot_post_and_staff_cannot_post_outside_their_scope(home, caretaker):
    body = {"title": "x", "building": str(home.building.pk)}
    assert client_for(home.tenant).post("/api/v1/news/", body, format="json").status_code == 403
    elsewhere = place_factory()
    response = client_for(caretaker).post(
        "/api/v1/news/", {"title": "x", "building": str(elsewhere.building.pk)}, format="json"
    )
    assert response.status_code == 400
    assert "building" in response.json()["fields"]


def test_renovation_blog_posts_are_filtered_by_project(home):
    PostFactory(building=home.building, kind="works", project="Réhabilitation 2026")
    PostFactory(building=home.building, kind="works", project="Réhabilitation 2026")
    PostFactory(building=home.building)
    response = client_for(home.tenant).get("/api/v1/news/", {"project": "Réhabilitation 2026"})
    assert response.json()["count"] == 2
