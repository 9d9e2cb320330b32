"""URL map: the API under /api/v1/, its schema and docs, health, and the admin site."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from api.core.apis import HealthApi, ReadyApi
from api.notifications.pages import alert_ack_page
from api.privacy.apis import export_download

api_v1 = [
    path("", include("api.accounts.urls")),
    path("", include("api.estate.urls")),
    path("", include("api.telemetry.urls")),
    path("", include("api.tickets.urls")),
    path("", include("api.notifications.urls")),
    path("", include("api.news.urls")),
    path("", include("api.documents.urls")),
    path("", include("api.faults.urls")),
    path("", include("api.audits.urls")),
    path("", include("api.privacy.urls")),
]

urlpatterns = [
    path("api/v1/", include(api_v1)),
    path("open311/v2/", include("api.tickets.open311")),
    path("api/health/", HealthApi.as_view(), name="health"),
    path("api/ready/", ReadyApi.as_view(), name="ready"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
    path("admin/", admin.site.urls),
    # Alert acknowledgement from an SMS or e-mail: the signed link is the credential.
    path("ack/<str:token>", alert_ack_page, name="alert-ack-page"),
    # A person's data export: the signed, expiring link is the credential.
    path("privacy/download/<str:token>", export_download, name="privacy-export-download"),
    # E-mail providers' delivery reports (django-anymail checks each provider's credentials).
    path("anymail/", include("anymail.urls")),
]

handler400 = "api.core.exceptions.json_bad_request"
handler403 = "api.core.exceptions.json_permission_denied"
handler404 = "api.core.exceptions.json_not_found"
handler500 = "api.core.exceptions.json_server_error"
