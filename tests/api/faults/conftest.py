"""Fixtures of the fault tests: fresh partitions and rule cache, a unit in a leased dwelling."""

import time

import pytest

from api.faults import services
from api.telemetry import storage
from api.telemetry.ingest import ingest_batch
from devices.contract import make_record
from tests.factories.telemetry import telemetry_item


@pytest.fixture(autouse=True)
def _fresh_caches(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    settings.MOSQUITTO_PID_FILE = ""
    storage.forget_known_partitions()
    services.forget_overrides()
    yield
    storage.forget_known_partitions()
    services.forget_overrides()


class Feeder:
    """Sends a unit's readings through the real ingest path, one message a minute."""

    def __init__(self, device, start: float | None = None):
        self.device = device
        self.seq = 0
        self.start = start if start is not None else time.time() - 6 * 3600

    def items(self, minute_from: int, minutes: int, step_s: float = 60.0, **signals) -> list:
        out = []
        for i in range(minutes):
            self.seq += 1
            ts = self.start + minute_from * 60 + i * step_s
            records = [
                make_record(name, value(i) if callable(value) else value)
                for name, value in signals.items()
            ]
            out.append(telemetry_item(self.device, seq=self.seq, ts=ts, records=records))
        return out

    def feed(self, minute_from: int, minutes: int, **signals):
        return ingest_batch(self.items(minute_from, minutes, **signals))

    def at(self, minute: float) -> float:
        return self.start + minute * 60
