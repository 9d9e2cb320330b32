"""Telemetry endpoints: 401 for anonymous, 404 out of scope, the allowed case, query counts."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from api.accounts.models import PersonalDataAccess
from api.telemetry import services
from api.telemetry.ingest import ingest_batch, quarantine_batch
from api.telemetry.models import Device
from devices import credentials
from devices.contract import make_record
from tests.conftest import client_for
from tests.factories.estate import scope_world
from tests.factories.telemetry import DeviceFactory, equipment_for, telemetry_item

pytestmark = pytest.mark.django_db

DEVICE_URLS = ("/api/v1/devices/{id}/", "/api/v1/devices/{id}/events/")


@pytest.fixture
def world():
    world = scope_world()
    world.devices = {
        "home": DeviceFactory(dwelling=world.home.dwelling),
        "other_tenant": DeviceFactory(dwelling=world.other_tenant.dwelling),
        "other_residence": DeviceFactory(dwelling=world.other_residence.dwelling),
        "other_organisation": DeviceFactory(dwelling=world.other_organisation.dwelling),
    }
    return world


def _ids(response) -> set[str]:
    return {row["device_id"] for row in response.json()["results"]}


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("get", "/api/v1/devices/"),
        ("post", "/api/v1/devices/"),
        ("get", "/api/v1/devices/hx-x/"),
        ("post", "/api/v1/devices/hx-x/revoke"),
        ("get", "/api/v1/devices/hx-x/series?name=room_temp"),
        ("get", "/api/v1/devices/hx-x/events/"),
        ("get", "/api/v1/my-home/readings"),
        ("get", "/api/v1/quarantine/"),
    ],
)
def test_anonymous_gets_401(method, url):
    response = getattr(APIClient(), method)(url)
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


def test_staff_list_devices_in_their_scope_only(world, django_assert_max_num_queries):
    manager, caretaker = world.users["manager"], world.users["caretaker"]

    with django_assert_max_num_queries(4):
        manager_list = client_for(manager).get("/api/v1/devices/")
    caretaker_list = client_for(caretaker).get("/api/v1/devices/")

    devices = world.devices
    assert _ids(manager_list) == {
        devices[k].device_id for k in ("home", "other_tenant", "other_residence")
    }
    assert _ids(caretaker_list) == {devices[k].device_id for k in ("home", "other_tenant")}
    row = next(
        r for r in caretaker_list.json()["results"] if r["device_id"] == devices["home"].device_id
    )
    assert row["place"]["dwelling_reference"] == world.home.dwelling.reference
    assert row["place"]["residence_id"] == str(world.home.residence.id)
    assert "password_hash" not in row


def test_the_device_list_query_count_does_not_grow_with_the_list(
    world, django_assert_max_num_queries
):
    for _ in range(5):
        DeviceFactory(dwelling=world.home.dwelling)
    with django_assert_max_num_queries(4):
        response = client_for(world.users["manager"]).get("/api/v1/devices/")
    assert response.json()["count"] == 8


def test_device_filters(world):
    client = client_for(world.users["manager"])
    vmc = DeviceFactory(dwelling=world.home.dwelling, kind="ventilation", status="online")

    by_residence = client.get(f"/api/v1/devices/?residence={world.other_residence.residence.id}")
    by_building = client.get(f"/api/v1/devices/?building={world.home.building.id}")
    by_kind = client.get("/api/v1/devices/?kind=ventilation")
    by_status = client.get("/api/v1/devices/?status=online")
    foreign = client.get(f"/api/v1/devices/?residence={world.other_organisation.residence.id}")

    assert _ids(by_residence) == {world.devices["other_residence"].device_id}
    assert _ids(by_building) == {world.devices["home"].device_id, vmc.device_id}
    assert _ids(by_kind) == _ids(by_status) == {vmc.device_id}
    assert _ids(foreign) == set()


@pytest.mark.parametrize("url", DEVICE_URLS)
def test_out_of_scope_devices_are_404(world, url):
    caretaker, manager = world.users["caretaker"], world.users["manager"]
    devices = world.devices

    assert client_for(caretaker).get(url.format(id=devices["home"].device_id)).status_code == 200
    for case, user in (("other_residence", caretaker), ("other_organisation", manager)):
        response = client_for(user).get(url.format(id=devices[case].device_id))
        assert response.status_code == 404, case
    assert client_for(manager).get(url.format(id="hx-unknown")).status_code == 404


def test_tenants_and_contractors_cannot_use_the_staff_device_endpoints(world):
    for role in ("tenant", "contractor"):
        client = client_for(world.users[role])
        assert client.get("/api/v1/devices/").status_code == 403
        device_id = world.devices["home"].device_id
        assert client.get(f"/api/v1/devices/{device_id}/").status_code == 403


def test_device_detail_shows_current_readings_and_logs_the_read(world):
    device = world.devices["home"]
    ingest_batch([telemetry_item(device, seq=1, records=[make_record("room_temp", 19.5)])])
    technician = world.users["technician"]
    technician.language = "en"
    technician.save()

    response = client_for(technician).get(f"/api/v1/devices/{device.device_id}/")

    body = response.json()
    assert body["status"] == "online"
    assert body["current"][0]["label"] == "Room temperature"
    assert body["current"][0]["value"] == 19.5
    assert PersonalDataAccess.objects.filter(
        viewer=technician, subject=world.home.tenant, context="telemetry.device"
    ).exists()


def test_provisioning_through_the_api(world, settings, django_capture_on_commit_callbacks):
    boiler = equipment_for("heating", dwelling=world.home.dwelling)
    foreign = equipment_for("heating", dwelling=world.other_organisation.dwelling)
    client = client_for(world.users["manager"])

    with django_capture_on_commit_callbacks(execute=True):
        created = client.post(
            "/api/v1/devices/", {"kind": "heating", "equipment": str(boiler.id)}, format="json"
        )
    refused = client.post(
        "/api/v1/devices/", {"kind": "heating", "equipment": str(foreign.id)}, format="json"
    )
    caretaker = client_for(world.users["caretaker"]).post(
        "/api/v1/devices/", {"kind": "heating", "equipment": str(boiler.id)}, format="json"
    )

    assert created.status_code == 201
    secret = created.json()["credentials"]
    device = Device.objects.get(device_id=secret["device_id"])
    assert secret["username"] == device.device_id
    assert secret["topic_prefix"] == f"dt/{world.home.organisation.slug}/{device.device_id}/"
    assert credentials.verify_password(secret["password"], device.password_hash)
    passwd = (settings.VAR_DIR / "mqtt" / "passwd").read_text()
    assert device.device_id in passwd
    detail = client.get(f"/api/v1/devices/{device.device_id}/").json()
    assert "password" not in str(detail)
    assert refused.status_code == 400 and "equipment" in refused.json()["fields"]
    assert caretaker.status_code == 403


def test_revocation_through_the_api(world):
    device = world.devices["home"]
    foreign = world.devices["other_organisation"]
    manager = client_for(world.users["manager"])

    assert (
        client_for(world.users["caretaker"])
        .post(f"/api/v1/devices/{device.device_id}/revoke")
        .status_code
        == 403
    )
    assert manager.post(f"/api/v1/devices/{foreign.device_id}/revoke").status_code == 404
    response = manager.post(f"/api/v1/devices/{device.device_id}/revoke")

    assert response.status_code == 200 and response.json()["status"] == "revoked"
    assert device.events.filter(kind="revoked", actor=world.users["manager"]).exists()


def test_series_raw_and_hourly(world):
    device = world.devices["home"]
    now = time.time()
    ingest_batch(
        [
            telemetry_item(
                device,
                seq=i,
                ts=now - 600 + i * 60,
                records=[make_record("ch_pressure", 1 + i / 10)],
            )
            for i in range(1, 6)
        ]
    )
    services.reading_aggregates_update()
    client = client_for(world.users["technician"])
    url = f"/api/v1/devices/{device.device_id}/series"

    raw = client.get(url, {"name": "ch_pressure"}).json()
    start = (timezone.now() - timedelta(days=3)).isoformat()
    hourly = client.get(url, {"name": "ch_pressure", "from": start, "resolution": "auto"}).json()

    assert raw["resolution"] == "raw" and raw["unit"] == "bar"
    assert [p["value"] for p in raw["points"]] == pytest.approx([1.1, 1.2, 1.3, 1.4, 1.5])
    assert hourly["resolution"] == "hour"
    assert sum(p["count"] for p in hourly["points"]) == 5
    assert min(p["min"] for p in hourly["points"]) == pytest.approx(1.1)
    assert PersonalDataAccess.objects.filter(context="telemetry.series.ch_pressure").exists()


def test_series_rejects_bad_parameters(world):
    client = client_for(world.users["manager"])
    url = f"/api/v1/devices/{world.devices['home'].device_id}/series"
    now = timezone.now()

    assert client.get(url, {"name": "kitchen"}).status_code == 400
    assert client.get(url).status_code == 400
    backwards = client.get(
        url, {"name": "co2", "from": now.isoformat(), "to": (now - timedelta(hours=1)).isoformat()}
    )
    assert backwards.status_code == 400 and "to" in backwards.json()["fields"]
    foreign = f"/api/v1/devices/{world.devices['other_organisation'].device_id}/series"
    assert client.get(foreign, {"name": "co2"}).status_code == 404


def test_a_tenant_sees_their_own_homes_readings_in_their_language(world):
    tenant = world.home.tenant
    tenant.language = "ar"
    tenant.save()
    for key in ("home", "other_tenant"):
        ingest_batch(
            [telemetry_item(world.devices[key], seq=1, records=[make_record("room_temp", 21.0)])]
        )

    body = client_for(tenant).get("/api/v1/my-home/readings").json()

    assert body["language"] == "ar"
    (dwelling,) = body["dwellings"]
    assert dwelling["id"] == str(world.home.dwelling.id)
    (unit,) = dwelling["units"]
    assert unit["device_id"] == world.devices["home"].device_id
    assert unit["readings"][0]["label"] == "درجة حرارة الغرفة"
    assert unit["readings"][0]["value"] == 21.0
    names = {c["name"] for c in body["collected"]}
    assert {"room_temp", "ch_pressure"} <= names and "co2" not in names
    assert all(c["purposes"] for c in body["collected"])
    assert "90" in body["retention"]


def test_staff_have_no_home_readings(world):
    body = client_for(world.users["manager"]).get("/api/v1/my-home/readings").json()
    assert body["dwellings"] == []
    assert body["collected"]


def test_quarantine_is_for_managers_of_the_fleet(world, django_assert_max_num_queries):
    received = time.time()
    items = [
        {
            "topic": f"dt/{place.organisation.slug}/hx-zz/telemetry",
            "reason": "not_json",
            "detail": "",
            "raw_b64": "e30=",
            "size": 2,
            "received_at": received + n,
        }
        for n, place in enumerate((world.home, world.home, world.other_organisation))
    ]
    quarantine_batch(items)

    with django_assert_max_num_queries(4):
        mine = client_for(world.users["manager"]).get("/api/v1/quarantine/")
    filtered = client_for(world.users["admin"]).get("/api/v1/quarantine/?reason=oversize")
    caretaker = client_for(world.users["caretaker"]).get("/api/v1/quarantine/")

    assert mine.json()["count"] == 2
    assert mine.json()["results"][0]["raw_text"] == "{}"
    assert filtered.json()["count"] == 0
    assert caretaker.status_code == 403


def test_device_events_list_is_paginated_with_a_fixed_query_count(
    world, django_assert_max_num_queries
):
    device = world.devices["home"]
    now = time.time()
    for n in range(6):
        ingest_batch([telemetry_item(device, seq=n + 1, boot=n + 1, received_at=now - 60 + n)])
    client = client_for(world.users["manager"])

    with django_assert_max_num_queries(5):
        response = client.get(f"/api/v1/devices/{device.device_id}/events/")

    kinds = [event["kind"] for event in response.json()["results"]]
    assert kinds.count("boot") == 5 and kinds.count("online") == 1
