"""The estate register: who owns what, where people live, and who looks after it."""

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q

from api.core.models import BaseModel

REFERENCE_MAX_LENGTH = 50


class Organisation(BaseModel):
    """A social landlord; organisations never see each other's data."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=50, unique=True, help_text="Also the MQTT fleet name.")
    retention = models.JSONField(
        default=dict,
        blank=True,
        help_text="Retention periods in days overriding the defaults: {rule key: days}.",
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Agency(BaseModel):
    """A local office of the landlord; agency staff see the residences it manages."""

    organisation = models.ForeignKey(
        Organisation, on_delete=models.PROTECT, related_name="agencies"
    )
    name = models.CharField(max_length=200)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "agencies"
        constraints = [
            models.UniqueConstraint(fields=["organisation", "name"], name="agency_name_unique")
        ]

    def __str__(self) -> str:
        return self.name


class Residence(BaseModel):
    """A group of buildings managed together (a "résidence"), the unit of most assignments."""

    organisation = models.ForeignKey(
        Organisation, on_delete=models.PROTECT, related_name="residences"
    )
    agency = models.ForeignKey(Agency, on_delete=models.PROTECT, related_name="residences")
    reference = models.CharField(max_length=REFERENCE_MAX_LENGTH)
    name = models.CharField(max_length=200)
    address = models.CharField(max_length=300, blank=True)
    postcode = models.CharField(max_length=10, blank=True)
    city = models.CharField(max_length=100, blank=True)
    priority_neighbourhood = models.BooleanField(
        default=False, help_text="In a priority neighbourhood (QPV)."
    )
    latitude = models.DecimalField(
        max_digits=9,
        decimal_places=6,
        null=True,
        blank=True,
        validators=[MinValueValidator(-90), MaxValueValidator(90)],
    )
    longitude = models.DecimalField(
        max_digits=9,
        decimal_places=6,
        null=True,
        blank=True,
        validators=[MinValueValidator(-180), MaxValueValidator(180)],
    )

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "reference"], name="residence_reference_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.reference})"


class Building(BaseModel):
    """A building of a residence."""

    organisation = models.ForeignKey(
        Organisation, on_delete=models.PROTECT, related_name="buildings"
    )
    residence = models.ForeignKey(Residence, on_delete=models.PROTECT, related_name="buildings")
    reference = models.CharField(max_length=REFERENCE_MAX_LENGTH)
    address = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["reference"]
        constraints = [
            models.UniqueConstraint(
                fields=["residence", "reference"], name="building_reference_unique"
            )
        ]

    def __str__(self) -> str:
        return self.reference


class Entrance(BaseModel):
    """A staircase of a building with its own door ("allée", "cage d'escalier")."""

    organisation = models.ForeignKey(
        Organisation, on_delete=models.PROTECT, related_name="entrances"
    )
    building = models.ForeignKey(Building, on_delete=models.PROTECT, related_name="entrances")
    reference = models.CharField(max_length=REFERENCE_MAX_LENGTH)
    label = models.CharField(max_length=100, blank=True, help_text='As signposted: "Allée B".')

    class Meta:
        ordering = ["reference"]
        constraints = [
            models.UniqueConstraint(
                fields=["building", "reference"], name="entrance_reference_unique"
            )
        ]

    def __str__(self) -> str:
        return self.label or self.reference


class DwellingType(models.TextChoices):
    """French size classes: T1 is one main room, T6 six or more."""

    T1 = "T1", "T1"
    T2 = "T2", "T2"
    T3 = "T3", "T3"
    T4 = "T4", "T4"
    T5 = "T5", "T5"
    T6 = "T6", "T6"


class Dwelling(BaseModel):
    """A home ("logement"); its reference is unique within the organisation."""

    organisation = models.ForeignKey(
        Organisation, on_delete=models.PROTECT, related_name="dwellings"
    )
    entrance = models.ForeignKey(Entrance, on_delete=models.PROTECT, related_name="dwellings")
    reference = models.CharField(max_length=REFERENCE_MAX_LENGTH)
    floor = models.SmallIntegerField(
        default=0, validators=[MinValueValidator(-5), MaxValueValidator(99)]
    )
    door = models.CharField(max_length=20, blank=True)
    type = models.CharField(max_length=2, choices=DwellingType.choices, blank=True)
    surface = models.DecimalField(
        max_digits=6,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(9999)],
        help_text="Living area in m².",
    )

    class Meta:
        ordering = ["reference"]
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "reference"], name="dwelling_reference_unique"
            )
        ]

    def __str__(self) -> str:
        return self.reference


class CommonAreaKind(models.TextChoices):
    HALL = "hall", "Entrance hall"
    STAIRWELL = "stairwell", "Stairwell"
    LANDING = "landing", "Landing"
    LIFT = "lift", "Lift"
    BIN_ROOM = "bin_room", "Bin room"
    CELLAR = "cellar", "Cellar"
    CAR_PARK = "car_park", "Car park"
    OUTDOOR = "outdoor", "Outdoor space"
    LAUNDRY = "laundry", "Laundry"
    OTHER = "other", "Other"


class CommonArea(BaseModel):
    """A shared space ("partie commune") of exactly one entrance, building or residence."""

    organisation = models.ForeignKey(
        Organisation, on_delete=models.PROTECT, related_name="common_areas"
    )
    kind = models.CharField(max_length=20, choices=CommonAreaKind.choices)
    name = models.CharField(max_length=200, blank=True)
    entrance = models.ForeignKey(
        Entrance, on_delete=models.PROTECT, null=True, blank=True, related_name="common_areas"
    )
    building = models.ForeignKey(
        Building, on_delete=models.PROTECT, null=True, blank=True, related_name="common_areas"
    )
    residence = models.ForeignKey(
        Residence, on_delete=models.PROTECT, null=True, blank=True, related_name="common_areas"
    )

    class Meta:
        ordering = ["kind", "name"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(entrance__isnull=False, building__isnull=True, residence__isnull=True)
                    | Q(entrance__isnull=True, building__isnull=False, residence__isnull=True)
                    | Q(entrance__isnull=True, building__isnull=True, residence__isnull=False)
                ),
                name="common_area_has_one_place",
            )
        ]

    def __str__(self) -> str:
        return self.name or self.get_kind_display()


class EquipmentKind(models.TextChoices):
    INDIVIDUAL_BOILER = "individual_boiler", "Individual boiler"
    HEATING_SUBSTATION = "heating_substation", "Heating substation"
    RADIATOR_THERMOSTAT = "radiator_thermostat", "Radiator / thermostat"
    VENTILATION_UNIT = "ventilation_unit", "Ventilation unit (VMC)"
    COLLECTIVE_VENTILATION = "collective_ventilation", "Collective ventilation"
    LIFT = "lift", "Lift"
    ENTRANCE_DOOR = "entrance_door", "Entrance door"
    OTHER = "other", "Other"


class Equipment(BaseModel):
    """An asset located in a dwelling or a common area, possibly serving other places."""

    organisation = models.ForeignKey(
        Organisation, on_delete=models.PROTECT, related_name="equipment"
    )
    kind = models.CharField(max_length=30, choices=EquipmentKind.choices)
    make = models.CharField(max_length=100, blank=True)
    model = models.CharField(max_length=100, blank=True)
    serial = models.CharField(max_length=100, blank=True)
    install_date = models.DateField(null=True, blank=True)
    dwelling = models.ForeignKey(
        Dwelling, on_delete=models.PROTECT, null=True, blank=True, related_name="equipment"
    )
    common_area = models.ForeignKey(
        CommonArea, on_delete=models.PROTECT, null=True, blank=True, related_name="equipment"
    )
    serves_dwellings = models.ManyToManyField(
        Dwelling, blank=True, related_name="served_by", help_text="A substation's dwellings."
    )
    serves_entrances = models.ManyToManyField(
        Entrance, blank=True, related_name="served_by", help_text="A collective VMC's entrances."
    )

    class Meta:
        ordering = ["kind", "make", "model"]
        verbose_name_plural = "equipment"
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(dwelling__isnull=False, common_area__isnull=True)
                    | Q(dwelling__isnull=True, common_area__isnull=False)
                ),
                name="equipment_has_one_location",
            )
        ]
        indexes = [models.Index(fields=["organisation", "serial"])]

    def __str__(self) -> str:
        label = " ".join(part for part in (self.make, self.model) if part)
        return f"{self.get_kind_display()} {label}".strip()


class Lease(BaseModel):
    """A tenancy of a dwelling; its dates decide what its household may see."""

    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="leases")
    dwelling = models.ForeignKey(Dwelling, on_delete=models.PROTECT, related_name="leases")
    reference = models.CharField(max_length=REFERENCE_MAX_LENGTH)
    start_date = models.DateField()
    end_date = models.DateField(null=True, blank=True, help_text="Last day of the tenancy.")

    class Meta:
        ordering = ["-start_date"]
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "reference"], name="lease_reference_unique"
            ),
            models.CheckConstraint(
                condition=Q(end_date__isnull=True) | Q(end_date__gte=F("start_date")),
                name="lease_ends_after_start",
            ),
        ]
        indexes = [models.Index(fields=["dwelling", "start_date", "end_date"])]

    def __str__(self) -> str:
        return self.reference


class HouseholdRelation(models.TextChoices):
    HOLDER = "holder", "Holder"
    CO_HOLDER = "co_holder", "Co-holder"
    OCCUPANT = "occupant", "Occupant"


class HouseholdMember(BaseModel):
    """A person living under a lease: its holder, a co-holder or another occupant."""

    lease = models.ForeignKey(Lease, on_delete=models.CASCADE, related_name="members")
    person = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="household_memberships"
    )
    relation = models.CharField(max_length=20, choices=HouseholdRelation.choices)

    class Meta:
        ordering = ["relation", "created_at"]
        constraints = [
            models.UniqueConstraint(fields=["lease", "person"], name="household_member_unique")
        ]

    def __str__(self) -> str:
        return f"{self.person} ({self.get_relation_display()})"


class AgencyMembership(BaseModel):
    """A member of agency staff working for an agency."""

    agency = models.ForeignKey(Agency, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="agency_memberships"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["agency", "user"], name="agency_membership_unique")
        ]

    def __str__(self) -> str:
        return f"{self.user} @ {self.agency}"


class CaretakerAssignment(BaseModel):
    """A caretaker ("gardien") looking after a residence."""

    caretaker = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="caretaker_assignments"
    )
    residence = models.ForeignKey(
        Residence, on_delete=models.CASCADE, related_name="caretaker_assignments"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["caretaker", "residence"], name="caretaker_assignment_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.caretaker} → {self.residence}"


class TeamKind(models.TextChoices):
    TECHNICIANS = "technicians", "Technicians"


class Team(BaseModel):
    """A team of technicians covering a sector (a set of residences)."""

    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="teams")
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=20, choices=TeamKind.choices, default=TeamKind.TECHNICIANS)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["organisation", "name"], name="team_name_unique")
        ]

    def __str__(self) -> str:
        return self.name


class TeamMembership(BaseModel):
    """A technician's membership of a team."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="team_memberships"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["team", "user"], name="team_membership_unique")
        ]

    def __str__(self) -> str:
        return f"{self.user} ∈ {self.team}"


