"""Writes of a person's rights: exports of their data, erasure and rectification on request.

Erasure closes the person's access at once (login codes, app tokens, push devices, delegations,
exports), then a worker empties their row (history, leases and the rent ledger point to it, so
it stays) and replaces their name, e-mail and phone wherever they appear in text: everywhere
for the full name, the civility and last name, the e-mail and the phone in its usual spellings;
in their own requests and notifications for the first or last name alone too. Records the law
requires to be kept (LEGAL_HOLD_MODELS, listed in docs/privacy-rights.md) are left as they are.
"""

import hashlib
import json
import logging
import re
from datetime import datetime, timedelta

from django.apps import apps
from django.conf import settings
from django.core import signing
from django.core.files.base import ContentFile
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, models, transaction
from django.db.models import Q
from django.db.models.expressions import RawSQL
from django.db.models.functions import Cast
from django.template.loader import render_to_string
from django.utils import formats, timezone
from phonenumber_field.phonenumber import to_python

from api.accounts.models import LoginCode, User
from api.accounts.otp import phone_digest
from api.accounts.services import personal_data_access_record
from api.core.exceptions import ServiceError
from api.core.roles import Role

from . import selectors
from .models import DataExport, ErasureRequest, ExportStatus, Rectification

logger = logging.getLogger(__name__)

EXPORTS_PER_DAY = 3
EXPORT_LINK_LIFETIME = timedelta(hours=24)
EXPORT_SIGNING_SALT = "palier.privacy.export"
PDF_ROWS_PER_SECTION = 300
ERASED = "[effacé]"
# Kept as they are on erasure: the law requires them (see docs/privacy-rights.md).
LEGAL_HOLD_MODELS = frozenset(
    {
        "documents.rentledgerline",  # loi n° 89-462 art. 7-1: 3 years; Code de commerce L123-22
        "documents.rentreceipt",  # 10 years as accounting documents (Code de commerce L123-22)
        "documents.ledgerimport",  # the accounting import trail, same period
        "accounts.personaldataaccess",  # append-only accountability log (RGPD art. 5.2)
    }
)
ISO_INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?([+-]\d{2}:\d{2}|Z)$")
ACCOUNT_LABELS = {
    "first_name": "Prénom",
    "last_name": "Nom",
    "email": "E-mail",
    "phone": "Téléphone",
    "role": "Rôle",
    "language": "Langue",
    "is_active": "Compte actif",
    "date_joined": "Inscription",
    "last_login": "Dernière connexion",
    "organisation": "Bailleur",
}
CIVILITIES = ("M.", "Mr", "Mme", "Mlle", "Monsieur", "Madame", "Mademoiselle")


# --- exports ----------------------------------------------------------------------------------


def _signer() -> signing.TimestampSigner:
    return signing.TimestampSigner(salt=EXPORT_SIGNING_SALT)


def export_token(export: DataExport, kind: str) -> str:
    """The signed download token of one file ("json" or "pdf") of an export."""
    return _signer().sign(f"{export.pk}:{kind}")


def export_from_token(token: str) -> tuple[DataExport, str]:
    """The export and file kind a download token names; refused when forged or expired."""
    try:
        value = _signer().unsign(token, max_age=EXPORT_LINK_LIFETIME)
    except signing.SignatureExpired as exc:
        raise ServiceError("This link has expired.", code="expired", status_code=410) from exc
    except signing.BadSignature as exc:
        raise ServiceError("Not a valid link.", code="not_found", status_code=404) from exc
    export_id, _, kind = value.partition(":")
    export = DataExport.objects.filter(pk=export_id).first()
    if export is None or kind not in {"json", "pdf"}:
        raise ServiceError("Not a valid link.", code="not_found", status_code=404)
    if export.status != ExportStatus.READY or (
        export.expires_at is not None and export.expires_at <= timezone.now()
    ):
        raise ServiceError("This export has expired.", code="expired", status_code=410)
    return export, kind


