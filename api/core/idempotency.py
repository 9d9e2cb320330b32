"""`Idempotency-Key` on every POST of the API: a replay returns the first response.

Phones on a bad network resend a request when they did not get its answer. A POST carrying an
`Idempotency-Key` header is run once per (person, key): its response (status, body and a few
headers) is kept for 24 hours and returned again, marked `Idempotent-Replayed: true`, when the
same key comes back with the same request. The same key with a different request is refused
(422), and a key whose first request is still running gets a 409.

Keys are scoped per person (read from the bearer token), so two people can never collide.
Requests without a valid token pass through untouched (the view answers 401). Responses of
5xx, 401, 409 and 429 are not kept, so the client may retry them with the same key.
"""

import hashlib
import json
import re

from django.conf import settings
from django.core.cache import cache
from django.http import HttpResponse, JsonResponse
from rest_framework.settings import api_settings

from api.core.exceptions import error_body

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
KEY_PATTERN = re.compile(r"^[!-~]{1,255}$")
TTL_SECONDS = 24 * 3600
LOCK_SECONDS = 60
KEPT_HEADERS = ("Content-Type", "Location", "ETag")
NOT_KEPT_STATUSES = frozenset({401, 409, 429})
PATH_PREFIX = "/api/"


def _user_id(request) -> str | None:
    """The person behind the bearer token, or None (the view will refuse them itself)."""
    from rest_framework.request import Request

    wrapped = Request(request)
    for authenticator_class in api_settings.DEFAULT_AUTHENTICATION_CLASSES:
        try:
            result = authenticator_class().authenticate(wrapped)
        except Exception:  # noqa: BLE001 - a bad token is the view's to refuse, with a 401
            return None
        if result is not None:
            user = result[0]
            return str(user.pk) if user is not None and user.is_authenticated else None
    return None


def _fingerprint(request) -> str:
    """What makes two requests "the same": method, path, query and body."""
    digest = hashlib.sha256()
    digest.update(f"{request.method} {request.get_full_path()}\n".encode())
    content_type = request.META.get("CONTENT_TYPE", "")
    if content_type.startswith("multipart/"):
        # Uploads are not read into memory here; their size identifies a resend well enough.
        digest.update(f"multipart {request.META.get('CONTENT_LENGTH', '')}".encode())
    else:
        digest.update(request.body)
    return digest.hexdigest()


def cache_key_for(user_id: str, key: str) -> str:
    """Where the response to a person's key is kept (a digest: keys may be long)."""
    return "idem:v1:" + hashlib.sha256(f"{user_id}\0{key}".encode()).hexdigest()


def _error(status: int, code: str, detail: str) -> JsonResponse:
    return JsonResponse(error_body(code, detail), status=status)


class IdempotencyMiddleware:
    """Django middleware: stores and replays POST responses by `Idempotency-Key`."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        key = request.headers.get(HEADER)
        if request.method != "POST" or key is None or not request.path.startswith(PATH_PREFIX):
            return self.get_response(request)
        if not KEY_PATTERN.match(key):
            return _error(
                400,
                "invalid_idempotency_key",
                "Idempotency-Key: 1 to 255 visible ASCII characters.",
            )
        user_id = _user_id(request)
        if user_id is None:
            return self.get_response(request)
        content_length = int(request.META.get("CONTENT_LENGTH") or 0)
        multipart = request.META.get("CONTENT_TYPE", "").startswith("multipart/")
        if not multipart and content_length > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
            return self.get_response(request)
        fingerprint = _fingerprint(request)
        cache_key = cache_key_for(user_id, key)
        stored = cache.get(cache_key)
        if stored is not None:
            return self._replay(stored, fingerprint)
        lock_key = f"{cache_key}:lock"
        if not cache.add(lock_key, 1, timeout=LOCK_SECONDS):
            return _error(
                409, "idempotency_key_in_use", "A request with this Idempotency-Key is running."
            )
        try:
            response = self.get_response(request)
            self._store(cache_key, fingerprint, response)
        finally:
            cache.delete(lock_key)
        return response

    @staticmethod
    def _replay(stored: dict, fingerprint: str) -> HttpResponse:
        if stored["fingerprint"] != fingerprint:
            return _error(
                422,
                "idempotency_key_reused",
                "This Idempotency-Key was used for a different request; use a new key.",
            )
        response = HttpResponse(stored["body"], status=stored["status"])
        for name, value in stored["headers"].items():
            response[name] = value
        response[REPLAYED_HEADER] = "true"
        return response

    @staticmethod
    def _store(cache_key: str, fingerprint: str, response) -> None:
        if response.status_code >= 500 or response.status_code in NOT_KEPT_STATUSES:
            return
        if getattr(response, "streaming", False):
            return
        if hasattr(response, "render") and not getattr(response, "is_rendered", True):
            response.render()
        cache.set(
            cache_key,
            {
                "fingerprint": fingerprint,
                "status": response.status_code,
                "headers": {name: response[name] for name in KEPT_HEADERS if name in response},
                "body": bytes(response.content),
            },
            timeout=TTL_SECONDS,
        )


IDEMPOTENCY_PARAMETER = {
    "in": "header",
    "name": HEADER,
    "required": False,
    "description": (
        "Any unique string (a UUID is best). A resend with the same key returns the first "
        "response (header Idempotent-Replayed: true) for 24 hours instead of acting twice."
    ),
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$"},
}


def add_idempotency_header(result: dict, generator, request, public) -> dict:
    """drf-spectacular post-processing hook: document the header and its 422 on every POST."""
    ref = {"$ref": "#/components/schemas/Error"}
    for path_item in result.get("paths", {}).values():
        operation = path_item.get("post")
        if operation is None:
            continue
        parameters = operation.setdefault("parameters", [])
        if not any(p.get("name") == HEADER for p in parameters if isinstance(p, dict)):
            parameters.append(json.loads(json.dumps(IDEMPOTENCY_PARAMETER)))
        operation.setdefault("responses", {}).setdefault(
            "422",
            {
                "description": "The Idempotency-Key was already used for another request.",
                "content": {"application/json": {"schema": ref}},
            },
        )
    return result
