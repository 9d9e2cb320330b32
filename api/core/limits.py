"""Limits every request meets before any view runs, each refusal in the one error shape.

- Request bodies: a JSON or form body above DATA_UPLOAD_MAX_MEMORY_SIZE, or any body (uploads
  included) above MAX_REQUEST_BYTES, is refused with 413 before it is read.
- Form fields: more than DATA_UPLOAD_MAX_NUMBER_FIELDS is a 400.
- Per-address daily limits next to the hourly ones (DailyScopedRateThrottle).
- Security headers Django does not send itself (a Content-Security-Policy on HTML pages).
"""

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.http import HttpRequest, HttpResponse, JsonResponse
from rest_framework.throttling import ScopedRateThrottle

from api.core.exceptions import error_body

# The admin site (unfold) and the API documentation pages load their own scripts and styles
# from this origin only; nothing is ever framed, and nothing is sent elsewhere. Scripts may be
# inline and evaluated: unfold's Alpine.js build and the docs' initialisers need it.
HTML_CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self' 'unsafe-inline' 'unsafe-eval'; font-src 'self' data:; "
    "connect-src 'self'; "
    "worker-src 'self' blob:; frame-ancestors 'none'; base-uri 'self'; form-action 'self'; "
    "object-src 'none'"
)


def too_large(limit: int) -> JsonResponse:
    """413 in the API's error shape, saying the limit."""
    megabytes = limit / (1024 * 1024)
    return JsonResponse(
        error_body(
            "request_too_large",
            f"The request body is too large: at most {megabytes:g} MB.",
        ),
        status=413,
    )


def _declared_length(request: HttpRequest) -> int | None:
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except (TypeError, ValueError):
        return None
    return length if length >= 0 else None


class RequestLimitsMiddleware:
    """Refuse oversized bodies up front (413) and render Django's own body limits as JSON."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        length = _declared_length(request)
        if length is None:
            return JsonResponse(
                error_body("bad_request", "The Content-Length header is not valid."), status=400
            )
        content_type = request.META.get("CONTENT_TYPE", "")
        total = settings.MAX_REQUEST_BYTES
        if length > total:
            return too_large(total)
        data_limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        uploading = content_type.startswith("multipart/form-data")
        if not uploading and data_limit is not None and length > data_limit:
            return too_large(data_limit)
        response = self.get_response(request)
        return self._with_headers(request, response)

    def process_exception(self, request: HttpRequest, exception: Exception):
        """Django's limits hit while a view reads the body (a chunked request, say)."""
        if isinstance(exception, RequestDataTooBig):
            return too_large(settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
        if isinstance(exception, TooManyFieldsSent | TooManyFilesSent):
            return JsonResponse(
                error_body("too_many_fields", "The request has too many fields or files."),
                status=400,
            )
        return None

    @staticmethod
    def _with_headers(request: HttpRequest, response: HttpResponse) -> HttpResponse:
        content_type = response.get("Content-Type", "")
        if content_type.startswith("text/html"):
            response.headers.setdefault("Content-Security-Policy", HTML_CONTENT_SECURITY_POLICY)
        response.headers.setdefault(
            "Permissions-Policy", "camera=(), microphone=(), geolocation=()"
        )
        return response


class DailyScopedRateThrottle(ScopedRateThrottle):
    """A second per-address limit on a view, its scope in `throttle_daily_scope`."""

    scope_attr = "throttle_daily_scope"
