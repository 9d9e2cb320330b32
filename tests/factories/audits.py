"""Factories for questionnaires, audits, rounds and tenants' survey answers."""

import datetime as dt
import random
import uuid

import factory
from django.utils import timezone
from factory.django import DjangoModelFactory

from api.audits.models import (
    Audit,
    AuditRound,
    AuditTemplate,
    RoundTarget,
    SurveyResponse,
    TemplateQuestion,
    TemplateSection,
)
from api.audits.standard_template import seed_cleanliness_categories, seed_standard_template
from api.tickets.models import Category, TicketCounter
from tests.factories.tickets import ensure_standard_tree


def standard_template() -> AuditTemplate:
    """The standard questionnaire (seeded again when a transactional test flushed it)."""
    ensure_standard_tree()
    seed_cleanliness_categories(Category)
    return seed_standard_template(AuditTemplate, TemplateSection, TemplateQuestion)


def answers_body(template: AuditTemplate, values: dict | None = None, default="compliant"):
    """An answer to every question: `values` by question code, else compliant (or 3)."""
    values = values or {}
    body = []
    for question in template.questions.order_by("section__position", "position"):
        value = values.get(question.code, default)
        if question.answer_type == "scale" and value == "compliant":
            value = "3"
        if question.answer_type == "scale" and value == "not_compliant":
            value = "0"
        if question.answer_type == "compliance" and value in ("0", "1", "2", "3"):
            value = "not_compliant" if value in ("0", "1") else "compliant"
        body.append({"question": str(question.id), "value": value})
    return body


def audit_body(entrance, template=None, values=None, **extra) -> dict:
    """A whole audit as the phone sends it, finished a few minutes ago."""
    template = template or standard_template()
    now = timezone.now()
    return {
        "id": str(uuid.uuid4()),
        "entrance": str(entrance.pk),
        "started_at": (now - dt.timedelta(minutes=30)).isoformat(),
        "finished_at": (now - dt.timedelta(minutes=5)).isoformat(),
        "answers": answers_body(template, values),
        **extra,
    }


class AuditFactory(DjangoModelFactory):
    """A stored audit with a score and no answers (for lists, scores and reports)."""

    class Meta:
        model = Audit

    entrance = factory.SubFactory("tests.factories.estate.EntranceFactory")
    residence = factory.LazyAttribute(lambda o: o.entrance.building.residence)
    organisation = factory.LazyAttribute(lambda o: o.entrance.organisation)
    template = factory.LazyFunction(standard_template)
    auditor = factory.SubFactory(
        "tests.factories.accounts.UserFactory",
        role="agency_staff",
        organisation=factory.SelfAttribute("..organisation"),
    )
    finished_at = factory.LazyFunction(lambda: timezone.now() - dt.timedelta(hours=1))
    started_at = factory.LazyAttribute(lambda o: o.finished_at - dt.timedelta(minutes=20))
    device_started_at = factory.SelfAttribute("started_at")
    device_finished_at = factory.SelfAttribute("finished_at")
    received_at = factory.LazyFunction(timezone.now)
    score = 80
    raw_score = factory.SelfAttribute("score")


class RoundFactory(DjangoModelFactory):
    """A planned round of a residence (targets added with `targets=[entrance, ...]`)."""

    class Meta:
        model = AuditRound
        skip_postgeneration_save = True

    residence = factory.SubFactory("tests.factories.estate.ResidenceFactory")
    organisation = factory.LazyAttribute(lambda o: o.residence.organisation)
    period_start = factory.LazyFunction(timezone.localdate)
    period_end = factory.LazyAttribute(lambda o: o.period_start + dt.timedelta(days=30))
    planned_for = factory.SelfAttribute("period_start")
    seed = factory.LazyFunction(lambda: random.randrange(2**62))
    sample_size = 1

    @factory.post_generation
    def targets(self, create, extracted, **kwargs):
        for position, entrance in enumerate(extracted or []):
            RoundTarget.objects.create(
                round=self, entrance=entrance, reason="cycle", position=position
            )


class SurveyResponseFactory(DjangoModelFactory):
    class Meta:
        model = SurveyResponse

    entrance = factory.SubFactory("tests.factories.estate.EntranceFactory")
    organisation = factory.LazyAttribute(lambda o: o.entrance.organisation)
    respondent = factory.SubFactory(
        "tests.factories.estate.TenantFactory", organisation=factory.SelfAttribute("..organisation")
    )
    week = factory.LazyFunction(
        lambda: timezone.localdate() - dt.timedelta(days=timezone.localdate().weekday())
    )
    rating = 3
    channel = "app"


def seed_fuzz_audits(organisation, manager) -> None:
    """A round, audits with answers, a photo-less failure and survey answers for the fuzzer."""
    from api.audits import services
    from tests.factories.estate import ContractorContractFactory, place_factory

    place = place_factory(organisation=organisation)
    ContractorContractFactory(residence=place.residence, contractor__organisation=organisation)
    template = standard_template()
    # The ticket factories number requests by sequence; keep the real counter clear of them.
    TicketCounter.objects.update_or_create(
        organisation=organisation, year=timezone.localdate().year, defaults={"last": 500_000}
    )
    round = services.round_plan(
        actor=manager,
        residence=place.residence,
        period_start=timezone.localdate(),
        period_end=timezone.localdate() + dt.timedelta(days=30),
        seed=7,
    )
    body = audit_body(place.entrance, template, values={"hall-sol": "1"})
    audit, _ = services.audit_submit(
        actor=manager,
        audit_id=uuid.UUID(body["id"]),
        entrance=place.entrance,
        round=round,
        template=template,
        started_at=dt.datetime.fromisoformat(body["started_at"]),
        finished_at=dt.datetime.fromisoformat(body["finished_at"]),
        answers=[
            services.AnswerInput(question=uuid.UUID(a["question"]), value=a["value"])
            for a in body["answers"]
        ],
    )
    # A disputed item left to settle.
    audit.answers.filter(failed=True).update(disputed=True, dispute_note="Fait ce matin")
    Audit.objects.filter(pk=audit.pk).update(status="disputed")
    SurveyResponseFactory(entrance=place.entrance, respondent=place.tenant)
