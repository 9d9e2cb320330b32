"""The ingest service on the real PostgreSQL: storage, dedupe, device state, quarantine."""

import time
from datetime import UTC, datetime, timedelta

import msgspec
import pytest
from django.db import connection
from django.utils import timezone

from api.telemetry import hooks, storage
from api.telemetry.ingest import ingest_batch, quarantine_batch
from api.telemetry.models import DeviceEvent, Quarantine
from devices.contract import make_record
from tests.factories.telemetry import (
    DeviceFactory,
    meta_item,
    status_item,
    telemetry_dict,
    telemetry_item,
)

pytestmark = pytest.mark.django_db


def _stored_messages(device) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM telemetry_reading WHERE device_id = %s", [device.id])
        return cursor.fetchone()[0]


def _latest(device) -> dict:
    since = timezone.now() - timedelta(days=1)
    return storage.latest_values([device.id], since=since)[device.id]


def _points(device, name, *, hours=2):
    now = timezone.now()
    return storage.raw_points(
        device_id=device.id,
        name=name,
        start=now - timedelta(hours=hours),
        end=now + timedelta(minutes=10),
        limit=1000,
    )


def test_a_batch_stores_readings_and_updates_the_device():
    device = DeviceFactory()
    now = time.time()
    items = [
        telemetry_item(
            device,
            seq=seq,
            ts=now - 60 + seq,
            records=[make_record("room_temp", 19.0 + seq), make_record("flame", seq % 2 == 0)],
        )
        for seq in range(1, 4)
    ]

    result = ingest_batch(items)

    assert (result.stored, result.duplicates, result.quarantined) == (3, 0, 0)
    assert [p.value for p in _points(device, "room_temp")] == [20.0, 21.0, 22.0]
    assert [p.value for p in _points(device, "flame")] == [0.0, 1.0, 0.0]
    device.refresh_from_db()
    assert device.status == "online"
    assert (device.last_boot, device.last_seq) == (1, 3)
    latest = _latest(device)
    assert (latest["room_temp"].value, latest["flame"].value) == (22.0, 0.0)
    assert device.last_seen_at == datetime.fromtimestamp(now - 60 + 3 + 0.05, tz=UTC)
    assert list(DeviceEvent.objects.filter(device=device).values_list("kind", flat=True)) == [
        "online"
    ]
    assert [m.seq for m in result.readings[device.id]] == [1, 2, 3]


def test_replaying_a_batch_stores_nothing_new(monkeypatch):
    device = DeviceFactory()
    items = [telemetry_item(device, seq=seq) for seq in range(1, 6)]
    calls = []
    monkeypatch.setattr(hooks, "on_readings_stored", lambda ids, readings: calls.append(ids))

    first = ingest_batch(items)
    state = device.__class__.objects.values().get(pk=device.pk)
    second = ingest_batch(items)

    assert (first.stored, second.stored, second.duplicates) == (5, 0, 5)
    assert second.readings == {}
    assert _stored_messages(device) == 5
    assert DeviceEvent.objects.filter(device=device).count() == 1
    after = device.__class__.objects.values().get(pk=device.pk)
    assert {k: v for k, v in after.items() if k != "updated_at"} == {
        k: v for k, v in state.items() if k != "updated_at"
    }
    assert calls == [[device.id]]


def test_a_message_repeated_within_a_batch_is_stored_once():
    device = DeviceFactory()
    item = telemetry_item(device, seq=7)

    result = ingest_batch([item, msgspec.structs.replace(item), msgspec.structs.replace(item)])

    assert (result.stored, result.duplicates) == (1, 2)
    assert len(result.readings[device.id]) == 1
    assert _stored_messages(device) == 1


def test_buffered_readings_keep_their_own_times():
    device = DeviceFactory()
    ts = time.time()
    records = [
        make_record("room_temp", 17.0, t=-600),
        make_record("room_temp", 18.0, t=-300),
        make_record("room_temp", 19.0),
        make_record("ch_pressure", 1.2, t=-900),
    ]

    ingest_batch([telemetry_item(device, seq=1, ts=ts, records=records)])

    points = _points(device, "room_temp")
    expected = [datetime.fromtimestamp(ts + t, tz=UTC) for t in (-600, -300, 0)]
    assert [p.t for p in points] == [
        e.replace(microsecond=p.t.microsecond) for e, p in zip(expected, points, strict=True)
    ]
    assert all(
        abs((p.t - e).total_seconds()) < 0.001 for p, e in zip(points, expected, strict=True)
    )
    assert [p.value for p in points] == [17.0, 18.0, 19.0]
    latest = _latest(device)
    assert latest["room_temp"].value == 19.0
    assert latest["room_temp"].t.timestamp() == pytest.approx(ts)
    assert latest["ch_pressure"].t.timestamp() == pytest.approx(ts - 900)


