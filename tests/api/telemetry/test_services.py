"""Device provisioning and credentials, offline detection, aggregates and retention."""

import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.utils import timezone

from api.core.exceptions import ServiceError
from api.telemetry import services, storage
from api.telemetry.ingest import ingest_batch
from api.telemetry.models import (
    Device,
    DeviceEvent,
    Quarantine,
    QuarantineCounter,
    ReadingHour,
)
from devices import credentials
from devices.contract import make_record
from tests.factories import EquipmentFactory, UserFactory
from tests.factories.telemetry import DeviceFactory, equipment_for, telemetry_item

pytestmark = pytest.mark.django_db


# --- Provisioning and credentials ------------------------------------------------------------


def test_provisioning_returns_the_password_once_and_publishes_credentials(
    settings, django_capture_on_commit_callbacks
):
    equipment = equipment_for("heating")
    with django_capture_on_commit_callbacks(execute=True):
        device, password = services.device_provision(
            organisation=equipment.organisation, kind="heating", equipment=equipment
        )

    assert device.device_id.startswith("hx-") and len(device.device_id) == 13
    assert device.device_id.replace("-", "").isalnum() and device.device_id.islower()
    assert password not in device.password_hash
    assert credentials.verify_password(password, device.password_hash)
    assert device.events.get().kind == "provisioned"
    folder = settings.VAR_DIR / "mqtt"
    passwd = credentials.read_passwd((folder / "passwd").read_text())
    assert credentials.verify_password(password, passwd[device.device_id])
    assert credentials.verify_password(services.DEV_BRIDGE_PASSWORD, passwd["palier-bridge"])
    acl = (folder / "acl").read_text()
    fleet = equipment.organisation.slug
    assert credentials.acl_allows(acl, device.device_id, f"{device.topic_prefix}telemetry", "write")
    assert credentials.acl_allows(
        acl, device.device_id, f"cmd/{fleet}/{device.device_id}/x", "read"
    )
    assert not credentials.acl_allows(acl, device.device_id, f"dt/{fleet}/other/telemetry", "write")
    assert credentials.acl_allows(acl, "palier-bridge", "$share/palier/dt/+/+/+", "read")


def test_provisioning_refuses_equipment_that_does_not_match():
    vmc = EquipmentFactory(kind="ventilation_unit")
    other = equipment_for("heating")
    with pytest.raises(ServiceError) as wrong_kind:
        services.device_provision(organisation=vmc.organisation, kind="heating", equipment=vmc)
    with pytest.raises(ServiceError) as other_org:
        services.device_provision(organisation=vmc.organisation, kind="heating", equipment=other)
    caretaker = UserFactory(organisation=other.organisation, role="caretaker")
    with pytest.raises(ServiceError) as role:
        services.device_provision(
            organisation=other.organisation, kind="heating", equipment=other, actor=caretaker
        )

    assert wrong_kind.value.code == "wrong_equipment"
    assert other_org.value.code == "not_found"
    assert role.value.status_code == 403
    assert not Device.objects.exists()


def test_revocation_removes_the_credentials_and_ingest_ignores_the_device(
    settings, django_capture_on_commit_callbacks
):
    device = DeviceFactory()
    keep = DeviceFactory(organisation=device.organisation)
    with django_capture_on_commit_callbacks(execute=True):
        services.device_revoke(device=device)
        services.device_revoke(device=device)

    device.refresh_from_db()
    assert device.status == "revoked" and device.revoked_at is not None
    assert list(device.events.values_list("kind", flat=True)) == ["revoked"]
    passwd = credentials.read_passwd((settings.VAR_DIR / "mqtt" / "passwd").read_text())
    assert device.device_id not in passwd and keep.device_id in passwd
    acl = (settings.VAR_DIR / "mqtt" / "acl").read_text()
    assert not credentials.acl_allows(
        acl, device.device_id, f"{device.topic_prefix}status", "write"
    )
    result = ingest_batch([telemetry_item(device, seq=1)])
    assert (result.stored, result.unknown) == (0, 1)