class TeamSector(BaseModel):
    """A residence in a team's sector."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="sectors")
    residence = models.ForeignKey(Residence, on_delete=models.CASCADE, related_name="team_sectors")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["team", "residence"], name="team_sector_unique")
        ]

    def __str__(self) -> str:
        return f"{self.team} → {self.residence}"


class Trade(models.TextChoices):
    CLEANING = "cleaning", "Cleaning"
    HEATING_MAINTENANCE = "heating_maintenance", "Heating maintenance"
    LIFTS = "lifts", "Lifts"
    OTHER = "other", "Other"


class Contractor(BaseModel):
    """An outside company working for the landlord under contracts."""

    organisation = models.ForeignKey(
        Organisation, on_delete=models.PROTECT, related_name="contractors"
    )
    name = models.CharField(max_length=200)
    trade = models.CharField(max_length=30, choices=Trade.choices)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["organisation", "name"], name="contractor_name_unique")
        ]

    def __str__(self) -> str:
        return self.name


class ContractorContract(BaseModel):
    """A contractor's contract for a trade in a residence, between two dates."""

    contractor = models.ForeignKey(Contractor, on_delete=models.CASCADE, related_name="contracts")
    residence = models.ForeignKey(
        Residence, on_delete=models.CASCADE, related_name="contractor_contracts"
    )
    trade = models.CharField(max_length=30, choices=Trade.choices)
    start_date = models.DateField()
    end_date = models.DateField(null=True, blank=True, help_text="Last day of the contract.")

    class Meta:
        ordering = ["-start_date"]
        constraints = [
            models.CheckConstraint(
                condition=Q(end_date__isnull=True) | Q(end_date__gte=F("start_date")),
                name="contract_ends_after_start",
            )
        ]

    def __str__(self) -> str:
        return f"{self.contractor} / {self.residence} ({self.get_trade_display()})"


