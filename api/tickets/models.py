"""Requests ("demandes", "réclamations"), their history, appointments, incidents and partners."""

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django_fsm import ConcurrentTransitionMixin, FSMField, transition

from api.core.models import BaseModel

DESCRIPTION_MAX_LENGTH = 4000
NOTE_MAX_LENGTH = 2000


def label_in(labels: dict, language: str, default: str) -> str:
    """The text of `labels` in `language`, falling back to its base language, then `default`."""
    if not labels:
        return default
    language = (language or "").lower()
    return labels.get(language) or labels.get(language.split("-")[0]) or default


class Priority(models.TextChoices):
    LOW = "low", "Low"
    NORMAL = "normal", "Normal"
    HIGH = "high", "High"
    URGENT = "urgent", "Urgent"


PRIORITY_RANK = {Priority.LOW: 0, Priority.NORMAL: 1, Priority.HIGH: 2, Priority.URGENT: 3}


class Payer(models.TextChoices):
    """Who pays for the repair under French rules (décret n° 87-712, réparations locatives)."""

    LANDLORD = "landlord", "Landlord"
    TENANT = "tenant", "Tenant (réparations locatives)"
    DEPENDS = "depends", "Depends on the cause"


class QuestionKind(models.TextChoices):
    CHOICE = "choice", "Choice"
    TEXT = "text", "Text"
    BOOL = "bool", "Yes / no"
    NUMBER = "number", "Number"


