"""Secrets never reach the logs: login by code, token refresh, staff login and device
credentials run with every logger at DEBUG, and no captured record holds a code, token,
password or full phone number; the redaction net masks them should code ever log one."""

import json
import logging
import re

import pytest
from django.conf import settings as django_settings
from rest_framework.test import APIClient

from api.core import redaction
from tests.factories import UserFactory
from tests.factories.estate import EquipmentFactory, place_factory

PHONE = "+33612349876"
STAFF_PASSWORD = "Correct-horse-battery-staple-42"


@pytest.fixture
def raw_records(monkeypatch, caplog):
    """Capture every record at DEBUG as the code wrote it, without the redaction net."""
    monkeypatch.setattr(logging, "_logRecordFactory", logging.LogRecord)
    caplog.set_level(logging.DEBUG)
    return caplog


def _everything_logged(caplog) -> str:
    parts = []
    for record in caplog.records:
        parts.append(record.getMessage())
        if record.exc_info:
            parts.append(logging.Formatter().formatException(record.exc_info))
        parts.extend(str(value) for key, value in vars(record).items() if key not in _STANDARD)
    return "\n".join(parts)


_STANDARD = set(vars(logging.LogRecord("x", 0, "x", 0, "x", None, None))) | {"message", "asctime"}


@pytest.mark.django_db
def test_login_refresh_staff_login_and_device_credentials_log_no_secret(
    raw_records, settings, tmp_path
):
    settings.OUTBOX_DIR = tmp_path
    settings.OTP_REQUEST_MIN_SECONDS = 0
    settings.OTP_THROTTLE_FACTOR = 0
    home = place_factory()
    tenant = home.tenant
    tenant.phone = PHONE
    tenant.save()
    client = APIClient()
    secrets: list[str] = [PHONE, STAFF_PASSWORD]

    # Login by code: request, a wrong try, the right one.
    assert client.post("/api/v1/auth/otp/request", {"phone": PHONE}).status_code == 202
    sms = json.loads((tmp_path / "sms.jsonl").read_text().splitlines()[-1])
    code = re.search(r"\b(\d{6})\b", sms["body"]).group(1)
    secrets.append(code)
    wrong = "000000" if code != "000000" else "111111"
    assert client.post("/api/v1/auth/otp/verify", {"phone": PHONE, "code": wrong}).status_code
    pair = client.post("/api/v1/auth/otp/verify", {"phone": PHONE, "code": code}).json()
    secrets += [pair["access"], pair["refresh"]]

    # The token at work, refreshed, replayed and revoked.
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {pair['access']}")
    assert client.get("/api/v1/me/").status_code == 200
    client.credentials()
    rotated = client.post("/api/v1/auth/token/refresh", {"refresh": pair["refresh"]}).json()
    secrets += [rotated["access"], rotated["refresh"]]
    assert (
        client.post("/api/v1/auth/token/refresh", {"refresh": pair["refresh"]}).status_code == 401
    )
    assert client.post("/api/v1/auth/logout", {"refresh": rotated["refresh"]}).status_code == 205
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {rotated['access']}x")
    assert client.get("/api/v1/me/").status_code == 401
    client.credentials()

    # Staff login, a wrong password then the right one.
    staff = UserFactory(
        organisation=home.organisation,
        role="manager",
        email="manager@example.org",
        password=STAFF_PASSWORD,
    )
    login = "/api/v1/auth/token"
    assert client.post(login, {"email": staff.email, "password": "wrong-" + STAFF_PASSWORD})
    staff_pair = client.post(login, {"email": staff.email, "password": STAFF_PASSWORD}).json()
    secrets += [staff_pair["access"], staff_pair["refresh"]]

    # Device credentials: provisioned, then rotated.
    from api.telemetry import services as telemetry

    equipment = EquipmentFactory(dwelling=home.dwelling, kind="individual_boiler")
    device, password = telemetry.device_provision(
        organisation=home.organisation, kind="heating", equipment=equipment
    )
    secrets += [password, telemetry.device_password_rotate(device=device)]
    secrets += [django_settings.SECRET_KEY, django_settings.SIMPLE_JWT["SIGNING_KEY"]]

    logged = _everything_logged(raw_records)
    assert raw_records.records, "the flows logged nothing: the capture is not working"
    for secret in secrets:
        assert secret not in logged, f"a secret reached the logs: {secret[:12]}…"
    assert not redaction.JWT.search(logged)


@pytest.mark.parametrize(
    ("line", "kept", "gone"),
    [
        (
            "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJ1c2VyX2lkIjoxfQ.c2lnbmF0dXJlc2ln",
            "Authorization",
            "eyJhbGciOiJIUzI1NiJ9",
        ),
        ("token=abcdefghijklmnop&x=1", "token=", "abcdefghijklmnop"),
        ('{"password": "hunter2hunter2"}', "password", "hunter2hunter2"),
        ("Palier: your login code is 482913. It is valid", "login code is", "482913"),
        ("Votre code de connexion : 482913", "Votre code", "482913"),
        ("SMS to +33612345678 failed", "+33*******78", "+33612345678"),
        ("token ab12cd34ef56gh78", "token", "ab12cd34ef56gh78"),
    ],
)
def test_the_net_masks_tokens_codes_secrets_and_numbers(line, kept, gone):
    cleaned = redaction.redact(line)
    assert gone not in cleaned
    assert kept in cleaned


@pytest.mark.parametrize(
    "line",
    [
        "Ticket T-2026-000123 created in 0.123456 s",
        "device 3f2a9c1e-0000-4000-8000-000000123456 offline",
        "processed 123456 readings",
        "refused with code=otp_invalid",
    ],
)
def test_the_net_leaves_ordinary_lines_alone(line):
    assert redaction.redact(line) == line


def test_records_are_cleaned_where_they_are_made(caplog):
    caplog.set_level(logging.INFO, logger="palier.test")
    logging.getLogger("palier.test").info("login code is %s for %s", "654321", "+33698765432")
    message = caplog.records[-1].getMessage()
    assert "654321" not in message
    assert "+33698765432" not in message
