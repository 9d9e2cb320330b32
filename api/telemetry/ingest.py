"""The ingest path: batches from the MQTT bridge become stored readings and device state.

Items arrive already validated by the bridge against devices/contract.py; the checks here are
the last line of defence (a malformed item is quarantined, it never fails the batch).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import msgspec
import psycopg
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from devices.contract import MAX_BUFFER_AGE_S, MIN_TIMESTAMP

from . import hooks, storage
from .batch import MAX_TIMESTAMP, IngestItem, envelope_of
from .models import Device, DeviceEvent, DeviceEventKind, DeviceStatus, Quarantine
from .vocabulary import FIELDS, NAME_CODES

logger = logging.getLogger(__name__)

RAW_LIMIT = 2048
MAX_INT = 2**63 - 1
DATA_KINDS = ("telemetry", "event")
ITEM_KINDS = ("telemetry", "event", "status", "meta")


@dataclass
class IngestResult:
    """What one batch did; `readings` are the new messages per device pk (for fault rules)."""

    stored: int = 0
    duplicates: int = 0
    quarantined: int = 0
    unknown: int = 0
    readings: dict[int, list[hooks.StoredMessage]] = field(default_factory=dict)

    def summary(self) -> dict:
        return {
            "stored": self.stored,
            "duplicates": self.duplicates,
            "quarantined": self.quarantined,
            "unknown": self.unknown,
            "devices": len(self.readings),
        }


class _BadItem(ValueError):
    """An item or record that does not have the agreed shape."""


def _utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


def _number(value, *, integer: bool = False) -> float | int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _BadItem("not a number")
    if integer:
        if not isinstance(value, int) or not 0 <= value <= MAX_INT:
            raise _BadItem("not an unsigned 63-bit integer")
        return value
    value = float(value)
    if not math.isfinite(value):
        raise _BadItem("not finite")
    return value


def _received_at(item: dict) -> datetime:
    seconds = _number(item.get("received_at"))
    if not MIN_TIMESTAMP <= seconds <= MAX_TIMESTAMP:
        raise _BadItem("received_at out of range")
    return _utc(seconds)


def _hash(*parts: object) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part if isinstance(part, bytes) else repr(part).encode())
        digest.update(b"\x1f")
    return digest.hexdigest()


def _json_bytes(value: object) -> bytes:
    try:
        return msgspec.json.encode(value)[:RAW_LIMIT]
    except (TypeError, ValueError, OverflowError):
        return repr(value).encode("utf-8", "replace")[:RAW_LIMIT]


def _topic_parts(topic: str) -> tuple[str, str]:
    """(fleet, device id) named by a `dt/fleet/device/kind` topic, blank when absent."""
    parts = topic.split("/")
    if len(parts) >= 3:
        return parts[1][:64], parts[2][:64]
    return "", ""


class _Quarantine:
    """Quarantine rows collected while a batch is processed, stored in one statement."""

    def __init__(self) -> None:
        self.rows: list[Quarantine] = []
        self.fleets: list[str] = []

    def add(
        self,
        *,
        topic: str,
        reason: str,
        detail: str,
        raw: bytes,
        size: int,
        received_at: datetime,
        key: tuple = (),
        timeless: bool = False,
    ) -> None:
        """Queue a row; `timeless` dedupes without the time (for items that carry none)."""
        topic = str(topic)[:300]
        fleet, device_ref = _topic_parts(topic)
        self.rows.append(
            Quarantine(
                topic=topic,
                device_ref=device_ref,
                reason=str(reason)[:40],
                detail=str(detail)[:500],
                raw=bytes(raw[:RAW_LIMIT]),
                size=max(0, int(size)),
                received_at=received_at,
                dedupe_hash=_hash(
                    topic,
                    bytes(raw[:RAW_LIMIT]),
                    None if timeless else received_at.timestamp(),
                    *key,
                ),
            )
        )
        self.fleets.append(fleet)

    def store(self) -> int:
        """Insert the rows, skipping those already stored (a replayed batch); return the count."""
        if not self.rows:
            return 0
        from api.estate.models import Organisation

        organisations = dict(
            Organisation.objects.filter(slug__in=set(self.fleets) - {""}).values_list("slug", "id")
        )
        for row, fleet in zip(self.rows, self.fleets, strict=True):
            row.organisation_id = organisations.get(fleet)
        Quarantine.objects.bulk_create(self.rows, ignore_conflicts=True, batch_size=500)
        return len(self.rows)


# --- Quarantine batches from the bridge ------------------------------------------------------


def quarantine_batch(items: list[dict]) -> int:
    """Store messages the bridge refused; idempotent (dedupe by topic, raw bytes, time)."""
    quarantine = _Quarantine()
    now = timezone.now()
    for index, item in enumerate(items if isinstance(items, list) else []):
        if not isinstance(item, dict):
            quarantine.add(
                topic="",
                reason="bad_item",
                detail="quarantine item is not an object",
                raw=_json_bytes(item),
                size=0,
                received_at=now,
                key=("item", index),
                timeless=True,
            )
            continue
        try:
            received_at, timeless = _received_at(item), False
        except _BadItem:
            received_at, timeless = now, True
        raw_b64 = item.get("raw_b64")
        try:
            raw = base64.b64decode(raw_b64, validate=True) if isinstance(raw_b64, str) else b""
        except (binascii.Error, ValueError):
            raw = str(raw_b64).encode("utf-8", "replace")
        size = item.get("size")
        quarantine.add(
            topic=str(item.get("topic", "")),
            reason=str(item.get("reason") or "unknown"),
            detail=str(item.get("detail", "")),
            raw=raw,
            size=size if isinstance(size, int) and not isinstance(size, bool) else len(raw),
            received_at=received_at,
            key=(index,) if timeless else (),
            timeless=timeless,
        )
    with transaction.atomic():
        return quarantine.store()


def quarantine_failed_item(item: object, error: Exception) -> None:
    """Keep an item that ingest could not process, so that it is never silently lost."""
    quarantine = _Quarantine()
    topic = item.get("topic", "") if isinstance(item, dict) else ""
    raw = _json_bytes(item)
    try:
        received_at = _received_at(item) if isinstance(item, dict) else timezone.now()
    except _BadItem:
        received_at = timezone.now()
    quarantine.add(
        topic=str(topic),
        reason="ingest_error",
        detail=f"{type(error).__name__}: {error}",
        raw=raw,
        size=len(raw),
        received_at=received_at,
        key=("ingest_error", raw),
    )
    with transaction.atomic():
        quarantine.store()


# --- Telemetry batches -----------------------------------------------------------------------


_STATE_COLUMNS = (
    "id",
    "device_id",
    "organisation__slug",
    "status",
    "status_changed_at",
    "last_seen_at",
    "last_message_at",
    "last_boot",
    "last_seq",
    "model",
    "firmware",
    "aggregate_dirty_since",
)


@dataclass(slots=True)
class _DeviceState:
    """The columns of a device that ingest reads and writes (no model instance: hot path)."""

    id: int
    device_id: str
    fleet: str
    status: str
    status_changed_at: datetime | None
    last_seen_at: datetime | None
    last_message_at: datetime | None
    last_boot: int | None
    last_seq: int | None
    model: str
    firmware: str
    aggregate_dirty_since: datetime | None

    @property
    def is_revoked(self) -> bool:
        return self.status == DeviceStatus.REVOKED

    def snapshot(self) -> tuple:
        return (
            self.status,
            self.status_changed_at,
            self.last_seen_at,
            self.last_message_at,
            self.last_boot,
            self.last_seq,
            self.model,
            self.firmware,
            self.aggregate_dirty_since,
        )


_LOCK_SQL = """
SELECT d.id, d.device_id, o.slug, d.status, d.status_changed_at, d.last_seen_at,
       d.last_message_at, d.last_boot, d.last_seq, d.model, d.firmware, d.aggregate_dirty_since
