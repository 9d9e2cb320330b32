"""The notification outbox and what decides who is reached, how and when.

A Notification is one message to one person, written in the same transaction as the event
that causes it; each of its channels has one Delivery row (UNIQUE per notification and channel)
that a worker claims, sends and updates. Nothing is sent from the request itself.
"""

import hashlib
import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from api.core.models import BaseModel


class Channel(models.TextChoices):
    """Ways of reaching a person."""

    PUSH = "push", "Mobile push (FCM)"
    WEBPUSH = "webpush", "Web push"
    SMS = "sms", "SMS"
    EMAIL = "email", "E-mail"


class DeliveryStatus(models.TextChoices):
    """Where one delivery stands; `sending` is a worker's claim, `cancelled` a step not needed."""

    QUEUED = "queued", "Queued"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed"
    READ = "read", "Read"
    CANCELLED = "cancelled", "Cancelled"


class Notification(BaseModel):
    """One message to one person: the inbox item, rendered in the person's language."""

    # A crisis notice writes 10,000 rows in one go: every index costs, so foreign keys that the
    # composite and partial indexes below already serve have none of their own.
    organisation = models.ForeignKey(
        "estate.Organisation",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="notifications",
        db_index=False,
    )
    event = models.CharField(max_length=64, help_text='The template: "ticket.created"…')
    context = models.JSONField(default=dict, blank=True)
    language = models.CharField(max_length=10)
    title = models.CharField(max_length=200)
    body = models.TextField()
    critical = models.BooleanField(default=False)
    deep_link = models.CharField(max_length=300, blank=True)
    dedupe_key = models.CharField(max_length=200, null=True, blank=True)  # noqa: DJ001 - NULL: no key
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    batch = models.UUIDField(default=uuid.uuid4, help_text="Notifications written by one call.")
    dwelling = models.ForeignKey(
        "estate.Dwelling",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="The household concerned, for the door-knocking list.",
    )
    broadcast = models.ForeignKey(
        "Broadcast", on_delete=models.SET_NULL, null=True, blank=True, related_name="notifications"
    )
    alert = models.ForeignKey(
        "TeamAlert",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="notifications",
        db_index=False,
    )
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["recipient", "dedupe_key"],
                condition=Q(dedupe_key__isnull=False),
                name="notification_dedupe_unique",
            )
        ]
        indexes = [
            models.Index(fields=["recipient", "-created_at"], name="notification_inbox"),
            models.Index(
                fields=["recipient"], condition=Q(read_at__isnull=True), name="notification_unread"
            ),
            models.Index(
                fields=["alert"], condition=Q(alert__isnull=False), name="notification_alert"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event} → {self.recipient_id}"


class Delivery(BaseModel):
    """One notification through one channel: claimed by one worker, sent at most once."""

    # Served by the unique (notification, channel) constraint's index.
    notification = models.ForeignKey(
        Notification, on_delete=models.CASCADE, related_name="deliveries", db_index=False
    )
    channel = models.CharField(max_length=10, choices=Channel.choices)
    status = models.CharField(
        max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.QUEUED
    )
    critical = models.BooleanField(default=False, help_text="Claimed first.")
    not_before = models.DateTimeField(help_text="Not sent before (quiet hours, escalation).")
    only_if_unread = models.BooleanField(
        default=False, help_text="An escalation step: cancelled if the notification is read."
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    claimed_until = models.DateTimeField(null=True, blank=True)
    provider_id = models.CharField(max_length=200, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    detail = models.JSONField(default=dict, blank=True, help_text="Per-device results.")
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at"]
        verbose_name_plural = "deliveries"
        constraints = [
            models.UniqueConstraint(
                fields=["notification", "channel"], name="delivery_one_per_channel"
            )
        ]
        indexes = [
            models.Index(
                fields=["-critical", "not_before"],
                condition=Q(status="queued"),
                name="delivery_due",
            ),
            models.Index(
                fields=["claimed_until"], condition=Q(status="sending"), name="delivery_claimed"
            ),
            # Provider callbacks look deliveries up by their id; queued ones have none yet.
            models.Index(
                fields=["provider_id"], condition=~Q(provider_id=""), name="delivery_provider_id"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.channel} {self.status} ({self.notification_id})"

    @property
    def idempotency_key(self) -> str:
        """The key providers and file backends use to refuse a second copy."""
        return f"palier-{self.id}"


class PushDeviceKind(models.TextChoices):
    FCM = "fcm", "Mobile app (FCM)"
    WEBPUSH = "webpush", "Browser (Web Push)"


class PushDevice(BaseModel):
    """A phone app's FCM registration token or a browser's Web Push subscription."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="push_devices"
    )
    kind = models.CharField(max_length=10, choices=PushDeviceKind.choices)
    token = models.TextField(help_text="FCM registration token, or the Web Push endpoint URL.")
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    p256dh = models.CharField(max_length=200, blank=True, help_text="Web Push: the client key.")
    auth = models.CharField(max_length=100, blank=True, help_text="Web Push: the auth secret.")
    platform = models.CharField(max_length=20, blank=True)
    label = models.CharField(max_length=100, blank=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(
                fields=["user", "kind"],
                condition=Q(disabled_at__isnull=True),
                name="pushdevice_live",
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} of {self.user_id}"

    @staticmethod
    def hash_token(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()


class NotificationPreference(BaseModel):
    """How a person wants to be reached; critical notices pass quiet hours."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_preference"
    )
    push_enabled = models.BooleanField(default=True)
    sms_enabled = models.BooleanField(default=True)
    email_enabled = models.BooleanField(default=False)
    quiet_start = models.TimeField(null=True, blank=True, help_text="Local time, e.g. 21:00.")
    quiet_end = models.TimeField(null=True, blank=True, help_text="Local time, e.g. 08:00.")

    def __str__(self) -> str:
        return f"preferences of {self.user_id}"


class BroadcastKind(models.TextChoices):
    """What staff announce; each has words in every language, so no one needs to translate."""

    WATER_CUT = "water_cut", "Water cut"
    HOT_WATER_CUT = "hot_water_cut", "Hot water cut"
    POWER_CUT = "power_cut", "Power cut"
    HEATING_CUT = "heating_cut", "Heating cut"
    GAS_CUT = "gas_cut", "Gas cut"
    LIFT_OUTAGE = "lift_outage", "Lift out of order"
    WORKS = "works", "Works"
    EMERGENCY = "emergency", "Emergency"
    INFORMATION = "information", "Information"


class BroadcastStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    SENT = "sent", "Sent"


class Broadcast(BaseModel):
    """A message from the agency to every household of a residence, building or entrance."""

    organisation = models.ForeignKey(
        "estate.Organisation", on_delete=models.PROTECT, related_name="+"
    )
    kind = models.CharField(max_length=20, choices=BroadcastKind.choices)
    critical = models.BooleanField(default=False)
    message = models.TextField(
        blank=True, max_length=1000, help_text="Staff's own words, in French, added to the notice."
    )
    translations = models.JSONField(
        default=dict, blank=True, help_text='The message in other languages: {"en": "…"}.'
    )
    residence = models.ForeignKey(
        "estate.Residence", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    building = models.ForeignKey(
        "estate.Building", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    entrance = models.ForeignKey(
        "estate.Entrance", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    starts_at = models.DateTimeField(null=True, blank=True)
    ends_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(
        max_length=10, choices=BroadcastStatus.choices, default=BroadcastStatus.DRAFT
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    sent_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    sent_at = models.DateTimeField(null=True, blank=True)
    batch = models.UUIDField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(residence__isnull=False, building__isnull=True, entrance__isnull=True)
                    | Q(residence__isnull=True, building__isnull=False, entrance__isnull=True)
                    | Q(residence__isnull=True, building__isnull=True, entrance__isnull=False)
                ),
                name="broadcast_has_one_target",
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.get_status_display()})"


class HouseholdReach(BaseModel):
    """Whether a household got a critical notice; unreached ones go to the caretaker's list."""

    organisation = models.ForeignKey(
        "estate.Organisation", on_delete=models.CASCADE, related_name="+"
    )
    batch = models.UUIDField()
    dwelling = models.ForeignKey("estate.Dwelling", on_delete=models.CASCADE, related_name="+")
    event = models.CharField(max_length=64)
    title = models.CharField(max_length=200)
    broadcast = models.ForeignKey(
        Broadcast, on_delete=models.SET_NULL, null=True, blank=True, related_name="reaches"
    )
    list_after = models.DateTimeField(help_text="Listed for door-knocking if not reached by then.")
    listed_at = models.DateTimeField(null=True, blank=True)
    reached_at = models.DateTimeField(null=True, blank=True)
    reached_via = models.CharField(max_length=20, blank=True)
    visited_at = models.DateTimeField(null=True, blank=True)
    visited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    visit_outcome = models.CharField(max_length=20, blank=True)
    visit_note = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "household reaches"
        constraints = [
            models.UniqueConstraint(fields=["batch", "dwelling"], name="household_reach_unique")
        ]
        indexes = [
            models.Index(
                fields=["list_after"],
                condition=Q(reached_at__isnull=True, listed_at__isnull=True),
                name="household_reach_pending",
            )
        ]

    def __str__(self) -> str:
        return f"{self.event} / {self.dwelling_id}"


class OnCallShift(BaseModel):
    """A person on call for a team between two instants; position 0 is called first."""

    team = models.ForeignKey("estate.Team", on_delete=models.CASCADE, related_name="on_call_shifts")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="on_call_shifts"
    )
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    position = models.PositiveSmallIntegerField(
        default=0, help_text="0: first called; 1: called if 0 does not acknowledge…"
    )

    class Meta:
        ordering = ["starts_at", "position"]
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_at__gt=models.F("starts_at")), name="on_call_ends_after_start"
            )
        ]
        indexes = [models.Index(fields=["team", "starts_at", "ends_at"])]

    def __str__(self) -> str:
        return f"{self.user_id} on call for {self.team_id} (#{self.position})"


