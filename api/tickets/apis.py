"""Requests, appointments, incidents, categories, sync and figures under /api/v1/.

ViewSets with actions: reads go through the selectors (a request out of scope is a 404), writes
through one service each. Which roles may call an action at all is declared per action; what
they may do to a given request is the services' business.
"""

import hashlib
import hmac
import time

from django.conf import settings
from django.db.models import Count, Prefetch, Q
from django.http import FileResponse, HttpResponse, StreamingHttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from api.accounts.services import personal_data_access_record
from api.core.exceptions import ServiceError
from api.core.permissions import ActionRoles, uuid_or_404
from api.core.roles import Role
from api.core.sensitive_text import staff_text_guard
from api.estate import selectors as estate
from api.estate.acting import ACTING_PARAMETERS, acting_context
from api.estate.models import Contractor, Team
from api.estate.serializers import CommonAreaOutputSerializer, DwellingOutputSerializer

from . import exports, selectors, services, sync, wording
from .conditional import (
    IF_MATCH,
    IF_NONE_MATCH,
    NOT_MODIFIED,
    ConditionalGetMixin,
    check_if_match,
    version_etag,
)
from .filters import AppointmentFilter, CategoryFilter, IncidentFilter, TicketFilter
from .models import (
    Appointment,
    Category,
    EventKind,
    Incident,
    Source,
    Ticket,
    TicketEvent,
    TicketPhoto,
    label_in,
)
from .serializers import (
    STAFF_VIEWERS,
    AppointmentSerializer,
    AssignSerializer,
    BannerSerializer,
    BookSerializer,
    BulkAssignResultSerializer,
    BulkAssignSerializer,
    CancelSerializer,
    CategorySerializer,
    CommentInputSerializer,
    CommentSerializer,
    ConfirmSerializer,
    EventSerializer,
    FollowSerializer,
    InboundSmsResultSerializer,
    InboundSmsSerializer,
    IncidentChangeSerializer,
    IncidentCloseSerializer,
    IncidentCreateSerializer,
    IncidentDetailSerializer,
    IncidentSerializer,
    KpiQuerySerializer,
    KpiSerializer,
    OutcomeSerializer,
    PhotoSerializer,
    PhotoUploadSerializer,
    ProposeSerializer,
    RateSerializer,
    SimilarQuerySerializer,
    SimilarSerializer,
    TicketCreateSerializer,
    TicketDetailSerializer,
    TicketListSerializer,
    TicketUpdateSerializer,
    TimelineSerializer,
    TransitionSerializer,
)

ALL_ROLES = frozenset(Role)
CREATORS = frozenset(services.CREATOR_ROLES)
STAFF = frozenset(selectors.STAFF_SIDE_ROLES)
EDITORS = STAFF - {Role.CONTRACTOR}
DISPATCHERS = frozenset(services.DISPATCH_ROLES)
ASSIGNERS = DISPATCHERS | {Role.TECHNICIAN}
ANSWERERS = frozenset({Role.TENANT}) | selectors.AGENCY_ROLES
QUEUE_READERS = frozenset({Role.CARETAKER, Role.AGENCY_STAFF, Role.MANAGER, Role.ADMIN})
FIGURE_READERS = EDITORS
INCIDENT_WRITERS = frozenset(services.INCIDENT_ROLES)

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PHOTO_ID = OpenApiParameter("photo_id", OpenApiTypes.UUID, OpenApiParameter.PATH)


def _language(request) -> str:
    return wording.language_of(request.user)


class TicketsBase(ConditionalGetMixin, viewsets.GenericViewSet):
    permission_classes = [ActionRoles]
    default_read_roles = ALL_ROLES
    action_roles: dict = {}

    def get_serializer_context(self):
        context = super().get_serializer_context()
        context["language"] = _language(self.request)
        context["now"] = timezone.now()
        return context

    def input(self, serializer_class, data=None):
        serializer = serializer_class(
            data=self.request.data if data is None else data, context=self.get_serializer_context()
        )
        serializer.is_valid(raise_exception=True)
        # Staff free text (comments, notes, descriptions, incident messages) is checked for
        # sensitive data before it is saved; tenants' own words are not.
        staff_text_guard(self.request, serializer.validated_data)
        return serializer.validated_data


# --- tickets ------------------------------------------------------------------------------------

_TICKET_LIST = extend_schema(
    tags=["tickets"],
    parameters=[IF_NONE_MATCH],
    responses={200: TicketListSerializer(many=True), 304: NOT_MODIFIED},
)
_TICKET_DETAIL = {200: TicketDetailSerializer, 304: NOT_MODIFIED}


