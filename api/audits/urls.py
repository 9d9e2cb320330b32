"""Routes of the audits app, under /api/v1/."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from . import apis

router = SimpleRouter()
router.register("audit-templates", apis.AuditTemplateViewSet, basename="audit-template")
router.register("audit-rounds", apis.AuditRoundViewSet, basename="audit-round")
router.register("audits", apis.AuditViewSet, basename="audit")
router.register("audit-scores", apis.AuditScoreViewSet, basename="audit-score")
router.register("audit-reports", apis.AuditReportViewSet, basename="audit-report")
router.register("cleanliness-surveys", apis.SurveyViewSet, basename="cleanliness-survey")

urlpatterns = [
    path("audit-scoring-policy/", apis.ScoringPolicyApi.as_view(), name="audit-scoring-policy"),
    path(
        "cleanliness-surveys/sms/<str:token>/",
        apis.SurveyLinkApi.as_view(),
        name="cleanliness-survey-link",
    ),
    *router.urls,
]
