"""The worker side of the outbox: claim due deliveries, send them, record what happened.

Workers compete for rows with SELECT … FOR UPDATE SKIP LOCKED, so each delivery is claimed by
one worker at a time, for a lease. A worker that dies mid-send leaves rows in `sending`; once
their lease expires the sweeper asks the channel whether the provider already has them (the
file backends and idempotent providers can tell) and sends again only those it does not.
"""

import json
import logging
import random
import time
from collections import defaultdict
from datetime import datetime, timedelta
from functools import lru_cache

from django.conf import settings
from django.db import connection, transaction
from django.db.models import CharField, F
from django.db.models.functions import Cast
from django.utils import timezone

from . import texts
from .channels import DeliveryFailed, Device, Outgoing, SendResult, get_backend
from .models import Channel, Delivery, DeliveryStatus, PushDevice, PushDeviceKind
from .services import drains_needed, push_device_disable

logger = logging.getLogger(__name__)

PUSH_KINDS = {Channel.PUSH: PushDeviceKind.FCM, Channel.WEBPUSH: PushDeviceKind.WEBPUSH}
UPDATED_FIELDS = [
    "status",
    "not_before",
    "claimed_until",
    "provider_id",
    "last_error",
    "detail",
    "sent_at",
    "failed_at",
    "updated_at",
]


def record_outcomes(deliveries: list[Delivery]) -> None:
    """Write what happened to each delivery: one UPDATE per row, sent as one batch.

    (Django's bulk_update builds a CASE per field and row, which costs more than the sending.)
    """
    if not deliveries:
        return
    table = connection.ops.quote_name(Delivery._meta.db_table)
    fields = [Delivery._meta.get_field(name) for name in UPDATED_FIELDS]
    assignments = ", ".join(f"{connection.ops.quote_name(f.column)} = %s" for f in fields)
    pk = Delivery._meta.pk
    where = f"{connection.ops.quote_name(pk.column)} = %s"
    sql = f"UPDATE {table} SET {assignments} WHERE {where}"  # noqa: S608 - names from the model
    rows = [
        [
            *(f.get_db_prep_save(getattr(d, f.attname), connection) for f in fields),
            pk.get_db_prep_save(d.pk, connection),
        ]
        for d in deliveries
    ]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.executemany(sql, rows)


def kick(count: int) -> None:
    """Queue drain tasks for `count` due deliveries; if the broker is down, the sweeper will."""
    from .tasks import drain

    for _ in range(drains_needed(count)):
        try:
            drain.apply_async(retry=False)
        except Exception as exc:  # noqa: BLE001 - broker outage: the sweeper catches up
            logger.warning("could not queue delivery (%s); the sweeper will pick it up", exc)
            return


def claim(*, now: datetime | None = None, limit: int | None = None) -> list[Delivery]:
    """Claim up to `limit` due deliveries for this worker, critical ones first."""
    now = now or timezone.now()
    limit = limit or settings.NOTIFY_CLAIM_BATCH
    lease = timedelta(seconds=settings.NOTIFY_CLAIM_LEASE_SECONDS)
    with transaction.atomic():
        ids = list(
            Delivery.objects.select_for_update(skip_locked=True)
            .filter(status=DeliveryStatus.QUEUED, not_before__lte=now)
            .order_by("-critical", "not_before")
            .values_list("id", flat=True)[:limit]
        )
        if not ids:
            return []
        Delivery.objects.filter(id__in=ids).update(
            status=DeliveryStatus.SENDING,
            claimed_until=now + lease,
            attempts=F("attempts") + 1,
            updated_at=now,
        )
    # The phone is read as stored (E.164 text); parsing it again for every message is slow.
    return list(
        Delivery.objects.filter(id__in=ids)
        .select_related("notification", "notification__recipient")
        .annotate(recipient_phone=Cast("notification__recipient__phone", CharField()))
        .defer("notification__recipient__phone", "notification__recipient__password")
    )


