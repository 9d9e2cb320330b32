"""Faults through the real ingest path: raise at event time, lifecycle, work, correlation."""

import datetime as dt
from datetime import UTC, datetime

import msgspec
import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from api.core.exceptions import ServiceError
from api.faults import services
from api.faults.models import DeviceRuleStates, Fault, RuleVersion
from api.notifications.models import Notification, TeamAlert
from api.telemetry import tasks as telemetry_tasks
from api.tickets.models import Incident, Ticket
from tests.api.faults.conftest import Feeder
from tests.factories.accounts import UserFactory
from tests.factories.estate import (
    DwellingFactory,
    TeamMembershipFactory,
    TeamSectorFactory,
    place_factory,
)
from tests.factories.faults import FaultFactory
from tests.factories.notifications import OnCallShiftFactory
from tests.factories.telemetry import DeviceFactory
from tests.factories.tickets import ensure_standard_tree

pytestmark = pytest.mark.django_db

MIN = 60.0


def _utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


@pytest.fixture
def world():
    """A leased dwelling with a heating unit, its residence covered by a team on call."""
    ensure_standard_tree()
    place = place_factory()
    technician = TeamMembershipFactory(team__organisation=place.organisation).user
    team = technician.team_memberships.get().team
    TeamSectorFactory(team=team, residence=place.residence)
    OnCallShiftFactory(team=team, user=technician)
    device = DeviceFactory(dwelling=place.dwelling)
    return place, team, device


def _fault(device, rule="low_pressure") -> Fault:
    return Fault.objects.get(device=device, rule=rule)


def test_low_pressure_through_ingest_raises_at_event_time_with_ticket_tenant_and_alert(world):
    place, team, device = world
    feeder = Feeder(device)
    feeder.feed(0, 10, ch_pressure=1.5)
    assert not Fault.objects.exists()
    feeder.feed(10, 35, ch_pressure=0.7)

    fault = _fault(device)
    assert fault.raised_at == _utc(feeder.at(40))  # 30 min after the drop, in event time
    assert fault.since == _utc(feeder.at(10))
    assert (fault.state, fault.severity) == ("active_unack", "major")
    assert (fault.dwelling, fault.building, fault.residence) == (
        place.dwelling,
        place.building,
        place.residence,
    )
    row = DeviceRuleStates.objects.get(device=device)
    assert "low_pressure" in services.states_decode(row.states)
    ticket = fault.ticket
    assert ticket.source == "sensor" and ticket.related_fault_id == fault.id
    assert ticket.equipment_id == device.equipment_id and ticket.category.code.startswith("chauff")
    assert "/readings/" in ticket.description
    assert Notification.objects.filter(recipient=place.tenant, event="fault.detected").exists()
    alert = TeamAlert.objects.get(team=team, event="fault.alert")
    assert alert.context["fault_id"] == str(fault.id)
    kinds = list(fault.events.values_list("kind", flat=True))
    assert kinds == ["raised", "ticket", "alerted"]


def test_the_hook_runs_in_the_celery_ingest_task(world):
    _, _, device = world
    feeder = Feeder(device)
    items = feeder.items(0, 1, fault_active=True, fault_code="F22")
    telemetry_tasks.ingest_batch.apply(args=[items])
    fault = _fault(device, "boiler_lockout")
    assert fault.detail.startswith("F22")
    assert fault.ticket.answers == {"error_code": "F22"}


def test_buffered_readings_arriving_late_raise_the_fault_when_it_happened(world):
    _, _, device = world
    feeder = Feeder(device, start=timezone.now().timestamp() - 3 * 3600)
    feeder.feed(0, 5, ch_pressure=1.4)
    # The unit was offline for hours and sends its buffer in one go, in order.
    feeder.feed(5, 60, ch_pressure=0.7)
    fault = _fault(device)
    assert fault.raised_at == _utc(feeder.at(35))
    # A redelivered batch stores nothing new and raises nothing again.
    assert Fault.objects.count() == 1


