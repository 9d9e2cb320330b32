"""The MQTT contract v1 between connected units and Palier (see docs/mqtt.md).

This module is shared by the bridge, the simulator and the tests, so it imports nothing from Django.
It sits on the ingest hot path: payloads are decoded straight into typed msgspec structs, the
vocabulary is a precomputed dict, and topics are parsed once per distinct topic (cached).
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Annotated, Any, NamedTuple

import msgspec

CONTRACT_VERSION = 1
MAX_PAYLOAD_BYTES = 8192
MAX_CLOCK_AHEAD_S = 300
# A unit whose clock was never set reports 1970: its readings would land outside any retention
# window and any time partition, so the whole message is refused.
MIN_TIMESTAMP = 946_684_800.0  # 2000-01-01T00:00:00Z
# Readings buffered while offline may be sent later with a negative offset, up to this age.
MAX_BUFFER_AGE_S = 7 * 86_400
MAX_ID_LENGTH = 64
MAX_STRING_VALUE_LENGTH = 32
# Anything beyond this magnitude is a firmware bug or an attack, whatever the quantity.
MAX_ABS_VALUE = 1e6
SHARE_GROUP = "palier"
SHARED_SUBSCRIPTION = f"$share/{SHARE_GROUP}/dt/+/+/+"
PLAIN_SUBSCRIPTION = "dt/+/+/+"


def subscriptions(*, shared: bool, fleets: tuple[str, ...] = ()) -> list[str]:
    """The bridge's topic filters: every fleet, or only the fleets named (one pool per landlord)."""
    if not fleets:
        return [SHARED_SUBSCRIPTION if shared else PLAIN_SUBSCRIPTION]
    prefix = f"$share/{SHARE_GROUP}/" if shared else ""
    return [f"{prefix}dt/{fleet}/+/+" for fleet in fleets]


DIRECTIONS = ("dt", "cmd")
DATA_KINDS = ("telemetry", "event", "status", "meta")
STATUS_ONLINE = "online"
STATUS_OFFLINE = "offline"

_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")
_UINT = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]
_ID = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_ID_LENGTH)]


class ContractError(ValueError):
    """A whole message refused by the contract; `reason` is a short stable code."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail[:500]


class Record(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True, gc=False):
    """One SenML-style reading: a name, a unit and exactly one value field.

    Scalars only, so never part of a reference cycle: left out of the garbage collector's
    tracking (`gc=False`), which makes decoding a message's records about a third cheaper.
    """

    n: str
    u: str | None = None
    v: float | None = None
    vs: str | None = None
    vb: bool | None = None
    t: float = 0.0


class Envelope(msgspec.Struct, forbid_unknown_fields=True):
    """A telemetry or event message: who sent it, in which boot, its sequence and its readings."""

    v: int
    dev: _ID
    boot: _UINT
    seq: _UINT
    ts: float
    m: list[Record]


class Meta(msgspec.Struct, omit_defaults=True):
    """The retained birth message: what the unit is and which boot it is in."""

    model: _ID
    firmware: _ID
    boot: _UINT
    kind: _ID | None = None


class Topic(NamedTuple):
    """A parsed topic: `dt/{fleet}/{device_id}/{kind}` or `cmd/{fleet}/{device_id}/{command}`."""

    direction: str
    fleet: str
    device_id: str
    kind: str


class Decoded(NamedTuple):
    """A message that passed the contract; records refused one by one are in `rejected`."""

    topic: Topic
    envelope: Envelope | None
    status: str | None
    meta: Meta | None
    rejected: list[tuple[dict, str]]


# name -> (unit, value field). An empty unit means the record carries no `u`.
HEATING_VOCABULARY: dict[str, tuple[str, str]] = {
    "room_temp": ("Cel", "v"),
    "room_setpoint": ("Cel", "v"),
    "flow_temp": ("Cel", "v"),
    "return_temp": ("Cel", "v"),
    "outdoor_temp": ("Cel", "v"),
    "ch_pressure": ("bar", "v"),
    "flame": ("", "vb"),
    "heat_demand": ("", "vb"),
    "burner_starts": ("count", "v"),
    "fault_active": ("", "vb"),
    "fault_code": ("", "vs"),
}
VENTILATION_VOCABULARY: dict[str, tuple[str, str]] = {
    "fan_rpm": ("1/min", "v"),
    "extract_pressure": ("Pa", "v"),
    "rh": ("%RH", "v"),
    "co2": ("ppm", "v"),
    "filter_alarm": ("", "vb"),
    "fan_fault": ("", "vb"),
}
HEALTH_VOCABULARY: dict[str, tuple[str, str]] = {
    "battery": ("%", "v"),
    "rssi": ("dBm", "v"),
}
VOCABULARY: dict[str, tuple[str, str]] = {
    **HEATING_VOCABULARY,
    **VENTILATION_VOCABULARY,
    **HEALTH_VOCABULARY,
}

# Physically possible bounds per numeric name: a value outside is a broken sensor or a forged
# message. Plausibility (e.g. a room at 45 °C) is judged later by the rules' data-quality stage.
VALUE_BOUNDS: dict[str, tuple[float, float]] = {
    "room_temp": (-50.0, 100.0),
    "room_setpoint": (0.0, 40.0),
    "flow_temp": (-50.0, 130.0),
    "return_temp": (-50.0, 130.0),
    "outdoor_temp": (-60.0, 60.0),
    "ch_pressure": (0.0, 10.0),
    "burner_starts": (0.0, MAX_ABS_VALUE),
    "fan_rpm": (0.0, 20_000.0),
    "extract_pressure": (-1_000.0, 1_000.0),
    "rh": (0.0, 100.0),
    "co2": (0.0, 40_000.0),
    "battery": (0.0, 100.0),
    "rssi": (-150.0, 0.0),
}

# Precomputed per name: (unit, field, low, high) so the per-record check is one dict lookup.
_CHECKS: dict[str, tuple[str | None, str, float, float]] = {
    name: (
        unit or None,
        field,
        *VALUE_BOUNDS.get(name, (-MAX_ABS_VALUE, MAX_ABS_VALUE)),
    )
    for name, (unit, field) in VOCABULARY.items()
}

_envelope_decoder = msgspec.json.Decoder(Envelope)
_meta_decoder = msgspec.json.Decoder(Meta)
_encoder = msgspec.json.Encoder()


def _valid_id(segment: str) -> bool:
    return 0 < len(segment) <= MAX_ID_LENGTH and _ID_CHARS.issuperset(segment)


@lru_cache(maxsize=65_536)
def _parse_topic_cached(topic: str) -> Topic:
    parts = topic.split("/")
    if len(parts) != 4:
        raise ContractError("bad_topic", "expected 4 levels")
    direction, fleet, device_id, kind = parts
    if direction not in DIRECTIONS:
        raise ContractError("bad_topic", "first level must be dt or cmd")
    if not _valid_id(fleet) or not _valid_id(device_id) or not _valid_id(kind):
        raise ContractError("bad_topic", "levels must be 1-64 of [A-Za-z0-9._-]")
    if direction == "dt" and kind not in DATA_KINDS:
        raise ContractError("bad_topic", f"unknown kind {kind!r}")
    return Topic(direction, fleet, device_id, kind)


def parse_topic(topic: str) -> Topic:
    """Split and check a topic; raises ContractError("bad_topic") on anything else."""
    if not isinstance(topic, str) or len(topic) > 4 * (MAX_ID_LENGTH + 1):
        raise ContractError("bad_topic", "not a topic string or too long")
    return _parse_topic_cached(topic)


def _safe_value(value: Any) -> Any:
    """Make a refused record's value storable as JSON in PostgreSQL (no NaN, NUL or surrogate)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, str):
        return value[:MAX_ID_LENGTH].replace("\x00", "").encode("utf-8", "replace").decode()
    return value


