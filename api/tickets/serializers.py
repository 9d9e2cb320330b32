"""Shapes of the requests API: scoped input fields, viewer-dependent output.

A tenant never reads another tenant's identity: `reporter` is filled only for staff (and each
such read is logged), and other residents' comments are signed "a resident".
"""

from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from api.core.roles import Role
from api.estate import selectors as estate

from . import selectors, wording
from .fields import SafeDateTimeField
from .models import (
    DESCRIPTION_MAX_LENGTH,
    NOTE_MAX_LENGTH,
    OPEN_STATUSES,
    Appointment,
    AppointmentStatus,
    Category,
    CategoryQuestion,
    Incident,
    IncidentUpdate,
    Payer,
    PlaceKind,
    Priority,
    Status,
    Ticket,
    TicketEvent,
    TicketPhoto,
    WaitingReason,
    label_in,
)

STAFF_VIEWERS = frozenset(
    {Role.CARETAKER, Role.TECHNICIAN, Role.CONTRACTOR, Role.AGENCY_STAFF, Role.MANAGER, Role.ADMIN}
)


def _viewer(serializer):
    request = serializer.context.get("request")
    return getattr(request, "user", None)


def _language(serializer) -> str:
    return serializer.context.get("language") or wording.language_of(_viewer(serializer))


class ScopedField(serializers.PrimaryKeyRelatedField):
    """An id that must name an object in the requester's scope (else "does not exist")."""

    def __init__(self, *, selector, **kwargs):
        self.selector = selector
        kwargs.setdefault("pk_field", serializers.UUIDField())
        super().__init__(**kwargs)

    def get_queryset(self):
        return self.selector(_viewer(self))


# --- categories ---------------------------------------------------------------------------------


class ChoiceSerializer(serializers.Serializer):
    value = serializers.CharField()
    label = serializers.CharField()


class QuestionSerializer(serializers.ModelSerializer):
    label = serializers.SerializerMethodField()
    choices = serializers.SerializerMethodField()

    class Meta:
        model = CategoryQuestion
        fields = ["key", "kind", "label", "required", "choices", "min_value", "max_value"]

    def get_label(self, question) -> str:
        return question.label(_language(self))

    @extend_schema_field(ChoiceSerializer(many=True))
    def get_choices(self, question) -> list:
        language = _language(self)
        return [
            {
                "value": str(choice.get("value", "")),
                "label": label_in(choice.get("labels") or {}, language, str(choice.get("value"))),
            }
            for choice in question.choices
        ]


class CategorySerializer(serializers.ModelSerializer):
    label = serializers.SerializerMethodField()
    help = serializers.SerializerMethodField()
    payer = serializers.ChoiceField(choices=Payer.choices, read_only=True)
    payer_note = serializers.SerializerMethodField()
    questions = QuestionSerializer(many=True, read_only=True)
    standard = serializers.SerializerMethodField()
    acknowledge_within_hours = serializers.SerializerMethodField()
    resolve_within_hours = serializers.SerializerMethodField()

    class Meta:
        model = Category
        fields = [
            "id",
            "parent",
            "code",
            "label",
            "help",
            "in_dwelling",
            "in_common_areas",
            "default_priority",
            "acknowledge_within_hours",
            "resolve_within_hours",
            "continuous_clock",
            "payer",
            "payer_note",
            "questions",
            "standard",
            "position",
        ]

    def get_label(self, category) -> str:
        return category.label(_language(self))

    def get_help(self, category) -> str:
        return label_in(category.help, _language(self), category.help.get("fr", ""))

    def get_payer_note(self, category) -> str:
        return label_in(category.payer_note, _language(self), category.payer_note.get("fr", ""))

    def get_standard(self, category) -> bool:
        return category.organisation_id is None

    def _hours(self, value) -> float | None:
        return round(value.total_seconds() / 3600, 2) if value is not None else None

    def get_acknowledge_within_hours(self, category) -> float | None:
        return self._hours(category.acknowledge_within)

    def get_resolve_within_hours(self, category) -> float | None:
        return self._hours(category.resolve_within)


