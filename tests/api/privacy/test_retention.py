"""Retention: what has expired goes (deleted or anonymised), a second run finds nothing, a dry
run changes nothing, and an organisation may set its own periods."""

import datetime as dt

import pytest
from django.core.management import call_command
from django.utils import timezone

from api.accounts.models import PersonalDataAccess, Vulnerability
from api.core.exceptions import ServiceError
from api.notifications.models import Notification
from api.privacy import retention
from api.privacy.retention import retention_overrides_update, retention_periods, retention_run
from api.privacy.tasks import retention as task
from api.telemetry.models import ReadingHour
from api.tickets.models import Appointment, InboundSms, Ticket, TicketEvent, TicketPhoto
from tests.conftest import client_for
from tests.factories import LeaseFactory, UserFactory
from tests.factories.estate import HouseholdMemberFactory, TenantFactory, place_factory
from tests.factories.notifications import NotificationFactory, PushDeviceFactory
from tests.factories.telemetry import DeviceFactory
from tests.factories.tickets import AppointmentFactory, TicketFactory, TicketPhotoFactory

pytestmark = pytest.mark.django_db

YEAR = dt.timedelta(days=365)


def _end_lease(place, *, days_ago: int, length_days: int = 3000):
    today = timezone.localdate()
    place.lease.start_date = today - dt.timedelta(days=days_ago + length_days)
    place.lease.end_date = today - dt.timedelta(days=days_ago)
    place.lease.save()


def _hour(device, at):
    return ReadingHour.objects.create(
        device=device, name=1, hour=at, vmin=19.0, vmax=21.0, vsum=40.0, count=2
    )


@pytest.fixture
def world():
    """An organisation with a long-gone tenant, a current one, old and recent records."""
    now = timezone.now()
    gone = place_factory()
    org = gone.organisation
    _end_lease(gone, days_ago=6 * 365)
    Vulnerability.objects.create(
        person=gone.tenant, kind="elderly", consent_at=now - 7 * YEAR, consent_channel="paper"
    )
    PushDeviceFactory(user=gone.tenant)
    current = place_factory(organisation=org, agency=gone.agency)
    recent = place_factory(organisation=org, agency=gone.agency)
    _end_lease(recent, days_ago=20)

    old_ticket = TicketFactory(
        dwelling=gone.dwelling,
        reporter=gone.tenant,
        closed_at=now - 6 * YEAR,
        rating_comment="Le technicien était très aimable.",
        answers={"where": "cuisine"},
    )
    TicketEvent.objects.create(ticket=old_ticket, kind="comment", note="Mme X est malade.")
    AppointmentFactory(ticket=old_ticket, note="Code 1234, 3e étage.")
    TicketPhotoFactory(ticket=old_ticket)
    InboundSms.objects.create(
        message_id="m-1", sender="+33611111111", body="OUI", received_at=now, ticket=old_ticket
    )
    open_ticket = TicketFactory(dwelling=current.dwelling, reporter=current.tenant)

    old_note = NotificationFactory(recipient=current.tenant)
    Notification.objects.filter(pk=old_note.pk).update(created_at=now - 2 * YEAR)
    fresh_note = NotificationFactory(recipient=current.tenant)
    manager = UserFactory(organisation=org, role="manager", phone=None, email="m@example.org")
    PersonalDataAccess.objects.create(
        viewer=manager,
        viewer_role="manager",
        subject=current.tenant,
        context="x",
        at=now - 2 * YEAR,
    )
    PersonalDataAccess.objects.create(
        viewer=manager, viewer_role="manager", subject=current.tenant, context="x", at=now
    )

    # A home whose previous household left 100 days ago; the new one moved in 99 days ago.
    moved = place_factory(organisation=org, agency=gone.agency)
    _end_lease(moved, days_ago=100, length_days=300)
    newcomer = TenantFactory(organisation=org)
    HouseholdMemberFactory(
        lease=LeaseFactory(
            dwelling=moved.dwelling, start_date=timezone.localdate() - dt.timedelta(days=99)
        ),
        person=newcomer,
    )
    device = DeviceFactory(dwelling=moved.dwelling)
    _hour(device, (now - dt.timedelta(days=150)).replace(minute=0, second=0, microsecond=0))
    _hour(device, (now - dt.timedelta(days=10)).replace(minute=0, second=0, microsecond=0))

    return {
        "org": org,
        "gone": gone,
        "current": current,
        "recent": recent,
        "old_ticket": old_ticket,
        "open_ticket": open_ticket,
        "fresh_note": fresh_note,
        "device": device,
        "manager": manager,
    }


def _counts(report) -> dict:
    counts: dict = {}
    for line in report.lines:
        counts[line["rule"]] = counts.get(line["rule"], 0) + line["count"]
    return counts