@lru_cache(maxsize=512)
def _words(batch, event: str, language: str, context_json: str) -> texts.Rendered:
    return texts.render(event, json.loads(context_json), language)


def _rendered(notification) -> texts.Rendered:
    # Every notification of a batch shares its context: render once per batch and language.
    return _words(
        notification.batch,
        notification.event,
        notification.language,
        json.dumps(notification.context, sort_keys=True),
    )


def _devices(deliveries: list[Delivery]) -> dict:
    wanted = defaultdict(set)
    for d in deliveries:
        if d.channel in PUSH_KINDS:
            wanted[PUSH_KINDS[d.channel]].add(d.notification.recipient_id)
    devices = defaultdict(list)
    for kind, users in wanted.items():
        for device in PushDevice.objects.filter(
            kind=kind, user_id__in=users, disabled_at__isnull=True
        ):
            devices[(device.user_id, kind)].append(
                Device(
                    id=str(device.id), token=device.token, p256dh=device.p256dh, auth=device.auth
                )
            )
    return devices


def outgoing(delivery: Delivery, devices: dict) -> Outgoing:
    """The message a delivery carries."""
    notification = delivery.notification
    recipient = notification.recipient
    words = _rendered(notification)
    kind = PUSH_KINDS.get(delivery.channel)
    return Outgoing(
        delivery_id=str(delivery.id),
        notification_id=str(notification.id),
        key=delivery.idempotency_key,
        channel=delivery.channel,
        event=notification.event,
        title=notification.title,
        body=notification.body,
        sms=words.sms,
        language=notification.language,
        rtl=words.rtl,
        link=notification.deep_link,
        critical=notification.critical,
        recipient_id=str(recipient.id),
        phone=getattr(delivery, "recipient_phone", None) or str(recipient.phone or ""),
        email=recipient.email or "",
        devices=tuple(devices.get((recipient.id, kind), ())) if kind else (),
    )


def backoff(attempts: int) -> timedelta:
    """Exponential back-off with jitter: base, 2×base, 4×base… capped."""
    seconds = min(
        settings.NOTIFY_RETRY_BASE_SECONDS * 2 ** max(attempts - 1, 0),
        settings.NOTIFY_RETRY_MAX_SECONDS,
    )
    return timedelta(seconds=seconds * random.uniform(0.8, 1.2))


def _sms_fallback(deliveries: list[Delivery], now: datetime) -> None:
    """A push that can reach no device falls back to SMS: the person has no working app."""
    for delivery in deliveries:
        recipient = delivery.notification.recipient
        if not recipient.phone:
            continue
        sms, created = Delivery.objects.get_or_create(
            notification=delivery.notification,
            channel=Channel.SMS,
            defaults={"critical": delivery.critical, "not_before": now},
        )
        if not created and sms.status == DeliveryStatus.QUEUED and sms.not_before > now:
            Delivery.objects.filter(pk=sms.pk, status=DeliveryStatus.QUEUED).update(
                not_before=now, only_if_unread=False, updated_at=now
            )


