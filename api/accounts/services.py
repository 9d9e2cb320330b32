"""Writes about people: phone login codes, tokens, profiles, and the personal data access log."""

import logging
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import update_last_login
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from phonenumber_field.phonenumber import PhoneNumber, to_python
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken

from api.core.exceptions import ServiceError
from api.core.roles import Role

from .models import (
    ConsentChannel,
    LoginCode,
    PersonalDataAccess,
    User,
    Vulnerability,
    VulnerabilityKind,
)
from .otp import (
    OTP_LIFETIME,
    OTP_MAX_CODES_PER_DAY,
    OTP_WINDOW,
    SMS_PURPOSE,
    code_hash,
    code_matches,
    login_code_message,
    new_code,
    phone_digest,
    wait_until,
)
from .sms import (
    SMSConfigurationError,
    SMSError,
    mask_phone,
    send_sms,
    sms_budget_exhausted,
    typical_send_seconds,
)

logger = logging.getLogger(__name__)

# Roles that reach a whole agency or organisation, or the admin site, log in with e-mail and
# password (locked by axes after repeated failures), never with an SMS code alone.
PASSWORD_ONLY_ROLES = frozenset({Role.AGENCY_STAFF, Role.MANAGER, Role.ADMIN})
# Advisory-lock namespace for code requests ("PA"), so concurrent requests for one number
# cannot both slip under the daily limit.
_OTP_LOCK_NAMESPACE = 0x5041


class LimitReached(ServiceError):
    """A rate or budget limit refused the operation (HTTP 429), perhaps with a retry delay."""

    def __init__(self, message, *, code: str, retry_after: float | None = None) -> None:
        super().__init__(message, code=code, status_code=429)
        self.retry_after = retry_after


class TokenRefused(ServiceError):
    """A JWT was not accepted (HTTP 401)."""

    def __init__(self, message, *, code: str = "token_not_valid") -> None:
        super().__init__(message, code=code, status_code=401)


# --- The personal data access log -----------------------------------------------------------


def _reads_are_logged(viewer) -> bool:
    """Reads by anyone working for or with the landlord are logged; tenants' own are not."""
    if viewer is None or not getattr(viewer, "is_authenticated", False):
        return False
    return viewer.role != Role.TENANT or viewer.is_staff or viewer.is_superuser


def personal_data_access_record(*, viewer: User, subjects: Iterable, context: str) -> None:
    """Log that `viewer` read the personal data of each of `subjects` (users or their ids).

    One INSERT for all subjects; nothing when the viewer is not staff or reads only their own
    data. `context` says what was read where, e.g. "people.detail" or "lease.list".
    """
    # No transaction.atomic: the single INSERT is atomic already, and read endpoints that call
    # this pin their query counts.
    if not _reads_are_logged(viewer):
        return
    subject_ids: dict[uuid.UUID, None] = {}
    for subject in subjects:
        if subject is None:
            continue
        pk = subject.pk if isinstance(subject, User) else subject
        pk = pk if isinstance(pk, uuid.UUID) else uuid.UUID(str(pk))
        if pk != viewer.pk:
            subject_ids[pk] = None
    if not subject_ids:
        return
    now = timezone.now()
    PersonalDataAccess.objects.bulk_create(
        PersonalDataAccess(
            viewer=viewer, viewer_role=viewer.role, subject_id=pk, context=context[:200], at=now
        )
        for pk in subject_ids
    )


@transaction.atomic
def personal_data_access_purge(*, before: datetime) -> int:
    """Delete log rows older than `before` (retention); the only way rows ever leave the log."""
    table = PersonalDataAccess._meta.db_table
    postgresql = connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        if postgresql:
            # The append-only trigger lets DELETE through only with this setting, local to the
            # transaction (a failure rolls it back) and switched off again at once in case an
            # outer transaction goes on.
            cursor.execute("SELECT set_config('palier.purge_personal_data_access', 'on', true)")
        cursor.execute(f"DELETE FROM {table} WHERE at < %s", [before])  # noqa: S608 - own table
        deleted = cursor.rowcount
        if postgresql:
            cursor.execute("SELECT set_config('palier.purge_personal_data_access', 'off', true)")
    return deleted


