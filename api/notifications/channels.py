"""Channels behind one interface: mobile push (FCM HTTP v1), Web Push (VAPID), SMS, e-mail.

Every backend takes an `Outgoing` message and returns a `SendResult`, or raises
`TemporaryFailure` (retried with back-off) or `PermanentFailure` (given up; a dead push token
is disabled). In development (PUSH_BACKEND=file, the file e-mail backend, the file SMS
backend) every channel writes what it would send under OUTBOX_DIR: push.jsonl, webpush.jsonl,
sms.jsonl and email/*.eml, once per idempotency key, so a person can read what was sent.
"""

import base64
import hashlib
import inspect
import json
import logging
import os
import threading
from dataclasses import dataclass, field
from email.utils import make_msgid
from pathlib import Path

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.utils import timezone

from .models import Channel

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: O_APPEND alone keeps short lines whole
    fcntl = None

logger = logging.getLogger(__name__)

PUSH_FILE = "push.jsonl"
WEBPUSH_FILE = "webpush.jsonl"
EMAIL_DIR = "email"
WEBPUSH_TTL_SECONDS = 24 * 3600
FILE_EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"


class DeliveryFailed(Exception):
    """A message could not be handed over."""

    permanent = False

    def __init__(self, reason: str, *, dead_devices: list | None = None) -> None:
        super().__init__(reason)
        self.reason = reason[:500]
        self.dead_devices = dead_devices or []


class TemporaryFailure(DeliveryFailed):
    """Worth trying again later (provider unavailable, quota, timeout)."""


class PermanentFailure(DeliveryFailed):
    """Trying again would fail the same way (no device, dead token, invalid number)."""

    permanent = True


@dataclass(frozen=True)
class Device:
    """A push target: an FCM token or a Web Push subscription."""

    id: str
    token: str
    p256dh: str = ""
    auth: str = ""


@dataclass(frozen=True)
class Outgoing:
    """One delivery's message, in the recipient's language."""

    delivery_id: str
    notification_id: str
    key: str
    channel: str
    event: str
    title: str
    body: str
    sms: str
    language: str
    rtl: bool
    link: str
    critical: bool
    recipient_id: str
    phone: str = ""
    email: str = ""
    devices: tuple[Device, ...] = ()


@dataclass
class SendResult:
    """What the provider answered."""

    provider_id: str = ""
    detail: dict = field(default_factory=dict)


class ChannelBackend:
    """What every channel provides."""

    channel: str = ""

    def send(self, message: Outgoing) -> SendResult:
        raise NotImplementedError

    def already_sent(self, keys: list[str]) -> set[str] | None:
        """Which of these keys the provider already has, or None when it cannot tell."""
        return None


# --- Idempotent append-only files (the development "providers") --------------------------------

_index_lock = threading.Lock()
_indexes: dict[tuple[str, str], tuple[int, int, set]] = {}


class JsonlOutbox:
    """A JSON-lines file where each key is written once, whichever process writes it.

    Under an exclusive lock, the writer first reads what other processes appended since it
    last looked (an index kept per process), then appends its line in one write() unless the
    key is already there: a redelivered or recovered message is refused, as a provider with
    idempotency keys would.
    """

    def __init__(self, path: Path, key_field: str = "idempotency_key") -> None:
        self.path = Path(path)
        self.key_field = key_field

    def _refresh(self, fd: int) -> set:
        stat = os.fstat(fd)
        cache_key = (str(self.path), self.key_field)
        with _index_lock:
            inode, offset, keys = _indexes.get(cache_key, (None, 0, set()))
        if inode != stat.st_ino or stat.st_size < offset:
            offset, keys = 0, set()
        if stat.st_size > offset:
            os.lseek(fd, offset, os.SEEK_SET)
            chunks, remaining = [], stat.st_size - offset
            while remaining > 0:
                chunk = os.read(fd, min(remaining, 1 << 20))
                if not chunk:
                    break
                chunks.append(chunk)
                remaining -= len(chunk)
            data = b"".join(chunks)
            complete = data.rfind(b"\n") + 1
            for line in data[:complete].splitlines():
                try:
                    value = json.loads(line).get(self.key_field)
                except (ValueError, AttributeError):
                    continue
                if isinstance(value, str):
                    keys.add(value)
            offset += complete
        with _index_lock:
            _indexes[cache_key] = (stat.st_ino, offset, keys)
        return keys

    def _open(self, flags: int) -> int:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        return os.open(self.path, flags | os.O_CREAT, 0o600)

    def append_once(self, key: str, record: dict) -> bool:
        """Append the record unless its key is already in the file; True if written."""
        data = (json.dumps({**record, self.key_field: key}, ensure_ascii=False) + "\n").encode()
        fd = self._open(os.O_RDWR | os.O_APPEND)
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            keys = self._refresh(fd)
            if key in keys:
                return False
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            stat = os.fstat(fd)
            keys.add(key)
            with _index_lock:
                _indexes[(str(self.path), self.key_field)] = (stat.st_ino, stat.st_size, keys)
            return True
        finally:
            os.close(fd)

    def contains(self, keys: list[str]) -> set[str]:
        """Which of the keys are in the file."""
        if not self.path.exists():
            return set()
        fd = self._open(os.O_RDONLY)
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_SH)
            present = self._refresh(fd)
        finally:
            os.close(fd)
        return {key for key in keys if key in present}


