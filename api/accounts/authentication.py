"""Glue between Palier's people and the authentication libraries (simplejwt, django-axes)."""

from django.http import HttpRequest
from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.throttling import BaseThrottle
from rest_framework_simplejwt import authentication as simplejwt_authentication


class JWTAuthentication(simplejwt_authentication.JWTAuthentication):
    """simplejwt's bearer-token authentication, its refusals in the API's error shape.

    simplejwt reports a bad token with a nested detail (one message per token class tried);
    clients need one code, `token_not_valid`, to know they should refresh or log in again.
    """

    def authenticate(self, request):
        try:
            return super().authenticate(request)
        except AuthenticationFailed as exc:
            if isinstance(exc.detail, dict):
                raise AuthenticationFailed(
                    str(exc.detail.get("detail", "Given token not valid for any token type")),
                    code=str(exc.detail.get("code", "token_not_valid")),
                ) from None
            raise


class JWTAuthenticationScheme(SimpleJWTScheme):
    """OpenAPI: the same bearer JWT scheme as simplejwt's own class."""

    target_class = "api.accounts.authentication.JWTAuthentication"


def axes_username(request: HttpRequest | None, credentials: dict | None) -> str | None:
    """The login name axes counts failures against: the e-mail, case and spaces ignored.

    Staff log in with `email__iexact`, so without this `Agent@x` and `agent@x` would each get
    their own five tries.
    """
    value = (credentials or {}).get("email")
    if value is None and request is not None:
        data = getattr(request, "data", None)
        if data is None:
            data = request.POST
        value = data.get("email") if hasattr(data, "get") else None
    return value.strip().lower() if isinstance(value, str) else None


def client_ip(request: HttpRequest) -> str | None:
    """The client's address as every per-address limit sees it (DRF throttles and axes).

    REMOTE_ADDR, unless NUM_PROXIES trusted proxies stand in front: then the address the
    nearest of them appended to X-Forwarded-For, never what the client wrote there itself.
    """
    return BaseThrottle().get_ident(request) or None
