"""Reads of the notifications app, each scoped to what the given person may see."""

from collections import Counter, defaultdict

from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from api.core.roles import Role
from api.estate.models import Delegation, Dwelling, HouseholdMember, Team, TeamMembership
from api.estate.selectors import (
    ORGANISATION_WIDE_ROLES,
    active_delegation_q,
    current_lease_q,
    residences_visible_to,
)

from . import texts
from .gsm import segment_info
from .models import (
    Broadcast,
    Delivery,
    DeliveryStatus,
    HouseholdReach,
    Notification,
    NotificationPreference,
    OnCallShift,
    PushDevice,
    TeamAlert,
)
from .services import _recipients, default_preference, ids_in, plan_channels

BROADCAST_READER_ROLES = frozenset({Role.CARETAKER, Role.AGENCY_STAFF, Role.MANAGER, Role.ADMIN})
BROADCAST_WRITER_ROLES = frozenset({Role.AGENCY_STAFF, Role.MANAGER, Role.ADMIN})
DOOR_KNOCKING_ROLES = frozenset({Role.CARETAKER, Role.AGENCY_STAFF, Role.MANAGER, Role.ADMIN})
ALERT_READER_ROLES = frozenset({Role.TECHNICIAN, Role.AGENCY_STAFF, Role.MANAGER, Role.ADMIN})
SCHEDULE_WRITER_ROLES = frozenset({Role.AGENCY_STAFF, Role.MANAGER, Role.ADMIN})
PREVIEW_LANGUAGES = ("fr", "fr-falc", "en", "ar")


def _active(user) -> bool:
    return bool(user and user.is_authenticated and user.is_active and user.organisation_id)


def inbox(user) -> QuerySet[Notification]:
    """The person's own notifications, newest first."""
    if not user or not user.is_authenticated:
        return Notification.objects.none()
    return Notification.objects.filter(recipient=user)


def preference_for(user) -> NotificationPreference:
    """The person's preferences (the defaults until they choose)."""
    return NotificationPreference.objects.filter(user=user).first() or default_preference(user)


def push_devices_of(user) -> QuerySet[PushDevice]:
    """The person's own registered apps and browsers."""
    if not user or not user.is_authenticated:
        return PushDevice.objects.none()
    return PushDevice.objects.filter(user=user)


def _residence_q(prefix: str, residences) -> Q:
    return (
        Q(**{f"{prefix}residence__in": residences})
        | Q(**{f"{prefix}building__residence__in": residences})
        | Q(**{f"{prefix}entrance__building__residence__in": residences})
    )


def broadcasts_visible_to(user) -> QuerySet[Broadcast]:
    """Broadcasts to places in a member of staff's scope."""
    if not _active(user) or user.role not in BROADCAST_READER_ROLES:
        return Broadcast.objects.none()
    residences = residences_visible_to(user).values("id")
    return Broadcast.objects.filter(
        _residence_q("", residences), organisation_id=user.organisation_id
    )


def door_knocking_visible_to(user) -> QuerySet[HouseholdReach]:
    """Households not reached by a critical notice, in the caretaker's or staff's scope."""
    if not _active(user) or user.role not in DOOR_KNOCKING_ROLES:
        return HouseholdReach.objects.none()
    residences = residences_visible_to(user).values("id")
    return HouseholdReach.objects.filter(
        organisation_id=user.organisation_id,
        dwelling__entrance__building__residence__in=residences,
        listed_at__isnull=False,
    )


def teams_visible_to(user) -> QuerySet[Team]:
    """Teams a person works in, or whose sector is in a member of staff's scope."""
    if not _active(user):
        return Team.objects.none()
    teams = Team.objects.filter(organisation_id=user.organisation_id)
    if user.role in ORGANISATION_WIDE_ROLES:
        return teams
    if user.role == Role.TECHNICIAN:
        return teams.filter(id__in=TeamMembership.objects.filter(user=user).values("team_id"))
    if user.role == Role.AGENCY_STAFF:
        residences = residences_visible_to(user).values("id")
        return teams.filter(sectors__residence__in=residences).distinct()
    return teams.none()


def alerts_visible_to(user) -> QuerySet[TeamAlert]:
    """Maintenance alerts of the teams the person may see."""
    if not _active(user) or user.role not in ALERT_READER_ROLES:
        return TeamAlert.objects.none()
    return TeamAlert.objects.filter(team__in=teams_visible_to(user).values("id"))


def on_call_shifts_visible_to(user) -> QuerySet[OnCallShift]:
    """On-call schedules of the teams the person may see."""
    if not _active(user) or user.role not in ALERT_READER_ROLES:
        return OnCallShift.objects.none()
    return OnCallShift.objects.filter(team__in=teams_visible_to(user).values("id"))


# --- Broadcast audience, preview and figures ------------------------------------------------


def broadcast_place_label(broadcast: Broadcast) -> str:
    """The place a broadcast is for, as tenants know it."""
    if broadcast.entrance_id:
        entrance = broadcast.entrance
        building = entrance.building
        return f"{building.residence.name}, bât. {building.reference}, {entrance}"
    if broadcast.building_id:
        building = broadcast.building
        return f"{building.residence.name}, bât. {building.reference}"
    return broadcast.residence.name


