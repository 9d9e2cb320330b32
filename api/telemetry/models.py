"""Connected units: the device registry, its event log, stored readings and their aggregates.

Readings are stored one row per MQTT message (arrays of name codes and values), in daily
partitions on PostgreSQL; docs/telemetry-storage.md gives the measurements behind that layout.
"""

import json

from django.db import models

KIND_HEATING = "heating"
KIND_VENTILATION = "ventilation"


class DeviceKind(models.TextChoices):
    """What a unit measures."""

    HEATING = KIND_HEATING, "Heating"
    VENTILATION = KIND_VENTILATION, "Ventilation"


class DeviceStatus(models.TextChoices):
    """A unit's connection state, as the platform last knew it."""

    PROVISIONED = "provisioned", "Provisioned, never seen"
    ONLINE = "online", "Online"
    OFFLINE = "offline", "Offline"
    REVOKED = "revoked", "Revoked"


class Device(models.Model):
    """A connected heating or ventilation unit, its MQTT credentials and last known state.

    Ingest rewrites the state of every unit in every batch: no index covers the columns it
    changes, and the table keeps free room in its pages (fillfactor, set by migration on
    PostgreSQL), so those updates stay in place (HOT) instead of growing every index.
    """

    # An integer key: every stored reading carries it, so it must be small.
    id = models.BigAutoField(primary_key=True)
    device_id = models.CharField(
        max_length=32, unique=True, help_text="MQTT username and client id; topic-safe."
    )
    organisation = models.ForeignKey(
        "estate.Organisation", on_delete=models.PROTECT, related_name="devices"
    )
    kind = models.CharField(max_length=20, choices=DeviceKind.choices)
    model = models.CharField(max_length=64, blank=True)
    firmware = models.CharField(max_length=64, blank=True)
    equipment = models.ForeignKey(
        "estate.Equipment", on_delete=models.PROTECT, related_name="devices"
    )
    status = models.CharField(
        max_length=20, choices=DeviceStatus.choices, default=DeviceStatus.PROVISIONED
    )
    status_changed_at = models.DateTimeField(null=True, blank=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    last_message_at = models.DateTimeField(
        null=True, blank=True, help_text="Device time of the newest message stored."
    )
    last_boot = models.BigIntegerField(null=True, blank=True)
    last_seq = models.BigIntegerField(null=True, blank=True)
    password_hash = models.CharField(max_length=200, help_text="Mosquitto $7$ PBKDF2 hash.")
    revoked_at = models.DateTimeField(null=True, blank=True)
    reporting_interval_s = models.PositiveIntegerField(default=60)
    aggregate_dirty_since = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Start of the earliest hour whose aggregates new readings have changed.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["device_id"]
        indexes = [
            models.Index(fields=["organisation", "status"]),
        ]

    def __str__(self) -> str:
        return self.device_id

    @property
    def fleet(self) -> str:
        """The MQTT fleet: the organisation's slug."""
        return self.organisation.slug

    @property
    def topic_prefix(self) -> str:
        return f"dt/{self.fleet}/{self.device_id}/"

    @property
    def is_revoked(self) -> bool:
        return self.status == DeviceStatus.REVOKED


class DeviceEventKind(models.TextChoices):
    PROVISIONED = "provisioned", "Provisioned"
    ONLINE = "online", "Online"
    OFFLINE = "offline", "Offline"
    BOOT = "boot", "Rebooted"
    META = "meta", "Model or firmware changed"
    CREDENTIALS = "credentials", "Password changed"
    REVOKED = "revoked", "Revoked"


class DeviceEvent(models.Model):
    """Append-only history of a unit: provisioned, online, offline, rebooted, revoked."""

    id = models.BigAutoField(primary_key=True)
    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=20, choices=DeviceEventKind.choices)
    at = models.DateTimeField()
    actor = models.ForeignKey(
        "accounts.User", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["device", "-at"])]

    def __str__(self) -> str:
        return f"{self.device_id} {self.kind} {self.at:%Y-%m-%d %H:%M}"


