"""Cleanliness audits of common areas: questionnaires, rounds, answers, photos and surveys."""

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q

from api.core.models import BaseModel
from api.estate.models import CommonAreaKind

NOTE_MAX_LENGTH = 1000


class AnswerType(models.TextChoices):
    COMPLIANCE = "compliance", "Compliant / not compliant / not applicable"
    SCALE = "scale", "Scale 0 (very dirty) to 3 (clean)"


class AnswerValue(models.TextChoices):
    COMPLIANT = "compliant", "Compliant"
    NOT_COMPLIANT = "not_compliant", "Not compliant"
    NOT_APPLICABLE = "na", "Not applicable"
    SCALE_0 = "0", "0 - very dirty"
    SCALE_1 = "1", "1 - dirty"
    SCALE_2 = "2", "2 - acceptable"
    SCALE_3 = "3", "3 - clean"


COMPLIANCE_VALUES = frozenset(
    {AnswerValue.COMPLIANT, AnswerValue.NOT_COMPLIANT, AnswerValue.NOT_APPLICABLE}
)
SCALE_VALUES = frozenset(
    {
        AnswerValue.SCALE_0,
        AnswerValue.SCALE_1,
        AnswerValue.SCALE_2,
        AnswerValue.SCALE_3,
        AnswerValue.NOT_APPLICABLE,
    }
)


class ResponsibleParty(models.TextChoices):
    CLEANING_CONTRACTOR = "cleaning_contractor", "Cleaning contractor"
    CARETAKER = "caretaker", "Caretaker"
    TECHNICIAN = "technician", "Technician"


class AuditTemplate(BaseModel):
    """One version of a questionnaire; `organisation` empty means Palier's standard one."""

    organisation = models.ForeignKey(
        "estate.Organisation",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="audit_templates",
    )
    code = models.SlugField(max_length=60)
    version = models.PositiveSmallIntegerField(default=1)
    name = models.CharField(max_length=200, help_text="In French.")
    is_current = models.BooleanField(
        default=True, help_text="The version new audits use; older ones stay for their audits."
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["code", "-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "code", "version"], name="audit_template_version_unique"
            ),
            models.UniqueConstraint(
                fields=["code", "version"],
                condition=Q(organisation__isnull=True),
                name="audit_template_standard_version_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"


class TemplateSection(BaseModel):
    """A part of a questionnaire about one kind of common area."""

    template = models.ForeignKey(AuditTemplate, on_delete=models.CASCADE, related_name="sections")
    area_kind = models.CharField(max_length=20, choices=CommonAreaKind.choices)
    title = models.CharField(max_length=200)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position"]

    def __str__(self) -> str:
        return self.title


class TemplateQuestion(BaseModel):
    """One question of a questionnaire version."""

    template = models.ForeignKey(AuditTemplate, on_delete=models.CASCADE, related_name="questions")
    section = models.ForeignKey(TemplateSection, on_delete=models.CASCADE, related_name="questions")
    code = models.SlugField(max_length=60, help_text="Stable across versions.")
    text = models.CharField(max_length=300, help_text="In French.")
    answer_type = models.CharField(max_length=12, choices=AnswerType.choices)
    weight = models.PositiveSmallIntegerField(
        default=1, validators=[MinValueValidator(1), MaxValueValidator(10)]
    )
    critical = models.BooleanField(
        default=False, help_text="A failure caps the audit's score (hygiene or safety)."
    )
    responsible = models.CharField(max_length=30, choices=ResponsibleParty.choices)
    photo_required = models.BooleanField(
        default=True, help_text="A photo is expected when the answer is not compliant."
    )
    ticket_category = models.SlugField(
        max_length=60, blank=True, help_text="Code of the request category a failure opens."
    )
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["section__position", "position"]
        constraints = [
            models.UniqueConstraint(fields=["template", "code"], name="audit_question_code_unique"),
            models.CheckConstraint(
                condition=Q(weight__gte=1) & Q(weight__lte=10), name="audit_question_weight_range"
            ),
        ]

    def __str__(self) -> str:
        return self.code


class RoundStatus(models.TextChoices):
    PLANNED = "planned", "Planned"
    IN_PROGRESS = "in_progress", "In progress"
    DONE = "done", "Done"
    CANCELLED = "cancelled", "Cancelled"


class AuditRound(BaseModel):
    """A planned inspection round of a residence, with the entrances drawn for it."""

    organisation = models.ForeignKey(
        "estate.Organisation", on_delete=models.PROTECT, related_name="audit_rounds"
    )
    residence = models.ForeignKey(
        "estate.Residence", on_delete=models.PROTECT, related_name="audit_rounds"
    )
    period_start = models.DateField()
    period_end = models.DateField()
    planned_for = models.DateField(help_text="The day the round is walked.")
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="audit_rounds",
    )
    seed = models.BigIntegerField(help_text="Seed of the draw, so it can be replayed.")
    cycle = models.PositiveIntegerField(default=1)
    sample_size = models.PositiveSmallIntegerField()
    selection = models.JSONField(
        default=dict, blank=True, help_text="The inputs of the draw (to replay it) and its result."
    )
    status = models.CharField(
        max_length=12, choices=RoundStatus.choices, default=RoundStatus.PLANNED
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-planned_for", "-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(period_end__gte=F("period_start")), name="audit_round_period_order"
            )
        ]
        indexes = [models.Index(fields=["residence", "cycle"])]

    def __str__(self) -> str:
        return f"{self.residence_id} {self.planned_for}"


