"""Channels: FCM HTTP v1 messages and error mapping, Web Push payloads, the idempotent file
backends, e-mail, SMS."""

import json
import multiprocessing

import pytest
from firebase_admin import exceptions as firebase_exceptions
from firebase_admin import messaging

from api.notifications.channels import (
    Device,
    EmailBackend,
    FilePushBackend,
    JsonlOutbox,
    Outgoing,
    PermanentFailure,
    SMSBackend,
    TemporaryFailure,
    build_email,
    build_fcm_message,
    collapse_id,
    fcm_json,
    map_fcm_error,
    map_webpush_error,
    webpush_headers,
    webpush_payload,
)


def message(**changes) -> Outgoing:
    base = {
        "delivery_id": "d1",
        "notification_id": "n1",
        "key": "palier-d1",
        "channel": "push",
        "event": "incident.started",
        "title": "Incident : chauffage",
        "body": "Nous nous en occupons.",
        "sms": "Palier : incident",
        "language": "fr",
        "rtl": False,
        "link": "palier://incidents/7",
        "critical": True,
        "recipient_id": "u1",
        "phone": "+33612345678",
        "email": "a@example.org",
        "devices": (Device(id="dev1", token="fid-1"),),
    }
    return Outgoing(**{**base, **changes})


def test_fcm_message_has_priority_collapse_and_the_deep_link():
    payload = fcm_json(build_fcm_message(message(), "fid-1"))["message"]
    assert payload["notification"] == {
        "title": "Incident : chauffage",
        "body": "Nous nous en occupons.",
    }
    assert payload["data"]["link"] == "palier://incidents/7"
    assert payload["data"]["critical"] == "1"
    assert payload["android"]["priority"] == "high"
    assert payload["android"]["notification"]["tag"] == collapse_id(message())
    assert payload["android"]["notification"]["channel_id"] == "critical"
    assert payload["apns"]["headers"]["apns-priority"] == "10"
    assert payload["apns"]["headers"]["apns-collapse-id"] == collapse_id(message())
    assert "fid-1" in json.dumps(payload)
    quiet = fcm_json(build_fcm_message(message(critical=False), "fid-1"))["message"]
    assert quiet["android"]["priority"] == "normal"


def test_fcm_errors_map_to_retry_or_give_up():
    assert map_fcm_error(messaging.UnregisteredError("gone")).permanent
    assert map_fcm_error(messaging.SenderIdMismatchError("other")).permanent
    assert map_fcm_error(firebase_exceptions.InvalidArgumentError("bad")).permanent
    assert not map_fcm_error(messaging.QuotaExceededError("slow down")).permanent
    assert not map_fcm_error(firebase_exceptions.UnavailableError("down")).permanent
    assert not map_fcm_error(ConnectionError("reset")).permanent


def test_web_push_payload_and_headers_are_right_to_left_for_arabic():
    arabic = message(language="ar", rtl=True, title="مشكلة")
    payload = webpush_payload(arabic)
    assert payload["dir"] == "rtl"
    assert payload["lang"] == "ar"
    assert payload["requireInteraction"] is True
    headers = webpush_headers(arabic)
    assert headers["Urgency"] == "high"
    assert len(headers["Topic"]) <= 32


class _Response:
    def __init__(self, status_code):
        self.status_code = status_code


class _PushError(Exception):
    def __init__(self, status_code):
        self.response = _Response(status_code)


def test_web_push_errors_map_to_retry_or_give_up():
    assert map_webpush_error(_PushError(410)).permanent
    assert map_webpush_error(_PushError(404)).permanent
    assert not map_webpush_error(_PushError(429)).permanent
    assert not map_webpush_error(_PushError(503)).permanent


def test_file_push_backend_writes_each_key_once(outbox_dir):
    backend = FilePushBackend()
    backend.send(message())
    backend.send(message())
    lines = (outbox_dir / "push.jsonl").read_text().splitlines()
    assert len(lines) == 1
    assert backend.already_sent(["palier-d1", "palier-other"]) == {"palier-d1"}
    with pytest.raises(PermanentFailure):
        backend.send(message(devices=()))


def _append_many(path, start):
    outbox = JsonlOutbox(path)
    for index in range(200):
        outbox.append_once(f"k{(start + index) % 300}", {"n": index})


def test_jsonl_outbox_refuses_duplicates_across_processes(tmp_path):
    path = tmp_path / "push.jsonl"
    processes = [multiprocessing.Process(target=_append_many, args=(path, s)) for s in (0, 100)]
    for process in processes:
        process.start()
    for process in processes:
        process.join()
    keys = [json.loads(line)["idempotency_key"] for line in path.read_text().splitlines()]
    assert len(keys) == len(set(keys)) == 300


def test_email_is_written_once_with_a_stable_message_id(outbox_dir):
    arabic = message(channel="email", language="ar", rtl=True)
    email = build_email(arabic)
    assert "palier-d1" in email.extra_headers["Message-ID"]
    assert 'dir="rtl"' in email.alternatives[0][0]
    backend = EmailBackend()
    backend.send(arabic)
    backend.send(arabic)
    assert [p.name for p in (outbox_dir / "email").glob("*.eml")] == ["palier-d1.eml"]
    assert backend.already_sent(["palier-d1", "palier-x"]) == {"palier-d1"}


def test_sms_goes_through_the_accounts_backend_with_its_reference(outbox_dir):
    backend = SMSBackend()
    backend.send(message(channel="sms"))
    (line,) = (outbox_dir / "sms.jsonl").read_text().splitlines()
    assert json.loads(line)["purpose"] == "notification:palier-d1"
    assert backend.already_sent(["palier-d1", "palier-d2"]) == {"palier-d1"}
    with pytest.raises(PermanentFailure):
        backend.send(message(channel="sms", phone="+331"))


@pytest.mark.django_db
def test_a_spent_sms_budget_is_a_permanent_failure(settings, outbox_dir):
    settings.SMS_DAILY_BUDGET = 0
    with pytest.raises(PermanentFailure, match="budget"):
        SMSBackend().send(message(channel="sms"))


def test_temporary_failure_is_not_permanent():
    assert not TemporaryFailure("x").permanent