class CategoryBriefSerializer(serializers.ModelSerializer):
    label = serializers.SerializerMethodField()

    class Meta:
        model = Category
        fields = ["id", "code", "label"]

    def get_label(self, category) -> str:
        return category.label(_language(self))


# --- tickets: output ----------------------------------------------------------------------------


class TicketNamedSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()


class TicketPlaceSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=PlaceKind.choices)
    residence = TicketNamedSerializer()
    building = TicketNamedSerializer(allow_null=True)
    entrance = TicketNamedSerializer(allow_null=True)
    dwelling = TicketNamedSerializer(allow_null=True)
    common_area = TicketNamedSerializer(allow_null=True)


def _named(obj, name: str) -> dict | None:
    return None if obj is None else {"id": obj.id, "name": name}


def place_of(ticket: Ticket) -> dict:
    """Where a request is, as ids and labels (no door or floor of another household)."""
    entrance = ticket.entrance
    area = ticket.common_area
    return {
        "kind": ticket.place_kind,
        "residence": _named(ticket.residence, ticket.residence.name),
        "building": _named(ticket.building, ticket.building.reference if ticket.building else ""),
        "entrance": _named(entrance, (entrance.label or entrance.reference) if entrance else ""),
        "dwelling": _named(ticket.dwelling, ticket.dwelling.reference if ticket.dwelling else ""),
        "common_area": _named(area, str(area) if area else ""),
    }


class TicketPersonSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()


class ReporterSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()
    phone = serializers.CharField(allow_null=True)


def is_overdue(ticket: Ticket, now=None) -> bool:
    """Past a target and still being handled (the clock stops while it waits)."""
    if ticket.status not in OPEN_STATUSES or ticket.status == Status.WAITING:
        return False
    now = now or timezone.now()
    if (
        ticket.acknowledged_at is None
        and ticket.acknowledge_due_at
        and ticket.acknowledge_due_at < now
    ):
        return True
    return bool(ticket.resolve_due_at and ticket.resolve_due_at < now)


