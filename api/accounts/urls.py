from django.urls import path

from . import apis

urlpatterns = [
    path("auth/token", apis.StaffTokenApi.as_view(), name="auth-token"),
    path("auth/token/refresh", apis.TokenRefreshApi.as_view(), name="auth-token-refresh"),
    path("auth/logout", apis.LogoutApi.as_view(), name="auth-logout"),
    path("auth/otp/request", apis.OtpRequestApi.as_view(), name="auth-otp-request"),
    path("auth/otp/verify", apis.OtpVerifyApi.as_view(), name="auth-otp-verify"),
    path("me/", apis.MeApi.as_view(), name="me"),
    path("me/vulnerabilities/", apis.OwnVulnerabilitiesApi.as_view(), name="me-vulnerabilities"),
    path(
        "me/vulnerabilities/<uuid:pk>/",
        apis.OwnVulnerabilityApi.as_view(),
        name="me-vulnerability",
    ),
    path("vulnerabilities/", apis.VulnerabilitiesApi.as_view(), name="vulnerabilities"),
    path("vulnerabilities/<uuid:pk>/", apis.VulnerabilityApi.as_view(), name="vulnerability"),
]
