"""Retention: delete or anonymise what has been kept long enough, organisation by organisation.

Each rule has a default period and the source of that period; an organisation may override any
per-organisation rule (`Organisation.retention`, {rule key: days}). `retention_run` applies every
rule, reports what it did (structured log line per rule and organisation), and is idempotent: a
rule only selects rows that still hold what it removes, so a second run finds nothing. With
`dry_run=True` it counts and changes nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from api.accounts.models import LoginCode, PersonalDataAccess, Vulnerability
from api.accounts.services import OTP_WINDOW, login_codes_purge, personal_data_access_purge
from api.core.exceptions import ServiceError
from api.core.roles import Role
from api.estate.models import Lease, Organisation, TelemetryConsent
from api.notifications.models import HouseholdReach, Notification, PushDevice, TeamAlert
from api.telemetry import storage
from api.telemetry.models import Device, Quarantine, Reading, ReadingHour
from api.telemetry.services import telemetry_purge
from api.tickets.models import Appointment, InboundSms, Ticket, TicketEvent, TicketPhoto

logger = logging.getLogger(__name__)
User = get_user_model()

ERASED_EMAIL_DOMAIN = "erased.invalid"
MIN_DAYS = 1
MAX_DAYS = 20 * 365
OVERRIDE_ROLES = frozenset({Role.MANAGER, Role.ADMIN})

CNIL_SOCIAL = (
    "CNIL, pack de conformité « logement social » (fiche n° 3, durées de conservation et archivage)"
)
CNIL_RENTAL = (
    "CNIL, référentiel « gestion locative » du 6 mai 2021 (written for private landlords; "
    "social landlords follow it as guidance)"
)
CIVIL_2224 = "Code civil, art. 2224 (personal actions prescribe in 5 years)"
LOI_1989_7_1 = "Loi n° 89-462 du 6 juillet 1989, art. 7-1 (rent claims prescribe in 3 years)"
CNIL_LOGS = "CNIL, recommandation sur la journalisation (2021): logs kept 6 months to 1 year"


@dataclass(frozen=True)
class Rule:
    """One retention rule: what goes after how long, and why that long."""

    key: str
    default_days: int
    what: str
    action: str
    source: str
    per_organisation: bool = True


RULES: dict[str, Rule] = {
    rule.key: rule
    for rule in (
        Rule(
            "former_household_contact",
            3 * 365,
            "Phone, e-mail, push devices and login of people whose every lease ended this long "
            "ago; the account is closed",
            "anonymised",
            f"{LOI_1989_7_1}; {CNIL_SOCIAL}",
        ),
        Rule(
            "former_household_identity",
            5 * 365,
            "Names of people whose every lease ended this long ago (contact data too)",
            "anonymised",
            f"{CIVIL_2224}; {CNIL_SOCIAL}",
        ),
        Rule(
            "former_household_vulnerability",
            30,
            "Vulnerabilities declared by people whose every lease ended this long ago",
            "deleted",
            "RGPD art. 9 and 5.1.c: health-related data only while it serves the household's "
            "priority; 30 days cover the move-out",
        ),
        Rule(
            "closed_ticket_free_text",
            5 * 365,
            "Free text of requests closed this long ago: description, answers, rating comment, "
            "partner contact, position, staff notes, appointment notes, SMS replies; photos "
            "deleted",
            "anonymised",
            f"{CIVIL_2224} (liability for repairs); {CNIL_RENTAL}",
        ),
        Rule(
            "notifications",
            365,
            "Notifications sent, their deliveries, team alerts and door-knocking lists",
            "deleted",
            "No legal period; one year keeps proof that a household was told of an outage or "
            "an appointment through the following heating season",
        ),
        Rule(
            "access_log",
            365,
            "Log of staff reading a person's data",
            "deleted",
            CNIL_LOGS,
            per_organisation=False,
        ),
        Rule(
            "telemetry_consent_history",
            5 * 365,
            "Consent history of leases ended this long ago",
            "deleted",
            f"RGPD art. 7.1 (the controller must be able to show consent); {CIVIL_2224}",
        ),
        Rule(
            "previous_tenant_readings",
            90,
            "Readings and hourly averages of a home taken during a lease that ended this long ago",
            "deleted",
            "Data minimisation (RGPD art. 5.1.e): in-home readings are about the household; "
            "90 days leave time to settle the exit inventory and heating disputes",
        ),
        Rule(
            "inbound_sms",
            365,
            "Sender number and text of SMS replies received",
            "anonymised",
            CNIL_SOCIAL,
            per_organisation=False,
        ),
        Rule(
            "login_codes",
            1,
            "One-time login codes (hashed) once their 24-hour window is over",
            "deleted",
            "Security only; nothing to keep once a code cannot be used",
            per_organisation=False,
        ),
        Rule(
            "telemetry_raw",
            settings.TELEMETRY_RAW_RETENTION_DAYS,
            "Raw readings of every unit (TELEMETRY_RAW_RETENTION_DAYS; whole days dropped)",
            "deleted",
            "Fine readings are only needed to diagnose a fault; see docs/telemetry-storage.md",
            per_organisation=False,
        ),
        Rule(
            "telemetry_aggregates",
            settings.TELEMETRY_AGGREGATE_RETENTION_DAYS,
            "Hourly averages of every unit (TELEMETRY_AGGREGATE_RETENTION_DAYS)",
            "deleted",
            "Two heating seasons, to compare a unit with itself year on year",
            per_organisation=False,
        ),
        Rule(
            "telemetry_quarantine",
            settings.TELEMETRY_QUARANTINE_RETENTION_DAYS,
            "Refused device messages (TELEMETRY_QUARANTINE_RETENTION_DAYS; counters kept)",
            "deleted",
            "Operations only",
            per_organisation=False,
        ),
    )
}


# --- Periods -------------------------------------------------------------------------------


def retention_periods(organisation: Organisation | None) -> dict[str, int]:
    """Days each rule keeps data for, with the organisation's overrides applied."""
    overrides = (organisation.retention or {}) if organisation is not None else {}
    periods = {}
    for key, rule in RULES.items():
        value = overrides.get(key) if rule.per_organisation else None
        periods[key] = (
            value
            if isinstance(value, int) and MIN_DAYS <= value <= MAX_DAYS
            else (rule.default_days)
        )
    return periods