def test_one_open_fault_per_device_and_rule_repeats_count(world):
    _, _, device = world
    feeder = Feeder(device)
    feeder.feed(0, 31, ch_pressure=0.7)
    feeder.feed(31, 10, ch_pressure=1.2)  # clears after 5 min
    fault = _fault(device)
    assert fault.state == "cleared_unack" and fault.cleared_at == _utc(feeder.at(36))
    assert fault.ticket.status == "resolved"
    feeder.feed(41, 31, ch_pressure=0.7)

    fault = _fault(device)
    assert Fault.objects.filter(device=device).count() == 1
    assert (fault.state, fault.repeat_count) == ("active_unack", 1)
    assert fault.ticket.status == "reopened"
    with pytest.raises(IntegrityError), transaction.atomic():
        FaultFactory(device=device, rule="low_pressure")


def test_lifecycle_acknowledge_then_clear_closes_and_every_change_is_an_event(world):
    _place, team, device = world
    technician = team.memberships.first().user
    feeder = Feeder(device)
    feeder.feed(0, 31, ch_pressure=0.45)
    fault = _fault(device)
    assert fault.severity == "critical"  # below 0.5 bar
    fault = services.fault_acknowledge(fault=fault, actor=technician, note="J'y vais")
    assert fault.state == "active_ack" and fault.acknowledged_by == technician
    assert TeamAlert.objects.get(team=team).status == "acknowledged"  # escalation stops
    with pytest.raises(ServiceError):
        services.fault_acknowledge(fault=fault, actor=technician)
    feeder.feed(31, 10, ch_pressure=1.3)
    fault.refresh_from_db()
    assert fault.state == "cleared" and fault.closed_at is not None
    kinds = list(fault.events.values_list("kind", "to_state"))
    assert kinds[0] == ("raised", "active_unack")
    assert ("acknowledged", "active_ack") in kinds
    assert kinds[-2:] == [("cleared", "active_ack"), ("closed", "cleared")]


def test_a_cleared_fault_resolves_its_ticket_and_the_tenant_is_asked_to_confirm(world):
    place, _, device = world
    feeder = Feeder(device)
    feeder.feed(0, 1, fault_active=True, fault_code="F28")
    fault = _fault(device, "boiler_lockout")
    assert fault.ticket.status == "new"
    feeder.feed(1, 1, fault_active=False)
    fault.refresh_from_db()
    assert fault.state == "cleared_unack"
    ticket = Ticket.objects.get(pk=fault.ticket_id)
    assert ticket.status == "resolved" and ticket.confirmation_requested_at is not None
    assert Notification.objects.filter(
        recipient=place.tenant, event="ticket.resolved_confirm_request"
    ).exists()


def test_a_tenant_filing_in_the_same_category_joins_the_sensor_ticket(world):
    from api.tickets.services import ticket_create

    place, _, device = world
    Feeder(device).feed(0, 1, fault_active=True)
    fault = _fault(device, "boiler_lockout")
    ticket = ticket_create(
        actor=place.tenant,
        source="tenant_app",
        category=fault.ticket.category,
        dwelling=place.dwelling,
        description="La chaudière affiche un code",
    )
    assert ticket.pk == fault.ticket_id


def test_shelve_unshelve_and_expiry(world):
    _, team, device = world
    technician = team.memberships.first().user
    fault = FaultFactory(device=device)
    until = timezone.now() + dt.timedelta(days=2)
    with pytest.raises(ServiceError):
        services.fault_shelve(fault=fault, actor=technician, until=until, reason=" ")
    fault = services.fault_shelve(
        fault=fault, actor=technician, until=until, reason="Entreprise prévue jeudi"
    )
    assert (fault.state, fault.shelve_reason) == ("shelved", "Entreprise prévue jeudi")
    fault = services.fault_unshelve(fault=fault, actor=technician)
    assert fault.state == "active_unack"

    services.fault_shelve(fault=fault, actor=technician, until=until, reason="Jeudi")
    assert services.faults_unshelve_expired(now=timezone.now()) == 0
    assert services.faults_unshelve_expired(now=until + dt.timedelta(seconds=1)) == 1
    fault.refresh_from_db()
    assert fault.state == "active_unack" and fault.shelved_until is None
    assert [e.kind for e in fault.events.all()][-1] == "unshelved"