# --- Phone login by one-time code ------------------------------------------------------------


def _e164(phone: PhoneNumber | str) -> str:
    number = phone if isinstance(phone, PhoneNumber) else to_python(str(phone))
    if not isinstance(number, PhoneNumber) or not number.is_valid():
        raise ServiceError(_("Enter a valid phone number."), code="invalid", field="phone")
    return number.as_e164


def _lock_number(digest: str) -> None:
    """Serialise code requests for one number until the end of the transaction."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(%s, hashtext(%s))", [_OTP_LOCK_NAMESPACE, digest]
            )
    # SQLite runs with immediate transactions: writers are already serialised.


def _seconds_until_midnight() -> int:
    now = timezone.localtime()
    midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return int((midnight - now).total_seconds()) + 1


def login_code_can_be_sent_to(user: User | None) -> bool:
    """Whether this person may log in by SMS code."""
    return (
        user is not None
        and user.is_active
        and user.role not in PASSWORD_ONLY_ROLES
        and not user.is_staff
        and not user.is_superuser
    )


@dataclass(frozen=True)
class _IssuedCode:
    user: User | None
    code: str


@transaction.atomic
def _login_code_issue(*, e164: str) -> _IssuedCode:
    """Store a new code for the number, within the daily limit; the person is None if unknown."""
    digest = phone_digest(e164)
    _lock_number(digest)
    now = timezone.now()
    recent = LoginCode.objects.filter(phone_digest=digest, created_at__gt=now - OTP_WINDOW)
    times = list(recent.order_by("created_at").values_list("created_at", flat=True))
    if len(times) >= OTP_MAX_CODES_PER_DAY:
        raise LimitReached(
            _("Too many codes were requested for this number today; try again later."),
            code="otp_number_limit",
            retry_after=(times[0] + OTP_WINDOW - now).total_seconds(),
        )
    user = User.objects.filter(phone=e164).first()
    if not login_code_can_be_sent_to(user):
        user = None
    code = new_code()
    row = LoginCode(phone_digest=digest, user=user, expires_at=now + OTP_LIFETIME)
    row.code_hash = code_hash(code, salt=str(row.id))
    row.save(force_insert=True)
    return _IssuedCode(user=user, code=code)


def otp_request(*, phone: PhoneNumber | str) -> None:
    """Send a login code by SMS to a known number; answer the same way, as slowly, otherwise.

    Refused (LimitReached) when the number had its codes for the last 24 hours or when today's
    SMS budget is spent, for known and unknown numbers alike.
    """
    started = time.monotonic()
    e164 = _e164(phone)
    if sms_budget_exhausted():
        raise LimitReached(
            _("Text messages cannot be sent right now; try again later."),
            code="sms_unavailable",
            retry_after=_seconds_until_midnight(),
        )
    issued = _login_code_issue(e164=e164)
    floor = settings.OTP_REQUEST_MIN_SECONDS
    if issued.user is None:
        # No SMS for unknown numbers, but as long a wait as a real send takes.
        wait_until(started, max(floor, typical_send_seconds()))
        return
    body = login_code_message(issued.code, language=issued.user.language)
    try:
        send_sms(to=e164, body=body, purpose=SMS_PURPOSE)
    except SMSError as exc:
        # The answer stays the same: telling "not sent" apart would reveal the number is known.
        level = logging.ERROR if isinstance(exc, SMSConfigurationError) else logging.WARNING
        logger.log(level, "Login code for %s not sent: %s", mask_phone(e164), exc)
    wait_until(started, floor)


class _Check:
    OK = "ok"
    INVALID = "invalid"
    WAIT = "wait"
    EXHAUSTED = "exhausted"


@transaction.atomic
def _login_code_check(*, e164: str, code: str) -> tuple[str, User | None, float | None]:
    """Try `code` against the number's newest code; wrong tries are counted and committed."""
    row = (
        LoginCode.objects.select_for_update(of=("self",))
        .select_related("user")
        .filter(phone_digest=phone_digest(e164))
        .order_by("-created_at")
        .first()
    )
    now = timezone.now()
    if row is None or row.used_at is not None or row.expires_at <= now:
        return _Check.INVALID, None, None
    allowed, info = row.verify_is_allowed()
    if not allowed:
        if info and info.get("locked_until"):
            return _Check.WAIT, None, (info["locked_until"] - now).total_seconds()
        return _Check.EXHAUSTED, None, None
    if not code_matches(code, salt=str(row.id), hashed=row.code_hash) or not (
        login_code_can_be_sent_to(row.user)
    ):
        row.throttle_increment()
        return _Check.INVALID, None, None
    row.used_at = now
    row.throttle_reset(commit=False)
    row.save(update_fields=["used_at", "throttling_failure_count", "throttling_failure_timestamp"])
    return _Check.OK, row.user, None


