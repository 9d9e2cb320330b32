"""Writes to audits, rounds and surveys; each appends an event row.

An audit arrives whole from the field (often after a while offline): its id is made on the
phone, so a resend returns the audit already stored. Each failed answer opens a corrective
request (or joins the one already open for the same problem at the same entrance), routed to
the party responsible; a later audit finding it compliant verifies the correction.
"""

import base64
import datetime as dt
import hmac
import secrets
import uuid
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from django.core import signing
from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Max, Q
from django.utils import timezone
from django.utils.crypto import salted_hmac

from api.core.exceptions import ServiceError, conflict, not_found, refused
from api.core.roles import Role
from api.estate import selectors as estate
from api.estate.models import (
    CommonArea,
    ContractorContract,
    ContractorMember,
    Entrance,
    Residence,
    TeamSector,
    Trade,
)
from api.tickets import services as tickets
from api.tickets.models import OPEN_STATUSES, Category, Source, Status, Ticket
from api.tickets.photos import clean_photo, store_photo
from api.tickets.selectors import category_by_code

from . import sampling, scoring, selectors
from .models import (
    COMPLIANCE_VALUES,
    SCALE_VALUES,
    AnswerType,
    Audit,
    AuditAnswer,
    AuditEvent,
    AuditEventKind,
    AuditPhoto,
    AuditRound,
    AuditStatus,
    AuditTemplate,
    DisputeOutcome,
    ResponsibleParty,
    RoundStatus,
    RoundTarget,
    ScoringPolicy,
    SurveyChannel,
    SurveyResponse,
    TemplateQuestion,
    TemplateSection,
)

MAX_CLOCK_SKEW = dt.timedelta(hours=6)
FUTURE_TOLERANCE = dt.timedelta(minutes=5)
MAX_AUDIT_AGE = dt.timedelta(days=30)
MAX_AUDIT_LENGTH = dt.timedelta(hours=12)
MAX_PHOTOS_PER_ANSWER = 3
RECENT_FAILURE_WINDOW = dt.timedelta(days=90)
MAX_PERIOD = dt.timedelta(days=366)
SURVEY_SALT = "audits.survey"
SURVEY_LINK_AGE = dt.timedelta(days=14)


def _event(*, organisation_id, kind: str, actor=None, audit=None, round=None, **data) -> None:
    AuditEvent.objects.create(
        organisation_id=organisation_id, audit=audit, round=round, kind=kind, actor=actor, data=data
    )


# --- scoring ------------------------------------------------------------------------------------


def answers_score(answers, *, cap: Decimal) -> tuple[scoring.Score, dict]:
    """The audit's score and one per area kind, from answers with their questions loaded."""
    items_by_area: dict[str, list] = {}
    items = []
    for answer in answers:
        item = scoring.Item(answer.value, answer.question.weight, answer.question.critical)
        items.append(item)
        items_by_area.setdefault(answer.question.section.area_kind, []).append(item)
    areas = {}
    for kind, area_items in items_by_area.items():
        result = scoring.score_items(area_items, cap=cap)
        areas[kind] = {
            "score": str(result.score) if result.score is not None else None,
            "capped": result.capped,
        }
    return scoring.score_items(items, cap=cap), areas


# --- submission ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class AnswerInput:
    """One answer as sent from the phone."""

    question: uuid.UUID
    value: str
    comment: str = ""
    common_area: uuid.UUID | None = None


def _corrected_times(started_at, finished_at, device_sent_at, now) -> tuple:
    skew = device_sent_at - now if device_sent_at is not None else dt.timedelta(0)
    if abs(skew) > MAX_CLOCK_SKEW:
        raise ServiceError(
            "The phone's clock is too far from the right time; set it and send again.",
            code="clock_skew",
            field="device_sent_at",
        )
    started, finished = started_at - skew, finished_at - skew
    if finished > now + FUTURE_TOLERANCE:
        raise ServiceError("The audit ends in the future.", code="clock_skew", field="finished_at")
    if started > finished:
        raise ServiceError("The audit ends before it starts.", field="finished_at")
    if finished - started > MAX_AUDIT_LENGTH:
        raise ServiceError("An audit lasts at most 12 hours.", field="started_at")
    if finished < now - MAX_AUDIT_AGE:
        raise ServiceError(
            "This audit is more than 30 days old.", code="too_old", field="finished_at"
        )
    return started, finished, int(skew.total_seconds())


def _valid_value(question: TemplateQuestion, value: str) -> bool:
    allowed = COMPLIANCE_VALUES if question.answer_type == AnswerType.COMPLIANCE else SCALE_VALUES
    return value in allowed


def _cleaning_contractor(residence: Residence, day: dt.date):
    contract = (
        ContractorContract.objects.filter(
            estate.current_lease_q(day), residence=residence, trade=Trade.CLEANING
        )
        .select_related("contractor")
        .order_by("-start_date")
        .first()
    )
    return contract.contractor if contract else None


