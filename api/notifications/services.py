"""Writes of the notifications app: the outbox, reading, preferences, devices and alerts.

`notify()` and `notify_team()` are what other apps call. Both write in the caller's
transaction (the outbox) and hand delivery to the workers once that transaction commits; a
sweeper picks up anything whose hand-off was lost, so a commit is never followed by silence.
"""

import json
import math
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import NamedTuple

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import signing
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.db.models import CharField, JSONField, Q
from django.db.models.expressions import RawSQL
from django.db.models.functions import Cast
from django.utils import timezone

from api.core.exceptions import ServiceError
from api.core.roles import Role

from . import texts
from .models import (
    AlertStatus,
    Channel,
    Delivery,
    DeliveryStatus,
    HouseholdReach,
    Notification,
    NotificationPreference,
    OnCallShift,
    PushDevice,
    PushDeviceKind,
    TeamAlert,
)

User = get_user_model()

ACK_SALT = "palier.notifications.alert-ack"
FINAL_STATUSES = frozenset(
    {DeliveryStatus.DELIVERED, DeliveryStatus.FAILED, DeliveryStatus.READ, DeliveryStatus.CANCELLED}
)


# --- Helpers ----------------------------------------------------------------------------------


def plain_json(value) -> dict:
    """The context as plain JSON (ids, dates and decimals become strings)."""
    if not isinstance(value, dict):
        raise ServiceError("The context must be a JSON object.", field="context")
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


def default_preference(user) -> NotificationPreference:
    """Preferences of a person who never set any: e-mail only for staff who have one."""
    return NotificationPreference(
        user=user, email_enabled=bool(user.email) and user.role != Role.TENANT
    )


def quiet_until(preference: NotificationPreference, now: datetime) -> datetime | None:
    """When the person's quiet hours end, if `now` is inside them."""
    start, end = preference.quiet_start, preference.quiet_end
    if start is None or end is None or start == end:
        return None
    local = timezone.localtime(now)
    moment = local.time()
    inside = (start <= moment < end) if start < end else (moment >= start or moment < end)
    if not inside:
        return None
    day = local.date() if moment < end else local.date() + timedelta(days=1)
    return timezone.make_aware(datetime.combine(day, end), local.tzinfo)


class PlannedDelivery(NamedTuple):
    # A tuple, not a dataclass: a crisis notice plans 10,000 of them in its transaction.
    channel: str
    not_before: datetime
    only_if_unread: bool = False


def plan_channels(
    *,
    user,
    preference: NotificationPreference,
    device_kinds: set[str],
    critical: bool,
    now: datetime,
) -> list[PlannedDelivery]:
    """Which channels carry a notification to this person, and from when.

    Push goes to every app and browser the person registered; a person with neither gets an
    SMS. A critical notice passes quiet hours, and to a person with the app it sends an SMS
    later, cancelled if the notice was read by then; a critical notice reaches someone who
    turned SMS off but has no other way to be reached.
    """
    plans: list[PlannedDelivery] = []
    quiet = None if critical else quiet_until(preference, now)
    start = quiet or now
    push_kinds = []
    if preference.push_enabled:
        if PushDeviceKind.FCM in device_kinds:
            push_kinds.append(Channel.PUSH)
        if PushDeviceKind.WEBPUSH in device_kinds:
            push_kinds.append(Channel.WEBPUSH)
    plans.extend(PlannedDelivery(kind, start) for kind in push_kinds)
    has_email = bool(user.email) and preference.email_enabled
    if user.phone:
        if not push_kinds and (preference.sms_enabled or (critical and not has_email)):
            plans.append(PlannedDelivery(Channel.SMS, start))
        elif push_kinds and critical and preference.sms_enabled:
            after = timedelta(minutes=settings.NOTIFY_CRITICAL_SMS_AFTER_MINUTES)
            plans.append(PlannedDelivery(Channel.SMS, now + after, only_if_unread=True))
    if has_email:
        plans.append(PlannedDelivery(Channel.EMAIL, now))
    return plans


def _live_device_kinds(user_ids: list) -> dict:
    kinds: dict = {}
    rows = (
        PushDevice.objects.filter(ids_in("user_id", user_ids), disabled_at__isnull=True)
        .values_list("user_id", "kind")
        .distinct()
    )
    for user_id, kind in rows:
        kinds.setdefault(user_id, set()).add(kind)
    return kinds


def _household_dwellings(user_ids: list) -> dict:
    """The current dwelling of each tenant among `user_ids`."""
    from api.estate.models import HouseholdMember
    from api.estate.selectors import current_lease_q

    rows = HouseholdMember.objects.filter(
        current_lease_q(timezone.localdate(), "lease__"), ids_in("person_id", user_ids)
    ).values_list("person_id", "lease__dwelling_id")
    dwellings: dict = {}
    for person_id, dwelling_id in rows:
        dwellings.setdefault(person_id, dwelling_id)
    return dwellings


def kick_delivery(count: int) -> None:
    """Start enough workers' drains for `count` new deliveries (after commit)."""
    from .outbox import kick

    kick(count)


# --- The outbox -------------------------------------------------------------------------------