class RoundTarget(BaseModel):
    """An entrance to inspect in a round, and why it was drawn."""

    round = models.ForeignKey(AuditRound, on_delete=models.CASCADE, related_name="targets")
    entrance = models.ForeignKey("estate.Entrance", on_delete=models.PROTECT, related_name="+")
    reason = models.CharField(max_length=20, help_text="cycle or recent_failure")
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position"]
        constraints = [
            models.UniqueConstraint(fields=["round", "entrance"], name="round_target_unique")
        ]

    def __str__(self) -> str:
        return f"{self.round_id} → {self.entrance_id}"


class AuditStatus(models.TextChoices):
    SUBMITTED = "submitted", "Submitted"
    COUNTERSIGNED = "countersigned", "Countersigned"
    DISPUTED = "disputed", "Countersigned with disputed items"


class Audit(BaseModel):
    """One inspection of an entrance's common areas, answered with one questionnaire version."""

    organisation = models.ForeignKey(
        "estate.Organisation", on_delete=models.PROTECT, related_name="audits"
    )
    residence = models.ForeignKey(
        "estate.Residence", on_delete=models.PROTECT, related_name="audits"
    )
    entrance = models.ForeignKey("estate.Entrance", on_delete=models.PROTECT, related_name="audits")
    round = models.ForeignKey(
        AuditRound, on_delete=models.SET_NULL, null=True, blank=True, related_name="audits"
    )
    template = models.ForeignKey(AuditTemplate, on_delete=models.PROTECT, related_name="audits")
    auditor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="audits_done"
    )
    contractor = models.ForeignKey(
        "estate.Contractor",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="audits",
        help_text="The cleaning contractor in force when the audit was done.",
    )
    started_at = models.DateTimeField(help_text="Device time, corrected for clock skew.")
    finished_at = models.DateTimeField(
        db_index=True, help_text="Device time, corrected for clock skew."
    )
    device_started_at = models.DateTimeField()
    device_finished_at = models.DateTimeField()
    clock_skew_seconds = models.IntegerField(
        default=0, help_text="Device clock minus server clock when the audit was sent."
    )
    received_at = models.DateTimeField()
    score = models.DecimalField(max_digits=5, decimal_places=2, null=True, blank=True)
    raw_score = models.DecimalField(max_digits=5, decimal_places=2, null=True, blank=True)
    capped = models.BooleanField(default=False, help_text="A critical item failed.")
    area_scores = models.JSONField(default=dict, blank=True)
    status = models.CharField(
        max_length=15, choices=AuditStatus.choices, default=AuditStatus.SUBMITTED
    )
    countersigned_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    countersigned_at = models.DateTimeField(null=True, blank=True)
    countersign_note = models.CharField(max_length=NOTE_MAX_LENGTH, blank=True)
    note = models.CharField(max_length=NOTE_MAX_LENGTH, blank=True)

    class Meta:
        ordering = ["-finished_at"]
        indexes = [
            models.Index(fields=["residence", "finished_at"]),
            models.Index(fields=["entrance", "finished_at"]),
            models.Index(fields=["contractor", "finished_at"]),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(score__isnull=True) | (Q(score__gte=0) & Q(score__lte=100)),
                name="audit_score_range",
            )
        ]

    def __str__(self) -> str:
        return f"{self.entrance_id} {self.finished_at:%Y-%m-%d}"


