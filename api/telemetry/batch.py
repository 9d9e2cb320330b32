"""The batch format between the MQTT bridge and the ingest workers (Django-free).

The bridge checks every message against the contract (devices/contract.py) and hands each one
over as an `IngestItem`: its envelope, and its readings already in the storage's columns (names,
numeric values with booleans as 0/1, offsets and texts when there are any). Items travel as JSON
arrays, so an ingest worker decodes a whole batch straight into these structs, with their types
and ranges checked by msgspec, and copies the columns into the database without looking at each
record again.

A batch that does not decode as a list of items (a hand-made task, a bridge of an earlier
release) is decoded item by item: what converts is an item, the rest goes to ingest as it is,
where a dict in the earlier format is checked record by record and anything else is quarantined.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from devices import contract
from devices.contract import MAX_BUFFER_AGE_S, MIN_TIMESTAMP

MAX_INT = 2**63 - 1
MAX_TIMESTAMP = 32503680000.0  # year 3000
INGEST_CONTENT_TYPE = "application/x-palier-ingest+json"

_Uint = Annotated[int, msgspec.Meta(ge=0, le=MAX_INT)]
_Time = Annotated[float, msgspec.Meta(ge=MIN_TIMESTAMP, le=MAX_TIMESTAMP)]
_Offset = Annotated[float, msgspec.Meta(ge=-float(MAX_BUFFER_AGE_S), le=0.0)]


class IngestItem(msgspec.Struct, array_like=True, omit_defaults=True, gc=False):
    """One message as the bridge queues it (`gc=False`: it holds scalars and lists of them,
    never a reference cycle, so the garbage collector need not track it).

    For `telemetry` and `event`: the envelope (`boot`, `seq`, `ts`) and the accepted readings
    as parallel arrays; `status` for a status message; `meta` (model, firmware, boot) for a
    birth message. `rejected` lists records the contract refused ({"record", "reason"}).
    """

    topic: str
    fleet: str
    device_id: str
    kind: str
    received_at: _Time
    retained: bool = False
    boot: _Uint = 0
    seq: _Uint = 0
    ts: _Time = MIN_TIMESTAMP
    names: list[str] = []
    vals: list[float | None] = []
    offsets: list[_Offset] | None = None
    texts: list[str | None] | None = None
    status: str | None = None
    meta: dict[str, Any] | None = None
    rejected: list[Any] = []


_encoder = msgspec.json.Encoder()
_batch_body = msgspec.json.Decoder(tuple[tuple[list[IngestItem]], dict, dict])
_any_body = msgspec.json.Decoder()


def encode_body(body: object) -> bytes:
    """A task body (args, kwargs, embed) holding items, as JSON."""
    return _encoder.encode(body)


def decode_body(data: bytes | str) -> Any:
    """A task body whose first argument is a batch: items as IngestItem wherever they convert."""
    if isinstance(data, str):
        data = data.encode()
    try:
        return _batch_body.decode(data)
    except msgspec.ValidationError:
        pass
    body = _any_body.decode(data)
    try:
        (items, *rest), kwargs, embed = body
    except (TypeError, ValueError):
        return body  # not a batch at all: the task refuses it
    if isinstance(items, list):
        items = [as_item(item) for item in items]
    return ((items, *rest), kwargs, embed)


def as_item(value: object) -> object:
    """`value` as an IngestItem when it is one in JSON form, else unchanged."""
    if isinstance(value, list):
        try:
            return msgspec.convert(value, IngestItem)
        except msgspec.ValidationError:
            return value
    return value


def item_from_decoded(
    topic: str, decoded: contract.Decoded, received_at: float, retained: bool
) -> IngestItem:
    """The item of a message that passed the contract (the bridge's hot path)."""
    parsed = decoded.topic
    head = (topic, parsed.fleet, parsed.device_id, parsed.kind, received_at, retained)
    rejected = [{"record": record, "reason": reason} for record, reason in decoded.rejected]
    envelope = decoded.envelope
    if envelope is None:
        meta = decoded.meta
        return IngestItem(
            *head,
            status=decoded.status,
            meta=None if meta is None else msgspec.structs.asdict(meta),
            rejected=rejected,
        )
    names: list[str] = []
    vals: list[float | None] = []
    offsets: list[float] | None = None
    texts: list[str | None] | None = None
    for index, record in enumerate(envelope.m):
        names.append(record.n)
        value = record.v
        if value is None:
            flag = record.vb
            if flag is not None:
                value = 1.0 if flag else 0.0
            else:
                if texts is None:
                    texts = [None] * index
                texts.append(record.vs)
        if texts is not None and len(texts) == index:
            texts.append(None)
        vals.append(value)
        if record.t:
            if offsets is None:
                offsets = [0.0] * index
            offsets.append(record.t)
        elif offsets is not None:
            offsets.append(0.0)
    return IngestItem(
        *head,
        envelope.boot,
        envelope.seq,
        envelope.ts,
        names,
        vals,
        offsets,
        texts,
        rejected=rejected,
    )


def envelope_of(item: IngestItem) -> dict:
    """The device's message an item stands for, in the contract's form (for quarantine)."""
    if item.kind == "status":
        return {"status": item.status}
    if item.kind == "meta":
        return dict(item.meta or {})
    records = []
    for index, name in enumerate(item.names):
        unit, field = contract.VOCABULARY.get(name, ("", "v"))
        record: dict[str, Any] = {"n": name}
        if unit:
            record["u"] = unit
        value = item.vals[index] if index < len(item.vals) else None
        text = item.texts[index] if item.texts and index < len(item.texts) else None
        if text is not None:
            record["vs"] = text
        elif field == "vb" and value is not None:
            record["vb"] = value != 0.0
        else:
            record["v"] = value
        offset = item.offsets[index] if item.offsets and index < len(item.offsets) else 0.0
        if offset:
            record["t"] = offset
        records.append(record)
    return {
        "v": contract.CONTRACT_VERSION,
        "dev": item.device_id,
        "boot": item.boot,
        "seq": item.seq,
        "ts": item.ts,
        "m": records,
    }