def test_an_older_message_arriving_late_does_not_roll_the_state_back():
    device = DeviceFactory()
    now = time.time()
    ingest_batch([telemetry_item(device, seq=10, ts=now, records=[make_record("co2", 800.0)])])

    ingest_batch([telemetry_item(device, seq=9, ts=now - 30, records=[make_record("co2", 500.0)])])

    device.refresh_from_db()
    assert device.last_seq == 10
    assert _latest(device)["co2"].value == 800.0
    assert len(_points(device, "co2")) == 2


def test_old_days_get_their_partition_on_demand():
    device = DeviceFactory()
    ts = time.time() - 10 * 86_400
    day = storage.utc_day(datetime.fromtimestamp(ts, tz=UTC))

    result = ingest_batch([telemetry_item(device, seq=1, ts=ts)])

    assert result.stored == 1
    assert day in storage.existing_partition_days()


def test_a_partition_dropped_behind_the_cache_is_created_again():
    # Another process dropped a day this process believes exists: the batch starts over.
    device = DeviceFactory()
    ts = time.time() - 3 * 86_400
    day = storage.utc_day(datetime.fromtimestamp(ts, tz=UTC))
    storage.ensure_partitions({day})
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE {storage.partition_name(day)}")

    result = ingest_batch([telemetry_item(device, seq=1, ts=ts)])

    assert result.stored == 1
    assert _stored_messages(device) == 1


def test_a_message_older_than_the_retention_is_quarantined(settings):
    settings.TELEMETRY_RAW_RETENTION_DAYS = 5
    device = DeviceFactory()

    result = ingest_batch([telemetry_item(device, seq=1, ts=time.time() - 6 * 86_400)])

    assert result.stored == 0
    assert Quarantine.objects.get().reason == "too_old"


def test_unknown_and_revoked_devices_are_quarantined_and_counted():
    device = DeviceFactory()
    revoked = DeviceFactory(organisation=device.organisation, status="revoked")
    stranger = DeviceFactory.build(device_id="hx-nobody0001", organisation=device.organisation)
    items = [
        telemetry_item(device, seq=1),
        telemetry_item(revoked, seq=1),
        telemetry_item(stranger, seq=1),
    ]

    result = ingest_batch(items)
    again = ingest_batch(items)

    assert (result.stored, result.unknown) == (1, 2)
    assert again.unknown == 2
    rows = Quarantine.objects.order_by("device_ref")
    assert [(r.device_ref, r.reason) for r in rows] == sorted(
        [(revoked.device_id, "unknown_device"), ("hx-nobody0001", "unknown_device")]
    )
    assert {r.organisation_id for r in rows} == {device.organisation_id}
    assert _stored_messages(revoked) == 0


def test_a_device_publishing_under_another_fleet_is_refused():
    device = DeviceFactory()
    item = telemetry_item(device, seq=1)
    item.fleet = "someone-else"

    result = ingest_batch([item])

    assert (result.stored, result.unknown) == (0, 1)
    assert "fleet" in Quarantine.objects.get().detail


def test_records_the_bridge_refused_are_quarantined_once():
    device = DeviceFactory()
    item = telemetry_item(device, seq=1)
    item.rejected = [
        {"record": {"n": "kitchen_temp", "u": "Cel", "v": 20}, "reason": "unknown_name"},
        {"record": {"n": "co2", "u": "ppm", "v": "NaN"}, "reason": "non_finite"},
    ]

    ingest_batch([item])
    ingest_batch([item])

    assert sorted(Quarantine.objects.values_list("reason", flat=True)) == [
        "non_finite",
        "unknown_name",
    ]
    assert _stored_messages(device) == 1


def test_malformed_items_are_quarantined_and_the_rest_is_stored():
    device = DeviceFactory()
    good = telemetry_item(device, seq=1)
    bad_payload = telemetry_dict(device, seq=2)
    bad_payload["payload"]["seq"] = "two"
    bad_record = telemetry_dict(device, seq=3)
    bad_record["payload"]["m"].append({"n": "room_temp", "u": "Cel", "v": float("inf")})
    items = [good, "not an item", {"topic": 5}, bad_payload, bad_record]

    result = ingest_batch(items)

    assert result.stored == 2
    assert sorted(Quarantine.objects.values_list("reason", flat=True)) == [
        "bad_item",
        "bad_item",
        "bad_item",
        "bad_record",
    ]