@extend_schema_view(
    list=_TICKET_LIST,
    retrieve=extend_schema(tags=["tickets"], parameters=[IF_NONE_MATCH], responses=_TICKET_DETAIL),
    create=extend_schema(
        tags=["tickets"],
        parameters=ACTING_PARAMETERS,
        request=TicketCreateSerializer,
        responses={
            201: TicketDetailSerializer,
            200: OpenApiResponse(
                TicketDetailSerializer,
                description="Already filed: the same client id, or a sensor's open request "
                "about the same problem, which the tenant now follows.",
            ),
        },
    ),
    partial_update=extend_schema(
        tags=["tickets"],
        parameters=[IF_MATCH],
        request=TicketUpdateSerializer,
        responses={200: TicketDetailSerializer},
    ),
    destroy=extend_schema(
        tags=["tickets"], responses={204: OpenApiResponse(description="Erased.")}
    ),
)
class TicketViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    TicketsBase,
):
    """Requests in the caller's scope: the tenant's, the caretaker's queue, the agency's."""

    queryset = Ticket.objects.none()
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    filterset_class = TicketFilter
    search_fields = ["reference", "description"]
    ordering_fields = [
        "created_at",
        "updated_at",
        "resolve_due_at",
        "acknowledge_due_at",
        "priority",
        "status",
        "reference",
    ]
    ordering = ["-created_at"]
    action_roles = {
        "list": ALL_ROLES,
        "retrieve": ALL_ROLES,
        "create": CREATORS,
        "partial_update": EDITORS,
        # Editors reach the service, which lets only managers erase (others: 403 there),
        # so that a request out of scope is a 404 for everyone.
        "destroy": EDITORS,
        "transition": ALL_ROLES,
        "assign": ASSIGNERS,
        "comments": ALL_ROLES,
        "events": ALL_ROLES,
        "timeline": ALL_ROLES,
        "photos": ALL_ROLES,
        "photo_file": ALL_ROLES,
        "photo_thumbnail": ALL_ROLES,
        "follow": ALL_ROLES,
        "confirm": ANSWERERS,
        "rate": ANSWERERS,
        "appointments": ALL_ROLES,
        "similar": CREATORS,
        "bulk_assign": DISPATCHERS,
        "export": QUEUE_READERS,
    }

    def get_queryset(self):
        return selectors.ticket_list(user=self.request.user)

    def get_serializer_class(self):
        return TicketDetailSerializer if self.action != "list" else TicketListSerializer

    def list(self, request):
        scoped = self.filter_queryset(selectors.tickets_visible_to(request.user))
        # The id breaks ties, so that pages neither repeat nor skip a request.
        scoped = scoped.order_by(*scoped.query.order_by, "pk")
        ids = self.paginate_queryset(scoped.values_list("pk", flat=True))
        rows = selectors.ticket_rows(user=request.user, ids=list(ids))
        data = TicketListSerializer(rows, many=True, context=self.get_serializer_context()).data
        return self.get_paginated_response(data)

    def get_object(self):
        uuid_or_404(self.kwargs["pk"])
        ticket = (
            self.get_queryset()
            .select_related("reporter", "category")
            .prefetch_related("photos", "appointments")
            .filter(pk=self.kwargs["pk"])
            .first()
        )
        if ticket is None:
            raise NotFound()
        return ticket

    def etag(self, ticket) -> str:
        return version_etag("ticket", ticket, self.request.user, _language(self.request))

    def detail_response(self, ticket, *, status_code=status.HTTP_200_OK) -> Response:
        fresh = self.get_object_for(ticket.pk)
        if fresh.reporter_id and self.request.user.role in STAFF_VIEWERS:
            personal_data_access_record(
                viewer=self.request.user, subjects=[fresh.reporter_id], context="ticket.detail"
            )
        data = TicketDetailSerializer(fresh, context=self.get_serializer_context()).data
        return Response(data, status=status_code, headers={"ETag": self.etag(fresh)})

    def get_object_for(self, pk):
        self.kwargs["pk"] = str(pk)
        return self.get_object()

    def retrieve(self, request, pk=None):
        ticket = self.get_object()
        return self.detail_response(ticket)

    def create(self, request):
        context = acting_context(request)
        data = self.input(TicketCreateSerializer)
        if not context.may_create_requests:
            raise ServiceError(
                "Your delegation lets you follow requests, not file them.",
                code="not_allowed",
                status_code=403,
            )
        actor = request.user
        if actor.role == Role.TENANT:
            source = Source.TENANT_APP
        elif context.on_behalf_of is not None:
            source = Source.AGENCY
        elif actor.role in (Role.CARETAKER, Role.TECHNICIAN):
            source = Source.CARETAKER
        else:
            source = Source.AGENCY
        client_id = data.pop("id", None)
        started = timezone.now()
        existed = client_id is not None and Ticket.objects.filter(pk=client_id).exists()
        ticket = services.ticket_create(
            actor=actor,
            on_behalf_of=context.on_behalf_of,
            source=source,
            client_id=client_id,
            **data,
        )
        created = not existed and ticket.created_at >= started
        code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
        return self.detail_response(ticket, status_code=code)

    def partial_update(self, request, pk=None):
        ticket = self.get_object()
        check_if_match(request, self.etag(ticket))
        data = self.input(TicketUpdateSerializer)
        services.ticket_update(ticket=ticket, actor=request.user, **data)
        return self.detail_response(ticket)

    def destroy(self, request, pk=None):
        ticket = self.get_object()
        services.ticket_delete(ticket=ticket, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        tags=["tickets"],
        parameters=[IF_MATCH, *ACTING_PARAMETERS],
        request=TransitionSerializer,
        responses={200: TicketDetailSerializer},
    )
    @action(detail=True, methods=["post"])
    def transition(self, request, pk=None):
        """Move the request along (acknowledge, schedule, wait, resolve, reopen...)."""
        ticket = self.get_object()
        check_if_match(request, self.etag(ticket))
        context = acting_context(request)
        data = self.input(TransitionSerializer)
        duplicate_of = data.pop("duplicate_of", None)
        if duplicate_of is not None:
            target = selectors.tickets_visible_to(request.user).filter(pk=duplicate_of).first()
            if target is None:
                raise ServiceError("Not found.", code="not_found", field="duplicate_of")
            data["duplicate_of"] = target
        services.ticket_transition(
            ticket=ticket, actor=request.user, on_behalf_of=context.on_behalf_of, **data
        )
        return self.detail_response(ticket)

    @extend_schema(
        tags=["tickets"],
        parameters=[IF_MATCH],
        request=AssignSerializer,
        responses={200: TicketDetailSerializer},
    )
    @action(detail=True, methods=["post"])
    def assign(self, request, pk=None):
        """Hand the request to a team, a contractor and/or a person."""
        ticket = self.get_object()
        check_if_match(request, self.etag(ticket))
        data = self.input(AssignSerializer)
        services.ticket_assign(ticket=ticket, actor=request.user, **_assignment(request, data))
        return self.detail_response(ticket)

    @extend_schema(
        tags=["tickets"],
        request=BulkAssignSerializer,
        responses={200: BulkAssignResultSerializer},
    )
    @action(detail=False, methods=["post"], url_path="bulk-assign")
    def bulk_assign(self, request):
        """Hand many requests at once (all must be in the caller's scope)."""
        data = self.input(BulkAssignSerializer)
        ticket_ids = data.pop("tickets")
        count = services.tickets_bulk_assign(
            actor=request.user, ticket_ids=ticket_ids, **_assignment(request, data)
        )
        return Response({"assigned": count})

    @extend_schema(
        tags=["tickets"],
        methods=["GET"],
        parameters=[IF_NONE_MATCH],
        responses={200: CommentSerializer(many=True), 304: NOT_MODIFIED},
    )
    @extend_schema(
        tags=["tickets"],
        methods=["POST"],
        parameters=ACTING_PARAMETERS,
        request=CommentInputSerializer,
        responses={201: CommentSerializer},
    )
    @action(detail=True, methods=["get", "post"], filter_backends=[])
    def comments(self, request, pk=None):
        """Comments: public ones for tenants, internal ones for staff too."""
        ticket = self.get_object()
        context = self._comment_context(ticket)
        if request.method == "POST":
            acting = acting_context(request)
            data = self.input(CommentInputSerializer)
            event = services.ticket_comment_add(
                ticket=ticket,
                actor=request.user,
                on_behalf_of=acting.on_behalf_of,
                text=data["text"],
                public=data["public"],
            )
            event = TicketEvent.objects.select_related("actor").get(pk=event.pk)
            return Response(CommentSerializer(event, context=context).data, status=201)
        events = self._events(ticket).filter(kind=EventKind.COMMENT)
        page = self.paginate_queryset(events)
        return self.get_paginated_response(CommentSerializer(page, many=True, context=context).data)

    def _comment_context(self, ticket) -> dict:
        context = self.get_serializer_context()
        if self.request.user.role == Role.TENANT and selectors.is_household_side(
            self.request.user, ticket
        ):
            context["household_ids"] = {ticket.reporter_id} - {None}
        return context

    def _events(self, ticket):
        events = TicketEvent.objects.filter(ticket=ticket).select_related("actor", "on_behalf_of")
        if self.request.user.role == Role.TENANT:
            events = events.filter(public=True)
        return events.order_by("created_at", "id")

    @extend_schema(
        tags=["tickets"],
        parameters=[IF_NONE_MATCH],
        responses={200: EventSerializer(many=True), 304: NOT_MODIFIED},
    )
    @action(detail=True, methods=["get"], filter_backends=[])
    def events(self, request, pk=None):
        """The request's history (tenants: its public part)."""
        ticket = self.get_object()
        page = self.paginate_queryset(self._events(ticket))
        data = EventSerializer(page, many=True, context=self.get_serializer_context()).data
        return self.get_paginated_response(data)

    @extend_schema(
        tags=["tickets"],
        parameters=[IF_NONE_MATCH],
        responses={200: TimelineSerializer, 304: NOT_MODIFIED},
    )
    @action(detail=True, methods=["get"], pagination_class=None, filter_backends=[])
    def timeline(self, request, pk=None):
        """The request's story in plain words, in the reader's language (public events only)."""
        ticket = self.get_object()
        language = _language(request)
        household = (
            {ticket.reporter_id} - {None}
            if selectors.is_household_side(request.user, ticket)
            else set()
        )
        entries = []
        events = TicketEvent.objects.filter(ticket=ticket, public=True).order_by("created_at", "id")
        for event in events:
            text = wording.event_text(event, language)
            if not text:
                continue
            data = {
                key: value
                for key, value in (event.data or {}).items()
                if key in ("starts_at", "ends_at", "waiting_reason", "key_with_caretaker", "slots")
            }
            if event.note and event.kind not in (EventKind.COMMENT,):
                data["note"] = event.note
            entries.append(
                {
                    "at": event.created_at,
                    "kind": event.kind,
                    "status": event.to_status,
                    "status_label": (
                        wording.status_label(event.to_status, language) if event.to_status else ""
                    ),
                    "text": text,
                    "by": wording.who(
                        event, viewer=request.user, household_ids=household, language=language
                    ),
                    "data": data,
                }
            )
        return Response(
            TimelineSerializer(
                {
                    "ticket": ticket.id,
                    "reference": ticket.reference,
                    "language": language,
                    "status": ticket.status,
                    "status_label": wording.status_label(ticket.status, language),
                    "waiting_reason_text": wording.waiting_reason_text(
                        ticket.waiting_reason, language
                    ),
                    "entries": entries,
                }
            ).data
        )

    @extend_schema(
        tags=["tickets"],
        methods=["GET"],
        parameters=[IF_NONE_MATCH],
        responses={200: PhotoSerializer(many=True), 304: NOT_MODIFIED},
    )
    @extend_schema(
        tags=["tickets"],
        methods=["POST"],
        request={"multipart/form-data": PhotoUploadSerializer},
        responses={201: PhotoSerializer, 200: PhotoSerializer},
    )
    @action(detail=True, methods=["get", "post"], filter_backends=[])
    def photos(self, request, pk=None):
        """Photos of the problem (at most 5; JPEG, PNG or HEIC of at most 10 MB each)."""
        ticket = self.get_object()
        if request.method == "POST":
            data = self.input(PhotoUploadSerializer)
            existed = (
                data.get("id") is not None
                and TicketPhoto.objects.filter(pk=data["id"], ticket=ticket).exists()
            )
            photo = services.ticket_photo_add(
                ticket=ticket, actor=request.user, upload=data["image"], client_id=data.get("id")
            )
            return Response(
                PhotoSerializer(photo, context=self.get_serializer_context()).data,
                status=status.HTTP_200_OK if existed else status.HTTP_201_CREATED,
            )
        page = self.paginate_queryset(ticket.photos.all().order_by("created_at"))
        data = PhotoSerializer(page, many=True, context=self.get_serializer_context()).data
        return self.get_paginated_response(data)

    def _photo(self, ticket, photo_id) -> TicketPhoto:
        photo = ticket.photos.filter(pk=uuid_or_404(photo_id)).first()
        if photo is None:
            raise NotFound()
        return photo

    def perform_content_negotiation(self, request, force=False):
        if self.action in ("photo_file", "photo_thumbnail", "export"):
            force = True
        return super().perform_content_negotiation(request, force=force)

    @extend_schema(
        tags=["tickets"],
        parameters=[PHOTO_ID],
        responses={
            (200, "image/jpeg"): OpenApiTypes.BINARY,
            (200, "image/png"): OpenApiTypes.BINARY,
        },
    )
    @action(
        detail=True, methods=["get"], url_path=r"photos/(?P<photo_id>[^/.]+)", filter_backends=[]
    )
    def photo_file(self, request, pk=None, photo_id=None):
        """The photo itself (metadata removed)."""
        photo = self._photo(self.get_object(), photo_id)
        return _file_response(photo.image, photo.content_type)

    @extend_schema(
        tags=["tickets"],
        parameters=[PHOTO_ID],
        responses={(200, "image/jpeg"): OpenApiTypes.BINARY},
    )
    @action(
        detail=True,
        methods=["get"],
        url_path=r"photos/(?P<photo_id>[^/.]+)/thumbnail",
        filter_backends=[],
    )
    def photo_thumbnail(self, request, pk=None, photo_id=None):
        """A small JPEG of the photo, for lists."""
        photo = self._photo(self.get_object(), photo_id)
        return _file_response(photo.thumbnail, "image/jpeg")

    @extend_schema(
        tags=["tickets"], methods=["POST"], request=None, responses={200: FollowSerializer}
    )
    @extend_schema(tags=["tickets"], methods=["DELETE"], responses={200: FollowSerializer})
    @action(detail=True, methods=["post", "delete"], filter_backends=[])
    def follow(self, request, pk=None):
        """ "Me too": follow the request and get its every update (DELETE to stop)."""
        ticket = self.get_object()
        if request.method == "POST":
            services.ticket_follow(ticket=ticket, actor=request.user)
        else:
            services.ticket_unfollow(ticket=ticket, actor=request.user)
        return Response(
            {
                "following": request.method == "POST",
                "followers_count": ticket.followers.count(),
            }
        )

    @extend_schema(
        tags=["tickets"],
        parameters=[IF_MATCH, *ACTING_PARAMETERS],
        request=ConfirmSerializer,
        responses={200: TicketDetailSerializer},
    )
    @action(detail=True, methods=["post"])
    def confirm(self, request, pk=None):
        """The tenant's one-tap answer: fixed (closes it) or still broken (reopens it)."""
        ticket = self.get_object()
        check_if_match(request, self.etag(ticket))
        context = acting_context(request)
        data = self.input(ConfirmSerializer)
        services.ticket_confirm(
            ticket=ticket,
            actor=request.user,
            on_behalf_of=context.on_behalf_of,
            fixed=data["fixed"],
        )
        return self.detail_response(ticket)

    @extend_schema(
        tags=["tickets"],
        parameters=[IF_MATCH, *ACTING_PARAMETERS],
        request=RateSerializer,
        responses={200: TicketDetailSerializer},
    )
    @action(detail=True, methods=["post"])
    def rate(self, request, pk=None):
        """The tenant's 1–5 rating and comment once the request is dealt with."""
        ticket = self.get_object()
        check_if_match(request, self.etag(ticket))
        context = acting_context(request)
        data = self.input(RateSerializer)
        services.ticket_rate(
            ticket=ticket, actor=request.user, on_behalf_of=context.on_behalf_of, **data
        )
        return self.detail_response(ticket)

    @extend_schema(
        tags=["appointments"],
        methods=["GET"],
        parameters=[IF_NONE_MATCH],
        responses={200: AppointmentSerializer(many=True), 304: NOT_MODIFIED},
    )
    @extend_schema(
        tags=["appointments"],
        methods=["POST"],
        request=ProposeSerializer,
        responses={201: AppointmentSerializer(many=True)},
    )
    @action(detail=True, methods=["get", "post"], filter_backends=[])
    def appointments(self, request, pk=None):
        """Visit slots of the request; staff propose new ones (earlier offers are withdrawn)."""
        ticket = self.get_object()
        if request.method == "POST":
            if request.user.role not in STAFF:
                raise ServiceError("Staff propose visits.", code="not_allowed", status_code=403)
            data = self.input(ProposeSerializer)
            slots = [(slot["starts_at"], slot["ends_at"]) for slot in data["slots"]]
            appointments = services.appointment_propose(
                ticket=ticket, actor=request.user, slots=slots, note=data["note"]
            )
            return Response(AppointmentSerializer(appointments, many=True).data, status=201)
        appointments = selectors.appointments_visible_to(request.user).filter(ticket=ticket)
        page = self.paginate_queryset(appointments.order_by("starts_at"))
        return self.get_paginated_response(AppointmentSerializer(page, many=True).data)

    @extend_schema(
        tags=["tickets"],
        parameters=[
            OpenApiParameter("category", OpenApiTypes.UUID, required=True),
            OpenApiParameter("dwelling", OpenApiTypes.UUID),
            OpenApiParameter("common_area", OpenApiTypes.UUID),
            OpenApiParameter("entrance", OpenApiTypes.UUID),
            OpenApiParameter("building", OpenApiTypes.UUID),
            OpenApiParameter("residence", OpenApiTypes.UUID),
        ],
        responses={200: SimilarSerializer},
    )
    @action(detail=False, methods=["get"], pagination_class=None, filter_backends=[])
    def similar(self, request):
        """Before filing: who pays, an incident in progress, and similar open requests nearby."""
        query = self.input(SimilarQuerySerializer, data=request.query_params)
        category = query.pop("category")
        place = services.place_resolve(**query)
        tickets = selectors.similar_open_tickets(user=request.user, category=category, place=place)
        context = self.get_serializer_context()
        language = context["language"]
        incident = (
            selectors.incident_banner(user=request.user)
            .filter(status="open", category_id__in=_family_with_ancestors(category))
            .filter(_incident_near(place))
            .first()
        )
        return Response(
            SimilarSerializer(
                {
                    "payer": category.payer,
                    "payer_note": label_in(
                        category.payer_note, language, category.payer_note.get("fr", "")
                    ),
                    "help": label_in(category.help, language, category.help.get("fr", "")),
                    "incident": incident,
                    "similar": list(tickets[:20]),
                },
                context=context,
            ).data
        )

    @extend_schema(
        tags=["tickets"],
        parameters=[
            OpenApiParameter(
                "file_format", OpenApiTypes.STR, enum=["csv", "xlsx"], description="csv (default)"
            )
        ],
        responses={
            (200, "text/csv"): OpenApiTypes.BINARY,
            (200, XLSX_TYPE): OpenApiTypes.BINARY,
        },
    )
    @action(detail=False, methods=["get"], pagination_class=None)
    def export(self, request):
        """The filtered queue as CSV or XLSX (no tenant's personal data)."""
        file_format = request.query_params.get("file_format", "csv")
        if file_format not in ("csv", "xlsx"):
            raise ServiceError("csv or xlsx.", field="file_format")
        tickets = self.filter_queryset(selectors.tickets_visible_to(request.user))
        rows = exports.export_rows(tickets)
        stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
        if file_format == "xlsx":
            response = HttpResponse(exports.xlsx_bytes(rows), content_type=XLSX_TYPE)
            response["Content-Disposition"] = f'attachment; filename="demandes-{stamp}.xlsx"'
            return response
        response = StreamingHttpResponse(
            exports.csv_stream(rows), content_type="text/csv; charset=utf-8"
        )
        response["Content-Disposition"] = f'attachment; filename="demandes-{stamp}.csv"'
        return response