class TicketListSerializer(serializers.ModelSerializer):
    category = CategoryBriefSerializer(read_only=True)
    status_label = serializers.SerializerMethodField()
    waiting_reason_text = serializers.SerializerMethodField()
    place = serializers.SerializerMethodField()
    overdue = serializers.SerializerMethodField()
    assigned_team = serializers.SerializerMethodField()
    assigned_contractor = serializers.SerializerMethodField()
    assignee = serializers.SerializerMethodField()
    followers_count = serializers.SerializerMethodField()
    following = serializers.SerializerMethodField()
    reported_by_me = serializers.SerializerMethodField()
    awaiting_my_confirmation = serializers.SerializerMethodField()

    class Meta:
        model = Ticket
        fields = [
            "id",
            "reference",
            "category",
            "status",
            "status_label",
            "waiting_reason",
            "waiting_reason_text",
            "priority",
            "source",
            "place",
            "description",
            "created_at",
            "updated_at",
            "acknowledge_due_at",
            "resolve_due_at",
            "acknowledged_at",
            "resolved_at",
            "overdue",
            "incident",
            "duplicate_of",
            "assigned_team",
            "assigned_contractor",
            "assignee",
            "followers_count",
            "following",
            "reported_by_me",
            "awaiting_my_confirmation",
            "rating",
            "version",
        ]

    def get_status_label(self, ticket) -> str:
        return wording.status_label(ticket.status, _language(self))

    def get_waiting_reason_text(self, ticket) -> str:
        return wording.waiting_reason_text(ticket.waiting_reason, _language(self))

    @extend_schema_field(TicketPlaceSerializer)
    def get_place(self, ticket) -> dict:
        return place_of(ticket)

    def get_overdue(self, ticket) -> bool:
        return is_overdue(ticket, self.context.get("now"))

    @extend_schema_field(TicketNamedSerializer(allow_null=True))
    def get_assigned_team(self, ticket):
        return _named(ticket.assigned_team, getattr(ticket.assigned_team, "name", ""))

    @extend_schema_field(TicketNamedSerializer(allow_null=True))
    def get_assigned_contractor(self, ticket):
        contractor = ticket.assigned_contractor
        return _named(contractor, getattr(contractor, "name", ""))

    @extend_schema_field(TicketPersonSerializer(allow_null=True))
    def get_assignee(self, ticket):
        viewer = _viewer(self)
        if ticket.assignee is None or viewer is None or viewer.role not in STAFF_VIEWERS:
            return None
        return {"id": ticket.assignee.id, "name": ticket.assignee.full_name or "—"}

    def get_followers_count(self, ticket) -> int:
        value = getattr(ticket, "followers_count", None)
        return value if value is not None else ticket.followers.count()

    def get_following(self, ticket) -> bool:
        value = getattr(ticket, "following", None)
        if value is not None:
            return bool(value)
        viewer = _viewer(self)
        return viewer is not None and ticket.followers.filter(user=viewer).exists()

    def get_reported_by_me(self, ticket) -> bool:
        viewer = _viewer(self)
        return viewer is not None and viewer.pk in (ticket.reporter_id, ticket.created_by_id)

    def get_awaiting_my_confirmation(self, ticket) -> bool:
        viewer = _viewer(self)
        return (
            ticket.status == Status.RESOLVED
            and viewer is not None
            and viewer.role == Role.TENANT
            and (
                ticket.reporter_id == viewer.pk
                or (ticket.place_kind == PlaceKind.DWELLING and self._household(ticket))
            )
        )

    def _household(self, ticket) -> bool:
        places = self.context.get("tenant_places")
        if places is None:
            places = selectors.tenant_places(_viewer(self))
            self.context["tenant_places"] = places
        return ticket.dwelling_id in places["dwellings"]

    def to_representation(self, ticket):
        if type(self) is not TicketListSerializer:
            return super().to_representation(ticket)
        return self.row(ticket)

    def row(self, ticket) -> dict:
        """The same dict as the declared fields give, built directly: queues list thousands.

        `tests/api/tickets/test_apis.py` checks it against the generic serializer.
        """
        language = _language(self)
        category = ticket.category
        return {
            "id": str(ticket.id),
            "reference": ticket.reference,
            "category": {
                "id": str(category.id),
                "code": category.code,
                "label": category.label(language),
            },
            "status": ticket.status,
            "status_label": wording.status_label(ticket.status, language),
            "waiting_reason": ticket.waiting_reason,
            "waiting_reason_text": wording.waiting_reason_text(ticket.waiting_reason, language),
            "priority": ticket.priority,
            "source": ticket.source,
            "place": _place_json(ticket),
            "description": ticket.description,
            "created_at": _moment(ticket.created_at),
            "updated_at": _moment(ticket.updated_at),
            "acknowledge_due_at": _moment(ticket.acknowledge_due_at),
            "resolve_due_at": _moment(ticket.resolve_due_at),
            "acknowledged_at": _moment(ticket.acknowledged_at),
            "resolved_at": _moment(ticket.resolved_at),
            "overdue": self.get_overdue(ticket),
            "incident": _text(ticket.incident_id),
            "duplicate_of": _text(ticket.duplicate_of_id),
            "assigned_team": _json_named(self.get_assigned_team(ticket)),
            "assigned_contractor": _json_named(self.get_assigned_contractor(ticket)),
            "assignee": _json_named(self.get_assignee(ticket)),
            "followers_count": self.get_followers_count(ticket),
            "following": self.get_following(ticket),
            "reported_by_me": self.get_reported_by_me(ticket),
            "awaiting_my_confirmation": self.get_awaiting_my_confirmation(ticket),
            "rating": ticket.rating,
            "version": ticket.version,
        }


_DATETIME = serializers.DateTimeField()


def _moment(value) -> str | None:
    return None if value is None else _DATETIME.to_representation(value)


def _text(value) -> str | None:
    return None if value is None else str(value)


def _json_named(named: dict | None) -> dict | None:
    return None if named is None else {"id": str(named["id"]), "name": named["name"]}


def _place_json(ticket) -> dict:
    place = place_of(ticket)
    return {key: (value if key == "kind" else _json_named(value)) for key, value in place.items()}


class PhotoSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()
    thumbnail_url = serializers.SerializerMethodField()

    class Meta:
        model = TicketPhoto
        fields = [
            "id",
            "content_type",
            "width",
            "height",
            "size",
            "taken_at",
            "created_at",
            "url",
            "thumbnail_url",
        ]

    def _url(self, photo, suffix: str) -> str:
        path = f"/api/v1/tickets/{photo.ticket_id}/photos/{photo.id}/{suffix}"
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request is not None else path

    def get_url(self, photo) -> str:
        return self._url(photo, "")

    def get_thumbnail_url(self, photo) -> str:
        return self._url(photo, "thumbnail/")


class AppointmentSerializer(serializers.ModelSerializer):
    class Meta:
        model = Appointment
        fields = [
            "id",
            "ticket",
            "proposal",
            "starts_at",
            "ends_at",
            "status",
            "key_with_caretaker",
            "booked_at",
            "note",
            "created_at",
            "updated_at",
        ]


class TicketDetailSerializer(TicketListSerializer):
    reporter = serializers.SerializerMethodField()
    photos = PhotoSerializer(many=True, read_only=True)
    appointments = serializers.SerializerMethodField()
    payer = serializers.SerializerMethodField()
    payer_note = serializers.SerializerMethodField()
    allowed_transitions = serializers.SerializerMethodField()

    class Meta(TicketListSerializer.Meta):
        fields = [
            *TicketListSerializer.Meta.fields,
            "answers",
            "equipment",
            "reporter",
            "photos",
            "appointments",
            "payer",
            "payer_note",
            "confirmation",
            "confirmed_at",
            "rating_comment",
            "closed_at",
            "reopen_count",
            "missed_appointments",
            "allowed_transitions",
        ]

    @extend_schema_field(ReporterSerializer(allow_null=True))
    def get_reporter(self, ticket):
        viewer = _viewer(self)
        person = ticket.reporter
        if person is None or viewer is None:
            return None
        if viewer.role not in STAFF_VIEWERS and person.pk != viewer.pk:
            return None
        return {"id": person.id, "name": person.full_name, "phone": str(person.phone or "") or None}

    @extend_schema_field(AppointmentSerializer(many=True))
    def get_appointments(self, ticket) -> list:
        viewer = _viewer(self)
        if (
            viewer is not None
            and viewer.role == Role.TENANT
            and ticket.place_kind != PlaceKind.DWELLING
        ):
            return []
        live = [
            a
            for a in ticket.appointments.all()
            if a.status in (AppointmentStatus.PROPOSED, AppointmentStatus.BOOKED)
        ]
        return AppointmentSerializer(live, many=True, context=self.context).data

    @extend_schema_field(serializers.ChoiceField(choices=Payer.choices))
    def get_payer(self, ticket) -> str:
        return ticket.category.payer

    def get_payer_note(self, ticket) -> str:
        notes = ticket.category.payer_note
        return label_in(notes, _language(self), notes.get("fr", ""))

    @extend_schema_field(serializers.ListField(child=serializers.ChoiceField(Status.choices)))
    def get_allowed_transitions(self, ticket) -> list:
        from .services import allowed_transitions

        viewer = _viewer(self)
        return allowed_transitions(actor=viewer, ticket=ticket) if viewer else []


class EventSerializer(serializers.ModelSerializer):
    actor = serializers.SerializerMethodField()
    on_behalf_of = serializers.SerializerMethodField()

    class Meta:
        model = TicketEvent
        fields = [
            "id",
            "kind",
            "from_status",
            "to_status",
            "actor",
            "actor_role",
            "on_behalf_of",
            "note",
            "public",
            "data",
            "created_at",
        ]

    def _person(self, person):
        viewer = _viewer(self)
        if person is None or viewer is None:
            return None
        if viewer.role == Role.TENANT and person.pk != viewer.pk and person.role == Role.TENANT:
            return None
        return {"id": person.id, "name": person.full_name or "—"}

    @extend_schema_field(TicketPersonSerializer(allow_null=True))
    def get_actor(self, event):
        return self._person(event.actor)

    @extend_schema_field(TicketPersonSerializer(allow_null=True))
    def get_on_behalf_of(self, event):
        return self._person(event.on_behalf_of)