def token_pair_for(user: User) -> dict[str, str]:
    """A fresh refresh/access token pair for a person who just logged in."""
    refresh = RefreshToken.for_user(user)
    update_last_login(None, user)
    return {"access": str(refresh.access_token), "refresh": str(refresh)}


def otp_verify(*, phone: PhoneNumber | str, code: str) -> dict[str, str]:
    """Exchange a phone number and its current code for a JWT pair; the code is then spent."""
    e164 = _e164(phone)
    outcome, user, retry_after = _login_code_check(e164=e164, code=code)
    if outcome == _Check.WAIT:
        raise LimitReached(
            _("Wrong code: wait a few seconds before trying again."),
            code="otp_wait",
            retry_after=retry_after,
        )
    if outcome == _Check.EXHAUSTED:
        raise LimitReached(
            _("This code was tried too many times; request a new one."),
            code="otp_attempts_exhausted",
        )
    if outcome != _Check.OK or user is None:
        raise ServiceError(
            _("This code is wrong or has expired."), code="otp_invalid", field="code"
        )
    with transaction.atomic():
        return token_pair_for(user)


@transaction.atomic
def login_codes_purge(*, now: datetime | None = None) -> int:
    """Delete codes older than the 24-hour window they count in; return how many."""
    now = now or timezone.now()
    deleted, _counts = LoginCode.objects.filter(created_at__lte=now - OTP_WINDOW).delete()
    return deleted


# --- Tokens ------------------------------------------------------------------------------------


def _refresh_token(raw: str) -> RefreshToken:
    try:
        return RefreshToken(raw)
    except TokenError as exc:
        raise TokenRefused(str(exc)) from None


def _outstanding_locked(token: RefreshToken) -> OutstandingToken:
    """The token's outstanding row, locked so that concurrent uses queue behind each other."""
    outstanding = (
        # simplejwt orders outstanding tokens by user, an outer join FOR UPDATE cannot lock.
        OutstandingToken.objects.select_for_update(of=("self",))
        .filter(jti=token.payload.get(settings.SIMPLE_JWT.get("JTI_CLAIM", "jti")))
        .order_by("pk")
        .first()
    )
    if outstanding is None:
        raise TokenRefused(_("Token is invalid or expired"))
    return outstanding


def _blacklist(outstanding: OutstandingToken) -> None:
    """Revoke a refresh token; refuse if it already was (a replay, or a concurrent use)."""
    if BlacklistedToken.objects.filter(token=outstanding).exists():
        raise TokenRefused(_("Token is blacklisted"))
    BlacklistedToken.objects.create(token=outstanding)


@transaction.atomic
def token_refresh(*, refresh: str) -> dict[str, str]:
    """Rotate a refresh token: revoke it and return a new pair; a token rotates only once.

    The outstanding row is locked and the blacklist row unique, so of many concurrent
    refreshes with one token exactly one succeeds.
    """
    token = _refresh_token(refresh)
    outstanding = _outstanding_locked(token)
    _blacklist(outstanding)
    user = User.objects.filter(pk=token.payload.get("user_id"), is_active=True).first()
    if user is None:
        raise TokenRefused(
            _("No active account found for the given token."), code="no_active_account"
        )
    new = RefreshToken.for_user(user)
    return {"access": str(new.access_token), "refresh": str(new)}


