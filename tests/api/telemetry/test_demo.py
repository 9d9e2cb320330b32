"""The demo fleet: units in the demo dwellings, their credentials and the simulator's file."""

import json

import pytest

from api.core.demo import seed_demo
from api.telemetry.models import Device
from devices import credentials
from tests.factories import DwellingFactory, OrganisationFactory

pytestmark = pytest.mark.django_db


def _fleet(settings) -> dict:
    return json.loads((settings.VAR_DIR / "simulator-fleet.json").read_text())


def test_seed_demo_provisions_units_and_writes_the_fleet_file(settings):
    settings.MQTT_URL = "mqtt://127.0.0.1:1884"
    organisation = OrganisationFactory(slug="demo", name="Habitat Démo")
    mine = {
        DwellingFactory(entrance__building__residence__agency__organisation=organisation).reference
        for _ in range(3)
    }

    seed_demo()

    fleet = _fleet(settings)
    assert fleet["broker"] == "mqtt://127.0.0.1:1884"
    devices = {d.device_id: d for d in Device.objects.select_related("organisation")}
    assert len(fleet["devices"]) == len(devices)
    heated = {e["dwelling"] for e in fleet["devices"] if e["kind"] == "heating"}
    assert mine <= heated
    assert any(e["kind"] == "ventilation" for e in fleet["devices"])
    passwd = credentials.read_passwd((settings.VAR_DIR / "mqtt" / "passwd").read_text())
    for entry in fleet["devices"]:
        device = devices[entry["device_id"]]
        assert entry["username"] == device.device_id and entry["fleet"] == "demo"
        assert entry["topic_prefix"] == f"dt/demo/{device.device_id}/"
        assert credentials.verify_password(entry["password"], passwd[device.device_id])


def test_seeding_again_keeps_the_units_and_their_working_passwords(settings):
    organisation = OrganisationFactory(slug="demo", name="Habitat Démo")
    DwellingFactory(entrance__building__residence__agency__organisation=organisation)
    seed_demo()
    first = _fleet(settings)

    seed_demo()
    assert _fleet(settings) == first
    assert Device.objects.count() == len(first["devices"])

    (settings.VAR_DIR / "simulator-fleet.json").unlink()
    seed_demo()
    rotated = _fleet(settings)
    assert [e["device_id"] for e in rotated["devices"]] == [
        e["device_id"] for e in first["devices"]
    ]
    for entry in rotated["devices"]:
        device = Device.objects.get(device_id=entry["device_id"])
        assert credentials.verify_password(entry["password"], device.password_hash)
