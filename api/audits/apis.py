"""Cleanliness audits under /api/v1/: questionnaires, rounds, audits, scores, reports, surveys.

ViewSets with actions, as in the tickets app: which roles may call an action is declared per
action; reads go through the selectors (out of scope is a 404); writes through one service.
"""

import datetime as dt

from django.db.models import Count, Prefetch
from django.http import FileResponse, HttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from api.core.exceptions import not_found, refused
from api.core.permissions import ActionRoles, uuid_or_404
from api.core.roles import Role
from api.core.sensitive_text import staff_text_guard
from api.estate import selectors as estate

from . import reports, selectors, services
from .filters import AuditFilter, RoundFilter, SurveyFilter
from .models import (
    Audit,
    AuditAnswer,
    AuditPhoto,
    AuditTemplate,
    RoundTarget,
    SurveyResponse,
    TemplateQuestion,
    TemplateSection,
)
from .serializers import (
    AuditCountersignSerializer,
    AuditCreateSerializer,
    AuditDetailSerializer,
    AuditExportQuerySerializer,
    AuditListSerializer,
    AuditPhotoSerializer,
    AuditPhotoUploadSerializer,
    AuditReportEntrySerializer,
    AuditReportQuerySerializer,
    AuditRoundCreateSerializer,
    AuditRoundSerializer,
    AuditScoreQuerySerializer,
    AuditScoreRowSerializer,
    AuditSettleSerializer,
    AuditTemplateDetailSerializer,
    AuditTemplateListSerializer,
    AuditTemplateReviseSerializer,
    AuditTodaySerializer,
    AuditTrendQuerySerializer,
    AuditTrendSerializer,
    CleanlinessSurveyCreateSerializer,
    CleanlinessSurveyInviteResultSerializer,
    CleanlinessSurveyInviteSerializer,
    CleanlinessSurveyLinkAnswerSerializer,
    CleanlinessSurveyLinkSerializer,
    CleanlinessSurveySerializer,
    ScoringPolicySerializer,
)

AUDITORS = selectors.AUDITOR_ROLES
READERS = selectors.AUDIT_READER_ROLES
PDF = OpenApiResponse(OpenApiTypes.BINARY, description="A PDF document.")
CSV = OpenApiResponse(OpenApiTypes.STR, description="Semicolon-separated values.")
SURVEY_QUESTION = "Cette semaine, comment trouvez-vous la propreté de votre cage d'escalier ?"
SURVEY_CHOICES = [
    {"rating": 1, "pictogram": "😞", "label": "Très sale"},
    {"rating": 2, "pictogram": "🙁", "label": "Plutôt sale"},
    {"rating": 3, "pictogram": "🙂", "label": "Plutôt propre"},
    {"rating": 4, "pictogram": "😀", "label": "Très propre"},
]


def _month(value: str | None) -> dt.date:
    if not value:
        return timezone.localdate().replace(day=1)
    year, month = value.split("-")
    return dt.date(int(year), int(month), 1)


def _since(day: dt.date | None) -> dt.datetime | None:
    return selectors.aware_midnight(day) if day else None


def _until(day: dt.date | None) -> dt.datetime | None:
    return selectors.aware_midnight(day + dt.timedelta(days=1)) if day else None


class AuditsBase(viewsets.GenericViewSet):
    permission_classes = [ActionRoles]
    default_read_roles = READERS
    action_roles: dict = {}

    def input(self, serializer_class, data=None):
        serializer = serializer_class(
            data=self.request.data if data is None else data, context=self.get_serializer_context()
        )
        serializer.is_valid(raise_exception=True)
        # Auditors' notes and comments are checked for sensitive data before they are saved.
        staff_text_guard(self.request, serializer.validated_data)
        return serializer.validated_data

    def get_object(self):
        obj = self.get_queryset().filter(pk=uuid_or_404(self.kwargs["pk"])).first()
        if obj is None:
            raise NotFound()
        return obj


