"""`palier privacy-breach-subjects`: who a breach of one table in a time window touches."""

import csv
import datetime as dt
import io
import json

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from api.privacy.selectors import breach_subjects, paths_to_people
from api.telemetry.models import ReadingHour
from api.tickets.models import Ticket, TicketEvent
from tests.factories import UserFactory, place_factory
from tests.factories.notifications import NotificationFactory, PushDeviceFactory
from tests.factories.telemetry import DeviceFactory
from tests.factories.tickets import TicketFactory

NOW = timezone.now()


def _run(*args) -> str:
    out, err = io.StringIO(), io.StringIO()
    call_command("privacy_breach_subjects", *args, stdout=out, stderr=err)
    return out.getvalue()


def _window(hours_before: int = 1, hours_after: int = 1) -> list[str]:
    start = (NOW - dt.timedelta(hours=hours_before)).isoformat()
    end = (NOW + dt.timedelta(hours=hours_after)).isoformat()
    return ["--from", start, "--to", end]


@pytest.fixture
def places(db):
    home = place_factory()
    old = place_factory(organisation=home.organisation)
    untouched = place_factory(organisation=home.organisation)
    return home, old, untouched


def test_tickets_in_the_window_name_reporters_and_households(places):
    home, old, _untouched = places
    co_holder = UserFactory(organisation=home.organisation, email="co@example.org")
    home.lease.members.create(person=co_holder, relation="co_holder")
    PushDeviceFactory(user=home.tenant)
    TicketFactory(dwelling=home.dwelling, reporter=home.tenant)
    stale = TicketFactory(dwelling=old.dwelling, reporter=old.tenant)
    Ticket.objects.filter(pk=stale.pk).update(
        created_at=NOW - dt.timedelta(days=30), updated_at=NOW - dt.timedelta(days=30)
    )
    rows = json.loads(_run("--table", "tickets.Ticket", *_window(), "--format", "json"))
    by_id = {row["id"]: row for row in rows}
    assert set(by_id) == {str(home.tenant.pk), str(co_holder.pk)}
    tenant = by_id[str(home.tenant.pk)]
    assert tenant["phone"] == str(home.tenant.phone)
    assert tenant["reach_by"] == "sms push post"
    assert home.residence.city in tenant["postal_address"]
    assert by_id[str(co_holder.pk)]["email"] == "co@example.org"


def test_csv_output_and_two_hop_tables(places):
    home, old, _untouched = places
    ticket = TicketFactory(dwelling=home.dwelling, reporter=home.tenant)
    TicketEvent.objects.create(ticket=ticket, kind="comment", note="x")
    notification = NotificationFactory(recipient=old.tenant)
    notification.deliveries.create(channel="sms", not_before=NOW)
    rows = list(csv.DictReader(io.StringIO(_run("--table", "notifications.Delivery", *_window()))))
    assert [row["id"] for row in rows] == [str(old.tenant.pk)]
    events = json.loads(_run("--table", "tickets.TicketEvent", *_window(), "--format", "json"))
    assert {row["id"] for row in events} == {str(home.tenant.pk)}


def test_tables_without_created_at_use_their_own_time(places):
    home = places[0]
    device = DeviceFactory(dwelling=home.dwelling)
    hour = NOW.replace(minute=0, second=0, microsecond=0)
    ReadingHour.objects.create(device=device, name=1, hour=hour, vmin=1, vmax=2, vsum=3, count=2)
    rows = json.loads(_run("--table", "telemetry.ReadingHour", *_window(2), "--format", "json"))
    assert [row["id"] for row in rows] == [str(home.tenant.pk)]
    assert paths_to_people(ReadingHour) == [("device__equipment__dwelling", "dwelling")]


def test_one_query_whatever_the_number_of_rows(places):
    for place in places:
        for _ in range(3):
            TicketFactory(dwelling=place.dwelling, reporter=place.tenant)
    start, end = NOW - dt.timedelta(hours=1), NOW + dt.timedelta(hours=1)
    with CaptureQueriesContext(connection) as queries:
        people = list(breach_subjects(Ticket, start=start, end=end))
    assert len(people) == 3
    assert len(queries) == 1


def test_bad_arguments_are_clear_errors(db):
    with pytest.raises(CommandError, match="no such model"):
        _run("--table", "nope.Nothing", *_window())
    with pytest.raises(CommandError, match="after"):
        _run("--table", "tickets.Ticket", *_window(-2, -3))
    with pytest.raises(CommandError, match="ISO 8601"):
        _run("--table", "tickets.Ticket", "--from", "yesterday", "--to", "2026-01-01")