def test_offline_sweep_raises_on_the_wall_clock_and_readings_clear_it(world):
    _, _, device = world
    feeder = Feeder(device, start=timezone.now().timestamp() - 600)
    feeder.feed(0, 1, room_temp=20.0)
    device.refresh_from_db()
    assert device.status == "online"
    now = timezone.now()
    assert services.faults_sweep_offline(now=now) == 1
    assert services.faults_sweep_offline(now=now) == 0  # never raised twice
    # The unit's other rule states are kept beside the offline rule's, in its one row.
    states, _ = services.states_load([device.id])[device.id]
    assert {"device_offline", "cold_dwelling"} <= set(states)
    fault = _fault(device, "device_offline")
    assert fault.raised_at == device.last_seen_at + dt.timedelta(seconds=180)
    assert fault.severity == "minor" and fault.ticket_id is None
    feeder.feed(9, 1, room_temp=20.0)
    fault.refresh_from_db()
    assert fault.state == "cleared_unack"


def _building_of(count: int):
    """A building with `count` leased dwellings, each with a heating unit, and its team."""
    ensure_standard_tree()
    first = place_factory()
    places = [first] + [place_factory(entrance=first.entrance) for _ in range(count - 1)]
    technician = TeamMembershipFactory(team__organisation=first.organisation).user
    team = technician.team_memberships.get().team
    TeamSectorFactory(team=team, residence=first.residence)
    OnCallShiftFactory(team=team, user=technician)
    devices = [DeviceFactory(dwelling=p.dwelling) for p in places]
    return places, team, devices


def test_a_building_losing_heat_is_one_incident_with_suppressed_children_and_no_alerts():
    places, team, devices = _building_of(6)
    start = timezone.now().timestamp() - 3600
    Feeder(devices[0], start).feed(0, 1, fault_active=True)
    first = _fault(devices[0], "boiler_lockout")
    assert first.dispatch_due_at is not None and first.ticket_id is None  # held

    from api.tickets.services import ticket_create
    from tests.factories.tickets import standard_category

    complaint = ticket_create(
        actor=places[4].tenant,
        source="tenant_app",
        category=standard_category("chauffage-panne"),
        dwelling=places[4].dwelling,
        description="Radiateurs froids",
        answers={"whole_dwelling": True},
    )
    Feeder(devices[1], start).feed(2, 1, fault_active=True)  # 2 of 6: over 30 %
    incident = Incident.objects.get()
    complaint.refresh_from_db()
    assert complaint.incident == incident  # the tenant's request joins the incident
    assert incident.source == "sensor" and incident.building == places[0].building
    assert set(Fault.objects.values_list("state", flat=True)) == {"suppressed"}
    assert set(Fault.objects.values_list("incident", flat=True)) == {incident.id}

    Feeder(devices[2], start).feed(5, 1, fault_active=True)  # joins silently
    assert _fault(devices[2], "boiler_lockout").state == "suppressed"
    assert services.faults_dispatch_due(now=timezone.now() + dt.timedelta(hours=1)) == 0

    assert Incident.objects.count() == 1
    alerts = TeamAlert.objects.filter(team=team)
    assert alerts.count() == 1 and alerts.get().critical
    assert not Ticket.objects.filter(related_fault_id__isnull=False).exists()
    tenants = {p.tenant for p in places}
    told = Notification.objects.filter(event="incident.started")
    assert {n.recipient for n in told} == tenants

    # Once every unit is back, the incident ends.
    for i, device in enumerate(devices[:3]):
        Feeder(device, start).feed(10 + i, 1, fault_active=False)
    incident.refresh_from_db()
    assert incident.status == "closed"
    assert set(Fault.objects.values_list("state", flat=True)) == {"cleared"}


def test_a_lone_fault_in_a_big_building_is_dispatched_after_the_hold():
    _places, team, devices = _building_of(5)
    Feeder(devices[0]).feed(0, 1, fault_active=True)
    fault = _fault(devices[0], "boiler_lockout")
    assert fault.ticket_id is None
    assert services.faults_dispatch_due(now=timezone.now()) == 0
    assert services.faults_dispatch_due(now=timezone.now() + dt.timedelta(minutes=6)) == 1
    fault.refresh_from_db()
    assert fault.ticket_id is not None and fault.dispatched_at is not None
    assert TeamAlert.objects.filter(team=team, event="fault.alert").count() == 1


