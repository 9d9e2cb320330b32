"""The outbox: notify() writes in the caller's transaction; workers claim, send and recover."""

import datetime as dt
import json

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from api.notifications import outbox
from api.notifications.models import Delivery, HouseholdReach, Notification
from api.notifications.services import notifications_mark_read, notify
from tests.factories import UserFactory, place_factory
from tests.factories.notifications import (
    NotificationPreferenceFactory,
    PushDeviceFactory,
    WebPushDeviceFactory,
)

pytestmark = pytest.mark.django_db


def lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def channels_of(notification):
    return sorted(notification.deliveries.values_list("channel", flat=True))


def test_a_tenant_without_the_app_gets_an_sms_and_one_with_it_a_push():
    without_app = UserFactory()
    with_app = UserFactory()
    PushDeviceFactory(user=with_app)
    a, b = notify(
        recipients=[without_app, with_app],
        event="ticket.created",
        context={"reference": "T-12", "category": "Fuite"},
    )
    assert channels_of(a) == ["sms"]
    assert channels_of(b) == ["push"]
    assert a.title == "Demande T-12 enregistrée"


def test_notify_is_written_in_the_callers_transaction_and_rolled_back_with_it():
    user = UserFactory()
    with pytest.raises(RuntimeError), transaction.atomic():
        notify(recipients=[user], event="ticket.created", context={"reference": "T-1"})
        assert Notification.objects.filter(recipient=user).count() == 1
        raise RuntimeError("the caller fails")
    assert not Notification.objects.filter(recipient=user).exists()
    assert not Delivery.objects.exists()


def test_delivery_is_handed_to_workers_only_after_commit(django_capture_on_commit_callbacks):
    user = UserFactory()
    with django_capture_on_commit_callbacks() as callbacks:
        notify(recipients=[user], event="ticket.created", context={"reference": "T-1"})
    assert len(callbacks) == 1


def test_dedupe_key_makes_a_repeat_a_no_op():
    user = UserFactory()
    first = notify(recipients=[user], event="incident.started", context={}, dedupe_key="inc-1")
    again = notify(recipients=[user], event="incident.started", context={}, dedupe_key="inc-1")
    assert len(first) == 1
    assert again == []
    assert Notification.objects.filter(recipient=user).count() == 1


def test_one_delivery_per_notification_and_channel_is_enforced_by_the_database():
    user = UserFactory()
    (notification,) = notify(recipients=[user], event="x", context={})
    with pytest.raises(IntegrityError), transaction.atomic():
        Delivery.objects.create(notification=notification, channel="sms", not_before=timezone.now())


def test_unknown_event_uses_the_generic_words_in_the_persons_language():
    arabic = UserFactory(language="ar")
    (notification,) = notify(recipients=[arabic], event="something.new", context={})
    assert notification.language == "ar"
    assert notification.title == "رسالة جديدة"


def test_workers_send_each_delivery_once_to_the_file_backends(outbox_dir):
    sms_user = UserFactory(phone="+33612345678")
    push_user = UserFactory()
    PushDeviceFactory(user=push_user)
    web_user = UserFactory()
    WebPushDeviceFactory(user=web_user)
    staff = UserFactory(role="agency_staff", email="agent@example.org", phone=None)
    notify(
        recipients=[sms_user, push_user, web_user, staff],
        event="ticket.created",
        context={"reference": "T-7", "category": "Chauffage", "ticket_id": "abc"},
    )
    totals = outbox.drain()
    assert totals == {"sent": 4}
    assert outbox.drain() == {}
    (sms,) = lines(outbox_dir / "sms.jsonl")
    assert sms["to"] == "+33612345678"
    assert sms["body"].startswith("Palier : demande T-7")
    (push,) = lines(outbox_dir / "push.jsonl")
    fcm = push["messages"][0]["message"]
    assert fcm["notification"]["title"] == "Demande T-7 enregistrée"
    assert fcm["data"]["link"] == "palier://tickets/abc"
    (web,) = lines(outbox_dir / "webpush.jsonl")
    assert web["payload"]["title"] == "Demande T-7 enregistrée"
    (email,) = (outbox_dir / "email").glob("*.eml")
    assert "agent@example.org" in email.read_text()
    assert set(Delivery.objects.values_list("status", flat=True)) == {"sent"}


def test_two_workers_never_claim_the_same_delivery():
    users = UserFactory.create_batch(30)
    notify(recipients=users, event="x", context={})
    first = outbox.claim(limit=20)
    second = outbox.claim(limit=20)
    assert len(first) == 20
    assert len(second) == 10
    assert not {d.id for d in first} & {d.id for d in second}


def test_a_worker_that_died_mid_send_is_recovered_without_a_second_copy(outbox_dir, settings):
    users = UserFactory.create_batch(3)
    notify(recipients=users, event="x", context={})
    claimed = outbox.claim(limit=10)
    # The worker sent the first message, then died before recording anything.
    from api.notifications.channels import get_backend

    get_backend("sms").send(outbox.outgoing(claimed[0], {}))
    assert outbox.recover_expired() == {"recovered_sent": 0, "requeued": 0, "failed": 0}
    Delivery.objects.update(claimed_until=timezone.now() - dt.timedelta(seconds=1))
    counts = outbox.recover_expired()
    assert counts == {"recovered_sent": 1, "requeued": 2, "failed": 0}
    outbox.drain()
    assert len(lines(outbox_dir / "sms.jsonl")) == 3
    assert set(Delivery.objects.values_list("status", flat=True)) == {"sent"}