# --- questionnaires -----------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(tags=["audits"], responses=AuditTemplateListSerializer(many=True)),
    retrieve=extend_schema(tags=["audits"], responses=AuditTemplateDetailSerializer),
)
class AuditTemplateViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, AuditsBase):
    """Questionnaire versions: the current one for new audits, older ones kept for theirs."""

    default_read_roles = selectors.TEMPLATE_READER_ROLES
    action_roles = {"revise": selectors.TEMPLATE_WRITER_ROLES}
    filterset_fields = ["code", "is_current"]
    search_fields = []
    ordering_fields = []

    def get_queryset(self):
        templates = selectors.templates_visible_to(self.request.user).annotate(
            question_count=Count("questions")
        )
        if self.action == "retrieve":
            questions = TemplateQuestion.objects.order_by("position")
            sections = TemplateSection.objects.order_by("position").prefetch_related(
                Prefetch("questions", queryset=questions)
            )
            templates = templates.prefetch_related(Prefetch("sections", queryset=sections))
        return templates.order_by("code", "-version", "id")

    def get_serializer_class(self):
        return (
            AuditTemplateDetailSerializer
            if self.action == "retrieve"
            else AuditTemplateListSerializer
        )

    @extend_schema(
        tags=["audits"],
        request=AuditTemplateReviseSerializer,
        responses={201: AuditTemplateDetailSerializer},
    )
    @action(detail=True, methods=["post"], filter_backends=[])
    def revise(self, request, pk=None):
        """Publish a new version (the whole questionnaire); older audits keep theirs."""
        template = self.get_object()
        data = self.input(AuditTemplateReviseSerializer)
        revised = services.template_revise(
            actor=request.user,
            template=template,
            sections=data["sections"],
            name=data.get("name", ""),
        )
        self.action = "retrieve"
        revised = self.get_queryset().get(pk=revised.pk)
        return Response(AuditTemplateDetailSerializer(revised).data, status=status.HTTP_201_CREATED)


def template_for_phone(user) -> AuditTemplate | None:
    """The current questionnaire with its questions, for a phone going offline."""
    current = selectors.template_current(organisation_id=user.organisation_id)
    if current is None:
        return None
    questions = TemplateQuestion.objects.order_by("position")
    sections = TemplateSection.objects.order_by("position").prefetch_related(
        Prefetch("questions", queryset=questions)
    )
    return (
        AuditTemplate.objects.annotate(question_count=Count("questions"))
        .prefetch_related(Prefetch("sections", queryset=sections))
        .get(pk=current.pk)
    )


