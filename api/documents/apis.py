"""Rent receipt endpoints: the household's receipts and balance; staff import and regenerate."""

import uuid

from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import generics, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from api.estate.permissions import RoleAccess

from . import selectors, services
from .filters import BalanceFilter, RentReceiptFilter
from .renderers import FileRenderer
from .serializers import (
    BalanceOutputSerializer,
    LedgerImportInputSerializer,
    LedgerImportOutputSerializer,
    RentReceiptOutputSerializer,
)


@extend_schema_view(list=extend_schema(tags=["rent"]), retrieve=extend_schema(tags=["rent"]))
class RentReceiptViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Rent receipts (quittances) of the caller's leases, or of the agency's."""

    permission_classes = [IsAuthenticated, RoleAccess]
    read_roles = selectors.FINANCE_READER_ROLES
    write_roles = selectors.FINANCE_WRITER_ROLES
    serializer_class = RentReceiptOutputSerializer
    filterset_class = RentReceiptFilter
    ordering_fields = ["period", "generated_at"]
    ordering = ["-period"]

    def get_queryset(self):
        return selectors.receipts_visible_to(self.request.user).select_related("lease", "line")

    def get_object(self):
        try:
            uuid.UUID(str(self.kwargs["pk"]))
        except ValueError as exc:
            raise NotFound() from exc
        return super().get_object()

    @extend_schema(tags=["rent"], responses={(200, "application/pdf"): OpenApiTypes.BINARY})
    @action(detail=True, methods=["get"], renderer_classes=[JSONRenderer, FileRenderer])
    def pdf(self, request, pk=None):
        """Download the receipt as a PDF."""
        receipt = self.get_object()
        return FileResponse(
            receipt.file.open("rb"),
            content_type="application/pdf",
            filename=f"{receipt.kind}-{receipt.period:%Y-%m}.pdf",
        )

    @extend_schema(tags=["rent"], request=None, responses={200: RentReceiptOutputSerializer})
    @action(detail=True, methods=["post"])
    def regenerate(self, request, pk=None):
        """Generate the PDF again from its ledger line (after a correction, say)."""
        receipt = self.get_object()
        services.receipt_generate(line=receipt.line, actor=request.user)
        fresh = self.get_queryset().filter(line_id=receipt.line_id).first()
        if fresh is None:
            raise NotFound()
        return Response(self.get_serializer(fresh).data)


class LedgerImportApi(APIView):
    """Import the month's rent-ledger lines exported by the accounting system (CSV)."""

    permission_classes = [IsAuthenticated, RoleAccess]
    read_roles = frozenset()
    write_roles = selectors.FINANCE_WRITER_ROLES
    # A JSON body is parsed only to answer that the file is missing.
    parser_classes = [MultiPartParser, FormParser, JSONParser]

    @extend_schema(
        tags=["rent"],
        request={"multipart/form-data": LedgerImportInputSerializer},
        responses={200: LedgerImportOutputSerializer, 201: LedgerImportOutputSerializer},
    )
    def post(self, request):
        serializer = LedgerImportInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        upload = serializer.validated_data["file"]
        if upload.size > services.MAX_IMPORT_BYTES:
            from api.core.exceptions import ServiceError

            raise ServiceError("The file is larger than 20 MB.", field="file")
        record = services.rent_ledger_import(
            organisation=request.user.organisation,
            actor=request.user,
            raw=upload.read(),
            file_name=upload.name or "",
            dry_run=serializer.validated_data["dry_run"],
        )
        code = status.HTTP_200_OK if record.dry_run else status.HTTP_201_CREATED
        return Response(LedgerImportOutputSerializer(record).data, status=code)


class BalanceApi(generics.ListAPIView):
    """The account of each lease in scope: total due, paid, balance and last payment."""

    permission_classes = [IsAuthenticated, RoleAccess]
    read_roles = selectors.FINANCE_READER_ROLES
    write_roles = frozenset()
    serializer_class = BalanceOutputSerializer
    filterset_class = BalanceFilter
    ordering_fields = ["start_date", "reference"]
    ordering = ["-start_date"]
    search_fields = ["reference", "dwelling__reference"]

    def get_queryset(self):
        return selectors.balances_visible_to(self.request.user).select_related("dwelling")

    @extend_schema(tags=["rent"])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)
