"""Admin screens of the audits app (questionnaires are edited as new versions)."""

from django.contrib import admin
from unfold.admin import ModelAdmin, TabularInline

from .models import (
    Audit,
    AuditAnswer,
    AuditReport,
    AuditRound,
    AuditTemplate,
    RoundTarget,
    ScoringPolicy,
    SurveyResponse,
    TemplateQuestion,
)


class QuestionInline(TabularInline):
    model = TemplateQuestion
    extra = 0
    fields = ["section", "code", "text", "answer_type", "weight", "critical", "responsible"]


@admin.register(AuditTemplate)
class AuditTemplateAdmin(ModelAdmin):
    list_display = ["name", "code", "version", "organisation", "is_current"]
    list_filter = ["is_current"]
    inlines = [QuestionInline]


class AnswerInline(TabularInline):
    model = AuditAnswer
    fk_name = "audit"
    extra = 0
    fields = ["question", "value", "failed", "ticket", "verified_at", "disputed"]
    readonly_fields = fields
    can_delete = False


@admin.register(Audit)
class AuditAdmin(ModelAdmin):
    list_display = ["finished_at", "residence", "entrance", "score", "capped", "status"]
    list_filter = ["status", "capped"]
    raw_id_fields = ["residence", "entrance", "round", "auditor", "contractor"]
    inlines = [AnswerInline]


class TargetInline(TabularInline):
    model = RoundTarget
    extra = 0
    raw_id_fields = ["entrance"]


@admin.register(AuditRound)
class AuditRoundAdmin(ModelAdmin):
    list_display = ["planned_for", "residence", "status", "cycle", "sample_size"]
    list_filter = ["status"]
    raw_id_fields = ["residence", "assignee"]
    inlines = [TargetInline]


@admin.register(ScoringPolicy)
class ScoringPolicyAdmin(ModelAdmin):
    list_display = [
        "organisation",
        "penalty_below",
        "bonus_from",
        "critical_cap",
        "version",
        "updated_by",
        "updated_at",
    ]
    # Changed through the API, which versions and records each change.
    readonly_fields = ["version", "updated_by"]


@admin.register(AuditReport)
class AuditReportAdmin(ModelAdmin):
    list_display = ["period", "subject", "residence", "contractor", "audits", "size"]
    list_filter = ["subject", "period"]
    raw_id_fields = ["residence", "contractor"]


@admin.register(SurveyResponse)
class SurveyResponseAdmin(ModelAdmin):
    list_display = ["week", "entrance", "rating", "channel"]
    raw_id_fields = ["entrance", "respondent"]
