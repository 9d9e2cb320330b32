"""Factories for connected units and the MQTT items the bridge hands to ingest."""

import time

import factory
import msgspec
from factory.django import DjangoModelFactory

from api.telemetry.batch import IngestItem, item_from_decoded
from api.telemetry.models import Device
from devices import contract, credentials
from devices.contract import Envelope, make_record
from tests.factories.accounts import OrganisationFactory
from tests.factories.estate import DwellingFactory, EquipmentFactory

# One hash for every factory device: PBKDF2 per device would only slow the suite down.
TEST_DEVICE_PASSWORD = "test-device-password"
_TEST_HASH = credentials.hash_password(TEST_DEVICE_PASSWORD, iterations=1)


def equipment_for(kind: str, *, organisation=None, dwelling=None):
    """A boiler (heating) or VMC (ventilation) in `dwelling`, or in a new one of `organisation`."""
    if dwelling is None:
        dwelling = DwellingFactory(
            entrance__building__residence__agency__organisation=organisation
            or OrganisationFactory()
        )
    return EquipmentFactory(
        dwelling=dwelling,
        kind="individual_boiler" if kind == "heating" else "ventilation_unit",
    )


class DeviceFactory(DjangoModelFactory):
    """A provisioned unit measuring a boiler (heating) or a VMC (ventilation)."""

    class Meta:
        model = Device

    class Params:
        dwelling = None

    organisation = factory.LazyAttribute(
        lambda o: o.dwelling.organisation if o.dwelling else OrganisationFactory()
    )
    device_id = factory.Sequence(lambda n: f"hx-test{n:05d}")
    kind = "heating"
    model = "PX-1"
    firmware = "1.0.0"
    equipment = factory.LazyAttribute(
        lambda o: equipment_for(o.kind, organisation=o.organisation, dwelling=o.dwelling)
    )
    password_hash = _TEST_HASH
    reporting_interval_s = 60


def _message(device, *, seq, boot, ts, records, kind) -> tuple[str, Envelope]:
    """(topic, envelope) of one telemetry or event message of the unit."""
    records = records if records is not None else [make_record("room_temp", 19.5)]
    envelope = Envelope(v=1, dev=device.device_id, boot=boot, seq=seq, ts=ts, m=records)
    return f"dt/{device.organisation.slug}/{device.device_id}/{kind}", envelope


def telemetry_item(
    device: Device,
    *,
    seq: int,
    boot: int = 1,
    ts: float | None = None,
    records: list | None = None,
    received_at: float | None = None,
    kind: str = "telemetry",
) -> IngestItem:
    """The item the bridge queues for one telemetry (or event) message: the message is
    encoded, checked by the contract and turned into columns, as the bridge does."""
    ts = time.time() if ts is None else ts
    received_at = received_at if received_at is not None else ts + 0.05
    topic, envelope = _message(device, seq=seq, boot=boot, ts=ts, records=records, kind=kind)
    decoded = contract.decode(topic, contract.encode(envelope), now=max(ts, received_at))
    return item_from_decoded(topic, decoded, received_at, False)


def status_item(
    device: Device, status: str, *, received_at: float | None = None, retained: bool = False
) -> IngestItem:
    """The item for a status message (`online`, or the last will `offline`)."""
    topic = f"dt/{device.organisation.slug}/{device.device_id}/status"
    received_at = received_at if received_at is not None else time.time()
    decoded = contract.decode(topic, status.encode(), now=received_at)
    return item_from_decoded(topic, decoded, received_at, retained)


def meta_item(
    device: Device, *, boot: int, model: str = "PX-1", firmware: str = "1.0.0", received_at=None
) -> IngestItem:
    """The item for the retained birth message."""
    topic = f"dt/{device.organisation.slug}/{device.device_id}/meta"
    received_at = received_at if received_at is not None else time.time()
    raw = contract.encode_meta(contract.Meta(model=model, firmware=firmware, boot=boot))
    return item_from_decoded(
        topic, contract.decode(topic, raw, now=received_at), received_at, False
    )


def telemetry_dict(
    device: Device,
    *,
    seq: int,
    boot: int = 1,
    ts: float | None = None,
    records: list | None = None,
    received_at: float | None = None,
    kind: str = "telemetry",
) -> dict:
    """An item in the earlier dict format (the envelope as sent, records unchecked), which
    ingest still accepts and checks record by record."""
    ts = time.time() if ts is None else ts
    topic, envelope = _message(device, seq=seq, boot=boot, ts=ts, records=records, kind=kind)
    return {
        "topic": topic,
        "fleet": device.organisation.slug,
        "device_id": device.device_id,
        "kind": kind,
        "received_at": received_at if received_at is not None else ts + 0.05,
        "payload": msgspec.to_builtins(envelope),
        "rejected": [],
    }


def seed_fuzz_telemetry(organisation) -> Device:
    """A unit of the fuzzed organisation with readings, and a refused message of its fleet."""
    from api.telemetry.ingest import ingest_batch, quarantine_batch

    device = DeviceFactory(organisation=organisation, device_id="hx-fuzz000001")
    now = time.time()
    ingest_batch(
        [
            telemetry_item(
                device,
                seq=seq,
                ts=now - 600 + seq * 60,
                records=[make_record("room_temp", 19 + seq / 10), make_record("fault_code", "E1")],
            )
            for seq in range(1, 6)
        ]
    )
    quarantine_batch(
        [
            {
                "topic": f"dt/{organisation.slug}/{device.device_id}/telemetry",
                "reason": "not_json",
                "detail": "expected value",
                "raw_b64": "e25vdA==",
                "size": 5,
                "received_at": now,
            }
        ]
    )
    return device