def process(deliveries: list[Delivery]) -> dict[str, int]:
    """Send claimed deliveries and record each outcome; returns counts by outcome."""
    now = timezone.now()
    counts: dict[str, int] = defaultdict(int)
    devices = _devices(deliveries)
    backends = {}
    done: list[Delivery] = []
    fallbacks: list[Delivery] = []
    for delivery in deliveries:
        delivery.claimed_until = None
        delivery.updated_at = now
        if delivery.only_if_unread and delivery.notification.read_at is not None:
            delivery.status = DeliveryStatus.CANCELLED
            delivery.last_error = "read before sending"
            counts["cancelled"] += 1
            done.append(delivery)
            continue
        backend = backends.get(delivery.channel) or backends.setdefault(
            delivery.channel, get_backend(delivery.channel)
        )
        try:
            result: SendResult = backend.send(outgoing(delivery, devices))
        except DeliveryFailed as failure:
            for device_id in failure.dead_devices:
                push_device_disable(device_id=device_id, reason=failure.reason)
            delivery.last_error = failure.reason
            if failure.permanent or delivery.attempts >= settings.NOTIFY_MAX_ATTEMPTS:
                delivery.status = DeliveryStatus.FAILED
                delivery.failed_at = now
                counts["failed"] += 1
                if delivery.channel in PUSH_KINDS:
                    fallbacks.append(delivery)
            else:
                delivery.status = DeliveryStatus.QUEUED
                delivery.not_before = now + backoff(delivery.attempts)
                counts["retry"] += 1
        else:
            for device_id in result.detail.get("dead", []):
                push_device_disable(device_id=device_id, reason="refused by the push service")
            delivery.status = DeliveryStatus.SENT
            delivery.sent_at = timezone.now()
            delivery.provider_id = result.provider_id[:200]
            delivery.detail = result.detail
            delivery.last_error = ""
            counts["sent"] += 1
        done.append(delivery)
    record_outcomes(done)
    if fallbacks:
        _sms_fallback(fallbacks, now)
        from .services import kick_delivery

        kick_delivery(len(fallbacks))
    return dict(counts)


def drain(*, budget_seconds: float | None = None) -> dict[str, int]:
    """Claim and send until nothing is due or the time budget is spent."""
    budget = budget_seconds if budget_seconds is not None else settings.NOTIFY_DRAIN_SECONDS
    started = time.monotonic()
    totals: dict[str, int] = defaultdict(int)
    while True:
        claimed = claim()
        if not claimed:
            break
        for outcome, count in process(claimed).items():
            totals[outcome] += count
        if time.monotonic() - started > budget:
            kick(1)
            break
    return dict(totals)


def recover_expired(*, now: datetime | None = None) -> dict[str, int]:
    """Deliveries whose worker died mid-send: recorded as sent if the provider has them,
    queued again otherwise."""
    now = now or timezone.now()
    counts = {"recovered_sent": 0, "requeued": 0, "failed": 0}
    with transaction.atomic():
        stale = list(
            Delivery.objects.select_for_update(skip_locked=True).filter(
                status=DeliveryStatus.SENDING, claimed_until__lt=now
            )[:5000]
        )
        by_channel = defaultdict(list)
        for delivery in stale:
            by_channel[delivery.channel].append(delivery)
        for channel, rows in by_channel.items():
            known = get_backend(channel).already_sent([d.idempotency_key for d in rows]) or set()
            for delivery in rows:
                delivery.claimed_until = None
                delivery.updated_at = now
                if delivery.idempotency_key in known:
                    delivery.status = DeliveryStatus.SENT
                    delivery.sent_at = now
                    delivery.last_error = "recorded after a worker stopped"
                    counts["recovered_sent"] += 1
                elif delivery.attempts >= settings.NOTIFY_MAX_ATTEMPTS:
                    delivery.status = DeliveryStatus.FAILED
                    delivery.failed_at = now
                    delivery.last_error = "worker stopped while sending, too many times"
                    counts["failed"] += 1
                else:
                    delivery.status = DeliveryStatus.QUEUED
                    delivery.not_before = now
                    counts["requeued"] += 1
        record_outcomes(stale)
    return counts


def sweep(*, now: datetime | None = None) -> dict[str, int]:
    """Recover stale claims and start drains for due deliveries nobody has picked up."""
    now = now or timezone.now()
    counts = recover_expired(now=now)
    grace = timedelta(seconds=settings.NOTIFY_SWEEP_GRACE_SECONDS)
    waiting = Delivery.objects.filter(
        status=DeliveryStatus.QUEUED, not_before__lte=now - grace
    ).count()
    if waiting or counts["requeued"]:
        kick(waiting + counts["requeued"])
    counts["waiting"] = waiting
    return counts
