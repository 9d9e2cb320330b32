"""Shapes of the audits API: serializers validate and present, they never write."""

import datetime as dt

from rest_framework import serializers

from api.estate.models import CommonAreaKind
from api.tickets.fields import SafeDateTimeField

from .models import (
    AnswerType,
    AnswerValue,
    Audit,
    AuditAnswer,
    AuditPhoto,
    AuditRound,
    AuditTemplate,
    DisputeOutcome,
    ResponsibleParty,
    RoundTarget,
    ScoringPolicy,
    SurveyResponse,
    TemplateQuestion,
    TemplateSection,
)

MAX_ANSWERS = 200
MAX_DISPUTES = 200


class DayField(serializers.DateField):
    """A calendar day between 2000 and 2199 (so any day converts to an instant safely)."""

    default_error_messages = {"range": "Give a day between 2000 and 2199."}

    def to_internal_value(self, value):
        day = super().to_internal_value(value)
        if not dt.date(2000, 1, 1) <= day <= dt.date(2199, 12, 31):
            self.fail("range")
        return day


class AuditQuestionSerializer(serializers.ModelSerializer):
    class Meta:
        model = TemplateQuestion
        fields = [
            "id",
            "code",
            "text",
            "answer_type",
            "weight",
            "critical",
            "responsible",
            "photo_required",
            "ticket_category",
            "position",
        ]


class AuditSectionSerializer(serializers.ModelSerializer):
    questions = AuditQuestionSerializer(many=True, read_only=True)

    class Meta:
        model = TemplateSection
        fields = ["id", "area_kind", "title", "position", "questions"]


class AuditTemplateListSerializer(serializers.ModelSerializer):
    standard = serializers.SerializerMethodField()
    question_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = AuditTemplate
        fields = ["id", "code", "version", "name", "is_current", "standard", "question_count"]

    def get_standard(self, obj) -> bool:
        return obj.organisation_id is None


class AuditTemplateDetailSerializer(AuditTemplateListSerializer):
    sections = AuditSectionSerializer(many=True, read_only=True)

    class Meta(AuditTemplateListSerializer.Meta):
        fields = [*AuditTemplateListSerializer.Meta.fields, "sections"]


class RoundTargetSerializer(serializers.ModelSerializer):
    entrance_label = serializers.CharField(source="entrance.__str__", read_only=True)
    building = serializers.UUIDField(source="entrance.building_id", read_only=True)
    audited = serializers.SerializerMethodField()

    class Meta:
        model = RoundTarget
        fields = ["entrance", "entrance_label", "building", "reason", "position", "audited"]

    def get_audited(self, obj) -> bool:
        return obj.entrance_id in self.context.get("audited", {}).get(obj.round_id, set())


class AuditRoundSerializer(serializers.ModelSerializer):
    residence_name = serializers.CharField(source="residence.name", read_only=True)
    targets = RoundTargetSerializer(many=True, read_only=True)

    class Meta:
        model = AuditRound
        fields = [
            "id",
            "residence",
            "residence_name",
            "period_start",
            "period_end",
            "planned_for",
            "assignee",
            "status",
            "cycle",
            "sample_size",
            "seed",
            "targets",
            "created_at",
        ]


class AuditRoundCreateSerializer(serializers.Serializer):
    residence = serializers.UUIDField()
    period_start = DayField()
    period_end = DayField()
    planned_for = DayField(required=False)
    assignee = serializers.UUIDField(required=False, allow_null=True)
    sample_size = serializers.IntegerField(required=False, min_value=1, max_value=500)
    seed = serializers.IntegerField(required=False, min_value=0, max_value=2**62)


class AuditTodaySerializer(serializers.Serializer):
    date = serializers.DateField()
    rounds = AuditRoundSerializer(many=True)
    template = AuditTemplateDetailSerializer(allow_null=True)


class AuditAnswerInputSerializer(serializers.Serializer):
    question = serializers.UUIDField()
    value = serializers.ChoiceField(choices=AnswerValue.choices)
    comment = serializers.CharField(required=False, allow_blank=True, max_length=1000)
    common_area = serializers.UUIDField(required=False, allow_null=True)


class AuditCreateSerializer(serializers.Serializer):
    id = serializers.UUIDField(help_text="Made on the phone; a resend with it changes nothing.")
    entrance = serializers.UUIDField()
    template = serializers.UUIDField(required=False, help_text="Default: the current version.")
    round = serializers.UUIDField(required=False, allow_null=True)
    started_at = SafeDateTimeField(help_text="Phone clock.")
    finished_at = SafeDateTimeField(help_text="Phone clock.")
    device_sent_at = SafeDateTimeField(
        required=False, help_text="Phone clock when sending, to measure its skew."
    )
    note = serializers.CharField(required=False, allow_blank=True, max_length=1000)
    answers = AuditAnswerInputSerializer(many=True, max_length=MAX_ANSWERS)