class ContractorMember(BaseModel):
    """A person who logs in on behalf of a contractor."""

    contractor = models.ForeignKey(Contractor, on_delete=models.CASCADE, related_name="members")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="contractor_memberships"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["contractor", "user"], name="contractor_member_unique")
        ]

    def __str__(self) -> str:
        return f"{self.user} @ {self.contractor}"


class DelegationRelation(models.TextChoices):
    RELATIVE = "relative", "Relative"
    HOME_HELPER = "home_helper", "Home helper"
    SOCIAL_WORKER = "social_worker", "Social worker"
    OTHER = "other", "Other"


class Delegation(BaseModel):
    """A tenant's revocable, time-limited permission for someone to act for them."""

    organisation = models.ForeignKey(
        Organisation, on_delete=models.PROTECT, related_name="delegations"
    )
    grantor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="delegations_given"
    )
    delegate = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="delegations_received"
    )
    relation = models.CharField(max_length=20, choices=DelegationRelation.choices)
    can_create_requests = models.BooleanField(default=True)
    starts_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="Who recorded it: the tenant, or staff acting on their behalf.",
    )
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-starts_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(expires_at__gt=F("starts_at")), name="delegation_expires_after_start"
            ),
            models.CheckConstraint(
                condition=~Q(grantor=F("delegate")), name="delegation_not_to_self"
            ),
        ]
        indexes = [models.Index(fields=["delegate", "expires_at"])]

    def __str__(self) -> str:
        return f"{self.grantor} → {self.delegate}"

    def is_active_at(self, moment) -> bool:
        """In force at `moment`: started, not expired, not revoked."""
        return self.revoked_at is None and self.starts_at <= moment < self.expires_at


