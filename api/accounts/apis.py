"""Authentication endpoints: staff password login, refresh with rotation, logout."""

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.tokens import RefreshToken
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView

from api.core.exceptions import ServiceError


class StaffTokenApi(TokenObtainPairView):
    """Staff log in with e-mail and password; repeated failures lock the account (axes)."""

    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "login_ip"

    @extend_schema(tags=["auth"])
    def post(self, request, *args, **kwargs):
        return super().post(request, *args, **kwargs)


class TokenRefreshApi(TokenRefreshView):
    """Exchange a refresh token for a new pair; the old refresh token is revoked."""

    @extend_schema(tags=["auth"])
    def post(self, request, *args, **kwargs):
        return super().post(request, *args, **kwargs)


class LogoutInputSerializer(serializers.Serializer):
    refresh = serializers.CharField()


class LogoutApi(APIView):
    """Revoke a refresh token so it can never be used again."""

    permission_classes = [AllowAny]

    @extend_schema(
        tags=["auth"],
        request=LogoutInputSerializer,
        responses={205: inline_serializer("LogoutDone", {"detail": serializers.CharField()})},
    )
    def post(self, request):
        serializer = LogoutInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            RefreshToken(serializer.validated_data["refresh"]).blacklist()
        except TokenError as exc:
            raise ServiceError(str(exc), code="token_not_valid", field="refresh") from exc
        return Response({"detail": "Logged out."}, status=status.HTTP_205_RESET_CONTENT)
