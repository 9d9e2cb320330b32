"""Factories for the notifications app: devices, notifications, on-call shifts, broadcasts."""

import datetime as dt
import uuid

import factory
from django.utils import timezone
from factory.django import DjangoModelFactory

from api.notifications.models import (
    Broadcast,
    HouseholdReach,
    Notification,
    NotificationPreference,
    OnCallShift,
    PushDevice,
    TeamAlert,
)
from tests.factories.accounts import UserFactory


class PushDeviceFactory(DjangoModelFactory):
    class Meta:
        model = PushDevice

    user = factory.SubFactory(UserFactory)
    kind = "fcm"
    token = factory.LazyFunction(lambda: f"fcm-token-{uuid.uuid4().hex}")
    token_hash = factory.LazyAttribute(lambda o: PushDevice.hash_token(o.token))
    platform = "android"


class WebPushDeviceFactory(PushDeviceFactory):
    kind = "webpush"
    token = factory.LazyFunction(lambda: f"https://push.example.net/send/{uuid.uuid4().hex}")
    p256dh = (
        "BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM"
    )
    auth = "tBHItJI5svbpez7KI4CCXg"
    platform = "web"


class NotificationPreferenceFactory(DjangoModelFactory):
    class Meta:
        model = NotificationPreference

    user = factory.SubFactory(UserFactory)


class NotificationFactory(DjangoModelFactory):
    class Meta:
        model = Notification

    recipient = factory.SubFactory(UserFactory)
    organisation = factory.SelfAttribute("recipient.organisation")
    event = "generic"
    language = "fr"
    title = "Nouveau message"
    body = "Vous avez un nouveau message."
    deep_link = "palier://notifications"


class OnCallShiftFactory(DjangoModelFactory):
    class Meta:
        model = OnCallShift
        skip_postgeneration_save = True

    team = factory.SubFactory("tests.factories.estate.TeamFactory")
    user = factory.SubFactory(
        UserFactory, role="technician", organisation=factory.SelfAttribute("..team.organisation")
    )
    starts_at = factory.LazyFunction(lambda: timezone.now() - dt.timedelta(hours=1))
    ends_at = factory.LazyFunction(lambda: timezone.now() + dt.timedelta(hours=12))
    position = 0

    @factory.post_generation
    def membership(obj, create, extracted, **kwargs):
        from api.estate.models import TeamMembership

        if create:
            TeamMembership.objects.get_or_create(team=obj.team, user=obj.user)


class BroadcastFactory(DjangoModelFactory):
    class Meta:
        model = Broadcast

    building = factory.SubFactory("tests.factories.estate.BuildingFactory")
    organisation = factory.LazyAttribute(
        lambda o: (o.building or o.entrance or o.residence).organisation
    )
    residence = None
    entrance = None
    kind = "water_cut"
    critical = True
    message = "Intervention sur la colonne d'eau."
    starts_at = factory.LazyFunction(lambda: timezone.now() + dt.timedelta(days=1))
    ends_at = factory.LazyFunction(lambda: timezone.now() + dt.timedelta(days=1, hours=4))
    created_by = factory.SubFactory(
        UserFactory, role="agency_staff", organisation=factory.SelfAttribute("..organisation")
    )


class HouseholdReachFactory(DjangoModelFactory):
    class Meta:
        model = HouseholdReach

    dwelling = factory.SubFactory("tests.factories.estate.DwellingFactory")
    organisation = factory.SelfAttribute("dwelling.organisation")
    batch = factory.LazyFunction(uuid.uuid4)
    event = "broadcast.water_cut"
    title = "Coupure d'eau"
    list_after = factory.LazyFunction(lambda: timezone.now() - dt.timedelta(minutes=1))
    listed_at = factory.LazyFunction(timezone.now)


class TeamAlertFactory(DjangoModelFactory):
    class Meta:
        model = TeamAlert

    team = factory.SubFactory("tests.factories.estate.TeamFactory")
    organisation = factory.SelfAttribute("team.organisation")
    event = "fault.alert"
    context = factory.LazyFunction(
        lambda: {"rule": "Pression basse", "place": "Bât. A", "severity": "major"}
    )
    chain = factory.LazyFunction(list)


def team_at(place):
    """The team whose sector covers the place's residence (a new one if there is none)."""
    from api.estate.models import Team
    from tests.factories.estate import TeamFactory, TeamSectorFactory

    team = Team.objects.filter(sectors__residence=place.residence).first()
    if team is None:
        team = TeamFactory(organisation=place.organisation)
        TeamSectorFactory(team=team, residence=place.residence)
    return team


def seed_fuzz_notifications(organisation, manager) -> None:
    """Data for the notifications, news and rent endpoints in the fuzzer's organisation."""
    from django.core.files.base import ContentFile

    from api.news.models import PostAttachment
    from api.notifications.services import notify
    from tests.factories.documents import (
        LandlordProfileFactory,
        RentLedgerLineFactory,
        RentReceiptFactory,
    )
    from tests.factories.estate import place_factory
    from tests.factories.news import PostFactory

    place = place_factory(organisation=organisation)
    notify(
        recipients=[manager],
        event="incident.started",
        context={"summary": "Chauffage", "place": "Bât. A"},
        critical=True,
    )
    PushDeviceFactory(user=manager)
    BroadcastFactory(building=place.building, created_by=manager)
    HouseholdReachFactory(dwelling=place.dwelling)
    TeamAlertFactory(team=team_at(place))
    OnCallShiftFactory(team=team_at(place))
    post = PostFactory(
        building=place.building, kind="access_request", requires_acknowledgement=True
    )
    attachment = PostAttachment(post=post, name="plan.pdf", content_type="application/pdf", size=9)
    attachment.file.save("plan.pdf", ContentFile(b"%PDF-1.7\n"), save=True)
    LandlordProfileFactory(organisation=organisation)
    RentReceiptFactory(line=RentLedgerLineFactory(lease=place.lease))