def _entrance_areas(entrance: Entrance) -> set:
    building = entrance.building
    return (
        set(CommonArea.objects.filter(entrance=entrance).values_list("id", flat=True))
        | set(CommonArea.objects.filter(building=building).values_list("id", flat=True))
        | set(
            CommonArea.objects.filter(residence_id=building.residence_id).values_list(
                "id", flat=True
            )
        )
    )


@transaction.atomic
def audit_submit(
    *,
    actor,
    audit_id: uuid.UUID,
    entrance: Entrance,
    answers: list[AnswerInput],
    started_at: dt.datetime,
    finished_at: dt.datetime,
    device_sent_at: dt.datetime | None = None,
    template: AuditTemplate | None = None,
    round: AuditRound | None = None,
    note: str = "",
) -> tuple[Audit, bool]:
    """Store a whole audit from the field; a resend of the same id returns it (created=False)."""
    if actor.role not in selectors.AUDITOR_ROLES:
        raise refused("Your role does not audit.")
    existing = Audit.objects.filter(pk=audit_id).first()
    if existing is not None:
        if existing.auditor_id != actor.pk:
            raise conflict("This id is already used.", "id_in_use")
        return existing, False
    if not estate.entrances_visible_to(actor).filter(pk=entrance.pk).exists():
        raise not_found("entrance")
    if template is None:
        template = selectors.template_current(organisation_id=actor.organisation_id)
        if template is None:
            raise ServiceError("No questionnaire is set up.", field="template")
    elif not selectors.templates_visible_to(actor).filter(pk=template.pk).exists():
        raise not_found("template")
    residence = entrance.building.residence
    if round is not None:
        if not selectors.rounds_visible_to(actor).filter(pk=round.pk).exists():
            raise not_found("round")
        if round.residence_id != residence.id:
            raise ServiceError("This round is for another residence.", field="round")
        if round.status == RoundStatus.CANCELLED:
            raise ServiceError("This round was cancelled.", code="cancelled", field="round")
    if not answers:
        raise ServiceError("Answer at least one question.", code="required", field="answers")

    now = timezone.now()
    started, finished, skew = _corrected_times(started_at, finished_at, device_sent_at, now)
    questions = {q.id: q for q in template.questions.select_related("section")}
    areas = _entrance_areas(entrance)
    seen = set()
    for index, given in enumerate(answers):
        field = f"answers.{index}"
        question = questions.get(given.question)
        if question is None:
            raise ServiceError("Not a question of this questionnaire.", field=f"{field}.question")
        if given.question in seen:
            raise ServiceError("This question is answered twice.", field=f"{field}.question")
        seen.add(given.question)
        if not _valid_value(question, given.value):
            raise ServiceError("Not an answer this question takes.", field=f"{field}.value")
        if given.common_area is not None and given.common_area not in areas:
            raise ServiceError("Not a common area of this entrance.", field=f"{field}.common_area")

    policy = selectors.scoring_policy(actor.organisation_id)
    audit = Audit(
        id=audit_id,
        organisation_id=actor.organisation_id,
        residence=residence,
        entrance=entrance,
        round=round,
        template=template,
        auditor=actor,
        contractor=_cleaning_contractor(residence, timezone.localdate(finished)),
        started_at=started,
        finished_at=finished,
        device_started_at=started_at,
        device_finished_at=finished_at,
        clock_skew_seconds=skew,
        received_at=now,
        note=(note or "").strip(),
    )
    try:
        with transaction.atomic():
            audit.save(force_insert=True)
    except IntegrityError as exc:
        raise conflict("This id is already used.", "id_in_use") from exc
    rows = [
        AuditAnswer(
            audit=audit,
            question=questions[given.question],
            common_area_id=given.common_area,
            value=given.value,
            failed=scoring.is_failed(given.value),
            comment=(given.comment or "").strip(),
        )
        for given in answers
    ]
    AuditAnswer.objects.bulk_create(rows)
    result, area_scores = answers_score(rows, cap=policy.critical_cap)
    audit.score, audit.raw_score, audit.capped = result.score, result.raw, result.capped
    audit.area_scores = area_scores
    audit.save(update_fields=["score", "raw_score", "capped", "area_scores", "updated_at"])
    _event(
        organisation_id=audit.organisation_id,
        kind=AuditEventKind.SUBMITTED,
        actor=actor,
        audit=audit,
        score=str(audit.score) if audit.score is not None else None,
        clock_skew_seconds=skew,
    )
    _verify_earlier(audit, rows, actor=actor, now=now)
    for answer in rows:
        if answer.failed:
            try:
                with transaction.atomic():
                    _corrective_ticket(audit, answer, actor=actor)
            except ServiceError as exc:
                # The audit stands even when its request cannot be filed; the history says why.
                _event(
                    organisation_id=audit.organisation_id,
                    kind=AuditEventKind.TICKET,
                    actor=actor,
                    audit=audit,
                    answer=str(answer.id),
                    error=exc.code,
                )
    if round is not None:
        _round_progress(round)
    return audit, True


