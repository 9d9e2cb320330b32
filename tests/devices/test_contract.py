"""The MQTT contract v1: valid messages round-trip, hostile ones are refused with a reason."""

import json
import math
import time

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devices import contract
from devices.contract import (
    MAX_PAYLOAD_BYTES,
    VOCABULARY,
    ContractError,
    Envelope,
    Meta,
    Record,
    decode,
    encode,
    make_record,
    parse_topic,
)

NOW = 1_767_000_000.0
FLEET = "hlm-demo"
DEVICE = "heat-0001"
TOPIC = contract.telemetry_topic(FLEET, DEVICE)
HYPOTHESIS = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

ids = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.",
    min_size=1,
    max_size=64,
)


def _valid_record(name: str, draw) -> Record:
    _unit, field = VOCABULARY[name]
    low, high = contract.VALUE_BOUNDS.get(name, (-1e6, 1e6))
    t = draw(st.floats(min_value=-contract.MAX_BUFFER_AGE_S, max_value=0.0))
    if field == "vb":
        value = draw(st.booleans())
    elif field == "vs":
        value = draw(
            st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), min_size=1).map(
                lambda s: s[:32]
            )
        )
    else:
        value = draw(st.floats(min_value=low, max_value=high, allow_nan=False))
    return make_record(name, value, t=t)


@st.composite
def envelopes(draw, device: str = DEVICE) -> Envelope:
    names = draw(st.lists(st.sampled_from(sorted(VOCABULARY)), max_size=12))
    return Envelope(
        v=1,
        dev=device,
        boot=draw(st.integers(min_value=0, max_value=2**63 - 1)),
        seq=draw(st.integers(min_value=0, max_value=2**63 - 1)),
        ts=draw(st.floats(min_value=contract.MIN_TIMESTAMP, max_value=NOW + 300)),
        m=[_valid_record(name, draw) for name in names],
    )


def _raw(**overrides) -> bytes:
    body = {"v": 1, "dev": DEVICE, "boot": 1, "seq": 7, "ts": NOW, "m": []}
    body.update(overrides)
    return json.dumps(body, allow_nan=True).encode()


def _reason(topic: str, raw: bytes) -> str:
    with pytest.raises(ContractError) as caught:
        decode(topic, raw, now=NOW)
    return caught.value.reason


# --- valid messages ---------------------------------------------------------------------------


@HYPOTHESIS
@given(envelope=envelopes())
def test_valid_envelopes_round_trip_unchanged(envelope):
    decoded = decode(TOPIC, encode(envelope), now=NOW)
    assert decoded.rejected == []
    assert decoded.envelope == envelope
    assert decoded.topic == (("dt", FLEET, DEVICE, "telemetry"))


def test_a_typical_heating_message_decodes_with_its_units():
    raw = _raw(
        m=[
            {"n": "room_temp", "u": "Cel", "v": 19.5},
            {"n": "ch_pressure", "u": "bar", "v": 1.4},
            {"n": "flame", "vb": True},
            {"n": "burner_starts", "u": "count", "v": 1234},
            {"n": "fault_code", "vs": "F28"},
            {"n": "room_temp", "u": "Cel", "v": 19.1, "t": -600},
        ]
    )
    decoded = decode(TOPIC, raw, now=NOW)
    assert [r.n for r in decoded.envelope.m] == [
        "room_temp",
        "ch_pressure",
        "flame",
        "burner_starts",
        "fault_code",
        "room_temp",
    ]
    assert decoded.envelope.m[-1].t == -600
    assert decoded.status is None and decoded.meta is None


def test_encode_omits_empty_fields():
    raw = encode(Envelope(v=1, dev=DEVICE, boot=1, seq=1, ts=NOW, m=[make_record("flame", True)]))
    assert json.loads(raw)["m"] == [{"n": "flame", "vb": True}]


def test_status_and_meta_topics():
    status = decode(contract.status_topic(FLEET, DEVICE), b"offline", now=NOW)
    assert status.status == "offline" and status.envelope is None
    assert decode(contract.status_topic(FLEET, DEVICE), b"online", now=NOW).status == "online"
    meta = decode(
        contract.meta_topic(FLEET, DEVICE),
        b'{"model": "Vaillant ecoTEC", "firmware": "2.1.0", "boot": 4, "kind": "heating"}',
        now=NOW,
    )
    assert meta.meta == Meta(model="Vaillant ecoTEC", firmware="2.1.0", boot=4, kind="heating")


def test_event_topic_uses_the_envelope():
    raw = _raw(m=[{"n": "fault_active", "vb": True}, {"n": "fault_code", "vs": "F28"}])
    decoded = decode(contract.event_topic(FLEET, DEVICE), raw, now=NOW)
    assert decoded.topic.kind == "event" and len(decoded.envelope.m) == 2