def test_expired_data_goes_and_a_second_run_finds_nothing(world):
    report = retention_run()
    counts = _counts(report)

    gone = world["gone"].tenant
    gone.refresh_from_db()
    assert gone.phone is None and gone.email.endswith("@erased.invalid")
    assert gone.first_name == "" and gone.last_name == "" and not gone.is_active
    assert not gone.has_usable_password()
    assert not gone.push_devices.exists()
    assert not Vulnerability.objects.filter(person=gone).exists()
    current = world["current"].tenant
    current.refresh_from_db()
    assert current.phone is not None and current.first_name
    recent = world["recent"].tenant
    recent.refresh_from_db()
    assert recent.phone is not None  # left 20 days ago: still within every period

    ticket = Ticket.objects.get(pk=world["old_ticket"].pk)
    assert ticket.description == "" and ticket.rating_comment == "" and ticket.answers == {}
    assert ticket.reference and ticket.category_id  # kept for statistics
    assert not TicketEvent.objects.filter(ticket=ticket).exclude(note="").exists()
    assert not Appointment.objects.filter(ticket=ticket).exclude(note="").exists()
    assert not TicketPhoto.objects.filter(ticket=ticket).exists()
    assert InboundSms.objects.get(message_id="m-1").sender == ""
    assert Ticket.objects.get(pk=world["open_ticket"].pk).description

    assert list(Notification.objects.values_list("pk", flat=True)) == [world["fresh_note"].pk]
    assert PersonalDataAccess.objects.count() == 1
    hours = list(ReadingHour.objects.filter(device=world["device"]).values_list("hour", flat=True))
    assert len(hours) == 1 and hours[0] > timezone.now() - dt.timedelta(days=11)

    assert counts["former_household_contact"] == 1
    assert counts["former_household_identity"] == 1
    assert counts["former_household_vulnerability"] == 1
    assert counts["closed_ticket_free_text"] == 1
    assert counts["notifications"] == 1
    assert counts["access_log"] == 1
    assert counts["previous_tenant_readings"] == 1

    again = retention_run()
    assert again.total == 0, [line for line in again.lines if line["count"]]


def test_a_dry_run_counts_and_changes_nothing(world):
    report = retention_run(dry_run=True)

    assert report.dry_run and report.total >= 7
    gone = world["gone"].tenant
    gone.refresh_from_db()
    assert gone.phone is not None and gone.first_name and gone.is_active
    assert Ticket.objects.get(pk=world["old_ticket"].pk).description
    assert TicketPhoto.objects.filter(ticket=world["old_ticket"]).exists()
    assert Notification.objects.count() == 2
    assert ReadingHour.objects.filter(device=world["device"]).count() == 2
    assert Vulnerability.objects.count() == 1
    assert retention_run(dry_run=True).lines == report.lines


def test_an_organisation_sets_its_own_periods(world):
    org = world["org"]
    retention_overrides_update(
        actor=world["manager"], organisation=org, overrides={"former_household_contact": 10}
    )
    assert retention_periods(org)["former_household_contact"] == 10
    assert retention_periods(None)["former_household_contact"] == 3 * 365

    retention_run(organisations=[org])

    recent = world["recent"].tenant
    recent.refresh_from_db()
    assert recent.phone is None and recent.first_name  # contact gone, name kept 5 years

    retention_overrides_update(
        actor=world["manager"], organisation=org, overrides={"former_household_contact": None}
    )
    org.refresh_from_db()
    assert org.retention == {}


@pytest.mark.parametrize(
    "overrides",
    [
        {"nope": 10},
        {"telemetry_raw": 10},
        {"access_log": 0},
        {"access_log": "30"},
        {"access_log": True},
    ],
)
def test_overrides_are_checked(world, overrides):
    with pytest.raises(ServiceError):
        retention_overrides_update(
            actor=world["manager"], organisation=world["org"], overrides=overrides
        )


def test_only_a_manager_of_the_organisation_sets_periods(world):
    with pytest.raises(ServiceError):
        retention_overrides_update(
            actor=world["current"].tenant,
            organisation=world["org"],
            overrides={"notifications": 30},
        )


def test_the_command_and_the_nightly_task(world, settings, capsys):
    assert settings.CELERY_BEAT_SCHEDULE["privacy-retention"]["task"] == "privacy.retention"

    call_command("privacy_retention", "--dry-run")
    out = capsys.readouterr().out
    assert "would be anonymised" in out and "Dry run" in out
    assert Ticket.objects.get(pk=world["old_ticket"].pk).description

    result = task.apply().get()
    assert result["total"] > 0
    assert task.apply().get()["total"] == 0

    call_command("privacy_retention", "--periods")
    assert "former_household_contact" in capsys.readouterr().out


def test_every_rule_has_a_period_source_and_an_action():
    for rule in retention.RULES.values():
        assert rule.default_days >= 1 and rule.source and rule.action in {"deleted", "anonymised"}
    assert set(retention.ORGANISATION_RULES) <= set(retention.RULES)


def test_managers_read_and_set_periods_through_the_api(world):
    url = "/api/v1/privacy/retention/"
    client = client_for(world["manager"])
    rules = {r["rule"]: r for r in client.get(url).json()["rules"]}
    assert rules["closed_ticket_free_text"]["days"] == 5 * 365
    assert rules["telemetry_raw"]["per_organisation"] is False
    assert all(r["source"] for r in rules.values())

    response = client.patch(url, {"overrides": {"notifications": 180}}, format="json")
    assert response.status_code == 200
    rules = {r["rule"]: r for r in response.json()["rules"]}
    assert rules["notifications"]["days"] == 180 and rules["notifications"]["overridden"]

    assert client.patch(url, {"overrides": {"telemetry_raw": 5}}, format="json").status_code == 400
    assert client.patch(url, {"overrides": {"notifications": 0}}, format="json").status_code == 400
    tenant = client_for(world["current"].tenant)
    assert tenant.get(url).status_code == 403
    assert tenant.patch(url, {"overrides": {}}, format="json").status_code == 403


def test_a_tenant_who_moved_within_the_stock_keeps_their_account(world):
    gone = world["gone"].tenant
    HouseholdMemberFactory(lease=world["current"].lease, person=gone, relation="co_holder")

    retention_run()

    gone.refresh_from_db()
    assert gone.phone is not None and gone.first_name and gone.is_active
    assert Vulnerability.objects.filter(person=gone).exists()
