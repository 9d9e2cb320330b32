"""Authentication and the person's own profile.

Staff log in with e-mail and password (locked by axes after repeated failures); tenants and
caretakers with their phone number and a code sent by SMS. Both get a JWT pair; refresh rotates
it, logout revokes it.
"""

from axes.handlers.proxy import AxesProxyHandler
from django.conf import settings
from django.contrib.auth.signals import user_logged_in
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from phonenumber_field.serializerfields import PhoneNumberField
from rest_framework import generics, serializers, status
from rest_framework.exceptions import AuthenticationFailed, NotFound, Throttled
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView
from rest_framework_simplejwt.views import TokenObtainPairView

from api.core.limits import DailyScopedRateThrottle
from api.core.pagination import PagePagination
from api.core.roles import Role
from api.estate.serializers import ScopeSummarySerializer

from .models import ConsentChannel, User, Vulnerability, VulnerabilityKind
from .otp import OTP_DIGITS
from .selectors import (
    EXTRA_ROLES,
    VULNERABILITY_READER_ROLES,
    me_profile,
    vulnerabilities_visible_to,
    vulnerability_list,
)
from .services import (
    LimitReached,
    otp_request,
    otp_verify,
    token_refresh,
    token_revoke,
    user_profile_update,
    vulnerability_record,
    vulnerability_withdraw,
)


class LimitsAsThrottledMixin:
    """Render a service's LimitReached as DRF's 429, with its Retry-After header."""

    def handle_exception(self, exc):
        if isinstance(exc, LimitReached):
            exc = Throttled(wait=exc.retry_after, detail=str(exc.message), code=exc.code)
        return super().handle_exception(exc)


TokenPairSerializer = inline_serializer(
    "TokenPair", {"access": serializers.CharField(), "refresh": serializers.CharField()}
)
DetailSerializer = inline_serializer("AuthDetail", {"detail": serializers.CharField()})


# --- Staff: e-mail and password ---------------------------------------------------------------


class StaffTokenApi(TokenObtainPairView):
    """Staff log in with e-mail and password; repeated failures lock the account (axes)."""

    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "login_ip"

    @extend_schema(tags=["auth"], auth=[])
    def post(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        try:
            serializer.is_valid(raise_exception=True)
        except AuthenticationFailed:
            credentials = {"email": serializer.initial_data.get("email")}
            if AxesProxyHandler.is_locked(request._request, credentials):
                raise Throttled(
                    wait=settings.AXES_COOLOFF_TIME.total_seconds(),
                    detail=str(_("Too many failed attempts: this account is locked for now.")),
                    code="account_locked",
                ) from None
            raise
        # simplejwt does not send the signal; axes needs it to clear the failures it counted
        # (AXES_RESET_ON_SUCCESS) and to keep its log of staff logins.
        user_logged_in.send(
            sender=type(serializer.user), request=request._request, user=serializer.user
        )
        return Response(serializer.validated_data, status=status.HTTP_200_OK)


# --- Tokens -----------------------------------------------------------------------------------


class RefreshInputSerializer(serializers.Serializer):
    refresh = serializers.CharField(max_length=4096)


class TokenRefreshApi(APIView):
    """Exchange a refresh token for a new pair; the old refresh token is revoked at once."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        tags=["auth"],
        auth=[],
        request=RefreshInputSerializer,
        responses={200: TokenPairSerializer},
    )
    def post(self, request):
        serializer = RefreshInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return Response(token_refresh(refresh=serializer.validated_data["refresh"]))


class LogoutApi(APIView):
    """Revoke a refresh token so it can never be used again."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        tags=["auth"],
        auth=[],
        request=RefreshInputSerializer,
        responses={205: DetailSerializer},
    )
    def post(self, request):
        serializer = RefreshInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        token_revoke(refresh=serializer.validated_data["refresh"])
        return Response({"detail": _("Logged out.")}, status=status.HTTP_205_RESET_CONTENT)


# --- Tenants and caretakers: phone and one-time code -----------------------------------------


class OtpRequestInputSerializer(serializers.Serializer):
    phone = PhoneNumberField(
        max_length=32, help_text="E.164 (+33612345678) or French national (06 12 34 56 78)."
    )


