"""Writes of residence news: posts, their attachments, households' acknowledgements, and the
notifications that tell households a post is out."""

from datetime import datetime

from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils import timezone

from api.core.exceptions import ServiceError
from api.estate.selectors import (
    buildings_visible_to,
    current_household_dwellings,
    entrances_visible_to,
    residences_visible_to,
)
from api.notifications.models import Channel

from .models import CRITICAL_KINDS, Post, PostAcknowledgement, PostAttachment, PostKind
from .selectors import post_dwellings, post_place_label

MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024
MAX_ATTACHMENTS = 10
# Content types recognised by their first bytes, never by the name or the client's claim.
SIGNATURES = (
    (b"%PDF-", "application/pdf"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
)
EVENTS = {
    PostKind.EMERGENCY: "news.emergency",
    PostKind.WATER_CUT: "broadcast.water_cut",
    PostKind.POWER_CUT: "broadcast.power_cut",
    PostKind.ACCESS_REQUEST: "news.access_request",
}
# Ordinary news reaches the app, browsers and e-mail; what needs reading by everyone
# (cuts, emergencies, access requests) goes by SMS too.
NEWS_CHANNELS = frozenset({Channel.PUSH, Channel.WEBPUSH, Channel.EMAIL})
PLACE_FIELDS = ("residence", "building", "entrance")


def _check_place(*, actor, residence, building, entrance) -> None:
    places = [p for p in (residence, building, entrance) if p is not None]
    if len(places) != 1:
        raise ServiceError(
            "Choose exactly one of a residence, a building or an entrance.", field="residence"
        )
    for value, selector, field in (
        (residence, residences_visible_to, "residence"),
        (building, buildings_visible_to, "building"),
        (entrance, entrances_visible_to, "entrance"),
    ):
        if value is not None and not selector(actor).filter(pk=value.pk).exists():
            raise ServiceError(f"No such {field} in your scope.", field=field)


def _validate(post: Post) -> None:
    if not post.title.strip():
        raise ServiceError("A title is needed.", field="title")
    if post.starts_at and post.ends_at and post.ends_at <= post.starts_at:
        raise ServiceError("The end must come after the start.", field="ends_at")


def _publish(post: Post, *, now: datetime) -> None:
    """Tell every household of the place (and, for critical posts, their delegates)."""
    from api.notifications.selectors import households_of
    from api.notifications.services import notify_many

    critical = post.kind in CRITICAL_KINDS
    audience = households_of(post_dwellings(post), delegates=critical)
    if audience:
        notify_many(
            recipients=list(audience),
            event=EVENTS.get(post.kind, "news.published"),
            context={
                "title": post.title,
                "message": post.title,
                "place": post_place_label(post),
                "post_id": str(post.pk),
                "starts_at": post.starts_at.isoformat() if post.starts_at else "",
                "ends_at": post.ends_at.isoformat() if post.ends_at else "",
            },
            critical=critical,
            deep_link=f"news/{post.pk}",
            dedupe_key=f"news:{post.pk}",
            actor=post.author,
            dwellings=audience,
            channels=None if critical or post.requires_acknowledgement else NEWS_CHANNELS,
            now=now,
        )
    post.notified_at = now
    post.save(update_fields=["notified_at", "updated_at"])


@transaction.atomic
def post_create(
    *,
    actor,
    title: str,
    kind: str = PostKind.NEWS,
    body: str = "",
    residence=None,
    building=None,
    entrance=None,
    project: str = "",
    publish_at: datetime | None = None,
    pinned: bool = False,
    starts_at: datetime | None = None,
    ends_at: datetime | None = None,
    requires_acknowledgement: bool | None = None,
) -> Post:
    """Write a post; published (and households told) now, or at `publish_at`."""
    _check_place(actor=actor, residence=residence, building=building, entrance=entrance)
    now = timezone.now()
    post = Post(
        organisation_id=actor.organisation_id,
        residence=residence,
        building=building,
        entrance=entrance,
        kind=kind,
        title=title.strip(),
        body=body.strip(),
        project=project.strip(),
        publish_at=publish_at or now,
        # An emergency stays on top of the feed until it ends or is unpinned.
        pinned=pinned or kind == PostKind.EMERGENCY,
        starts_at=starts_at,
        ends_at=ends_at,
        requires_acknowledgement=(
            requires_acknowledgement
            if requires_acknowledgement is not None
            else kind == PostKind.ACCESS_REQUEST
        ),
        author=actor,
    )
    _validate(post)
    post.save()
    if post.publish_at <= now:
        _publish(post, now=now)
    return post


@transaction.atomic
def post_update(*, actor, post: Post, data: dict) -> Post:
    """Change a post; households already told are not told again."""
    post = Post.objects.select_for_update().get(pk=post.pk)
    if set(PLACE_FIELDS) & set(data):
        if post.notified_at is not None:
            raise ServiceError("A published post cannot move to another place.", field="residence")
        places = {field: data.get(field) for field in PLACE_FIELDS}
        _check_place(actor=actor, **places)
        post.residence, post.building, post.entrance = (
            places["residence"],
            places["building"],
            places["entrance"],
        )
    for name in (
        "kind",
        "title",
        "body",
        "project",
        "publish_at",
        "pinned",
        "starts_at",
        "ends_at",
        "requires_acknowledgement",
    ):
        if name in data and not (name == "publish_at" and data[name] is None):
            setattr(post, name, data[name])
    post.title, post.body, post.project = (
        post.title.strip(),
        post.body.strip(),
        post.project.strip(),
    )
    _validate(post)
    post.save()
    now = timezone.now()
    if post.notified_at is None and post.publish_at <= now:
        _publish(post, now=now)
    return post


@transaction.atomic
def post_delete(*, actor, post: Post) -> None:
    """Remove a post and its files."""
    for attachment in post.attachments.all():
        attachment.file.delete(save=False)
    post.delete()


def sniff_content_type(head: bytes) -> str | None:
    """The file's type from its first bytes (PDF, JPEG, PNG, WebP), or None."""
    for signature, content_type in SIGNATURES:
        if head.startswith(signature):
            return content_type
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


@transaction.atomic
def post_attachment_add(*, actor, post: Post, file: UploadedFile) -> PostAttachment:
    """Attach a PDF or an image (10 MB at most) to a post."""
    if file.size > MAX_ATTACHMENT_BYTES:
        raise ServiceError("A file is at most 10 MB.", field="file")
    if post.attachments.count() >= MAX_ATTACHMENTS:
        raise ServiceError(f"A post has at most {MAX_ATTACHMENTS} files.", field="file")
    file.seek(0)
    content_type = sniff_content_type(file.read(16))
    file.seek(0)
    if content_type is None:
        raise ServiceError("Attach a PDF, JPEG, PNG or WebP file.", field="file")
    name = (file.name or "file").replace("/", "_").replace("\\", "_")[-200:]
    attachment = PostAttachment(post=post, name=name, content_type=content_type, size=file.size)
    attachment.file.save(name, file, save=False)
    attachment.save()
    return attachment


@transaction.atomic
def post_attachment_delete(*, actor, attachment: PostAttachment) -> None:
    """Remove a file from a post."""
    attachment.file.delete(save=False)
    attachment.delete()


@transaction.atomic
def post_acknowledge(*, actor, post: Post, on_behalf_of=None) -> PostAcknowledgement:
    """A household says it has seen the post (once per household; a repeat changes nothing)."""
    subject = on_behalf_of or actor
    dwelling = (
        current_household_dwellings(subject)
        .filter(id__in=post_dwellings(post).values("id"))
        .first()
    )
    if dwelling is None:
        raise ServiceError("This post is not for your home.", code="not_concerned")
    acknowledgement, _ = PostAcknowledgement.objects.get_or_create(
        post=post,
        dwelling=dwelling,
        defaults={"person": actor, "on_behalf_of": on_behalf_of},
    )
    return acknowledgement


def posts_publish_due(*, now: datetime | None = None) -> int:
    """Publish the scheduled posts whose time has come."""
    now = now or timezone.now()
    published = 0
    with transaction.atomic():
        for post in Post.objects.select_for_update(skip_locked=True).filter(
            notified_at__isnull=True, publish_at__lte=now
        )[:100]:
            _publish(post, now=now)
            published += 1
    return published