# --- rounds -------------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(tags=["audits"], responses=AuditRoundSerializer(many=True)),
    retrieve=extend_schema(tags=["audits"], responses=AuditRoundSerializer),
    create=extend_schema(
        tags=["audits"], request=AuditRoundCreateSerializer, responses={201: AuditRoundSerializer}
    ),
)
class AuditRoundViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, AuditsBase
):
    """Rounds planned per residence and period, with the entrances drawn for each."""

    default_read_roles = selectors.ROUND_READER_ROLES
    action_roles = {"create": AUDITORS, "cancel": AUDITORS}
    serializer_class = AuditRoundSerializer
    filterset_class = RoundFilter
    search_fields = []
    ordering_fields = []

    def get_queryset(self):
        targets = RoundTarget.objects.select_related("entrance").order_by("position")
        return (
            selectors.rounds_visible_to(self.request.user)
            .select_related("residence")
            .prefetch_related(Prefetch("targets", queryset=targets))
            .order_by("-planned_for", "-created_at", "id")
        )

    def get_serializer_context(self):
        context = super().get_serializer_context()
        context["audited"] = {}
        return context

    def _context_for(self, rounds) -> dict:
        context = self.get_serializer_context()
        audited: dict = {}
        rows = Audit.objects.filter(round__in=[r.pk for r in rounds]).values_list(
            "round_id", "entrance_id"
        )
        for round_id, entrance_id in rows:
            audited.setdefault(round_id, set()).add(entrance_id)
        context["audited"] = audited
        return context

    def list(self, request):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(
            AuditRoundSerializer(page, many=True, context=self._context_for(page)).data
        )

    def retrieve(self, request, pk=None):
        round = self.get_object()
        return Response(AuditRoundSerializer(round, context=self._context_for([round])).data)

    def create(self, request):
        data = self.input(AuditRoundCreateSerializer)
        residence = estate.residences_visible_to(request.user).filter(pk=data["residence"]).first()
        if residence is None:
            raise not_found("residence")
        assignee = None
        if data.get("assignee"):
            assignee = estate.people_visible_to(request.user).filter(pk=data["assignee"]).first()
            if assignee is None:
                raise not_found("assignee")
        round = services.round_plan(
            actor=request.user,
            residence=residence,
            period_start=data["period_start"],
            period_end=data["period_end"],
            planned_for=data.get("planned_for"),
            assignee=assignee,
            sample_size=data.get("sample_size"),
            seed=data.get("seed"),
        )
        round = self.get_queryset().get(pk=round.pk)
        return Response(
            AuditRoundSerializer(round, context=self._context_for([round])).data,
            status=status.HTTP_201_CREATED,
        )

    @extend_schema(tags=["audits"], request=None, responses={200: AuditRoundSerializer})
    @action(detail=True, methods=["post"], filter_backends=[])
    def cancel(self, request, pk=None):
        """Cancel a round not started yet; its entrances go back to the cycle's pool."""
        round = services.round_cancel(round=self.get_object(), actor=request.user)
        return Response(AuditRoundSerializer(round, context=self._context_for([round])).data)

    @extend_schema(tags=["audits"], responses={200: AuditTodaySerializer})
    @action(detail=False, methods=["get"], filter_backends=[], pagination_class=None)
    def today(self, request):
        """Today's round for the team leader's phone, with the questionnaire to work offline."""
        rounds = list(selectors.rounds_today(request.user).select_related("residence")[:20])
        rounds = list(self.get_queryset().filter(pk__in=[r.pk for r in rounds]))
        context = self._context_for(rounds)
        return Response(
            {
                "date": timezone.localdate().isoformat(),
                "rounds": AuditRoundSerializer(rounds, many=True, context=context).data,
                "template": AuditTemplateDetailSerializer(template_for_phone(request.user)).data
                if rounds
                else None,
            }
        )


# --- audits -------------------------------------------------------------------------------------

PHOTO_ID = OpenApiParameter("photo_id", OpenApiTypes.UUID, OpenApiParameter.PATH)
ITEM_ID = OpenApiParameter(
    "item_id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The answer's id."
)


