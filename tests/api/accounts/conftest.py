"""Fixtures for people and login: an SMS outbox per test, quick OTP answers."""

import json

import pytest


@pytest.fixture(autouse=True)
def _sms_outbox(settings, tmp_path):
    """Each test writes its SMS to its own outbox, through the default file backend."""
    settings.OUTBOX_DIR = tmp_path / "outbox"
    settings.SMS_BACKEND = "api.accounts.sms.FileSMSBackend"
    settings.SMS_DAILY_BUDGET = 1000
    return settings.OUTBOX_DIR


@pytest.fixture(autouse=True)
def _quick_otp(settings):
    """No padding of code requests and no back-off between tries, unless a test sets them."""
    settings.OTP_REQUEST_MIN_SECONDS = 0
    settings.OTP_THROTTLE_FACTOR = 0


@pytest.fixture
def sent_sms(_sms_outbox):
    """Read the messages the file backend wrote so far."""

    def read() -> list[dict]:
        path = _sms_outbox / "sms.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines()]

    return read
