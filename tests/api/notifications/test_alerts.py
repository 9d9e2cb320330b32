"""Maintenance alerts: on-call routing, signed acknowledgement links, escalation, flood control."""

import datetime as dt

import pytest
from django.core import signing
from django.utils import timezone

from api.notifications.models import Notification, TeamAlert
from api.notifications.services import (
    alert_ack_token,
    alert_digests_send,
    alerts_escalate_due,
    notify_team,
)
from tests.conftest import client_for
from tests.factories.estate import TeamFactory, TeamMembershipFactory
from tests.factories.notifications import OnCallShiftFactory

pytestmark = pytest.mark.django_db

FAULT = {"rule": "Pression basse", "place": "Les Tilleuls, bât. B", "severity": "majeure"}


@pytest.fixture
def team():
    return TeamFactory()


@pytest.fixture
def first(team):
    return OnCallShiftFactory(team=team, position=0).user


@pytest.fixture
def second(team):
    return OnCallShiftFactory(team=team, position=1).user


def test_the_first_person_on_call_is_alerted_with_an_acknowledgement_link(team, first, second):
    (notification,) = notify_team(team=team, event="fault.alert", context=FAULT, critical=True)
    assert notification.recipient == first
    assert notification.title == "Défaut : Pression basse"
    assert "/ack/" in notification.body
    assert notification.deep_link.startswith("palier://alerts/")
    assert {d.channel for d in notification.deliveries.all()} == {"sms"}


def test_dedupe_key_alerts_once(team, first):
    assert len(notify_team(team=team, event="fault.alert", context=FAULT, dedupe_key="f1")) == 1
    assert notify_team(team=team, event="fault.alert", context=FAULT, dedupe_key="f1") == []


def test_without_a_schedule_the_whole_team_is_alerted(team):
    members = [TeamMembershipFactory(team=team).user for _ in range(2)]
    notifications = notify_team(team=team, event="fault.alert", context=FAULT)
    assert {n.recipient for n in notifications} == set(members)


def test_unacknowledged_alerts_escalate_to_the_next_person_then_the_team(
    team, first, second, settings
):
    extra = TeamMembershipFactory(team=team).user
    notify_team(team=team, event="fault.alert", context=FAULT, critical=True)
    alert = TeamAlert.objects.get()
    assert alerts_escalate_due() == 0
    later = timezone.now() + dt.timedelta(minutes=settings.NOTIFY_ALERT_ACK_CRITICAL_MINUTES + 1)
    assert alerts_escalate_due(now=later) == 1
    assert Notification.objects.filter(alert=alert, recipient=second).exists()
    even_later = later + dt.timedelta(minutes=settings.NOTIFY_ALERT_ACK_CRITICAL_MINUTES + 1)
    assert alerts_escalate_due(now=even_later) == 1
    alert.refresh_from_db()
    assert alert.status == "exhausted"
    assert Notification.objects.filter(alert=alert, recipient=extra).exists()
    assert (
        not Notification.objects.filter(alert=alert, recipient=first)
        .exclude(dedupe_key=f"alert:{alert.pk}:0")
        .exists()
    )


def test_the_signed_link_acknowledges_and_stops_escalation(
    team, first, second, api_client, settings
):
    notify_team(team=team, event="fault.alert", context=FAULT, critical=True)
    alert = TeamAlert.objects.get()
    token = alert_ack_token(alert=alert, user=first)
    shown = api_client.get(f"/api/v1/alerts/ack/{token}/")
    assert shown.status_code == 200
    assert shown.json()["status"] == "open"
    response = api_client.post(f"/api/v1/alerts/ack/{token}/")
    assert response.status_code == 200
    assert response.json()["acknowledged_by_you"] is True
    alert.refresh_from_db()
    assert alert.acknowledged_by == first
    later = timezone.now() + dt.timedelta(hours=1)
    assert alerts_escalate_due(now=later) == 0
    pending_sms = Notification.objects.get(alert=alert).deliveries.filter(status="queued")
    assert not pending_sms.filter(only_if_unread=True).exists()