@extend_schema_view(
    list=extend_schema(tags=["audits"], responses=AuditListSerializer(many=True)),
    retrieve=extend_schema(tags=["audits"], responses=AuditDetailSerializer),
    create=extend_schema(
        tags=["audits"],
        request=AuditCreateSerializer,
        responses={201: AuditDetailSerializer, 200: AuditDetailSerializer},
    ),
)
class AuditViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, AuditsBase
):
    """Audits: sent whole from the field, photos after; countersigned by the contractor."""

    action_roles = {
        "create": AUDITORS,
        "countersign": frozenset({Role.CONTRACTOR}),
        "settle": AUDITORS,
        "photos": READERS,  # readers list them; the service lets only auditors upload
    }
    filterset_class = AuditFilter
    search_fields = []
    ordering_fields = ["finished_at", "score"]

    def get_queryset(self):
        audits = selectors.audits_visible_to(self.request.user).select_related(
            "residence", "entrance", "template"
        )
        if self.action != "list":
            answers = AuditAnswer.objects.select_related(
                "question__section", "ticket"
            ).prefetch_related("photos")
            audits = audits.prefetch_related(Prefetch("answers", queryset=answers))
        return audits.order_by("-finished_at", "id")

    def get_serializer_class(self):
        return AuditListSerializer if self.action == "list" else AuditDetailSerializer

    def detail_response(self, audit, status_code=status.HTTP_200_OK) -> Response:
        audit = self.get_queryset().get(pk=audit.pk)
        survey = selectors.survey_scores([audit.entrance_id]).get(audit.entrance_id)
        context = {**self.get_serializer_context(), "survey": survey}
        return Response(AuditDetailSerializer(audit, context=context).data, status=status_code)

    def retrieve(self, request, pk=None):
        return self.detail_response(self.get_object())

    def create(self, request):
        data = self.input(AuditCreateSerializer)
        user = request.user
        entrance = estate.entrances_visible_to(user).filter(pk=data["entrance"]).first()
        if entrance is None:
            raise not_found("entrance")
        template = None
        if data.get("template"):
            template = selectors.templates_visible_to(user).filter(pk=data["template"]).first()
            if template is None:
                raise not_found("template")
        round = None
        if data.get("round"):
            round = selectors.rounds_visible_to(user).filter(pk=data["round"]).first()
            if round is None:
                raise not_found("round")
        audit, created = services.audit_submit(
            actor=user,
            audit_id=data["id"],
            entrance=entrance,
            template=template,
            round=round,
            started_at=data["started_at"],
            finished_at=data["finished_at"],
            device_sent_at=data.get("device_sent_at"),
            note=data.get("note", ""),
            answers=[
                services.AnswerInput(
                    question=a["question"],
                    value=a["value"],
                    comment=a.get("comment", ""),
                    common_area=a.get("common_area"),
                )
                for a in data["answers"]
            ],
        )
        return self.detail_response(
            audit, status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )

    @extend_schema(
        tags=["audits"], methods=["GET"], responses={200: AuditPhotoSerializer(many=True)}
    )
    @extend_schema(
        tags=["audits"],
        methods=["POST"],
        request={"multipart/form-data": AuditPhotoUploadSerializer},
        responses={201: AuditPhotoSerializer, 200: AuditPhotoSerializer},
    )
    @action(detail=True, methods=["get", "post"], filter_backends=[])
    def photos(self, request, pk=None):
        """Photos of failed items, one upload each; resend with the same id to resume."""
        audit = self.get_object()
        if request.method == "POST":
            if request.user.role not in AUDITORS:
                raise refused("Your role does not audit.")
            data = self.input(AuditPhotoUploadSerializer)
            answer = audit.answers.filter(pk=data["answer"]).first()
            if answer is None:
                raise not_found("answer")
            photo, created = services.audit_photo_add(
                audit=audit,
                answer=answer,
                actor=request.user,
                upload=data["image"],
                client_id=data.get("id"),
            )
            return Response(
                AuditPhotoSerializer(photo).data,
                status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
            )
        page = self.paginate_queryset(audit.photos.order_by("created_at", "id"))
        return self.get_paginated_response(AuditPhotoSerializer(page, many=True).data)

    def perform_content_negotiation(self, request, force=False):
        if self.action == "photo_file":
            force = True
        return super().perform_content_negotiation(request, force=force)

    @extend_schema(
        tags=["audits"],
        parameters=[PHOTO_ID],
        responses={
            (200, "image/jpeg"): OpenApiTypes.BINARY,
            (200, "image/png"): OpenApiTypes.BINARY,
        },
    )
    @action(
        detail=True, methods=["get"], url_path=r"photos/(?P<photo_id>[^/.]+)", filter_backends=[]
    )
    def photo_file(self, request, pk=None, photo_id=None):
        """The photo itself (metadata removed)."""
        audit = self.get_object()
        photo = AuditPhoto.objects.filter(audit=audit, pk=uuid_or_404(photo_id)).first()
        if photo is None:
            raise NotFound()
        try:
            handle = photo.image.open("rb")
        except (FileNotFoundError, ValueError):
            raise NotFound() from None
        response = FileResponse(handle, content_type=photo.content_type)
        response["X-Content-Type-Options"] = "nosniff"
        return response

    @extend_schema(
        tags=["audits"], request=AuditCountersignSerializer, responses={200: AuditDetailSerializer}
    )
    @action(detail=True, methods=["post"], filter_backends=[])
    def countersign(self, request, pk=None):
        """The cleaning contractor's representative signs, flagging the items they dispute."""
        audit = self.get_object()
        data = self.input(AuditCountersignSerializer)
        audit = services.audit_countersign(
            audit=audit,
            actor=request.user,
            note=data.get("note", ""),
            disputes=[
                services.Dispute(answer=d["answer"], note=d.get("note", ""))
                for d in data.get("disputes", [])
            ],
        )
        return self.detail_response(audit)

    @extend_schema(
        tags=["audits"],
        parameters=[ITEM_ID],
        request=AuditSettleSerializer,
        responses={200: AuditDetailSerializer},
    )
    @action(
        detail=True,
        methods=["post"],
        url_path=r"items/(?P<item_id>[^/.]+)/settle",
        filter_backends=[],
    )
    def settle(self, request, pk=None, item_id=None):
        """Settle a disputed item: upheld (stays not compliant) or overturned (rescored)."""
        audit = self.get_object()
        answer_id = uuid_or_404(item_id)
        data = self.input(AuditSettleSerializer)
        audit = services.audit_dispute_settle(
            audit=audit,
            answer_id=answer_id,
            actor=request.user,
            outcome=data["outcome"],
            reason=data["reason"],
            value=data.get("value"),
        )
        return self.detail_response(audit)