def _family_with_ancestors(category) -> set:
    ids = {c.id for c in selectors.category_ancestors(category)}
    return ids | selectors.category_subtree_ids(category)


def _incident_near(place: dict) -> Q:
    if place["building"] is not None:
        return Q(building_id=place["building"].id) | Q(
            building__isnull=True, residence_id=place["residence"].id
        )
    return Q(residence_id=place["residence"].id)


def _assignment(request, data: dict) -> dict:
    """Resolve the ids of an assignment within the caller's organisation (else 'not found')."""
    organisation_id = request.user.organisation_id
    result = {"note": data.get("note", "")}
    if data.get("team"):
        result["team"] = Team.objects.filter(
            pk=data["team"], organisation_id=organisation_id
        ).first()
        if result["team"] is None:
            raise ServiceError("Not found.", code="not_found", field="team")
    if data.get("contractor"):
        result["contractor"] = Contractor.objects.filter(
            pk=data["contractor"], organisation_id=organisation_id
        ).first()
        if result["contractor"] is None:
            raise ServiceError("Not found.", code="not_found", field="contractor")
    if data.get("assignee"):
        result["assignee"] = (
            estate.people_visible_to(request.user).filter(pk=data["assignee"]).first()
        )
        if result["assignee"] is None:
            raise ServiceError("Not found.", code="not_found", field="assignee")
    return result


