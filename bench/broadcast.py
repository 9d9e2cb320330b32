"""A crisis broadcast to 10,000 tenants: queued in < 5 s, delivered to the file backends in
< 60 s, with 0 duplicates per person and channel; then the same with a worker killed halfway.

Builds a residence of 10,000 households in its own database (a mix of phone apps, browsers,
SMS-only tenants and a few e-mail readers, in French, easy-to-read French, English and
Arabic), starts a real `palier worker` and `palier beat` (the sweeper), sends a critical
water-cut broadcast and counts what reaches push.jsonl, webpush.jsonl, sms.jsonl and email/.
The second run sends another broadcast, `kill -9`s the worker (its whole process group) once
half the messages are out, restarts it, and counts again.

Run: .venv/bin/python bench/broadcast.py [--tenants 10000] [--concurrency 4]
     BENCH_DATABASE_URL  (default postgres://postgres@127.0.0.1:5432/palier_bench_broadcast)
     BENCH_BROKER_URL    (default redis://127.0.0.1:6379/13, purged at start)
     BENCH_REDIS_URL     (default redis://127.0.0.1:6379/14, the cache: SMS budget counters)
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from harness import ensure_database as create_database

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DATABASE_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/palier_bench_broadcast"
)
BROKER_URL = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/13")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
VAR_DIR = ROOT / "var" / "bench" / "broadcast"

# The worker, the beat and this process share these settings.
BENCH_ENV = {
    "DATABASE_URL": DATABASE_URL,
    "CELERY_BROKER_URL": BROKER_URL,
    "REDIS_URL": REDIS_URL,
    "PALIER_VAR_DIR": str(VAR_DIR),
    "PUSH_BACKEND": "file",
    "SMS_BACKEND": "api.accounts.sms.FileSMSBackend",
    "EMAIL_URL": "filemail://",
    "SMS_DAILY_BUDGET": "10000000",
    "LOG_LEVEL": "WARNING",
    # A dead worker's claims are recovered after 10 s; the sweeper runs every 2 s and picks up
    # what has waited 3 s.
    "NOTIFY_CLAIM_LEASE_SECONDS": "10",
    "NOTIFY_SWEEP_SECONDS": "2",
    "NOTIFY_SWEEP_GRACE_SECONDS": "3",
    "NOTIFY_CLAIM_BATCH": "50",
    "CELERY_BEAT_SCHEDULE_FILENAME": str(VAR_DIR / "celerybeat-schedule"),
}
os.environ.update(BENCH_ENV)
os.environ["OUTBOX_DIR"] = str(VAR_DIR / "outbox-setup")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "api.config.settings")

ORGANISATION_SLUG = "bench-broadcast"
BUILDINGS, ENTRANCES_PER_BUILDING = 20, 5
LANGUAGES = ["fr"] * 7 + ["fr-falc", "en", "ar"]


def ensure_database() -> None:
    """Create the bench database if it does not exist, and migrate it."""
    create_database(DATABASE_URL)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def seed(tenants: int):
    """One residence of `tenants` households; returns (agency staff, residence)."""
    import uuid

    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password
    from django.utils import timezone

    from api.estate.models import (
        Agency,
        AgencyMembership,
        Building,
        Dwelling,
        Entrance,
        HouseholdMember,
        Lease,
        Organisation,
        Residence,
    )
    from api.notifications.models import NotificationPreference, PushDevice

    User = get_user_model()
    unusable = make_password(None)
    organisation, _ = Organisation.objects.get_or_create(
        slug=ORGANISATION_SLUG, defaults={"name": "Habitat Bench"}
    )
    agency, _ = Agency.objects.get_or_create(organisation=organisation, name="Agence Nord")
    staff, _ = User.objects.get_or_create(
        email="agent@bench.palier.fr",
        defaults={"organisation": organisation, "role": "agency_staff", "password": "!"},
    )
    AgencyMembership.objects.get_or_create(agency=agency, user=staff)
    residence, _ = Residence.objects.get_or_create(
        organisation=organisation,
        reference="BENCH",
        defaults={
            "agency": agency,
            "name": "Les Tilleuls",
            "postcode": "93200",
            "city": "Saint-Denis",
        },
    )
    existing = Dwelling.objects.filter(entrance__building__residence=residence).count()
    if existing == tenants:
        return staff, residence
    if existing:
        raise SystemExit(
            f"The bench database has {existing} households, not {tenants}: drop it first "
            f"(dropdb {DATABASE_URL.rsplit('/', 1)[-1]})."
        )
    today = timezone.localdate()
    per_entrance = -(-tenants // (BUILDINGS * ENTRANCES_PER_BUILDING))
    users, dwellings, leases, members, devices, preferences = [], [], [], [], [], []
    n = 0
    for b in range(BUILDINGS):
        building = Building.objects.create(
            organisation=organisation, residence=residence, reference=f"B{b + 1:02d}"
        )
        for e in range(ENTRANCES_PER_BUILDING):
            entrance = Entrance.objects.create(
                organisation=organisation,
                building=building,
                reference=f"E{e + 1}",
                label=f"Allée {chr(65 + e)}",
            )
            for d in range(per_entrance):
                if n >= tenants:
                    break
                dwelling = Dwelling(
                    id=uuid.uuid4(),
                    organisation=organisation,
                    entrance=entrance,
                    reference=f"LGT{n:06d}",
                    floor=d // 8,
                    door=str(d % 8 + 1),
                )
                user = User(
                    id=uuid.uuid4(),
                    organisation=organisation,
                    role="tenant",
                    phone=f"+3361{n:07d}",
                    first_name="Locataire",
                    last_name=f"{n:05d}",
                    language=LANGUAGES[n % len(LANGUAGES)],
                    password=unusable,
                    email=f"locataire{n}@bench.palier.fr" if n % 20 == 7 else None,
                )
                lease = Lease(
                    id=uuid.uuid4(),
                    organisation=organisation,
                    dwelling=dwelling,
                    reference=f"BAIL{n:06d}",
                    start_date=today.replace(year=today.year - 2),
                )
                dwellings.append(dwelling)
                users.append(user)
                leases.append(lease)
                members.append(HouseholdMember(lease=lease, person=user, relation="holder"))
                # 55 % have the phone app, 10 % a browser subscription, 35 % neither (SMS).
                share = n % 20
                if share < 11:
                    token = f"bench-fcm-{n}"
                    devices.append(
                        PushDevice(
                            user=user,
                            kind="fcm",
                            token=token,
                            token_hash=PushDevice.hash_token(token),
                        )
                    )
                elif share < 13:
                    token = f"https://push.example.net/bench/{n}"
                    devices.append(
                        PushDevice(
                            user=user,
                            kind="webpush",
                            token=token,
                            token_hash=PushDevice.hash_token(token),
                            p256dh="bench-key",
                            auth="bench-auth",
                        )
                    )
                if user.email:
                    preferences.append(NotificationPreference(user=user, email_enabled=True))
                n += 1
    for model, rows in (
        (Dwelling, dwellings),
        (User, users),
        (Lease, leases),
        (HouseholdMember, members),
        (PushDevice, devices),
        (NotificationPreference, preferences),
    ):
        model.objects.bulk_create(rows, batch_size=2000)
    return staff, residence


def purge_broker() -> None:
    from workers.celery_app import app

    app.control.purge()


def start(kind: str, log: Path, outbox: Path, concurrency: int) -> subprocess.Popen:
    """A real `palier worker` or `palier beat`, in its own process group."""
    env = {**os.environ, **BENCH_ENV, "OUTBOX_DIR": str(outbox)}
    args = [str(ROOT / ".venv" / "bin" / "palier"), kind]
    if kind == "worker":
        args += [
            "--concurrency",
            str(concurrency),
            "--without-gossip",
            "--without-mingle",
            "-Q",
            "celery",
            "--hostname",
            f"bench-{time.monotonic_ns()}@%h",
        ]
    handle = log.open("ab")
    return subprocess.Popen(
        args, cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
    )


def wait_ready(log: Path, since: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if b" ready." in log.read_bytes()[since:]:
            return
        time.sleep(0.2)
    raise SystemExit(f"The worker did not start; see {log}.")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def send_broadcast(staff, residence, label: str):
    """Draft and send a critical water cut to the whole residence; seconds until committed."""
    import datetime as dt

    from django.utils import timezone

    from api.notifications.services import broadcast_create, broadcast_send

    starts = (timezone.now() + dt.timedelta(days=1)).replace(hour=8, minute=0, second=0)
    broadcast = broadcast_create(
        actor=staff,
        kind="water_cut",
        residence=residence,
        critical=True,
        starts_at=starts,
        ends_at=starts + dt.timedelta(hours=4),
        message=f"Remplissez des bouteilles d'eau ({label}).",
    )
    started = time.monotonic()
    broadcast = broadcast_send(actor=staff, broadcast=broadcast)
    return broadcast, time.monotonic() - started


def due_counts(broadcast) -> tuple[int, int]:
    """(deliveries due now, those done: sent or failed) of a broadcast."""
    from django.db.models import Count, Q

    from api.notifications.models import Delivery

    row = Delivery.objects.filter(
        notification__broadcast=broadcast, only_if_unread=False
    ).aggregate(due=Count("id"), done=Count("id", filter=Q(status__in=["sent", "failed"])))
    return row["due"], row["done"]


def wait_delivered(broadcast, started: float, *, timeout: float, on_progress=None) -> float:
    while True:
        due, done = due_counts(broadcast)
        if on_progress is not None:
            on_progress(due, done)
        if done >= due:
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            return float("inf")
        time.sleep(0.25)


def count_outbox(outbox: Path, broadcast) -> dict:
    """Per channel: messages written, people reached, duplicates per person, people missing."""
    from api.notifications.models import Delivery

    rows = Delivery.objects.filter(notification__broadcast=broadcast, only_if_unread=False)
    person_of = {
        f"palier-{d}": (str(r), c)
        for d, r, c in rows.values_list("id", "notification__recipient_id", "channel")
    }
    expected = Counter(channel for _, channel in person_of.values())
    written: Counter = Counter()
    for name in ("push.jsonl", "webpush.jsonl", "sms.jsonl"):
        path = outbox / name
        if not path.exists():
            continue
        for line in path.read_text().splitlines():
            record = json.loads(line)
            key = record.get("idempotency_key") or record.get("purpose", "").removeprefix(
                "notification:"
            )
            if key in person_of:
                written[person_of[key]] += 1
    for path in (outbox / "email").glob("*.eml"):
        if path.stem in person_of:
            written[person_of[path.stem]] += 1
    result = {}
    for channel in sorted(expected):
        people = [p for p in person_of.values() if p[1] == channel]
        result[channel] = {
            "expected": expected[channel],
            "written": sum(written[p] for p in people),
            "duplicates": sum(max(0, written[p] - 1) for p in people),
            "missing": sum(1 for p in people if written[p] == 0),
        }
    return result


def report(title: str, queued: float, delivered: float, counts: dict, extra: str = "") -> bool:
    duplicates = sum(c["duplicates"] for c in counts.values())
    missing = sum(c["missing"] for c in counts.values())
    total = sum(c["expected"] for c in counts.values())
    print(f"\n== {title}")
    print(f"queued (committed) in {queued:.2f} s   goal < 5 s   {'OK' if queued < 5 else 'MISSED'}")
    print(f"delivered in {delivered:.2f} s   goal < 60 s   {'OK' if delivered < 60 else 'MISSED'}")
    for channel, c in counts.items():
        print(
            f"  {channel:8} expected {c['expected']:6}  written {c['written']:6}  "
            f"duplicates {c['duplicates']}  missing {c['missing']}"
        )
    print(
        f"  total {total} deliveries, {duplicates} duplicates per person and channel, "
        f"{missing} missing {'OK' if duplicates == 0 and missing == 0 else 'FAILED'}"
    )
    if extra:
        print(extra)
    return queued < 5 and delivered < 60 and duplicates == 0 and missing == 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tenants", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()

    VAR_DIR.mkdir(parents=True, exist_ok=True)
    setup_started = time.monotonic()
    ensure_database()
    staff, residence = seed(args.tenants)
    from api.notifications.models import Delivery

    # Reminders and retries left by an earlier run would compete with this one.
    Delivery.objects.filter(status__in=["queued", "sending"]).update(status="cancelled")
    purge_broker()
    print(
        f"setup: {args.tenants} households in {time.monotonic() - setup_started:.1f} s "
        f"(database {DATABASE_URL.rsplit('/', 1)[-1]}, worker concurrency {args.concurrency})"
    )

    stamp = time.strftime("%Y%m%d-%H%M%S")
    log = VAR_DIR / f"processes-{stamp}.log"
    log.touch()
    ok = True

    # Run 1: workers up, broadcast, count.
    outbox = VAR_DIR / f"outbox-{stamp}-1"
    since = log.stat().st_size
    worker = start("worker", log, outbox, args.concurrency)
    beat = start("beat", log, outbox, 1)
    try:
        wait_ready(log, since)
        broadcast, queued = send_broadcast(staff, residence, "run 1")
        started = time.monotonic()
        delivered = queued + wait_delivered(broadcast, started, timeout=300)
        ok &= report("crisis broadcast", queued, delivered, count_outbox(outbox, broadcast))
    finally:
        stop(worker)
        stop(beat)

    # Run 2: a worker killed with SIGKILL halfway, then restarted.
    outbox = VAR_DIR / f"outbox-{stamp}-2"
    since = log.stat().st_size
    worker = start("worker", log, outbox, args.concurrency)
    beat = start("beat", log, outbox, 1)
    killed = {}
    try:
        wait_ready(log, since)
        broadcast, queued = send_broadcast(staff, residence, "run 2")
        started = time.monotonic()

        def kill_halfway(due: int, done: int) -> None:
            nonlocal worker
            if not killed and done >= due // 2:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait()
                killed.update(at=time.monotonic() - started, done=done, due=due)
                restart_from = log.stat().st_size
                worker = start("worker", log, outbox, args.concurrency)
                wait_ready(log, restart_from)
                killed["restarted_after"] = time.monotonic() - started - killed["at"]

        delivered = queued + wait_delivered(
            broadcast, started, timeout=300, on_progress=kill_halfway
        )
        from api.notifications.models import Delivery

        rows = Delivery.objects.filter(notification__broadcast=broadcast, only_if_unread=False)
        recovered = rows.filter(last_error="recorded after a worker stopped").count()
        reclaimed = rows.filter(attempts__gte=2).count()
        extra = (
            f"  worker killed (kill -9 of its process group) at {killed.get('at', 0):.2f} s with "
            f"{killed.get('done', 0)}/{killed.get('due', 0)} done; restarted in "
            f"{killed.get('restarted_after', 0):.2f} s; {reclaimed} deliveries claimed twice, "
            f"{recovered} found already written by the dead worker and recorded without resending"
        )
        ok &= report(
            "crisis broadcast, worker killed halfway",
            queued,
            delivered,
            count_outbox(outbox, broadcast),
            extra,
        )
    finally:
        stop(worker)
        stop(beat)
    print(f"\nprocess logs: {log}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