# --- scoring policy -----------------------------------------------------------------------------


class ScoringPolicyApi(APIView):
    """The organisation's contract thresholds and critical cap (managers change them)."""

    permission_classes = [ActionRoles]
    default_read_roles = AUDITORS | {Role.CONTRACTOR}
    action_roles = {"patch": selectors.POLICY_WRITER_ROLES}

    @extend_schema(tags=["audits"], responses={200: ScoringPolicySerializer})
    def get(self, request):
        policy = selectors.scoring_policy(request.user.organisation_id)
        return Response(ScoringPolicySerializer(policy).data)

    @extend_schema(
        tags=["audits"],
        request=ScoringPolicySerializer,
        responses={200: ScoringPolicySerializer},
    )
    def patch(self, request):
        serializer = ScoringPolicySerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        policy = services.scoring_policy_update(actor=request.user, **serializer.validated_data)
        return Response(ScoringPolicySerializer(policy).data)


# --- scores -------------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(
        tags=["audits"],
        parameters=[AuditScoreQuerySerializer],
        responses=AuditScoreRowSerializer(many=True),
    )
)
class AuditScoreViewSet(mixins.ListModelMixin, AuditsBase):
    """Scores per residence, entrance or contractor, ranked, with the tenants' survey beside."""

    serializer_class = AuditScoreRowSerializer
    filter_backends: list = []

    def get_queryset(self):
        return Audit.objects.none()

    def list(self, request):
        data = self.input(AuditScoreQuerySerializer, request.query_params)
        table = selectors.score_table(
            request.user,
            group=data["group"],
            since=_since(data.get("since")),
            until=_until(data.get("until")),
        )
        page = self.paginate_queryset(table)
        return self.get_paginated_response(AuditScoreRowSerializer(page, many=True).data)

    @extend_schema(
        tags=["audits"], parameters=[AuditTrendQuerySerializer], responses=AuditTrendSerializer
    )
    @action(detail=False, methods=["get"], pagination_class=None)
    def trends(self, request):
        """Mean score per month, for a residence, an entrance, a contractor or the whole scope."""
        data = self.input(AuditTrendQuerySerializer, request.query_params)
        audits = selectors.audits_visible_to(request.user)
        for key in ("residence", "entrance", "contractor"):
            if data.get(key):
                audits = audits.filter(**{f"{key}_id": data[key]})
        policy = selectors.scoring_policy(request.user.organisation_id)
        return Response(
            AuditTrendSerializer(
                {
                    "penalty_below": policy.penalty_below,
                    "bonus_from": policy.bonus_from,
                    "series": selectors.trends(audits, months=data["months"]),
                }
            ).data
        )


# --- reports ------------------------------------------------------------------------------------

MONTH = OpenApiParameter("month", OpenApiTypes.STR, description="YYYY-MM (default: this month)")


