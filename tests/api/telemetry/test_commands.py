"""`palier device add|revoke` and `palier mqtt-credentials`."""

import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from api.telemetry.models import Device
from devices import credentials
from tests.factories import DwellingFactory, EquipmentFactory

pytestmark = pytest.mark.django_db


def _run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_device_add_prints_the_credentials_once_and_writes_the_files(
    settings, django_capture_on_commit_callbacks
):
    boiler = EquipmentFactory(kind="individual_boiler")
    reference = boiler.dwelling.reference

    with django_capture_on_commit_callbacks(execute=True):
        printed = json.loads(_run("device", "add", "--kind", "heating", "--dwelling", reference))

    device = Device.objects.get()
    fleet = boiler.organisation.slug
    assert printed == {
        "device_id": device.device_id,
        "username": device.device_id,
        "password": printed["password"],
        "fleet": fleet,
        "topic_prefix": f"dt/{fleet}/{device.device_id}/",
    }
    assert device.equipment == boiler
    passwd = credentials.read_passwd((settings.VAR_DIR / "mqtt" / "passwd").read_text())
    assert credentials.verify_password(printed["password"], passwd[device.device_id])


def test_device_add_explains_what_is_missing():
    dwelling = DwellingFactory()
    with pytest.raises(CommandError, match="no ventilation equipment"):
        _run("device", "add", "--kind", "ventilation", "--dwelling", dwelling.reference)
    with pytest.raises(CommandError, match="No dwelling"):
        _run("device", "add", "--kind", "heating", "--dwelling", "NOWHERE")


def test_device_revoke(django_capture_on_commit_callbacks, settings):
    boiler = EquipmentFactory(kind="individual_boiler")
    with django_capture_on_commit_callbacks(execute=True):
        printed = json.loads(
            _run("device", "add", "--kind", "heating", "--dwelling", boiler.dwelling.reference)
        )
        _run("device", "revoke", printed["device_id"])

    assert Device.objects.get().status == "revoked"
    passwd = credentials.read_passwd((settings.VAR_DIR / "mqtt" / "passwd").read_text())
    assert printed["device_id"] not in passwd
    with pytest.raises(CommandError):
        _run("device", "revoke", "hx-missing")


def test_mqtt_credentials_writes_to_the_given_folder(tmp_path):
    out = tmp_path / "generated"

    _run("mqtt_credentials", "--out", str(out))

    assert "palier-bridge" in credentials.read_passwd((out / "passwd").read_text())
    assert "topic read $share/palier/dt/#" in (out / "acl").read_text()
