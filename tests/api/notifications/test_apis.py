"""Endpoints of the notifications app: inbox, preferences, devices, delivery reports."""

import hashlib
import hmac
import json

import pytest
from django.utils import timezone

from api.notifications.models import Delivery, PushDevice
from api.notifications.services import notify
from tests.conftest import client_for
from tests.factories import UserFactory
from tests.factories.notifications import PushDeviceFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def tenant():
    return UserFactory(language="fr")


@pytest.fixture
def client(tenant):
    return client_for(tenant)


def test_anonymous_callers_get_401(api_client):
    for url in (
        "/api/v1/notifications/",
        "/api/v1/notification-preferences/",
        "/api/v1/push-devices/",
    ):
        assert api_client.get(url).status_code == 401


def test_inbox_lists_only_the_callers_notifications(client, tenant, django_assert_max_num_queries):
    notify(
        recipients=[tenant],
        event="ticket.created",
        context={"reference": "T-1", "category": "Fuite"},
    )
    notify(recipients=[tenant], event="x", context={})
    (theirs,) = notify(recipients=[UserFactory()], event="x", context={})
    with django_assert_max_num_queries(5):
        response = client.get("/api/v1/notifications/")
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 2
    assert str(theirs.id) not in {n["id"] for n in body["results"]}
    assert body["results"][1]["title"] == "Demande T-1 enregistrée"
    assert body["results"][1]["deliveries"] == [{"channel": "sms", "status": "queued"}]
    assert client.get(f"/api/v1/notifications/{theirs.id}/").status_code == 404
    assert client.post(f"/api/v1/notifications/{theirs.id}/read/").status_code == 404
    assert client.get("/api/v1/notifications/not-a-uuid/").status_code == 404


def test_mark_one_read_and_filter_unread(client, tenant):
    first, second = (notify(recipients=[tenant], event="x", context={})[0] for _ in range(2))
    response = client.post(f"/api/v1/notifications/{first.id}/read/")
    assert response.status_code == 200
    assert response.json()["read_at"] is not None
    unread = client.get("/api/v1/notifications/", {"unread": "true"}).json()
    assert [n["id"] for n in unread["results"]] == [str(second.id)]
    assert client.post("/api/v1/notifications/read-all/").json() == {"marked": 1}
    assert client.get("/api/v1/notifications/", {"unread": "true"}).json()["count"] == 0


def test_arabic_notifications_say_they_read_right_to_left():
    person = UserFactory(language="ar")
    notify(recipients=[person], event="x", context={})
    (item,) = client_for(person).get("/api/v1/notifications/").json()["results"]
    assert item["direction"] == "rtl"
    assert item["language"] == "ar"