def notify(
    *,
    recipients: Iterable,
    event: str,
    context: dict,
    critical: bool = False,
    deep_link: str = "",
    dedupe_key: str | None = None,
    actor=None,
) -> list[Notification]:
    """Write one notification per recipient and its deliveries, in the caller's transaction.

    Delivery starts once the transaction commits. A recipient who already has a notification
    with `dedupe_key` gets nothing new. The words come from the event's template in each
    recipient's language (the generic template until the event has its own).
    """
    return _fetch(
        notify_many(
            recipients=recipients,
            event=event,
            context=context,
            critical=critical,
            deep_link=deep_link,
            dedupe_key=dedupe_key,
            actor=actor,
        )
    )


@dataclass(frozen=True)
class Recipient:
    """What routing needs of a person (read as plain values: no model per recipient)."""

    pk: object
    organisation_id: object
    language: str
    email: str | None
    phone: str | None
    role: str


@dataclass(frozen=True)
class Preference:
    """A person's preferences as plain values (the defaults when they never chose)."""

    push_enabled: bool = True
    sms_enabled: bool = True
    email_enabled: bool = False
    quiet_start: time | None = None
    quiet_end: time | None = None


def ids_in(field: str, ids: list) -> Q:
    """`field IN ids`, as one array parameter on PostgreSQL (a broadcast has 10,000 ids)."""
    if connection.vendor == "postgresql" and len(ids) > 100:
        return Q(**{f"{field}__in": RawSQL("SELECT unnest(%s::uuid[])", (list(ids),))})
    return Q(**{f"{field}__in": ids})


def _recipients(ids: list) -> list[tuple[Recipient, Preference]]:
    """Active recipients among `ids`, in the given order, with their preferences."""
    # The phone is read as stored (E.164 text): parsing 10,000 numbers costs seconds.
    rows = User.objects.filter(ids_in("id", ids), is_active=True).values_list(
        "id",
        "organisation_id",
        "language",
        "email",
        Cast("phone", output_field=CharField()),
        "role",
        "notification_preference__id",
        "notification_preference__push_enabled",
        "notification_preference__sms_enabled",
        "notification_preference__email_enabled",
        "notification_preference__quiet_start",
        "notification_preference__quiet_end",
    )
    found = {}
    for pk, org, language, email, phone, role, pref_id, push, sms, mail, start, end in rows:
        person = Recipient(pk, org, language, email, str(phone) if phone else None, role)
        if pref_id is None:
            preference = Preference(email_enabled=bool(email) and role != Role.TENANT)
        else:
            preference = Preference(push, sms, mail, start, end)
        found[pk] = (person, preference)
    return [found[pk] for pk in ids if pk in found]


def _insert(model, rows: list[dict]) -> None:
    """Insert rows given as {attname: value}; COPY on PostgreSQL, bulk_create elsewhere.

    Fields a row leaves out take their default, computed once: rows give every value that
    must be unique (ids, batches).
    """
    if not rows:
        return
    if connection.vendor != "postgresql":
        model.objects.bulk_create([model(**row) for row in rows], batch_size=1000)
        return
    fields = list(model._meta.concrete_fields)
    given = rows[0].keys()
    defaults = {f.attname: f.get_default() for f in fields if f.attname not in given}
    json_fields = {f.attname for f in fields if isinstance(f, JSONField)}
    names = [f.attname for f in fields]
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    table = connection.ops.quote_name(model._meta.db_table)
    # JSON goes as text that PostgreSQL parses; the rows of one call share their context,
    # so it is encoded once per distinct object.
    encoded: dict[int, str] = {}

    def as_json(value) -> str:
        key = id(value)
        if key not in encoded:
            encoded[key] = json.dumps(value, cls=DjangoJSONEncoder)
        return encoded[key]

    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy,
    ):
        for row in rows:
            values = []
            for name in names:
                value = row[name] if name in row else defaults[name]
                values.append(
                    as_json(value) if name in json_fields and value is not None else value
                )
            copy.write_row(values)


