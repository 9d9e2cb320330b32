"""CSV and XLSX exports of a request queue, for agency staff (no tenant's personal data)."""

import csv
import io
from collections.abc import Iterable, Iterator

from django.db.models import QuerySet
from django.utils import timezone
from openpyxl import Workbook

from .serializers import is_overdue

MAX_ROWS = 50_000
COLUMNS = [
    "reference",
    "created_at",
    "category",
    "category_code",
    "priority",
    "status",
    "waiting_reason",
    "source",
    "place_kind",
    "residence",
    "building",
    "entrance",
    "dwelling",
    "common_area",
    "team",
    "contractor",
    "acknowledge_due_at",
    "acknowledged_at",
    "resolve_due_at",
    "resolved_at",
    "closed_at",
    "overdue",
    "reopen_count",
    "missed_appointments",
    "rating",
]


def _local(moment) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M") if moment else ""


def export_rows(tickets: QuerySet) -> Iterator[list]:
    """One row per request, in COLUMNS order, local times as text."""
    now = timezone.now()
    queryset = tickets.select_related(
        "category",
        "residence",
        "building",
        "entrance",
        "dwelling",
        "common_area",
        "assigned_team",
        "assigned_contractor",
    ).order_by("-created_at")[:MAX_ROWS]
    for ticket in queryset.iterator(chunk_size=2000):
        yield [
            ticket.reference,
            _local(ticket.created_at),
            ticket.category.name,
            ticket.category.code,
            ticket.priority,
            ticket.status,
            ticket.waiting_reason,
            ticket.source,
            ticket.place_kind,
            ticket.residence.name,
            ticket.building.reference if ticket.building else "",
            (ticket.entrance.label or ticket.entrance.reference) if ticket.entrance else "",
            ticket.dwelling.reference if ticket.dwelling else "",
            str(ticket.common_area) if ticket.common_area else "",
            ticket.assigned_team.name if ticket.assigned_team else "",
            ticket.assigned_contractor.name if ticket.assigned_contractor else "",
            _local(ticket.acknowledge_due_at),
            _local(ticket.acknowledged_at),
            _local(ticket.resolve_due_at),
            _local(ticket.resolved_at),
            _local(ticket.closed_at),
            "yes" if is_overdue(ticket, now) else "no",
            ticket.reopen_count,
            ticket.missed_appointments,
            ticket.rating or "",
        ]


class _Echo:
    def write(self, value: str) -> str:
        return value


def _safe(value):
    """Neutralise spreadsheet formulas in text cells (CSV injection)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def csv_stream(rows: Iterable[list]) -> Iterator[str]:
    """CSV text, line by line (UTF-8 with a BOM so spreadsheet programs read accents)."""
    writer = csv.writer(_Echo(), delimiter=";")
    yield "\ufeff" + writer.writerow(COLUMNS)
    for row in rows:
        yield writer.writerow([_safe(value) for value in row])


def xlsx_bytes(rows: Iterable[list]) -> bytes:
    """An XLSX workbook with one sheet of requests."""
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("Demandes")
    sheet.append(COLUMNS)
    for row in rows:
        sheet.append([_safe(value) for value in row])
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()