def _record_dict(record: Record) -> dict:
    return {
        key: _safe_value(getattr(record, key))
        for key in ("n", "u", "v", "vs", "vb", "t")
        if getattr(record, key) is not None
    }


def check_record(record: Record) -> str | None:
    """Why one record is refused, or None when it is acceptable."""
    check = _CHECKS.get(record.n)
    if check is None:
        return "unknown_name"
    unit, field, low, high = check
    if (record.u or None) != unit:
        return "wrong_unit"
    t = record.t
    if not math.isfinite(t):
        return "non_finite"
    if t > 0:
        return "future_offset"
    if t < -MAX_BUFFER_AGE_S:
        return "too_old"
    if field == "v":
        value = record.v
        if value is None or record.vs is not None or record.vb is not None:
            return "wrong_value_field"
        if not math.isfinite(value):
            return "non_finite"
        if not low <= value <= high:
            return "out_of_range"
    elif field == "vb":
        if record.vb is None or record.v is not None or record.vs is not None:
            return "wrong_value_field"
    else:
        text = record.vs
        if text is None or record.v is not None or record.vb is not None:
            return "wrong_value_field"
        if not 0 < len(text) <= MAX_STRING_VALUE_LENGTH or not (
            text.isascii() and text.isprintable()
        ):
            return "bad_string"
    return None


def _all_valid(records: list[Record]) -> bool:
    """The hot path: the same checks as check_record, inlined, without reasons.

    Comparisons with NaN are false, so chained bounds also reject non-finite numbers.
    """
    checks = _CHECKS
    oldest = -MAX_BUFFER_AGE_S
    for record in records:
        check = checks.get(record.n)
        if check is None:
            return False
        unit, field, low, high = check
        if (record.u or None) != unit or not oldest <= record.t <= 0:
            return False
        if field == "v":
            value = record.v
            if value is None or record.vs is not None or record.vb is not None:
                return False
            if not low <= value <= high:
                return False
        elif field == "vb":
            if record.vb is None or record.v is not None or record.vs is not None:
                return False
        else:
            text = record.vs
            if text is None or record.v is not None or record.vb is not None:
                return False
            if not 0 < len(text) <= MAX_STRING_VALUE_LENGTH:
                return False
            if not (text.isascii() and text.isprintable()):
                return False
    return True