def test_preferences_show_how_the_person_is_reached_and_can_change(client, tenant):
    body = client.get("/api/v1/notification-preferences/").json()
    assert body["reachable_by"] == ["sms"]
    assert body["has_app"] is False
    PushDeviceFactory(user=tenant)
    response = client.patch(
        "/api/v1/notification-preferences/",
        {"quiet_start": "21:30", "quiet_end": "07:30", "language": "fr-falc", "sms_enabled": False},
        format="json",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["quiet_start"] == "21:30"
    assert body["language"] == "fr-falc"
    assert body["has_app"] is True
    tenant.refresh_from_db()
    assert tenant.language == "fr-falc"
    cleared = client.patch(
        "/api/v1/notification-preferences/", {"quiet_start": None}, format="json"
    )
    assert cleared.json()["quiet_start"] is None


def test_preferences_refuse_what_cannot_work(client):
    response = client.patch(
        "/api/v1/notification-preferences/", {"email_enabled": True}, format="json"
    )
    assert response.status_code == 400
    assert "email_enabled" in response.json()["fields"]
    response = client.patch(
        "/api/v1/notification-preferences/", {"quiet_start": "22:00"}, format="json"
    )
    assert response.status_code == 400
    response = client.patch("/api/v1/notification-preferences/", {"language": "xx"}, format="json")
    assert response.status_code == 400


def test_push_devices_register_list_and_remove(client, tenant):
    response = client.post(
        "/api/v1/push-devices/",
        {"kind": "fcm", "token": "abc123", "platform": "android"},
        format="json",
    )
    assert response.status_code == 201
    device_id = response.json()["id"]
    assert "token" not in response.json()
    again = client.post("/api/v1/push-devices/", {"kind": "fcm", "token": "abc123"}, format="json")
    assert again.json()["id"] == device_id
    assert client.get("/api/v1/push-devices/").json()["count"] == 1
    other = client_for(UserFactory())
    assert other.delete(f"/api/v1/push-devices/{device_id}/").status_code == 404
    # The phone changed hands: the same token registered by someone else moves to them.
    assert (
        other.post(
            "/api/v1/push-devices/", {"kind": "fcm", "token": "abc123"}, format="json"
        ).status_code
        == 201
    )
    assert client.get("/api/v1/push-devices/").json()["count"] == 0
    assert PushDevice.objects.count() == 1


def test_web_push_subscriptions_need_an_https_endpoint_and_keys(client):
    response = client.post(
        "/api/v1/push-devices/", {"kind": "webpush", "token": "http://x"}, format="json"
    )
    assert response.status_code == 400
    response = client.post(
        "/api/v1/push-devices/",
        {"kind": "webpush", "token": "https://push.example/abc", "p256dh": "k", "auth": "a"},
        format="json",
    )
    assert response.status_code == 201


def _signed(body: dict, secret: str) -> tuple[str, str]:
    raw = json.dumps(body)
    return raw, "sha256=" + hmac.new(secret.encode(), raw.encode(), hashlib.sha256).hexdigest()


def test_delivery_reports_need_the_signature_and_update_the_status(api_client, settings, tenant):
    (notification,) = notify(recipients=[tenant], event="x", context={})
    delivery = notification.deliveries.get()
    Delivery.objects.filter(pk=delivery.pk).update(status="sent", provider_id="prov-1")
    url = "/api/v1/notifications/delivery-reports/sms/"
    raw, signature = _signed(
        {"provider_id": "prov-1", "status": "delivered"}, settings.NOTIFY_WEBHOOK_SECRET
    )
    assert api_client.post(url, raw, content_type="application/json").status_code == 403
    bad = api_client.post(
        url, raw, content_type="application/json", HTTP_X_PALIER_SIGNATURE="sha256=00"
    )
    assert bad.status_code == 403
    ok = api_client.post(
        url, raw, content_type="application/json", HTTP_X_PALIER_SIGNATURE=signature
    )
    assert ok.status_code == 200, ok.content
    assert ok.json()["status"] == "delivered"
    # A late "sent"-era report never moves it backwards; "read" marks the notification read.
    raw, signature = _signed(
        {"provider_id": "prov-1", "status": "read"}, settings.NOTIFY_WEBHOOK_SECRET
    )
    api_client.post(url, raw, content_type="application/json", HTTP_X_PALIER_SIGNATURE=signature)
    notification.refresh_from_db()
    assert notification.read_at is not None
    raw, signature = _signed(
        {"provider_id": "nope", "status": "read"}, settings.NOTIFY_WEBHOOK_SECRET
    )
    missing = api_client.post(
        url, raw, content_type="application/json", HTTP_X_PALIER_SIGNATURE=signature
    )
    assert missing.status_code == 404
    assert (
        api_client.post(
            "/api/v1/notifications/delivery-reports/fax/", raw, content_type="application/json"
        ).status_code
        == 404
    )


def test_delivery_reports_are_refused_without_a_configured_secret(api_client, settings):
    settings.NOTIFY_WEBHOOK_SECRET = ""
    raw, signature = _signed({"provider_id": "x", "status": "read"}, "")
    response = api_client.post(
        "/api/v1/notifications/delivery-reports/sms/",
        raw,
        content_type="application/json",
        HTTP_X_PALIER_SIGNATURE=signature,
    )
    assert response.status_code == 403


def test_read_receipts_from_the_provider_are_timestamped(settings, api_client, tenant):
    (notification,) = notify(recipients=[tenant], event="x", context={})
    delivery = notification.deliveries.get()
    Delivery.objects.filter(pk=delivery.pk).update(status="sent")
    at = timezone.now().replace(microsecond=0)
    raw, signature = _signed(
        {"delivery_id": str(delivery.pk), "status": "delivered", "at": at.isoformat()},
        settings.NOTIFY_WEBHOOK_SECRET,
    )
    api_client.post(
        "/api/v1/notifications/delivery-reports/sms/",
        raw,
        content_type="application/json",
        HTTP_X_PALIER_SIGNATURE=signature,
    )
    delivery.refresh_from_db()
    assert delivery.delivered_at == at


def test_email_provider_reports_arrive_through_anymail(tenant):
    from anymail.signals import AnymailTrackingEvent, tracking

    tenant.email = "locataire@example.org"
    tenant.save()
    (notification,) = notify(recipients=[tenant], event="x", context={})
    Delivery.objects.create(
        notification=notification,
        channel="email",
        status="sent",
        provider_id="esp-42",
        not_before=timezone.now(),
    )
    event = AnymailTrackingEvent(
        event_type="bounced", message_id="esp-42", timestamp=timezone.now()
    )
    tracking.send(sender=object, event=event, esp_name="Brevo")
    assert notification.deliveries.get(channel="email").status == "failed"
    unknown = AnymailTrackingEvent(event_type="delivered", message_id="nope")
    tracking.send(sender=object, event=unknown, esp_name="Brevo")