def _category_for(question: TemplateQuestion, organisation_id) -> Category | None:
    codes = [question.ticket_category, "proprete"] if question.ticket_category else ["proprete"]
    for code in codes:
        category = category_by_code(organisation_id, code, in_common_areas=True)
        if category is not None:
            return category
    return None


def _description(audit: Audit, answer: AuditAnswer) -> str:
    day = timezone.localtime(audit.finished_at).strftime("%d/%m/%Y")
    text = f"Contrôle de propreté du {day} : « {answer.question.text} » non conforme."
    if answer.comment:
        text += f"\n{answer.comment}"
    return text


def _corrective_ticket(audit: Audit, answer: AuditAnswer, *, actor) -> None:
    """Open a request for a failed answer, or join the one open about it at this entrance."""
    question = answer.question
    category = _category_for(question, audit.organisation_id)
    if category is None:
        return
    open_ticket = (
        Ticket.objects.filter(
            organisation_id=audit.organisation_id,
            source=Source.AUDIT,
            category=category,
            entrance=audit.entrance,
            status__in=OPEN_STATUSES,
        )
        .order_by("-created_at")
        .first()
    )
    joined = open_ticket is not None
    if joined:
        ticket = open_ticket
        tickets.ticket_comment_add(
            ticket=ticket, actor=actor, text=_description(audit, answer), public=False
        )
    else:
        place = {"entrance": audit.entrance}
        if answer.common_area_id is not None:
            place = {"common_area": answer.common_area}
        ticket = tickets.ticket_create(
            actor=actor,
            source=Source.AUDIT,
            category=category,
            description=_description(audit, answer),
            # Hygiene and safety failures run on the continuous clock; the rest on working hours.
            priority="urgent" if question.critical else None,
            **place,
        )
        _route(ticket, question, audit, actor=actor)
    answer.ticket = ticket
    answer.save(update_fields=["ticket", "updated_at"])
    _event(
        organisation_id=audit.organisation_id,
        kind=AuditEventKind.TICKET,
        actor=actor,
        audit=audit,
        answer=str(answer.id),
        ticket=str(ticket.id),
        joined=joined,
    )


def _route(ticket: Ticket, question: TemplateQuestion, audit: Audit, *, actor) -> None:
    """Hand the request to the party the question names when routing left it unassigned."""
    if ticket.assigned_contractor_id or ticket.assigned_team_id:
        return
    if question.responsible == ResponsibleParty.CLEANING_CONTRACTOR and audit.contractor_id:
        tickets.ticket_assign(ticket=ticket, actor=actor, contractor=audit.contractor)
    elif question.responsible == ResponsibleParty.TECHNICIAN:
        sector = (
            TeamSector.objects.filter(residence_id=audit.residence_id)
            .select_related("team")
            .order_by("created_at")
            .first()
        )
        if sector is not None:
            tickets.ticket_assign(ticket=ticket, actor=actor, team=sector.team)
    # Caretaker items stay with the residence's caretakers, who are told of every new request.


def _verify_earlier(audit: Audit, rows: list[AuditAnswer], *, actor, now) -> None:
    """Earlier failures found compliant again are verified; resolved requests get closed."""
    passed = {a.question.code for a in rows if not a.failed and a.value != "na"}
    if not passed:
        return
    earlier = (
        AuditAnswer.objects.filter(
            audit__entrance=audit.entrance,
            audit__finished_at__lt=audit.finished_at,
            failed=True,
            verified_at__isnull=True,
            question__code__in=passed,
        )
        .exclude(audit=audit)
        .select_related("ticket", "audit")
    )
    closed = set()
    for answer in earlier:
        answer.verified_at = now
        answer.verified_by = audit
        answer.save(update_fields=["verified_at", "verified_by", "updated_at"])
        ticket = answer.ticket
        if ticket is not None and ticket.status == Status.RESOLVED and ticket.id not in closed:
            tickets.ticket_transition(
                ticket=ticket,
                actor=actor,
                to_status=Status.CLOSED,
                note="Vérifié lors d'un contrôle de propreté.",
            )
            closed.add(ticket.id)
        _event(
            organisation_id=audit.organisation_id,
            kind=AuditEventKind.VERIFIED,
            actor=actor,
            audit=answer.audit,
            answer=str(answer.id),
            verified_by=str(audit.id),
        )