@transaction.atomic
def retention_overrides_update(
    *, actor, organisation: Organisation, overrides: dict[str, int | None]
) -> Organisation:
    """Set (or, with None, reset to the default) an organisation's retention periods in days."""
    if actor.role not in OVERRIDE_ROLES or actor.organisation_id != organisation.pk:
        raise ServiceError("Only a manager sets retention periods.", code="permission_denied")
    current = dict(organisation.retention or {})
    for key, days in overrides.items():
        rule = RULES.get(key)
        if rule is None or not rule.per_organisation:
            raise ServiceError("Not a rule an organisation may set.", code="invalid", field=key)
        if days is None:
            current.pop(key, None)
            continue
        if isinstance(days, bool) or not isinstance(days, int) or not MIN_DAYS <= days <= MAX_DAYS:
            raise ServiceError(
                f"A whole number of days from {MIN_DAYS} to {MAX_DAYS}.", code="invalid", field=key
            )
        current[key] = days
    organisation.retention = current
    organisation.save(update_fields=["retention", "updated_at"])
    logger.info(
        "retention periods changed",
        extra={"organisation": str(organisation.pk), "actor": str(actor.pk), "periods": current},
    )
    return organisation


# --- The run -------------------------------------------------------------------------------


@dataclass
class RetentionReport:
    """What a retention run did (or, dry, would do): one line per rule and organisation."""

    dry_run: bool
    started_at: datetime
    lines: list[dict] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(line["count"] for line in self.lines)

    def add(self, *, rule: Rule, organisation: Organisation | None, days: int, count: int) -> None:
        line = {
            "rule": rule.key,
            "organisation": organisation.slug if organisation is not None else "",
            "days": days,
            "action": rule.action,
            "count": count,
        }
        self.lines.append(line)
        logger.info(
            "retention %s: %s %s row(s)%s",
            rule.key,
            "would have" if self.dry_run else "",
            count,
            f" of {line['organisation']}" if organisation is not None else "",
            extra={"retention": {**line, "dry_run": self.dry_run}},
        )


def _day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def _former_tenants(organisation: Organisation, before: date):
    """Tenants with at least one lease, every one of them ended before `before`."""
    return (
        User.objects.filter(
            organisation=organisation,
            role=Role.TENANT,
            household_memberships__isnull=False,
        )
        .exclude(household_memberships__lease__end_date__isnull=True)
        .exclude(household_memberships__lease__end_date__gte=before)
        .distinct()
    )


def _has_contact_q() -> Q:
    return Q(phone__isnull=False) | (
        Q(email__isnull=False) & ~Q(email__endswith=f"@{ERASED_EMAIL_DOMAIN}")
    )


def _erase_contact(users) -> None:
    for user in users:
        user.phone = None
        user.email = f"{user.pk.hex}@{ERASED_EMAIL_DOMAIN}"
        user.is_active = False
        user.set_unusable_password()
        user.save(update_fields=["phone", "email", "is_active", "password", "updated_at"])
    PushDevice.objects.filter(user__in=users).delete()
    LoginCode.objects.filter(user__in=users).delete()