FROM telemetry_device d JOIN estate_organisation o ON o.id = d.organisation_id
WHERE d.device_id = ANY(%s) ORDER BY d.id FOR UPDATE OF d
"""


def _lock_devices(device_refs: list[str]) -> dict[str, _DeviceState]:
    """Load and lock the batch's devices, in primary-key order (no deadlock between workers)."""
    if storage.is_postgresql():
        # Straight to psycopg with binary results: no model instances, no text parsing.
        with storage.pg_cursor() as cursor:
            cursor.execute(_LOCK_SQL, [device_refs], binary=True)
            rows = cursor.fetchall()
    else:
        rows = (
            Device.objects.select_for_update(of=("self",))
            .filter(device_id__in=device_refs)
            .order_by("id")
            .values_list(*_STATE_COLUMNS)
        )
    return {row[1]: _DeviceState(*row) for row in rows}


@dataclass(slots=True)
class _Message:
    """One accepted item of a unit; `received` is the bridge's arrival time, unix seconds."""

    received: float
    kind: str
    row: storage.MessageRow | None = None
    stored: hooks.StoredMessage | None = None
    earliest: float = 0.0
    status: str | None = None
    meta: dict | None = None
    retained: bool = False


_MIN_OFFSET = -float(MAX_BUFFER_AGE_S)
_code_of = NAME_CODES.__getitem__


