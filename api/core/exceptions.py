"""One error shape for the whole API.

Every error body is ``{"code": str, "detail": str, "fields": {path: [messages]}}``; ``fields``
appears only on validation errors, with nested paths joined by dots (``photos.0.size``).
"""

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.serializers import as_serializer_error
from rest_framework.views import exception_handler as drf_exception_handler


class ServiceError(Exception):
    """A business rule refused the operation; rendered as a 400 (or the given status)."""

    def __init__(
        self,
        message: str,
        *,
        code: str = "invalid",
        field: str | None = None,
        status_code: int = status.HTTP_400_BAD_REQUEST,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.field = field
        self.status_code = status_code


def refused(message: str, code: str = "not_allowed", *, field: str | None = None) -> ServiceError:
    """The actor may not do this (403)."""
    return ServiceError(message, code=code, field=field, status_code=status.HTTP_403_FORBIDDEN)


def not_found(field: str | None = None) -> ServiceError:
    """Nothing of that name in the actor's scope (404): out of scope reads as absent."""
    return ServiceError("Not found.", code="not_found", field=field, status_code=404)


def conflict(message: str, code: str = "conflict") -> ServiceError:
    """The object's state does not allow this now (409)."""
    return ServiceError(message, code=code, status_code=status.HTTP_409_CONFLICT)


def flatten_errors(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """Turn DRF's nested error detail into ``{"a.b.0": ["message"]}``."""
    flat: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            if key == "non_field_errors" and not prefix:
                path = "non_field_errors"
            for sub_path, messages in flatten_errors(value, path).items():
                flat.setdefault(sub_path, []).extend(messages)
    elif isinstance(detail, list):
        if all(not isinstance(item, dict | list) for item in detail):
            flat[prefix or "non_field_errors"] = [str(item) for item in detail]
        else:
            for index, item in enumerate(detail):
                if item in ({}, []):
                    continue
                path = f"{prefix}.{index}" if prefix else str(index)
                for sub_path, messages in flatten_errors(item, path).items():
                    flat.setdefault(sub_path, []).extend(messages)
    else:
        flat[prefix or "non_field_errors"] = [str(detail)]
    return flat


def error_body(code: str, detail: str, fields: dict[str, list[str]] | None = None) -> dict:
    """The error body every endpoint returns."""
    body: dict[str, Any] = {"code": code, "detail": detail}
    if fields:
        body["fields"] = fields
    return body


def api_exception_handler(exc: Exception, context: dict) -> Response | None:
    """DRF exception handler rendering every error in the one shape."""
    if isinstance(exc, ServiceError):
        fields = getattr(exc, "fields", None) or ({exc.field: [exc.message]} if exc.field else None)
        return Response(error_body(exc.code, exc.message, fields), status=exc.status_code)
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(as_serializer_error(exc))
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()

    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        response.data = error_body(
            "validation_error", "Some fields are not valid.", flatten_errors(exc.detail)
        )
    else:
        detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
        code = exc.get_codes() if isinstance(exc, exceptions.APIException) else "error"
        if isinstance(detail, dict | list):
            response.data = error_body(
                str(code if isinstance(code, str) else "error"),
                "The request was refused.",
                flatten_errors(detail),
            )
        else:
            response.data = error_body(str(code), str(detail))
    return response


def json_not_found(request, exception=None) -> JsonResponse:
    """Django-level 404 in the API's error shape."""
    return JsonResponse(error_body("not_found", "Not found."), status=404)


def json_server_error(request) -> JsonResponse:
    """Django-level 500 in the API's error shape; the traceback goes to the log, never out."""
    return JsonResponse(error_body("server_error", "Internal error."), status=500)


def json_bad_request(request, exception=None) -> JsonResponse:
    """Django-level 400 (bad host, suspicious operation) in the API's error shape."""
    return JsonResponse(error_body("bad_request", "Bad request."), status=400)


def json_permission_denied(request, exception=None) -> JsonResponse:
    """Django-level 403 in the API's error shape."""
    return JsonResponse(error_body("permission_denied", "Permission denied."), status=403)
