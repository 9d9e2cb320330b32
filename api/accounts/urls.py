from django.urls import path

from . import apis

urlpatterns = [
    path("auth/token", apis.StaffTokenApi.as_view(), name="auth-token"),
    path("auth/token/refresh", apis.TokenRefreshApi.as_view(), name="auth-token-refresh"),
    path("auth/logout", apis.LogoutApi.as_view(), name="auth-logout"),
    path("auth/otp/request", apis.OtpRequestApi.as_view(), name="auth-otp-request"),
    path("auth/otp/verify", apis.OtpVerifyApi.as_view(), name="auth-otp-verify"),
    path("me/", apis.MeApi.as_view(), name="me"),
]