@transaction.atomic
def notify_many(
    *,
    recipients: Iterable,
    event: str,
    context: dict,
    critical: bool = False,
    deep_link: str = "",
    dedupe_key: str | None = None,
    actor=None,
    dwellings: dict | None = None,
    broadcast=None,
    alert=None,
    batch: uuid.UUID | None = None,
    now: datetime | None = None,
    channels: frozenset | None = None,
) -> list:
    """`notify()` with what broadcasts, news and alerts add: known dwellings, a new batch
    id, a source, and the channels allowed (ordinary news never goes by SMS). Returns the ids
    of the notifications written, in the recipients' order."""
    if not isinstance(event, str) or not event or len(event) > 64:
        raise ServiceError("An event name of 1 to 64 characters is needed.", field="event")
    context = plain_json(context)
    now = now or timezone.now()
    batch = batch or uuid.uuid4()
    ids = list(dict.fromkeys(getattr(r, "pk", r) for r in recipients if r is not None))
    if not ids:
        return []
    people = _recipients(ids)
    if dedupe_key:
        already = set(
            Notification.objects.filter(
                ids_in("recipient_id", ids), dedupe_key=dedupe_key
            ).values_list("recipient_id", flat=True)
        )
        people = [(p, pref) for p, pref in people if p.pk not in already]
    if not people:
        return []
    user_ids = [p.pk for p, _ in people]
    device_kinds = _live_device_kinds(user_ids)
    if dwellings is None:
        dwellings = {}
        given = context.get("dwelling_id")
        if given:
            dwellings = dict.fromkeys(user_ids, given)
        elif critical:
            dwellings = _household_dwellings(user_ids)
    link_path = deep_link or texts.deep_link_path(event, context)
    rendered: dict[str, texts.Rendered] = {}
    notifications: list[dict] = []
    deliveries: list[dict] = []
    for person, preference in people:
        language = texts.base_language(person.language)
        if language not in rendered:
            rendered[language] = texts.render(event, context, language)
        words = rendered[language]
        notification_id = uuid.uuid4()
        notifications.append(
            {
                "id": notification_id,
                "created_at": now,
                "updated_at": now,
                "organisation_id": person.organisation_id,
                "recipient_id": person.pk,
                "event": event,
                "context": context,
                "language": language,
                "title": words.title,
                "body": words.body,
                "critical": critical,
                "deep_link": texts.full_deep_link(link_path or f"notifications/{notification_id}"),
                "dedupe_key": dedupe_key,
                "actor_id": getattr(actor, "pk", None),
                "batch": batch,
                "dwelling_id": dwellings.get(person.pk),
                "broadcast_id": getattr(broadcast, "pk", None),
                "alert_id": getattr(alert, "pk", None),
            }
        )
        for plan in plan_channels(
            user=person,
            preference=preference,
            device_kinds=device_kinds.get(person.pk, set()),
            critical=critical,
            now=now,
        ):
            if channels is not None and plan.channel not in channels:
                continue
            deliveries.append(
                {
                    "id": uuid.uuid4(),
                    "created_at": now,
                    "updated_at": now,
                    "notification_id": notification_id,
                    "channel": plan.channel,
                    "critical": critical,
                    "not_before": plan.not_before,
                    "only_if_unread": plan.only_if_unread,
                }
            )
    if dedupe_key:
        # Two callers may race on one key: the unique constraint keeps one, and only the
        # notifications this call really wrote get deliveries.
        Notification.objects.bulk_create(
            [Notification(**row) for row in notifications], batch_size=1000, ignore_conflicts=True
        )
        written = set(
            Notification.objects.filter(id__in=[n["id"] for n in notifications]).values_list(
                "id", flat=True
            )
        )
        notifications = [n for n in notifications if n["id"] in written]
        deliveries = [d for d in deliveries if d["notification_id"] in written]
    else:
        _insert(Notification, notifications)
    _insert(Delivery, deliveries)
    if critical:
        _reach_rows(notifications, now=now, broadcast=broadcast)
    due = sum(1 for d in deliveries if d["not_before"] <= now)
    if due:
        transaction.on_commit(lambda: kick_delivery(due))
    return [n["id"] for n in notifications]


def _fetch(notification_ids: list) -> list[Notification]:
    by_id = Notification.objects.in_bulk(notification_ids)
    return [by_id[pk] for pk in notification_ids if pk in by_id]


def _reach_rows(notifications: list[dict], *, now: datetime, broadcast) -> None:
    """One row per household a critical notice is meant to reach (the batch is new)."""
    after = now + timedelta(minutes=settings.NOTIFY_NOT_REACHED_AFTER_MINUTES)
    rows = {}
    for n in notifications:
        dwelling_id = n["dwelling_id"]
        if dwelling_id and n["organisation_id"] and dwelling_id not in rows:
            rows[dwelling_id] = {
                "id": uuid.uuid4(),
                "created_at": now,
                "updated_at": now,
                "organisation_id": n["organisation_id"],
                "batch": n["batch"],
                "dwelling_id": dwelling_id,
                "event": n["event"],
                "title": n["title"],
                "broadcast_id": getattr(broadcast, "pk", None),
                "list_after": after,
            }
    _insert(HouseholdReach, list(rows.values()))


# --- Reading ----------------------------------------------------------------------------------


def _after_read(notification_ids: list, *, via: str, now: datetime) -> None:
    """What reading changes: deliveries become read, pending escalations are cancelled,
    and the household counts as reached."""
    Delivery.objects.filter(
        notification_id__in=notification_ids,
        only_if_unread=True,
        status=DeliveryStatus.QUEUED,
    ).update(status=DeliveryStatus.CANCELLED, updated_at=now, last_error="read before sending")
    Delivery.objects.filter(
        notification_id__in=notification_ids,
        status__in=[DeliveryStatus.SENT, DeliveryStatus.DELIVERED],
    ).update(status=DeliveryStatus.READ, read_at=now, updated_at=now)
    pairs = (
        Notification.objects.filter(id__in=notification_ids, critical=True, dwelling__isnull=False)
        .values_list("batch", "dwelling_id")
        .distinct()
    )
    reach_filter = Q()
    for batch, dwelling_id in pairs:
        reach_filter |= Q(batch=batch, dwelling_id=dwelling_id)
    if reach_filter:
        HouseholdReach.objects.filter(reach_filter, reached_at__isnull=True).update(
            reached_at=now, reached_via=via, updated_at=now
        )