def _record_values(record: object) -> tuple[str, float | None, float, str | None]:
    """(name, numeric value, offset, text) of one record of an earlier-format item."""
    try:
        name = record["n"]
        field_name = FIELDS[name]
        raw_value = record[field_name]
        t = record.get("t", 0.0)
    except (KeyError, TypeError, AttributeError):
        raise _BadItem("unknown name or missing value field") from None
    if type(t) is not float:
        t = _number(t)
    if not _MIN_OFFSET <= t <= 0.0:
        raise _BadItem("offset out of range")
    if field_name == "v":
        return name, _number(raw_value), t, None
    if field_name == "vb":
        if type(raw_value) is not bool:
            raise _BadItem("wrong_value_field")
        return name, 1.0 if raw_value else 0.0, t, None
    if type(raw_value) is not str or not raw_value:
        raise _BadItem("wrong_value_field")
    return name, None, t, raw_value[:64].replace("\x00", "")


def _item_from_dict(item: dict, received: float, quarantine: _Quarantine) -> IngestItem:
    """An item in the earlier dict format (`payload` holds the contract's envelope), checked
    record by record: refused records are quarantined, the rest becomes an IngestItem."""
    payload, kind = item["payload"], item["kind"]
    common = {
        "topic": item["topic"],
        "fleet": item.get("fleet", ""),
        "device_id": item["device_id"],
        "kind": kind,
        "received_at": received,
        "retained": item.get("retained") is True,
    }
    if kind == "status":
        return IngestItem(**common, status=str(payload.get("status")))
    if kind == "meta":
        return IngestItem(**common, meta=payload)
    if payload.get("dev") != item["device_id"]:
        raise _BadItem("dev differs from the item's device")
    boot = _number(payload.get("boot"), integer=True)
    seq = _number(payload.get("seq"), integer=True)
    ts = _number(payload.get("ts"))
    if ts < MIN_TIMESTAMP:
        raise _BadItem("clock not set")
    if ts > MAX_TIMESTAMP:
        raise _BadItem("ts out of range")
    records = payload.get("m")
    if type(records) is not list:
        raise _BadItem("m is not a list")
    names: list[str] = []
    vals: list[float | None] = []
    offsets: list[float] = []
    texts: list[str | None] = []
    for index, record in enumerate(records):
        try:
            name, value, t, text = _record_values(record)
        except _BadItem as error:
            raw = _json_bytes(record)
            quarantine.add(
                topic=item["topic"],
                reason="bad_record",
                detail=str(error),
                raw=raw,
                size=len(raw),
                received_at=_utc(received),
                key=(boot, seq, index),
            )
            continue
        names.append(name)
        vals.append(value)
        offsets.append(t)
        texts.append(text)
    return IngestItem(
        **common,
        boot=boot,
        seq=seq,
        ts=ts,
        names=names,
        vals=vals,
        offsets=offsets if any(offsets) else None,
        texts=texts if any(text is not None for text in texts) else None,
    )


