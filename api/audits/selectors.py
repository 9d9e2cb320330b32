"""Reads of audits, rounds, scores and surveys, each scoped to what the given person may see.

Agency staff, managers and administrators (who audit) and caretakers (who read) see the audits
of the residences they see; a contractor sees the audits of the residences under their
contracts in force; tenants see no audit, only the surveys of their own entrance.
"""

import datetime as dt
from decimal import Decimal

from django.db.models import Avg, Count, Q, QuerySet
from django.utils import timezone

from api.core.roles import Role
from api.estate import selectors as estate
from api.estate.models import CommonAreaKind, Contractor, ContractorContract, ContractorMember

from . import scoring
from .models import Audit, AuditRound, AuditTemplate, ScoringPolicy, SurveyResponse

AUDITOR_ROLES = frozenset({Role.AGENCY_STAFF, Role.MANAGER, Role.ADMIN})
AUDIT_READER_ROLES = AUDITOR_ROLES | {Role.CARETAKER, Role.CONTRACTOR}
TEMPLATE_READER_ROLES = AUDIT_READER_ROLES
TEMPLATE_WRITER_ROLES = frozenset({Role.MANAGER, Role.ADMIN})
POLICY_WRITER_ROLES = frozenset({Role.MANAGER, Role.ADMIN})
ROUND_READER_ROLES = AUDITOR_ROLES | {Role.CARETAKER}
SURVEY_READER_ROLES = frozenset({Role.TENANT, Role.CARETAKER}) | AUDITOR_ROLES
SURVEY_WRITER_ROLES = frozenset({Role.TENANT})
CONTRACTOR_REPORT_ROLES = AUDITOR_ROLES | {Role.CONTRACTOR}
SURVEY_WINDOW = dt.timedelta(weeks=4)


def _role(user) -> str | None:
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return None
    return user.role


def templates_visible_to(user) -> QuerySet[AuditTemplate]:
    """The standard questionnaires and the user's organisation's own versions."""
    if _role(user) not in TEMPLATE_READER_ROLES or user.organisation_id is None:
        return AuditTemplate.objects.none()
    return AuditTemplate.objects.filter(
        Q(organisation__isnull=True) | Q(organisation_id=user.organisation_id)
    )


def template_current(*, organisation_id, code: str | None = None) -> AuditTemplate | None:
    """The version new audits use: the organisation's own if it has one, else the standard."""
    templates = AuditTemplate.objects.filter(is_current=True)
    if code:
        templates = templates.filter(code=code)
    own = templates.filter(organisation_id=organisation_id).order_by("-version").first()
    return own or templates.filter(organisation__isnull=True).order_by("-version").first()


def audits_visible_to(user) -> QuerySet[Audit]:
    """Audits of the residences the user sees, for the roles that read audits."""
    if _role(user) not in AUDIT_READER_ROLES:
        return Audit.objects.none()
    return Audit.objects.filter(
        organisation_id=user.organisation_id,
        residence_id__in=estate.residences_visible_to(user).values("id"),
    )


def rounds_visible_to(user) -> QuerySet[AuditRound]:
    """Rounds of the residences the user sees, for auditors and caretakers."""
    if _role(user) not in ROUND_READER_ROLES:
        return AuditRound.objects.none()
    return AuditRound.objects.filter(
        organisation_id=user.organisation_id,
        residence_id__in=estate.residences_visible_to(user).values("id"),
    )


def rounds_today(user, *, day: dt.date | None = None) -> QuerySet[AuditRound]:
    """The rounds the user walks today: assigned to them, or unassigned in their residences."""
    day = day or timezone.localdate()
    return (
        rounds_visible_to(user)
        .filter(Q(assignee=user) | Q(assignee__isnull=True), planned_for=day)
        .exclude(status__in=["done", "cancelled"])
    )


def surveys_visible_to(user) -> QuerySet[SurveyResponse]:
    """Survey answers of the entrances the user sees (tenants: their own entrance's)."""
    if _role(user) not in SURVEY_READER_ROLES:
        return SurveyResponse.objects.none()
    return SurveyResponse.objects.filter(
        organisation_id=user.organisation_id,
        entrance_id__in=estate.entrances_visible_to(user).values("id"),
    )


def contractors_visible_to(user) -> QuerySet[Contractor]:
    """Contractors whose reports the user may read: their own, or those working in their scope."""
    role = _role(user)
    if role not in CONTRACTOR_REPORT_ROLES:
        return Contractor.objects.none()
    if role == Role.CONTRACTOR:
        ids = ContractorMember.objects.filter(user=user).values("contractor_id")
        return Contractor.objects.filter(organisation_id=user.organisation_id, id__in=ids)
    contracts = ContractorContract.objects.filter(
        residence_id__in=estate.residences_visible_to(user).values("id")
    )
    return Contractor.objects.filter(
        organisation_id=user.organisation_id, id__in=contracts.values("contractor_id")
    )


def scoring_policy(organisation_id) -> ScoringPolicy:
    """The organisation's thresholds (the defaults until it sets its own)."""
    policy = ScoringPolicy.objects.filter(organisation_id=organisation_id).first()
    return policy or ScoringPolicy(organisation_id=organisation_id)