def test_topic_builders_and_parser_agree():
    assert parse_topic(contract.command_topic(FLEET, DEVICE, "reboot")) == (
        "cmd",
        FLEET,
        DEVICE,
        "reboot",
    )
    assert contract.SHARED_SUBSCRIPTION == "$share/palier/dt/+/+/+"


# --- records refused one by one ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ({"n": "tenant_name", "vs": "Dupont"}, "unknown_name"),
        ({"n": "room_temp", "u": "degF", "v": 68}, "wrong_unit"),
        ({"n": "room_temp", "v": 20}, "wrong_unit"),
        ({"n": "flame", "u": "Cel", "vb": True}, "wrong_unit"),
        ({"n": "room_temp", "u": "Cel", "vs": "20"}, "wrong_value_field"),
        ({"n": "room_temp", "u": "Cel", "v": 20, "vb": True}, "wrong_value_field"),
        ({"n": "room_temp", "u": "Cel"}, "wrong_value_field"),
        ({"n": "flame", "v": 1}, "wrong_value_field"),
        ({"n": "fault_code", "vb": True}, "wrong_value_field"),
        ({"n": "room_temp", "u": "Cel", "v": 20, "t": 5}, "future_offset"),
        ({"n": "room_temp", "u": "Cel", "v": 20, "t": -30 * 86400}, "too_old"),
        ({"n": "room_temp", "u": "Cel", "v": 5000}, "out_of_range"),
        ({"n": "rh", "u": "%RH", "v": 101}, "out_of_range"),
        ({"n": "co2", "u": "ppm", "v": -1}, "out_of_range"),
        ({"n": "burner_starts", "u": "count", "v": 1e7}, "out_of_range"),
        ({"n": "fault_code", "vs": "F" * 33}, "bad_string"),
        ({"n": "fault_code", "vs": "F\u0000"}, "bad_string"),
        ({"n": "fault_code", "vs": ""}, "bad_string"),
    ],
)
def test_bad_records_are_refused_individually(record, reason):
    good = {"n": "room_temp", "u": "Cel", "v": 20.5}
    decoded = decode(TOPIC, _raw(m=[good, record, good]), now=NOW)
    assert [r.v for r in decoded.envelope.m] == [20.5, 20.5]
    assert len(decoded.rejected) == 1
    rejected, got = decoded.rejected[0]
    assert got == reason
    assert rejected["n"] == record["n"][:64]


def test_co2_at_zero_is_kept_for_the_rules_to_judge():
    decoded = decode(TOPIC, _raw(m=[{"n": "co2", "u": "ppm", "v": 0}]), now=NOW)
    assert decoded.envelope.m[0].v == 0 and not decoded.rejected


def test_non_finite_values_built_in_python_are_refused_and_made_storable():
    envelope = Envelope(
        v=1,
        dev=DEVICE,
        boot=1,
        seq=1,
        ts=NOW,
        m=[Record(n="room_temp", u="Cel", v=math.inf), Record(n="rh", u="%RH", v=math.nan)],
    )
    # The JSON encoder writes non-finite floats as null, so check the records directly too.
    assert contract.check_record(envelope.m[0]) == "non_finite"
    assert contract.check_record(envelope.m[1]) == "non_finite"
    assert contract._record_dict(envelope.m[0])["v"] == "inf"
    decoded = decode(TOPIC, encode(envelope), now=NOW)
    assert [reason for _, reason in decoded.rejected] == ["wrong_value_field"] * 2