def _file_response(field, content_type: str) -> FileResponse:
    try:
        handle = field.open("rb")
    except (FileNotFoundError, ValueError):
        raise NotFound() from None
    response = FileResponse(handle, content_type=content_type)
    response["Cache-Control"] = "private, max-age=86400"
    response["X-Content-Type-Options"] = "nosniff"
    return response


# --- appointments -------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(
        tags=["appointments"],
        parameters=[IF_NONE_MATCH],
        responses={200: AppointmentSerializer(many=True), 304: NOT_MODIFIED},
    ),
    retrieve=extend_schema(
        tags=["appointments"],
        parameters=[IF_NONE_MATCH],
        responses={200: AppointmentSerializer, 304: NOT_MODIFIED},
    ),
)
class AppointmentViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TicketsBase):
    """Visits of the requests in the caller's scope."""

    queryset = Appointment.objects.none()
    serializer_class = AppointmentSerializer
    filterset_class = AppointmentFilter
    ordering_fields = ["starts_at", "created_at"]
    ordering = ["starts_at"]
    search_fields: list = []
    action_roles = {
        "list": ALL_ROLES,
        "retrieve": ALL_ROLES,
        "book": ALL_ROLES - {Role.TECHNICIAN, Role.CONTRACTOR},
        "cancel": ALL_ROLES,
        "outcome": STAFF,
    }

    def get_queryset(self):
        return selectors.appointments_visible_to(self.request.user)

    def get_object(self):
        uuid_or_404(self.kwargs["pk"])
        return super().get_object()

    @extend_schema(
        tags=["appointments"],
        parameters=ACTING_PARAMETERS,
        request=BookSerializer,
        responses={200: AppointmentSerializer},
    )
    @action(detail=True, methods=["post"])
    def book(self, request, pk=None):
        """Pick this slot (or leave a key with the caretaker)."""
        appointment = self.get_object()
        context = acting_context(request)
        data = self.input(BookSerializer)
        appointment = services.appointment_book(
            appointment=appointment,
            actor=request.user,
            on_behalf_of=context.on_behalf_of,
            key_with_caretaker=data["key_with_caretaker"],
        )
        return Response(AppointmentSerializer(appointment).data)

    @extend_schema(
        tags=["appointments"],
        parameters=ACTING_PARAMETERS,
        request=CancelSerializer,
        responses={200: AppointmentSerializer},
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        """Call off the visit."""
        appointment = self.get_object()
        context = acting_context(request)
        data = self.input(CancelSerializer)
        appointment = services.appointment_cancel(
            appointment=appointment,
            actor=request.user,
            on_behalf_of=context.on_behalf_of,
            reason=data["reason"],
        )
        return Response(AppointmentSerializer(appointment).data)

    @extend_schema(
        tags=["appointments"], request=OutcomeSerializer, responses={200: AppointmentSerializer}
    )
    @action(detail=True, methods=["post"])
    def outcome(self, request, pk=None):
        """After the visit: done, or missed (nobody home: counted, the request waits)."""
        appointment = self.get_object()
        data = self.input(OutcomeSerializer)
        appointment = services.appointment_record_outcome(
            appointment=appointment, actor=request.user, **data
        )
        return Response(AppointmentSerializer(appointment).data)


# --- categories ---------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(
        tags=["categories"],
        parameters=[IF_NONE_MATCH],
        responses={200: CategorySerializer(many=True), 304: NOT_MODIFIED},
    ),
    retrieve=extend_schema(
        tags=["categories"],
        parameters=[IF_NONE_MATCH],
        responses={200: CategorySerializer, 304: NOT_MODIFIED},
    ),
)
class CategoryViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TicketsBase):
    """The categories a request can be filed under, in the reader's language."""

    queryset = Category.objects.none()
    serializer_class = CategorySerializer
    filterset_class = CategoryFilter
    search_fields = ["name", "code"]
    ordering_fields = ["position", "name"]
    ordering = ["position", "name"]
    action_roles = {"list": ALL_ROLES, "retrieve": ALL_ROLES}

    def get_queryset(self):
        return selectors.categories_visible_to(self.request.user).prefetch_related("questions")

    def get_object(self):
        uuid_or_404(self.kwargs["pk"])
        return super().get_object()


