"""Text messages: one entry point, `send_sms`, and the backend named by settings.SMS_BACKEND.

`FileSMSBackend` (the default) appends each message as one JSON line to
`OUTBOX_DIR/sms.jsonl` and echoes it in the log; `HttpSMSBackend` posts JSON to a provider
with a bearer token. Every message counts against a daily budget kept in the cache: once it is
spent, sending stops until midnight and the operators are told once by e-mail.
"""

import json
import logging
import os
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from django.conf import settings
from django.core.cache import cache
from django.core.mail import send_mail
from django.utils import timezone
from django.utils.module_loading import import_string
from phonenumber_field.phonenumber import PhoneNumber, to_python

try:
    import fcntl
except ImportError:  # Windows: O_APPEND alone keeps short lines whole
    fcntl = None

logger = logging.getLogger(__name__)

OUTBOX_FILE_NAME = "sms.jsonl"
# Seconds a send usually takes, smoothed; code requests for unknown numbers wait as long.
SEND_SECONDS_KEY = "palier:sms:send-seconds"
_COUNT_KEY = "palier:sms:count:{day}"
_ALERT_KEY = "palier:sms:budget-alert:{day}"
_TWO_DAYS = 2 * 24 * 3600


class SMSError(Exception):
    """A message could not be sent."""


class SMSRefused(SMSError):
    """Sending is stopped: today's SMS budget is spent."""


class SMSDeliveryError(SMSError):
    """The provider could not be reached, or refused the message."""


class SMSConfigurationError(SMSError):
    """The backend is missing a setting it needs."""


@dataclass(frozen=True)
class SentSMS:
    """What a backend reports once a message is handed over."""

    to: str
    sent_at: datetime
    provider_id: str | None = None


class BaseSMSBackend:
    """What every SMS backend provides."""

    def send(self, *, to: str, body: str, purpose: str, sent_at: datetime) -> str | None:
        """Hand the message over; return the provider's message id if there is one."""
        raise NotImplementedError


def mask_phone(number: str) -> str:
    """+33612345678 -> +336******78: enough to tell messages apart in a log, no more."""
    if len(number) <= 6:
        return "*" * len(number)
    return number[:4] + "*" * (len(number) - 6) + number[-2:]