@transaction.atomic
def export_request(*, actor, subject, reason: str = "") -> DataExport:
    """Start an export of everything held about `subject` (themselves, or staff for them)."""
    if subject.organisation_id is None:
        raise ServiceError("This person belongs to no landlord.", code="not_allowed")
    # Serialises requests of one person, so two at once cannot both pass the daily limit.
    User.objects.select_for_update().filter(pk=subject.pk).first()
    since = timezone.now() - timedelta(days=1)
    if DataExport.objects.filter(subject=subject, created_at__gte=since).count() >= (
        EXPORTS_PER_DAY
    ):
        raise ServiceError(
            f"At most {EXPORTS_PER_DAY} exports a day; the last ones are still available.",
            code="export_limit",
            status_code=429,
        )
    export = DataExport.objects.create(
        organisation_id=subject.organisation_id,
        subject=subject,
        requested_by=actor,
        reason=reason[:500],
    )
    if actor.pk != subject.pk:
        personal_data_access_record(viewer=actor, subjects=[subject], context="privacy.export")
    export_id = str(export.pk)

    def enqueue() -> None:
        from .tasks import build_export

        build_export.delay(export_id)

    transaction.on_commit(enqueue)
    return export


def _pdf_context(data: dict, export: DataExport) -> dict:
    sections = []
    for section in data["sections"]:
        labels = section["labels"]
        # The PDF is for reading: internal keys and empty values are left to the JSON file.
        hidden = {*section.get("keys", []), "updated_at"}
        rows = [
            [
                (labels.get(key, key), _display(value))
                for key, value in row.items()
                if key not in hidden and value not in (None, "", {}, [])
            ]
            for row in section["rows"][:PDF_ROWS_PER_SECTION]
        ]
        sections.append(
            {
                "title": section["title"],
                "count": len(section["rows"]),
                "rows": rows,
                "cut": len(section["rows"]) > PDF_ROWS_PER_SECTION or section["truncated"],
            }
        )
    account = [
        (ACCOUNT_LABELS.get(key, key), _display(value))
        for key, value in data["account"].items()
        if key != "id"
    ]
    return {
        "export": export,
        "account": account,
        "organisation": data["account"].get("organisation") or "",
        "leases": data["leases"],
        "sections": sections,
        "readings": data["readings_summary"],
        "access_log": [{**read, "at": _display(read["at"])} for read in data["access_log"]],
        "generated_at": data["generated_at"],
    }


def _display(value) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "oui" if value else "non"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)[:2000]
    text = str(value)
    if ISO_INSTANT.match(text):
        moment = datetime.fromisoformat(text)
        return formats.date_format(timezone.localtime(moment), "d/m/Y H:i")
    return text[:2000]


def render_export_pdf(context: dict) -> bytes:
    """The export as a readable PDF (WeasyPrint)."""
    from weasyprint import HTML

    return HTML(string=render_to_string("privacy/export.html", context)).write_pdf()


def export_build(*, export_id) -> DataExport | None:
    """Build the files of an export (a worker's job); does nothing once it is built."""
    with transaction.atomic():
        export = (
            DataExport.objects.select_for_update().select_related("subject").filter(pk=export_id)
        ).first()
        if export is None or export.status not in {ExportStatus.PENDING, ExportStatus.FAILED}:
            return export
        export.status, export.started_at = ExportStatus.RUNNING, timezone.now()
        export.save(update_fields=["status", "started_at", "updated_at"])
    try:
        data = selectors.person_data(export.subject)
        raw = json.dumps(data, cls=DjangoJSONEncoder, ensure_ascii=False, indent=1).encode()
        pdf = render_export_pdf(_pdf_context(data, export))
    except Exception as exc:
        logger.exception("privacy export %s failed", export_id)
        export.status, export.error = ExportStatus.FAILED, type(exc).__name__[:300]
        export.save(update_fields=["status", "error", "updated_at"])
        return export
    now = timezone.now()
    stamp = f"{now:%Y%m%d-%H%M}"
    export.json_file.save(f"palier-donnees-{stamp}.json", ContentFile(raw), save=False)
    export.pdf_file.save(f"palier-donnees-{stamp}.pdf", ContentFile(pdf), save=False)
    export.sections = {s["key"]: len(s["rows"]) for s in data["sections"]}
    export.sections["sha256"] = hashlib.sha256(raw).hexdigest()
    export.status, export.ready_at = ExportStatus.READY, now
    export.expires_at, export.error = now + EXPORT_LINK_LIFETIME, ""
    export.save()
    return export


def exports_expire(*, now=None) -> int:
    """Delete the files of exports whose link has expired; returns how many."""
    now = now or timezone.now()
    done = 0
    for export in DataExport.objects.filter(status=ExportStatus.READY, expires_at__lte=now):
        _delete_files(export)
        export.status = ExportStatus.EXPIRED
        export.save(update_fields=["status", "json_file", "pdf_file", "updated_at"])
        done += 1
    return done