# --- incidents ----------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(
        tags=["incidents"],
        parameters=[IF_NONE_MATCH],
        responses={200: IncidentSerializer(many=True), 304: NOT_MODIFIED},
    ),
    retrieve=extend_schema(
        tags=["incidents"],
        parameters=[IF_NONE_MATCH],
        responses={200: IncidentDetailSerializer, 304: NOT_MODIFIED},
    ),
    create=extend_schema(
        tags=["incidents"],
        request=IncidentCreateSerializer,
        responses={201: IncidentDetailSerializer},
    ),
)
class IncidentViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TicketsBase):
    """Building- or residence-wide outages, with what tenants were told."""

    queryset = Incident.objects.none()
    filterset_class = IncidentFilter
    search_fields = ["public_message"]
    ordering_fields = ["started_at", "updated_at"]
    ordering = ["-started_at"]
    action_roles = {
        "list": ALL_ROLES,
        "retrieve": ALL_ROLES,
        "create": INCIDENT_WRITERS,
        "updates": INCIDENT_WRITERS,
        "close": INCIDENT_WRITERS,
        "banner": ALL_ROLES,
    }

    def get_queryset(self):
        return (
            selectors.incidents_visible_to(self.request.user)
            .select_related("category", "residence", "building")
            .annotate(tickets_count=Count("tickets"))
        )

    def get_serializer_class(self):
        return IncidentSerializer if self.action == "list" else IncidentDetailSerializer

    def get_object(self):
        uuid_or_404(self.kwargs["pk"])
        incident = (
            self.get_queryset()
            .prefetch_related(Prefetch("updates"))
            .filter(pk=self.kwargs["pk"])
            .first()
        )
        if incident is None:
            raise NotFound()
        return incident

    def etag(self, incident) -> str:
        return version_etag("incident", incident, self.request.user, _language(self.request))

    def detail_response(self, incident, status_code=status.HTTP_200_OK) -> Response:
        self.kwargs["pk"] = str(incident.pk)
        fresh = self.get_object()
        data = IncidentDetailSerializer(fresh, context=self.get_serializer_context()).data
        return Response(data, status=status_code, headers={"ETag": self.etag(fresh)})

    def retrieve(self, request, pk=None):
        return self.detail_response(self.get_object())

    def create(self, request):
        data = self.input(IncidentCreateSerializer)
        incident = services.incident_open(actor=request.user, source="staff", **data)
        return self.detail_response(incident, status_code=status.HTTP_201_CREATED)

    @extend_schema(
        tags=["incidents"],
        parameters=[IF_MATCH],
        request=IncidentChangeSerializer,
        responses={200: IncidentDetailSerializer},
    )
    @action(detail=True, methods=["post"])
    def updates(self, request, pk=None):
        """Give news: a new message and/or expected end, told to every household."""
        incident = self.get_object()
        check_if_match(request, self.etag(incident))
        data = self.input(IncidentChangeSerializer)
        services.incident_update(incident=incident, actor=request.user, **data)
        return self.detail_response(incident)

    @extend_schema(
        tags=["incidents"],
        parameters=[IF_MATCH],
        request=IncidentCloseSerializer,
        responses={200: IncidentDetailSerializer},
    )
    @action(detail=True, methods=["post"])
    def close(self, request, pk=None):
        """End the incident; its open requests are resolved and tenants asked to confirm."""
        incident = self.get_object()
        check_if_match(request, self.etag(incident))
        data = self.input(IncidentCloseSerializer)
        services.incident_close(incident=incident, actor=request.user, **data)
        return self.detail_response(incident)

    @extend_schema(
        tags=["incidents"],
        parameters=[IF_NONE_MATCH],
        responses={200: BannerSerializer(many=True), 304: NOT_MODIFIED},
    )
    @action(detail=False, methods=["get"], pagination_class=None, filter_backends=[])
    def banner(self, request):
        """What the tenant app shows on top: incidents in progress (or just ended) nearby."""
        language = _language(request)
        banners = []
        for incident in selectors.incident_banner(user=request.user)[:10]:
            place = incident.residence.name
            if incident.building_id:
                place = f"{place}, {incident.building.reference}"
            banners.append(
                {
                    "id": incident.id,
                    "status": incident.status,
                    "title": incident.category.label(language),
                    "message": incident.public_message,
                    "expected_end": incident.expected_end,
                    "started_at": incident.started_at,
                    "ended_at": incident.ended_at,
                    "place": place,
                }
            )
        return Response(BannerSerializer(banners, many=True).data)


