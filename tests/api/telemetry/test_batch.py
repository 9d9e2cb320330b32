"""The batch format between the bridge and ingest workers (api/telemetry/batch.py)."""

import time

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kombu.serialization import loads

from api.telemetry.batch import (
    INGEST_CONTENT_TYPE,
    IngestItem,
    decode_body,
    encode_body,
    envelope_of,
    item_from_decoded,
)
from api.telemetry.hooks import StoredMessage
from api.telemetry.ingest import ingest_batch
from api.telemetry.models import Quarantine, Reading
from devices import contract
from devices.contract import VALUE_BOUNDS, VOCABULARY, Envelope, make_record
from tests.factories.telemetry import DeviceFactory, telemetry_item

TOPIC = "dt/lmh/hx-1/telemetry"


def bridge_item(records: list, *, ts: float | None = None) -> IngestItem:
    ts = time.time() if ts is None else ts
    raw = contract.encode(Envelope(v=1, dev="hx-1", boot=2, seq=9, ts=ts, m=records))
    return item_from_decoded(TOPIC, contract.decode(TOPIC, raw, now=ts), ts + 0.1, False)


def test_readings_become_storage_columns_with_flags_as_numbers_and_codes_apart():
    item = bridge_item(
        [
            make_record("room_temp", 19.5),
            make_record("flame", True),
            make_record("fault_code", "F28"),
            make_record("heat_demand", False, t=-60),
        ]
    )

    assert item.names == ["room_temp", "flame", "fault_code", "heat_demand"]
    assert item.vals == [19.5, 1.0, None, 0.0]
    assert item.texts == [None, None, "F28", None]
    assert item.offsets == [0.0, 0.0, 0.0, -60.0]
    assert (item.boot, item.seq, item.fleet, item.device_id) == (2, 9, "lmh", "hx-1")


def test_columns_stay_absent_when_every_reading_is_plain():
    item = bridge_item([make_record("room_temp", 19.5), make_record("rssi", -70)])

    assert item.offsets is None and item.texts is None


def test_refused_records_travel_with_their_reason():
    ts = time.time()
    payload = {
        "v": 1,
        "dev": "hx-1",
        "boot": 1,
        "seq": 1,
        "ts": ts,
        "m": [{"n": "room_temp", "u": "Cel", "v": 19.5}, {"n": "kitchen", "u": "Cel", "v": 2}],
    }
    decoded = contract.decode(TOPIC, msgspec.json.encode(payload), now=ts)

    item = item_from_decoded(TOPIC, decoded, ts, False)

    assert item.names == ["room_temp"]
    assert item.rejected == [
        {"record": {"n": "kitchen", "u": "Cel", "v": 2.0, "t": 0.0}, "reason": "unknown_name"}
    ]


def _value(name: str):
    _unit, field = VOCABULARY[name]
    if field == "vb":
        return st.booleans()
    if field == "vs":
        return st.text(alphabet="ABCDEF0123456789", min_size=1, max_size=8)
    low, high = VALUE_BOUNDS.get(name, (-1e6, 1e6))
    return st.floats(min_value=low, max_value=high, allow_nan=False)


records = st.lists(
    st.sampled_from(sorted(VOCABULARY)).flatmap(
        lambda name: st.tuples(
            st.just(name),
            _value(name),
            st.sampled_from([0.0, 0.0, -30.0, -3600.0]),
        )
    ),
    max_size=20,
)


@settings(max_examples=150, deadline=None)
@given(records)
def test_the_device_message_is_rebuilt_exactly_from_the_columns(readings):
    sent = [make_record(name, value, t=t) for name, value, t in readings]
    ts = 1_790_000_000.25
    item = bridge_item(sent, ts=ts)

    # Through the task body and back, as a worker receives it.
    (received,), _kwargs, _embed = decode_body(encode_body((([item],), {}, {})))
    rebuilt = envelope_of(received[0])

    expected = []
    for name, value, t in readings:
        unit, field = VOCABULARY[name]
        record = {"n": name, field: value} | ({"u": unit} if unit else {})
        expected.append(record | ({"t": t} if t else {}))
    assert rebuilt == {"v": 1, "dev": "hx-1", "boot": 2, "seq": 9, "ts": ts, "m": expected}
    points = list(
        StoredMessage(
            1, "telemetry", 2, 9, ts, item.names, item.vals, item.offsets, item.texts
        ).points()
    )
    assert points == [(ts + t, name, value) for name, value, t in readings]
    assert [type(p[2]) for p in points] == [type(value) for _n, value, _t in readings]


def test_workers_decode_batches_into_items_through_the_celery_content_type():
    item = bridge_item([make_record("co2", 650)])
    body = encode_body((([item],), {}, {"callbacks": None}))

    args, kwargs, embed = loads(body, INGEST_CONTENT_TYPE, "utf-8")

    assert args[0] == [item] and kwargs == {} and embed == {"callbacks": None}


def test_an_item_that_does_not_decode_is_left_as_it_came_and_the_others_convert():
    good = bridge_item([make_record("co2", 650)])
    broken = ["dt/x/y/telemetry", "x", "y", "telemetry", "yesterday"]
    body = encode_body((([good, broken],), {}, {}))

    (items,), _kwargs, _embed = decode_body(body)

    assert items == [good, broken]


@pytest.mark.django_db
def test_ingest_stores_good_items_and_quarantines_broken_or_forged_ones():
    device = DeviceFactory()
    good = telemetry_item(device, seq=1)
    forged = telemetry_item(device, seq=2)
    forged.names = ["kitchen_temp"]
    uneven = telemetry_item(device, seq=3)
    uneven.vals = []
    broken = ["dt/x/y/telemetry", "x", "y", "telemetry", "yesterday"]
    body = encode_body((([good, forged, uneven, broken],), {}, {}))

    result = ingest_batch(decode_body(body)[0][0])

    assert (result.stored, result.quarantined) == (1, 3)
    assert Reading.objects.filter(device=device).count() == 1
    rows = sorted(Quarantine.objects.values_list("reason", "detail"))
    assert [reason for reason, _detail in rows] == ["bad_item"] * 3
    assert sorted(detail for _reason, detail in rows) == [
        "item is not an object",
        "readings' columns differ in length",
        "unknown reading name",
    ]
    forged_row = Quarantine.objects.get(detail="unknown reading name")
    assert msgspec.json.decode(forged_row.raw)["m"][0]["n"] == "kitchen_temp"