class CommentSerializer(serializers.ModelSerializer):
    author = serializers.SerializerMethodField()
    mine = serializers.SerializerMethodField()
    text = serializers.CharField(source="note")

    class Meta:
        model = TicketEvent
        fields = ["id", "text", "public", "author", "mine", "created_at"]

    def get_author(self, event) -> str:
        viewer = _viewer(self)
        return (
            wording.who(
                event,
                viewer=viewer,
                household_ids=self.context.get("household_ids", set()),
                language=_language(self),
            )
            if viewer.role == Role.TENANT
            else ((event.actor.full_name if event.actor else "") or event.actor_role)
        )

    def get_mine(self, event) -> bool:
        viewer = _viewer(self)
        return viewer is not None and viewer.pk == event.actor_id


class TimelineEntrySerializer(serializers.Serializer):
    at = serializers.DateTimeField()
    kind = serializers.CharField()
    status = serializers.ChoiceField(choices=Status.choices, allow_blank=True)
    status_label = serializers.CharField(allow_blank=True)
    text = serializers.CharField()
    by = serializers.CharField()
    data = serializers.DictField()


class TimelineSerializer(serializers.Serializer):
    ticket = serializers.UUIDField()
    reference = serializers.CharField()
    language = serializers.CharField()
    status = serializers.ChoiceField(choices=Status.choices)
    status_label = serializers.CharField()
    waiting_reason_text = serializers.CharField(allow_blank=True)
    entries = TimelineEntrySerializer(many=True)


# --- tickets: input -----------------------------------------------------------------------------


class TicketCreateSerializer(serializers.Serializer):
    id = serializers.UUIDField(required=False, help_text="Client-generated id (offline filing).")
    category = ScopedField(selector=selectors.categories_visible_to)
    dwelling = ScopedField(selector=estate.dwellings_visible_to, required=False, allow_null=True)
    common_area = ScopedField(
        selector=estate.common_areas_visible_to, required=False, allow_null=True
    )
    entrance = ScopedField(selector=estate.entrances_visible_to, required=False, allow_null=True)
    building = ScopedField(selector=estate.buildings_visible_to, required=False, allow_null=True)
    residence = ScopedField(selector=estate.residences_visible_to, required=False, allow_null=True)
    description = serializers.CharField(max_length=DESCRIPTION_MAX_LENGTH)
    answers = serializers.DictField(required=False, default=dict)
    priority = serializers.ChoiceField(choices=Priority.choices, required=False)
    equipment = ScopedField(selector=estate.equipment_visible_to, required=False, allow_null=True)


class TicketUpdateSerializer(serializers.Serializer):
    priority = serializers.ChoiceField(choices=Priority.choices, required=False)
    category = ScopedField(selector=selectors.categories_visible_to, required=False)
    description = serializers.CharField(max_length=DESCRIPTION_MAX_LENGTH, required=False)
    equipment = ScopedField(selector=estate.equipment_visible_to, required=False)
    note = serializers.CharField(max_length=NOTE_MAX_LENGTH, required=False, default="")


class TransitionSerializer(serializers.Serializer):
    to_status = serializers.ChoiceField(choices=Status.choices)
    note = serializers.CharField(
        max_length=NOTE_MAX_LENGTH, required=False, default="", allow_blank=True
    )
    public = serializers.BooleanField(required=False, default=True)
    waiting_reason = serializers.ChoiceField(choices=WaitingReason.choices, required=False)
    duplicate_of = serializers.UUIDField(required=False)


class AssignSerializer(serializers.Serializer):
    team = serializers.UUIDField(required=False, allow_null=True)
    contractor = serializers.UUIDField(required=False, allow_null=True)
    assignee = serializers.UUIDField(required=False, allow_null=True)
    note = serializers.CharField(
        max_length=NOTE_MAX_LENGTH, required=False, default="", allow_blank=True
    )