def _round_progress(round: AuditRound) -> None:
    targets = set(round.targets.values_list("entrance_id", flat=True))
    done = set(round.audits.values_list("entrance_id", flat=True))
    status = RoundStatus.DONE if targets and targets <= done else RoundStatus.IN_PROGRESS
    if round.status != status:
        round.status = status
        round.save(update_fields=["status", "updated_at"])


# --- photos -------------------------------------------------------------------------------------


@transaction.atomic
def audit_photo_add(
    *, audit: Audit, answer: AuditAnswer, actor, upload, client_id: uuid.UUID | None = None
) -> tuple[AuditPhoto, bool]:
    """Attach a photo to an answer (checked and stripped like request photos); resumable by id."""
    if actor.role not in selectors.AUDITOR_ROLES:
        raise refused("Your role does not audit.")
    if answer.audit_id != audit.id:
        raise not_found("answer")
    if client_id is not None:
        existing = AuditPhoto.objects.filter(pk=client_id).first()
        if existing is not None:
            if existing.answer_id != answer.id:
                raise conflict("This id is already used.", "id_in_use")
            return existing, False
    if answer.photos.count() >= MAX_PHOTOS_PER_ANSWER:
        raise ServiceError(
            f"At most {MAX_PHOTOS_PER_ANSWER} photos per answer.", code="too_many", field="image"
        )
    clean = clean_photo(upload)
    photo = AuditPhoto(id=client_id or uuid.uuid4(), audit=audit, answer=answer, uploaded_by=actor)
    store_photo(photo, clean)
    if answer.ticket_id is not None:
        _copy_to_ticket(answer.ticket, photo, clean)
    _event(
        organisation_id=audit.organisation_id,
        kind=AuditEventKind.PHOTO,
        actor=actor,
        audit=audit,
        photo=str(photo.id),
        answer=str(answer.id),
    )
    return photo, True


def _copy_to_ticket(ticket: Ticket, photo: AuditPhoto, clean) -> None:
    """The corrective request shows the same photo, cleaned once (skipped when it already has
    its fill)."""
    try:
        with transaction.atomic():
            tickets.ticket_photo_add(ticket=ticket, actor=None, clean=clean, client_id=photo.id)
    except ServiceError:
        return


def photos_missing(audit: Audit) -> list[str]:
    """Failed answers still waiting for the photo their question asks for."""
    return [
        str(answer.id)
        for answer in audit.answers.filter(failed=True, question__photo_required=True)
        if not answer.photos.exists()
    ]


# --- countersigning -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Dispute:
    """An answer the contractor's representative does not accept, and why."""

    answer: uuid.UUID
    note: str = ""


@transaction.atomic
def audit_countersign(*, audit: Audit, actor, disputes: list[Dispute], note: str = "") -> Audit:
    """The cleaning contractor's representative signs the audit, flagging what they dispute."""
    if actor.role != Role.CONTRACTOR:
        raise refused("Only the contractor's representative countersigns.")
    audit = Audit.objects.select_for_update().get(pk=audit.pk)
    if not selectors.audits_visible_to(actor).filter(pk=audit.pk).exists():
        raise not_found()
    member = ContractorMember.objects.filter(user=actor, contractor_id=audit.contractor_id)
    if audit.contractor_id is None or not member.exists():
        raise refused("This audit is about another contractor's work.")
    if audit.status != AuditStatus.SUBMITTED:
        raise conflict("This audit is already countersigned.", "already_countersigned")
    answers = {a.id: a for a in audit.answers.all()}
    for index, dispute in enumerate(disputes):
        answer = answers.get(dispute.answer)
        if answer is None:
            raise ServiceError("Not an answer of this audit.", field=f"disputes.{index}.answer")
        answer.disputed = True
        answer.dispute_note = (dispute.note or "").strip()
        answer.save(update_fields=["disputed", "dispute_note", "updated_at"])
    audit.status = AuditStatus.DISPUTED if disputes else AuditStatus.COUNTERSIGNED
    audit.countersigned_by = actor
    audit.countersigned_at = timezone.now()
    audit.countersign_note = (note or "").strip()
    audit.save(
        update_fields=[
            "status",
            "countersigned_by",
            "countersigned_at",
            "countersign_note",
            "updated_at",
        ]
    )
    _event(
        organisation_id=audit.organisation_id,
        kind=AuditEventKind.COUNTERSIGNED,
        actor=actor,
        audit=audit,
        disputed=[str(d.answer) for d in disputes],
    )
    return audit


# --- settling disputes --------------------------------------------------------------------------

SETTLE_NOTE = "Contestation du prestataire acceptée : élément jugé conforme."


def _overturned_value(question: TemplateQuestion, value: str | None) -> str:
    if not value:
        return "compliant" if question.answer_type == AnswerType.COMPLIANCE else "3"
    if not _valid_value(question, value) or scoring.is_failed(value):
        raise ServiceError("An overturned item is compliant or not applicable.", field="value")
    return value