class OtpRequestApi(LimitsAsThrottledMixin, APIView):
    """Send a login code by SMS; the answer is the same whether the number is known or not."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [ScopedRateThrottle, DailyScopedRateThrottle]
    throttle_scope = "otp_ip"
    throttle_daily_scope = "otp_ip_day"

    @extend_schema(
        tags=["auth"],
        auth=[],
        request=OtpRequestInputSerializer,
        description=(
            "Send a six-digit login code, valid five minutes, by SMS in the person's language. "
            "The answer is the same whether the number is known or not. 429 (see Retry-After): "
            "too many requests from this address in the hour or the day (`throttled`), five "
            "codes already sent to this number in 24 hours (`otp_number_limit`), or SMS paused "
            "by the daily budget (`sms_unavailable`)."
        ),
        responses={
            202: OpenApiResponse(
                DetailSerializer,
                description="If the number belongs to someone, a code is on its way by SMS.",
            ),
        },
    )
    def post(self, request):
        serializer = OtpRequestInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        otp_request(phone=serializer.validated_data["phone"])
        return Response(
            {"detail": _("If this number is registered, a code has been sent by SMS.")},
            status=status.HTTP_202_ACCEPTED,
        )


class OtpVerifyInputSerializer(serializers.Serializer):
    phone = PhoneNumberField(max_length=32)
    code = serializers.RegexField(
        rf"^[0-9]{{{OTP_DIGITS}}}$",
        max_length=OTP_DIGITS,
        error_messages={"invalid": _("The code is six digits.")},
    )


class OtpVerifyApi(LimitsAsThrottledMixin, APIView):
    """Exchange the phone number and the code received by SMS for a JWT pair."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "otp_verify_ip"

    @extend_schema(
        tags=["auth"],
        auth=[],
        request=OtpVerifyInputSerializer,
        description=(
            "Exchange the phone number and its newest code for a JWT pair; the code is then "
            "spent. 400 `otp_invalid`: wrong or expired code. 429: wait after a wrong code "
            "(`otp_wait`, see Retry-After), five wrong tries so request a new code "
            "(`otp_attempts_exhausted`), or too many requests from this address (`throttled`)."
        ),
        responses={200: TokenPairSerializer},
    )
    def post(self, request):
        serializer = OtpVerifyInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return Response(otp_verify(**serializer.validated_data))


# --- The person's own profile -----------------------------------------------------------------


class MeOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    first_name = serializers.CharField()
    last_name = serializers.CharField()
    full_name = serializers.CharField()
    phone = serializers.CharField(allow_null=True, help_text="E.164.")
    email = serializers.EmailField(allow_null=True)
    role = serializers.ChoiceField(choices=Role.choices, help_text="The role of the account.")
    roles = serializers.ListField(
        child=serializers.ChoiceField(choices=[*Role.values, *EXTRA_ROLES]),
        help_text='The account role (unless "tenant"), then "tenant" while the person is in the '
        'household of a current lease and "delegate" while they hold an active delegation.',
    )
    language = serializers.ChoiceField(choices=settings.LANGUAGES)
    scope = ScopeSummarySerializer(help_text="What the person's access covers.")


class MeUpdateInputSerializer(serializers.Serializer):
    first_name = serializers.CharField(max_length=150, allow_blank=True, required=False)
    last_name = serializers.CharField(max_length=150, allow_blank=True, required=False)
    language = serializers.ChoiceField(choices=settings.LANGUAGES, required=False)


class MeApi(APIView):
    """The person logged in: who they are, their roles, their language and their scope."""

    permission_classes = [IsAuthenticated]

    @extend_schema(tags=["me"], responses={200: MeOutputSerializer})
    def get(self, request):
        return Response(MeOutputSerializer(me_profile(user=request.user)).data)

    @extend_schema(
        tags=["me"], request=MeUpdateInputSerializer, responses={200: MeOutputSerializer}
    )
    def patch(self, request):
        serializer = MeUpdateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = user_profile_update(user=request.user, **serializer.validated_data)
        return Response(MeOutputSerializer(me_profile(user=user)).data)


# --- Vulnerabilities (kept with consent, seen by staff in charge of the home) ----------------


class VulnerabilitySerializer(serializers.Serializer):
    id = serializers.UUIDField()
    person = serializers.UUIDField(source="person_id")
    person_name = serializers.CharField(source="person.full_name")
    kind = serializers.ChoiceField(choices=VulnerabilityKind.choices)
    consent_at = serializers.DateTimeField()
    consent_channel = serializers.ChoiceField(choices=ConsentChannel.choices)


class OwnVulnerabilityInputSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=VulnerabilityKind.choices)


class VulnerabilityInputSerializer(serializers.Serializer):
    person = serializers.UUIDField()
    kind = serializers.ChoiceField(choices=VulnerabilityKind.choices)
    consent_channel = serializers.ChoiceField(
        choices=ConsentChannel.choices,
        help_text="How the person gave their consent to the member of staff (not `app`: "
        "only the person consents in the app).",
    )
    consent_at = serializers.DateTimeField(
        required=False, help_text="When they gave it (default: now)."
    )


class VulnerabilityFilterSerializer(serializers.Serializer):
    dwelling = serializers.UUIDField(required=False)
    building = serializers.UUIDField(required=False)


class VulnerabilityReaders(IsAuthenticated):
    """Staff in charge of people's homes; never technicians, contractors or tenants."""

    def has_permission(self, request, view) -> bool:
        return (
            super().has_permission(request, view)
            and request.user.role in VULNERABILITY_READER_ROLES
        )


class OwnVulnerabilitiesApi(APIView):
    """The caller's own vulnerabilities: recorded with consent in the app, withdrawn at will."""

    permission_classes = [IsAuthenticated]

    @extend_schema(tags=["me"], responses={200: VulnerabilitySerializer(many=True)})
    def get(self, request):
        rows = Vulnerability.objects.filter(person=request.user).select_related("person")
        return Response(VulnerabilitySerializer(rows, many=True).data)

    @extend_schema(
        tags=["me"],
        request=OwnVulnerabilityInputSerializer,
        responses={201: VulnerabilitySerializer},
        description=(
            "Record a vulnerability of yours (you consent, here and now, to Palier keeping it): "
            "staff in charge of your home see it, and outages of heating, lift or power there "
            "are handled first. Withdraw it at any time; it is then deleted."
        ),
    )
    def post(self, request):
        serializer = OwnVulnerabilityInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        row = vulnerability_record(
            actor=request.user,
            person=request.user,
            kind=serializer.validated_data["kind"],
            consent_channel=ConsentChannel.APP,
        )
        return Response(VulnerabilitySerializer(row).data, status=status.HTTP_201_CREATED)


class OwnVulnerabilityApi(APIView):
    """Withdraw the consent to one of the caller's vulnerabilities: it is deleted."""

    permission_classes = [IsAuthenticated]

    @extend_schema(tags=["me"], responses={204: None})
    def delete(self, request, pk):
        row = Vulnerability.objects.filter(person=request.user, pk=pk).first()
        if row is None:
            raise NotFound()
        vulnerability_withdraw(actor=request.user, vulnerability=row)
        return Response(status=status.HTTP_204_NO_CONTENT)


class VulnerabilitiesApi(generics.ListAPIView):
    """Vulnerabilities of the households in the caller's care; every read is logged."""

    permission_classes = [VulnerabilityReaders]
    serializer_class = VulnerabilitySerializer
    pagination_class = PagePagination
    filter_backends: list = []

    @extend_schema(tags=["people"], parameters=[VulnerabilityFilterSerializer])
    def get(self, request, *args, **kwargs):
        query = VulnerabilityFilterSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        rows = vulnerability_list(viewer=request.user, **query.validated_data)
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(VulnerabilitySerializer(page, many=True).data)

    @extend_schema(
        tags=["people"],
        request=VulnerabilityInputSerializer,
        responses={201: VulnerabilitySerializer},
        description=(
            "Record a vulnerability a person in your care agreed, on paper, by phone or in "
            "person, to Palier keeping. Recording it again renews the consent."
        ),
    )
    def post(self, request):
        serializer = VulnerabilityInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        person = User.objects.filter(pk=data.pop("person")).first()
        if person is None:
            raise NotFound()
        row = vulnerability_record(actor=request.user, person=person, **data)
        return Response(VulnerabilitySerializer(row).data, status=status.HTTP_201_CREATED)


class VulnerabilityApi(APIView):
    """Withdraw a vulnerability on the person's word: it is deleted."""

    permission_classes = [VulnerabilityReaders]

    @extend_schema(tags=["people"], responses={204: None})
    def delete(self, request, pk):
        row = vulnerabilities_visible_to(request.user).filter(pk=pk).first()
        if row is None:
            raise NotFound()
        vulnerability_withdraw(actor=request.user, vulnerability=row)
        return Response(status=status.HTTP_204_NO_CONTENT)