def test_last_will_marks_offline_and_a_reconnection_online():
    device = DeviceFactory()
    now = time.time()
    ingest_batch([telemetry_item(device, seq=1, ts=now - 30, received_at=now - 30)])

    ingest_batch([status_item(device, "offline", received_at=now - 20)])
    device.refresh_from_db()
    assert device.status == "offline"

    # A message that was queued before the last will does not undo it.
    ingest_batch([telemetry_item(device, seq=2, ts=now - 25, received_at=now - 25)])
    device.refresh_from_db()
    assert device.status == "offline"

    ingest_batch([status_item(device, "online", received_at=now - 10)])
    device.refresh_from_db()
    assert device.status == "online"
    kinds = list(DeviceEvent.objects.filter(device=device).order_by("at").values_list("kind"))
    assert kinds == [("online",), ("offline",), ("online",)]
    detail = DeviceEvent.objects.get(device=device, kind="offline").detail
    assert detail == {"reason": "last_will"}


def test_a_retained_online_status_replayed_to_a_bridge_is_not_news():
    device = DeviceFactory(status="offline", status_changed_at=timezone.now())
    item = status_item(device, "online", retained=True)

    ingest_batch([item])

    device.refresh_from_db()
    assert device.status == "offline"


def test_meta_records_model_firmware_and_reboots():
    device = DeviceFactory(model="", firmware="")
    ingest_batch([meta_item(device, boot=1, model="PX-2", firmware="2.1.0")])
    ingest_batch([meta_item(device, boot=1, model="PX-2", firmware="2.1.0")])
    ingest_batch([telemetry_item(device, seq=5, boot=1)])

    ingest_batch([telemetry_item(device, seq=1, boot=2)])

    device.refresh_from_db()
    assert (device.model, device.firmware, device.last_boot, device.last_seq) == (
        "PX-2",
        "2.1.0",
        2,
        1,
    )
    events = DeviceEvent.objects.filter(device=device).exclude(kind="online")
    assert sorted(events.values_list("kind", flat=True)) == ["boot", "meta"]
    assert events.get(kind="boot").detail == {"boot": 2, "previous": 1}


def test_the_fault_hook_gets_each_devices_new_messages_in_time_order(monkeypatch):
    first, second = DeviceFactory(), DeviceFactory()
    now = time.time()
    calls = []
    monkeypatch.setattr(
        hooks, "on_readings_stored", lambda ids, readings: calls.append((ids, readings))
    )
    items = [
        telemetry_item(second, seq=2, ts=now - 5),
        telemetry_item(first, seq=1, ts=now - 9),
        telemetry_item(second, seq=1, ts=now - 10),
    ]

    ingest_batch(items)

    ((ids, readings),) = calls
    assert ids == sorted([first.id, second.id])
    assert [m.seq for m in readings[second.id]] == [1, 2]
    point = next(readings[first.id][0].points())
    assert point == (pytest.approx(now - 9), "room_temp", 19.5)


def test_quarantine_batches_from_the_bridge_are_idempotent():
    device = DeviceFactory()
    received = time.time()
    items = [
        {
            "topic": f"dt/{device.organisation.slug}/{device.device_id}/telemetry",
            "reason": "not_json",
            "detail": "expected value",
            "raw_b64": "e25vdCBqc29u",
            "size": 10,
            "received_at": received,
        },
        {
            "topic": "dt/nobody/x/telemetry",
            "reason": "oversize",
            "detail": "",
            "raw_b64": "!!!",
            "size": 9000,
            "received_at": received,
        },
        "garbage",
    ]

    quarantine_batch(items)
    quarantine_batch(items)

    rows = {r.reason: r for r in Quarantine.objects.all()}
    assert set(rows) == {"not_json", "oversize", "bad_item"}
    assert bytes(rows["not_json"].raw) == b"{not json"
    assert rows["not_json"].organisation_id == device.organisation_id
    assert rows["oversize"].organisation_id is None
    assert rows["oversize"].size == 9000


def test_codes_and_numbers_survive_the_copy_format_exactly():
    device = DeviceFactory()
    ts = time.time()
    code = 'E"1\\x\t{a,b} NULL'
    records = [
        make_record("fault_code", code),
        make_record("co2", 1e-05),
        make_record("burner_starts", 123456.0),
        make_record("outdoor_temp", -0.0),
    ]

    # The contract allows no such text (printable ASCII only); the earlier item format,
    # checked by ingest itself, does: the COPY must carry it whole.
    ingest_batch([telemetry_dict(device, seq=1, ts=ts, records=records)])

    latest = _latest(device)
    assert latest["fault_code"].text == code
    assert latest["co2"].value == 1e-05
    assert latest["burner_starts"].value == 123456.0
    assert latest["outdoor_temp"].value == 0.0