def _withdraw_correction(audit: Audit, answer: AuditAnswer, *, actor, reason: str) -> dict:
    """Close the request an overturned item opened, unless other failures still need it."""
    ticket = answer.ticket
    if ticket is None:
        return {}
    still_needed = (
        AuditAnswer.objects.filter(ticket=ticket, failed=True, verified_at__isnull=True)
        .exclude(pk=answer.pk)
        .exists()
    )
    if still_needed:
        return {"ticket": str(ticket.id), "ticket_kept": True}
    if ticket.status not in OPEN_STATUSES:
        return {"ticket": str(ticket.id), "ticket_status": ticket.status}
    note = SETTLE_NOTE + (f" {reason}" if reason else "")
    try:
        with transaction.atomic():
            tickets.ticket_transition(
                ticket=ticket, actor=actor, to_status=Status.CLOSED, note=note, public=False
            )
    except ServiceError as exc:
        # The settlement stands; the history says why the request is still open.
        return {"ticket": str(ticket.id), "ticket_error": exc.code}
    return {"ticket": str(ticket.id), "ticket_status": Status.CLOSED}


@transaction.atomic
def audit_dispute_settle(
    *,
    audit: Audit,
    answer_id: uuid.UUID,
    actor,
    outcome: str,
    reason: str,
    value: str | None = None,
) -> Audit:
    """Settle a disputed item: upheld it stays failed; overturned it is rescored as compliant.

    An overturned item's corrective request is closed with a note (unless another failed
    item shares it); the audit is countersigned again once no disputed item is left.
    """
    if actor.role not in selectors.AUDITOR_ROLES:
        raise refused("Your role does not settle disputes.")
    if not selectors.audits_visible_to(actor).filter(pk=audit.pk).exists():
        raise not_found()
    audit = Audit.objects.select_for_update().get(pk=audit.pk)
    answer = (
        AuditAnswer.objects.select_for_update(of=("self",))
        .select_related("question__section", "ticket")
        .filter(audit=audit, pk=answer_id)
        .first()
    )
    if answer is None:
        raise not_found("answer")
    if not answer.disputed:
        raise conflict("This item is not disputed.", "not_disputed")
    if answer.settled_at is not None:
        raise conflict("This dispute is already settled.", "already_settled")
    if outcome not in DisputeOutcome.values:
        raise ServiceError("Upheld or overturned.", field="outcome")
    reason = (reason or "").strip()
    if not reason:
        raise ServiceError("Say why.", code="required", field="reason")
    data: dict = {"answer": str(answer.id), "outcome": outcome, "reason": reason}
    if outcome == DisputeOutcome.OVERTURNED:
        new_value = _overturned_value(answer.question, value)
        answer.original_value = answer.value
        answer.value = new_value
        answer.failed = scoring.is_failed(new_value)
        data |= {"from_value": answer.original_value, "to_value": new_value}
    elif value:
        raise ServiceError("Only an overturned item takes a new value.", field="value")
    answer.dispute_outcome = outcome
    answer.dispute_reason = reason
    answer.settled_at = timezone.now()
    answer.settled_by = actor
    answer.save()
    if outcome == DisputeOutcome.OVERTURNED:
        policy = selectors.scoring_policy(audit.organisation_id)
        rows = list(audit.answers.select_related("question__section"))
        result, area_scores = answers_score(rows, cap=policy.critical_cap)
        data |= {"from_score": str(audit.score) if audit.score is not None else None}
        audit.score, audit.raw_score, audit.capped = result.score, result.raw, result.capped
        audit.area_scores = area_scores
        data |= {"to_score": str(audit.score) if audit.score is not None else None}
        data |= _withdraw_correction(audit, answer, actor=actor, reason=reason)
    left = audit.answers.filter(disputed=True, settled_at__isnull=True).exists()
    if not left and audit.status == AuditStatus.DISPUTED:
        audit.status = AuditStatus.COUNTERSIGNED
    audit.save(
        update_fields=["score", "raw_score", "capped", "area_scores", "status", "updated_at"]
    )
    _event(
        organisation_id=audit.organisation_id,
        kind=AuditEventKind.SETTLED,
        actor=actor,
        audit=audit,
        **data,
    )
    return audit


# --- scoring policy -----------------------------------------------------------------------------