class EstateEventKind(models.TextChoices):
    CREATED = "created", "Created"
    UPDATED = "updated", "Updated"
    DELETED = "deleted", "Deleted"
    LEASE_ENDED = "lease_ended", "Lease ended"
    MEMBER_ADDED = "member_added", "Household member added"
    MEMBER_REMOVED = "member_removed", "Household member removed"
    DELEGATION_GRANTED = "delegation_granted", "Delegation granted"
    DELEGATION_REVOKED = "delegation_revoked", "Delegation revoked"
    IMPORTED = "imported", "Register imported"
    CONSENT_RECORDED = "consent_recorded", "Telemetry consent recorded"


class EstateEvent(BaseModel):
    """Append-only history of changes to the register, leases and delegations."""

    organisation = models.ForeignKey(
        Organisation, on_delete=models.PROTECT, related_name="estate_events"
    )
    kind = models.CharField(max_length=30, choices=EstateEventKind.choices)
    subject_type = models.CharField(max_length=50)
    subject_id = models.UUIDField(null=True, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    on_behalf_of = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    reason = models.CharField(max_length=500, blank=True)
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["subject_type", "subject_id"])]

    def __str__(self) -> str:
        return f"{self.subject_type} {self.get_kind_display()}"


class TelemetryPurpose(models.TextChoices):
    FAULT_DETECTION = "fault_detection", "Fault detection (safety and repairs)"
    COMFORT_STATISTICS = "comfort_statistics", "Comfort and energy statistics"


class ConsentChannel(models.TextChoices):
    APP = "app", "In the app"
    PAPER = "paper", "Paper form"
    PHONE = "phone", "By phone, recorded by staff"
    IN_PERSON = "in_person", "In person, recorded by staff"


class TelemetryConsent(BaseModel):
    """One decision of a household on one purpose of its home's telemetry (append-only history).

    The newest row per (lease, purpose) is in force; older rows are the history.
    """

    organisation = models.ForeignKey(
        Organisation, on_delete=models.PROTECT, related_name="telemetry_consents"
    )
    lease = models.ForeignKey(Lease, on_delete=models.CASCADE, related_name="telemetry_consents")
    purpose = models.CharField(max_length=30, choices=TelemetryPurpose.choices)
    granted = models.BooleanField()
    channel = models.CharField(max_length=10, choices=ConsentChannel.choices)
    decided_at = models.DateTimeField(help_text="When the household decided.")
    person = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The household member who decided.",
    )
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Who entered it: the tenant, or staff on their behalf.",
    )
    reason = models.CharField(max_length=500, blank=True, help_text="Why staff recorded it.")

    class Meta:
        ordering = ["-decided_at", "-created_at"]
        indexes = [models.Index(fields=["lease", "purpose", "-decided_at"])]

    def __str__(self) -> str:
        return f"{self.lease_id} {self.purpose} {'granted' if self.granted else 'refused'}"
