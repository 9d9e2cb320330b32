"""Factories for requests, incidents, appointments, photos and Open311 partners."""

import datetime as dt
import io
import uuid

import factory
from django.core.files.base import ContentFile
from django.utils import timezone
from factory.django import DjangoModelFactory
from PIL import Image

from api.tickets.category_tree import seed_standard_categories
from api.tickets.models import (
    Appointment,
    Category,
    CategoryQuestion,
    CategoryRoute,
    Incident,
    PlaceKind,
    Ticket,
    TicketPhoto,
)
from tests.factories.accounts import OrganisationFactory


def ensure_standard_tree() -> None:
    """Seed the standard tree if it is missing (transactional tests flush migration data)."""
    if not Category.objects.filter(organisation__isnull=True).exists():
        seed_standard_categories(Category, CategoryQuestion)


def standard_category(code: str = "plomberie-fuite") -> Category:
    """A category of the standard tree (seeded by the tickets migrations)."""
    ensure_standard_tree()
    return Category.objects.get(organisation__isnull=True, code=code)


class CategoryFactory(DjangoModelFactory):
    """An organisation's own category, for dwellings and common areas, with working-hour targets."""

    class Meta:
        model = Category

    organisation = factory.SubFactory(OrganisationFactory)
    code = factory.Sequence(lambda n: f"cat-{n}")
    name = factory.Sequence(lambda n: f"Catégorie {n}")
    labels = factory.LazyAttribute(lambda o: {"en": f"Category {o.code}"})
    in_dwelling = True
    in_common_areas = True
    acknowledge_within = dt.timedelta(hours=8)
    resolve_within = dt.timedelta(hours=40)


class CategoryRouteFactory(DjangoModelFactory):
    class Meta:
        model = CategoryRoute

    organisation = factory.SelfAttribute("category.organisation")
    category = factory.SubFactory(CategoryFactory)
    residence = None


class TicketFactory(DjangoModelFactory):
    """A request about a dwelling (pass `dwelling`), written straight to the table."""

    class Meta:
        model = Ticket

    dwelling = factory.SubFactory("tests.factories.estate.DwellingFactory")
    organisation = factory.SelfAttribute("dwelling.organisation")
    entrance = factory.SelfAttribute("dwelling.entrance")
    building = factory.SelfAttribute("dwelling.entrance.building")
    residence = factory.SelfAttribute("dwelling.entrance.building.residence")
    place_kind = PlaceKind.DWELLING
    reference = factory.Sequence(lambda n: f"2026-{n:06d}")
    category = factory.LazyFunction(standard_category)
    priority = "normal"
    source = "tenant_app"
    description = "Fuite sous l'évier de la cuisine."
    resolve_due_at = factory.LazyFunction(lambda: timezone.now() + dt.timedelta(days=3))
    acknowledge_due_at = factory.LazyFunction(lambda: timezone.now() + dt.timedelta(hours=8))


def common_area_ticket(area, **kwargs) -> Ticket:
    """A request about a common area, written straight to the table."""
    entrance = area.entrance
    building = entrance.building if entrance else area.building
    residence = building.residence if building else area.residence
    return TicketFactory(
        dwelling=None,
        common_area=area,
        entrance=entrance,
        building=building,
        residence=residence,
        organisation=area.organisation,
        place_kind=PlaceKind.COMMON_AREA,
        **kwargs,
    )


class IncidentFactory(DjangoModelFactory):
    class Meta:
        model = Incident

    building = factory.SubFactory("tests.factories.estate.BuildingFactory")
    residence = factory.SelfAttribute("building.residence")
    organisation = factory.SelfAttribute("building.organisation")
    category = factory.LazyFunction(lambda: standard_category("chauffage"))
    public_message = "Plus de chauffage dans le bâtiment : les techniciens sont sur place."
    started_at = factory.LazyFunction(timezone.now)


class AppointmentFactory(DjangoModelFactory):
    class Meta:
        model = Appointment

    ticket = factory.SubFactory(TicketFactory)
    proposal = factory.LazyFunction(uuid.uuid4)
    starts_at = factory.LazyFunction(lambda: timezone.now() + dt.timedelta(days=2))
    ends_at = factory.LazyAttribute(lambda o: o.starts_at + dt.timedelta(hours=2))


def image_bytes(fmt: str = "JPEG", size=(64, 48), exif: bytes | None = None) -> bytes:
    """A small picture in the given format (optionally with raw EXIF)."""
    out = io.BytesIO()
    image = Image.new("RGB", size, (200, 80, 40))
    kwargs = {"exif": exif} if exif is not None else {}
    image.save(out, format=fmt, **kwargs)
    return out.getvalue()


class TicketPhotoFactory(DjangoModelFactory):
    class Meta:
        model = TicketPhoto

    ticket = factory.SubFactory(TicketFactory)
    image = factory.LazyFunction(lambda: ContentFile(image_bytes(), name="photo.jpg"))
    thumbnail = factory.LazyFunction(lambda: ContentFile(image_bytes(size=(32, 24)), name="t.jpg"))
    content_type = "image/jpeg"
    width = 64
    height = 48
    size = 1000


def seed_fuzz_tickets(organisation, manager) -> None:
    """Requests, a photo, visits and an incident for the API fuzzer's organisation."""
    from tests.factories.estate import place_factory

    place = place_factory(organisation=organisation)
    category = CategoryFactory(organisation=organisation, code="fuzz-category")
    ticket = TicketFactory(dwelling=place.dwelling, reporter=place.tenant, category=category)
    TicketPhotoFactory(ticket=ticket)
    AppointmentFactory(ticket=ticket)
    IncidentFactory(building=place.building)
    area = place.entrance.common_areas.create(organisation=organisation, kind="hall")
    common_area_ticket(area, category=standard_category("proprete-hall"))
