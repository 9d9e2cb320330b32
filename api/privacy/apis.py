"""A person's rights: export of their data, who read it; erasure and rectification by staff."""

import uuid

from django.http import FileResponse, HttpRequest, JsonResponse
from django.views.decorators.http import require_GET
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import generics, mixins, status, viewsets
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from api.accounts.services import personal_data_access_record
from api.core.exceptions import ServiceError, error_body
from api.estate.acting import ACTING_PARAMETERS, acting_context
from api.estate.permissions import ALL_ROLES, RoleAccess

from . import selectors, services
from .serializers import (
    AccessLogSerializer,
    ErasureInputSerializer,
    ErasureOutputSerializer,
    ExportOutputSerializer,
    ExportRequestSerializer,
    RectificationInputSerializer,
    RectificationOutputSerializer,
)


def _subject(request, context: str | None):
    """The person whose data is asked for: the caller, or the tenant staff act for.

    A delegate acts for a tenant's requests, not for their personal data. Staff reads are
    logged under `context` (None: the service logs it).
    """
    acting = acting_context(request)
    if acting.delegation is not None:
        raise PermissionDenied("A delegate cannot read the personal data of the person.")
    if acting.on_behalf_of is not None and context:
        personal_data_access_record(
            viewer=request.user, subjects=[acting.on_behalf_of], context=context
        )
    return acting


class ExportListApi(generics.ListAPIView):
    """The exports of the caller's data (or, for staff, of the tenant they act for)."""

    permission_classes = [IsAuthenticated, RoleAccess]
    read_roles = write_roles = ALL_ROLES
    serializer_class = ExportOutputSerializer
    filter_backends: list = []

    def get_queryset(self):
        return selectors.exports_of(_subject(self.request, "privacy.exports").subject)

    @extend_schema(tags=["privacy"], parameters=ACTING_PARAMETERS)
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(
        tags=["privacy"],
        parameters=ACTING_PARAMETERS,
        request=ExportRequestSerializer,
        responses={202: ExportOutputSerializer},
        description=(
            "Start an export of everything Palier holds about the person: a JSON file and a "
            f"PDF, behind signed links valid {services.EXPORT_LINK_LIFETIME.days * 24} hours. "
            f"At most {services.EXPORTS_PER_DAY} a day (`export_limit`, 429)."
        ),
    )
    def post(self, request, *args, **kwargs):
        acting = _subject(request, None)
        export = services.export_request(
            actor=request.user, subject=acting.subject, reason=acting.reason
        )
        body = ExportOutputSerializer(export, context={"request": request}).data
        return Response(body, status=status.HTTP_202_ACCEPTED)


class ExportDetailApi(generics.RetrieveAPIView):
    """One export of the caller's data: its state and, once ready, its download links."""

    permission_classes = [IsAuthenticated, RoleAccess]
    read_roles = write_roles = ALL_ROLES
    serializer_class = ExportOutputSerializer

    def get_queryset(self):
        return selectors.exports_of(_subject(self.request, "privacy.export_status").subject)

    def get_object(self):
        try:
            uuid.UUID(str(self.kwargs["pk"]))
        except ValueError as exc:
            raise NotFound() from exc
        return super().get_object()

    @extend_schema(tags=["privacy"], parameters=ACTING_PARAMETERS)
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class AccessLogApi(generics.ListAPIView):
    """Who on the staff read the caller's personal data, when, and where, newest first."""

    permission_classes = [IsAuthenticated, RoleAccess]
    read_roles = write_roles = ALL_ROLES
    serializer_class = AccessLogSerializer
    filter_backends: list = []

    def get_queryset(self):
        return selectors.access_log_for(_subject(self.request, "privacy.access_log").subject)

    @extend_schema(tags=["privacy"], parameters=ACTING_PARAMETERS)
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class _ScopedRecordViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    permission_classes = [IsAuthenticated, RoleAccess]
    read_roles = write_roles = selectors.PRIVACY_STAFF_ROLES
    ordering_fields = ["created_at"]
    ordering = ["-created_at"]

    def get_object(self):
        try:
            uuid.UUID(str(self.kwargs["pk"]))
        except ValueError as exc:
            raise NotFound() from exc
        return super().get_object()

    def _person(self, person_id):
        person = selectors.privacy_subject_for(self.request.user, person_id)
        if person is None:
            raise NotFound()
        return person


@extend_schema_view(
    list=extend_schema(tags=["privacy"]),
    retrieve=extend_schema(tags=["privacy"]),
    create=extend_schema(
        tags=["privacy"],
        request=ErasureInputSerializer,
        responses={201: ErasureOutputSerializer},
        description=(
            "Erase a person on their request: their account is closed at once; a worker then "
            "empties it and removes their name, e-mail and phone from every record except "
            "those the law requires to be kept (docs/privacy-rights.md). `executed_at` is set "
            "when that is done."
        ),
    ),
)
class ErasureRequestViewSet(mixins.CreateModelMixin, _ScopedRecordViewSet):
    """Erasure requests of people in the staff member's scope."""

    serializer_class = ErasureOutputSerializer

    def get_queryset(self):
        return selectors.erasure_requests_visible_to(self.request.user)

    def create(self, request, *args, **kwargs):
        serializer = ErasureInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        record = services.person_erase(
            actor=request.user, subject=self._person(data["person"]), reason=data["reason"]
        )
        return Response(ErasureOutputSerializer(record).data, status=status.HTTP_201_CREATED)


@extend_schema_view(
    list=extend_schema(tags=["privacy"]),
    retrieve=extend_schema(tags=["privacy"]),
    create=extend_schema(
        tags=["privacy"],
        request=RectificationInputSerializer,
        responses={201: RectificationOutputSerializer},
    ),
)
class RectificationViewSet(mixins.CreateModelMixin, _ScopedRecordViewSet):
    """Corrections of the name, phone or e-mail of people in the staff member's scope."""

    serializer_class = RectificationOutputSerializer

    def get_queryset(self):
        return selectors.rectifications_visible_to(self.request.user)

    def create(self, request, *args, **kwargs):
        serializer = RectificationInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        person = self._person(data.pop("person"))
        reason = data.pop("reason")
        record = services.person_rectify(
            actor=request.user, subject=person, reason=reason, changes=data
        )
        return Response(RectificationOutputSerializer(record).data, status=status.HTTP_201_CREATED)


@require_GET
def export_download(request: HttpRequest, token: str):
    """Serve one file of an export; the signed, expiring link is the credential."""
    try:
        export, kind = services.export_from_token(token)
    except ServiceError as error:
        return JsonResponse(error_body(error.code, error.message), status=error.status_code)
    file = export.pdf_file if kind == "pdf" else export.json_file
    if not file:
        return JsonResponse(error_body("expired", "This export has expired."), status=410)
    response = FileResponse(
        file.open("rb"),
        as_attachment=True,
        filename=file.name.rsplit("/", 1)[-1],
        content_type="application/pdf" if kind == "pdf" else "application/json",
    )
    response["Cache-Control"] = "private, no-store"
    response["Referrer-Policy"] = "no-referrer"
    return response