def _data_message(device: _DeviceState, item: IngestItem) -> _Message:
    """A telemetry/event item's storage row and what fault rules get of it.

    The hot path: the bridge checked every record against the contract, and msgspec checked
    the item's types and ranges while decoding it, so the columns are taken as they are.
    """
    names, vals, offsets, texts = item.names, item.vals, item.offsets, item.texts
    count = len(names)
    if len(vals) != count or (offsets is not None and len(offsets) != count):
        raise _BadItem("readings' columns differ in length")
    if texts is not None and len(texts) != count:
        raise _BadItem("readings' columns differ in length")
    try:
        codes = list(map(_code_of, names))
    except (KeyError, TypeError):
        raise _BadItem("unknown reading name") from None
    message = _Message(item.received_at, item.kind)
    if count:
        ts = item.ts
        message.row = storage.MessageRow(
            device.id, round(ts * 1_000_000), item.boot, item.seq, codes, vals, offsets, texts
        )
        message.stored = hooks.StoredMessage(
            device.id, item.kind, item.boot, item.seq, ts, names, vals, offsets, texts
        )
        message.earliest = ts + min(offsets) if offsets else ts
    return message


def _other_message(item: IngestItem) -> _Message:
    """A status or birth (meta) item."""
    if item.kind == "status":
        if item.status not in (DeviceStatus.ONLINE, DeviceStatus.OFFLINE):
            raise _BadItem("status must be online or offline")
        return _Message(item.received_at, "status", status=item.status)
    meta = item.meta if isinstance(item.meta, dict) else {}
    meta = {k: meta.get(k) for k in ("model", "firmware", "boot")}
    if not all(isinstance(meta[k], str) for k in ("model", "firmware")):
        raise _BadItem("meta model and firmware must be strings")
    meta["boot"] = _number(meta["boot"], integer=True)
    return _Message(item.received_at, "meta", meta=meta)


def _item_raw(entry: IngestItem | dict) -> bytes:
    """What a quarantined item keeps: the device's message as it was sent, where possible."""
    if isinstance(entry, IngestItem):
        return _json_bytes(envelope_of(entry))
    return _json_bytes(entry.get("payload"))


def _check_envelope(item: object) -> tuple[str, str, float]:
    """(device id, fleet, received at) of an earlier-format item; raises _BadItem."""
    if type(item) is not dict:
        raise _BadItem("item is not an object")
    topic, device_ref, kind = item.get("topic"), item.get("device_id"), item.get("kind")
    if type(topic) is not str or type(device_ref) is not str or not device_ref:
        raise _BadItem("topic or device_id missing")
    if kind not in ITEM_KINDS or type(item.get("payload")) is not dict:
        raise _BadItem("unknown kind or payload is not an object")
    received = _number(item.get("received_at"))
    if not MIN_TIMESTAMP <= received <= MAX_TIMESTAMP:
        raise _BadItem("received_at out of range")
    fleet = item.get("fleet", "")
    return device_ref, fleet if type(fleet) is str else str(fleet), received


def _prepare(items: list, now: datetime, quarantine: _Quarantine) -> list[tuple]:
    """Check every item's envelope; return [(device id, fleet, item, received at s)]."""
    accepted = []
    for index, item in enumerate(items if isinstance(items, list) else []):
        if type(item) is IngestItem:
            if item.kind not in ITEM_KINDS or not item.device_id:
                _refuse_item(quarantine, item, "unknown kind or device_id missing", index, now)
                continue
            accepted.append((item.device_id, item.fleet, item, item.received_at))
            rejected, topic = item.rejected, item.topic
            boot, seq, received = item.boot, item.seq, item.received_at
        else:
            try:
                device_ref, fleet, received = _check_envelope(item)
            except _BadItem as error:
                _refuse_item(quarantine, item, str(error), index, now)
                continue
            accepted.append((device_ref, fleet, item, received))
            rejected, topic = item.get("rejected"), item["topic"]
            boot, seq = item["payload"].get("boot"), item["payload"].get("seq")
        if not rejected:
            continue
        for position, entry in enumerate(rejected if isinstance(rejected, list) else []):
            record = entry.get("record") if isinstance(entry, dict) else entry
            reason = entry.get("reason") if isinstance(entry, dict) else None
            raw = _json_bytes(record)
            quarantine.add(
                topic=topic,
                reason=str(reason or "bad_record"),
                detail="record refused in an otherwise valid message",
                raw=raw,
                size=len(raw),
                received_at=_utc(received),
                key=("rejected", boot, seq, position),
            )
    return accepted