@transaction.atomic
def scoring_policy_update(*, actor, **changes) -> ScoringPolicy:
    """Change the organisation's thresholds and critical cap; each change is versioned."""
    if actor.role not in selectors.POLICY_WRITER_ROLES or actor.organisation_id is None:
        raise refused("Only a manager changes the scoring thresholds.")
    fields = ("penalty_below", "bonus_from", "critical_cap")
    unknown = set(changes) - set(fields)
    if unknown:
        raise ServiceError("Unknown setting.", field=sorted(unknown)[0])
    policy = ScoringPolicy.objects.select_for_update().filter(
        organisation_id=actor.organisation_id
    ).first() or ScoringPolicy(organisation_id=actor.organisation_id)
    before = {name: f"{Decimal(getattr(policy, name)):.2f}" for name in fields}
    for name, value in changes.items():
        try:
            value = Decimal(str(value)).quantize(Decimal("0.01"))
        except (InvalidOperation, ValueError):
            raise ServiceError("A number between 0 and 100.", field=name) from None
        if not Decimal(0) <= value <= Decimal(100):
            raise ServiceError("Between 0 and 100.", field=name)
        setattr(policy, name, value)
    if Decimal(policy.penalty_below) >= Decimal(policy.bonus_from):
        raise ServiceError(
            "The penalty threshold is below the bonus threshold.", field="penalty_below"
        )
    after = {name: f"{Decimal(getattr(policy, name)):.2f}" for name in fields}
    if after == before:
        return policy
    policy.version += 1
    policy.updated_by = actor
    try:
        with transaction.atomic():
            policy.save()
    except IntegrityError as exc:
        # Two first changes at once: the other one won; this one is sent again.
        raise conflict("The thresholds changed meanwhile; try again.") from exc
    _event(
        organisation_id=policy.organisation_id,
        kind=AuditEventKind.POLICY_CHANGED,
        actor=actor,
        version=policy.version,
        before=before,
        after=after,
    )
    return policy


# --- rounds -------------------------------------------------------------------------------------


def _recently_failed(residence: Residence, now: dt.datetime) -> set[str]:
    policy = selectors.scoring_policy(residence.organisation_id)
    latest = {}
    audits = Audit.objects.filter(
        residence=residence, finished_at__gte=now - RECENT_FAILURE_WINDOW
    ).order_by("entrance_id", "-finished_at")
    for audit in audits.only("entrance_id", "score", "capped"):
        latest.setdefault(audit.entrance_id, audit)
    return {
        str(entrance_id)
        for entrance_id, audit in latest.items()
        if audit.capped or (audit.score is not None and audit.score < policy.penalty_below)
    }


def round_replay(round: AuditRound) -> sampling.Draw:
    """Draw the round's entrances again from its stored inputs (same seed, same result)."""
    selection = round.selection
    return sampling.draw(
        entrances=selection.get("entrances", []),
        covered=set(selection.get("covered", [])),
        recently_failed=set(selection.get("recently_failed", [])),
        size=round.sample_size,
        seed=round.seed,
    )


@transaction.atomic
def round_plan(
    *,
    actor,
    residence: Residence,
    period_start: dt.date,
    period_end: dt.date,
    planned_for: dt.date | None = None,
    assignee=None,
    sample_size: int | None = None,
    seed: int | None = None,
) -> AuditRound:
    """Plan a round of a residence and draw the entrances it inspects."""
    if actor is not None and actor.role not in selectors.AUDITOR_ROLES:
        raise refused("Your role does not plan audit rounds.")
    if (
        actor is not None
        and not estate.residences_visible_to(actor).filter(pk=residence.pk).exists()
    ):
        raise not_found("residence")
    if period_end < period_start:
        raise ServiceError("The period ends before it starts.", field="period_end")
    if period_end - period_start > MAX_PERIOD:
        raise ServiceError("A round's period is at most a year.", field="period_end")
    planned_for = planned_for or period_start
    if not period_start <= planned_for <= period_end:
        raise ServiceError("Plan the round within its period.", field="planned_for")
    if assignee is not None and (
        assignee.organisation_id != residence.organisation_id
        or assignee.role not in selectors.AUDITOR_ROLES
        or not estate.residences_visible_to(assignee).filter(pk=residence.pk).exists()
    ):
        raise ServiceError("This person does not audit this residence.", field="assignee")
    # One planner at a time per residence, so two rounds never draw from the same cycle state.
    Residence.objects.select_for_update().filter(pk=residence.pk).first()
    entrances = [
        str(e)
        for e in Entrance.objects.filter(building__residence=residence).values_list("id", flat=True)
    ]
    if not entrances:
        raise ServiceError("This residence has no entrance to inspect.", field="residence")
    size = sample_size or sampling.sample_size_for(len(entrances))
    size = max(1, min(size, len(entrances)))
    rounds = AuditRound.objects.filter(residence=residence).exclude(status=RoundStatus.CANCELLED)
    cycle = rounds.aggregate(last=Max("cycle"))["last"] or 0
    covered = {
        str(e)
        for e in RoundTarget.objects.filter(round__in=rounds.filter(cycle=cycle)).values_list(
            "entrance_id", flat=True
        )
    }
    failed = _recently_failed(residence, timezone.now())
    seed = seed if seed is not None else secrets.randbits(62)
    result = sampling.draw(
        entrances=entrances, covered=covered, recently_failed=failed, size=size, seed=seed
    )
    if cycle == 0 or result.new_cycle:
        cycle += 1
        covered = set() if result.new_cycle else covered
    round = AuditRound.objects.create(
        organisation_id=residence.organisation_id,
        residence=residence,
        period_start=period_start,
        period_end=period_end,
        planned_for=planned_for,
        assignee=assignee,
        seed=seed,
        cycle=cycle,
        sample_size=size,
        selection={
            "method": "en13549-cycle-v1",
            "entrances": sorted(entrances),
            "covered": sorted(covered if not result.new_cycle else set(entrances)),
            "recently_failed": sorted(failed),
            "picks": [entrance for entrance, _ in result.picks],
        },
        created_by=actor,
    )
    RoundTarget.objects.bulk_create(
        RoundTarget(round=round, entrance_id=entrance, reason=reason, position=position)
        for position, (entrance, reason) in enumerate(result.picks)
    )
    _event(
        organisation_id=round.organisation_id,
        kind=AuditEventKind.ROUND_PLANNED,
        actor=actor,
        round=round,
        seed=seed,
        cycle=cycle,
    )
    return round