def _delete_files(export: DataExport) -> None:
    for file in (export.json_file, export.pdf_file):
        if file:
            file.delete(save=False)


# --- erasure ----------------------------------------------------------------------------------


def _phone_spellings(phone) -> set[str]:
    """A number as people write it: +33612345678, 0612345678, 06 12 34 56 78, 06.12.…"""
    number = to_python(str(phone)) if phone else None
    if number is None or not number.is_valid():
        return {str(phone)} if phone else set()
    e164 = number.as_e164
    spellings = {e164}
    if e164.startswith("+33") and len(e164) == 12:
        national = "0" + e164[3:]
        pairs = [national[i : i + 2] for i in range(0, 10, 2)]
        spellings |= {national, *(sep.join(pairs) for sep in (" ", ".", "-"))}
        spellings.add("+33 " + national[1] + " " + " ".join(pairs[1:]))
        spellings.add("0033" + e164[3:])
    else:
        spellings.add(number.as_national)
        spellings.add(number.as_international)
    return spellings


def _name_spellings(first: str, last: str) -> set[str]:
    spellings = set()
    if first and last:
        spellings |= {f"{first} {last}", f"{last} {first}", f"{first[0]}. {last}"}
    if last:
        spellings |= {f"{civility} {last}" for civility in CIVILITIES}
    return {s for s in spellings if s.strip()}


def _pattern(literals: set[str]) -> re.Pattern | None:
    literals = {lit for lit in literals if lit and lit.strip()}
    if not literals:
        return None
    parts = []
    for literal in sorted(literals, key=len, reverse=True):
        edge = r"\d" if literal[-1].isdigit() else r"\w"
        start = r"\d" if literal[0].isdigit() or literal[0] == "+" else r"\w"
        parts.append(rf"(?<!{start}){re.escape(literal)}(?!{edge})")
    return re.compile("|".join(parts), re.IGNORECASE)


def _scrub(value, pattern: re.Pattern):
    """The value with every match replaced; JSON walked through its keys and values."""
    if isinstance(value, str):
        return pattern.sub(ERASED, value)
    if isinstance(value, dict):
        return {_scrub(k, pattern): _scrub(v, pattern) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v, pattern) for v in value]
    return value


def text_columns(model) -> list:
    """The free-text, character and JSON columns of a model (choices excluded: no names)."""
    return [
        field
        for field in model._meta.concrete_fields
        if isinstance(field, models.CharField | models.TextField | models.JSONField)
        and not field.choices
        and not field.primary_key
    ]


def _like(literal: str) -> str:
    escaped = literal.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _match(model, fields: list, literals: set[str]) -> tuple[dict, object]:
    """Annotations and a condition true for rows holding any literal in any column, case aside."""
    if connection.vendor == "postgresql":
        # lower() LIKE ANY: one pass per value, about three times faster than ILIKE or a regex.
        patterns = sorted({_like(literal) for literal in literals})
        table = connection.ops.quote_name(model._meta.db_table)
        sql = " OR ".join(
            f"lower({table}.{connection.ops.quote_name(field.column)}::text) LIKE ANY(%s)"
            for field in fields
        )
        # Identifiers come from the models, quoted by the backend; the patterns are parameters.
        condition = RawSQL(  # noqa: S611
            f"({sql})", [patterns] * len(fields), output_field=models.BooleanField()
        )
        return {}, condition
    annotations, match = {}, Q()
    for field in fields:
        lookup = field.name
        if isinstance(field, models.JSONField):
            # Searched as its text: a JSON lookup would compare JSON values.
            lookup = f"_privacy_text_{field.name}"
            annotations[lookup] = Cast(field.name, models.TextField())
        for literal in literals:
            match |= Q(**{f"{lookup}__icontains": literal})
    return annotations, match


