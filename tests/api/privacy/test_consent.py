"""Consent per purpose for in-home telemetry, the cached purposes selector, the tenant's view of
what their home sends, and a previous household's readings never reaching the next one."""

import datetime as dt
import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from api.accounts.models import PersonalDataAccess
from api.estate.models import Delegation, EstateEvent, TelemetryConsent
from api.privacy import consent
from api.privacy.consent import telemetry_purposes_allowed
from api.telemetry import storage
from api.telemetry.ingest import ingest_batch
from devices.contract import make_record
from tests.conftest import client_for
from tests.factories import CommonAreaFactory, LeaseFactory
from tests.factories.estate import HouseholdMemberFactory, TenantFactory, scope_world
from tests.factories.telemetry import DeviceFactory, telemetry_item

pytestmark = pytest.mark.django_db

URL = "/api/v1/privacy/consents/"
HOME_URL = "/api/v1/privacy/my-home-data/"


@pytest.fixture
def world():
    world = scope_world()
    world.device = DeviceFactory(dwelling=world.home.dwelling, reporting_interval_s=300)
    world.other_device = DeviceFactory(dwelling=world.other_tenant.dwelling)
    return world


def _staff_headers(tenant, reason="Formulaire papier signé à l'agence"):
    return {"HTTP_X_ON_BEHALF_OF": str(tenant.pk), "HTTP_X_ON_BEHALF_REASON": reason}


def test_anonymous_gets_401(api_client):
    assert api_client.get(URL).status_code == 401
    assert api_client.post(URL, {}, format="json").status_code == 401
    assert api_client.get(HOME_URL).status_code == 401


def test_defaults_until_the_household_decides(world):
    body = client_for(world.home.tenant).get(URL).json()

    (lease,) = body["leases"]
    assert lease["lease"] == str(world.home.lease.pk)
    states = {p["purpose"]: p for p in lease["purposes"]}
    assert states["fault_detection"]["allowed"] and states["fault_detection"]["by_default"]
    assert not states["comfort_statistics"]["allowed"]
    assert states["comfort_statistics"]["without"]
    assert lease["history"] == []
    assert telemetry_purposes_allowed([world.home.dwelling.pk]) == {
        world.home.dwelling.pk: {"fault_detection": True, "comfort_statistics": False}
    }


def test_each_purpose_is_decided_separately_with_time_channel_and_history(
    world, django_capture_on_commit_callbacks
):
    client = client_for(world.home.tenant)
    dwelling = world.home.dwelling.pk
    telemetry_purposes_allowed([dwelling])  # cached

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            URL, {"purpose": "comfort_statistics", "granted": True}, format="json"
        )
    assert response.status_code == 201, response.json()
    assert response.json()["channel"] == "app"
    assert telemetry_purposes_allowed([dwelling])[dwelling] == {
        "fault_detection": True,
        "comfort_statistics": True,
    }

    with django_capture_on_commit_callbacks(execute=True):
        client.post(URL, {"purpose": "fault_detection", "granted": False}, format="json")
    assert telemetry_purposes_allowed([dwelling])[dwelling] == {
        "fault_detection": False,
        "comfort_statistics": True,
    }
    assert not consent.telemetry_purpose_allowed(dwelling, "fault_detection")

    (lease,) = client.get(URL).json()["leases"]
    assert len(lease["history"]) == 2
    assert {h["purpose"] for h in lease["history"]} == {"fault_detection", "comfort_statistics"}
    assert all(h["decided_at"] and h["channel"] == "app" for h in lease["history"])
    assert TelemetryConsent.objects.filter(lease=world.home.lease).count() == 2


def test_a_withdrawal_applies_within_a_minute_even_without_the_cache_being_dropped(world):
    assert consent.CACHE_SECONDS <= 60
    dwelling = world.home.dwelling.pk
    telemetry_purposes_allowed([dwelling])
    consent.telemetry_consent_record(
        actor=world.home.tenant,
        subject=world.home.tenant,
        purpose="fault_detection",
        granted=False,
        channel="app",
    )
    consent.purposes_cache_forget([dwelling])  # what expiry does after at most a minute
    assert telemetry_purposes_allowed([dwelling])[dwelling]["fault_detection"] is False