@transaction.atomic
def round_cancel(*, round: AuditRound, actor) -> AuditRound:
    """Cancel a round not walked yet; its entrances return to the cycle's pool."""
    if actor.role not in selectors.AUDITOR_ROLES:
        raise refused("Your role does not plan audit rounds.")
    if not selectors.rounds_visible_to(actor).filter(pk=round.pk).exists():
        raise not_found()
    if round.status != RoundStatus.PLANNED:
        raise conflict("Only a round not started yet can be cancelled.", "round_started")
    round.status = RoundStatus.CANCELLED
    round.save(update_fields=["status", "updated_at"])
    _event(
        organisation_id=round.organisation_id,
        kind=AuditEventKind.ROUND_CANCELLED,
        actor=actor,
        round=round,
    )
    return round


# --- tenants' survey ----------------------------------------------------------------------------


def week_of(day: dt.date) -> dt.date:
    """Monday of the day's week."""
    return day - dt.timedelta(days=day.weekday())


@transaction.atomic
def survey_answer(
    *, respondent, entrance: Entrance, rating: int, channel: str = SurveyChannel.APP
) -> tuple[SurveyResponse, bool]:
    """Record a tenant's rating of their entrance this week (a second answer replaces the first)."""
    if respondent.role != Role.TENANT:
        raise refused("The survey is for tenants.")
    if not estate.entrances_visible_to(respondent).filter(pk=entrance.pk).exists():
        raise not_found("entrance")
    if not 1 <= rating <= 4:
        raise ServiceError("Choose one of the four faces (1 to 4).", field="rating")
    response, created = SurveyResponse.objects.update_or_create(
        entrance=entrance,
        respondent=respondent,
        week=week_of(timezone.localdate()),
        defaults={
            "organisation_id": entrance.organisation_id,
            "rating": rating,
            "channel": channel,
        },
    )
    return response, created


SURVEY_EPOCH = dt.date(2020, 1, 1)
SURVEY_MAC_BYTES = 8


def _survey_mac(payload: bytes) -> bytes:
    return salted_hmac(SURVEY_SALT, payload).digest()[:SURVEY_MAC_BYTES]


def survey_token(*, person, entrance: Entrance, day: dt.date | None = None) -> str:
    """The credential of a no-login survey link sent by SMS to one tenant for one entrance.

    Packed (two ids, the day issued, a 64-bit MAC: 56 characters) so the SMS carrying the
    link stays within one segment.
    """
    day = day or timezone.localdate()
    payload = (
        uuid.UUID(str(person.pk)).bytes
        + uuid.UUID(str(entrance.pk)).bytes
        + (day - SURVEY_EPOCH).days.to_bytes(2, "big")
    )
    return base64.urlsafe_b64encode(payload + _survey_mac(payload)).decode().rstrip("=")