def test_credential_files_take_the_bridge_user_from_mqtt_url(settings, tmp_path):
    settings.MQTT_URL = "mqtt://bridge-x:s3cret%2Fpw@broker:1883"
    device = DeviceFactory()

    passwd_path, acl_path = services.mqtt_credential_files_write(tmp_path / "out")

    passwd = credentials.read_passwd(passwd_path.read_text())
    assert set(passwd) == {"bridge-x", device.device_id}
    assert credentials.verify_password("s3cret/pw", passwd["bridge-x"])
    assert acl_path.read_text().splitlines()[1] == "user bridge-x"
    assert not list((tmp_path / "out").glob(".*"))  # no temporary file left behind


def test_production_needs_the_bridge_credentials_in_mqtt_url(settings):
    settings.PRODUCTION = True
    settings.MQTT_URL = "mqtt://mosquitto:1883"
    with pytest.raises(ServiceError):
        services.bridge_credentials()


def test_credential_changes_make_mosquitto_reload(settings, tmp_path):
    marker = tmp_path / "reloaded"
    script = (
        "import signal, sys, time, pathlib\n"
        f"signal.signal(signal.SIGHUP, lambda *a: pathlib.Path({str(marker)!r}).write_text('1'))\n"
        "print('ready', flush=True)\n"
        "time.sleep(30)\n"
    )
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().strip() == "ready"
        pid_file = tmp_path / "mosquitto.pid"
        pid_file.write_text(f"{process.pid}\n")
        settings.MOSQUITTO_PID_FILE = str(pid_file)

        services.mqtt_credential_files_write()

        deadline = time.monotonic() + 5
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert marker.exists()
    finally:
        process.kill()
        process.wait()


# --- Offline detection -----------------------------------------------------------------------


def test_units_silent_for_three_intervals_go_offline_with_an_event():
    now = timezone.now()
    silent = DeviceFactory(
        status="online", last_seen_at=now - timedelta(seconds=200), reporting_interval_s=60
    )
    slow = DeviceFactory(
        status="online", last_seen_at=now - timedelta(seconds=200), reporting_interval_s=300
    )
    recent = DeviceFactory(status="online", last_seen_at=now - timedelta(seconds=30))
    never = DeviceFactory(status="provisioned")

    assert services.devices_mark_silent_offline(now=now) == 1
    assert services.devices_mark_silent_offline(now=now) == 0

    statuses = dict(Device.objects.values_list("device_id", "status"))
    assert statuses[silent.device_id] == "offline"
    assert {statuses[d.device_id] for d in (slow, recent)} == {"online"}
    assert statuses[never.device_id] == "provisioned"
    event = DeviceEvent.objects.get(device=silent)
    assert event.kind == "offline" and event.detail["reason"] == "silent"
    assert event.at == silent.last_seen_at + timedelta(seconds=180)


def test_a_message_sent_after_the_silence_brings_the_unit_back_online():
    now = time.time()
    device = DeviceFactory()
    ingest_batch([telemetry_item(device, seq=1, ts=now - 400, received_at=now - 400)])
    services.devices_mark_silent_offline()

    # Already on its way when the unit was marked offline (an ingest backlog): it counts.
    ingest_batch([telemetry_item(device, seq=2, ts=now - 100, received_at=now - 100)])

    device.refresh_from_db()
    assert device.status == "online"
    kinds = list(DeviceEvent.objects.filter(device=device).order_by("at").values_list("kind"))
    assert kinds == [("online",), ("offline",), ("online",)]


# --- Aggregates ------------------------------------------------------------------------------


def _hours(device, name: str) -> dict:
    from api.telemetry.vocabulary import NAME_CODES

    return {
        row.hour: (row.vmin, row.mean, row.vmax, row.count)
        for row in ReadingHour.objects.filter(device=device, name=NAME_CODES[name])
    }