@transaction.atomic
def token_revoke(*, refresh: str) -> None:
    """Log out: revoke a refresh token so it can never be used again."""
    try:
        token = RefreshToken(refresh)
    except TokenError as exc:
        raise ServiceError(str(exc), code="token_not_valid", field="refresh") from None
    outstanding = _outstanding_locked(token)
    if not BlacklistedToken.objects.filter(token=outstanding).exists():
        BlacklistedToken.objects.create(token=outstanding)


@transaction.atomic
def outstanding_tokens_purge(*, now: datetime | None = None) -> int:
    """Delete expired refresh-token rows (and their blacklist entries); return how many."""
    deleted, _counts = OutstandingToken.objects.filter(
        expires_at__lte=now or timezone.now()
    ).delete()
    return deleted


# --- Profiles -------------------------------------------------------------------------------


@transaction.atomic
def user_profile_update(
    *,
    user: User,
    first_name: str | None = None,
    last_name: str | None = None,
    language: str | None = None,
) -> User:
    """A person changes their own names or language."""
    changed: list[str] = []
    for field, value in (("first_name", first_name), ("last_name", last_name)):
        if value is not None:
            setattr(user, field, value.strip())
            changed.append(field)
    if language is not None:
        if language not in dict(settings.LANGUAGES):
            raise ServiceError(_("This language is not available."), field="language")
        user.language = language
        changed.append("language")
    if changed:
        user.save(update_fields=[*changed, "updated_at"])
    return user


# --- Creating people (operators' command) ----------------------------------------------------


@transaction.atomic
def user_create(
    *,
    organisation,
    role: str,
    phone: PhoneNumber | str | None = None,
    email: str | None = None,
    first_name: str = "",
    last_name: str = "",
    language: str = settings.LANGUAGE_CODE,
) -> User:
    """Create a person; tenants need only a phone, password-only roles need an e-mail."""
    if role not in Role.values:
        raise ServiceError(f"Unknown role {role!r}.", field="role")
    if language not in dict(settings.LANGUAGES):
        raise ServiceError(f"Unknown language {language!r}.", field="language")
    e164 = _e164(phone) if phone else None
    email = User.objects.normalize_email(email).strip().lower() if email else None
    if email:
        try:
            validate_email(email)
        except ValidationError:
            raise ServiceError(f"{email!r} is not a valid e-mail address.", field="email") from None
    if not e164 and not email:
        raise ServiceError("Give a phone number or an e-mail address.", field="phone")
    if role in PASSWORD_ONLY_ROLES and not email:
        raise ServiceError(
            f"A {Role(role).label.lower()} logs in with e-mail and password: give an e-mail.",
            field="email",
        )
    if e164 and User.objects.filter(phone=e164).exists():
        raise ServiceError(
            f"Someone already has the number {e164}.", code="duplicate", field="phone"
        )
    if email and User.objects.filter(email__iexact=email).exists():
        raise ServiceError(
            f"Someone already has the e-mail {email}.", code="duplicate", field="email"
        )
    return User.objects.create_user(
        email=email,
        phone=e164,
        organisation=organisation,
        role=role,
        first_name=first_name.strip(),
        last_name=last_name.strip(),
        language=language,
        is_staff=role == Role.ADMIN,
    )


@transaction.atomic
def user_household_join(*, user: User, dwelling, relation: str = "occupant"):
    """Add a tenant to the household of the dwelling's lease in force today."""
    from api.estate.models import EstateEventKind, HouseholdMember, HouseholdRelation, Lease
    from api.estate.selectors import current_lease_q
    from api.estate.services import estate_event_record

    if user.role != Role.TENANT:
        raise ServiceError("Only tenants join a household.", field="role")
    if user.organisation_id != dwelling.organisation_id:
        raise ServiceError("The dwelling belongs to another organisation.", field="dwelling")
    if relation not in HouseholdRelation.values:
        raise ServiceError(f"Unknown household relation {relation!r}.", field="relation")
    lease = (
        Lease.objects.select_for_update()
        .filter(current_lease_q(timezone.localdate()), dwelling=dwelling)
        .first()
    )
    if lease is None:
        raise ServiceError(
            f"Dwelling {dwelling.reference} has no lease in force today: record the lease first.",
            code="no_current_lease",
            field="dwelling",
        )
    if relation == HouseholdRelation.HOLDER and lease.members.filter(relation=relation).exists():
        raise ServiceError(f"Lease {lease.reference} already has a holder.", field="relation")
    member = HouseholdMember.objects.create(lease=lease, person=user, relation=relation)
    estate_event_record(
        organisation_id=lease.organisation_id,
        kind=EstateEventKind.MEMBER_ADDED,
        subject=lease,
        data={"person": str(user.pk), "relation": relation},
    )
    return member