class DisputeOutcome(models.TextChoices):
    UPHELD = "upheld", "Upheld: the item stays not compliant"
    OVERTURNED = "overturned", "Overturned: the item was in fact compliant"


class AuditAnswer(BaseModel):
    """The answer to one question in one audit, and the corrective work it opened."""

    audit = models.ForeignKey(Audit, on_delete=models.CASCADE, related_name="answers")
    question = models.ForeignKey(TemplateQuestion, on_delete=models.PROTECT, related_name="+")
    common_area = models.ForeignKey(
        "estate.CommonArea", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    value = models.CharField(max_length=15, choices=AnswerValue.choices)
    failed = models.BooleanField(default=False)
    comment = models.CharField(max_length=NOTE_MAX_LENGTH, blank=True)
    ticket = models.ForeignKey(
        "tickets.Ticket", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    verified_at = models.DateTimeField(
        null=True, blank=True, help_text="A later audit found it compliant again."
    )
    verified_by = models.ForeignKey(
        Audit, on_delete=models.SET_NULL, null=True, blank=True, related_name="verifications"
    )
    disputed = models.BooleanField(default=False, help_text="Stays set once settled, as history.")
    dispute_note = models.CharField(max_length=NOTE_MAX_LENGTH, blank=True)
    dispute_outcome = models.CharField(
        max_length=12, choices=DisputeOutcome.choices, blank=True, help_text="Empty until settled."
    )
    dispute_reason = models.CharField(max_length=NOTE_MAX_LENGTH, blank=True)
    settled_at = models.DateTimeField(null=True, blank=True)
    settled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    original_value = models.CharField(
        max_length=15,
        choices=AnswerValue.choices,
        blank=True,
        help_text="The auditor's answer, kept when a dispute overturned it.",
    )

    class Meta:
        ordering = ["question__section__position", "question__position"]
        constraints = [
            models.UniqueConstraint(fields=["audit", "question"], name="audit_answer_unique")
        ]

    def __str__(self) -> str:
        return f"{self.question_id}: {self.value}"


def _photo_path(instance, filename: str) -> str:
    return f"audits/{instance.audit_id}/{instance.id}-{filename}"


def _thumbnail_path(instance, filename: str) -> str:
    return f"audits/{instance.audit_id}/{instance.id}-thumb-{filename}"


class AuditPhoto(BaseModel):
    """A photo of a non-compliant item, uploaded after the audit (its id comes from the phone)."""

    audit = models.ForeignKey(Audit, on_delete=models.CASCADE, related_name="photos")
    answer = models.ForeignKey(AuditAnswer, on_delete=models.CASCADE, related_name="photos")
    image = models.FileField(upload_to=_photo_path)
    thumbnail = models.FileField(upload_to=_thumbnail_path)
    content_type = models.CharField(max_length=30)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    size = models.PositiveIntegerField()
    taken_at = models.DateTimeField(null=True, blank=True)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+"
    )

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return str(self.id)


class AuditEventKind(models.TextChoices):
    SUBMITTED = "submitted", "Submitted"
    PHOTO = "photo", "Photo added"
    TICKET = "ticket", "Corrective request opened or joined"
    VERIFIED = "verified", "Correction verified"
    COUNTERSIGNED = "countersigned", "Countersigned"
    ROUND_PLANNED = "round_planned", "Round planned"
    ROUND_CANCELLED = "round_cancelled", "Round cancelled"
    SETTLED = "settled", "Dispute settled"
    POLICY_CHANGED = "policy_changed", "Scoring policy changed"
    REPORT_STORED = "report_stored", "Monthly report stored"


class AuditEvent(BaseModel):
    """Append-only history of audits and rounds."""

    organisation = models.ForeignKey(
        "estate.Organisation", on_delete=models.PROTECT, related_name="+"
    )
    audit = models.ForeignKey(
        Audit, on_delete=models.CASCADE, null=True, blank=True, related_name="events"
    )
    round = models.ForeignKey(
        AuditRound, on_delete=models.CASCADE, null=True, blank=True, related_name="events"
    )
    kind = models.CharField(max_length=20, choices=AuditEventKind.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return self.kind


class ScoringPolicy(BaseModel):
    """An organisation's contract thresholds: a month below `penalty_below` costs a penalty."""

    organisation = models.OneToOneField(
        "estate.Organisation", on_delete=models.CASCADE, related_name="audit_policy"
    )
    penalty_below = models.DecimalField(max_digits=5, decimal_places=2, default=70)
    bonus_from = models.DecimalField(max_digits=5, decimal_places=2, default=90)
    critical_cap = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        default=50,
        help_text="Highest score with a failed critical.",
    )
    version = models.PositiveIntegerField(default=1, help_text="Raised by every change.")
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        verbose_name_plural = "scoring policies"
        constraints = [
            models.CheckConstraint(
                condition=Q(penalty_below__lte=F("bonus_from")), name="audit_policy_order"
            )
        ]

    def __str__(self) -> str:
        return f"{self.organisation_id}: <{self.penalty_below} / ≥{self.bonus_from}"


class SurveyChannel(models.TextChoices):
    APP = "app", "App"
    SMS = "sms", "SMS link"


class SurveyResponse(BaseModel):
    """A tenant's pictogram answer to "how clean is your staircase this week?" (1 to 4)."""

    organisation = models.ForeignKey(
        "estate.Organisation", on_delete=models.PROTECT, related_name="+"
    )
    entrance = models.ForeignKey(
        "estate.Entrance", on_delete=models.PROTECT, related_name="cleanliness_surveys"
    )
    respondent = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    week = models.DateField(help_text="Monday of the week answered.")
    rating = models.PositiveSmallIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(4)]
    )
    channel = models.CharField(max_length=5, choices=SurveyChannel.choices)

    class Meta:
        ordering = ["-week", "-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["entrance", "respondent", "week"], name="survey_one_per_week"
            ),
            models.CheckConstraint(
                condition=Q(rating__gte=1) & Q(rating__lte=4), name="survey_rating_range"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.entrance_id} {self.week}: {self.rating}"