class PortableArrayField(models.Field):
    """A one-dimensional array: native on PostgreSQL, JSON text on SQLite (embedded mode)."""

    def __init__(self, *args, base_type: str = "float8", **kwargs) -> None:
        self.base_type = base_type
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        kwargs["base_type"] = self.base_type
        return name, path, args, kwargs

    def db_type(self, connection) -> str:
        if connection.vendor == "postgresql":
            return f"{self.base_type}[]"
        return "text"

    def get_db_prep_value(self, value, connection, prepared=False):
        if value is None or connection.vendor == "postgresql":
            return value
        return json.dumps(list(value), separators=(",", ":"))

    def from_db_value(self, value, expression, connection):
        if isinstance(value, str):
            return json.loads(value)
        return value


class Reading(models.Model):
    """One stored message: the readings of one unit at one time, as parallel arrays.

    `names[i]` (a code of vocabulary.NAME_CODES) was worth `vals[i]` (booleans as 0/1, NULL
    for a text value found in `texts[i]`) at `ts + offsets[i]` seconds (offsets is NULL when
    every offset is 0). The key (device, ts, boot, seq) deduplicates redelivered messages.
    The table is created by migration (PostgreSQL: partitioned by day on `ts`); writes and
    series go through api.telemetry.storage.
    """

    pk = models.CompositePrimaryKey("device", "ts", "boot", "seq")
    device = models.ForeignKey(
        Device, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    ts = models.DateTimeField()
    boot = models.BigIntegerField()
    seq = models.BigIntegerField()
    names = PortableArrayField(base_type="int2")
    vals = PortableArrayField(base_type="float8")
    offsets = PortableArrayField(base_type="float4", null=True)
    texts = PortableArrayField(base_type="text", null=True)

    class Meta:
        managed = False
        db_table = "telemetry_reading"

    def __str__(self) -> str:
        return f"{self.device_id} {self.boot}/{self.seq} {self.ts:%Y-%m-%d %H:%M:%S}"


class ReadingHour(models.Model):
    """Hourly aggregate of one name of one unit: min, max, sum and count (mean = sum / count)."""

    pk = models.CompositePrimaryKey("device", "name", "hour")
    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="+")
    name = models.SmallIntegerField()
    hour = models.DateTimeField()
    vmin = models.FloatField()
    vmax = models.FloatField()
    vsum = models.FloatField()
    count = models.IntegerField()

    class Meta:
        db_table = "telemetry_readinghour"
        indexes = [models.Index(fields=["hour"], name="telemetry_readinghour_hour")]

    def __str__(self) -> str:
        return f"{self.device_id} {self.name} {self.hour:%Y-%m-%d %H:00}"

    @property
    def mean(self) -> float:
        return self.vsum / self.count if self.count else 0.0


class Quarantine(models.Model):
    """A refused MQTT message or record: why, where from, and its first bytes."""

    id = models.BigAutoField(primary_key=True)
    organisation = models.ForeignKey(
        "estate.Organisation",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        help_text="The organisation whose fleet the topic names, when there is one.",
    )
    topic = models.CharField(max_length=300)
    device_ref = models.CharField(max_length=64, blank=True, help_text="Device id in the topic.")
    reason = models.CharField(max_length=40)
    detail = models.CharField(max_length=500, blank=True)
    raw = models.BinaryField(max_length=2048)
    size = models.PositiveIntegerField()
    received_at = models.DateTimeField()
    dedupe_hash = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        indexes = [
            models.Index(fields=["organisation", "-received_at"]),
            models.Index(fields=["received_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.reason} {self.topic}"


class QuarantineCounter(models.Model):
    """How many messages were quarantined per day and reason (kept after the rows are purged)."""

    id = models.BigAutoField(primary_key=True)
    day = models.DateField()
    reason = models.CharField(max_length=40)
    count = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["-day", "reason"]
        constraints = [
            models.UniqueConstraint(fields=["day", "reason"], name="quarantine_counter_unique")
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.reason}: {self.count}"
