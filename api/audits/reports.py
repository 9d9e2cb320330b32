"""Monthly reports: a PDF per residence or per contractor with charts, and a CSV export.

Charts are drawn with matplotlib (Agg backend, no display) into PNG data URIs that WeasyPrint
lays out with the rest of the HTML page.
"""

import base64
import csv
import datetime as dt
import io
from collections import defaultdict
from decimal import Decimal

from django.db.models import QuerySet
from django.template.loader import render_to_string
from django.utils import timezone

from api.estate import selectors as estate

from . import scoring, selectors
from .models import Audit, AuditAnswer, ScoringPolicy

MONTHS_IN_TREND = 12
CSV_COLUMNS = [
    "audit",
    "finished_at",
    "residence",
    "entrance",
    "contractor",
    "template_version",
    "score",
    "raw_score",
    "capped",
    "status",
    "failed_items",
    "disputed_items",
]


def _png(figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(figure)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def trend_chart(series: list[dict], policy: ScoringPolicy) -> str:
    """Monthly mean score with the penalty and bonus thresholds."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(7, 2.6))
    months = [point["month"] for point in series]
    values = [float(point["score"]) if point["score"] is not None else None for point in series]
    xs = [i for i, v in enumerate(values) if v is not None]
    axis.plot(xs, [values[i] for i in xs], marker="o", color="#1f5fa8")
    axis.axhline(float(policy.penalty_below), color="#c0392b", linestyle="--", linewidth=1)
    axis.axhline(float(policy.bonus_from), color="#27ae60", linestyle="--", linewidth=1)
    axis.set_xticks(range(len(months)), months, rotation=45, fontsize=7)
    axis.set_ylim(0, 100)
    axis.set_ylabel("Score")
    axis.grid(axis="y", alpha=0.3)
    return _png(figure)


def bar_chart(labels: list[str], values: list[float], policy: ScoringPolicy) -> str:
    """One bar per entrance, area or residence, coloured by threshold band."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(7, 2.6))
    colours = [
        "#c0392b"
        if v < float(policy.penalty_below)
        else "#27ae60"
        if v >= float(policy.bonus_from)
        else "#f39c12"
        for v in values
    ]
    axis.bar(range(len(values)), values, color=colours)
    axis.set_xticks(range(len(labels)), labels, rotation=30, fontsize=7, ha="right")
    axis.set_ylim(0, 100)
    axis.grid(axis="y", alpha=0.3)
    return _png(figure)


def _group_scores(audits, key) -> list[tuple[str, Decimal]]:
    grouped = defaultdict(list)
    for audit in audits:
        grouped[key(audit)].append(audit.score)
    return sorted(
        ((label, scoring.mean(scores)) for label, scores in grouped.items()),
        key=lambda item: item[0],
    )


def _area_scores(audits) -> list[tuple[str, Decimal]]:
    grouped = defaultdict(list)
    for audit in audits:
        for kind, area in (audit.area_scores or {}).items():
            if area.get("score") is not None:
                grouped[kind].append(Decimal(area["score"]))
    return sorted((kind, scoring.mean(scores)) for kind, scores in grouped.items())


def _render(context: dict) -> bytes:
    from weasyprint import HTML

    html = render_to_string("audits/monthly_report.html", context)
    return HTML(string=html).write_pdf()


def _month_audits(audits: QuerySet[Audit], month: dt.date) -> list[Audit]:
    start = selectors.aware_midnight(month)
    end = selectors.aware_midnight(selectors.next_month(month))
    return list(
        audits.filter(finished_at__gte=start, finished_at__lt=end, score__isnull=False)
        .select_related("entrance", "residence", "contractor")
        .order_by("finished_at")
    )


def _failed_items(audits: list[Audit]) -> list[dict]:
    answers = (
        AuditAnswer.objects.filter(audit__in=audits, failed=True)
        .select_related("question", "ticket", "audit__entrance")
        .order_by("audit__finished_at")
    )
    return [
        {
            "entrance": str(a.audit.entrance),
            "question": a.question.text,
            "critical": a.question.critical,
            "ticket": a.ticket.reference if a.ticket_id else "",
            "ticket_status": a.ticket.get_status_display() if a.ticket_id else "",
            "verified": a.verified_at is not None,
            "disputed": a.disputed,
        }
        for a in answers
    ]


def _context(*, title, subject, month, audits, all_audits, policy, bars, bar_title) -> dict:
    score = scoring.mean(a.score for a in audits)
    series = selectors.trends(
        all_audits, months=MONTHS_IN_TREND, until=selectors.next_month(month) - dt.timedelta(1)
    )
    areas = _area_scores(audits)
    return {
        "title": title,
        "subject": subject,
        "month": month.strftime("%m/%Y"),
        "score": score,
        "band": selectors.band(score, policy),
        "policy": policy,
        "audit_count": len(audits),
        "capped_count": sum(1 for a in audits if a.capped),
        "trend_chart": trend_chart(series, policy),
        "bar_chart": bar_chart([b[0] for b in bars], [float(b[1]) for b in bars], policy)
        if bars
        else None,
        "bar_title": bar_title,
        "area_chart": bar_chart([a[0] for a in areas], [float(a[1]) for a in areas], policy)
        if areas
        else None,
        "audits": audits,
        "failed_items": _failed_items(audits),
    }


def residence_report_pdf(*, residence, audits: QuerySet[Audit], month: dt.date) -> bytes:
    """The month's PDF of one residence: scores, trend, entrances, areas, corrective work."""
    policy = selectors.scoring_policy(residence.organisation_id)
    scoped = audits.filter(residence=residence)
    month_audits = _month_audits(scoped, month)
    return _render(
        _context(
            title="Rapport mensuel de propreté",
            subject=residence.name,
            month=month,
            audits=month_audits,
            all_audits=scoped,
            policy=policy,
            bars=_group_scores(month_audits, lambda a: str(a.entrance)),
            bar_title="Score par entrée",
        )
    )


def contractor_report_pdf(*, contractor, audits: QuerySet[Audit], month: dt.date) -> bytes:
    """The month's PDF of one cleaning contractor across the residences it cleans."""
    policy = selectors.scoring_policy(contractor.organisation_id)
    scoped = audits.filter(contractor=contractor)
    month_audits = _month_audits(scoped, month)
    return _render(
        _context(
            title="Rapport mensuel de propreté – prestataire",
            subject=contractor.name,
            month=month,
            audits=month_audits,
            all_audits=scoped,
            policy=policy,
            bars=_group_scores(month_audits, lambda a: a.residence.name),
            bar_title="Score par résidence",
        )
    )


def audits_csv(audits: QuerySet[Audit]) -> str:
    """One row per audit, for spreadsheets."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";")
    writer.writerow(CSV_COLUMNS)
    rows = audits.select_related("residence", "entrance", "contractor", "template").order_by(
        "finished_at", "id"
    )
    from django.db.models import Count, Q

    rows = rows.annotate(
        failed_items=Count("answers", filter=Q(answers__failed=True)),
        disputed_items=Count("answers", filter=Q(answers__disputed=True)),
    )
    for audit in rows:
        writer.writerow(
            [
                audit.id,
                audit.finished_at.isoformat(),
                audit.residence.name,
                str(audit.entrance),
                audit.contractor.name if audit.contractor_id else "",
                audit.template.version,
                audit.score if audit.score is not None else "",
                audit.raw_score if audit.raw_score is not None else "",
                "oui" if audit.capped else "non",
                audit.status,
                audit.failed_items,
                audit.disputed_items,
            ]
        )
    return out.getvalue()


# --- reports rendered ahead ---------------------------------------------------------------------


def previous_month(day: dt.date) -> dt.date:
    """First day of the month before `day`'s."""
    return (day.replace(day=1) - dt.timedelta(days=1)).replace(day=1)


def _store(*, organisation_id, month, subject, residence=None, contractor=None, scoped, content):
    from django.core.files.base import ContentFile

    from .models import AuditReport

    key = {"residence": residence} if residence is not None else {"contractor": contractor}
    report = AuditReport.objects.filter(period=month, subject=subject, **key).first()
    if report is None:
        report = AuditReport(organisation_id=organisation_id, period=month, subject=subject, **key)
    elif report.file:
        report.file.delete(save=False)
    # Every residence whose audits it shows, the trend's included: a reader must see them all.
    history = scoped.filter(finished_at__lt=selectors.aware_midnight(selectors.next_month(month)))
    report.residences = sorted({str(pk) for pk in history.values_list("residence_id", flat=True)})
    report.audits = len(_month_audits(scoped, month))
    report.size = len(content)
    name = f"{subject}-{(residence or contractor).pk}.pdf"
    report.file.save(name, ContentFile(content), save=False)
    report.save()
    return report


def monthly_reports_store(*, month: dt.date | None = None) -> int:
    """Render and store the month's PDF of every residence and contractor audited in it.

    Run on the 1st for the month just ended; a second run replaces the files (idempotent).
    """
    from api.estate.models import Contractor, Residence

    from .models import ReportSubject

    month = (month or previous_month(timezone.localdate())).replace(day=1)
    start = selectors.aware_midnight(month)
    end = selectors.aware_midnight(selectors.next_month(month))
    audited = Audit.objects.filter(finished_at__gte=start, finished_at__lt=end, score__isnull=False)
    stored = 0
    for residence in Residence.objects.filter(pk__in=audited.values("residence_id")):
        scoped = Audit.objects.filter(organisation_id=residence.organisation_id)
        content = residence_report_pdf(residence=residence, audits=scoped, month=month)
        _store(
            organisation_id=residence.organisation_id,
            month=month,
            subject=ReportSubject.RESIDENCE,
            residence=residence,
            scoped=scoped.filter(residence=residence),
            content=content,
        )
        stored += 1
    for contractor in Contractor.objects.filter(pk__in=audited.values("contractor_id")):
        scoped = Audit.objects.filter(organisation_id=contractor.organisation_id)
        content = contractor_report_pdf(contractor=contractor, audits=scoped, month=month)
        _store(
            organisation_id=contractor.organisation_id,
            month=month,
            subject=ReportSubject.CONTRACTOR,
            contractor=contractor,
            scoped=scoped.filter(contractor=contractor),
            content=content,
        )
        stored += 1
    return stored


def stored_report(*, user, month: dt.date, residence=None, contractor=None):
    """The stored PDF for the user, if one is fresh and covers only residences they see.

    Stale when an audit it covers changed since (a late submission, a settled dispute): the
    caller then renders the report on demand.
    """
    from .models import AuditReport

    key = {"residence": residence} if residence is not None else {"contractor": contractor}
    report = AuditReport.objects.filter(period=month, **key).first()
    if report is None or not report.file:
        return None
    visible = {
        str(pk)
        for pk in estate.residences_visible_to(user)
        .filter(pk__in=report.residences)
        .values_list("pk", flat=True)
    }
    if visible != set(report.residences):
        return None
    start = selectors.aware_midnight(month)
    end = selectors.aware_midnight(selectors.next_month(month))
    covered = Audit.objects.filter(finished_at__gte=start, finished_at__lt=end, **key)
    if covered.filter(updated_at__gt=report.updated_at).exists():
        return None
    if covered.filter(score__isnull=False).count() != report.audits:
        return None
    try:
        with report.file.open("rb") as handle:
            return handle.read()
    except (FileNotFoundError, ValueError, OSError):
        return None