# --- whole messages refused -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("topic", "raw", "reason"),
    [
        (TOPIC, b"", "not_json"),
        (TOPIC, b"{", "not_json"),
        (TOPIC, b"not json at all", "not_json"),
        (TOPIC, b'{"v":1,"dev":"heat-0001","boot":1,"seq":1,"ts":NaN,"m":[]}', "not_json"),
        (TOPIC, b'{"v":1,"dev":"heat-0001","boot":1,"seq":1,"ts":Infinity,"m":[]}', "not_json"),
        (TOPIC, _raw(m=[{"n": "rh", "u": "%RH", "v": float("nan")}]), "not_json"),
        (TOPIC, _raw(ts=1e999), "not_json"),
        (
            TOPIC,
            b'{"v":1,"dev":"heat-0001","boot":1,"seq":1,"ts":1,"m":[{"n":"rh","v":1e400}]}',
            "schema",
        ),
        (TOPIC, b'{"v":1,"dev":"heat-0001","boot":1,"seq":1,"ts":1e400,"m":[]}', "schema"),
        (TOPIC, b"\xff\xfe\x00{}", "not_utf8"),
        (TOPIC, b'{"v":1,"dev":"\xff","boot":1,"seq":1,"ts":1,"m":[]}', "not_utf8"),
        (TOPIC, _raw(v=2), "version"),
        (TOPIC, _raw(dev="heat-0002"), "wrong_device"),
        (TOPIC, _raw(ts=NOW + 301), "clock_ahead"),
        (TOPIC, _raw(ts=0), "clock_unset"),
        (TOPIC, _raw(seq="7"), "schema"),
        (TOPIC, _raw(seq=-1), "schema"),
        (TOPIC, _raw(seq=2**64), "schema"),
        (TOPIC, _raw(boot=True), "schema"),
        (TOPIC, _raw(m={"n": "rh"}), "schema"),
        (TOPIC, _raw(m=[{"n": "rh", "u": "%RH", "v": "50"}]), "schema"),
        (TOPIC, _raw(m=[{"n": "rh", "u": "%RH", "v": 50, "extra": 1}]), "schema"),
        (TOPIC, _raw(m=[[[[[[[[[[]]]]]]]]]]), "schema"),
        (TOPIC, _raw(extra="tenant name"), "schema"),
        (TOPIC, b'{"v":1,"dev":"heat-0001","boot":1,"seq":1,"ts":1}', "schema"),
        (TOPIC, b"[" * 10_000, "oversize"),
        (TOPIC, b"[" * 8000, "schema"),
        (TOPIC, b"1e999999", "schema"),
        (TOPIC, _raw(m=[{"n": "rh", "u": "%RH", "v": 50}] * 400), "oversize"),
        (contract.status_topic(FLEET, DEVICE), b"ONLINE", "bad_status"),
        (contract.status_topic(FLEET, DEVICE), b"", "bad_status"),
        (contract.meta_topic(FLEET, DEVICE), b'{"model": "x"}', "schema"),
        (
            contract.meta_topic(FLEET, DEVICE),
            b'{"model":"\\u0000","firmware":"1","boot":1}',
            "schema",
        ),
        (contract.meta_topic(FLEET, DEVICE), b"\xc3\x28", "not_utf8"),
        ("dt/hlm-demo/heat-0001/secrets", _raw(), "bad_topic"),
        ("dt/hlm-demo/heat-0001", _raw(), "bad_topic"),
        ("dt/hlm-demo/heat-0001/telemetry/extra", _raw(), "bad_topic"),
        ("dt/hlm demo/heat-0001/telemetry", _raw(), "bad_topic"),
        ("dt/+/heat-0001/telemetry", _raw(), "bad_topic"),
        ("dt//heat-0001/telemetry", _raw(), "bad_topic"),
        ("cmd/hlm-demo/heat-0001/reboot", _raw(), "bad_topic"),
        ("x" * 10_000, _raw(), "bad_topic"),
    ],
)
def test_hostile_messages_are_refused_whole_with_a_reason(topic, raw, reason):
    assert _reason(topic, raw) == reason


def test_a_clock_slightly_ahead_is_tolerated():
    assert decode(TOPIC, _raw(ts=NOW + 299), now=NOW).envelope.ts == NOW + 299


def test_payload_of_exactly_the_limit_is_accepted():
    base = _raw(m=[{"n": "fault_code", "vs": "F1"}])
    padded = base[:-1] + b" " * (MAX_PAYLOAD_BYTES - len(base)) + b"}"
    assert len(padded) == MAX_PAYLOAD_BYTES
    assert decode(TOPIC, padded, now=NOW).envelope is not None
    assert _reason(TOPIC, padded[:-1] + b" }") == "oversize"


# --- fuzzing: never anything but ContractError ------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=20)
    | st.sampled_from(["room_temp", "Cel", "co2", "ppm", DEVICE, "vb", "vs"]),
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(
            st.sampled_from(["n", "u", "v", "vs", "vb", "t", "x", "m", "dev"])
            | st.text(max_size=5),
            children,
            max_size=6,
        )
    ),
    max_leaves=30,
)
hostile_records = st.fixed_dictionaries(
    {"n": st.sampled_from([*VOCABULARY, "x", ""]) | st.text(max_size=70)},
    optional={
        "u": st.sampled_from(["Cel", "bar", "%RH", "ppm", "count", "", "degF"]) | json_values,
        "v": st.floats() | st.integers() | json_values,
        "vs": st.text(max_size=40) | json_values,
        "vb": st.booleans() | json_values,
        "t": st.floats() | st.integers(),
    },
)
hostile_bodies = st.fixed_dictionaries(
    {},
    optional={
        "v": st.sampled_from([1, 2, 0, "1", None, 1.0, True]),
        "dev": st.sampled_from([DEVICE, "other", "", None, 1]),
        "boot": st.integers() | json_values,
        "seq": st.integers() | json_values,
        "ts": st.floats() | st.integers() | st.just(NOW) | json_values,
        "m": st.lists(hostile_records, max_size=10) | json_values,
        "extra": json_values,
    },
)
hostile_topics = st.sampled_from(
    [
        TOPIC,
        contract.event_topic(FLEET, DEVICE),
        contract.status_topic(FLEET, DEVICE),
        contract.meta_topic(FLEET, DEVICE),
        "cmd/a/b/c",
        "dt/a/b",
        "",
        "$SYS/x",
    ]
) | st.text(max_size=80)


