"""People who use Palier: tenants log in by phone, staff by e-mail."""

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.db import models
from django.db.models import Q
from phonenumber_field.modelfields import PhoneNumberField

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