class ReportSubject(models.TextChoices):
    RESIDENCE = "residence", "Residence"
    CONTRACTOR = "contractor", "Cleaning contractor"


def _report_path(instance, filename: str) -> str:
    return f"audits/reports/{instance.organisation_id}/{instance.period:%Y-%m}/{filename}"


class AuditReport(BaseModel):
    """A monthly PDF rendered ahead of time for one residence or one contractor."""

    organisation = models.ForeignKey(
        "estate.Organisation", on_delete=models.PROTECT, related_name="+"
    )
    period = models.DateField(help_text="First day of the month reported.")
    subject = models.CharField(max_length=12, choices=ReportSubject.choices)
    residence = models.ForeignKey(
        "estate.Residence", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    contractor = models.ForeignKey(
        "estate.Contractor", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    file = models.FileField(upload_to=_report_path)
    size = models.PositiveIntegerField(default=0)
    audits = models.PositiveIntegerField(default=0, help_text="Audits of the month it covers.")
    residences = models.JSONField(
        default=list,
        blank=True,
        help_text="Ids of the residences it covers: only those who see them all get it.",
    )

    class Meta:
        ordering = ["-period", "subject"]
        constraints = [
            models.UniqueConstraint(
                fields=["period", "residence"],
                condition=Q(subject="residence"),
                name="audit_report_residence_unique",
            ),
            models.UniqueConstraint(
                fields=["period", "contractor"],
                condition=Q(subject="contractor"),
                name="audit_report_contractor_unique",
            ),
            models.CheckConstraint(
                condition=(Q(subject="residence", residence__isnull=False, contractor__isnull=True))
                | (Q(subject="contractor", contractor__isnull=False, residence__isnull=True)),
                name="audit_report_one_subject",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.subject} {self.period:%Y-%m}"