class AuditAnswerSerializer(serializers.ModelSerializer):
    question_code = serializers.CharField(source="question.code", read_only=True)
    question_text = serializers.CharField(source="question.text", read_only=True)
    area_kind = serializers.CharField(source="question.section.area_kind", read_only=True)
    critical = serializers.BooleanField(source="question.critical", read_only=True)
    responsible = serializers.CharField(source="question.responsible", read_only=True)
    photos = serializers.SerializerMethodField()
    correction = serializers.SerializerMethodField()

    class Meta:
        model = AuditAnswer
        fields = [
            "id",
            "question",
            "question_code",
            "question_text",
            "area_kind",
            "critical",
            "responsible",
            "common_area",
            "value",
            "failed",
            "comment",
            "disputed",
            "dispute_note",
            "dispute_outcome",
            "dispute_reason",
            "settled_at",
            "original_value",
            "photos",
            "correction",
        ]

    def get_photos(self, obj) -> list[str]:
        return [str(p.id) for p in obj.photos.all()]

    def get_correction(self, obj) -> dict | None:
        if obj.ticket_id is None:
            return None
        ticket = obj.ticket
        return {
            "ticket": str(ticket.id),
            "reference": ticket.reference,
            "status": ticket.status,
            "resolve_due_at": ticket.resolve_due_at.isoformat() if ticket.resolve_due_at else None,
            "closed": ticket.status in ("resolved", "closed"),
            "verified_at": obj.verified_at.isoformat() if obj.verified_at else None,
            "verified_by": str(obj.verified_by_id) if obj.verified_by_id else None,
        }


class AuditListSerializer(serializers.ModelSerializer):
    residence_name = serializers.CharField(source="residence.name", read_only=True)
    entrance_label = serializers.CharField(source="entrance.__str__", read_only=True)
    template_version = serializers.IntegerField(source="template.version", read_only=True)

    class Meta:
        model = Audit
        fields = [
            "id",
            "residence",
            "residence_name",
            "entrance",
            "entrance_label",
            "round",
            "template",
            "template_version",
            "auditor",
            "contractor",
            "started_at",
            "finished_at",
            "received_at",
            "clock_skew_seconds",
            "score",
            "raw_score",
            "capped",
            "status",
        ]


class AuditDetailSerializer(AuditListSerializer):
    answers = AuditAnswerSerializer(many=True, read_only=True)
    area_scores = serializers.DictField(read_only=True)
    corrections = serializers.SerializerMethodField()
    photos_missing = serializers.SerializerMethodField()
    tenant_survey = serializers.SerializerMethodField()

    class Meta(AuditListSerializer.Meta):
        fields = [
            *AuditListSerializer.Meta.fields,
            "device_started_at",
            "device_finished_at",
            "note",
            "area_scores",
            "countersigned_by",
            "countersigned_at",
            "countersign_note",
            "corrections",
            "photos_missing",
            "tenant_survey",
            "answers",
        ]

    def get_corrections(self, obj) -> dict:
        tickets = {a.ticket_id: a.ticket for a in obj.answers.all() if a.ticket_id}
        closed = [t for t in tickets.values() if t.status in ("resolved", "closed")]
        return {"opened_or_joined": len(tickets), "closed": len(closed)}

    def get_photos_missing(self, obj) -> list[str]:
        return [
            str(a.id)
            for a in obj.answers.all()
            if a.failed and a.question.photo_required and not a.photos.all()
        ]

    def get_tenant_survey(self, obj) -> dict | None:
        return self.context.get("survey")


class AuditPhotoUploadSerializer(serializers.Serializer):
    id = serializers.UUIDField(required=False, help_text="Made on the phone, to resume safely.")
    answer = serializers.UUIDField()
    image = serializers.FileField()


class AuditPhotoSerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditPhoto
        fields = ["id", "answer", "content_type", "width", "height", "size", "taken_at"]


class AuditDisputeSerializer(serializers.Serializer):
    answer = serializers.UUIDField()
    note = serializers.CharField(required=False, allow_blank=True, max_length=1000)


class AuditCountersignSerializer(serializers.Serializer):
    disputes = AuditDisputeSerializer(many=True, required=False, max_length=MAX_DISPUTES)
    note = serializers.CharField(required=False, allow_blank=True, max_length=1000)


class AuditSettleSerializer(serializers.Serializer):
    outcome = serializers.ChoiceField(
        choices=DisputeOutcome.choices,
        help_text="upheld: the item stays not compliant; overturned: it was compliant after all.",
    )
    reason = serializers.CharField(max_length=1000)
    value = serializers.ChoiceField(
        choices=["compliant", "na", "2", "3"],
        required=False,
        help_text="The overturned item's answer (default: compliant, or 3 on a scale).",
    )