# --- sync, figures, webhook ---------------------------------------------------------------------


def _changes(name: str, serializer):
    return inline_serializer(
        name,
        {
            "changed": serializer(many=True),
            "deleted": serializers.ListField(child=serializers.UUIDField()),
        },
    )


SYNC_RESPONSE = inline_serializer(
    "SyncResponse",
    {
        "reset": serializers.BooleanField(
            help_text="Start over: drop what you hold, then apply `changed`."
        ),
        "has_more": serializers.BooleanField(help_text="Call again at once with `cursor`."),
        "server_time": serializers.DateTimeField(),
        "cursor": serializers.CharField(),
        "tickets": _changes("SyncTickets", TicketListSerializer),
        "incidents": _changes("SyncIncidents", IncidentSerializer),
        "dwellings": _changes("SyncDwellings", DwellingOutputSerializer),
        "common_areas": _changes("SyncCommonAreas", CommonAreaOutputSerializer),
    },
)


class SyncApi(APIView):
    """Delta sync for offline phones: what changed and what was deleted since a cursor."""

    permission_classes = [ActionRoles]
    default_read_roles = ALL_ROLES
    action_roles: dict = {}

    @extend_schema(
        tags=["sync"],
        parameters=[
            OpenApiParameter("since", OpenApiTypes.STR, description="The last cursor received."),
            OpenApiParameter("limit", OpenApiTypes.INT, description="Rows per kind (max 2000)."),
        ],
        responses={200: SYNC_RESPONSE},
    )
    def get(self, request):
        since = request.query_params.get("since") or None
        try:
            limit = int(request.query_params.get("limit", sync.DEFAULT_LIMIT))
        except ValueError:
            raise ServiceError("A number.", field="limit") from None
        result = sync.sync_changes(user=request.user, since=since, limit=limit)
        context = {
            "request": request,
            "language": _language(request),
            "now": result["server_time"],
        }
        serializers_by_kind = {
            "tickets": TicketListSerializer,
            "incidents": IncidentSerializer,
            "dwellings": DwellingOutputSerializer,
            "common_areas": CommonAreaOutputSerializer,
        }
        body = {key: result[key] for key in ("reset", "has_more", "server_time", "cursor")}
        for kind, serializer in serializers_by_kind.items():
            body[kind] = {
                "changed": serializer(result[kind]["changed"], many=True, context=context).data,
                "deleted": result[kind]["deleted"],
            }
        return Response(body)