def _former_household_contact(organisation, *, today, days, now, dry_run) -> int:
    users = list(
        _former_tenants(organisation, today - timedelta(days=days)).filter(_has_contact_q())
    )
    if not dry_run:
        _erase_contact(users)
    return len(users)


def _former_household_identity(organisation, *, today, days, now, dry_run) -> int:
    users = list(
        _former_tenants(organisation, today - timedelta(days=days)).filter(
            ~Q(first_name="") | ~Q(last_name="") | _has_contact_q()
        )
    )
    if not dry_run:
        _erase_contact([user for user in users if user.phone or not _erased(user)])
        User.objects.filter(pk__in=[user.pk for user in users]).update(first_name="", last_name="")
    return len(users)


def _erased(user) -> bool:
    return bool(user.email) and user.email.endswith(f"@{ERASED_EMAIL_DOMAIN}")


def _former_household_vulnerability(organisation, *, today, days, now, dry_run) -> int:
    queryset = Vulnerability.objects.filter(
        person__in=_former_tenants(organisation, today - timedelta(days=days)).values("pk")
    )
    return queryset.count() if dry_run else queryset.delete()[0]


def _closed_ticket_free_text(organisation, *, today, days, now, dry_run) -> int:
    cutoff = now - timedelta(days=days)
    closed = Ticket.objects.filter(organisation=organisation, closed_at__lt=cutoff)
    closed_ids = closed.values("id")
    ids = set(
        closed.filter(
            Q(description__gt="")
            | Q(rating_comment__gt="")
            | ~Q(answers={})
            | ~Q(external_contact={})
            | Q(latitude__isnull=False)
            | Q(longitude__isnull=False)
        ).values_list("id", flat=True)
    )
    ids.update(
        TicketPhoto.objects.filter(ticket__in=closed_ids).values_list("ticket_id", flat=True)
    )
    ids.update(
        TicketEvent.objects.filter(ticket__in=closed_ids, note__gt="").values_list(
            "ticket_id", flat=True
        )
    )
    ids.update(
        Appointment.objects.filter(ticket__in=closed_ids, note__gt="").values_list(
            "ticket_id", flat=True
        )
    )
    ids.update(
        InboundSms.objects.filter(ticket__in=closed_ids)
        .filter(Q(body__gt="") | Q(sender__gt=""))
        .values_list("ticket_id", flat=True)
    )
    if dry_run or not ids:
        return len(ids)
    Ticket.objects.filter(id__in=ids).update(
        description="",
        rating_comment="",
        answers={},
        external_contact={},
        latitude=None,
        longitude=None,
        version=F("version") + 1,
        updated_at=now,
    )
    TicketEvent.objects.filter(ticket_id__in=ids).exclude(note="").update(note="")
    Appointment.objects.filter(ticket_id__in=ids).exclude(note="").update(note="")
    InboundSms.objects.filter(ticket_id__in=ids).update(body="", sender="")
    photos = list(TicketPhoto.objects.filter(ticket_id__in=ids))
    files = [(p.image.storage, p.image.name) for p in photos if p.image] + [
        (p.thumbnail.storage, p.thumbnail.name) for p in photos if p.thumbnail
    ]
    TicketPhoto.objects.filter(id__in=[p.id for p in photos]).delete()
    # Files go once the rows are gone for good: a rolled-back run keeps both.
    transaction.on_commit(lambda: [file_storage.delete(name) for file_storage, name in files])
    return len(ids)


def _notifications(organisation, *, today, days, now, dry_run) -> int:
    cutoff = now - timedelta(days=days)
    querysets = [
        Notification.objects.filter(organisation=organisation, created_at__lt=cutoff),
        HouseholdReach.objects.filter(organisation=organisation, created_at__lt=cutoff),
        TeamAlert.objects.filter(organisation=organisation, created_at__lt=cutoff),
    ]
    if dry_run:
        return sum(queryset.count() for queryset in querysets)
    return sum(queryset.delete()[1].get(queryset.model._meta.label, 0) for queryset in querysets)


def _telemetry_consent_history(organisation, *, today, days, now, dry_run) -> int:
    queryset = TelemetryConsent.objects.filter(
        organisation=organisation, lease__end_date__lt=today - timedelta(days=days)
    )
    return queryset.count() if dry_run else queryset.delete()[0]