def test_a_dwelling_without_a_household_allows_everything(world):
    world.home.lease.end_date = timezone.localdate() - dt.timedelta(days=1)
    world.home.lease.start_date = world.home.lease.end_date - dt.timedelta(days=30)
    world.home.lease.save()
    assert telemetry_purposes_allowed([world.home.dwelling.pk])[world.home.dwelling.pk] == {
        "fault_detection": True,
        "comfort_statistics": True,
    }
    assert telemetry_purposes_allowed([]) == {}


def test_staff_record_on_behalf_with_a_reason_and_it_is_audited(world):
    staff = world.users["agency_staff"]
    tenant = world.home.tenant
    client = client_for(staff)

    response = client.post(
        URL,
        {"purpose": "comfort_statistics", "granted": True, "channel": "paper"},
        format="json",
        **_staff_headers(tenant),
    )

    assert response.status_code == 201, response.json()
    row = TelemetryConsent.objects.get()
    assert row.person == tenant and row.recorded_by == staff and row.reason
    event = EstateEvent.objects.get(kind="consent_recorded")
    assert event.actor == staff and event.on_behalf_of == tenant
    assert event.data == {"purpose": "comfort_statistics", "granted": True, "channel": "paper"}

    body = client.get(URL, **_staff_headers(tenant)).json()
    assert body["leases"][0]["history"][0]["by_staff"] is True
    assert PersonalDataAccess.objects.filter(viewer=staff, subject=tenant).exists()


@pytest.mark.parametrize(
    ("who", "body", "headers", "status"),
    [
        ("tenant", {"purpose": "comfort_statistics", "granted": True, "channel": "paper"}, {}, 400),
        ("tenant", {"purpose": "tracking", "granted": True}, {}, 400),
        ("tenant", {"purpose": "comfort_statistics"}, {}, 400),
        ("tenant", {"purpose": "comfort_statistics", "granted": True, "lease": "x"}, {}, 400),
        ("agency_staff", {"purpose": "comfort_statistics", "granted": True}, "staff", 400),
        ("agency_staff", {"purpose": "comfort_statistics", "granted": True}, {}, 400),
        ("caretaker", {"purpose": "comfort_statistics", "granted": True}, {}, 400),
    ],
)
def test_refusals(world, who, body, headers, status):
    if headers == "staff":
        headers = _staff_headers(world.home.tenant)  # channel app is the tenant's own
    response = client_for(world.users[who]).post(URL, body, format="json", **headers)
    assert response.status_code == status, response.json()
    assert not TelemetryConsent.objects.exists()


def test_another_lease_cannot_be_named(world):
    response = client_for(world.home.tenant).post(
        URL,
        {
            "purpose": "comfort_statistics",
            "granted": True,
            "lease": str(world.other_tenant.lease.pk),
        },
        format="json",
    )
    assert response.status_code == 400 and "lease" in response.json()["fields"]


def test_staff_need_a_reason_and_cannot_act_out_of_scope(world):
    staff = client_for(world.users["agency_staff"])
    body = {"purpose": "comfort_statistics", "granted": True, "channel": "phone"}
    no_reason = staff.post(URL, body, format="json", **_staff_headers(world.home.tenant, reason=""))
    assert no_reason.status_code == 400
    foreign = staff.post(
        URL, body, format="json", **_staff_headers(world.other_organisation.tenant)
    )
    assert foreign.status_code == 404


def test_a_view_only_delegate_cannot_decide(world):
    delegate = world.users["delegate"]
    delegation = Delegation.objects.get(delegate=delegate)
    delegation.can_create_requests = False
    delegation.save()
    response = client_for(delegate).post(
        URL,
        {"purpose": "comfort_statistics", "granted": True},
        format="json",
        HTTP_X_ON_BEHALF_OF=str(world.home.tenant.pk),
    )
    assert response.status_code == 403


def test_the_tenant_sees_what_each_unit_of_their_home_sends_in_plain_language(world):
    body = client_for(world.home.tenant).get(HOME_URL).json()

    (home,) = body["homes"]
    assert home["dwelling"] == str(world.home.dwelling.pk)
    (unit,) = home["units"]
    assert unit["device_id"] == world.device.device_id
    assert unit["how_often"] == "Toutes les 5 minutes."
    assert unit["who_sees"] and "90" in unit["kept"] and "730" in unit["kept"]
    names = {sent["name"] for sent in unit["sends"]}
    assert "room_temp" in names and "co2" not in names
    assert all(sent["label"] and sent["purposes"] for sent in unit["sends"])
    purposes = {p["purpose"]: p for p in home["purposes"]}
    assert purposes["fault_detection"]["allowed"] and purposes["fault_detection"]["explanation"]
    assert purposes["comfort_statistics"]["state"] == "Refusé"
    assert body["after_lease_days"] == 90