@transaction.atomic
def notifications_mark_read(
    *, user, notification_ids: Iterable | None = None, via: str = "app"
) -> int:
    """Mark the person's notifications read (all unread ones when no ids are given)."""
    now = timezone.now()
    unread = Notification.objects.filter(recipient=user, read_at__isnull=True)
    if notification_ids is not None:
        unread = unread.filter(id__in=list(notification_ids))
    ids = list(unread.values_list("id", flat=True))
    if not ids:
        return 0
    Notification.objects.filter(id__in=ids).update(read_at=now, updated_at=now)
    _after_read(ids, via=via, now=now)
    return len(ids)


# --- Provider callbacks -----------------------------------------------------------------------

_CALLBACK_ORDER = {
    DeliveryStatus.QUEUED: 0,
    DeliveryStatus.SENDING: 1,
    DeliveryStatus.SENT: 2,
    DeliveryStatus.FAILED: 3,
    DeliveryStatus.DELIVERED: 3,
    DeliveryStatus.READ: 4,
    DeliveryStatus.CANCELLED: 4,
}


@transaction.atomic
def delivery_status_record(
    *,
    channel: str,
    status: str,
    provider_id: str = "",
    delivery_id: uuid.UUID | None = None,
    at: datetime | None = None,
    error: str = "",
) -> Delivery:
    """A provider reports what became of a message: delivered, failed or read.

    Reports arrive late and out of order; a report never moves a delivery backwards.
    """
    if status not in {DeliveryStatus.DELIVERED, DeliveryStatus.FAILED, DeliveryStatus.READ}:
        raise ServiceError("Only delivered, failed and read are reported.", field="status")
    deliveries = Delivery.objects.select_for_update().filter(channel=channel)
    if delivery_id is not None:
        deliveries = deliveries.filter(id=delivery_id)
    elif provider_id:
        deliveries = deliveries.filter(provider_id=provider_id)
    else:
        raise ServiceError("Say which message: provider_id or delivery_id.", field="provider_id")
    delivery = deliveries.select_related("notification").first()
    if delivery is None:
        raise ServiceError("No such message.", code="not_found", status_code=404)
    now = timezone.now()
    at = at or now
    backwards = _CALLBACK_ORDER[status] <= _CALLBACK_ORDER[delivery.status]
    failed_after_sent = status == DeliveryStatus.FAILED and delivery.status == DeliveryStatus.SENT
    if status != delivery.status and backwards and not failed_after_sent:
        return delivery
    delivery.status = status
    fields = ["status", "updated_at"]
    if status == DeliveryStatus.DELIVERED:
        delivery.delivered_at = at
        fields.append("delivered_at")
    elif status == DeliveryStatus.FAILED:
        delivery.failed_at = at
        delivery.last_error = error[:500] or "reported failed by the provider"
        fields += ["failed_at", "last_error"]
    else:
        delivery.read_at = at
        fields.append("read_at")
    delivery.save(update_fields=fields)
    notification = delivery.notification
    if status == DeliveryStatus.READ and notification.read_at is None:
        Notification.objects.filter(pk=notification.pk).update(read_at=at, updated_at=now)
        _after_read([notification.pk], via=channel, now=now)
    elif (
        status == DeliveryStatus.DELIVERED
        and channel == Channel.SMS
        and notification.critical
        and notification.dwelling_id
    ):
        HouseholdReach.objects.filter(
            batch=notification.batch, dwelling_id=notification.dwelling_id, reached_at__isnull=True
        ).update(reached_at=at, reached_via="sms_delivered", updated_at=now)
    return delivery


# --- Preferences and devices ------------------------------------------------------------------


@transaction.atomic
def preferences_update(
    *,
    user,
    push_enabled: bool | None = None,
    sms_enabled: bool | None = None,
    email_enabled: bool | None = None,
    quiet_start: time | None = None,
    quiet_end: time | None = None,
    clear_quiet_hours: bool = False,
    language: str | None = None,
) -> NotificationPreference:
    """A person chooses how they are reached, their quiet hours and their language."""
    preference = NotificationPreference.objects.select_for_update().filter(
        user=user
    ).first() or default_preference(user)
    for name, value in (
        ("push_enabled", push_enabled),
        ("sms_enabled", sms_enabled),
        ("email_enabled", email_enabled),
    ):
        if value is not None:
            setattr(preference, name, value)
    if clear_quiet_hours:
        preference.quiet_start = preference.quiet_end = None
    if quiet_start is not None or quiet_end is not None:
        start = quiet_start if quiet_start is not None else preference.quiet_start
        end = quiet_end if quiet_end is not None else preference.quiet_end
        if start is None or end is None:
            raise ServiceError("Quiet hours need a start and an end.", field="quiet_end")
        if start == end:
            raise ServiceError("Quiet hours cannot start and end at once.", field="quiet_end")
        preference.quiet_start, preference.quiet_end = start, end
    if preference.email_enabled and not user.email:
        raise ServiceError("There is no e-mail address on this account.", field="email_enabled")
    preference.save()
    if language is not None and language != user.language:
        from api.accounts.services import user_profile_update

        user_profile_update(user=user, language=language)
    return preference


