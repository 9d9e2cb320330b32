"""Closing the loop: one tap in the app, an SMS reply through the webhook, or 7 days' silence."""

import datetime as dt
import json
import time

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from api.tickets import services, tasks
from api.tickets.apis import sms_signature
from api.tickets.models import InboundSms, Status, Ticket

pytestmark = pytest.mark.django_db
SECRET = "test-inbound-secret"


@pytest.fixture
def resolved(world, file_leak):
    ticket = file_leak()
    services.ticket_transition(ticket=ticket, actor=world.users["caretaker"], to_status="resolved")
    ticket.refresh_from_db()
    return ticket


@pytest.fixture
def signed(settings):
    settings.SMS_INBOUND_SECRET = SECRET

    def post(payload: dict, *, secret=SECRET, timestamp=None):
        body = json.dumps(payload).encode()
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        return APIClient().post(
            "/api/v1/sms/inbound/",
            body,
            content_type="application/json",
            HTTP_X_PALIER_TIMESTAMP=stamp,
            HTTP_X_PALIER_SIGNATURE=sms_signature(secret, stamp, body),
        )

    return post


def _sms(tenant, body, message_id="m1"):
    return {"message_id": message_id, "sender": str(tenant.phone), "body": body}


def test_one_tap_in_the_app(world, clients, resolved):
    response = clients["tenant"].post(
        f"/api/v1/tickets/{resolved.id}/confirm/", {"fixed": True}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["status"] == "closed"
    assert response.json()["confirmation"] == "fixed"


def test_still_broken_in_the_app_reopens(world, clients, resolved):
    response = clients["tenant"].post(
        f"/api/v1/tickets/{resolved.id}/confirm/", {"fixed": False}, format="json"
    )
    assert response.json()["status"] == "reopened"
    timeline = clients["tenant"].get(f"/api/v1/tickets/{resolved.id}/timeline/").json()
    assert timeline["entries"][-1]["text"].startswith("Vous avez signalé que le problème continue")


def test_sms_reply_1_closes(world, resolved, signed):
    response = signed(_sms(world.home.tenant, " 1 "))
    assert response.status_code == 200
    assert response.json() == {"outcome": "closed", "ticket": str(resolved.id)}
    resolved.refresh_from_db()
    assert (resolved.status, resolved.confirmation) == (Status.CLOSED, "fixed")
    # The provider retries: the same message is handled once.
    again = signed(_sms(world.home.tenant, "1"))
    assert again.json()["outcome"] == "closed"
    assert InboundSms.objects.count() == 1


def test_sms_reply_2_reopens(world, resolved, signed):
    assert signed(_sms(world.home.tenant, "2"))["Content-Type"] == "application/json"
    resolved.refresh_from_db()
    assert resolved.status == Status.REOPENED


def test_sms_that_says_nothing_useful(world, resolved, signed):
    assert signed(_sms(world.home.tenant, "Bonjour ?"))["Content-Type"]
    assert InboundSms.objects.get().outcome == "not_understood"
    assert (
        signed({"message_id": "m2", "sender": "+33699999999", "body": "1"}).json()["outcome"]
        == "unknown_sender"
    )


def test_sms_without_a_good_signature_is_refused(world, resolved, signed):
    assert signed(_sms(world.home.tenant, "1"), secret="wrong").status_code == 403
    old = int(time.time()) - 3600
    assert signed(_sms(world.home.tenant, "1"), timestamp=old).status_code == 403
    unsigned = APIClient().post("/api/v1/sms/inbound/", _sms(world.home.tenant, "1"), format="json")
    assert unsigned.status_code == 403
    resolved.refresh_from_db()
    assert resolved.status == Status.RESOLVED


def test_no_answer_for_7_days_closes(world, resolved, file_leak):
    Ticket.objects.filter(pk=resolved.pk).update(
        confirmation_requested_at=timezone.now() - dt.timedelta(days=7, minutes=1)
    )
    recent = file_leak()
    services.ticket_transition(ticket=recent, actor=world.users["caretaker"], to_status="resolved")
    assert tasks.auto_close_unconfirmed() == 1
    resolved.refresh_from_db()
    recent.refresh_from_db()
    assert resolved.status == Status.CLOSED and recent.status == Status.RESOLVED
    assert resolved.events.filter(data__cause="no_answer").exists()


def test_rating_through_the_api(world, clients, resolved):
    response = clients["tenant"].post(
        f"/api/v1/tickets/{resolved.id}/rate/", {"rating": 5, "comment": "Merci"}, format="json"
    )
    assert response.status_code == 200 and response.json()["rating"] == 5
    bad = clients["tenant"].post(
        f"/api/v1/tickets/{resolved.id}/rate/", {"rating": 9}, format="json"
    )
    assert bad.status_code == 400 and "rating" in bad.json()["fields"]