def _survey_token_ids(token: str) -> tuple[str, str]:
    """The person and entrance ids of a packed token, or of a signed one sent before it."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (ValueError, TypeError):
        raw = b""
    if len(raw) == 34 + SURVEY_MAC_BYTES:
        payload, mac = raw[:34], raw[34:]
        if not hmac.compare_digest(mac, _survey_mac(payload)):
            raise signing.BadSignature()
        issued = SURVEY_EPOCH + dt.timedelta(days=int.from_bytes(payload[32:], "big"))
        if timezone.localdate() - issued > SURVEY_LINK_AGE or issued > timezone.localdate():
            raise signing.SignatureExpired()
        return str(uuid.UUID(bytes=payload[:16])), str(uuid.UUID(bytes=payload[16:32]))
    data = signing.loads(token, salt=SURVEY_SALT, max_age=SURVEY_LINK_AGE.total_seconds())
    return data["p"], data["e"]


def survey_token_read(token: str) -> tuple:
    """The person and entrance a survey link is for (404 when forged or expired)."""
    from django.contrib.auth import get_user_model

    try:
        person_id, entrance_id = _survey_token_ids(token)
        person = get_user_model().objects.get(pk=person_id, is_active=True)
        entrance = Entrance.objects.get(pk=entrance_id)
    except (
        signing.BadSignature,
        KeyError,
        TypeError,
        ValueError,
        ObjectDoesNotExist,
        ValidationError,
    ):
        raise not_found() from None
    return person, entrance


def survey_url(*, person, entrance: Entrance) -> str:
    """The no-login survey link of one tenant for one entrance."""
    from django.conf import settings

    token = survey_token(person=person, entrance=entrance)
    return f"{settings.PUBLIC_BASE_URL.rstrip('/')}/api/v1/cleanliness-surveys/sms/{token}/"


def entrance_tenants(entrance: Entrance, day: dt.date) -> list:
    """The household members living at the entrance on `day`."""
    from api.estate.models import HouseholdMember

    members = HouseholdMember.objects.filter(
        estate.current_lease_q(day, "lease__"), lease__dwelling__entrance=entrance
    ).select_related("person")
    return [m.person for m in members if m.person.is_active]


@transaction.atomic
def survey_invitations_send(*, entrance: Entrance, actor=None) -> int:
    """Send this week's one-question survey by SMS link to the entrance's tenants not yet asked."""
    from api.notifications.services import notify

    if actor is not None:
        if actor.role not in selectors.AUDITOR_ROLES:
            raise refused("Your role does not send surveys.")
        if not estate.entrances_visible_to(actor).filter(pk=entrance.pk).exists():
            raise not_found("entrance")
    today = timezone.localdate()
    week = week_of(today)
    answered = set(
        SurveyResponse.objects.filter(entrance=entrance, week=week).values_list(
            "respondent_id", flat=True
        )
    )
    sent = 0
    for person in entrance_tenants(entrance, today):
        if person.pk in answered:
            continue
        url = survey_url(person=person, entrance=entrance)
        created = notify(
            recipients=[person],
            event="cleanliness.survey",
            context={"url": url, "entrance_id": str(entrance.pk)},
            deep_link="cleanliness-surveys",
            dedupe_key=f"survey:{entrance.pk}:{week.isoformat()}",
            actor=actor,
        )
        sent += len(created)
    return sent


def survey_invitations_weekly() -> int:
    """Invite the tenants of every entrance audited in the past week."""
    since = timezone.now() - dt.timedelta(days=7)
    entrance_ids = (
        Audit.objects.filter(finished_at__gte=since)
        .values_list("entrance_id", flat=True)
        .distinct()
    )
    total = 0
    for entrance in Entrance.objects.filter(pk__in=list(entrance_ids)):
        total += survey_invitations_send(entrance=entrance)
    return total


@transaction.atomic
def template_revise(*, actor, template: AuditTemplate, sections: list[dict], name: str = ""):
    """Publish a new version of a questionnaire for the actor's organisation.

    The new version becomes the one new audits use; every earlier version stays, unchanged,
    with the audits answered on it.
    """
    if actor.role not in selectors.TEMPLATE_WRITER_ROLES:
        raise refused("Only a manager changes the questionnaire.")
    if not selectors.templates_visible_to(actor).filter(pk=template.pk).exists():
        raise not_found()
    codes = [q["code"] for section in sections for q in section["questions"]]
    if len(codes) != len(set(codes)):
        raise ServiceError("Each question needs its own code.", field="sections")
    family = AuditTemplate.objects.select_for_update().filter(code=template.code)
    last = family.filter(
        Q(organisation__isnull=True) | Q(organisation_id=actor.organisation_id)
    ).aggregate(last=Max("version"))["last"]
    family.filter(organisation_id=actor.organisation_id).update(is_current=False)
    revised = AuditTemplate.objects.create(
        organisation_id=actor.organisation_id,
        code=template.code,
        version=(last or 0) + 1,
        name=(name or template.name).strip(),
        is_current=True,
        created_by=actor,
    )
    for position, section in enumerate(sections):
        row = TemplateSection.objects.create(
            template=revised,
            area_kind=section["area_kind"],
            title=section["title"],
            position=position,
        )
        TemplateQuestion.objects.bulk_create(
            TemplateQuestion(
                template=revised,
                section=row,
                position=q_position,
                code=question["code"],
                text=question["text"],
                answer_type=question["answer_type"],
                weight=question.get("weight", 1),
                critical=question.get("critical", False),
                responsible=question["responsible"],
                photo_required=question.get("photo_required", True),
                ticket_category=question.get("ticket_category", ""),
            )
            for q_position, question in enumerate(section["questions"])
        )
    return revised