@extend_schema_view(
    list=extend_schema(
        tags=["audits"],
        parameters=[AuditReportQuerySerializer],
        responses=AuditReportEntrySerializer(many=True),
    )
)
class AuditReportViewSet(mixins.ListModelMixin, AuditsBase):
    """Monthly PDF reports per residence and per contractor, and a CSV export of audits."""

    default_read_roles = READERS
    action_roles = {"contractor_pdf": selectors.CONTRACTOR_REPORT_ROLES}
    serializer_class = AuditReportEntrySerializer
    filter_backends: list = []

    def get_queryset(self):
        return Audit.objects.none()

    def perform_content_negotiation(self, request, force=False):
        if self.action in ("residence_pdf", "contractor_pdf", "export"):
            force = True
        return super().perform_content_negotiation(request, force=force)

    def list(self, request):
        """The residences with audits in the month, each with its PDF's address."""
        data = self.input(AuditReportQuerySerializer, request.query_params)
        month = _month(data.get("month"))
        start = selectors.aware_midnight(month)
        end = selectors.aware_midnight(selectors.next_month(month))
        rows = (
            selectors.audits_visible_to(request.user)
            .filter(finished_at__gte=start, finished_at__lt=end)
            .values("residence_id", "residence__name")
            .annotate(audits=Count("id"))
            .order_by("residence__name", "residence_id")
        )
        label = month.strftime("%Y-%m")
        entries = [
            {
                "residence": row["residence_id"],
                "residence_name": row["residence__name"],
                "month": label,
                "audits": row["audits"],
                "pdf": f"/api/v1/audit-reports/residences/{row['residence_id']}/?month={label}",
            }
            for row in rows
        ]
        page = self.paginate_queryset(entries)
        return self.get_paginated_response(AuditReportEntrySerializer(page, many=True).data)

    @staticmethod
    def _pdf(content: bytes, name: str) -> HttpResponse:
        response = HttpResponse(content, content_type="application/pdf")
        response["Content-Disposition"] = f'inline; filename="{name}"'
        return response

    @extend_schema(
        tags=["audits"],
        parameters=[OpenApiParameter("residence_id", OpenApiTypes.UUID, "path"), MONTH],
        responses={(200, "application/pdf"): PDF},
    )
    @action(detail=False, methods=["get"], url_path=r"residences/(?P<residence_id>[^/.]+)")
    def residence_pdf(self, request, residence_id=None):
        """The month's PDF of a residence: scores, trend, entrances, areas, corrective work.

        A past month's is served as stored on the 1st when still current, else rendered now.
        """
        data = self.input(AuditReportQuerySerializer, request.query_params)
        residence = (
            estate.residences_visible_to(request.user).filter(pk=uuid_or_404(residence_id)).first()
        )
        if residence is None:
            raise NotFound()
        month = _month(data.get("month"))
        content = reports.stored_report(user=request.user, month=month, residence=residence)
        if content is None:
            content = reports.residence_report_pdf(
                residence=residence, audits=selectors.audits_visible_to(request.user), month=month
            )
        return self._pdf(content, f"proprete-{residence.reference}-{month:%Y-%m}.pdf")

    @extend_schema(
        tags=["audits"],
        parameters=[OpenApiParameter("contractor_id", OpenApiTypes.UUID, "path"), MONTH],
        responses={(200, "application/pdf"): PDF},
    )
    @action(detail=False, methods=["get"], url_path=r"contractors/(?P<contractor_id>[^/.]+)")
    def contractor_pdf(self, request, contractor_id=None):
        """The month's PDF of a cleaning contractor across the residences it cleans."""
        data = self.input(AuditReportQuerySerializer, request.query_params)
        contractor = (
            selectors.contractors_visible_to(request.user)
            .filter(pk=uuid_or_404(contractor_id))
            .first()
        )
        if contractor is None:
            raise NotFound()
        month = _month(data.get("month"))
        content = reports.stored_report(user=request.user, month=month, contractor=contractor)
        if content is None:
            content = reports.contractor_report_pdf(
                contractor=contractor,
                audits=selectors.audits_visible_to(request.user),
                month=month,
            )
        return self._pdf(content, f"proprete-prestataire-{month:%Y-%m}.pdf")

    @extend_schema(
        tags=["audits"], parameters=[AuditExportQuerySerializer], responses={(200, "text/csv"): CSV}
    )
    @action(detail=False, methods=["get"])
    def export(self, request):
        """Every audit of the caller's scope in the period, one row each (CSV, semicolons)."""
        data = self.input(AuditExportQuerySerializer, request.query_params)
        audits = selectors.audits_visible_to(request.user)
        if data.get("since"):
            audits = audits.filter(finished_at__gte=_since(data["since"]))
        if data.get("until"):
            audits = audits.filter(finished_at__lt=_until(data["until"]))
        if data.get("residence"):
            audits = audits.filter(residence_id=data["residence"])
        response = HttpResponse(reports.audits_csv(audits), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="controles-proprete.csv"'
        return response


# --- tenants' survey ----------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(tags=["audits"], responses=CleanlinessSurveySerializer(many=True)),
    create=extend_schema(
        tags=["audits"],
        request=CleanlinessSurveyCreateSerializer,
        responses={201: CleanlinessSurveySerializer, 200: CleanlinessSurveySerializer},
    ),
)
class SurveyViewSet(mixins.ListModelMixin, mixins.CreateModelMixin, AuditsBase):
    """The one-question pictogram survey: tenants rate their entrance's cleanliness each week."""

    default_read_roles = selectors.SURVEY_READER_ROLES
    action_roles = {"create": selectors.SURVEY_WRITER_ROLES, "invite": AUDITORS}
    serializer_class = CleanlinessSurveySerializer
    filterset_class = SurveyFilter
    search_fields = []
    ordering_fields = []

    def get_queryset(self):
        return selectors.surveys_visible_to(self.request.user).order_by(
            "-week", "-created_at", "id"
        )

    def create(self, request):
        data = self.input(CleanlinessSurveyCreateSerializer)
        entrance = estate.entrances_visible_to(request.user).filter(pk=data["entrance"]).first()
        if entrance is None:
            raise not_found("entrance")
        response, created = services.survey_answer(
            respondent=request.user, entrance=entrance, rating=data["rating"]
        )
        return Response(
            CleanlinessSurveySerializer(response).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )

    @extend_schema(
        tags=["audits"],
        request=CleanlinessSurveyInviteSerializer,
        responses={200: CleanlinessSurveyInviteResultSerializer},
    )
    @action(detail=False, methods=["post"], filter_backends=[])
    def invite(self, request):
        """Send this week's survey by SMS link to an entrance's tenants not asked yet."""
        data = self.input(CleanlinessSurveyInviteSerializer)
        entrance = estate.entrances_visible_to(request.user).filter(pk=data["entrance"]).first()
        if entrance is None:
            raise not_found("entrance")
        sent = services.survey_invitations_send(entrance=entrance, actor=request.user)
        return Response({"sent": sent})