def _mutations(raw: bytes):
    return st.sampled_from(
        [
            raw,
            raw[: len(raw) // 2],
            raw.replace(b"1", b"NaN", 1),
            raw.replace(b"1", b"Infinity", 1),
            raw.replace(b"1", b"1e999", 1),
            raw.replace(b"1", b"-1e309", 1),
            raw + b"garbage",
            b"\xff" + raw,
            raw.replace(b'"', b"'"),
            b"[" * 5000 + b"]" * 5000,
            b'{"a":' * 3000 + b"1" + b"}" * 3000,
            raw * 40,
        ]
    )


def _assert_only_contract_errors(topic: str, raw: bytes) -> None:
    try:
        decoded = decode(topic, raw, now=NOW)
    except ContractError as error:
        assert error.reason and isinstance(error.detail, str)
        return
    for record, reason in decoded.rejected:
        assert reason and isinstance(record, dict)
        # A refused record is stored as JSON by the worker: it must serialise strictly.
        json.dumps(record, allow_nan=False).encode("utf-8")
    if decoded.envelope is not None:
        for record in decoded.envelope.m:
            assert contract.check_record(record) is None


@HYPOTHESIS
@given(topic=hostile_topics, body=hostile_bodies, data=st.data())
def test_hostile_structured_payloads_only_raise_contract_errors(topic, body, data):
    raw = json.dumps(body, allow_nan=True).encode("utf-8", "surrogatepass")
    _assert_only_contract_errors(topic, data.draw(_mutations(raw)))


@HYPOTHESIS
@given(topic=hostile_topics, raw=st.binary(max_size=9000))
def test_random_bytes_only_raise_contract_errors(topic, raw):
    _assert_only_contract_errors(topic, raw)


@HYPOTHESIS
@given(envelope=envelopes(), record=hostile_records)
def test_one_hostile_record_never_spoils_the_valid_ones(envelope, record):
    body = msgspec.to_builtins(envelope)
    body["m"].append(record)
    raw = json.dumps(body, allow_nan=True).encode("utf-8", "surrogatepass")
    try:
        decoded = decode(TOPIC, raw, now=NOW)
    except ContractError as error:
        # Only a type error inside the record may refuse the message whole.
        assert error.reason in {"schema", "not_json", "not_utf8", "oversize"}
        return
    assert decoded.envelope.m[: len(envelope.m)] == envelope.m


def test_clock_uses_the_given_now_not_the_wall_clock():
    future = time.time() + 3600
    assert decode(TOPIC, _raw(ts=future), now=future).envelope.ts == future


record_structs = st.builds(
    Record,
    n=st.sampled_from([*VOCABULARY, "x"]),
    u=st.sampled_from([None, "", "Cel", "bar", "%RH", "ppm", "count", "1/min", "Pa", "%", "dBm"]),
    v=st.none() | st.floats() | st.integers(min_value=-(10**7), max_value=10**7).map(float),
    vs=st.none() | st.text(max_size=40),
    vb=st.none() | st.booleans(),
    t=st.floats() | st.just(0.0),
)


@HYPOTHESIS
@given(records=st.lists(record_structs, max_size=6))
def test_the_fast_path_agrees_with_the_per_record_reasons(records):
    assert contract._all_valid(records) == all(contract.check_record(r) is None for r in records)


def test_a_bridge_pool_can_serve_some_fleets_only():
    assert contract.subscriptions(shared=True) == [contract.SHARED_SUBSCRIPTION]
    assert contract.subscriptions(shared=False) == [contract.PLAIN_SUBSCRIPTION]
    assert contract.subscriptions(shared=True, fleets=("lyon", "metz")) == [
        "$share/palier/dt/lyon/+/+",
        "$share/palier/dt/metz/+/+",
    ]
    assert contract.subscriptions(shared=False, fleets=("lyon",)) == ["dt/lyon/+/+"]
