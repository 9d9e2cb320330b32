"""SMS: the file outbox, the HTTP provider adapter against a real local server, the budget."""

import json
import logging
import multiprocessing
import threading
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import redis
from django.core import mail
from django.core.cache import cache
from django.db import connection
from django.utils import timezone

from api.accounts import sms
from api.accounts.sms import (
    FileSMSBackend,
    HttpSMSBackend,
    SMSConfigurationError,
    SMSDeliveryError,
    SMSRefused,
    send_sms,
)
from tests.factories import UserFactory

# --- File backend -----------------------------------------------------------------------------


def test_file_backend_appends_one_json_line_per_message(settings, sent_sms, db):
    assert not settings.OUTBOX_DIR.exists(), "the outbox directory is created on first use"
    first = send_sms(to="+33612345678", body="Bonjour", purpose="test")
    send_sms(to="06 12 34 56 79", body="Deuxième message", purpose="other")

    messages = sent_sms()
    assert [m["to"] for m in messages] == ["+33612345678", "+33612345679"]
    assert messages[0] == {
        "to": "+33612345678",
        "body": "Bonjour",
        "sent_at": first.sent_at.isoformat(),
        "purpose": "test",
    }
    assert messages[1]["body"] == "Deuxième message"
    assert datetime.fromisoformat(messages[1]["sent_at"]).tzinfo is not None


@pytest.mark.parametrize("production", [True, False])
def test_file_backend_never_logs_the_body_or_full_number(settings, caplog, db, production):
    settings.PRODUCTION = production
    with caplog.at_level(logging.INFO, logger="api.accounts.sms"):
        send_sms(to="+33612345678", body="Votre code est 123456", purpose="login_code")
    assert "SMS to +336******78 (login_code)" in caplog.text
    assert "123456" not in caplog.text
    assert "+33612345678" not in caplog.text


def _append_many(path: str, worker: int, count: int) -> None:
    backend = FileSMSBackend(path=Path(path))
    for index in range(count):
        backend.send(
            to=f"+3361{worker:03d}{index:04d}",
            body=f"worker {worker} message {index} " + "x" * 3000,
            purpose="load",
            sent_at=timezone.now(),
        )


def test_concurrent_appends_from_several_processes_never_interleave(tmp_path):
    path = tmp_path / "deep" / "dir" / "sms.jsonl"
    context = multiprocessing.get_context("fork")
    processes = [
        context.Process(target=_append_many, args=(str(path), worker, 60)) for worker in range(4)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(30)
        assert process.exitcode == 0

    lines = path.read_text().splitlines()
    assert len(lines) == 240
    records = [json.loads(line) for line in lines]
    for worker in range(4):
        mine = [
            r["body"].split(" x")[0] for r in records if r["body"].startswith(f"worker {worker} ")
        ]
        assert len(mine) == 60
        assert mine == sorted(mine, key=lambda b: int(b.split()[3].rstrip("x")))


def test_an_invalid_number_is_refused_before_anything_is_sent(sent_sms, db):
    with pytest.raises(SMSDeliveryError):
        send_sms(to="not a number", body="x", purpose="test")
    assert sent_sms() == []


# --- HTTP backend against a real server -------------------------------------------------------


class _Provider(BaseHTTPRequestHandler):
    """A stand-in SMS provider: records requests, answers as the test tells it to."""

    requests: list
    status = 200
    answer = b'{"id": "msg-42", "status": "queued"}'
    delay = 0.0

    def do_POST(self):
        length = int(self.headers.get("Content-Length", 0))
        self.server.received.append(
            {"path": self.path, "headers": dict(self.headers), "body": self.rfile.read(length)}
        )
        if self.server.delay:
            time.sleep(self.server.delay)
        self.send_response(self.server.status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(self.server.answer)

    def log_message(self, *args):
        pass


@pytest.fixture
def provider():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Provider)
    server.received = []
    server.status = 200
    server.answer = b'{"id": "msg-42", "status": "queued"}'
    server.delay = 0.0
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    server.url = f"http://127.0.0.1:{server.server_address[1]}/v1/messages"
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def http_backend(settings, provider):
    settings.SMS_BACKEND = "api.accounts.sms.HttpSMSBackend"
    settings.SMS_PROVIDER_URL = provider.url
    settings.SMS_PROVIDER_TOKEN = "provider-secret-token"
    settings.SMS_SENDER_ID = "PALIER"
    settings.SMS_PROVIDER_TIMEOUT = 2.0
    return provider


@pytest.mark.django_db
def test_http_backend_posts_json_with_a_bearer_token(http_backend, caplog):
    with caplog.at_level(logging.INFO, logger="api.accounts.sms"):
        result = send_sms(to="06 12 34 56 78", body="Votre code : 654321", purpose="login_code")

    assert result.provider_id == "msg-42"
    assert result.to == "+33612345678"
    [request] = http_backend.received
    assert request["path"] == "/v1/messages"
    assert request["headers"]["Authorization"] == "Bearer provider-secret-token"
    assert request["headers"]["Content-Type"] == "application/json"
    assert json.loads(request["body"]) == {
        "from": "PALIER",
        "to": "+33612345678",
        "text": "Votre code : 654321",
        "reference": "login_code",
    }
    assert "654321" not in caplog.text, "the provider backend never logs message bodies"
    assert "provider-secret-token" not in caplog.text


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("status", "message"),
    [(401, "HTTP 401 Unauthorized (check SMS_PROVIDER_TOKEN)"), (503, "HTTP 503")],
)
def test_http_backend_reports_provider_refusals_clearly(http_backend, status, message):
    http_backend.status = status
    http_backend.answer = b'{"error": "echo of Votre code : 654321"}'
    with pytest.raises(SMSDeliveryError) as caught:
        send_sms(to="+33612345678", body="Votre code : 654321", purpose="login_code")
    assert message in str(caught.value)
    assert "654321" not in str(caught.value), "the provider's body is not quoted"