@transaction.atomic
def push_device_register(
    *,
    user,
    kind: str,
    token: str,
    p256dh: str = "",
    auth: str = "",
    platform: str = "",
    label: str = "",
) -> PushDevice:
    """Register (or refresh) an app's push token or a browser's subscription.

    A token belongs to one installation: registered by someone else, it moves to this person
    (the phone changed hands or someone else logged in on it).
    """
    token = token.strip()
    if not token:
        raise ServiceError("A token is needed.", field="token")
    if kind == PushDeviceKind.WEBPUSH:
        if not token.startswith("https://"):
            raise ServiceError("A Web Push endpoint is an https:// URL.", field="token")
        if not p256dh or not auth:
            raise ServiceError("A Web Push subscription needs its keys.", field="p256dh")
    now = timezone.now()
    digest = PushDevice.hash_token(token)
    device = PushDevice.objects.select_for_update().filter(token_hash=digest).first()
    if device is None:
        device = PushDevice(token=token, token_hash=digest)
    device.user = user
    device.kind = kind
    device.p256dh, device.auth = p256dh, auth
    device.platform, device.label = platform, label
    device.last_seen_at = now
    device.disabled_at = None
    device.disabled_reason = ""
    device.save()
    return device


@transaction.atomic
def push_device_remove(*, user, device: PushDevice) -> None:
    """Forget a device (logout, or the person turned notifications off on it)."""
    if device.user_id != user.pk:
        raise ServiceError("Not found.", code="not_found", status_code=404)
    device.delete()


def push_device_disable(*, device_id, reason: str) -> None:
    """The push service says this token is dead: stop using it."""
    PushDevice.objects.filter(pk=device_id, disabled_at__isnull=True).update(
        disabled_at=timezone.now(), disabled_reason=reason[:200]
    )


# --- Door-knocking ----------------------------------------------------------------------------


@transaction.atomic
def household_visit_record(
    *, actor, reach: HouseholdReach, outcome: str, note: str = ""
) -> HouseholdReach:
    """The caretaker knocked: the household was told in person, or nobody answered."""
    if outcome not in {"told", "absent", "refused"}:
        raise ServiceError("Outcome is told, absent or refused.", field="outcome")
    now = timezone.now()
    reach.visited_at, reach.visited_by = now, actor
    reach.visit_outcome, reach.visit_note = outcome, note.strip()[:500]
    fields = ["visited_at", "visited_by", "visit_outcome", "visit_note", "updated_at"]
    if outcome == "told" and reach.reached_at is None:
        reach.reached_at, reach.reached_via = now, "visit"
        fields += ["reached_at", "reached_via"]
    reach.save(update_fields=fields)
    return reach


def households_list_unreached(*, now: datetime | None = None) -> int:
    """Put households still unreached after the set time on their caretakers' list, and
    tell each caretaker how many once per notice."""
    from api.estate.models import CaretakerAssignment

    now = now or timezone.now()
    with transaction.atomic():
        due = list(
            HouseholdReach.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(reached_at__isnull=True, listed_at__isnull=True, list_after__lte=now)
            .values_list("id", "batch", "title", "dwelling__entrance__building__residence_id")[
                :5000
            ]
        )
        if not due:
            return 0
        HouseholdReach.objects.filter(id__in=[row[0] for row in due]).update(
            listed_at=now, updated_at=now
        )
        counts: dict = {}
        for _, batch, title, residence_id in due:
            key = (batch, residence_id)
            counts[key] = (counts.get(key, (0, title))[0] + 1, title)
        caretakers: dict = {}
        for caretaker_id, residence_id in CaretakerAssignment.objects.filter(
            residence_id__in={key[1] for key in counts}, caretaker__is_active=True
        ).values_list("caretaker_id", "residence_id"):
            caretakers.setdefault(residence_id, []).append(caretaker_id)
        for (batch, residence_id), (count, title) in counts.items():
            people = caretakers.get(residence_id, [])
            if people:
                notify_many(
                    recipients=people,
                    event="household.not_reached",
                    context={"count": count, "title": title, "batch": str(batch)},
                    deep_link=f"door-knocking?batch={batch}",
                    dedupe_key=f"not-reached:{batch}:{residence_id}",
                    now=now,
                )
    return len(due)


# --- Maintenance alerts -----------------------------------------------------------------------


def on_call_chain(team, *, at: datetime) -> list[list]:
    """Who is called, in order: groups of people on call now by position; without a schedule
    covering `at`, the whole team at once."""
    from api.estate.models import TeamMembership

    shifts = (
        OnCallShift.objects.filter(
            team=team, starts_at__lte=at, ends_at__gt=at, user__is_active=True
        )
        .order_by("position", "starts_at")
        .values_list("position", "user_id")
    )
    groups: dict[int, list] = {}
    seen: set = set()
    for position, user_id in shifts:
        if user_id not in seen:
            seen.add(user_id)
            groups.setdefault(position, []).append(str(user_id))
    if groups:
        return [groups[p] for p in sorted(groups)]
    members = [
        str(user_id)
        for user_id in TeamMembership.objects.filter(team=team, user__is_active=True)
        .order_by("user__last_name", "user__first_name")
        .values_list("user_id", flat=True)
    ]
    return [members] if members else []