def test_staff_have_no_home_data(world):
    assert client_for(world.users["manager"]).get(HOME_URL).json()["homes"] == []


def test_a_previous_households_readings_never_reach_the_next_tenant(world):
    """The home's lease ended yesterday; a new tenant moved in today."""
    home = world.home
    home.lease.start_date = timezone.localdate() - dt.timedelta(days=400)
    home.lease.end_date = timezone.localdate() - dt.timedelta(days=1)
    home.lease.save()
    newcomer = TenantFactory(organisation=home.organisation)
    HouseholdMemberFactory(
        lease=LeaseFactory(dwelling=home.dwelling, start_date=timezone.localdate()),
        person=newcomer,
    )
    yesterday = time.time() - 86400
    ingest_batch(
        [
            telemetry_item(
                world.device, seq=1, ts=yesterday, records=[make_record("room_temp", 25.0)]
            )
        ]
    )

    stored = storage.latest_values([world.device.pk], since=timezone.now() - dt.timedelta(days=2))
    assert stored[world.device.pk]["room_temp"].value == 25.0  # kept, but not the newcomer's

    units = client_for(newcomer).get("/api/v1/my-home/readings").json()["dwellings"][0]["units"]
    assert units[0]["readings"] == []

    ingest_batch([telemetry_item(world.device, seq=2, records=[make_record("room_temp", 20.0)])])
    units = client_for(newcomer).get("/api/v1/my-home/readings").json()["dwellings"][0]["units"]
    assert [r["value"] for r in units[0]["readings"] if r["name"] == "room_temp"] == [20.0]


def test_units_are_filtered_by_purpose(world):
    area_device = DeviceFactory(organisation=world.home.organisation)
    area_device.equipment.dwelling = None
    area_device.equipment.common_area = CommonAreaFactory(entrance=world.home.entrance)
    area_device.equipment.save()
    ids = [world.device.pk, world.other_device.pk, area_device.pk]
    assert consent.telemetry_devices_allowed(ids, "fault_detection") == set(ids)
    assert consent.telemetry_devices_allowed(ids, "comfort_statistics") == {area_device.pk}

    consent.telemetry_consent_record(
        actor=world.home.tenant,
        subject=world.home.tenant,
        purpose="fault_detection",
        granted=False,
        channel="app",
    )
    consent.purposes_cache_forget([world.home.dwelling.pk])
    assert consent.telemetry_devices_allowed(ids, "fault_detection") == {
        world.other_device.pk,
        area_device.pk,
    }


def test_reads_do_not_grow_with_the_history_or_the_units(world):
    tenant = world.home.tenant
    client = client_for(tenant)

    def record(n):
        for _ in range(n):
            consent.telemetry_consent_record(
                actor=tenant,
                subject=tenant,
                purpose="comfort_statistics",
                granted=True,
                channel="app",
            )

    record(1)
    client.get(URL)
    client.get(HOME_URL)  # the purposes are cached from here on, as in production
    with CaptureQueriesContext(connection) as few:
        client.get(URL)
        client.get(HOME_URL)
    record(5)
    DeviceFactory.create_batch(2, dwelling=world.home.dwelling)
    with CaptureQueriesContext(connection) as many:
        client.get(URL)
        client.get(HOME_URL)
    assert len(many) == len(few)


def test_staff_charts_stop_when_the_household_withdraws_fault_detection(world):
    manager = world.users["manager"]
    url = f"/api/v1/devices/{world.device.device_id}/series"
    assert client_for(manager).get(url, {"name": "room_temp"}).status_code == 200
    consent.telemetry_consent_record(
        actor=world.home.tenant,
        subject=world.home.tenant,
        purpose="fault_detection",
        granted=False,
        channel="app",
    )
    consent.purposes_cache_forget([world.home.dwelling.pk])
    response = client_for(manager).get(url, {"name": "room_temp"})
    assert response.status_code == 403
    assert response.json()["code"] == "consent_withdrawn"