def outbox_dir() -> Path:
    return Path(settings.OUTBOX_DIR)


# --- Mobile push: FCM HTTP v1 ----------------------------------------------------------------


def collapse_id(message: Outgoing) -> str:
    """A short id shared by every copy of one notification: a phone or browser shows a
    redelivered copy in place of the first one, never beside it."""
    digest = hashlib.sha256(message.notification_id.encode()).digest()[:24]
    return base64.urlsafe_b64encode(digest).decode()


def push_data(message: Outgoing) -> dict[str, str]:
    """The data payload the app reads (FCM data values are strings)."""
    return {
        "notification_id": message.notification_id,
        "event": message.event,
        "link": message.link,
        "critical": "1" if message.critical else "0",
        "lang": message.language,
        "dir": "rtl" if message.rtl else "ltr",
    }


def _fcm_addresses_by_fid() -> bool:
    from firebase_admin import messaging

    return "fid" in inspect.signature(messaging.Message).parameters


_FCM_ADDRESSES_BY_FID = _fcm_addresses_by_fid()


def build_fcm_message(message: Outgoing, token: str):
    """The FCM HTTP v1 message for one app instance."""
    from firebase_admin import messaging

    tag = collapse_id(message)
    # firebase-admin 7 addresses an app instance by its Firebase installation id (FID); older
    # releases by its registration token. The app registers the one the server's library uses.
    target = {"fid": token} if _FCM_ADDRESSES_BY_FID else {"token": token}
    return messaging.Message(
        **target,
        notification=messaging.Notification(title=message.title, body=message.body),
        data=push_data(message),
        android=messaging.AndroidConfig(
            priority="high" if message.critical else "normal",
            ttl=WEBPUSH_TTL_SECONDS,
            notification=messaging.AndroidNotification(
                tag=tag,
                channel_id="critical" if message.critical else "default",
                click_action="OPEN_LINK",
                default_sound=True,
            ),
        ),
        apns=messaging.APNSConfig(
            headers={
                "apns-collapse-id": tag[:64],
                "apns-priority": "10" if message.critical else "5",
            },
            payload=messaging.APNSPayload(
                aps=messaging.Aps(sound="default", thread_id=message.event, mutable_content=True)
            ),
        ),
    )


def fcm_json(fcm_message) -> dict:
    """The JSON body FCM's HTTP v1 API receives for a message ({"message": {...}})."""
    from firebase_admin._messaging_encoder import MessageEncoder

    return {"message": json.loads(json.dumps(fcm_message, cls=MessageEncoder))}


def map_fcm_error(error: Exception) -> DeliveryFailed:
    """An FCM error as a temporary or permanent failure."""
    from firebase_admin import exceptions, messaging

    name = type(error).__name__
    if isinstance(error, messaging.UnregisteredError | messaging.SenderIdMismatchError):
        return PermanentFailure(f"FCM: token no longer valid ({name})")
    if isinstance(error, exceptions.InvalidArgumentError):
        return PermanentFailure(f"FCM: message refused ({error})")
    if isinstance(error, exceptions.FirebaseError):
        return TemporaryFailure(f"FCM: {name}: {error}")
    return TemporaryFailure(f"FCM: {name}")


class FCMBackend(ChannelBackend):
    """Google's FCM HTTP v1 API through firebase-admin, one request per device."""

    channel = Channel.PUSH
    _app = None
    _app_lock = threading.Lock()

    @classmethod
    def app(cls):
        import firebase_admin
        from firebase_admin import credentials

        with cls._app_lock:
            if cls._app is None:
                if not settings.FCM_CREDENTIALS_FILE:
                    raise TemporaryFailure("FCM_CREDENTIALS_FILE is not set.")
                cls._app = firebase_admin.initialize_app(
                    credentials.Certificate(settings.FCM_CREDENTIALS_FILE), name="palier-fcm"
                )
        return cls._app

    def send(self, message: Outgoing) -> SendResult:
        from firebase_admin import messaging

        return _send_each(
            message,
            lambda device: messaging.send(build_fcm_message(message, device.token), app=self.app()),
            map_fcm_error,
        )