@pytest.mark.django_db
def test_http_backend_gives_up_after_its_timeout(http_backend, settings):
    settings.SMS_PROVIDER_TIMEOUT = 0.2
    http_backend.delay = 1.0
    started = time.monotonic()
    with pytest.raises(SMSDeliveryError, match="could not be reached"):
        send_sms(to="+33612345678", body="x", purpose="test")
    assert time.monotonic() - started < 1.0


@pytest.mark.django_db
def test_http_backend_reports_an_unreachable_provider(http_backend, settings):
    http_backend.shutdown()
    http_backend.server_close()
    with pytest.raises(SMSDeliveryError, match="could not be reached"):
        send_sms(to="+33612345678", body="x", purpose="test")


@pytest.mark.django_db
def test_http_backend_accepts_an_answer_without_an_id(http_backend):
    http_backend.answer = b""
    assert send_sms(to="+33612345678", body="x", purpose="test").provider_id is None


def test_http_backend_needs_its_settings(settings):
    settings.SMS_PROVIDER_URL = ""
    settings.SMS_PROVIDER_TOKEN = ""
    with pytest.raises(SMSConfigurationError, match="SMS_PROVIDER_URL and SMS_PROVIDER_TOKEN"):
        HttpSMSBackend()
    with pytest.raises(SMSConfigurationError, match="https"):
        HttpSMSBackend(url="ftp://provider.example/", token="t")
    settings.PRODUCTION = True
    with pytest.raises(SMSConfigurationError, match="https"):
        HttpSMSBackend(url="http://provider.example/", token="t")
    assert HttpSMSBackend(url="https://provider.example/", token="t").timeout == 10.0


# --- Daily budget -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_daily_budget_stops_sending_and_alerts_staff_once(settings, sent_sms):
    settings.SMS_DAILY_BUDGET = 3
    settings.ADMINS = [("ops@palier.example", "ops@palier.example")]
    UserFactory(is_superuser=True, email="Root@Palier.example", phone=None, role="admin")
    UserFactory(is_superuser=True, email="gone@palier.example", phone=None, is_active=False)

    for index in range(3):
        send_sms(to=f"+3361234567{index}", body="ok", purpose="test")
    assert sms.sms_budget_exhausted()
    for _ in range(4):
        with pytest.raises(SMSRefused, match="budget"):
            send_sms(to="+33612345679", body="refused", purpose="test")

    assert len(sent_sms()) == 3
    assert len(mail.outbox) == 1, "staff are alerted once, not at every refusal"
    alert = mail.outbox[0]
    assert sorted(alert.to) == ["ops@palier.example", "root@palier.example"]
    assert "SMS_DAILY_BUDGET" in alert.body


@pytest.mark.django_db
def test_the_budget_is_counted_in_the_shared_cache(settings):
    settings.SMS_DAILY_BUDGET = 10
    send_sms(to="+33612345678", body="x", purpose="test")
    send_sms(to="+33612345678", body="x", purpose="test")
    assert sms.sms_sent_today() == 2
    # Every API process reads the same counter: it lives in Redis, not in a process.
    key = cache.make_key(f"palier:sms:count:{timezone.localdate().isoformat()}")
    assert int(redis.Redis.from_url(settings.REDIS_URL).get(key)) == 2


@pytest.mark.django_db
def test_the_budget_holds_under_concurrent_sends(settings, sent_sms):
    settings.SMS_DAILY_BUDGET = 10
    refused = []

    def send(index):
        try:
            send_sms(to=f"+336123456{index:02d}", body="x", purpose="test")
        except SMSRefused:
            refused.append(index)
        finally:
            connection.close()

    threads = [threading.Thread(target=send, args=(i,)) for i in range(25)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(sent_sms()) == 10
    assert len(refused) == 15
