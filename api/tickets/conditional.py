"""Conditional requests: ETag and If-None-Match (304) on reads, If-Match (412) on writes.

A detail's ETag comes from the object's version (bumped by every change), the viewer and their
language (the representation depends on both); a list's from a digest of its rendered body. A phone
that sends back the ETag it holds gets a bodiless 304 when nothing changed, and a write sent
with `If-Match` is refused with 412 when someone else changed the object meanwhile.
"""

import hashlib

from django.http import HttpResponseNotModified
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import status
from rest_framework.exceptions import APIException
from rest_framework.response import Response

IF_NONE_MATCH = OpenApiParameter(
    "If-None-Match",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    description="The ETag the client holds: 304 without a body when it is still current.",
)
IF_MATCH = OpenApiParameter(
    "If-Match",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    description="The ETag the change is based on: 412 if the object changed since.",
)
NOT_MODIFIED = OpenApiResponse(description="Not modified: the ETag sent is still current.")


class PreconditionFailed(APIException):
    status_code = status.HTTP_412_PRECONDITION_FAILED
    default_detail = "The object changed since you read it; reload it and try again."
    default_code = "precondition_failed"


def version_etag(kind: str, obj, user, language: str) -> str:
    """A strong ETag for one object as this viewer, in this language, sees it."""
    viewer = hashlib.sha256(f"{user.pk}:{language}".encode()).hexdigest()[:10]
    return f'"{kind}-{obj.pk}-{obj.version}-{viewer}"'


def _tags(header: str) -> set[str]:
    return {tag.strip().removeprefix("W/") for tag in header.split(",") if tag.strip()}


def not_modified(request, etag: str) -> bool:
    """The client's If-None-Match names this ETag (or any)."""
    header = request.headers.get("If-None-Match")
    if not header:
        return False
    tags = _tags(header)
    return "*" in tags or etag in tags


def check_if_match(request, etag: str) -> None:
    """Refuse a write based on another version than the current one."""
    header = request.headers.get("If-Match")
    if not header:
        return
    tags = _tags(header)
    if "*" not in tags and etag not in tags:
        raise PreconditionFailed()


class ConditionalGetMixin:
    """Adds an ETag to successful GET responses and answers 304 when the client has it."""

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        if (
            request.method == "GET"
            and isinstance(response, Response)
            and response.status_code == status.HTTP_200_OK
            and response.data is not None
        ):
            etag = response.headers.get("ETag")
            if not etag:
                response.render()
                etag = '"' + hashlib.sha256(response.content).hexdigest()[:40] + '"'
                response["ETag"] = etag
            if not_modified(request, etag):
                return HttpResponseNotModified(headers={"ETag": etag})
        return response