def _send_each(message: Outgoing, send_one, map_error) -> SendResult:
    """Send to every device; success if one got it, dead tokens reported for disabling."""
    if not message.devices:
        raise PermanentFailure("No device to push to.")
    ids, dead, temporary = {}, [], []
    for device in message.devices:
        try:
            ids[device.id] = str(send_one(device) or "")
        except Exception as exc:  # noqa: BLE001 - every provider error is mapped below
            failure = exc if isinstance(exc, DeliveryFailed) else map_error(exc)
            if failure.permanent:
                dead.append(device.id)
            else:
                temporary.append(failure.reason)
    if ids:
        provider_id = next(iter(ids.values()))
        return SendResult(provider_id=provider_id, detail={"devices": ids, "dead": dead})
    if temporary:
        raise TemporaryFailure("; ".join(temporary), dead_devices=dead)
    raise PermanentFailure("Every device token was refused.", dead_devices=dead)


class FilePushBackend(ChannelBackend):
    """Writes the FCM HTTP v1 JSON each device would receive to OUTBOX_DIR/push.jsonl."""

    channel = Channel.PUSH

    def __init__(self) -> None:
        self.outbox = JsonlOutbox(outbox_dir() / PUSH_FILE)

    def send(self, message: Outgoing) -> SendResult:
        if not message.devices:
            raise PermanentFailure("No device to push to.")
        record = {
            "to": message.recipient_id,
            "notification_id": message.notification_id,
            "sent_at": timezone.now().isoformat(),
            "messages": [fcm_json(build_fcm_message(message, d.token)) for d in message.devices],
        }
        self.outbox.append_once(message.key, record)
        return SendResult(provider_id=f"file:{message.key}")

    def already_sent(self, keys: list[str]) -> set[str] | None:
        return self.outbox.contains(keys)


# --- Web Push (VAPID) ------------------------------------------------------------------------


def webpush_payload(message: Outgoing) -> dict:
    """What the service worker receives and shows (tag: copies replace each other)."""
    return {
        "title": message.title,
        "body": message.body,
        "tag": collapse_id(message),
        "lang": message.language,
        "dir": "rtl" if message.rtl else "ltr",
        "requireInteraction": message.critical,
        "data": push_data(message),
    }


def webpush_headers(message: Outgoing) -> dict[str, str]:
    """Urgency for delivery priority; Topic so a push service keeps one pending copy."""
    return {"Urgency": "high" if message.critical else "normal", "Topic": collapse_id(message)}


def map_webpush_error(error: Exception) -> DeliveryFailed:
    """A push service's answer as a temporary or permanent failure."""
    response = getattr(error, "response", None)
    status = getattr(response, "status_code", None)
    if status in {404, 410}:
        return PermanentFailure(f"Web Push: subscription gone (HTTP {status})")
    if status in {400, 403, 413}:
        return PermanentFailure(f"Web Push: refused (HTTP {status})")
    return TemporaryFailure(f"Web Push: {type(error).__name__} (HTTP {status})")


def vapid_subject() -> str:
    """The VAPID "sub" claim: a mailto: or https: contact for the push services."""
    claim = settings.VAPID_CLAIM_EMAIL.strip()
    return claim if claim.startswith(("mailto:", "https:")) else f"mailto:{claim}"


class WebPushBackend(ChannelBackend):
    """Browsers' push services through pywebpush, signed with the VAPID key."""

    channel = Channel.WEBPUSH

    def send(self, message: Outgoing) -> SendResult:
        from pywebpush import webpush

        if not settings.VAPID_PRIVATE_KEY:
            raise TemporaryFailure("VAPID_PRIVATE_KEY is not set.")
        data = json.dumps(webpush_payload(message), ensure_ascii=False)

        def send_one(device: Device) -> str:
            response = webpush(
                subscription_info={
                    "endpoint": device.token,
                    "keys": {"p256dh": device.p256dh, "auth": device.auth},
                },
                data=data,
                vapid_private_key=settings.VAPID_PRIVATE_KEY,
                vapid_claims={"sub": vapid_subject()},
                ttl=WEBPUSH_TTL_SECONDS,
                headers=webpush_headers(message),
                timeout=10,
            )
            return getattr(response, "headers", {}).get("Location", "")

        return _send_each(message, send_one, map_webpush_error)


class FileWebPushBackend(ChannelBackend):
    """Writes each subscription's payload and headers to OUTBOX_DIR/webpush.jsonl."""

    channel = Channel.WEBPUSH

    def __init__(self) -> None:
        self.outbox = JsonlOutbox(outbox_dir() / WEBPUSH_FILE)

    def send(self, message: Outgoing) -> SendResult:
        if not message.devices:
            raise PermanentFailure("No browser subscription to push to.")
        record = {
            "to": message.recipient_id,
            "notification_id": message.notification_id,
            "sent_at": timezone.now().isoformat(),
            "endpoints": [d.token for d in message.devices],
            "headers": {**webpush_headers(message), "TTL": str(WEBPUSH_TTL_SECONDS)},
            "payload": webpush_payload(message),
        }
        self.outbox.append_once(message.key, record)
        return SendResult(provider_id=f"file:{message.key}")

    def already_sent(self, keys: list[str]) -> set[str] | None:
        return self.outbox.contains(keys)


