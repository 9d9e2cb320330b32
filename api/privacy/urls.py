"""Routes of the privacy app, under /api/v1/."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from . import apis, consent_apis, retention_apis

router = SimpleRouter()
router.register("privacy/erasure-requests", apis.ErasureRequestViewSet, basename="erasure-request")
router.register("privacy/rectifications", apis.RectificationViewSet, basename="rectification")

urlpatterns = [
    path("privacy/export/", apis.ExportListApi.as_view(), name="privacy-export"),
    path("privacy/export/<str:pk>/", apis.ExportDetailApi.as_view(), name="privacy-export-detail"),
    path("privacy/access-log/", apis.AccessLogApi.as_view(), name="privacy-access-log"),
    path("privacy/consents/", consent_apis.ConsentApi.as_view(), name="privacy-consents"),
    path(
        "privacy/my-home-data/", consent_apis.MyHomeDataApi.as_view(), name="privacy-my-home-data"
    ),
    path("privacy/retention/", retention_apis.RetentionApi.as_view(), name="privacy-retention"),
    *router.urls,
]