@transaction.atomic
def user_residence_assign(*, user: User, residence):
    """Put a caretaker in charge of a residence, or agency staff in its agency."""
    from api.estate.models import AgencyMembership, CaretakerAssignment, EstateEventKind
    from api.estate.services import estate_event_record

    if user.organisation_id != residence.organisation_id:
        raise ServiceError("The residence belongs to another organisation.", field="residence")
    if user.role == Role.CARETAKER:
        assignment, created = CaretakerAssignment.objects.get_or_create(
            caretaker=user, residence=residence
        )
    elif user.role == Role.AGENCY_STAFF:
        assignment, created = AgencyMembership.objects.get_or_create(
            user=user, agency_id=residence.agency_id
        )
    else:
        raise ServiceError(
            "A residence is assigned to caretakers and agency staff only.", field="role"
        )
    if created:
        estate_event_record(
            organisation_id=residence.organisation_id,
            kind=EstateEventKind.CREATED,
            subject=assignment,
            data={"user": str(user.pk), "residence": str(residence.pk)},
        )
    return assignment


# --- Vulnerabilities -------------------------------------------------------------------------


@transaction.atomic
def vulnerability_record(
    *,
    actor: User,
    person: User,
    kind: str,
    consent_channel: str,
    consent_at: datetime | None = None,
) -> Vulnerability:
    """Record a vulnerability the person consented to (again: the consent is renewed).

    A person records their own in the app; staff in charge of the person's home record one
    the person agreed to on paper, by phone or in person.
    """
    from .selectors import VULNERABILITY_READER_ROLES, _current_members

    if kind not in VulnerabilityKind.values:
        raise ServiceError(_("Unknown kind of vulnerability."), field="kind")
    if consent_channel not in ConsentChannel.values:
        raise ServiceError(_("Unknown consent channel."), field="consent_channel")
    if actor.pk == person.pk:
        if consent_channel != ConsentChannel.APP:
            raise ServiceError(_("Your own consent is given in the app."), field="consent_channel")
    else:
        from api.estate.selectors import dwellings_visible_to

        if actor.role not in VULNERABILITY_READER_ROLES:
            raise ServiceError(
                _("Your role does not record vulnerabilities."),
                code="permission_denied",
                status_code=403,
            )
        in_charge = (
            person.organisation_id == actor.organisation_id
            and _current_members(dwellings_visible_to(actor).values("id"))
            .filter(person_id=person.pk)
            .exists()
        )
        if not in_charge:
            raise ServiceError(_("Not found."), code="not_found", field="person", status_code=404)
        if consent_channel == ConsentChannel.APP:
            raise ServiceError(
                _("Only the person gives consent in the app."), field="consent_channel"
            )
    now = timezone.now()
    if consent_at is not None and consent_at > now:
        raise ServiceError(_("The consent cannot be in the future."), field="consent_at")
    vulnerability, _created = Vulnerability.objects.update_or_create(
        person=person,
        kind=kind,
        defaults={
            "consent_at": consent_at or now,
            "consent_channel": consent_channel,
            "recorded_by": actor,
        },
    )
    from api.tickets.services import tickets_vulnerability_raise

    # Outages already reported at the person's home are handled first from now on too.
    tickets_vulnerability_raise(person=person)
    return vulnerability


@transaction.atomic
def vulnerability_withdraw(*, actor: User, vulnerability: Vulnerability) -> None:
    """Withdraw the consent: the vulnerability is deleted at once, nothing of it is kept."""
    from .selectors import vulnerabilities_visible_to

    if not vulnerabilities_visible_to(actor).filter(pk=vulnerability.pk).exists():
        raise ServiceError(_("Not found."), code="not_found", status_code=404)
    vulnerability.delete()
