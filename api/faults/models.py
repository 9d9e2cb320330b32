"""Faults: rule overrides (versioned data), engine state per (device, rule), faults and their log.

The shipped rules (api/faults/rules.py) are the defaults; staff override a rule per device
model and/or per residence. The engine's state lives in DeviceRuleStates (one row per device,
each rule's state inside) so that any worker can continue a device's evaluation. A Fault
follows the ISA-18.2 lifecycle; every change appends a FaultEvent.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q

from api.core.models import BaseModel


class Severity(models.TextChoices):
    """How bad a fault is: minor (seen on the board), major (a ticket), critical (on call)."""

    INFO = "info", "Info"
    MINOR = "minor", "Minor"
    MAJOR = "major", "Major"
    CRITICAL = "critical", "Critical"


SEVERITY_RANK = {"info": 0, "minor": 1, "major": 2, "critical": 3}


class FaultStateKind(models.TextChoices):
    """ISA-18.2 alarm states (plus suppression by an incident and out of service)."""

    ACTIVE_UNACK = "active_unack", "Active, unacknowledged"
    ACTIVE_ACK = "active_ack", "Active, acknowledged"
    CLEARED_UNACK = "cleared_unack", "Cleared, unacknowledged"
    CLEARED = "cleared", "Cleared (closed)"
    SHELVED = "shelved", "Shelved"
    SUPPRESSED = "suppressed", "Suppressed by an incident"
    OUT_OF_SERVICE = "out_of_service", "Out of service"


# Every state but "cleared" is open: one open fault per (device, rule).
OPEN_STATES = frozenset(
    {
        FaultStateKind.ACTIVE_UNACK,
        FaultStateKind.ACTIVE_ACK,
        FaultStateKind.CLEARED_UNACK,
        FaultStateKind.SHELVED,
        FaultStateKind.SUPPRESSED,
        FaultStateKind.OUT_OF_SERVICE,
    }
)
UNACK_STATES = frozenset({FaultStateKind.ACTIVE_UNACK, FaultStateKind.CLEARED_UNACK})


class RuleOverride(BaseModel):
    """A rule's settings changed for an organisation, a device model and/or a residence.

    `changes` holds the rule's fields replaced (thresholds as conditions, durations, severity,
    steps...); the effective rule is the shipped one with these changes, checked on save.
    The most specific override wins: residence and model, residence, model, organisation.
    """

    organisation = models.ForeignKey(
        "estate.Organisation", on_delete=models.CASCADE, related_name="fault_rule_overrides"
    )
    rule = models.CharField(max_length=40, help_text="Code of a shipped rule.")
    device_model = models.CharField(max_length=64, blank=True, help_text="Empty: every model.")
    residence = models.ForeignKey(
        "estate.Residence",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="fault_rule_overrides",
    )
    enabled = models.BooleanField(default=True, help_text="Off: the rule does not run there.")
    changes = models.JSONField(default=dict, blank=True)
    severity = models.CharField(max_length=10, choices=Severity.choices)
    source = models.TextField(help_text="Where the changed threshold comes from.")
    version = models.PositiveIntegerField(default=1)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["rule", "device_model"]
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "rule", "device_model", "residence"],
                name="fault_rule_override_unique",
                nulls_distinct=False,
            )
        ]

    def __str__(self) -> str:
        return f"{self.rule} v{self.version} ({self.device_model or '*'})"


class RuleVersion(BaseModel):
    """An override as it was saved once (append-only): who changed a threshold, when, why."""

    override = models.ForeignKey(RuleOverride, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    enabled = models.BooleanField(default=True)
    changes = models.JSONField(default=dict, blank=True)
    severity = models.CharField(max_length=10, choices=Severity.choices)
    source = models.TextField()
    definition = models.JSONField(default=dict, help_text="The effective rule, in full.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["override", "-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["override", "version"], name="fault_rule_version_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.override.rule} v{self.version}"


class DeviceRuleStates(models.Model):
    """The rule engine's state of one device: every rule's engine JSON, and the last event time.

    One row per unit, read and written once per batch that reaches its rules; each rule's
    state (engine.RuleState) is kept apart inside, under the rule's id.
    """

    device = models.OneToOneField(
        "telemetry.Device", on_delete=models.CASCADE, primary_key=True, related_name="rule_states"
    )
    states = models.TextField(default="{}", help_text="{rule id: engine.RuleState} as JSON.")
    event_at = models.FloatField(
        null=True, blank=True, help_text="Watermark (latest of the rules'), unix seconds."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "device rule states"

    def __str__(self) -> str:
        return f"{self.device_id}"


class Fault(BaseModel):
    """A fault a rule raised on a device, from its raise (event time) to its close."""

    organisation = models.ForeignKey(
        "estate.Organisation", on_delete=models.PROTECT, related_name="faults"
    )
    device = models.ForeignKey("telemetry.Device", on_delete=models.CASCADE, related_name="faults")
    rule = models.CharField(max_length=40)
    rule_version = models.PositiveIntegerField(default=1)
    title = models.CharField(max_length=200)
    category = models.CharField(max_length=30, blank=True, help_text="Class of fault.")
    severity = models.CharField(max_length=10, choices=Severity.choices)
    state = models.CharField(
        max_length=20, choices=FaultStateKind.choices, default=FaultStateKind.ACTIVE_UNACK
    )
    condition_active = models.BooleanField(default=True, help_text="The rule still holds.")
    raised_at = models.DateTimeField(help_text="Event time of the reading that raised it.")
    since = models.DateTimeField(null=True, blank=True, help_text="When the condition began.")
    cleared_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    shelved_until = models.DateTimeField(null=True, blank=True)
    shelve_reason = models.CharField(max_length=300, blank=True)
    shelved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    repeat_count = models.PositiveIntegerField(default=0)
    last_repeat_at = models.DateTimeField(null=True, blank=True)
    values = models.JSONField(default=dict, blank=True, help_text="Signals when raised.")
    detail = models.CharField(max_length=300, blank=True, help_text="E.g. the lockout's label.")
    ticket = models.ForeignKey(
        "tickets.Ticket", on_delete=models.SET_NULL, null=True, blank=True, related_name="faults"
    )
    incident = models.ForeignKey(
        "tickets.Incident",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="faults",
    )
    dispatch_due_at = models.DateTimeField(
        null=True, blank=True, help_text="When work and alerts go out (held for correlation)."
    )
    dispatched_at = models.DateTimeField(null=True, blank=True)
    # Where the device is, copied at raise time for filtering without joins.
    dwelling = models.ForeignKey(
        "estate.Dwelling", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    building = models.ForeignKey(
        "estate.Building", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    residence = models.ForeignKey(
        "estate.Residence", on_delete=models.PROTECT, related_name="faults"
    )

    class Meta:
        ordering = ["-raised_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["device", "rule"],
                condition=~Q(state="cleared"),
                name="fault_one_open_per_device_rule",
            )
        ]
        indexes = [
            models.Index(fields=["organisation", "state", "-raised_at"]),
            models.Index(fields=["residence", "state"]),
            models.Index(fields=["building", "category", "raised_at"]),
            models.Index(
                fields=["dispatch_due_at"],
                condition=Q(dispatched_at__isnull=True, dispatch_due_at__isnull=False),
                name="fault_dispatch_due",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.rule} on {self.device_id} ({self.state})"

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES


class FaultEventKind(models.TextChoices):
    RAISED = "raised", "Raised"
    REPEATED = "repeated", "Raised again while open"
    ESCALATED = "escalated", "Severity raised"
    CLEARED = "cleared", "Condition cleared"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    SHELVED = "shelved", "Shelved"
    UNSHELVED = "unshelved", "Unshelved"
    SUPPRESSED = "suppressed", "Suppressed by an incident"
    OUT_OF_SERVICE = "out_of_service", "Out of service"
    RETURNED = "returned", "Back in service"
    CLOSED = "closed", "Closed"
    TICKET = "ticket", "Ticket opened"
    ALERTED = "alerted", "Team alerted"
    COMMENT = "comment", "Comment"


class AppendOnlyError(Exception):
    """A fault's history is never rewritten."""