def test_a_lone_fault_that_had_to_persist_goes_out_at_once_in_a_big_building():
    _places, team, devices = _building_of(5)
    Feeder(devices[1]).feed(0, 10, ch_pressure=1.5)  # a healthy neighbour
    Feeder(devices[0]).feed(0, 35, ch_pressure=0.7)
    fault = _fault(devices[0])
    assert fault.dispatch_due_at is None and fault.dispatched_at is not None
    assert fault.ticket_id is not None
    assert TeamAlert.objects.filter(team=team, event="fault.alert").count() == 1


def test_a_fault_whose_neighbours_condition_already_holds_waits_for_the_incident():
    _places, team, devices = _building_of(5)
    start = timezone.now().timestamp() - 6 * 3600
    Feeder(devices[1], start).feed(0, 10, ch_pressure=0.7)  # holding, not yet raised
    Feeder(devices[0], start).feed(0, 35, ch_pressure=0.7)
    fault = _fault(devices[0])
    assert fault.dispatch_due_at is not None and fault.dispatched_at is None
    assert not TeamAlert.objects.filter(team=team).exists()


def test_a_substation_serving_dwellings_correlates_across_buildings(settings):
    from api.estate.models import Equipment

    ensure_standard_tree()
    first = place_factory()
    others = [place_factory(residence=first.residence) for _ in range(4)]  # other buildings
    places = [first, *others]
    substation = Equipment.objects.create(
        organisation=first.organisation,
        kind="heating_substation",
        common_area=None,
        dwelling=DwellingFactory(entrance=first.entrance),
    )
    substation.serves_dwellings.set([p.dwelling for p in places])
    devices = [DeviceFactory(dwelling=p.dwelling) for p in places]
    start = timezone.now().timestamp() - 3600
    Feeder(devices[0], start).feed(0, 1, fault_active=True)
    Feeder(devices[1], start).feed(1, 1, fault_active=True)  # 2 of 5 served: 40 %
    incident = Incident.objects.get()
    assert incident.building is None and incident.residence == first.residence
    assert Fault.objects.filter(state="suppressed").count() == 2


def test_a_residence_override_changes_the_rule_and_keeps_its_versions(world):
    place, _, device = world
    from tests.factories.accounts import UserFactory

    manager = UserFactory(organisation=place.organisation, role="manager")
    override = services.rule_override_create(
        actor=manager,
        organisation=place.organisation,
        rule="low_pressure",
        residence=place.residence,
        changes={"persistence_s": 1200.0},
        severity="critical",
        source="Notice constructeur des chaudières de la résidence",
    )
    with pytest.raises(ServiceError):
        services.rule_override_update(override=override, actor=manager, changes={"condition": 3})
    services.rule_override_update(override=override, actor=manager, severity="critical")
    assert list(RuleVersion.objects.values_list("version", flat=True)) == [2, 1]
    feeder = Feeder(device)
    feeder.feed(0, 25, ch_pressure=0.7)
    fault = _fault(device)
    assert fault.raised_at == _utc(feeder.at(20)) and fault.severity == "critical"
    assert fault.rule_version == 2001
    technician = UserFactory(organisation=place.organisation, role="technician")
    with pytest.raises(ServiceError):
        services.rule_override_delete(override=override, actor=technician)


def test_evaluating_a_batch_takes_a_fixed_number_of_queries(world, django_assert_max_num_queries):
    _, _, device = world
    others = [DeviceFactory(dwelling=DwellingFactory()) for _ in range(3)]
    feeders = [Feeder(d) for d in [device, *others]]
    items = [item for f in feeders for item in f.items(0, 5, room_temp=20.0, ch_pressure=1.5)]
    from api.telemetry.ingest import ingest_batch

    ingest_batch(items[:4])  # warms the rule cache
    with django_assert_max_num_queries(14):
        ingest_batch(items[4:])


def test_neighbours_failing_below_the_share_keep_the_hold_until_the_incident_forms():
    _places, team, devices = _building_of(10)
    start = timezone.now().timestamp() - 3600
    Feeder(devices[0], start).feed(0, 1, fault_active=True)
    Feeder(devices[1], start).feed(1, 1, fault_active=True)  # 2 of 10: not yet an incident
    later = timezone.now() + dt.timedelta(minutes=6)
    assert services.faults_dispatch_due(now=later) == 0  # held again: neighbours fail too
    assert not TeamAlert.objects.exists()
    Feeder(devices[2], start).feed(2, 1, fault_active=True)  # 3 of 10: 30 %
    assert Incident.objects.count() == 1
    assert services.faults_dispatch_due(now=later + dt.timedelta(hours=1)) == 0
    assert TeamAlert.objects.filter(team=team).count() == 1
    assert Fault.objects.filter(state="suppressed").count() == 3


