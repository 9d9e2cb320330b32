"""URL map: the API under /api/v1/, its schema and docs, health, and the admin site."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from api.core.apis import HealthApi, ReadyApi

api_v1 = [
    path("", include("api.accounts.urls")),
    path("", include("api.estate.urls")),
    path("", include("api.telemetry.urls")),
]

urlpatterns = [
    path("api/v1/", include(api_v1)),
    path("api/health/", HealthApi.as_view(), name="health"),
    path("api/ready/", ReadyApi.as_view(), name="ready"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
    path("admin/", admin.site.urls),
]

handler400 = "api.core.exceptions.json_bad_request"
handler403 = "api.core.exceptions.json_permission_denied"
handler404 = "api.core.exceptions.json_not_found"
handler500 = "api.core.exceptions.json_server_error"