def test_temporary_failures_are_retried_with_backoff_then_given_up(settings, monkeypatch):
    from api.notifications import channels

    def refuse(self, message):
        raise channels.TemporaryFailure("provider unavailable")

    monkeypatch.setattr(channels.SMSBackend, "send", refuse)
    (notification,) = notify(recipients=[UserFactory()], event="x", context={})
    outbox.drain()
    delivery = notification.deliveries.get()
    assert delivery.status == "queued"
    assert delivery.attempts == 1
    delay = (delivery.not_before - timezone.now()).total_seconds()
    assert (
        0.7 * settings.NOTIFY_RETRY_BASE_SECONDS < delay <= 1.2 * settings.NOTIFY_RETRY_BASE_SECONDS
    )
    Delivery.objects.update(attempts=settings.NOTIFY_MAX_ATTEMPTS - 1, not_before=timezone.now())
    outbox.drain()
    delivery.refresh_from_db()
    assert delivery.status == "failed"
    assert delivery.last_error == "provider unavailable"


def test_a_dead_push_token_is_disabled_and_the_person_gets_an_sms(monkeypatch, outbox_dir):
    from api.notifications import channels

    def dead(self, message):
        raise channels.PermanentFailure("token gone", dead_devices=[d.id for d in message.devices])

    monkeypatch.setattr(channels.FilePushBackend, "send", dead)
    user = UserFactory()
    device = PushDeviceFactory(user=user)
    (notification,) = notify(recipients=[user], event="x", context={})
    outbox.drain()
    device.refresh_from_db()
    assert device.disabled_at is not None
    assert dict(notification.deliveries.values_list("channel", "status")) == {
        "push": "failed",
        "sms": "sent",
    }


def test_quiet_hours_delay_ordinary_notices_but_not_critical_ones():
    user = UserFactory()
    now = timezone.localtime()
    NotificationPreferenceFactory(
        user=user,
        quiet_start=(now - dt.timedelta(hours=1)).time(),
        quiet_end=(now + dt.timedelta(hours=1)).time(),
    )
    (ordinary,) = notify(recipients=[user], event="x", context={})
    (critical,) = notify(recipients=[user], event="x", context={}, critical=True)
    assert ordinary.deliveries.get().not_before > timezone.now() + dt.timedelta(minutes=55)
    assert critical.deliveries.get().not_before <= timezone.now()


def test_critical_notice_escalates_to_sms_unless_read(settings):
    place = place_factory()
    PushDeviceFactory(user=place.tenant)
    (notice,) = notify(
        recipients=[place.tenant], event="incident.started", context={}, critical=True
    )
    sms = notice.deliveries.get(channel="sms")
    assert sms.only_if_unread
    assert sms.not_before > timezone.now() + dt.timedelta(
        minutes=settings.NOTIFY_CRITICAL_SMS_AFTER_MINUTES - 1
    )
    reach = HouseholdReach.objects.get(batch=notice.batch)
    assert reach.dwelling == place.dwelling
    notifications_mark_read(user=place.tenant, notification_ids=[notice.id])
    sms.refresh_from_db()
    reach.refresh_from_db()
    assert sms.status == "cancelled"
    assert reach.reached_at is not None


def test_claims_use_skip_locked_on_postgresql(django_assert_max_num_queries):
    assert connection.vendor == "postgresql"
    notify(recipients=UserFactory.create_batch(5), event="x", context={})
    with django_assert_max_num_queries(5) as captured:
        claimed = outbox.claim()
    assert len(claimed) == 5
    assert any("FOR UPDATE SKIP LOCKED" in q["sql"] for q in captured.captured_queries)


@pytest.fixture
def broker():
    """The machine's Redis as the task broker, emptied before and after."""
    from workers.celery_app import app

    app.control.purge()
    with app.connection_for_write() as connection:
        yield connection.default_channel.client
    app.control.purge()


def test_after_commit_drain_tasks_are_queued_on_the_real_broker(
    broker, django_capture_on_commit_callbacks, settings
):
    with django_capture_on_commit_callbacks(execute=True):
        notify(recipients=UserFactory.create_batch(3), event="x", context={})
    assert broker.llen("celery") == 1
    outbox.kick(10 * settings.NOTIFY_CLAIM_BATCH)
    assert broker.llen("celery") == 1 + min(10, settings.NOTIFY_DRAIN_FANOUT)


def test_nothing_is_lost_when_the_broker_is_down_at_commit(
    monkeypatch, django_capture_on_commit_callbacks, settings, caplog, outbox_dir
):
    from api.notifications import tasks

    def broker_down(*args, **kwargs):
        raise ConnectionError("Redis is down")

    monkeypatch.setattr(tasks.drain, "apply_async", broker_down)
    with django_capture_on_commit_callbacks(execute=True):
        (notification,) = notify(recipients=[UserFactory()], event="x", context={})
    assert "the sweeper will pick it up" in caplog.text
    queued = []
    monkeypatch.setattr(tasks.drain, "apply_async", lambda **kwargs: queued.append(kwargs))
    assert outbox.sweep()["waiting"] == 0  # still within the grace period
    later = timezone.now() + dt.timedelta(seconds=settings.NOTIFY_SWEEP_GRACE_SECONDS + 1)
    assert outbox.sweep(now=later)["waiting"] == 1
    assert len(queued) == 1
    outbox.drain()
    assert notification.deliveries.get().status == "sent"
