"""Writes of the documents app: importing rent-ledger lines, generating rent receipts.

A quittance (loi n° 89-462 du 6 juillet 1989, art. 21) names the landlord and the tenants,
the dwelling, the period, the rent and the charges separately, the sum paid and its date; it
is issued once the month is paid in full. Before that, a partial payment gets a receipt of
the sum paid, which says it is not a quittance.
"""

import calendar
import csv
import hashlib
import io
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from django.core.files.base import ContentFile
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import formats, timezone, translation

from api.core.exceptions import ServiceError
from api.estate.models import HouseholdRelation, Lease

from .models import LandlordProfile, LedgerImport, ReceiptKind, RentLedgerLine, RentReceipt

MAX_IMPORT_BYTES = 20 * 1024 * 1024
MAX_IMPORT_ROWS = 200_000
MAX_AMOUNT = Decimal("99999999.99")
GENERATE_CHUNK = 50

# Header names as accounting systems write them, folded (lower case, no accents, "_").
HEADERS = {
    "lease_reference": {"lease_reference", "lease", "bail", "reference_bail", "contrat"},
    "dwelling_reference": {"dwelling_reference", "dwelling", "logement", "reference_logement"},
    "period": {"period", "periode", "mois", "terme"},
    "rent": {"rent", "loyer", "loyer_principal"},
    "charges": {"charges", "provision_charges", "provisions_charges"},
    "amount_paid": {"amount_paid", "paid", "montant_paye", "paye", "regle", "montant_regle"},
    "payment_date": {"payment_date", "date_paiement", "date_de_paiement", "date_reglement"},
}  # fmt: skip


def _fold(text: str) -> str:
    text = unicodedata.normalize("NFKD", text.strip().lower())
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return "_".join(text.replace("-", " ").replace(".", " ").split())