def _lock_team(team) -> None:
    """Serialise alert writes per team, so the flood count and dedupe hold under concurrency."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", [0x414C, str(team.pk)])


def alert_ack_token(*, alert: TeamAlert, user) -> str:
    """A signed token that lets `user` acknowledge `alert` from the notification itself."""
    return signing.TimestampSigner(salt=ACK_SALT).sign(f"{alert.pk}.{user.pk}")


def alert_from_token(token: str) -> tuple[TeamAlert, object]:
    """The alert and person a signed token names; refused when forged or expired."""
    max_age = timedelta(hours=settings.NOTIFY_ACK_LINK_MAX_AGE_HOURS)
    try:
        value = signing.TimestampSigner(salt=ACK_SALT).unsign(token, max_age=max_age)
        alert_id, user_id = (uuid.UUID(part) for part in value.split("."))
    except signing.SignatureExpired as exc:
        raise ServiceError("This link has expired.", code="link_expired", field="token") from exc
    except (signing.BadSignature, ValueError) as exc:
        raise ServiceError("This link is not valid.", code="link_invalid", field="token") from exc
    alert = TeamAlert.objects.select_related("team").filter(pk=alert_id).first()
    user = User.objects.filter(pk=user_id, is_active=True).first()
    if alert is None or user is None:
        raise ServiceError("This link is not valid.", code="link_invalid", field="token")
    return alert, user


def ack_url(*, alert: TeamAlert, user) -> str:
    """The page a technician opens from an SMS or e-mail to acknowledge an alert."""
    return f"{settings.PUBLIC_BASE_URL.rstrip('/')}/ack/{alert_ack_token(alert=alert, user=user)}"


def _ack_timeout(alert: TeamAlert) -> timedelta:
    minutes = (
        settings.NOTIFY_ALERT_ACK_CRITICAL_MINUTES
        if alert.critical
        else settings.NOTIFY_ALERT_ACK_MINUTES
    )
    return timedelta(minutes=minutes)


def _alert_notify(alert: TeamAlert, people: list, *, now: datetime) -> list[Notification]:
    """Notify people of an alert, each with their own acknowledgement link."""
    notifications: list = []
    for user in User.objects.filter(id__in=people, is_active=True):
        context = {
            **alert.context,
            "alert_id": str(alert.pk),
            "team": alert.context.get("team") or alert.team.name,
            "ack_url": ack_url(alert=alert, user=user),
        }
        notifications += notify_many(
            recipients=[user],
            event=alert.event,
            context=context,
            critical=alert.critical,
            deep_link=f"alerts/{alert.pk}",
            dedupe_key=f"alert:{alert.pk}:{alert.level}",
            alert=alert,
            now=now,
        )
    return _fetch(notifications)


@transaction.atomic
def notify_team(
    *,
    team,
    event: str,
    context: dict,
    critical: bool = False,
    dedupe_key: str | None = None,
) -> list[Notification]:
    """Alert a maintenance team: its first person on call now, then the next if nobody
    acknowledges in time. Beyond ALERT_FLOOD_LIMIT alerts in the window, alerts are held and
    sent as one digest."""
    now = timezone.now()
    context = plain_json(context)
    _lock_team(team)
    if dedupe_key and TeamAlert.objects.filter(team=team, dedupe_key=dedupe_key).exists():
        return []
    window = now - timedelta(minutes=settings.NOTIFY_ALERT_FLOOD_WINDOW_MINUTES)
    sent_recently = (
        TeamAlert.objects.filter(team=team, created_at__gte=window)
        .exclude(status=AlertStatus.DIGESTED)
        .count()
    )
    alert = TeamAlert(
        organisation_id=team.organisation_id,
        team=team,
        event=event,
        context=context,
        critical=critical,
        dedupe_key=dedupe_key,
        chain=on_call_chain(team, at=now),
    )
    if sent_recently >= settings.NOTIFY_ALERT_FLOOD_LIMIT:
        alert.status = AlertStatus.DIGESTED
        alert.save()
        return []
    alert.escalate_at = now + _ack_timeout(alert) if alert.chain else None
    alert.save()
    if not alert.chain:
        return []
    return _alert_notify(alert, alert.chain[0], now=now)


@transaction.atomic
def alert_acknowledge(*, alert: TeamAlert, user, via: str = "app") -> TeamAlert:
    """Someone takes the alert: escalation stops and the others' pending SMS are cancelled."""
    alert = TeamAlert.objects.select_for_update().get(pk=alert.pk)
    if alert.status == AlertStatus.ACKNOWLEDGED:
        return alert
    if alert.status == AlertStatus.DIGESTED:
        raise ServiceError("This alert was sent in a digest: acknowledge the digest.")
    now = timezone.now()
    alert.status = AlertStatus.ACKNOWLEDGED
    alert.acknowledged_at, alert.acknowledged_by = now, user
    alert.escalate_at = None
    alert.save(update_fields=["status", "acknowledged_at", "acknowledged_by", "escalate_at"])
    TeamAlert.objects.filter(digest=alert, status=AlertStatus.DIGESTED).update(
        acknowledged_at=now, acknowledged_by=user
    )
    ids = list(alert.notifications.values_list("id", flat=True))
    Delivery.objects.filter(
        notification_id__in=ids, only_if_unread=True, status=DeliveryStatus.QUEUED
    ).update(status=DeliveryStatus.CANCELLED, last_error="acknowledged", updated_at=now)
    notifications_mark_read(
        user=user,
        notification_ids=alert.notifications.filter(recipient=user).values_list("id", flat=True),
        via=via,
    )
    return alert