def test_team_alerts_are_flood_controlled(settings):
    ensure_standard_tree()
    first = place_factory()
    places = [first] + [place_factory(residence=first.residence) for _ in range(11)]
    technician = TeamMembershipFactory(team__organisation=first.organisation).user
    team = technician.team_memberships.get().team
    TeamSectorFactory(team=team, residence=first.residence)
    OnCallShiftFactory(team=team, user=technician)
    items = []
    for place in places:
        device = DeviceFactory(dwelling=place.dwelling)
        items += Feeder(device).items(0, 1, fault_active=True)
    from api.telemetry.ingest import ingest_batch

    ingest_batch(items)
    assert Fault.objects.count() == 12
    alerts = TeamAlert.objects.filter(team=team, event="fault.alert")
    assert alerts.exclude(status="digested").count() == settings.NOTIFY_ALERT_FLOOD_LIMIT
    assert alerts.filter(status="digested").count() == 2


def test_escalation_opens_the_ticket_and_out_of_service_holds_the_fault(world, settings):
    _, team, device = world
    technician = team.memberships.first().user
    settings.TELEMETRY_RAW_RETENTION_DAYS = 10_000  # a January morning, in heating season
    feeder = Feeder(device, start=datetime(2025, 1, 7, 7, tzinfo=UTC).timestamp())
    feeder.feed(0, 200, room_temp=17.0, heat_demand=True)  # cold (minor) after 3 h
    fault = _fault(device, "cold_dwelling")
    assert fault.severity == "minor" and fault.ticket_id is None
    feeder.feed(200, 5, room_temp=15.5, heat_demand=True)  # below 16 °C: major
    fault.refresh_from_db()
    assert fault.severity == "major" and fault.ticket_id is not None
    assert "escalated" in list(fault.events.values_list("kind", flat=True))
    fault = services.fault_out_of_service(fault=fault, actor=technician, out=True)
    assert fault.state == "out_of_service"
    fault = services.fault_out_of_service(fault=fault, actor=technician, out=False)
    assert fault.state == "active_unack"


def test_a_failing_fault_step_never_loses_the_readings(world, monkeypatch, caplog):
    _, _, device = world

    def broken(found):
        raise RuntimeError("boom")

    monkeypatch.setattr(services, "apply_transitions", broken)
    result = Feeder(device).feed(0, 1, fault_active=True)
    assert result.stored == 1 and not Fault.objects.exists()
    logged = [r for r in caplog.records if r.name == "api.telemetry.hooks"]
    assert logged
    for record in logged:
        record.expected = True  # logged on purpose


def test_engine_states_are_saved_and_read_back_exactly(world):
    _, _, device = world
    other = DeviceFactory()
    from api.faults import engine

    awkward = engine.RuleState(
        rule_id="boiler_lockout",
        version=1,
        watermark=1_736_121_600.25,
        values={"fault_code": 'E\'1 "quoted" \\ back-slash, accent é, 🔥', "flame": True},
        seen={"fault_code": 1_736_121_600.25, "flame": 1_736_121_600.0},
    )
    raw = msgspec.Raw(engine.dump_state(awkward))
    plain = msgspec.Raw(engine.dump_state(engine.RuleState(rule_id="battery_low", version=1)))
    services.states_save([(device.id, {"boiler_lockout": raw}, awkward.watermark)])
    both = {"boiler_lockout": raw, "battery_low": plain}
    services.states_save([(device.id, both, awkward.watermark)], existing=True)
    services.states_save([(other.id, {"battery_low": plain}, None)], existing=True)  # no row yet
    assert DeviceRuleStates.objects.get(device=other).event_at is None

    loaded = services.states_load([device.id, other.id])
    states, watermark = loaded[device.id]
    assert watermark == awkward.watermark and set(states) == {"boiler_lockout", "battery_low"}
    assert bytes(states["boiler_lockout"]) == bytes(raw)
    assert engine.load_state(bytes(states["boiler_lockout"])) == awkward
    assert set(loaded[other.id][0]) == {"battery_low"}