def place_dwellings(
    *, organisation_id, residence_id=None, building_id=None, entrance_id=None
) -> QuerySet[Dwelling]:
    """The dwellings of an entrance, a building or a residence."""
    dwellings = Dwelling.objects.filter(organisation_id=organisation_id)
    if entrance_id:
        return dwellings.filter(entrance_id=entrance_id)
    if building_id:
        return dwellings.filter(entrance__building_id=building_id)
    return dwellings.filter(entrance__building__residence_id=residence_id)


def households_of(dwellings: QuerySet[Dwelling], *, delegates: bool = False) -> dict:
    """Person id → dwelling id: every household member under a current lease, and with
    `delegates` the people the tenants delegated to (a relative of an elderly tenant)."""
    audience: dict = {}
    for person_id, dwelling_id in HouseholdMember.objects.filter(
        current_lease_q(timezone.localdate(), "lease__"),
        lease__dwelling_id__in=dwellings.values("id"),
        person__is_active=True,
    ).values_list("person_id", "lease__dwelling_id"):
        audience.setdefault(person_id, dwelling_id)
    if delegates and audience:
        for grantor_id, delegate_id in Delegation.objects.filter(
            active_delegation_q(timezone.now()),
            ids_in("grantor_id", list(audience)),
            delegate__is_active=True,
        ).values_list("grantor_id", "delegate_id"):
            audience.setdefault(delegate_id, audience[grantor_id])
    return audience


def broadcast_dwellings(broadcast: Broadcast) -> QuerySet[Dwelling]:
    """The dwellings a broadcast is for."""
    return place_dwellings(
        organisation_id=broadcast.organisation_id,
        residence_id=broadcast.residence_id,
        building_id=broadcast.building_id,
        entrance_id=broadcast.entrance_id,
    )


def broadcast_audience(broadcast: Broadcast) -> dict:
    """Person id → dwelling id of everyone a broadcast is for (delegates too when critical)."""
    return households_of(broadcast_dwellings(broadcast), delegates=broadcast.critical)


def broadcast_context(broadcast: Broadcast) -> dict:
    """What the broadcast's templates are filled with."""
    return {
        "kind": broadcast.kind,
        "place": broadcast_place_label(broadcast),
        "starts_at": broadcast.starts_at.isoformat() if broadcast.starts_at else "",
        "ends_at": broadcast.ends_at.isoformat() if broadcast.ends_at else "",
        "message": broadcast.message,
        "translations": broadcast.translations or {},
        "broadcast_id": str(broadcast.pk),
    }


def broadcast_preview(broadcast: Broadcast) -> dict:
    """What each language's recipients will read, SMS segments included, and how many
    people each channel will carry it to: shown to staff before they send."""
    audience = broadcast_audience(broadcast)
    people = _recipients(list(audience))
    device_kinds: dict = defaultdict(set)
    for user_id, kind in (
        PushDevice.objects.filter(ids_in("user_id", list(audience)), disabled_at__isnull=True)
        .values_list("user_id", "kind")
        .distinct()
    ):
        device_kinds[user_id].add(kind)
    languages = Counter(texts.base_language(person.language) for person, _ in people)
    channels: Counter = Counter()
    sms_by_language: Counter = Counter()
    now = timezone.now()
    for person, preference in people:
        for plan in plan_channels(
            user=person,
            preference=preference,
            device_kinds=device_kinds[person.pk],
            critical=broadcast.critical,
            now=now,
        ):
            key = f"{plan.channel}_if_unread" if plan.only_if_unread else plan.channel
            channels[key] += 1
            if plan.channel == "sms":
                sms_by_language[texts.base_language(person.language)] += 1
    event = f"broadcast.{broadcast.kind}"
    context = broadcast_context(broadcast)
    previews = []
    sms_segments = 0
    for language in PREVIEW_LANGUAGES:
        words = texts.render(event, context, language)
        info = segment_info(words.sms)
        sms_segments += info.segments * sms_by_language[language]
        previews.append(
            {
                "language": language,
                "direction": "rtl" if words.rtl else "ltr",
                "title": words.title,
                "body": words.body,
                "sms": words.sms,
                "sms_segments": info.as_dict(),
                "recipients": languages[language],
                "sms_recipients": sms_by_language[language],
            }
        )
    return {
        "recipients": len(people),
        "households": len(set(audience.values())),
        "channels": dict(channels),
        "sms_segments_total": sms_segments,
        "languages": previews,
    }


def broadcast_stats(broadcast: Broadcast) -> dict:
    """Where the broadcast stands: deliveries per channel and status, households reached."""
    by_channel: dict = defaultdict(dict)
    rows = (
        Delivery.objects.filter(notification__broadcast=broadcast)
        .values_list("channel", "status")
        .annotate(n=Count("id"))
    )
    for channel, status, count in rows:
        by_channel[channel][status] = count
    notifications = Notification.objects.filter(broadcast=broadcast).aggregate(
        total=Count("id"), read=Count("id", filter=Q(read_at__isnull=False))
    )
    households = HouseholdReach.objects.filter(broadcast=broadcast).aggregate(
        total=Count("id"),
        reached=Count("id", filter=Q(reached_at__isnull=False)),
        listed=Count("id", filter=Q(listed_at__isnull=False)),
        visited=Count("id", filter=Q(visited_at__isnull=False)),
    )
    return {
        "notifications": notifications["total"],
        "read": notifications["read"],
        "channels": {
            channel: {
                status: by_channel[channel].get(status, 0) for status in DeliveryStatus.values
            }
            for channel in sorted(by_channel)
        },
        "households": households,
    }
