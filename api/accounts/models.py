"""People who use Palier: tenants log in by phone, staff by e-mail."""

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django_otp.models import ThrottlingMixin
from phonenumber_field.modelfields import PhoneNumberField

from api.accounts.otp import OTP_MAX_ATTEMPTS
from api.core.models import BaseModel
from api.core.roles import Role


class UserManager(BaseUserManager):
    """Creates people; an e-mail is optional except for staff who log in with a password."""

    use_in_migrations = True

    def create_user(self, email=None, password=None, **fields):
        email = self.normalize_email(email) or None
        user = self.model(email=email, **fields)
        if password:
            user.set_password(password)
        else:
            user.set_unusable_password()
        user.save(using=self._db)
        return user

    def create_superuser(self, email, password, **fields):
        fields.update(is_staff=True, is_superuser=True, role=Role.ADMIN)
        return self.create_user(email=email, password=password, **fields)

    def get_by_natural_key(self, username):
        return self.get(email__iexact=username)


class User(BaseModel, AbstractBaseUser, PermissionsMixin):
    """A person: a tenant (phone, no e-mail needed) or a member of staff or a contractor."""

    organisation = models.ForeignKey(
        "estate.Organisation",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="people",
    )
    email = models.EmailField(null=True, blank=True, unique=True)
    phone = PhoneNumberField(null=True, blank=True, unique=True)
    first_name = models.CharField(max_length=150, blank=True)
    last_name = models.CharField(max_length=150, blank=True)
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.TENANT)
    language = models.CharField(
        max_length=10, choices=settings.LANGUAGES, default=settings.LANGUAGE_CODE
    )
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False, help_text="May log in to the admin site.")
    date_joined = models.DateTimeField(auto_now_add=True)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        ordering = ["last_name", "first_name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(email__isnull=False) | Q(phone__isnull=False),
                name="user_has_email_or_phone",
            )
        ]

    def __str__(self) -> str:
        name = f"{self.first_name} {self.last_name}".strip()
        return name or self.email or str(self.phone) or str(self.id)

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()

    def get_full_name(self) -> str:
        """What the admin shows; staff may have no e-mail, tenants no name yet."""
        return self.full_name or str(self)

    def get_short_name(self) -> str:
        return self.first_name or str(self)


class VerifyAllowedMixin:
    """The end of django-otp's verify_is_allowed() chain for models that are not Devices."""

    def verify_is_allowed(self):
        return True, None


class LoginCode(ThrottlingMixin, VerifyAllowedMixin, BaseModel):
    """A one-time login code sent by SMS, kept only as a keyed hash.

    One row per code request, for known and unknown numbers alike (unknown numbers get a row
    with no person and a code nobody receives), so that limits and answers cannot tell them
    apart. The newest row of a number is its only usable code. django-otp's ThrottlingMixin
    adds an exponential pause after each wrong try; at most OTP_MAX_ATTEMPTS tries a code.
    """

    phone_digest = models.CharField(max_length=64, help_text="Keyed hash of the E.164 number.")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="login_codes",
    )
    code_hash = models.CharField(max_length=64)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["phone_digest", "-created_at"], name="logincode_phone_recent")
        ]

    def __str__(self) -> str:
        return f"login code {self.id}"

    def get_throttle_factor(self) -> float:
        return settings.OTP_THROTTLE_FACTOR

    def verify_is_allowed(self):
        """Refuse once the code has had its tries, then apply django-otp's back-off."""
        if self.throttling_failure_count >= OTP_MAX_ATTEMPTS:
            return False, {"reason": "attempts_exhausted"}
        return super().verify_is_allowed()


class PersonalDataAccessQuerySet(models.QuerySet):
    """Rows of the access log can be added and read, never changed or removed."""

    def update(self, **kwargs):
        raise AppendOnlyError("The personal data access log is append-only.")

    def delete(self):
        raise AppendOnlyError("The personal data access log is append-only.")


class AppendOnlyError(Exception):
    """An attempt to change or remove a row of an append-only log."""


class PersonalDataAccess(models.Model):
    """One read of a person's personal data by a member of staff: who, whose, what, when.

    Append-only: save() refuses updates, delete() refuses, and on PostgreSQL a trigger refuses
    UPDATE and DELETE below the ORM too (only the retention purge may delete).
    """

    viewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="personal_data_reads"
    )
    viewer_role = models.CharField(max_length=20, choices=Role.choices)
    subject = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="personal_data_read_by"
    )
    context = models.CharField(
        max_length=200, help_text="What was read, where: e.g. people.detail, lease.list."
    )
    at = models.DateTimeField(default=timezone.now, db_index=True)

    objects = PersonalDataAccessQuerySet.as_manager()

    class Meta:
        ordering = ["-at"]
        verbose_name = "personal data access"
        verbose_name_plural = "personal data accesses"
        indexes = [models.Index(fields=["subject", "-at"], name="pda_subject_recent")]

    def __str__(self) -> str:
        return (
            f"{self.viewer_id} read {self.subject_id} ({self.context}) at {self.at:%Y-%m-%d %H:%M}"
        )

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AppendOnlyError("The personal data access log is append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("The personal data access log is append-only.")


class VulnerabilityKind(models.TextChoices):
    ELDERLY = "elderly", "Elderly or frail person"
    REDUCED_MOBILITY = "reduced_mobility", "Reduced mobility (cannot use the stairs)"
    DISABILITY = "disability", "Disability"
    POWERED_MEDICAL_EQUIPMENT = "powered_medical_equipment", "Medical equipment needing power"
    COLD_SENSITIVE = "cold_sensitive", "Health at risk in the cold"
    INFANT = "infant", "Infant in the household"


class ConsentChannel(models.TextChoices):
    APP = "app", "In the app, by the person"
    PAPER = "paper", "Signed paper form"
    PHONE = "phone", "By phone, with a member of staff"
    IN_PERSON = "in_person", "In person, with a member of staff"


class Vulnerability(BaseModel):
    """A vulnerability a person declared with their consent, so outages at home come first.

    Kept apart from any free text, only while the consent stands (withdrawing it deletes the
    row), and shown only to staff in charge of the person's home (never to contractors or
    other tenants); every staff read is logged. No details: the kind is enough to act on.
    """

    person = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="vulnerabilities"
    )
    kind = models.CharField(max_length=30, choices=VulnerabilityKind.choices)
    consent_at = models.DateTimeField(help_text="When the person agreed to it being kept.")
    consent_channel = models.CharField(max_length=20, choices=ConsentChannel.choices)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="The member of staff who recorded it, or the person themselves.",
    )

    class Meta:
        ordering = ["person", "kind"]
        verbose_name_plural = "vulnerabilities"
        constraints = [
            models.UniqueConstraint(fields=["person", "kind"], name="vulnerability_unique_kind")
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.person_id})"