def _previous_tenant_readings(organisation, *, today, days, now, dry_run) -> int:
    # Older data is gone anyway once the aggregate retention has passed.
    oldest = today - timedelta(days=days + settings.TELEMETRY_AGGREGATE_RETENTION_DAYS + 1)
    leases = Lease.objects.filter(
        organisation=organisation,
        end_date__lt=today - timedelta(days=days),
        end_date__gte=oldest,
    ).values_list("dwelling_id", "start_date", "end_date")
    count = 0
    for dwelling_id, start_date, end_date in leases:
        device_ids = list(
            Device.objects.filter(equipment__dwelling_id=dwelling_id).values_list("id", flat=True)
        )
        if not device_ids:
            continue
        start, end = _day_start(start_date), _day_start(end_date + timedelta(days=1))
        if dry_run:
            count += (
                Reading.objects.filter(device_id__in=device_ids, ts__gte=start, ts__lt=end).count()
                + ReadingHour.objects.filter(
                    device_id__in=device_ids, hour__gte=start, hour__lt=end
                ).count()
            )
        else:
            count += storage.delete_device_readings(device_ids=device_ids, start=start, end=end)
    return count


ORGANISATION_RULES = {
    "former_household_contact": _former_household_contact,
    "former_household_identity": _former_household_identity,
    "former_household_vulnerability": _former_household_vulnerability,
    "closed_ticket_free_text": _closed_ticket_free_text,
    "notifications": _notifications,
    "telemetry_consent_history": _telemetry_consent_history,
    "previous_tenant_readings": _previous_tenant_readings,
}


def _global_rules(report: RetentionReport, *, now: datetime) -> None:
    dry_run = report.dry_run
    sms_rule = RULES["inbound_sms"]
    sms = InboundSms.objects.filter(
        received_at__lt=now - timedelta(days=sms_rule.default_days)
    ).filter(Q(body__gt="") | Q(sender__gt=""))
    with transaction.atomic():
        count = sms.count() if dry_run else sms.update(body="", sender="")
    report.add(rule=sms_rule, organisation=None, days=sms_rule.default_days, count=count)

    log_rule = RULES["access_log"]
    before = now - timedelta(days=log_rule.default_days)
    if dry_run:
        count = PersonalDataAccess.objects.filter(at__lt=before).count()
    else:
        with transaction.atomic():
            count = personal_data_access_purge(before=before)
    report.add(rule=log_rule, organisation=None, days=log_rule.default_days, count=count)

    codes_rule = RULES["login_codes"]
    if dry_run:
        count = LoginCode.objects.filter(created_at__lte=now - OTP_WINDOW).count()
    else:
        count = login_codes_purge(now=now)
    report.add(rule=codes_rule, organisation=None, days=codes_rule.default_days, count=count)

    raw_cutoff = now - timedelta(days=settings.TELEMETRY_RAW_RETENTION_DAYS)
    hour_cutoff = now - timedelta(days=settings.TELEMETRY_AGGREGATE_RETENTION_DAYS)
    quarantine_cutoff = now - timedelta(days=settings.TELEMETRY_QUARANTINE_RETENTION_DAYS)
    if dry_run:
        if storage.is_postgresql():
            raw = sum(
                1
                for day in storage.existing_partition_days()
                if _day_start(day + timedelta(days=1)) <= raw_cutoff
            )
        else:
            raw = Reading.objects.filter(ts__lt=raw_cutoff).count()
        purged = {
            "readings": raw,
            "hours": ReadingHour.objects.filter(hour__lt=hour_cutoff).count(),
            "quarantined": Quarantine.objects.filter(received_at__lt=quarantine_cutoff).count(),
        }
    else:
        purged = telemetry_purge(now=now)
    for key, name in (
        ("telemetry_raw", "readings"),
        ("telemetry_aggregates", "hours"),
        ("telemetry_quarantine", "quarantined"),
    ):
        rule = RULES[key]
        report.add(rule=rule, organisation=None, days=rule.default_days, count=purged[name])


def retention_run(
    *, now: datetime | None = None, dry_run: bool = False, organisations=None
) -> RetentionReport:
    """Apply every retention rule (or, dry, count what would go); idempotent."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    report = RetentionReport(dry_run=dry_run, started_at=now)
    queryset = Organisation.objects.order_by("slug")
    if organisations is not None:
        queryset = queryset.filter(pk__in=[getattr(o, "pk", o) for o in organisations])
    for organisation in queryset:
        periods = retention_periods(organisation)
        for key, apply in ORGANISATION_RULES.items():
            with transaction.atomic():
                count = apply(
                    organisation, today=today, days=periods[key], now=now, dry_run=dry_run
                )
            report.add(rule=RULES[key], organisation=organisation, days=periods[key], count=count)
    if organisations is None:
        _global_rules(report, now=now)
    logger.info(
        "retention run %s: %s row(s)",
        "(dry)" if dry_run else "done",
        report.total,
        extra={"retention_total": report.total, "dry_run": dry_run},
    )
    return report
