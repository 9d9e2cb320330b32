"""Demo audits for `palier run`: today's round for the team leader and three past audits.

Idempotent: audits carry fixed ids (a replay returns the existing one), and the round is
planned only when the residence has none yet.
"""

import datetime as dt
import uuid

from django.utils import timezone

from api.accounts.models import User
from api.estate.demo import AGENCY_STAFF_EMAIL
from api.estate.models import ContractorContract, Entrance

from . import selectors, services
from .models import AuditRound

NAMESPACE = uuid.UUID("5d0f7c1e-2a8b-4d3e-9f61-7a2c8e4b1d90")
PAST_AUDITS = (
    (20, {"hall-sol": "1", "poubelles-bacs": "not_compliant", "graffitis": "not_compliant"}),
    (9, {"hall-sol": "2", "escalier-mains-courantes": "not_compliant"}),
    (2, {"ascenseur-sol": "1"}),
)


def seed_demo_audits(organisation) -> None:
    """Plan today's round in the residence the cleaning contractor serves; add past audits."""
    leader = User.objects.filter(email=AGENCY_STAFF_EMAIL, organisation=organisation).first()
    contract = (
        ContractorContract.objects.filter(contractor__organisation=organisation, trade="cleaning")
        .select_related("residence")
        .first()
    )
    template = selectors.template_current(organisation_id=organisation.pk)
    if leader is None or contract is None or template is None:
        return
    residence = contract.residence
    entrance = Entrance.objects.filter(building__residence=residence).order_by("reference").first()
    if entrance is None:
        return
    now = timezone.now()
    questions = list(template.questions.order_by("section__position", "position"))
    for days_ago, failures in PAST_AUDITS:
        finished = now - dt.timedelta(days=days_ago)
        answers = []
        for question in questions:
            value = "3" if question.answer_type == "scale" else "compliant"
            answers.append(
                services.AnswerInput(question=question.id, value=failures.get(question.code, value))
            )
        services.audit_submit(
            actor=leader,
            audit_id=uuid.uuid5(NAMESPACE, f"audit-{days_ago}"),
            entrance=entrance,
            template=template,
            started_at=finished - dt.timedelta(minutes=25),
            finished_at=finished,
            answers=answers,
        )
    if not AuditRound.objects.filter(residence=residence).exists():
        today = timezone.localdate()
        services.round_plan(
            actor=leader,
            residence=residence,
            period_start=today,
            period_end=today + dt.timedelta(days=6),
            assignee=leader,
            seed=2026,
        )
