"""Service-level clocks: due times on the working calendar, pauses, breaches and escalation."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from api.notifications.models import Notification
from api.tickets import services, tasks
from api.tickets.calendar import WorkingCalendar
from api.tickets.models import EventKind, Ticket
from tests.factories.estate import AgencyMembershipFactory
from tests.factories.tickets import CategoryFactory, TicketFactory
from workers.celery_app import app

pytestmark = pytest.mark.django_db
PARIS = ZoneInfo("Europe/Paris")


def test_subdivisions_follow_the_postcode():
    assert services.calendar_subdivision("57000") == "57"
    assert services.calendar_subdivision("67100") == "6AE"
    assert services.calendar_subdivision("97400") == "974"
    assert services.calendar_subdivision("75011") is None


def _ticket(home, category, created):
    ticket = TicketFactory(dwelling=home.dwelling, category=category, priority="normal")
    services._set_due_times(ticket, created)
    ticket.save()
    return ticket


def test_working_hour_targets_skip_nights_weekends_and_holidays(home):
    category = CategoryFactory(organisation=home.organisation)  # 8 h / 40 h working
    friday_evening = dt.datetime(2026, 11, 20, 17, 0, tzinfo=PARIS)
    ticket = _ticket(home, category, friday_evening)
    assert ticket.acknowledge_due_at == dt.datetime(2026, 11, 23, 15, 0, tzinfo=PARIS)
    # 40 working hours: 1 on Friday, 30 from Monday to Wednesday, 9 on Thursday.
    assert ticket.resolve_due_at == dt.datetime(2026, 11, 26, 17, 0, tzinfo=PARIS)


def test_urgent_categories_count_every_hour(home, leak):
    friday_evening = dt.datetime(2026, 11, 20, 17, 0, tzinfo=PARIS)
    ticket = _ticket(home, leak, friday_evening)
    assert ticket.acknowledge_due_at == friday_evening + dt.timedelta(hours=2)
    assert ticket.resolve_due_at == friday_evening + dt.timedelta(hours=24)


def test_waiting_pauses_the_clock(world, home):
    category = CategoryFactory(organisation=home.organisation)
    ticket = services.ticket_create(
        actor=home.tenant,
        source="tenant_app",
        category=category,
        dwelling=home.dwelling,
        description="Volet bloqué",
    )
    staff = world.users["agency_staff"]
    services.ticket_transition(ticket=ticket, actor=staff, to_status="acknowledged")
    ticket.refresh_from_db()
    services.ticket_transition(
        ticket=ticket, actor=staff, to_status="waiting", waiting_reason="parts_on_order"
    )
    ticket.refresh_from_db()
    assert ticket.paused_at is not None and ticket.waiting_reason == "parts_on_order"
    # As if it had waited three days for the part: what was left then is left now.
    three_days = dt.timedelta(days=3)
    Ticket.objects.filter(pk=ticket.pk).update(
        paused_at=ticket.paused_at - three_days, resolve_due_at=ticket.resolve_due_at - three_days
    )
    ticket.refresh_from_db()
    calendar = WorkingCalendar()
    remaining = calendar.between(ticket.paused_at, ticket.resolve_due_at)
    old_due = ticket.resolve_due_at
    services.ticket_transition(ticket=ticket, actor=staff, to_status="in_progress")
    ticket.refresh_from_db()
    assert ticket.paused_at is None and ticket.waiting_reason == ""
    assert ticket.resolve_due_at > old_due
    left = calendar.between(timezone.now(), ticket.resolve_due_at)
    assert abs((left - remaining).total_seconds()) < 120


def test_breaches_are_flagged_once_and_escalated_to_the_agency(world, home, file_leak):
    staff = world.users["agency_staff"]
    late = file_leak()
    Ticket.objects.filter(pk=late.pk).update(
        acknowledge_due_at=timezone.now() - dt.timedelta(minutes=5),
        resolve_due_at=timezone.now() - dt.timedelta(minutes=1),
    )
    waiting = file_leak()
    services.ticket_transition(
        ticket=waiting, actor=staff, to_status="waiting", waiting_reason="no_access"
    )
    Ticket.objects.filter(pk=waiting.pk).update(
        resolve_due_at=timezone.now() - dt.timedelta(days=1)
    )
    on_time = file_leak()

    assert tasks.detect_sla_breaches() == {"acknowledge": 1, "resolve": 1}
    assert tasks.detect_sla_breaches() == {"acknowledge": 0, "resolve": 0}
    late.refresh_from_db()
    assert late.acknowledge_breached_at and late.resolve_breached_at and late.escalated_at
    assert late.events.filter(kind=EventKind.SLA_BREACHED).count() == 2
    assert late.events.filter(kind=EventKind.ESCALATED, public=False).count() == 2
    told = Notification.objects.filter(event="ticket.sla_breached", recipient=staff)
    assert told.count() == 2
    other_agency_staff = AgencyMembershipFactory(agency=world.other_residence.agency).user
    assert not Notification.objects.filter(recipient=other_agency_staff).exists()
    for ticket in (waiting, on_time):
        ticket.refresh_from_db()
        assert ticket.resolve_breached_at is None


def test_overdue_queue(world, clients, file_leak):
    late, _ = file_leak(), file_leak()
    Ticket.objects.filter(pk=late.pk).update(resolve_due_at=timezone.now() - dt.timedelta(hours=1))
    response = clients["caretaker"].get("/api/v1/tickets/", {"overdue": "true"})
    assert [row["id"] for row in response.json()["results"]] == [str(late.id)]
    assert response.json()["results"][0]["overdue"] is True


def test_reopening_restarts_the_resolution_clock(world, file_leak):
    ticket = file_leak()
    staff = world.users["agency_staff"]
    services.ticket_transition(ticket=ticket, actor=staff, to_status="resolved")
    Ticket.objects.filter(pk=ticket.pk).update(resolve_due_at=timezone.now() - dt.timedelta(days=1))
    ticket.refresh_from_db()
    services.ticket_transition(ticket=ticket, actor=staff, to_status="reopened")
    ticket.refresh_from_db()
    assert ticket.resolve_due_at > timezone.now()
    assert ticket.reopen_count == 1


def test_the_periodic_tasks_are_scheduled_and_registered(settings):
    app.loader.import_default_modules()
    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    for name in (
        "tickets.detect_sla_breaches",
        "tickets.send_appointment_reminders",
        "tickets.auto_close_unconfirmed",
    ):
        assert name in scheduled and name in app.tasks
