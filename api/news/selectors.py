"""Reads of residence news, each scoped to what the given person may see."""

from django.db.models import BooleanField, Case, Exists, OuterRef, Q, QuerySet, Value, When
from django.utils import timezone

from api.core.roles import Role
from api.estate.models import Dwelling, HouseholdMember
from api.estate.selectors import (
    buildings_visible_to,
    current_lease_q,
    dwellings_visible_to,
    entrances_visible_to,
    residences_visible_to,
)

from .models import Post, PostAcknowledgement

POST_WRITER_ROLES = frozenset({Role.CARETAKER, Role.AGENCY_STAFF, Role.MANAGER, Role.ADMIN})
ACKNOWLEDGER_ROLES = frozenset({Role.TENANT})


def _active(user) -> bool:
    return bool(user and user.is_authenticated and user.is_active and user.organisation_id)


def posts_visible_to(user, *, now=None) -> QuerySet[Post]:
    """Posts for the person's places: a tenant's residence, building and entrance (published
    ones only); the residences of staff's scope (scheduled ones too for those who write)."""
    if not _active(user):
        return Post.objects.none()
    now = now or timezone.now()
    posts = Post.objects.filter(organisation_id=user.organisation_id)
    if user.role == Role.TENANT:
        place = (
            Q(residence__in=residences_visible_to(user).values("id"))
            | Q(building__in=buildings_visible_to(user).values("id"))
            | Q(entrance__in=entrances_visible_to(user).values("id"))
        )
    else:
        residences = residences_visible_to(user).values("id")
        place = (
            Q(residence__in=residences)
            | Q(building__residence__in=residences)
            | Q(entrance__building__residence__in=residences)
        )
    posts = posts.filter(place)
    if user.role not in POST_WRITER_ROLES:
        posts = posts.filter(publish_at__lte=now)
    return posts


def feed(user, *, now=None) -> QuerySet[Post]:
    """The person's feed: current pinned posts first, then newest; with, for a household,
    whether it has acknowledged each post."""
    now = now or timezone.now()
    own = dwellings_visible_to(user).values("id")
    return (
        posts_visible_to(user, now=now)
        .annotate(
            pinned_now=Case(
                When(
                    Q(pinned=True) & (Q(ends_at__isnull=True) | Q(ends_at__gt=now)),
                    then=Value(True),
                ),
                default=Value(False),
                output_field=BooleanField(),
            ),
            acknowledged=Exists(
                PostAcknowledgement.objects.filter(post=OuterRef("pk"), dwelling_id__in=own)
            ),
        )
        .order_by("-pinned_now", "-publish_at")
    )


def post_dwellings(post: Post) -> QuerySet[Dwelling]:
    """The dwellings of a post's place."""
    from api.notifications.selectors import place_dwellings

    return place_dwellings(
        organisation_id=post.organisation_id,
        residence_id=post.residence_id,
        building_id=post.building_id,
        entrance_id=post.entrance_id,
    )


def post_acknowledgements(post: Post) -> dict:
    """For staff: which occupied households of the place acknowledged the post, which not."""
    occupied = (
        post_dwellings(post)
        .filter(
            id__in=HouseholdMember.objects.filter(
                current_lease_q(timezone.localdate(), "lease__")
            ).values("lease__dwelling_id")
        )
        .select_related("entrance__building")
        .order_by("entrance__building__reference", "entrance__reference", "floor", "door")
    )
    acks = {
        a.dwelling_id: a
        for a in PostAcknowledgement.objects.filter(post=post).select_related("person")
    }
    rows = []
    for dwelling in occupied:
        ack = acks.get(dwelling.id)
        rows.append(
            {
                "dwelling": dwelling.id,
                "reference": dwelling.reference,
                "building": dwelling.entrance.building.reference,
                "entrance": str(dwelling.entrance),
                "floor": dwelling.floor,
                "door": dwelling.door,
                "acknowledged_at": ack.created_at if ack else None,
                "acknowledged_by": ack.person.full_name if ack else "",
            }
        )
    done = sum(1 for row in rows if row["acknowledged_at"])
    return {
        "households": len(rows),
        "acknowledged": done,
        "missing": len(rows) - done,
        "rows": rows,
    }


def post_place_label(post: Post) -> str:
    """The place of a post as tenants know it."""
    if post.entrance_id:
        building = post.entrance.building
        return f"{building.residence.name}, bât. {building.reference}, {post.entrance}"
    if post.building_id:
        return f"{post.building.residence.name}, bât. {post.building.reference}"
    return post.residence.name