def test_forged_and_expired_links_are_refused(team, first, api_client, settings):
    notify_team(team=team, event="fault.alert", context=FAULT)
    alert = TeamAlert.objects.get()
    token = alert_ack_token(alert=alert, user=first)
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    assert api_client.post(f"/api/v1/alerts/ack/{forged}/").status_code == 400
    old = signing.TimestampSigner(salt="palier.notifications.alert-ack")
    settings.NOTIFY_ACK_LINK_MAX_AGE_HOURS = 0
    response = api_client.post(f"/api/v1/alerts/ack/{old.sign(f'{alert.pk}.{first.pk}')}/")
    assert response.status_code == 400
    assert response.json()["code"] == "link_expired"


def test_the_ack_page_shows_a_button_and_acknowledges_on_post(team, first, client):
    notify_team(team=team, event="fault.alert", context=FAULT)
    alert = TeamAlert.objects.get()
    url = f"/ack/{alert_ack_token(alert=alert, user=first)}"
    page = client.get(url)
    assert page.status_code == 200
    assert "Je prends en charge" in page.content.decode()
    alert.refresh_from_db()
    assert alert.status == "open"  # a link preview (GET) acknowledges nothing
    done = client.post(url)
    assert "Vous avez pris en charge" in done.content.decode()
    assert client.get("/ack/nonsense").status_code == 400


def test_flood_control_holds_alerts_beyond_the_limit_and_sends_one_digest(team, first, settings):
    settings.NOTIFY_ALERT_FLOOD_LIMIT = 3
    for index in range(7):
        notify_team(team=team, event="fault.alert", context={**FAULT, "rule": f"R{index}"})
    assert Notification.objects.filter(recipient=first).count() == 3
    assert TeamAlert.objects.filter(status="digested").count() == 4
    assert alert_digests_send() == 0  # the window is still full
    TeamAlert.objects.exclude(status="digested").update(
        created_at=timezone.now()
        - dt.timedelta(minutes=settings.NOTIFY_ALERT_FLOOD_WINDOW_MINUTES + 1)
    )
    assert alert_digests_send() == 1
    digest = Notification.objects.get(recipient=first, event="alert.digest")
    assert digest.title == "4 alertes de plus"
    assert alert_digests_send() == 0


def test_technicians_acknowledge_from_the_app(team, first):
    notify_team(team=team, event="fault.alert", context=FAULT)
    alert = TeamAlert.objects.get()
    client = client_for(first)
    assert client.get("/api/v1/alerts/").json()["count"] == 1
    response = client.post(f"/api/v1/alerts/{alert.pk}/acknowledge/")
    assert response.status_code == 200
    assert response.json()["status"] == "acknowledged"


def test_staff_schedule_on_call_shifts(team, first):
    from tests.factories.estate import AgencyMembershipFactory, TeamSectorFactory

    sector = TeamSectorFactory(team=team)
    staff = AgencyMembershipFactory(agency=sector.residence.agency).user
    client = client_for(staff)
    starts = timezone.now() + dt.timedelta(days=1)
    body = {
        "team": str(team.pk),
        "user": str(first.pk),
        "starts_at": starts.isoformat(),
        "ends_at": (starts + dt.timedelta(hours=14)).isoformat(),
        "position": 1,
    }
    response = client.post("/api/v1/on-call-shifts/", body, format="json")
    assert response.status_code == 201, response.content
    backwards = {**body, "ends_at": (starts - dt.timedelta(hours=1)).isoformat()}
    assert client.post("/api/v1/on-call-shifts/", backwards, format="json").status_code == 400
    listing = client.get("/api/v1/on-call-shifts/", {"team": str(team.pk)}).json()
    assert listing["count"] == 2
    assert client.delete(f"/api/v1/on-call-shifts/{response.json()['id']}/").status_code == 204
    assert client_for(first).post("/api/v1/on-call-shifts/", body, format="json").status_code == 403