class SurveyLinkApi(APIView):
    """The survey from an SMS link, without logging in: the signed link is the credential."""

    permission_classes = [AllowAny]
    authentication_classes: list = []

    def _subject(self, token: str):
        return services.survey_token_read(token)

    @extend_schema(tags=["audits"], responses={200: CleanlinessSurveyLinkSerializer})
    def get(self, request, token: str):
        person, entrance = self._subject(token)
        answered = SurveyResponse.objects.filter(
            entrance=entrance, respondent=person, week=services.week_of(timezone.localdate())
        ).first()
        return Response(
            {
                "question": SURVEY_QUESTION,
                "entrance_label": str(entrance),
                "choices": SURVEY_CHOICES,
                "answered_this_week": answered.rating if answered else None,
            }
        )

    @extend_schema(
        tags=["audits"],
        request=CleanlinessSurveyLinkAnswerSerializer,
        responses={201: CleanlinessSurveySerializer, 200: CleanlinessSurveySerializer},
    )
    def post(self, request, token: str):
        person, entrance = self._subject(token)
        serializer = CleanlinessSurveyLinkAnswerSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        response, created = services.survey_answer(
            respondent=person,
            entrance=entrance,
            rating=serializer.validated_data["rating"],
            channel="sms",
        )
        return Response(
            CleanlinessSurveySerializer(response).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )
