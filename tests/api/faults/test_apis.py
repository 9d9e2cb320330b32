"""The faults API: list and filters, lifecycle actions, readings, device board, metrics, rules."""

import datetime as dt

import pytest
from django.utils import timezone

from api.faults.models import FaultEvent
from tests.api.faults.conftest import Feeder
from tests.conftest import client_for
from tests.factories.accounts import UserFactory
from tests.factories.estate import TeamMembershipFactory, TeamSectorFactory, place_factory
from tests.factories.faults import FaultFactory, RuleOverrideFactory
from tests.factories.notifications import TeamAlertFactory
from tests.factories.telemetry import DeviceFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    place = place_factory()
    technician = TeamMembershipFactory(team__organisation=place.organisation).user
    TeamSectorFactory(team=technician.team_memberships.get().team, residence=place.residence)
    manager = UserFactory(organisation=place.organisation, role="manager")
    device = DeviceFactory(dwelling=place.dwelling)
    return place, technician, manager, device


def test_the_list_is_staff_only_filtered_and_takes_a_fixed_number_of_queries(
    world, django_assert_num_queries
):
    place, technician, manager, device = world
    for rule, severity, state in (
        ("low_pressure", "major", "active_unack"),
        ("no_heat", "critical", "active_ack"),
        ("co2_high", "minor", "cleared"),
    ):
        FaultFactory(device=device, rule=rule, severity=severity, state=state)
    FaultFactory(place=place_factory())  # another organisation's
    client = client_for(technician)

    response = client.get("/api/v1/faults/")
    assert response.status_code == 200 and response.json()["count"] == 3
    response = client.get("/api/v1/faults/", {"state": ["active_unack", "active_ack"]})
    assert {f["rule"] for f in response.json()["results"]} == {"low_pressure", "no_heat"}
    response = client.get("/api/v1/faults/", {"severity": "critical", "device": device.device_id})
    assert [f["rule"] for f in response.json()["results"]] == ["no_heat"]
    response = client.get("/api/v1/faults/", {"residence": str(place.residence.pk)})
    assert response.json()["count"] == 3
    response = client.get("/api/v1/faults/", {"is_open": "false"})
    assert [f["rule"] for f in response.json()["results"]] == ["co2_high"]
    assert client_for(place.tenant).get("/api/v1/faults/").status_code == 403

    other = DeviceFactory(dwelling=place_factory(residence=place.residence).dwelling)
    FaultFactory(device=other)
    client = client_for(manager)
    client.get("/api/v1/faults/")  # warms the token and the session caches
    with django_assert_num_queries(3):  # user, count, page (relations joined)
        response = client.get("/api/v1/faults/")
    assert response.json()["count"] == 4


def test_acknowledge_shelve_unshelve_and_comment(world):
    _place, technician, _, device = world
    fault = FaultFactory(device=device)
    client = client_for(technician)
    base = f"/api/v1/faults/{fault.pk}/"

    response = client.post(base + "acknowledge/", {"note": "Vu"}, format="json")
    assert response.status_code == 200 and response.json()["state"] == "active_ack"
    assert client.post(base + "acknowledge/", {}, format="json").status_code == 409

    past = (timezone.now() - dt.timedelta(hours=1)).isoformat()
    response = client.post(base + "shelve/", {"until": past, "reason": "x"}, format="json")
    assert response.status_code == 400
    until = (timezone.now() + dt.timedelta(days=3)).isoformat()
    response = client.post(
        base + "shelve/", {"until": until, "reason": "Entreprise jeudi"}, format="json"
    )
    assert response.status_code == 200 and response.json()["state"] == "shelved"
    response = client.post(base + "unshelve/", {}, format="json")
    assert response.json()["state"] == "active_ack"

    response = client.post(base + "comments/", {"text": "Pièce commandée"}, format="json")
    assert response.status_code == 201
    assert [c["note"] for c in client.get(base + "comments/").json()] == ["Pièce commandée"]
    detail = client.get(base).json()
    assert [e["kind"] for e in detail["events"]] == [
        "acknowledged",
        "shelved",
        "unshelved",
        "comment",
    ]
    assert detail["rule_source"]
    assert FaultEvent.objects.filter(fault=fault).count() == 4


def test_out_of_service_while_the_unit_is_worked_on_then_back(world):
    _place, technician, _, device = world
    fault = FaultFactory(device=device)
    client = client_for(technician)
    base = f"/api/v1/faults/{fault.pk}/"

    assert client.post(base + "back-in-service/", {}, format="json").status_code == 409
    response = client.post(base + "out-of-service/", {"note": "Chaudière en révision"})
    assert response.status_code == 200 and response.json()["state"] == "out_of_service"
    listed = client.get("/api/v1/faults/", {"state": "out_of_service"}).json()
    assert [f["id"] for f in listed["results"]] == [str(fault.pk)]

    response = client.post(base + "back-in-service/", {"note": "Révision faite"})
    assert response.status_code == 200 and response.json()["state"] == "active_unack"
    kinds = [(e["kind"], e["note"]) for e in client.get(base).json()["events"]]
    assert kinds == [
        ("out_of_service", "Chaudière en révision"),
        ("returned", "Révision faite"),
    ]


def test_readings_context_covers_the_day_before_the_fault(world):
    _place, technician, _, device = world
    feeder = Feeder(device, start=timezone.now().timestamp() - 3 * 3600)
    feeder.feed(0, 10, ch_pressure=1.5)
    feeder.feed(10, 35, ch_pressure=0.7)
    from api.faults.models import Fault

    fault = Fault.objects.get(device=device, rule="low_pressure")
    response = client_for(technician).get(f"/api/v1/faults/{fault.pk}/readings/")
    assert response.status_code == 200
    series = {s["name"]: s for s in response.json()["series"]}
    assert set(series) == {"ch_pressure"}
    assert len(series["ch_pressure"]["points"]) == 45


def test_device_board_shows_each_unit_and_its_open_faults(world):
    place, technician, _, device = world
    quiet = DeviceFactory(dwelling=place_factory(residence=place.residence).dwelling)
    FaultFactory(device=device, severity="critical")
    FaultFactory(device=device, rule="co2_high", state="cleared")
    response = client_for(technician).get(f"/api/v1/residences/{place.residence.pk}/device-board/")
    assert response.status_code == 200
    board = {d["device_id"]: d for d in response.json()["devices"]}
    assert board[device.device_id]["health"] == "fault"
    assert board[device.device_id]["worst_severity"] == "critical"
    assert len(board[device.device_id]["faults"]) == 1
    assert board[quiet.device_id]["health"] == "ok" and board[quiet.device_id]["faults"] == []
    other = place_factory()
    response = client_for(technician).get(f"/api/v1/residences/{other.residence.pk}/device-board/")
    assert response.status_code == 404


def test_metrics_count_alarms_per_team_standing_and_chattering(world):
    place, technician, _, device = world
    team = technician.team_memberships.get().team
    TeamAlertFactory(team=team, organisation=place.organisation, event="fault.alert")
    standing = FaultFactory(device=device, raised_at=timezone.now() - dt.timedelta(days=2))
    chatter = FaultFactory(device=device, rule="co2_high")
    moment = timezone.now().replace(second=10)
    for kind in ("raised", "cleared", "repeated"):
        FaultEvent.objects.create(fault=chatter, kind=kind, at=moment)
    body = client_for(technician).get("/api/v1/faults/metrics/").json()
    assert body["alarms_per_team_10_min"] == [
        {"team": str(team.pk), "team_name": team.name, "count": 1}
    ]
    assert body["standing_ids"] == [str(standing.pk)]
    assert body["chattering_ids"] == [str(chatter.pk)]
    assert client_for(place.tenant).get("/api/v1/faults/metrics/").status_code == 403


def test_managers_override_rules_with_versions(world):
    place, technician, manager, _ = world
    client = client_for(manager)
    body = {
        "rule": "low_pressure",
        "residence": str(place.residence.pk),
        "changes": {"persistence_s": 1200},
        "source": "Notice du fabricant",
    }
    response = client.post("/api/v1/fault-rules/", body, format="json")
    assert response.status_code == 201, response.content
    created = response.json()
    assert created["definition"]["persistence_s"] == 1200 and created["version"] == 1
    assert client.post("/api/v1/fault-rules/", body, format="json").status_code == 409
    bad = {**body, "residence": None, "changes": {"persistence_s": "soon"}}
    assert client.post("/api/v1/fault-rules/", bad, format="json").status_code == 400
    wrong_op = {"type": "cmp", "signal": "ch_pressure", "op": "<>", "value": 0.8}
    bad = {**body, "residence": None, "changes": {"condition": wrong_op}}
    assert client.post("/api/v1/fault-rules/", bad, format="json").status_code == 400
    bad = {**body, "residence": None, "changes": {"\x00": [{"a": "\x00"}]}}
    response = client.post("/api/v1/fault-rules/", bad, format="json")
    assert response.status_code == 400 and "changes" in response.json()["fields"]

    url = f"/api/v1/fault-rules/{created['id']}/"
    response = client.patch(url, {"severity": "critical"}, format="json")
    assert response.json()["version"] == 2
    versions = client.get(url + "versions/").json()
    assert [v["version"] for v in versions] == [2, 1]
    assert client_for(technician).get("/api/v1/fault-rules/").status_code == 403
    assert client.delete(url).status_code == 204
    assert client.get("/api/v1/fault-rules/").json()["count"] == 0
    RuleOverrideFactory(residence=place_factory().residence)  # another organisation's
    assert client.get("/api/v1/fault-rules/").json()["count"] == 0


def test_the_rule_list_takes_a_fixed_number_of_queries(world, django_assert_num_queries):
    place, _, manager, _ = world
    RuleOverrideFactory(residence=place.residence)
    RuleOverrideFactory(residence=place_factory(organisation=place.organisation).residence)
    RuleOverrideFactory(organisation=place.organisation, rule="no_heat")
    client = client_for(manager)
    client.get("/api/v1/fault-rules/")
    with django_assert_num_queries(3):
        response = client.get("/api/v1/fault-rules/")
    assert response.json()["count"] == 3


def test_scope_tenants_see_nothing_and_staff_only_their_residences(world):
    place, technician, manager, device = world
    fault = FaultFactory(device=device)
    elsewhere = place_factory(organisation=place.organisation)
    far_fault = FaultFactory(place=elsewhere)
    client = client_for(technician)
    ids = {f["id"] for f in client.get("/api/v1/faults/").json()["results"]}
    assert ids == {str(fault.pk)}
    assert client.get(f"/api/v1/faults/{far_fault.pk}/").status_code == 404
    assert client.post(f"/api/v1/faults/{far_fault.pk}/acknowledge/", {}).status_code == 404
    manager_ids = {f["id"] for f in client_for(manager).get("/api/v1/faults/").json()["results"]}
    assert manager_ids == {str(fault.pk), str(far_fault.pk)}
    tenant = client_for(place.tenant)
    assert tenant.get("/api/v1/faults/").status_code == 403
    assert tenant.get(f"/api/v1/faults/{fault.pk}/").status_code == 403
    assert tenant.get(f"/api/v1/residences/{place.residence.pk}/device-board/").status_code == 403


def test_the_fault_calendar_is_read_by_managers_and_set_by_administrators(world):
    place, technician, manager, _device = world
    admin = UserFactory(organisation=place.organisation, role="admin")
    body = {"time_zone": "America/Cayenne", "season_start": "11-15", "season_end": "03-31"}

    assert client_for(technician).get("/api/v1/fault-calendar/").status_code == 403
    response = client_for(manager).get("/api/v1/fault-calendar/")
    assert response.status_code == 200 and response.json()["is_default"] is True
    assert client_for(manager).put("/api/v1/fault-calendar/", body).status_code == 403

    response = client_for(admin).put("/api/v1/fault-calendar/", {**body, "season_end": "3/31"})
    assert response.status_code == 400 and "season_end" in response.json()["fields"]
    response = client_for(admin).put("/api/v1/fault-calendar/", {**body, "time_zone": "Mars"})
    assert response.status_code == 400 and "time_zone" in response.json()["fields"]
    response = client_for(admin).put("/api/v1/fault-calendar/", body, format="json")
    assert response.status_code == 200
    shown = client_for(manager).get("/api/v1/fault-calendar/").json()
    assert {k: shown[k] for k in body} == body and shown["is_default"] is False