class BulkAssignSerializer(AssignSerializer):
    tickets = serializers.ListField(child=serializers.UUIDField(), min_length=1, max_length=500)


class BulkAssignResultSerializer(serializers.Serializer):
    assigned = serializers.IntegerField()


class CommentInputSerializer(serializers.Serializer):
    text = serializers.CharField(max_length=NOTE_MAX_LENGTH)
    public = serializers.BooleanField(required=False, default=True)


class ConfirmSerializer(serializers.Serializer):
    fixed = serializers.BooleanField(help_text="true: it is fixed; false: still broken.")


class RateSerializer(serializers.Serializer):
    rating = serializers.IntegerField(min_value=1, max_value=5)
    comment = serializers.CharField(max_length=1000, required=False, default="", allow_blank=True)


class PhotoUploadSerializer(serializers.Serializer):
    image = serializers.FileField(help_text="JPEG, PNG or HEIC, at most 10 MB.")
    id = serializers.UUIDField(required=False, help_text="Client-generated id.")


class FollowSerializer(serializers.Serializer):
    following = serializers.BooleanField()
    followers_count = serializers.IntegerField()


class SimilarQuerySerializer(serializers.Serializer):
    category = ScopedField(selector=selectors.categories_visible_to)
    dwelling = ScopedField(selector=estate.dwellings_visible_to, required=False)
    common_area = ScopedField(selector=estate.common_areas_visible_to, required=False)
    entrance = ScopedField(selector=estate.entrances_visible_to, required=False)
    building = ScopedField(selector=estate.buildings_visible_to, required=False)
    residence = ScopedField(selector=estate.residences_visible_to, required=False)


class IncidentBriefSerializer(serializers.ModelSerializer):
    class Meta:
        model = Incident
        fields = ["id", "status", "public_message", "expected_end", "started_at"]


class SimilarSerializer(serializers.Serializer):
    payer = serializers.ChoiceField(choices=Payer.choices)
    payer_note = serializers.CharField()
    help = serializers.CharField(allow_blank=True)
    incident = IncidentBriefSerializer(allow_null=True)
    similar = TicketListSerializer(many=True)


# --- appointments -------------------------------------------------------------------------------


class SlotSerializer(serializers.Serializer):
    starts_at = SafeDateTimeField()
    ends_at = SafeDateTimeField()


class ProposeSerializer(serializers.Serializer):
    slots = SlotSerializer(many=True, min_length=1, max_length=5)
    note = serializers.CharField(max_length=500, required=False, default="", allow_blank=True)


class BookSerializer(serializers.Serializer):
    key_with_caretaker = serializers.BooleanField(required=False, default=False)


class CancelSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=500, required=False, default="", allow_blank=True)


class OutcomeSerializer(serializers.Serializer):
    outcome = serializers.ChoiceField(
        choices=[(AppointmentStatus.DONE, "Done"), (AppointmentStatus.MISSED, "Missed")]
    )
    note = serializers.CharField(max_length=500, required=False, default="", allow_blank=True)


# --- incidents ----------------------------------------------------------------------------------


class IncidentUpdateSerializer(serializers.ModelSerializer):
    class Meta:
        model = IncidentUpdate
        fields = ["id", "kind", "public_message", "expected_end", "recipients", "created_at"]


class IncidentSerializer(serializers.ModelSerializer):
    category = CategoryBriefSerializer(read_only=True)
    residence = serializers.SerializerMethodField()
    building = serializers.SerializerMethodField()
    tickets_count = serializers.SerializerMethodField()

    class Meta:
        model = Incident
        fields = [
            "id",
            "category",
            "residence",
            "building",
            "status",
            "source",
            "public_message",
            "expected_end",
            "started_at",
            "ended_at",
            "tickets_count",
            "version",
            "updated_at",
        ]

    @extend_schema_field(TicketNamedSerializer)
    def get_residence(self, incident) -> dict:
        return _named(incident.residence, incident.residence.name)

    @extend_schema_field(TicketNamedSerializer(allow_null=True))
    def get_building(self, incident):
        return _named(incident.building, getattr(incident.building, "reference", ""))

    def get_tickets_count(self, incident) -> int:
        value = getattr(incident, "tickets_count", None)
        return value if value is not None else incident.tickets.count()


