"""The one place where newly stored readings leave the ingest path: fault evaluation."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

from django.db import InterfaceError, OperationalError, transaction

from devices.contract import VOCABULARY

logger = logging.getLogger(__name__)


_FLAGS = frozenset(name for name, (_unit, field) in VOCABULARY.items() if field == "vb")


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """A message stored for the first time: its unit, identity, own time and accepted readings.

    The readings are the storage's parallel columns: names, numeric values (flags as 0/1,
    None for a text), offsets from `ts` (None when all are 0) and texts (None when none).
    """

    device_id: int
    kind: str
    boot: int
    seq: int
    ts: float
    names: list[str]
    vals: list[float | None]
    offsets: list[float] | None = None
    texts: list[str | None] | None = None

    def points(self) -> Iterator[tuple[float, str, float | bool | str]]:
        """(reading time in unix seconds, name, value) for each reading, in message order;
        flags as booleans and codes as text, as the units sent them."""
        ts, offsets, texts, flags = self.ts, self.offsets, self.texts, _FLAGS
        for index, (name, value) in enumerate(zip(self.names, self.vals, strict=True)):
            if texts is not None and texts[index] is not None:
                value = texts[index]
            elif name in flags:
                value = value != 0.0
            yield (ts + offsets[index] if offsets is not None else ts), name, value


def on_readings_stored(device_ids: list[int], readings: dict[int, list[StoredMessage]]) -> None:
    """Hand newly stored readings to fault evaluation.

    Called once per ingested batch, inside the ingest transaction and after the devices' rows
    are locked and updated: what it writes commits (or rolls back) with the readings, and a
    replayed batch, which stores nothing new, is never evaluated twice. `device_ids` are the
    units' primary keys in ascending order; `readings[device_id]` lists that unit's new
    messages ordered by their own time (ts, then seq). Rules must use those times, never the
    wall clock. The rule engine (api.faults.services.evaluate_stored) persists its state and
    the faults it raises in the same transaction.
    """
    from api.faults.services import evaluate_stored

    try:
        # A savepoint: should fault handling fail, the readings are still stored (and the
        # rules pick up from their last saved state) rather than the batch being refused.
        with transaction.atomic():
            evaluate_stored(device_ids, readings)
    except (OperationalError, InterfaceError):
        raise  # the database is unreachable: ingest waits and retries the whole batch
    except Exception:
        logger.exception("fault evaluation failed for %d units", len(device_ids))