def _decode(raw: bytes) -> str:
    """Accounting exports are UTF-8 (perhaps with a BOM) or Windows-1252."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")


def _delimiter(first_line: str) -> str:
    counts = {d: first_line.count(d) for d in (";", ",", "\t")}
    return max(counts, key=counts.get) if any(counts.values()) else ","


def parse_amount(value: str) -> Decimal:
    """ "1 234,56", "1234.56" or "1234" as a Decimal with two places."""
    text = (value or "").strip().replace("\u00a0", "").replace("\u202f", "").replace(" ", "")
    text = text.replace("€", "")
    if "," in text and "." in text:
        text = text.replace(".", "").replace(",", ".")
    else:
        text = text.replace(",", ".")
    try:
        amount = Decimal(text).quantize(Decimal("0.01"))
    except InvalidOperation as exc:
        raise ValueError("not an amount") from exc
    if not amount.is_finite() or amount < 0 or amount > MAX_AMOUNT:
        raise ValueError("amount out of range")
    return amount


def parse_period(value: str) -> date:
    """ "2026-05", "05/2026" or "2026-05-01" as the first day of the month."""
    text = (value or "").strip()
    for fmt in ("%Y-%m", "%m/%Y", "%Y-%m-%d", "%d/%m/%Y", "%Y%m"):
        try:
            parsed = datetime.strptime(text, fmt)  # noqa: DTZ007 - a calendar month, no instant
        except ValueError:
            continue
        if 1990 <= parsed.year <= 2100:
            return date(parsed.year, parsed.month, 1)
    raise ValueError("not a month")


def parse_day(value: str) -> date | None:
    """ "2026-05-03" or "03/05/2026", or None when empty."""
    text = (value or "").strip()
    if not text:
        return None
    for fmt in ("%Y-%m-%d", "%d/%m/%Y"):
        try:
            parsed = datetime.strptime(text, fmt)  # noqa: DTZ007 - a calendar day
        except ValueError:
            continue
        if 1990 <= parsed.year <= 2100:
            return parsed.date()
    raise ValueError("not a date")


@dataclass
class ImportReport:
    """What an import did, or would do in a dry run."""

    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list = field(default_factory=list)
    changed_line_ids: list = field(default_factory=list)

    def error(self, row: int, column: str, message: str) -> None:
        if len(self.errors) < 1000:
            self.errors.append({"row": row, "field": column, "message": message})


def _columns(header: list[str]) -> dict[str, int]:
    folded = [_fold(name) for name in header]
    columns = {}
    for name, aliases in HEADERS.items():
        for index, value in enumerate(folded):
            if value in aliases:
                columns[name] = index
                break
    missing = [name for name in ("period", "rent", "charges", "amount_paid") if name not in columns]
    if missing:
        raise ServiceError(f"Missing columns: {', '.join(missing)}.", field="file")
    if "lease_reference" not in columns and "dwelling_reference" not in columns:
        raise ServiceError(
            "A lease_reference or dwelling_reference column is needed.", field="file"
        )
    return columns


def _lease_finder(organisation, rows: list[dict]):
    """Find each row's lease: by its reference, or the dwelling's lease in force that month."""
    by_reference = {
        lease.reference: lease
        for lease in Lease.objects.filter(
            organisation=organisation,
            reference__in={r["lease_reference"] for r in rows if r.get("lease_reference")},
        )
    }
    by_dwelling: dict[str, list[Lease]] = {}
    for lease in Lease.objects.filter(
        organisation=organisation,
        dwelling__reference__in={
            r["dwelling_reference"] for r in rows if r.get("dwelling_reference")
        },
    ).select_related("dwelling"):
        by_dwelling.setdefault(lease.dwelling.reference, []).append(lease)

    def find(row: dict, period: date) -> Lease | None:
        if row.get("lease_reference"):
            return by_reference.get(row["lease_reference"])
        last_day = date(
            period.year, period.month, calendar.monthrange(period.year, period.month)[1]
        )
        for lease in by_dwelling.get(row.get("dwelling_reference", ""), []):
            if lease.start_date <= last_day and (
                lease.end_date is None or lease.end_date >= period
            ):
                return lease
        return None

    return find


def rent_ledger_import(
    *, organisation, actor, raw: bytes, file_name: str = "", dry_run: bool = False
) -> LedgerImport:
    """Import monthly ledger lines (CSV); upsert by lease and month, idempotently.

    Rows with errors are reported and skipped; the others are written (nothing is written in
    a dry run). Receipts of the lines created or changed are generated by the workers.
    """
    if len(raw) > MAX_IMPORT_BYTES:
        raise ServiceError("The file is larger than 20 MB.", field="file")
    text = _decode(raw)
    if not text.strip():
        raise ServiceError("The file is empty.", field="file")
    reader = csv.reader(io.StringIO(text), delimiter=_delimiter(text.splitlines()[0]))
    try:
        header = next(reader)
        columns = _columns(header)
        raw_rows = []
        for number, values in enumerate(reader, start=2):
            if not any(v.strip() for v in values):
                continue
            raw_rows.append(
                (
                    number,
                    {name: (values[i] if i < len(values) else "") for name, i in columns.items()},
                )
            )
            if len(raw_rows) > MAX_IMPORT_ROWS:
                raise ServiceError(f"At most {MAX_IMPORT_ROWS} rows per file.", field="file")
    except csv.Error as exc:
        raise ServiceError(f"The file is not valid CSV: {exc}.", field="file") from exc
    report = ImportReport(rows=len(raw_rows))
    for _, row in raw_rows:
        for key in ("lease_reference", "dwelling_reference"):
            row[key] = row.get(key, "").strip()
    find_lease = _lease_finder(organisation, [row for _, row in raw_rows])
    parsed: dict[tuple, dict] = {}
    for number, row in raw_rows:
        values = {}
        for name, parser in (
            ("period", parse_period),
            ("rent", parse_amount),
            ("charges", parse_amount),
            ("amount_paid", parse_amount),
            ("payment_date", parse_day),
        ):
            try:
                values[name] = parser(row.get(name, ""))
            except ValueError as exc:
                report.error(number, name, f"{row.get(name, '')!r}: {exc}.")
        if len(values) < 5:
            continue
        lease = find_lease(row, values["period"])
        if lease is None:
            column = "lease_reference" if row.get("lease_reference") else "dwelling_reference"
            report.error(number, column, "No lease with this reference for this month.")
            continue
        if values["amount_paid"] > 0 and values["payment_date"] is None:
            report.error(number, "payment_date", "A payment needs its date.")
            continue
        key = (lease.pk, values["period"])
        if key in parsed:
            report.error(number, "period", "This lease and month are already in the file.")
            continue
        parsed[key] = {"lease": lease, **values}
    with transaction.atomic():
        _upsert(organisation, parsed, report, file_name=file_name, dry_run=dry_run)
        record = LedgerImport.objects.create(
            organisation=organisation,
            actor=actor,
            file_name=file_name[:200],
            dry_run=dry_run,
            rows=report.rows,
            created=report.created,
            updated=report.updated,
            unchanged=report.unchanged,
            errors=report.errors,
        )
        if not dry_run and report.changed_line_ids:
            ids = [str(i) for i in report.changed_line_ids]
            transaction.on_commit(lambda: _generate_later(ids))
    return record


def _upsert(organisation, parsed: dict, report: ImportReport, *, file_name: str, dry_run: bool):
    existing = {
        (line.lease_id, line.period): line
        for line in RentLedgerLine.objects.filter(
            lease_id__in={k[0] for k in parsed}, period__in={k[1] for k in parsed}
        )
    }
    fields = ("rent", "charges", "amount_paid", "payment_date")
    new, changed = [], []
    for key, values in parsed.items():
        line = existing.get(key)
        if line is None:
            new.append(
                RentLedgerLine(
                    organisation=organisation,
                    lease=values["lease"],
                    period=values["period"],
                    source=file_name[:200],
                    **{name: values[name] for name in fields},
                )
            )
        elif any(getattr(line, name) != values[name] for name in fields):
            for name in fields:
                setattr(line, name, values[name])
            line.source = file_name[:200]
            changed.append(line)
        else:
            report.unchanged += 1
    report.created, report.updated = len(new), len(changed)
    if dry_run:
        return
    RentLedgerLine.objects.bulk_create(new, batch_size=1000)
    now = timezone.now()
    for line in changed:
        line.updated_at = now
    RentLedgerLine.objects.bulk_update(changed, [*fields, "source", "updated_at"], batch_size=1000)
    report.changed_line_ids = [line.pk for line in new + changed if line.amount_paid > 0]


def _generate_later(line_ids: list[str]) -> None:
    from .tasks import generate_receipts

    for start in range(0, len(line_ids), GENERATE_CHUNK):
        generate_receipts.delay(line_ids[start : start + GENERATE_CHUNK])


def _money(value: Decimal) -> str:
    return formats.number_format(value, decimal_pos=2, use_l10n=True, force_grouping=True) + " €"


def _tenant_names(lease: Lease) -> list[str]:
    members = lease.members.select_related("person").filter(
        relation__in=[HouseholdRelation.HOLDER, HouseholdRelation.CO_HOLDER]
    )
    return [m.person.full_name or str(m.person) for m in members]


def receipt_context(line: RentLedgerLine, *, landlord: LandlordProfile, now: datetime) -> dict:
    """Everything a receipt shows, formatted in French."""
    lease = line.lease
    dwelling = lease.dwelling
    entrance = dwelling.entrance
    building = entrance.building
    residence = building.residence
    last_day = date(
        line.period.year,
        line.period.month,
        calendar.monthrange(line.period.year, line.period.month)[1],
    )
    with translation.override("fr"):
        return {
            "landlord": landlord,
            "tenants": _tenant_names(lease),
            "lease": lease,
            "dwelling": dwelling,
            "address": building.address or residence.address,
            "postcode": residence.postcode,
            "city": residence.city,
            "residence": residence.name,
            "building": building.reference,
            "entrance": str(entrance),
            "period_label": formats.date_format(line.period, "F Y"),
            "period_start": formats.date_format(line.period, "j F Y"),
            "period_end": formats.date_format(last_day, "j F Y"),
            "rent": _money(line.rent),
            "charges": _money(line.charges),
            "total_due": _money(line.amount_due),
            "amount_paid": _money(line.amount_paid),
            "remaining": _money(max(line.amount_due - line.amount_paid, Decimal("0"))),
            "payment_date": formats.date_format(line.payment_date, "j F Y")
            if line.payment_date
            else "",
            "full": line.paid_in_full,
            "issued_on": formats.date_format(timezone.localdate(now), "j F Y"),
            "issued_at_city": landlord.city,
            "number": f"{lease.reference}-{line.period:%Y%m}",
        }


def render_receipt_pdf(context: dict) -> bytes:
    """The receipt as a PDF (WeasyPrint)."""
    from weasyprint import HTML

    html = render_to_string("documents/receipt.html", context)
    return HTML(string=html).write_pdf()


@transaction.atomic
def receipt_generate(*, line: RentLedgerLine, actor=None) -> RentReceipt | None:
    """Generate (or regenerate) the receipt of a ledger line; none when nothing was paid."""
    line = (
        RentLedgerLine.objects.select_for_update(of=("self",))
        .select_related("lease__dwelling__entrance__building__residence")
        .get(pk=line.pk)
    )
    existing = RentReceipt.objects.filter(line=line).first()
    if line.amount_paid <= 0:
        if existing is not None:
            existing.file.delete(save=False)
            existing.delete()
        return None
    landlord = LandlordProfile.objects.filter(organisation_id=line.organisation_id).first()
    if landlord is None:
        raise ServiceError(
            "Enter the landlord's name and address first (Landlord profile in the admin).",
            code="landlord_missing",
        )
    now = timezone.now()
    pdf = render_receipt_pdf(receipt_context(line, landlord=landlord, now=now))
    kind = ReceiptKind.QUITTANCE if line.paid_in_full else ReceiptKind.PARTIAL
    prefix = "quittance" if kind == ReceiptKind.QUITTANCE else "recu"
    receipt = existing or RentReceipt(
        organisation_id=line.organisation_id, lease=line.lease, line=line, version=0
    )
    if existing is not None:
        existing.file.delete(save=False)
    receipt.period, receipt.kind = line.period, kind
    receipt.sha256 = hashlib.sha256(pdf).hexdigest()
    receipt.version += 1
    receipt.generated_at, receipt.generated_by = now, actor
    receipt.file.save(
        f"{prefix}-{line.period:%Y-%m}-v{receipt.version}.pdf", ContentFile(pdf), save=False
    )
    receipt.save()
    return receipt


def receipts_generate(*, line_ids: list) -> int:
    """Generate the receipts of these lines (a worker's chunk); returns how many exist now."""
    done = 0
    for line in RentLedgerLine.objects.filter(id__in=line_ids):
        if receipt_generate(line=line) is not None:
            done += 1
    return done