class Category(BaseModel):
    """A kind of request, in a tree; `organisation` empty means Palier's standard tree."""

    organisation = models.ForeignKey(
        "estate.Organisation",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="ticket_categories",
        help_text="Empty: the standard tree every organisation shares.",
    )
    parent = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="children"
    )
    code = models.SlugField(max_length=60, help_text="Stable code, also the Open311 service_code.")
    name = models.CharField(max_length=200, help_text="In French.")
    labels = models.JSONField(default=dict, blank=True, help_text='{"en": "...", "ar": "..."}')
    help = models.JSONField(
        default=dict, blank=True, help_text="What this covers, per language (fr, en, ar...)."
    )
    in_dwelling = models.BooleanField(default=True, help_text="Offered for a dwelling.")
    in_common_areas = models.BooleanField(
        default=False, help_text="Offered for common areas, a building or a residence."
    )
    default_priority = models.CharField(
        max_length=10, choices=Priority.choices, default=Priority.NORMAL
    )
    acknowledge_within = models.DurationField(null=True, blank=True)
    resolve_within = models.DurationField(null=True, blank=True)
    continuous_clock = models.BooleanField(
        default=False, help_text="Count every hour (urgent matters), not only working hours."
    )
    payer = models.CharField(max_length=10, choices=Payer.choices, default=Payer.LANDLORD)
    payer_note = models.JSONField(
        default=dict, blank=True, help_text="Plain-language explanation of who pays, per language."
    )
    is_active = models.BooleanField(default=True)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position", "name"]
        verbose_name_plural = "categories"
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "code"], name="ticket_category_code_unique"
            ),
            models.UniqueConstraint(
                fields=["code"],
                condition=Q(organisation__isnull=True),
                name="ticket_category_standard_code_unique",
            ),
            models.CheckConstraint(
                condition=~Q(parent=F("id")), name="ticket_category_not_own_parent"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def label(self, language: str) -> str:
        return label_in(self.labels, language, self.name)


class CategoryQuestion(BaseModel):
    """An extra question asked when a request of the category is filed."""

    category = models.ForeignKey(Category, on_delete=models.CASCADE, related_name="questions")
    key = models.SlugField(max_length=50)
    kind = models.CharField(max_length=10, choices=QuestionKind.choices)
    text = models.CharField(max_length=300, help_text="In French.")
    labels = models.JSONField(default=dict, blank=True)
    required = models.BooleanField(default=False)
    choices = models.JSONField(
        default=list, blank=True, help_text='[{"value": "...", "labels": {"fr": "...", ...}}]'
    )
    min_value = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    max_value = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position", "key"]
        constraints = [
            models.UniqueConstraint(fields=["category", "key"], name="category_question_unique")
        ]

    def __str__(self) -> str:
        return f"{self.category.code}.{self.key}"

    def label(self, language: str) -> str:
        return label_in(self.labels, language, self.text)


class CategoryRoute(BaseModel):
    """Who handles a category: per residence, or organisation-wide when no residence is set."""

    organisation = models.ForeignKey(
        "estate.Organisation", on_delete=models.CASCADE, related_name="ticket_routes"
    )
    category = models.ForeignKey(Category, on_delete=models.CASCADE, related_name="routes")
    residence = models.ForeignKey(
        "estate.Residence",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="ticket_routes",
    )
    team = models.ForeignKey(
        "estate.Team", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    contractor = models.ForeignKey(
        "estate.Contractor", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(team__isnull=False, contractor__isnull=True)
                | Q(team__isnull=True, contractor__isnull=False),
                name="ticket_route_one_handler",
            ),
            models.UniqueConstraint(
                fields=["organisation", "category", "residence"], name="ticket_route_unique"
            ),
            models.UniqueConstraint(
                fields=["organisation", "category"],
                condition=Q(residence__isnull=True),
                name="ticket_route_default_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.category} → {self.team or self.contractor}"


class Source(models.TextChoices):
    TENANT_APP = "tenant_app", "Tenant app"
    CARETAKER = "caretaker", "Caretaker or technician"
    AGENCY = "agency", "Agency (on the tenant's behalf)"
    SENSOR = "sensor", "Sensor fault"
    AUDIT = "audit", "Cleanliness audit"
    OPEN311 = "open311", "Partner (Open311)"


class PlaceKind(models.TextChoices):
    DWELLING = "dwelling", "Dwelling"
    COMMON_AREA = "common_area", "Common area"
    ENTRANCE = "entrance", "Entrance"
    BUILDING = "building", "Building"
    RESIDENCE = "residence", "Residence"


class Status(models.TextChoices):
    NEW = "new", "New"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    SCHEDULED = "scheduled", "Scheduled"
    IN_PROGRESS = "in_progress", "In progress"
    WAITING = "waiting", "Waiting"
    RESOLVED = "resolved", "Resolved"
    CLOSED = "closed", "Closed"
    REJECTED = "rejected", "Rejected"
    DUPLICATE = "duplicate", "Duplicate"
    REOPENED = "reopened", "Reopened"


OPEN_STATUSES = frozenset(
    {
        Status.NEW,
        Status.ACKNOWLEDGED,
        Status.SCHEDULED,
        Status.IN_PROGRESS,
        Status.WAITING,
        Status.REOPENED,
    }
)
UNACKNOWLEDGED_STATUSES = frozenset({Status.NEW, Status.REOPENED})
FINAL_STATUSES = frozenset({Status.CLOSED, Status.REJECTED, Status.DUPLICATE})


class WaitingReason(models.TextChoices):
    NO_ACCESS = "no_access", "No access to the dwelling"
    PARTS_ON_ORDER = "parts_on_order", "Parts on order"
    TENANT_TO_ACT = "tenant_to_act", "Waiting for the tenant"


class Confirmation(models.TextChoices):
    FIXED = "fixed", "Fixed"
    STILL_BROKEN = "still_broken", "Still broken"


class TicketCounter(models.Model):
    """The last request number given in an organisation and year (for human references)."""

    organisation = models.ForeignKey(
        "estate.Organisation", on_delete=models.CASCADE, related_name="+"
    )
    year = models.PositiveSmallIntegerField()
    last = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organisation", "year"], name="ticket_counter_unique")
        ]

    def __str__(self) -> str:
        return f"{self.organisation_id} {self.year}: {self.last}"


_WORKING = [Status.NEW, Status.ACKNOWLEDGED, Status.SCHEDULED, Status.IN_PROGRESS, Status.REOPENED]


class Ticket(ConcurrentTransitionMixin, BaseModel):
    """A request about a dwelling, a common area, a building or a residence."""

    organisation = models.ForeignKey(
        "estate.Organisation", on_delete=models.PROTECT, related_name="tickets"
    )
    reference = models.CharField(max_length=20, help_text="Human reference, e.g. 2026-000042.")
    category = models.ForeignKey(Category, on_delete=models.PROTECT, related_name="tickets")
    priority = models.CharField(max_length=10, choices=Priority.choices, default=Priority.NORMAL)
    source = models.CharField(max_length=20, choices=Source.choices)
    status = FSMField(max_length=20, choices=Status.choices, default=Status.NEW)

    place_kind = models.CharField(max_length=20, choices=PlaceKind.choices)
    residence = models.ForeignKey("estate.Residence", on_delete=models.PROTECT, related_name="+")
    building = models.ForeignKey(
        "estate.Building", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    entrance = models.ForeignKey(
        "estate.Entrance", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    dwelling = models.ForeignKey(
        "estate.Dwelling", on_delete=models.PROTECT, null=True, blank=True, related_name="tickets"
    )
    common_area = models.ForeignKey(
        "estate.CommonArea",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="tickets",
    )
    equipment = models.ForeignKey(
        "estate.Equipment", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    description = models.TextField(max_length=DESCRIPTION_MAX_LENGTH)
    answers = models.JSONField(default=dict, blank=True)
    latitude = models.DecimalField(max_digits=9, decimal_places=6, null=True, blank=True)
    longitude = models.DecimalField(max_digits=9, decimal_places=6, null=True, blank=True)

    reporter = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="reported_tickets",
        help_text="The person the request is for (a tenant); empty for sensors and audits.",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    partner = models.ForeignKey(
        "Partner", on_delete=models.PROTECT, null=True, blank=True, related_name="tickets"
    )
    external_contact = models.JSONField(
        default=dict, blank=True, help_text="A partner's requester contact; never shown."
    )
    related_fault_id = models.UUIDField(null=True, blank=True, db_index=True)

    assigned_team = models.ForeignKey(
        "estate.Team", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    assigned_contractor = models.ForeignKey(
        "estate.Contractor", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="assigned_tickets",
    )
    duplicate_of = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="duplicates"
    )
    incident = models.ForeignKey(
        "Incident", on_delete=models.SET_NULL, null=True, blank=True, related_name="tickets"
    )

    waiting_reason = models.CharField(max_length=20, choices=WaitingReason.choices, blank=True)
    acknowledge_due_at = models.DateTimeField(null=True, blank=True)
    resolve_due_at = models.DateTimeField(null=True, blank=True, db_index=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    paused_at = models.DateTimeField(null=True, blank=True)
    acknowledge_breached_at = models.DateTimeField(null=True, blank=True)
    resolve_breached_at = models.DateTimeField(null=True, blank=True)
    escalated_at = models.DateTimeField(null=True, blank=True)

    confirmation_requested_at = models.DateTimeField(null=True, blank=True)
    confirmation = models.CharField(max_length=20, choices=Confirmation.choices, blank=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    rating = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(5)]
    )
    rating_comment = models.CharField(max_length=1000, blank=True)
    rated_at = models.DateTimeField(null=True, blank=True)
    reopen_count = models.PositiveSmallIntegerField(default=0)
    missed_appointments = models.PositiveSmallIntegerField(default=0)
    version = models.PositiveIntegerField(default=1, help_text="Bumped by every change.")

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "reference"], name="ticket_reference_unique"
            ),
            models.CheckConstraint(
                condition=Q(rating__isnull=True) | Q(rating__gte=1, rating__lte=5),
                name="ticket_rating_range",
            ),
            models.CheckConstraint(
                condition=~Q(duplicate_of=F("id")), name="ticket_not_duplicate_of_itself"
            ),
        ]
        indexes = [
            models.Index(fields=["organisation", "status"], name="ticket_org_status"),
            models.Index(fields=["residence", "status"], name="ticket_residence_status"),
            models.Index(fields=["assigned_team", "status"], name="ticket_team_status"),
            models.Index(fields=["dwelling", "created_at"], name="ticket_dwelling_created"),
            models.Index(fields=["entrance", "category", "status"], name="ticket_entrance_cat"),
            models.Index(fields=["organisation", "updated_at"], name="ticket_org_updated"),
        ]

    def __str__(self) -> str:
        return self.reference

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    # --- the state machine: services call these, after checking who may. -------------------

    @transition(
        field=status,
        source=[Status.NEW, Status.REOPENED, Status.WAITING, Status.SCHEDULED],
        target=Status.ACKNOWLEDGED,
    )
    def acknowledge(self) -> None:
        """Someone in charge has seen it (or the reason to wait, or the visit, is gone)."""

    @transition(field=status, source=[*_WORKING, Status.WAITING], target=Status.SCHEDULED)
    def schedule(self) -> None:
        """A visit is booked."""

    @transition(field=status, source=[*_WORKING, Status.WAITING], target=Status.IN_PROGRESS)
    def start(self) -> None:
        """Work has begun."""

    @transition(field=status, source=_WORKING, target=Status.WAITING)
    def wait(self) -> None:
        """Paused for a reason outside the landlord's hands; the clock stops."""

    @transition(field=status, source=[*_WORKING, Status.WAITING], target=Status.RESOLVED)
    def resolve(self) -> None:
        """The work is done; the tenant is asked to confirm."""

    @transition(field=status, source=Status.RESOLVED, target=Status.CLOSED)
    def close(self) -> None:
        """Confirmed fixed, or no answer in time."""

    @transition(field=status, source=[*_WORKING, Status.WAITING], target=Status.CLOSED)
    def withdraw(self) -> None:
        """The tenant no longer needs it."""

    @transition(field=status, source=[Status.RESOLVED, Status.CLOSED], target=Status.REOPENED)
    def reopen(self) -> None:
        """Still broken."""

    @transition(field=status, source=[*_WORKING, Status.WAITING], target=Status.REJECTED)
    def reject(self) -> None:
        """Not for the landlord (the tenant's own repair, not a real problem...)."""

    @transition(field=status, source=[*_WORKING, Status.WAITING], target=Status.DUPLICATE)
    def mark_duplicate(self) -> None:
        """The same problem as another request, which it is merged into."""


class EventKind(models.TextChoices):
    CREATED = "created", "Created"
    STATUS = "status", "Status changed"
    COMMENT = "comment", "Comment"
    ASSIGNED = "assigned", "Assigned"
    UPDATED = "updated", "Updated"
    PHOTO = "photo", "Photo added"
    FOLLOWED = "followed", "Followed"
    APPOINTMENT = "appointment", "Appointment"
    SLA_BREACHED = "sla_breached", "Target missed"
    ESCALATED = "escalated", "Escalated"
    INCIDENT = "incident", "Linked to an incident"
    MERGED = "merged", "Duplicate merged in"
    CONFIRMATION_REQUESTED = "confirmation_requested", "Confirmation requested"
    CONFIRMED = "confirmed", "Tenant answered"
    RATED = "rated", "Rated"


class AppendOnlyError(Exception):
    """An attempt to change or remove a row of an append-only history."""


class TicketEvent(BaseModel):
    """One entry in a request's history: who did what, for whom, public or internal."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=30, choices=EventKind.choices)
    from_status = models.CharField(max_length=20, choices=Status.choices, blank=True)
    to_status = models.CharField(max_length=20, choices=Status.choices, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    actor_role = models.CharField(max_length=20, blank=True)
    on_behalf_of = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    note = models.TextField(max_length=NOTE_MAX_LENGTH, blank=True)
    public = models.BooleanField(default=True, help_text="Shown to the tenant.")
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["created_at"]
        indexes = [models.Index(fields=["ticket", "created_at"], name="ticket_event_timeline")]

    def __str__(self) -> str:
        return f"{self.ticket_id} {self.kind}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AppendOnlyError("A request's history is append-only.")
        super().save(*args, **kwargs)


def _photo_path(instance, filename: str) -> str:
    return f"tickets/{instance.ticket_id}/{instance.id}{filename[filename.rfind('.') :]}"


def _thumbnail_path(instance, filename: str) -> str:
    return f"tickets/{instance.ticket_id}/{instance.id}-thumb.jpg"


class TicketPhoto(BaseModel):
    """A photo of the problem, re-encoded without its metadata, with a thumbnail."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="photos")
    image = models.FileField(upload_to=_photo_path, max_length=200)
    thumbnail = models.FileField(upload_to=_thumbnail_path, max_length=200)
    content_type = models.CharField(max_length=30)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    size = models.PositiveIntegerField(help_text="Bytes, as stored.")
    taken_at = models.DateTimeField(null=True, blank=True)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"photo {self.id}"


class TicketFollower(BaseModel):
    """A person who gets every update of a request ("me too", or staff watching it)."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="followers")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="followed_tickets"
    )
    me_too = models.BooleanField(default=True, help_text="Has the same problem.")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["ticket", "user"], name="ticket_follower_unique")
        ]

    def __str__(self) -> str:
        return f"{self.user_id} follows {self.ticket_id}"


class AppointmentStatus(models.TextChoices):
    PROPOSED = "proposed", "Proposed"
    BOOKED = "booked", "Booked"
    DECLINED = "declined", "Not chosen"
    CANCELLED = "cancelled", "Cancelled"
    DONE = "done", "Done"
    MISSED = "missed", "Missed (nobody home)"


class Appointment(BaseModel):
    """A visit slot proposed by staff; the tenant books one of those of a proposal."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="appointments")
    proposal = models.UUIDField(db_index=True, help_text="Slots proposed together.")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    status = models.CharField(
        max_length=20, choices=AppointmentStatus.choices, default=AppointmentStatus.PROPOSED
    )
    proposed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+"
    )
    booked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    booked_at = models.DateTimeField(null=True, blank=True)
    key_with_caretaker = models.BooleanField(
        default=False, help_text="The tenant leaves a key with the caretaker instead of being in."
    )
    reminder_sent_at = models.DateTimeField(null=True, blank=True)
    note = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["starts_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_at__gt=F("starts_at")), name="appointment_ends_after_start"
            )
        ]
        indexes = [models.Index(fields=["status", "starts_at"], name="appointment_due")]

    def __str__(self) -> str:
        return f"{self.ticket_id} {self.starts_at:%Y-%m-%d %H:%M}"