def _sweep(queryset, fields: list, literals: set[str], pattern: re.Pattern) -> int:
    """Replace the matches in these columns of these rows; returns how many values changed.

    One scan of the table for all its columns: rows holding any of the literals in any column
    are read, and only the values the pattern changes are written back.
    """
    model = queryset.model
    annotations, match = _match(model, fields, literals)
    rows = queryset.annotate(**annotations).filter(match)
    changed = 0
    names = [field.attname for field in fields]
    for pk, *values in rows.values_list("pk", *names).iterator():
        update = {}
        for field, value in zip(fields, values, strict=True):
            new = _scrub(value, pattern)
            if new == value:
                continue
            if isinstance(new, str) and field.max_length:
                new = new[: field.max_length]
            update[field.attname] = new
        if update:
            model._base_manager.filter(pk=pk).update(**update)
            changed += len(update)
    return changed


def swept_models():
    """Every managed model with text columns, except those kept by law."""
    for model in apps.get_models(include_auto_created=True):
        meta = model._meta
        if not meta.managed or meta.proxy or meta.label_lower in LEGAL_HOLD_MODELS:
            continue
        if meta.pk is None or isinstance(meta.pk, models.CompositePrimaryKey):
            continue
        fields = text_columns(model)
        if fields:
            yield model, fields


def _erase_linked(subject, literals: set[str], pattern: re.Pattern, summary: dict) -> None:
    """The person's own requests, their history and their notifications."""
    from api.notifications.models import Delivery, Notification
    from api.tickets.models import Appointment, InboundSms, Ticket, TicketEvent

    tickets = Ticket.objects.filter(reporter=subject)
    count = tickets.exclude(external_contact={}).update(external_contact={})
    for queryset in (
        tickets,
        TicketEvent.objects.filter(Q(ticket__reporter=subject) | Q(on_behalf_of=subject)),
        Appointment.objects.filter(ticket__reporter=subject),
    ):
        count += _sweep(queryset, text_columns(queryset.model), literals, pattern)
    summary["tickets"] = count
    notifications = Notification.objects.filter(recipient=subject)
    summary["notifications"] = notifications.update(title=ERASED, body="", context={}, deep_link="")
    Delivery.objects.filter(notification__recipient=subject).update(detail={}, last_error="")
    if subject.phone:
        summary["inbound_sms"] = InboundSms.objects.filter(sender=str(subject.phone)).update(
            sender="", body=""
        )


def _erase_access(subject, summary: dict) -> None:
    """What only served to log in or reach the person: codes, tokens, devices, delegations,
    exports. Counts add up in `summary` (this runs at the request and again at execution)."""
    from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

    from api.estate.models import Delegation
    from api.notifications.models import NotificationPreference, PushDevice

    def count(key: str, number: int) -> None:
        summary[key] = summary.get(key, 0) + number

    codes = LoginCode.objects.filter(user=subject)
    if subject.phone:
        codes = LoginCode.objects.filter(
            Q(user=subject) | Q(phone_digest=phone_digest(str(subject.phone)))
        )
    count("login_codes", codes.delete()[0])
    for token in OutstandingToken.objects.filter(user=subject):
        BlacklistedToken.objects.get_or_create(token=token)
    count("push_devices", PushDevice.objects.filter(user=subject).delete()[0])
    NotificationPreference.objects.filter(user=subject).delete()
    now = timezone.now()
    revoked = Delegation.objects.filter(
        Q(grantor=subject) | Q(delegate=subject), revoked_at__isnull=True, expires_at__gt=now
    ).update(revoked_at=now)
    count("delegations_revoked", revoked)
    for export in DataExport.objects.filter(subject=subject):
        _delete_files(export)
    count("exports", DataExport.objects.filter(subject=subject).delete()[0])


def _check_staff(actor, subject) -> None:
    if actor.role not in selectors.PRIVACY_STAFF_ROLES:
        raise ServiceError("Your role cannot do this.", code="permission_denied", status_code=403)
    if selectors.privacy_subject_for(actor, subject.pk) is None:
        raise ServiceError("No such person.", code="not_found", status_code=404)


@transaction.atomic
def person_erase(*, actor, subject, reason: str) -> ErasureRequest:
    """Record a person's erasure request (staff only) and close their access at once.

    Their account is closed, their codes, tokens, devices, delegations and exports go now; the
    scrubbing of their details from every table runs in a worker (`privacy.execute_erasure`),
    as it reads every text column of the database.
    """
    _check_staff(actor, subject)
    reason = (reason or "").strip()
    if not reason:
        raise ServiceError("Say why.", code="required", field="reason")
    subject = User.objects.select_for_update().get(pk=subject.pk)
    request = ErasureRequest.objects.create(
        organisation_id=subject.organisation_id,
        subject=subject,
        requested_by=actor,
        requested_by_role=actor.role,
        reason=reason[:1000],
    )
    summary: dict = {}
    _erase_access(subject, summary)
    subject.is_active = False
    subject.set_unusable_password()
    subject.save(update_fields=["is_active", "password", "updated_at"])
    request.summary = summary
    request.save(update_fields=["summary", "updated_at"])
    request_id = str(request.pk)

    def enqueue() -> None:
        from .tasks import execute_erasure

        execute_erasure.delay(request_id)

    transaction.on_commit(enqueue)
    return request