def test_no_fault_is_detected_in_a_home_that_withdrew_fault_detection(world):
    from api.privacy import consent

    place, _, device = world
    consent.telemetry_consent_record(
        actor=place.tenant,
        subject=place.tenant,
        purpose="fault_detection",
        granted=False,
        channel="app",
    )
    consent.purposes_cache_forget([place.dwelling.pk])
    Feeder(device).feed(0, 35, ch_pressure=0.7)
    assert not Fault.objects.filter(device=device).exists()


def test_unit_places_are_cached_for_the_rule_cache_time_and_forgotten_on_demand(settings):
    device = DeviceFactory()
    first = services.device_places([device.pk])[device.pk]
    other = DwellingFactory(organisation=device.organisation)
    device.equipment.dwelling = other
    device.equipment.save(update_fields=["dwelling"])

    assert services.device_places([device.pk])[device.pk] == first

    services.forget_overrides()
    assert services.device_places([device.pk])[device.pk].dwelling_id == other.pk

    settings.FAULT_RULE_CACHE_S = 0  # kept no time at all
    services.forget_overrides()
    services.device_places([device.pk])
    device.equipment.dwelling = third = DwellingFactory(organisation=device.organisation)
    device.equipment.save(update_fields=["dwelling"])
    assert services.device_places([device.pk])[device.pk].dwelling_id == third.pk


def test_the_organisations_heating_season_gates_its_rules(world, settings):
    place, _team, device = world
    settings.TELEMETRY_RAW_RETENTION_DAYS = 10_000
    # A landlord whose season starts on 15 January: a cold 7 January morning is out of it.
    services.fault_calendar_set(
        actor=None,
        organisation=place.organisation,
        time_zone="Europe/Paris",
        season_start="01-15",
        season_end="05-20",
        source="Règlement de chauffage 2025",
    )
    feeder = Feeder(device, start=datetime(2025, 1, 7, 7, tzinfo=UTC).timestamp())
    feeder.feed(0, 200, room_temp=17.0, heat_demand=True)
    assert not Fault.objects.filter(device=device, rule="cold_dwelling").exists()

    # Another landlord, on the shipped season (1 October - 20 May), raises it.
    other = DeviceFactory(dwelling=place_factory().dwelling)
    feeder = Feeder(other, start=datetime(2025, 1, 7, 7, tzinfo=UTC).timestamp())
    feeder.feed(0, 200, room_temp=17.0, heat_demand=True)
    assert _fault(other, "cold_dwelling").severity == "minor"


def test_the_calendar_is_checked_and_only_administrators_change_it(world):
    place, team, _device = world
    admin = UserFactory(organisation=place.organisation, role="admin")
    technician = team.memberships.first().user
    assert services.fault_calendar_get(organisation=place.organisation)["is_default"]

    with pytest.raises(ServiceError) as refused:
        services.fault_calendar_set(
            actor=technician,
            organisation=place.organisation,
            time_zone="Europe/Paris",
            season_start="10-01",
            season_end="05-20",
        )
    assert refused.value.status_code == 403
    for field, values in (
        ("time_zone", {"time_zone": "Europe/Lyon"}),
        ("season_start", {"season_start": "02-30"}),
        ("season_end", {"season_end": "10-01"}),
    ):
        arguments = {"time_zone": "Indian/Reunion", "season_start": "10-01", "season_end": "05-20"}
        with pytest.raises(ServiceError) as error:
            services.fault_calendar_set(
                actor=admin, organisation=place.organisation, **(arguments | values)
            )
        assert error.value.field == field

    calendar = services.fault_calendar_set(
        actor=admin,
        organisation=place.organisation,
        time_zone="Indian/Reunion",
        season_start="06-01",
        season_end="09-30",
    )
    assert calendar["is_default"] is False and calendar["season_start"] == "06-01"
    organisation_id = place.organisation.pk
    context = services.engine_contexts([organisation_id])[organisation_id]
    assert (context.tz, context.season_start, context.season_end) == (
        "Indian/Reunion",
        (6, 1),
        (9, 30),
    )