class FaultEvent(BaseModel):
    """One change of a fault (append-only): state moves, repeats, work opened, comments."""

    fault = models.ForeignKey(Fault, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=20, choices=FaultEventKind.choices)
    at = models.DateTimeField(help_text="Event time for engine changes, else wall-clock time.")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    from_state = models.CharField(max_length=20, blank=True)
    to_state = models.CharField(max_length=20, blank=True)
    note = models.TextField(blank=True)
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["created_at", "at"]
        indexes = [models.Index(fields=["fault", "at"])]

    def __str__(self) -> str:
        return f"{self.fault_id} {self.kind}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AppendOnlyError("Fault events are never changed.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("Fault events are never deleted.")


class FaultCalendar(BaseModel):
    """The organisation's clock for its rules: time zone and heating season.

    Gates such as "in heating season" and "between 07:00 and 23:00" are read in this time zone;
    the season runs from its start day to its end day inclusive, across the new year. Without a
    row, FAULT_HEATING_SEASON and TIME_ZONE apply.
    """

    organisation = models.OneToOneField(
        "estate.Organisation", on_delete=models.CASCADE, related_name="fault_calendar"
    )
    time_zone = models.CharField(max_length=64, help_text="IANA name, e.g. Europe/Paris.")
    season_start_month = models.PositiveSmallIntegerField()
    season_start_day = models.PositiveSmallIntegerField()
    season_end_month = models.PositiveSmallIntegerField()
    season_end_day = models.PositiveSmallIntegerField()
    source = models.TextField(blank=True, help_text="Where the dates come from.")
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    def __str__(self) -> str:
        return (
            f"{self.time_zone} {self.season_start_day:02d}/{self.season_start_month:02d}"
            f"-{self.season_end_day:02d}/{self.season_end_month:02d}"
        )