def _decode_failure(raw: bytes, error: Exception) -> ContractError:
    if isinstance(error, msgspec.ValidationError):
        return ContractError("schema", str(error))
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return ContractError("not_utf8", "payload is not UTF-8")
    return ContractError("not_json", str(error))


def decode(topic: str, raw: bytes, *, now: float) -> Decoded:
    """Validate one message against contract v1; raises ContractError to refuse it whole."""
    parsed = parse_topic(topic)
    if parsed.direction != "dt":
        raise ContractError("bad_topic", "devices publish only under dt/")
    if not isinstance(raw, bytes | bytearray | memoryview):
        raise ContractError("schema", "payload is not bytes")
    size = len(raw)
    if size > MAX_PAYLOAD_BYTES:
        raise ContractError("oversize", f"{size} bytes > {MAX_PAYLOAD_BYTES}")
    kind = parsed.kind
    if kind == "status":
        return Decoded(parsed, None, _decode_status(raw), None, [])
    if kind == "meta":
        return Decoded(parsed, None, None, _decode_meta(raw), [])
    try:
        envelope = _envelope_decoder.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError) as error:
        raise _decode_failure(bytes(raw), error) from None
    if envelope.v != CONTRACT_VERSION:
        raise ContractError("version", f"v={envelope.v}, expected {CONTRACT_VERSION}")
    if envelope.dev != parsed.device_id:
        raise ContractError("wrong_device", "dev differs from the topic's device")
    ts = envelope.ts
    if not math.isfinite(ts) or ts < MIN_TIMESTAMP:
        raise ContractError("clock_unset", f"ts={ts!r}")
    if ts > now + MAX_CLOCK_AHEAD_S:
        raise ContractError("clock_ahead", f"ts is {ts - now:.0f} s ahead")
    records = envelope.m
    if _all_valid(records):
        return Decoded(parsed, envelope, None, None, [])
    rejected: list[tuple[dict, str]] = []
    kept = None
    for index, record in enumerate(records):
        reason = check_record(record)
        if reason is not None:
            if kept is None:
                kept = records[:index]
            rejected.append((_record_dict(record), reason))
        elif kept is not None:
            kept.append(record)
    if kept is not None:
        envelope.m = kept
    return Decoded(parsed, envelope, None, None, rejected)


def _decode_status(raw: bytes | bytearray | memoryview) -> str:
    if raw == b"online":
        return STATUS_ONLINE
    if raw == b"offline":
        return STATUS_OFFLINE
    if not raw:
        raise ContractError("bad_status", "empty status payload")
    raise ContractError("bad_status", "status must be online or offline")


def _decode_meta(raw: bytes | bytearray | memoryview) -> Meta:
    try:
        meta = _meta_decoder.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError) as error:
        raise _decode_failure(bytes(raw), error) from None
    # isprintable() is False for NUL, control characters and lone surrogates alike.
    if not (meta.model.isprintable() and meta.firmware.isprintable()):
        raise ContractError("schema", "meta strings must be printable")
    if meta.kind is not None and not meta.kind.isprintable():
        raise ContractError("schema", "meta strings must be printable")
    return meta


def encode(envelope: Envelope) -> bytes:
    """Serialise an envelope as compact JSON (default fields omitted)."""
    return _encoder.encode(envelope)


def encode_meta(meta: Meta) -> bytes:
    """Serialise the retained birth message."""
    return _encoder.encode(meta)


def telemetry_topic(fleet: str, device_id: str) -> str:
    """Where a unit publishes its periodic readings."""
    return f"dt/{fleet}/{device_id}/telemetry"


def event_topic(fleet: str, device_id: str) -> str:
    """Where a unit publishes state changes as they happen (fault, flame loss...)."""
    return f"dt/{fleet}/{device_id}/event"


def status_topic(fleet: str, device_id: str) -> str:
    """Retained `online` / `offline` (the last will)."""
    return f"dt/{fleet}/{device_id}/status"


def meta_topic(fleet: str, device_id: str) -> str:
    """Retained birth message: model, firmware, boot."""
    return f"dt/{fleet}/{device_id}/meta"


def command_topic(fleet: str, device_id: str, command: str) -> str:
    """Where Palier sends a command to one unit."""
    if not _valid_id(command):
        raise ContractError("bad_topic", "command must be 1-64 of [A-Za-z0-9._-]")
    return f"cmd/{fleet}/{device_id}/{command}"


def topic_prefix(fleet: str, device_id: str) -> str:
    """The data topic prefix a unit may publish under."""
    return f"dt/{fleet}/{device_id}/"


def make_record(name: str, value: float | bool | str, *, t: float = 0.0) -> Record:
    """Build a record with the vocabulary's unit and value field for `name`."""
    unit, field = VOCABULARY[name]
    u = unit or None
    if field == "vb":
        return Record(n=name, u=u, vb=bool(value), t=t)
    if field == "vs":
        return Record(n=name, u=u, vs=str(value), t=t)
    return Record(n=name, u=u, v=float(value), t=t)