# --- SMS -------------------------------------------------------------------------------------


def sms_purpose(key: str) -> str:
    """The reference an SMS carries: the provider's idempotency key, and how the file
    backend's lines are matched after a worker died mid-send."""
    return f"notification:{key}"


class SMSBackend(ChannelBackend):
    """Through the SMS backend of the accounts app (its daily budget included)."""

    channel = Channel.SMS

    def send(self, message: Outgoing) -> SendResult:
        from api.accounts.sms import SMSConfigurationError, SMSDeliveryError, SMSRefused, send_sms

        if not message.phone:
            raise PermanentFailure("No phone number.")
        if not message.sms:
            raise PermanentFailure("No SMS text.")
        try:
            sent = send_sms(to=message.phone, body=message.sms, purpose=sms_purpose(message.key))
        except SMSRefused as exc:
            raise PermanentFailure(f"SMS budget: {exc}") from None
        except SMSDeliveryError as exc:
            if "not valid" in str(exc):
                raise PermanentFailure(str(exc)) from None
            raise TemporaryFailure(str(exc)) from None
        except SMSConfigurationError as exc:
            raise TemporaryFailure(str(exc)) from None
        return SendResult(provider_id=sent.provider_id or "")

    def already_sent(self, keys: list[str]) -> set[str] | None:
        from api.accounts.sms import OUTBOX_FILE_NAME, FileSMSBackend, get_backend

        if not isinstance(get_backend(), FileSMSBackend):
            return None
        purposes = {sms_purpose(key): key for key in keys}
        found = JsonlOutbox(outbox_dir() / OUTBOX_FILE_NAME, key_field="purpose").contains(
            list(purposes)
        )
        return {purposes[p] for p in found}


# --- E-mail ----------------------------------------------------------------------------------


def build_email(message: Outgoing) -> EmailMultiAlternatives:
    """The e-mail: plain text and HTML, right to left where the language is."""
    context = {"message": message, "direction": "rtl" if message.rtl else "ltr"}
    email = EmailMultiAlternatives(
        subject=message.title,
        body=render_to_string("notifications/email.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[message.email],
        headers={
            "Message-ID": make_msgid(idstring=message.key, domain="palier.invalid"),
            "X-Palier-Delivery": message.key,
            "Content-Language": message.language,
        },
    )
    email.attach_alternative(render_to_string("notifications/email.html", context), "text/html")
    return email


class EmailBackend(ChannelBackend):
    """Django's e-mail (django-anymail's provider backends in production).

    With the file e-mail backend, each message is written once as OUTBOX_DIR/email/<key>.eml.
    """

    channel = Channel.EMAIL

    def _file_path(self, key: str) -> Path | None:
        if settings.EMAIL_BACKEND != FILE_EMAIL_BACKEND:
            return None
        return outbox_dir() / EMAIL_DIR / f"{key}.eml"

    def send(self, message: Outgoing) -> SendResult:
        if not message.email:
            raise PermanentFailure("No e-mail address.")
        email = build_email(message)
        path = self._file_path(message.key)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary = path.with_suffix(f".{os.getpid()}.tmp")
            temporary.write_bytes(email.message().as_bytes())
            try:
                os.link(temporary, path)  # atomic and exclusive: a second copy is refused
            except FileExistsError:
                pass
            finally:
                temporary.unlink(missing_ok=True)
            return SendResult(provider_id=f"file:{message.key}")
        try:
            email.send()
        except Exception as exc:  # noqa: BLE001 - SMTP and provider errors alike are retried
            raise TemporaryFailure(f"E-mail: {type(exc).__name__}: {exc}") from None
        status = getattr(email, "anymail_status", None)
        return SendResult(provider_id=str(getattr(status, "message_id", "") or ""))

    def already_sent(self, keys: list[str]) -> set[str] | None:
        if settings.EMAIL_BACKEND != FILE_EMAIL_BACKEND:
            return None
        return {key for key in keys if self._file_path(key).exists()}


def get_backend(channel: str) -> ChannelBackend:
    """The backend of a channel, as configured (file backends in development)."""
    live_push = settings.PUSH_BACKEND in {"fcm", "live"}
    if channel == Channel.PUSH:
        return FCMBackend() if live_push else FilePushBackend()
    if channel == Channel.WEBPUSH:
        return WebPushBackend() if live_push else FileWebPushBackend()
    if channel == Channel.SMS:
        return SMSBackend()
    if channel == Channel.EMAIL:
        return EmailBackend()
    raise ValueError(f"unknown channel {channel}")