def survey_scores(entrance_ids, *, until: dt.date | None = None) -> dict:
    """Mean tenant rating (1-4, and on 0-100) per entrance over the last four weeks."""
    until = until or timezone.localdate()
    rows = (
        SurveyResponse.objects.filter(
            entrance_id__in=entrance_ids, week__gt=until - SURVEY_WINDOW, week__lte=until
        )
        .values("entrance_id")
        .annotate(mean=Avg("rating"), answers=Count("id"))
    )
    return {
        row["entrance_id"]: {
            "mean": round(float(row["mean"]), 2),
            "score": round((float(row["mean"]) - 1) / 3 * 100, 2),
            "answers": row["answers"],
        }
        for row in rows
    }


GROUP_FIELDS = {
    "residence": ("residence_id", "residence__name"),
    "entrance": ("entrance_id", "entrance__reference"),
    "contractor": ("contractor_id", "contractor__name"),
}


def score_table(
    user, *, group: str, since: dt.datetime | None = None, until: dt.datetime | None = None
) -> list[dict]:
    """Mean scores per residence, entrance or contractor, best first, with their rank."""
    if group == "area":
        return _area_table(user, since=since, until=until)
    key, label = GROUP_FIELDS[group]
    audits = audits_visible_to(user).filter(score__isnull=False)
    if since is not None:
        audits = audits.filter(finished_at__gte=since)
    if until is not None:
        audits = audits.filter(finished_at__lt=until)
    if group == "contractor":
        audits = audits.filter(contractor__isnull=False)
    rows = list(
        audits.values(key, label)
        .annotate(
            score=Avg("score"),
            audits=Count("id"),
            capped=Count("id", filter=Q(capped=True)),
        )
        .order_by("-score", key)
    )
    policy = scoring_policy(user.organisation_id)
    surveys = survey_scores([r[key] for r in rows]) if group == "entrance" else {}
    table = []
    for rank, row in enumerate(rows, start=1):
        score = scoring.mean([Decimal(row["score"])])
        table.append(
            {
                "id": row[key],
                "label": row[label] or "",
                "score": score,
                "audits": row["audits"],
                "capped_audits": row["capped"],
                "rank": rank,
                "band": band(score, policy),
                "survey": surveys.get(row[key]),
            }
        )
    return table


AREA_WINDOW = dt.timedelta(days=365)


def _area_table(user, *, since, until) -> list[dict]:
    """Mean score per kind of common area (hall, stairwell, bin room...) across the audits."""
    audits = audits_visible_to(user).filter(finished_at__gte=since or timezone.now() - AREA_WINDOW)
    if until is not None:
        audits = audits.filter(finished_at__lt=until)
    scores: dict[str, list] = {}
    capped: dict[str, int] = {}
    for area_scores in audits.values_list("area_scores", flat=True).iterator():
        for kind, area in (area_scores or {}).items():
            if area.get("score") is None:
                continue
            scores.setdefault(kind, []).append(Decimal(area["score"]))
            capped[kind] = capped.get(kind, 0) + (1 if area.get("capped") else 0)
    labels = dict(CommonAreaKind.choices)
    policy = scoring_policy(user.organisation_id)
    means = sorted(
        ((scoring.mean(values), kind) for kind, values in scores.items()),
        key=lambda item: (-item[0], item[1]),
    )
    return [
        {
            "id": kind,
            "label": str(labels.get(kind, kind)),
            "score": score,
            "audits": len(scores[kind]),
            "capped_audits": capped[kind],
            "rank": rank,
            "band": band(score, policy),
            "survey": None,
        }
        for rank, (score, kind) in enumerate(means, start=1)
    ]


def band(score: Decimal | None, policy: ScoringPolicy) -> str:
    """Where a score falls against the contract thresholds."""
    if score is None:
        return "none"
    if score < policy.penalty_below:
        return "penalty"
    if score >= policy.bonus_from:
        return "bonus"
    return "standard"


def month_start(day: dt.date) -> dt.date:
    return day.replace(day=1)


def next_month(day: dt.date) -> dt.date:
    return (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)


def aware_midnight(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


def trends(audits: QuerySet[Audit], *, months: int, until: dt.date | None = None) -> list[dict]:
    """Mean score and audit count per month, oldest first, for the last `months` months."""
    end = next_month(until or timezone.localdate())
    start = end
    for _ in range(months):
        start = month_start(start - dt.timedelta(days=1))
    series = []
    cursor = start
    while cursor < end:
        following = next_month(cursor)
        rows = audits.filter(
            finished_at__gte=aware_midnight(cursor),
            finished_at__lt=aware_midnight(following),
            score__isnull=False,
        ).aggregate(
            score=Avg("score"), audits=Count("id"), capped=Count("id", filter=Q(capped=True))
        )
        series.append(
            {
                "month": cursor.strftime("%Y-%m"),
                "score": scoring.mean([rows["score"]]) if rows["score"] is not None else None,
                "audits": rows["audits"],
                "capped_audits": rows["capped"],
            }
        )
        cursor = following
    return series