def test_hourly_aggregates_follow_new_and_late_readings():
    device = DeviceFactory()
    hour = timezone.now().replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)
    base = hour.timestamp()
    ingest_batch(
        [
            telemetry_item(device, seq=1, ts=base + 600, records=[make_record("room_temp", 18)]),
            telemetry_item(device, seq=2, ts=base + 1200, records=[make_record("room_temp", 20)]),
            telemetry_item(
                device,
                seq=3,
                ts=base + 3600 + 60,
                records=[
                    make_record("room_temp", 22),
                    make_record("room_temp", 16, t=-120),  # buffered: belongs to the first hour
                    make_record("flame", True),
                ],
            ),
        ]
    )

    assert services.reading_aggregates_update() == 1
    assert services.reading_aggregates_update() == 0

    next_hour = hour + timedelta(hours=1)
    assert _hours(device, "room_temp") == {
        hour: (16.0, 18.0, 20.0, 3),
        next_hour: (22.0, 22.0, 22.0, 1),
    }
    assert _hours(device, "flame") == {next_hour: (1.0, 1.0, 1.0, 1)}
    device.refresh_from_db()
    assert device.aggregate_dirty_since is None

    # A reading buffered for hours arrives late: its hour is recomputed exactly.
    ingest_batch(
        [
            telemetry_item(
                device, seq=4, ts=base + 7300, records=[make_record("room_temp", 30, t=-7000)]
            )
        ]
    )
    services.reading_aggregates_update()
    assert _hours(device, "room_temp")[hour] == (16.0, 21.0, 30.0, 4)


def test_series_downsamples_long_ranges_to_at_most_500_points():
    from api.telemetry import selectors

    device = DeviceFactory()
    now = time.time()
    items = [
        telemetry_item(device, seq=i, ts=now - 3600 + i * 3, records=[make_record("co2", 400 + i)])
        for i in range(1, 1200)
    ]
    ingest_batch(items)

    series = selectors.device_series(
        device=device,
        name="co2",
        start=timezone.now() - timedelta(hours=1, minutes=5),
        end=timezone.now() + timedelta(minutes=1),
        resolution="raw",
    )

    assert series.bucket_s is not None and len(series.points) <= 500
    assert sum(p.count for p in series.points) == 1199
    assert min(p.vmin for p in series.points) == 401.0
    assert max(p.vmax for p in series.points) == 1599.0


# --- Retention -------------------------------------------------------------------------------


def test_purge_drops_old_partitions_old_aggregates_and_old_quarantine(settings):
    settings.TELEMETRY_RAW_RETENTION_DAYS = 90
    device = DeviceFactory()
    now = timezone.now()
    old_ts = (now - timedelta(days=95)).timestamp()
    # Stored while it was still within retention.
    ingest_batch([telemetry_item(device, seq=1, ts=old_ts)], now=now - timedelta(days=94))
    ingest_batch([telemetry_item(device, seq=2)])
    ReadingHour.objects.create(
        device=device, name=1, hour=now - timedelta(days=800), vmin=1, vmax=1, vsum=1, count=1
    )
    ReadingHour.objects.create(
        device=device, name=1, hour=now - timedelta(days=10), vmin=1, vmax=1, vsum=1, count=1
    )
    for days, suffix in ((40, "a"), (40, "b"), (1, "c")):
        Quarantine.objects.create(
            topic="dt/x/y/telemetry",
            reason="not_json",
            raw=b"x",
            size=1,
            received_at=now - timedelta(days=days),
            dedupe_hash=suffix * 64,
        )
    old_day = storage.utc_day(datetime.fromtimestamp(old_ts, tz=UTC))
    assert old_day in storage.existing_partition_days()

    result = services.telemetry_purge(now=now)

    assert result["readings"] >= 1 and result["hours"] == 1 and result["quarantined"] == 2
    assert old_day not in storage.existing_partition_days()
    assert min(storage.existing_partition_days()) >= storage.utc_day(now - timedelta(days=90))
    with connection.cursor() as cursor:
        cursor.execute("SELECT seq FROM telemetry_reading WHERE device_id = %s", [device.id])
        assert cursor.fetchall() == [(2,)]
    assert ReadingHour.objects.count() == 1
    assert Quarantine.objects.count() == 1
    counter = QuarantineCounter.objects.get()
    assert (counter.reason, counter.count) == ("not_json", 2)
    assert services.telemetry_purge(now=now) == {"readings": 0, "hours": 0, "quarantined": 0}


def test_partitions_for_the_coming_week_are_prepared():
    services.reading_partitions_prepare(days_ahead=7)

    today = storage.utc_day(timezone.now())
    days = storage.existing_partition_days()
    assert all(today + timedelta(days=n) in days for n in range(7))