class KpiApi(APIView):
    """Service-level figures over a date range, overall, per category and per residence."""

    permission_classes = [ActionRoles]
    default_read_roles = FIGURE_READERS
    action_roles: dict = {}

    @extend_schema(tags=["kpis"], parameters=[KpiQuerySerializer], responses={200: KpiSerializer})
    def get(self, request):
        query = KpiQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        data = query.validated_data
        tickets = selectors.tickets_visible_to(request.user)
        if data.get("residence"):
            tickets = tickets.filter(residence_id=data["residence"])
        if data.get("agency"):
            tickets = tickets.filter(residence__agency_id=data["agency"])
        if data.get("category"):
            category = (
                selectors.categories_visible_to(request.user).filter(pk=data["category"]).first()
            )
            ids = selectors.category_subtree_ids(category) if category else set()
            tickets = tickets.filter(category_id__in=ids)
        figures = selectors.ticket_kpis(
            user=request.user,
            date_from=data["date_from"],
            date_to=data["date_to"],
            tickets=tickets,
        )
        return Response(KpiSerializer(figures).data)


SIGNATURE_HEADER = "X-Palier-Signature"
TIMESTAMP_HEADER = "X-Palier-Timestamp"
SIGNATURE_TOLERANCE_S = 300


def sms_signature(secret: str, timestamp: str, body: bytes) -> str:
    """HMAC-SHA256 of "<timestamp>.<raw body>" with the shared secret, in hex."""
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


