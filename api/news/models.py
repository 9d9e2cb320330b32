"""Posts to the households of a residence, a building or an entrance."""

from django.conf import settings
from django.db import models
from django.db.models import Q

from api.core.models import BaseModel


class PostKind(models.TextChoices):
    """What a post is; cuts and emergencies are critical notices, access requests need a
    reply from every household."""

    NEWS = "news", "News"
    WORKS = "works", "Works and renovation"
    WATER_CUT = "water_cut", "Planned water cut"
    POWER_CUT = "power_cut", "Planned power cut"
    ACCESS_REQUEST = "access_request", "Access to the dwellings"
    EMERGENCY = "emergency", "Emergency"


CRITICAL_KINDS = frozenset({PostKind.WATER_CUT, PostKind.POWER_CUT, PostKind.EMERGENCY})


class Post(BaseModel):
    """A post shown in the feed of every household of its place from `publish_at`."""

    organisation = models.ForeignKey(
        "estate.Organisation", on_delete=models.PROTECT, related_name="+"
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
    kind = models.CharField(max_length=20, choices=PostKind.choices, default=PostKind.NEWS)
    title = models.CharField(max_length=200)
    body = models.TextField(max_length=10000, blank=True)
    project = models.CharField(
        max_length=200, blank=True, help_text="Renovation blog: the works the post is part of."
    )
    publish_at = models.DateTimeField(db_index=True)
    pinned = models.BooleanField(default=False)
    starts_at = models.DateTimeField(null=True, blank=True)
    ends_at = models.DateTimeField(null=True, blank=True)
    requires_acknowledgement = models.BooleanField(default=False)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    notified_at = models.DateTimeField(
        null=True, blank=True, help_text="When households were told."
    )

    class Meta:
        ordering = ["-pinned", "-publish_at"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(residence__isnull=False, building__isnull=True, entrance__isnull=True)
                    | Q(residence__isnull=True, building__isnull=False, entrance__isnull=True)
                    | Q(residence__isnull=True, building__isnull=True, entrance__isnull=False)
                ),
                name="post_has_one_place",
            )
        ]
        indexes = [
            models.Index(
                fields=["publish_at"], condition=Q(notified_at__isnull=True), name="post_to_notify"
            )
        ]

    def __str__(self) -> str:
        return self.title


def attachment_path(instance, filename: str) -> str:
    return f"news/{instance.post_id}/{instance.id}/{filename}"


class PostAttachment(BaseModel):
    """A file attached to a post: a plan, a notice, a photo of the works."""

    post = models.ForeignKey(Post, on_delete=models.CASCADE, related_name="attachments")
    file = models.FileField(upload_to=attachment_path, max_length=300)
    name = models.CharField(max_length=200)
    content_type = models.CharField(max_length=100)
    size = models.PositiveIntegerField()

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return self.name


class PostAcknowledgement(BaseModel):
    """A household said it has seen a post that needs an answer (an access request)."""

    post = models.ForeignKey(Post, on_delete=models.CASCADE, related_name="acknowledgements")
    dwelling = models.ForeignKey("estate.Dwelling", on_delete=models.CASCADE, related_name="+")
    person = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    on_behalf_of = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["created_at"]
        constraints = [
            models.UniqueConstraint(fields=["post", "dwelling"], name="post_ack_one_per_household")
        ]

    def __str__(self) -> str:
        return f"{self.post_id} / {self.dwelling_id}"