class ScoringPolicySerializer(serializers.ModelSerializer):
    penalty_below = serializers.DecimalField(
        max_digits=5, decimal_places=2, min_value=0, max_value=100, required=False
    )
    bonus_from = serializers.DecimalField(
        max_digits=5, decimal_places=2, min_value=0, max_value=100, required=False
    )
    critical_cap = serializers.DecimalField(
        max_digits=5, decimal_places=2, min_value=0, max_value=100, required=False
    )
    updated_at = serializers.DateTimeField(
        read_only=True, allow_null=True, help_text="Empty while the defaults apply."
    )

    class Meta:
        model = ScoringPolicy
        fields = [
            "penalty_below",
            "bonus_from",
            "critical_cap",
            "version",
            "updated_by",
            "updated_at",
        ]
        read_only_fields = ["version", "updated_by"]


class CleanlinessSurveySummarySerializer(serializers.Serializer):
    mean = serializers.FloatField()
    score = serializers.FloatField()
    answers = serializers.IntegerField()


class AuditScoreRowSerializer(serializers.Serializer):
    id = serializers.CharField(help_text="The residence, entrance or contractor id, or area kind.")
    label = serializers.CharField()
    score = serializers.DecimalField(max_digits=5, decimal_places=2, allow_null=True)
    audits = serializers.IntegerField()
    capped_audits = serializers.IntegerField()
    rank = serializers.IntegerField()
    band = serializers.ChoiceField(choices=["penalty", "standard", "bonus", "none"])
    survey = CleanlinessSurveySummarySerializer(allow_null=True)


class AuditScoreQuerySerializer(serializers.Serializer):
    group = serializers.ChoiceField(
        choices=["residence", "entrance", "contractor", "area"], default="residence"
    )
    since = DayField(required=False)
    until = DayField(required=False)


class AuditTrendQuerySerializer(serializers.Serializer):
    residence = serializers.UUIDField(required=False)
    entrance = serializers.UUIDField(required=False)
    contractor = serializers.UUIDField(required=False)
    months = serializers.IntegerField(required=False, min_value=1, max_value=36, default=12)


class AuditTrendPointSerializer(serializers.Serializer):
    month = serializers.CharField()
    score = serializers.DecimalField(max_digits=5, decimal_places=2, allow_null=True)
    audits = serializers.IntegerField()
    capped_audits = serializers.IntegerField()


class AuditTrendSerializer(serializers.Serializer):
    penalty_below = serializers.DecimalField(max_digits=5, decimal_places=2)
    bonus_from = serializers.DecimalField(max_digits=5, decimal_places=2)
    series = AuditTrendPointSerializer(many=True)


class AuditReportQuerySerializer(serializers.Serializer):
    month = serializers.RegexField(r"^2[01]\d\d-(0[1-9]|1[0-2])$", required=False)


class AuditReportEntrySerializer(serializers.Serializer):
    residence = serializers.UUIDField()
    residence_name = serializers.CharField()
    month = serializers.CharField()
    audits = serializers.IntegerField()
    pdf = serializers.CharField()


class AuditExportQuerySerializer(serializers.Serializer):
    since = DayField(required=False)
    until = DayField(required=False)
    residence = serializers.UUIDField(required=False)


class CleanlinessSurveySerializer(serializers.ModelSerializer):
    class Meta:
        model = SurveyResponse
        fields = ["id", "entrance", "week", "rating", "channel", "created_at"]


class CleanlinessSurveyCreateSerializer(serializers.Serializer):
    entrance = serializers.UUIDField()
    rating = serializers.IntegerField(
        min_value=1, max_value=4, help_text="1 😞 very dirty, 2 🙁, 3 🙂, 4 😀 very clean."
    )


class CleanlinessSurveyLinkSerializer(serializers.Serializer):
    question = serializers.CharField()
    entrance_label = serializers.CharField()
    choices = serializers.ListField(child=serializers.DictField())
    answered_this_week = serializers.IntegerField(allow_null=True)


class CleanlinessSurveyLinkAnswerSerializer(serializers.Serializer):
    rating = serializers.IntegerField(min_value=1, max_value=4)


class CleanlinessSurveyInviteSerializer(serializers.Serializer):
    entrance = serializers.UUIDField()


class CleanlinessSurveyInviteResultSerializer(serializers.Serializer):
    sent = serializers.IntegerField()


class AuditQuestionInputSerializer(serializers.Serializer):
    code = serializers.SlugField(max_length=60)
    text = serializers.CharField(max_length=300)
    answer_type = serializers.ChoiceField(choices=AnswerType.choices)
    weight = serializers.IntegerField(min_value=1, max_value=10, default=1)
    critical = serializers.BooleanField(default=False)
    responsible = serializers.ChoiceField(choices=ResponsibleParty.choices)
    photo_required = serializers.BooleanField(default=True)
    ticket_category = serializers.SlugField(max_length=60, required=False, allow_blank=True)


class AuditSectionInputSerializer(serializers.Serializer):
    area_kind = serializers.ChoiceField(choices=CommonAreaKind.choices)
    title = serializers.CharField(max_length=200)
    questions = AuditQuestionInputSerializer(many=True, min_length=1, max_length=100)


class AuditTemplateReviseSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False)
    sections = AuditSectionInputSerializer(many=True, min_length=1, max_length=30)