class InboundSmsApi(APIView):
    """Webhook of the SMS provider: a tenant's reply to "is it fixed?" (1 fixed, 2 broken).

    Authenticated by an HMAC-SHA256 signature of the timestamp and raw body with the shared
    secret `SMS_INBOUND_SECRET` (headers X-Palier-Timestamp and X-Palier-Signature), within 5
    minutes; each provider message id is handled once.
    """

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        tags=["tickets"],
        auth=[],
        parameters=[
            OpenApiParameter(TIMESTAMP_HEADER, OpenApiTypes.STR, OpenApiParameter.HEADER),
            OpenApiParameter(SIGNATURE_HEADER, OpenApiTypes.STR, OpenApiParameter.HEADER),
        ],
        request=InboundSmsSerializer,
        responses={200: InboundSmsResultSerializer},
    )
    def post(self, request):
        secret = settings.SMS_INBOUND_SECRET
        timestamp = request.headers.get(TIMESTAMP_HEADER, "")
        signature = request.headers.get(SIGNATURE_HEADER, "").removeprefix("sha256=")
        try:
            fresh = abs(time.time() - int(timestamp)) <= SIGNATURE_TOLERANCE_S
        except ValueError:
            fresh = False
        expected = sms_signature(secret, timestamp, request.body) if secret else ""
        if not secret or not fresh or not hmac.compare_digest(expected, signature):
            raise ServiceError("Bad or missing signature.", code="bad_signature", status_code=403)
        data = InboundSmsSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        record = services.inbound_sms_handle(**data.validated_data)
        return Response({"outcome": record.outcome, "ticket": record.ticket_id})