class AlertStatus(models.TextChoices):
    OPEN = "open", "Waiting for acknowledgement"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    EXHAUSTED = "exhausted", "Nobody acknowledged"
    DIGESTED = "digested", "Held for a digest"


class TeamAlert(BaseModel):
    """A maintenance alert routed to a team's on-call chain until someone acknowledges it."""

    organisation = models.ForeignKey(
        "estate.Organisation", on_delete=models.CASCADE, related_name="+"
    )
    team = models.ForeignKey("estate.Team", on_delete=models.CASCADE, related_name="alerts")
    event = models.CharField(max_length=64)
    context = models.JSONField(default=dict, blank=True)
    critical = models.BooleanField(default=False)
    dedupe_key = models.CharField(max_length=200, null=True, blank=True)  # noqa: DJ001 - NULL: no key
    status = models.CharField(max_length=15, choices=AlertStatus.choices, default=AlertStatus.OPEN)
    chain = models.JSONField(default=list, help_text="User ids in calling order.")
    level = models.PositiveSmallIntegerField(default=0, help_text="Index in the chain called.")
    escalate_at = models.DateTimeField(null=True, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    digest = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="digested_alerts",
        help_text="The digest alert that reported this held alert.",
    )

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["team", "dedupe_key"],
                condition=Q(dedupe_key__isnull=False),
                name="team_alert_dedupe_unique",
            )
        ]
        indexes = [
            models.Index(fields=["team", "-created_at"]),
            models.Index(
                fields=["escalate_at"], condition=Q(status="open"), name="team_alert_escalation"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event} for {self.team_id} ({self.status})"