@transaction.atomic
def erasure_execute(*, request_id) -> ErasureRequest | None:
    """Scrub the person's details from every table (a worker's job); done once per request."""
    request = ErasureRequest.objects.select_for_update().filter(pk=request_id).first()
    if request is None or request.executed_at is not None:
        return request
    subject = User.objects.select_for_update().get(pk=request.subject_id)
    first, last = subject.first_name.strip(), subject.last_name.strip()
    everywhere = _name_spellings(first, last) | _phone_spellings(subject.phone)
    if subject.email and not subject.email.endswith("@erased.invalid"):
        everywhere.add(subject.email)
    own = everywhere | {name for name in (first, last) if len(name) >= 2}
    summary: dict = dict(request.summary)
    own_pattern = _pattern(own)
    if own_pattern is not None:
        _erase_linked(subject, own, own_pattern, summary)
    # Anything created since the request (a code asked for in between) goes too.
    _erase_access(subject, summary)
    subject.first_name = subject.last_name = ""
    subject.phone = None
    subject.email = f"erased-{subject.pk.hex}@erased.invalid"
    subject.is_active = False
    subject.set_unusable_password()
    subject.save()
    pattern = _pattern(everywhere)
    if pattern is not None:
        swept = {}
        for model, fields in swept_models():
            changed = _sweep(model._base_manager.all(), fields, everywhere, pattern)
            if changed:
                swept[model._meta.label] = changed
        summary["text"] = swept
    request.refresh_from_db(fields=["reason"])
    request.summary = summary
    request.executed_at = timezone.now()
    request.save(update_fields=["summary", "executed_at", "updated_at"])
    return request


# --- rectification ----------------------------------------------------------------------------

RECTIFIABLE = ("first_name", "last_name", "phone", "email")


@transaction.atomic
def person_rectify(*, actor, subject, reason: str, changes: dict) -> Rectification:
    """Correct a person's name, phone or e-mail on their request (staff only, audited)."""
    _check_staff(actor, subject)
    reason = (reason or "").strip()
    if not reason:
        raise ServiceError("Say why.", code="required", field="reason")
    subject = User.objects.select_for_update().get(pk=subject.pk)
    changed = []
    for name in RECTIFIABLE:
        if name not in changes:
            continue
        value = changes[name]
        if name in {"phone", "email"}:
            value = value or None
            if value is not None and (
                User.objects.filter(**{name: value}).exclude(pk=subject.pk).exists()
            ):
                raise ServiceError(
                    "Another person already has this.", code="already_used", field=name
                )
        else:
            value = (value or "").strip()
        if str(getattr(subject, name) or "") != str(value or ""):
            setattr(subject, name, value)
            changed.append(name)
    if not changed:
        raise ServiceError("Nothing to correct.", code="no_change")
    if subject.phone is None and subject.email is None:
        raise ServiceError("A person needs a phone number or an e-mail.", field="phone")
    if subject.role != Role.TENANT and "email" in changed and subject.email is None:
        raise ServiceError("Staff log in with their e-mail.", field="email")
    subject.save()
    personal_data_access_record(viewer=actor, subjects=[subject], context="privacy.rectify")
    return Rectification.objects.create(
        organisation_id=subject.organisation_id,
        subject=subject,
        requested_by=actor,
        requested_by_role=actor.role,
        reason=reason[:1000],
        fields=changed,
    )


def export_download_urls(export: DataExport, base: str = "") -> dict:
    """The signed download links of a ready export."""
    if export.status != ExportStatus.READY:
        return {"json": None, "pdf": None}
    root = base.rstrip("/") if base else getattr(settings, "PUBLIC_BASE_URL", "").rstrip("/")
    return {
        kind: f"{root}/privacy/download/{export_token(export, kind)}" for kind in ("json", "pdf")
    }