def _refuse_item(
    quarantine: _Quarantine, item: object, detail: str, index: int, now: datetime
) -> None:
    raw = _json_bytes(item)
    if isinstance(item, IngestItem):
        topic = item.topic
    else:
        topic = str(item.get("topic", "")) if isinstance(item, dict) else ""
    quarantine.add(
        topic=topic,
        reason="bad_item",
        detail=detail,
        raw=raw,
        size=len(raw),
        received_at=now,
        key=("item", index),
        timeless=True,
    )


def _item_ts(entry: IngestItem | dict) -> object:
    if type(entry) is IngestItem:
        return entry.ts if entry.kind in DATA_KINDS else None
    return entry["payload"].get("ts") if entry["kind"] in DATA_KINDS else None


def _partition_days(accepted: list[tuple], now_s: float, cutoff_s: float) -> set[date]:
    """The UTC days the batch's messages fall on (their partitions must exist)."""
    day_numbers = set()
    latest = now_s + 86_400
    for _ref, _fleet, entry, _at in accepted:
        ts = _item_ts(entry)
        if type(ts) in (float, int) and cutoff_s <= ts <= MAX_TIMESTAMP:
            day_numbers.add(int(min(ts, latest) // 86_400))
    return {_EPOCH_DAY + timedelta(days=number) for number in day_numbers}


_EPOCH_DAY = date(1970, 1, 1)


def ingest_batch(items: list, *, now: datetime | None = None) -> IngestResult:
    """Store a batch from the bridge: readings, device state, events; idempotent.

    Items are IngestItem structs (api.telemetry.batch), or dicts in the earlier format.
    Devices are locked in primary-key order, so batches of the same devices handled by
    concurrent workers serialise instead of losing updates (or deadlocking).
    """
    now = now or timezone.now()
    postgresql = storage.is_postgresql()
    for attempt in (1, 2):
        try:
            return _ingest_once(items, now, postgresql)
        except (IntegrityError, psycopg.IntegrityError) as error:
            # 23514: no partition for a row. Another process dropped or never created one this
            # process believed to exist: the transaction is gone, so refresh and start over.
            # (The COPY runs on psycopg directly: its error arrives unwrapped.)
            sqlstate = getattr(error, "sqlstate", None) or getattr(
                error.__cause__, "sqlstate", None
            )
            if attempt == 2 or sqlstate != "23514":
                raise
            logger.warning("missing reading partition; creating it (%s)", error)
            storage.forget_known_partitions()
    raise AssertionError("unreachable")


def _ingest_once(items: list, now: datetime, postgresql: bool) -> IngestResult:
    now_s = now.timestamp()
    cutoff_s = now_s - settings.TELEMETRY_RAW_RETENTION_DAYS * 86_400
    cutoff_us = round(cutoff_s * 1_000_000)
    result = IngestResult()
    quarantine = _Quarantine()
    accepted = _prepare(items, now, quarantine)
    device_refs = sorted({entry[0] for entry in accepted})

    if postgresql:
        # Partition DDL and the session's staging table must not run under the device locks
        # (DDL locks the parent table).
        storage.ensure_partitions(_partition_days(accepted, now_s, cutoff_s))
        storage.prepare_session()

    with transaction.atomic():
        devices = _lock_devices(device_refs)
        per_device: dict[int, list[_Message]] = defaultdict(list)
        rows: list[storage.MessageRow] = []
        for device_ref, fleet, entry, received in accepted:
            device = devices.get(device_ref)
            if device is None or device.is_revoked or device.fleet != fleet:
                result.unknown += 1
                why = "revoked" if device is not None and device.is_revoked else "not registered"
                if device is not None and not device.is_revoked:
                    why = "fleet does not match"
                raw = _item_raw(entry)
                quarantine.add(
                    topic=_topic(entry),
                    reason="unknown_device",
                    detail=f"device {device_ref[:64]} {why}",
                    raw=raw,
                    size=len(raw),
                    received_at=_utc(received),
                    key=(_kind(entry),),
                )
                continue
            try:
                item = (
                    entry
                    if type(entry) is IngestItem
                    else _item_from_dict(entry, received, quarantine)
                )
                if item.kind in DATA_KINDS:
                    message = _data_message(device, item)
                    row = message.row
                    if row is not None and row.ts_us < cutoff_us:
                        raw = _item_raw(entry)
                        quarantine.add(
                            topic=item.topic,
                            reason="too_old",
                            detail="older than the raw readings retention",
                            raw=raw,
                            size=len(raw),
                            received_at=_utc(received),
                            key=(item.kind,),
                        )
                        continue
                else:
                    message = _other_message(item)
                message.retained = item.retained
            except _BadItem as error:
                raw = _item_raw(entry)
                quarantine.add(
                    topic=_topic(entry),
                    reason="bad_item",
                    detail=str(error),
                    raw=raw,
                    size=len(raw),
                    received_at=_utc(received),
                    key=(_kind(entry),),
                )
                continue
            per_device[device.id].append(message)
            if message.row is not None:
                rows.append(message.row)

        inserted = storage.insert_messages(rows)
        result.stored = len(inserted)
        result.duplicates = len(rows) - len(inserted)

        by_id = {device.id: device for device in devices.values()}
        events: list[DeviceEvent] = []
        changed: list[tuple[_DeviceState, tuple]] = []
        for device_id in sorted(per_device):
            device = by_id[device_id]
            before = device.snapshot()
            fresh = _apply(device, per_device[device_id], inserted, events)
            if device.snapshot() != before:  # a replayed batch rewrites nothing
                changed.append((device, before))
            if fresh:
                fresh.sort(key=_time_order)
                result.readings[device_id] = fresh
        _save_devices(changed, now, postgresql)
        if events:
            DeviceEvent.objects.bulk_create(events)
        result.quarantined = quarantine.store()
        if result.readings:
            hooks.on_readings_stored(sorted(result.readings), result.readings)
    return result


def _topic(entry: IngestItem | dict) -> str:
    return entry.topic if type(entry) is IngestItem else entry["topic"]


def _kind(entry: IngestItem | dict) -> str:
    return entry.kind if type(entry) is IngestItem else entry["kind"]


def _time_order(message: hooks.StoredMessage) -> tuple:
    return (message.ts, message.boot, message.seq)


def _received_order(message: _Message) -> float:
    return message.received


def _set_status(
    device: _DeviceState, status: str, at: float, events: list[DeviceEvent], reason: str
) -> None:
    """Move the device to `status` unless a later change is already recorded."""
    if device.status == status:
        return
    moment = _utc(at)
    if device.status_changed_at is not None and moment < device.status_changed_at:
        return
    device.status = status
    device.status_changed_at = moment
    events.append(
        DeviceEvent(device_id=device.id, kind=status, at=moment, detail={"reason": reason})
    )


def _apply(
    device: _DeviceState,
    messages: list[_Message],
    inserted: set[storage.ReadingKey],
    events: list[DeviceEvent],
) -> list[hooks.StoredMessage]:
    """Fold a device's messages (in arrival order) into its state; return its new messages."""
    fresh: list[hooks.StoredMessage] = []
    messages.sort(key=_received_order)
    last_message = device.last_message_at.timestamp() if device.last_message_at else None
    seen: float | None = None  # the latest sign of life in the batch
    dirty_from: float | None = None
    for message in messages:
        at = message.received
        kind = message.kind
        if kind == "status":
            if message.status == DeviceStatus.OFFLINE:
                _set_status(device, DeviceStatus.OFFLINE, at, events, "last_will")
            elif not message.retained:
                _set_status(device, DeviceStatus.ONLINE, at, events, "connected")
                if seen is None or at > seen:
                    seen = at
            continue
        if kind == "meta":
            meta = message.meta
            if (meta["model"], meta["firmware"]) != (device.model, device.firmware):
                events.append(
                    DeviceEvent(
                        device_id=device.id,
                        kind=DeviceEventKind.META,
                        at=_utc(at),
                        detail={
                            "model": meta["model"][:64],
                            "firmware": meta["firmware"][:64],
                            "previous_model": device.model,
                            "previous_firmware": device.firmware,
                        },
                    )
                )
                device.model, device.firmware = meta["model"][:64], meta["firmware"][:64]
            if meta["boot"] != device.last_boot:
                if device.last_boot is not None:
                    events.append(
                        DeviceEvent(
                            device_id=device.id,
                            kind=DeviceEventKind.BOOT,
                            at=_utc(at),
                            detail={"boot": meta["boot"], "previous": device.last_boot},
                        )
                    )
                device.last_boot, device.last_seq = meta["boot"], None
            continue
        # Telemetry or event: the unit is talking, whatever became of the message.
        if seen is None or at > seen:
            seen = at
        if device.status != DeviceStatus.ONLINE:
            _set_status(device, DeviceStatus.ONLINE, at, events, "message")
        row = message.row
        if row is None:
            continue
        key = row.key
        if key not in inserted:
            continue
        inserted.discard(key)  # a message repeated within the batch counts once
        stored = message.stored
        fresh.append(stored)
        earliest = message.earliest
        if dirty_from is None or earliest < dirty_from:
            dirty_from = earliest
        ts = stored.ts
        if last_message is None or ts >= last_message:
            if device.last_boot is not None and stored.boot != device.last_boot:
                events.append(
                    DeviceEvent(
                        device_id=device.id,
                        kind=DeviceEventKind.BOOT,
                        at=_utc(at),
                        detail={"boot": stored.boot, "previous": device.last_boot},
                    )
                )
            last_message = ts
            device.last_boot, device.last_seq = stored.boot, stored.seq
    if seen is not None:
        moment = _utc(seen)
        if device.last_seen_at is None or moment > device.last_seen_at:
            device.last_seen_at = moment
    if fresh:
        device.last_message_at = _utc(last_message)
        hour = _utc(dirty_from).replace(minute=0, second=0, microsecond=0)
        if device.aggregate_dirty_since is None or hour < device.aggregate_dirty_since:
            device.aggregate_dirty_since = hour
    return fresh


# (column, PostgreSQL type) of the snapshot, in its order.
_DEVICE_COLUMNS = (
    ("status", "text"),
    ("status_changed_at", "timestamptz"),
    ("last_seen_at", "timestamptz"),
    ("last_message_at", "timestamptz"),
    ("last_boot", "int8"),
    ("last_seq", "int8"),
    ("model", "text"),
    ("firmware", "text"),
    ("aggregate_dirty_since", "timestamptz"),
)


def _save_devices(
    changed: list[tuple[_DeviceState, tuple]], now: datetime, postgresql: bool
) -> None:
    """Write the devices' new state in one statement, sending only the columns that changed
    (in a steady stream: last seen, last message, sequence)."""
    if not changed:
        return
    devices = [device for device, _before in changed]
    if not postgresql:
        fields = [name for name, _type in _DEVICE_COLUMNS]
        Device.objects.bulk_update(
            [
                Device(id=d.id, updated_at=now, **{name: getattr(d, name) for name in fields})
                for d in devices
            ],
            [*fields, "updated_at"],
        )
        return
    snapshots = [device.snapshot() for device in devices]
    befores = [before for _device, before in changed]
    moved = [
        index
        for index in range(len(_DEVICE_COLUMNS))
        if any(a[index] != b[index] for a, b in zip(snapshots, befores, strict=True))
    ]
    names = [_DEVICE_COLUMNS[index][0] for index in moved]
    types = [_DEVICE_COLUMNS[index][1] for index in moved]
    sets = ", ".join(f"{name} = v.{name}" for name in names)
    arrays = ", ".join(f"%b::{kind}[]" for kind in types)
    sql = (
        f"UPDATE telemetry_device AS d SET {sets}, updated_at = %b "  # noqa: S608 - fixed names
        f"FROM unnest(%b::int8[], {arrays}) AS v(id, {', '.join(names)}) WHERE d.id = v.id"
    )
    columns: list = [now, [device.id for device in devices]]
    for index in moved:
        columns.append([snapshot[index] for snapshot in snapshots])
    # Server-side binding: the arrays travel as binary parameters, not as a quoted literal.
    with storage.pg_cursor() as cursor:
        cursor.execute(sql, columns)