class IncidentStatus(models.TextChoices):
    OPEN = "open", "Open"
    CLOSED = "closed", "Closed"


class Incident(BaseModel):
    """A building- or residence-wide outage (no heating in building B, lift down)."""

    organisation = models.ForeignKey(
        "estate.Organisation", on_delete=models.PROTECT, related_name="incidents"
    )
    category = models.ForeignKey(Category, on_delete=models.PROTECT, related_name="incidents")
    residence = models.ForeignKey("estate.Residence", on_delete=models.PROTECT, related_name="+")
    building = models.ForeignKey(
        "estate.Building", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    status = models.CharField(
        max_length=10, choices=IncidentStatus.choices, default=IncidentStatus.OPEN
    )
    source = models.CharField(max_length=20, default="staff")
    public_message = models.TextField(max_length=NOTE_MAX_LENGTH)
    expected_end = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    opened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    related_fault_id = models.UUIDField(null=True, blank=True)
    version = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["-started_at"]
        indexes = [
            models.Index(fields=["organisation", "status"], name="incident_org_status"),
            models.Index(fields=["organisation", "updated_at"], name="incident_org_updated"),
        ]

    def __str__(self) -> str:
        return f"{self.category} ({self.building or self.residence})"


class IncidentUpdateKind(models.TextChoices):
    STARTED = "started", "Started"
    UPDATED = "updated", "Updated"
    ENDED = "ended", "Ended"


class IncidentUpdate(BaseModel):
    """What tenants were told about an incident, and when."""

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="updates")
    kind = models.CharField(max_length=10, choices=IncidentUpdateKind.choices)
    public_message = models.TextField(max_length=NOTE_MAX_LENGTH)
    expected_end = models.DateTimeField(null=True, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    recipients = models.PositiveIntegerField(default=0, help_text="Tenants told.")

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"{self.incident_id} {self.kind}"


class Partner(BaseModel):
    """A partner system (city, contractor, tenants' association) using the Open311 API."""

    organisation = models.ForeignKey(
        "estate.Organisation", on_delete=models.CASCADE, related_name="open311_partners"
    )
    name = models.CharField(max_length=200)
    key_prefix = models.CharField(max_length=12, unique=True, help_text="Shown to find the key.")
    key_hash = models.CharField(max_length=64, help_text="SHA-256 of the key; the key is not kept.")
    residences = models.ManyToManyField(
        "estate.Residence",
        blank=True,
        related_name="+",
        help_text="Where it may file and read requests; none: the whole organisation.",
    )
    is_active = models.BooleanField(default=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["organisation", "name"], name="partner_name_unique")
        ]

    def __str__(self) -> str:
        return self.name


class SyncTombstone(models.Model):
    """Something deleted, kept so offline phones learn to drop it at their next sync."""

    organisation = models.ForeignKey(
        "estate.Organisation", on_delete=models.CASCADE, related_name="+"
    )
    kind = models.CharField(max_length=20)
    object_id = models.UUIDField()
    residence = models.ForeignKey(
        "estate.Residence", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    deleted_at = models.DateTimeField(db_index=True)

    class Meta:
        indexes = [
            models.Index(fields=["organisation", "kind", "deleted_at"], name="tombstone_scan")
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.object_id}"


class InboundSms(BaseModel):
    """A text message received from a tenant (an answer to "is it fixed?"), kept once."""

    message_id = models.CharField(max_length=100, unique=True)
    sender = models.CharField(max_length=20)
    body = models.CharField(max_length=1600)
    received_at = models.DateTimeField()
    ticket = models.ForeignKey(
        Ticket, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    outcome = models.CharField(max_length=30)

    class Meta:
        ordering = ["-received_at"]

    def __str__(self) -> str:
        return self.message_id