class FileSMSBackend(BaseSMSBackend):
    """Appends each message to OUTBOX_DIR/sms.jsonl (one JSON object a line) and logs it."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or Path(settings.OUTBOX_DIR) / OUTBOX_FILE_NAME

    def send(self, *, to: str, body: str, purpose: str, sent_at: datetime) -> str | None:
        record = {"to": to, "body": body, "sent_at": sent_at.isoformat(), "purpose": purpose}
        data = (json.dumps(record, ensure_ascii=False) + "\n").encode()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # One write() on an O_APPEND descriptor, under an exclusive lock: lines written by
        # several processes at once never interleave.
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
        finally:
            os.close(fd)  # also releases the lock
        # Never the body (it may carry a login code) nor the full number: the file has them.
        logger.info("SMS to %s (%s) written to %s", mask_phone(to), purpose, self.path)
        return None


class HttpSMSBackend(BaseSMSBackend):
    """A provider's HTTP API: POST JSON with a bearer token, expect a 2xx JSON answer.

    Sends ``{"from": SMS_SENDER_ID, "to": "+33…", "text": "…", "reference": purpose}`` to
    SMS_PROVIDER_URL with ``Authorization: Bearer SMS_PROVIDER_TOKEN``. A provider whose API
    differs is supported by a subclass overriding `payload()` and `message_id()`.
    """

    max_response_bytes = 64 * 1024

    def __init__(
        self,
        *,
        url: str | None = None,
        token: str | None = None,
        sender_id: str | None = None,
        timeout: float | None = None,
    ) -> None:
        self.url = url if url is not None else settings.SMS_PROVIDER_URL
        self.token = token if token is not None else settings.SMS_PROVIDER_TOKEN
        self.sender_id = sender_id if sender_id is not None else settings.SMS_SENDER_ID
        self.timeout = timeout if timeout is not None else settings.SMS_PROVIDER_TIMEOUT
        if not self.url or not self.token:
            raise SMSConfigurationError(
                "HttpSMSBackend needs SMS_PROVIDER_URL and SMS_PROVIDER_TOKEN."
            )
        scheme = urlparse(self.url).scheme
        if scheme not in {"http", "https"} or (settings.PRODUCTION and scheme != "https"):
            raise SMSConfigurationError(
                "SMS_PROVIDER_URL must be an https:// URL (http:// is accepted in development)."
            )

    def payload(self, *, to: str, body: str, purpose: str) -> dict[str, Any]:
        """The JSON body the provider expects."""
        return {"from": self.sender_id, "to": to, "text": body, "reference": purpose}

    def message_id(self, answer: Any) -> str | None:
        """The provider's id for the message, from its JSON answer."""
        if isinstance(answer, dict):
            for key in ("id", "message_id", "messageId"):
                if isinstance(answer.get(key), str | int):
                    return str(answer[key])
        return None

    def send(self, *, to: str, body: str, purpose: str, sent_at: datetime) -> str | None:
        request = urllib.request.Request(  # noqa: S310 - scheme checked in __init__
            self.url,
            data=json.dumps(self.payload(to=to, body=body, purpose=purpose)).encode(),
            method="POST",
            headers={
                "Authorization": f"Bearer {self.token}",
                "Content-Type": "application/json",
                "Accept": "application/json",
                "User-Agent": "Palier",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                raw = response.read(self.max_response_bytes)
        except urllib.error.HTTPError as exc:
            hint = " (check SMS_PROVIDER_TOKEN)" if exc.code in {401, 403} else ""
            # The provider's body is not quoted: it may echo the message, codes included.
            raise SMSDeliveryError(
                f"The SMS provider refused the message: HTTP {exc.code} {exc.reason}{hint}."
            ) from None
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise SMSDeliveryError(
                f"The SMS provider at {urlparse(self.url).netloc} could not be reached: {reason}."
            ) from None
        try:
            answer = json.loads(raw) if raw.strip() else None
        except ValueError:
            answer = None
        provider_id = self.message_id(answer)
        logger.info(
            "SMS to %s (%s) accepted by the provider, id %s", mask_phone(to), purpose, provider_id
        )
        return provider_id


def get_backend() -> BaseSMSBackend:
    """An instance of the backend named by settings.SMS_BACKEND."""
    return import_string(settings.SMS_BACKEND)()


def _today() -> str:
    return timezone.localdate().isoformat()


def sms_sent_today() -> int:
    """Messages counted against today's budget so far."""
    return int(cache.get(_COUNT_KEY.format(day=_today()), 0))


def sms_budget_exhausted() -> bool:
    """Whether today's budget is spent (sending would be refused)."""
    return sms_sent_today() >= settings.SMS_DAILY_BUDGET


def _reserve_budget() -> None:
    """Count one message against today's budget, or refuse it and alert the operators."""
    day = _today()
    key = _COUNT_KEY.format(day=day)
    cache.add(key, 0, timeout=_TWO_DAYS)
    count = cache.incr(key)
    if count > settings.SMS_DAILY_BUDGET:
        _alert_budget_reached(day)
        raise SMSRefused(
            f"Today's SMS budget ({settings.SMS_DAILY_BUDGET} messages) is spent; "
            "sending resumes tomorrow."
        )


def _alert_budget_reached(day: str) -> None:
    """E-mail the operators (ADMINS and superusers) once a day when the budget runs out."""
    if not cache.add(_ALERT_KEY.format(day=day), True, timeout=_TWO_DAYS):
        return
    from api.accounts.models import User

    superusers = User.objects.filter(is_superuser=True, is_active=True, email__isnull=False)
    recipients = sorted(
        {address.lower() for _, address in settings.ADMINS}
        | {email.lower() for email in superusers.values_list("email", flat=True)}
    )
    logger.error(
        "The daily SMS budget of %s messages is spent; SMS are refused until tomorrow.",
        settings.SMS_DAILY_BUDGET,
        extra={"expected": True},
    )
    if not recipients:
        return
    try:
        send_mail(
            subject=f"[Palier] Daily SMS budget reached ({day})",
            message=(
                f"Palier has sent {settings.SMS_DAILY_BUDGET} SMS today, its daily budget "
                "(SMS_DAILY_BUDGET). Further messages, login codes included, are refused "
                "until midnight. Raise SMS_DAILY_BUDGET if this traffic is expected; "
                "otherwise look for abuse of the login-code endpoint."
            ),
            from_email=settings.SERVER_EMAIL,
            recipient_list=recipients,
        )
    except Exception:  # a mail outage must not turn a refusal into a crash
        logger.exception("Could not e-mail the SMS budget alert", extra={"expected": True})


def _record_send_seconds(seconds: float) -> None:
    """Smooth how long sends take, so unknown numbers can be made to wait as long."""
    previous = cache.get(SEND_SECONDS_KEY)
    value = seconds if previous is None else 0.8 * float(previous) + 0.2 * seconds
    cache.set(SEND_SECONDS_KEY, value, timeout=None)


def typical_send_seconds() -> float:
    """How long a send usually takes (0 when nothing was sent yet)."""
    return float(cache.get(SEND_SECONDS_KEY) or 0.0)


def _e164(to: str | PhoneNumber) -> str:
    number = to if isinstance(to, PhoneNumber) else to_python(str(to))
    if not isinstance(number, PhoneNumber) or not number.is_valid():
        raise SMSDeliveryError("The recipient's phone number is not valid.")
    return number.as_e164


def send_sms(*, to: str | PhoneNumber, body: str, purpose: str) -> SentSMS:
    """Send one text message through the configured backend, within the daily budget.

    Raises SMSRefused when the budget is spent, SMSDeliveryError when the provider fails.
    """
    number = _e164(to)
    backend = get_backend()
    _reserve_budget()
    sent_at = timezone.now()
    started = time.monotonic()
    provider_id = backend.send(to=number, body=body, purpose=purpose, sent_at=sent_at)
    _record_send_seconds(time.monotonic() - started)
    return SentSMS(to=number, sent_at=sent_at, provider_id=provider_id)