def alerts_escalate_due(*, now: datetime | None = None) -> int:
    """Call the next group of an unacknowledged alert's chain; after the last, the whole team."""
    from api.estate.models import TeamMembership

    now = now or timezone.now()
    done = 0
    with transaction.atomic():
        due = list(
            TeamAlert.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("team")
            .filter(status=AlertStatus.OPEN, escalate_at__lte=now)[:200]
        )
        for alert in due:
            alert.level += 1
            called = {uid for group in alert.chain[: alert.level] for uid in group}
            if alert.level < len(alert.chain):
                people = alert.chain[alert.level]
                alert.escalate_at = now + _ack_timeout(alert)
            else:
                people = [
                    str(uid)
                    for uid in TeamMembership.objects.filter(
                        team=alert.team, user__is_active=True
                    ).values_list("user_id", flat=True)
                    if str(uid) not in called
                ]
                alert.status = AlertStatus.EXHAUSTED
                alert.escalate_at = None
            alert.save(update_fields=["level", "escalate_at", "status", "updated_at"])
            if people:
                _alert_notify(alert, people, now=now)
            done += 1
    return done


def alert_digests_send(*, now: datetime | None = None) -> int:
    """Send held alerts as one digest per team once the team's window has room again."""
    now = now or timezone.now()
    window = now - timedelta(minutes=settings.NOTIFY_ALERT_FLOOD_WINDOW_MINUTES)
    sent = 0
    team_ids = set(
        TeamAlert.objects.filter(status=AlertStatus.DIGESTED, digest__isnull=True).values_list(
            "team_id", flat=True
        )
    )
    for team_id in team_ids:
        with transaction.atomic():
            from api.estate.models import Team

            team = Team.objects.get(pk=team_id)
            _lock_team(team)
            recent = (
                TeamAlert.objects.filter(team=team, created_at__gte=window)
                .exclude(status=AlertStatus.DIGESTED)
                .count()
            )
            if recent >= settings.NOTIFY_ALERT_FLOOD_LIMIT:
                continue
            held = list(
                TeamAlert.objects.select_for_update().filter(
                    team=team, status=AlertStatus.DIGESTED, digest__isnull=True
                )
            )
            if not held:
                continue
            events = sorted({a.event for a in held})
            digest = TeamAlert.objects.create(
                organisation_id=team.organisation_id,
                team=team,
                event="alert.digest",
                context={"count": len(held), "team": team.name, "events": events},
                critical=any(a.critical for a in held),
                chain=on_call_chain(team, at=now),
            )
            if digest.chain:
                digest.escalate_at = now + _ack_timeout(digest)
                digest.save(update_fields=["escalate_at"])
            TeamAlert.objects.filter(id__in=[a.pk for a in held]).update(digest=digest)
            if digest.chain:
                _alert_notify(digest, digest.chain[0], now=now)
            sent += 1
    return sent


@transaction.atomic
def on_call_shift_create(
    *, actor, team, user, starts_at: datetime, ends_at: datetime, position: int = 0
) -> OnCallShift:
    """Put a team member on call between two instants."""
    from api.estate.models import TeamMembership

    if ends_at <= starts_at:
        raise ServiceError("The shift must end after it starts.", field="ends_at")
    if ends_at - starts_at > timedelta(days=31):
        raise ServiceError("A shift lasts at most 31 days.", field="ends_at")
    if not TeamMembership.objects.filter(team=team, user=user).exists():
        raise ServiceError("This person is not a member of the team.", field="user")
    return OnCallShift.objects.create(
        team=team, user=user, starts_at=starts_at, ends_at=ends_at, position=position
    )


@transaction.atomic
def on_call_shift_delete(*, actor, shift: OnCallShift) -> None:
    """Remove a shift from the schedule."""
    shift.delete()


def drains_needed(count: int) -> int:
    """How many drain tasks to start for `count` deliveries."""
    return max(1, min(settings.NOTIFY_DRAIN_FANOUT, math.ceil(count / settings.NOTIFY_CLAIM_BATCH)))


# --- Broadcasts -------------------------------------------------------------------------------

BROADCAST_LANGUAGES = frozenset(code for code, _ in settings.LANGUAGES)
MESSAGE_REQUIRED_KINDS = frozenset({"emergency", "information"})