class IncidentDetailSerializer(IncidentSerializer):
    updates = IncidentUpdateSerializer(many=True, read_only=True)

    class Meta(IncidentSerializer.Meta):
        fields = [*IncidentSerializer.Meta.fields, "updates"]


class IncidentCreateSerializer(serializers.Serializer):
    category = ScopedField(selector=selectors.categories_visible_to)
    building = ScopedField(selector=estate.buildings_visible_to, required=False, allow_null=True)
    residence = ScopedField(selector=estate.residences_visible_to, required=False, allow_null=True)
    public_message = serializers.CharField(max_length=NOTE_MAX_LENGTH)
    expected_end = SafeDateTimeField(required=False, allow_null=True)


class IncidentChangeSerializer(serializers.Serializer):
    public_message = serializers.CharField(
        max_length=NOTE_MAX_LENGTH, required=False, allow_blank=True
    )
    expected_end = SafeDateTimeField(required=False, allow_null=True)


class IncidentCloseSerializer(serializers.Serializer):
    public_message = serializers.CharField(
        max_length=NOTE_MAX_LENGTH, required=False, default="", allow_blank=True
    )


class BannerSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    status = serializers.CharField()
    title = serializers.CharField()
    message = serializers.CharField()
    expected_end = serializers.DateTimeField(allow_null=True)
    started_at = serializers.DateTimeField()
    ended_at = serializers.DateTimeField(allow_null=True)
    place = serializers.CharField()


# --- figures, export, webhook -------------------------------------------------------------------


class KpiQuerySerializer(serializers.Serializer):
    date_from = serializers.DateField()
    date_to = serializers.DateField()
    residence = serializers.UUIDField(required=False)
    agency = serializers.UUIDField(required=False)
    category = serializers.UUIDField(required=False)

    def validate(self, attrs):
        for name in ("date_from", "date_to"):
            if not 1900 <= attrs[name].year <= 2200:
                raise serializers.ValidationError({name: "Give a date between 1900 and 2200."})
        if attrs["date_to"] < attrs["date_from"]:
            raise serializers.ValidationError({"date_to": "Must not be before date_from."})
        if (attrs["date_to"] - attrs["date_from"]).days > 731:
            raise serializers.ValidationError({"date_to": "At most two years at a time."})
        return attrs


class KpiFiguresSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    acknowledged = serializers.IntegerField()
    resolved = serializers.IntegerField()
    median_hours_to_acknowledge = serializers.FloatField(allow_null=True)
    median_hours_to_resolve = serializers.FloatField(allow_null=True)
    acknowledged_within_target = serializers.FloatField(allow_null=True)
    resolved_within_target = serializers.FloatField(allow_null=True)
    reopen_rate = serializers.FloatField(allow_null=True)
    satisfaction = serializers.FloatField(allow_null=True)
    ratings = serializers.IntegerField()
    satisfied_share = serializers.FloatField(allow_null=True)


class KpiCategorySerializer(KpiFiguresSerializer):
    id = serializers.UUIDField()
    code = serializers.CharField()
    name = serializers.CharField()


class KpiResidenceSerializer(KpiFiguresSerializer):
    id = serializers.UUIDField()
    name = serializers.CharField()


class KpiSerializer(serializers.Serializer):
    date_from = serializers.DateField()
    date_to = serializers.DateField()
    overall = KpiFiguresSerializer()
    by_category = KpiCategorySerializer(many=True)
    by_residence = KpiResidenceSerializer(many=True)


class InboundSmsSerializer(serializers.Serializer):
    message_id = serializers.CharField(max_length=100)
    sender = serializers.CharField(max_length=20, help_text="E.164 number of the sender.")
    body = serializers.CharField(max_length=1600, allow_blank=True)
    received_at = SafeDateTimeField(required=False)


class InboundSmsResultSerializer(serializers.Serializer):
    outcome = serializers.CharField()
    ticket = serializers.UUIDField(allow_null=True)
