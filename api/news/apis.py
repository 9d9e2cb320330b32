"""News endpoints: the tenant feed, staff posts and files, households' acknowledgements."""

from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from api.core.permissions import uuid_or_404
from api.documents.renderers import FileRenderer
from api.estate.acting import ACTING_PARAMETERS, acting_context
from api.estate.models import Building, Entrance, Residence
from api.estate.permissions import ALL_ROLES, RoleAccess
from api.estate.selectors import (
    buildings_visible_to,
    entrances_visible_to,
    residences_visible_to,
)

from . import selectors, services
from .filters import PostFilter
from .serializers import (
    AcknowledgementOutputSerializer,
    AcknowledgementsSerializer,
    AttachmentInputSerializer,
    AttachmentOutputSerializer,
    PostInputSerializer,
    PostOutputSerializer,
)

NO_CONTENT = OpenApiResponse(description="Deleted.")
FILE_TYPES = ("application/pdf", "image/jpeg", "image/png", "image/webp")
FILE_RESPONSES = {(200, media): OpenApiTypes.BINARY for media in FILE_TYPES}
PLACES = (
    ("residence", Residence, residences_visible_to),
    ("building", Building, buildings_visible_to),
    ("entrance", Entrance, entrances_visible_to),
)


def _places(user, data: dict) -> dict:
    """Place ids from the request, resolved within the caller's scope."""
    from api.core.exceptions import ServiceError

    places = {}
    for field, _model, selector in PLACES:
        if field in data:
            value = data.pop(field)
            if value is None:
                places[field] = None
                continue
            found = selector(user).filter(pk=value).first()
            if found is None:
                raise ServiceError(f"No such {field} in your scope.", field=field)
            places[field] = found
    return places


@extend_schema_view(
    list=extend_schema(tags=["news"], summary="The feed: current pinned posts first"),
    retrieve=extend_schema(tags=["news"]),
    create=extend_schema(
        tags=["news"], request=PostInputSerializer, responses={201: PostOutputSerializer}
    ),
    partial_update=extend_schema(
        tags=["news"], request=PostInputSerializer, responses={200: PostOutputSerializer}
    ),
    destroy=extend_schema(tags=["news"], responses={204: NO_CONTENT}),
)
class PostViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """News and works of the caller's residence, building and entrance."""

    permission_classes = [IsAuthenticated, RoleAccess]
    read_roles = ALL_ROLES
    write_roles = selectors.POST_WRITER_ROLES
    serializer_class = PostOutputSerializer
    filterset_class = PostFilter
    search_fields = ["title", "body", "project"]
    ordering_fields = ["publish_at", "created_at"]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_permissions(self):
        if self.action == "acknowledge":
            # Households answer; the post itself is found through the reader's scope.
            self.write_roles = selectors.ACKNOWLEDGER_ROLES
        return super().get_permissions()

    def get_queryset(self):
        return (
            selectors.feed(self.request.user)
            .select_related("residence", "building__residence", "entrance__building__residence")
            .prefetch_related("attachments")
        )

    def get_object(self):
        uuid_or_404(self.kwargs["pk"])
        return super().get_object()

    def _output(self, post, code=status.HTTP_200_OK) -> Response:
        return Response(self.get_serializer(self.get_queryset().get(pk=post.pk)).data, code)

    def create(self, request):
        serializer = PostInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        places = _places(request.user, data)
        post = services.post_create(actor=request.user, **places, **data)
        return self._output(post, status.HTTP_201_CREATED)

    def partial_update(self, request, pk=None):
        post = self.get_object()
        serializer = PostInputSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        data.update(_places(request.user, data))
        services.post_update(actor=request.user, post=post, data=data)
        return self._output(post)

    def destroy(self, request, pk=None):
        services.post_delete(actor=request.user, post=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        tags=["news"],
        parameters=ACTING_PARAMETERS,
        request=None,
        responses={200: AcknowledgementOutputSerializer},
    )
    @action(detail=True, methods=["post"])
    def acknowledge(self, request, pk=None):
        """The caller's household has seen this post (an access request, say)."""
        post = self.get_object()
        context = acting_context(request)
        ack = services.post_acknowledge(
            actor=request.user, post=post, on_behalf_of=context.on_behalf_of
        )
        return Response(AcknowledgementOutputSerializer(ack).data)

    @extend_schema(tags=["news"], responses={200: AcknowledgementsSerializer})
    @action(detail=True, methods=["get"])
    def acknowledgements(self, request, pk=None):
        """For staff: which households acknowledged the post and which have not yet."""
        if request.user.role not in selectors.POST_WRITER_ROLES:
            self.permission_denied(request)
        post = self.get_object()
        return Response(AcknowledgementsSerializer(selectors.post_acknowledgements(post)).data)

    @extend_schema(
        tags=["news"],
        request={"multipart/form-data": AttachmentInputSerializer},
        responses={201: AttachmentOutputSerializer},
    )
    @action(detail=True, methods=["post"], parser_classes=[MultiPartParser, FormParser])
    def attachments(self, request, pk=None):
        """Attach a PDF or an image (10 MB at most)."""
        post = self.get_object()
        serializer = AttachmentInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        attachment = services.post_attachment_add(
            actor=request.user, post=post, file=serializer.validated_data["file"]
        )
        return Response(AttachmentOutputSerializer(attachment).data, status=status.HTTP_201_CREATED)

    def _attachment(self, attachment_id):
        post = self.get_object()
        uuid_or_404(attachment_id)
        attachment = post.attachments.filter(pk=attachment_id).first()
        if attachment is None:
            raise NotFound()
        return attachment

    @extend_schema(
        tags=["news"],
        parameters=[OpenApiParameter("attachment_id", OpenApiTypes.UUID, OpenApiParameter.PATH)],
        responses={**FILE_RESPONSES, 204: NO_CONTENT},
    )
    @action(
        detail=True,
        methods=["get", "delete"],
        url_path=r"attachments/(?P<attachment_id>[^/.]+)",
        renderer_classes=[JSONRenderer, FileRenderer],
    )
    def attachment(self, request, pk=None, attachment_id=None):
        """Download a post's file (readers), or remove it (staff)."""
        attachment = self._attachment(attachment_id)
        if request.method == "DELETE":
            services.post_attachment_delete(actor=request.user, attachment=attachment)
            return Response(status=status.HTTP_204_NO_CONTENT)
        return FileResponse(
            attachment.file.open("rb"),
            content_type=attachment.content_type,
            filename=attachment.name,
        )