def _broadcast_target_check(*, actor, residence, building, entrance) -> None:
    from api.estate.selectors import residences_visible_to

    targets = [t for t in (residence, building, entrance) if t is not None]
    if len(targets) != 1:
        raise ServiceError(
            "Choose exactly one of a residence, a building or an entrance.", field="residence"
        )
    target = targets[0]
    residence_id = (
        target.pk
        if residence is not None
        else (target.residence_id if building is not None else target.building.residence_id)
    )
    if not residences_visible_to(actor).filter(pk=residence_id).exists():
        raise ServiceError("Not found.", code="not_found", status_code=404)


def _broadcast_validate(broadcast) -> None:
    if broadcast.starts_at and broadcast.ends_at and broadcast.ends_at <= broadcast.starts_at:
        raise ServiceError("The end must come after the start.", field="ends_at")
    if broadcast.kind in MESSAGE_REQUIRED_KINDS and not broadcast.message.strip():
        raise ServiceError("Write the message of this notice.", field="message")
    translations = broadcast.translations or {}
    if not isinstance(translations, dict):
        raise ServiceError("Translations are {language: text}.", field="translations")
    for language, text in translations.items():
        if language not in BROADCAST_LANGUAGES:
            raise ServiceError(f"Unknown language: {language}.", field="translations")
        if not isinstance(text, str) or len(text) > 1000:
            raise ServiceError(
                "Each translation is a text of at most 1000 characters.", field="translations"
            )


@transaction.atomic
def broadcast_create(
    *,
    actor,
    kind: str,
    residence=None,
    building=None,
    entrance=None,
    critical: bool = False,
    message: str = "",
    translations: dict | None = None,
    starts_at: datetime | None = None,
    ends_at: datetime | None = None,
):
    """Draft a notice to every household of a residence, building or entrance."""
    from .models import Broadcast

    _broadcast_target_check(actor=actor, residence=residence, building=building, entrance=entrance)
    broadcast = Broadcast(
        organisation_id=actor.organisation_id,
        kind=kind,
        residence=residence,
        building=building,
        entrance=entrance,
        critical=critical,
        message=message.strip(),
        translations=translations or {},
        starts_at=starts_at,
        ends_at=ends_at,
        created_by=actor,
    )
    _broadcast_validate(broadcast)
    broadcast.save()
    return broadcast


@transaction.atomic
def broadcast_update(*, actor, broadcast, data: dict):
    """Change a draft; a sent notice is history."""
    from .models import Broadcast, BroadcastStatus

    broadcast = Broadcast.objects.select_for_update().get(pk=broadcast.pk)
    if broadcast.status != BroadcastStatus.DRAFT:
        raise ServiceError("A sent notice cannot be changed.", code="already_sent", status_code=409)
    if {"residence", "building", "entrance"} & set(data):
        target = {k: data.get(k) for k in ("residence", "building", "entrance")}
        _broadcast_target_check(actor=actor, **target)
        broadcast.residence, broadcast.building, broadcast.entrance = (
            target["residence"],
            target["building"],
            target["entrance"],
        )
    for name in ("kind", "critical", "message", "translations", "starts_at", "ends_at"):
        if name in data:
            setattr(broadcast, name, data[name] if data[name] is not None else None)
    broadcast.message = (broadcast.message or "").strip()
    broadcast.translations = broadcast.translations or {}
    _broadcast_validate(broadcast)
    broadcast.save()
    return broadcast


@transaction.atomic
def broadcast_delete(*, actor, broadcast) -> None:
    """Throw a draft away."""
    from .models import BroadcastStatus

    if broadcast.status != BroadcastStatus.DRAFT:
        raise ServiceError("A sent notice cannot be deleted.", code="already_sent", status_code=409)
    broadcast.delete()


@transaction.atomic
def broadcast_send(*, actor, broadcast):
    """Send the notice: one notification per person of the target's households (and, when
    critical, their delegates), through each person's channels, in their language."""
    from .models import Broadcast, BroadcastStatus
    from .selectors import broadcast_audience, broadcast_context

    broadcast = (
        Broadcast.objects.select_for_update(of=("self",))
        .select_related("residence", "building__residence", "entrance__building__residence")
        .get(pk=broadcast.pk)
    )
    if broadcast.status != BroadcastStatus.DRAFT:
        raise ServiceError("This notice was already sent.", code="already_sent", status_code=409)
    now = timezone.now()
    audience = broadcast_audience(broadcast)
    broadcast.batch = uuid.uuid4()
    notify_many(
        recipients=list(audience),
        event=f"broadcast.{broadcast.kind}",
        context=broadcast_context(broadcast),
        critical=broadcast.critical,
        actor=actor,
        dwellings=audience,
        broadcast=broadcast,
        batch=broadcast.batch,
        now=now,
    )
    broadcast.status = BroadcastStatus.SENT
    broadcast.sent_at, broadcast.sent_by = now, actor
    broadcast.save(update_fields=["status", "sent_at", "sent_by", "batch", "updated_at"])
    return broadcast
