"""Demo requests for `palier run`: routing, a few requests at every stage, an incident.

Idempotent: requests carry fixed ids (a replay returns the existing one) and each is moved
along only when it is first created.
"""

import datetime as dt
import uuid

from django.utils import timezone

from api.accounts.models import User
from api.estate import selectors as estate
from api.estate.models import CommonArea, Contractor, Team

from . import services
from .category_tree import seed_standard_categories
from .models import Category, CategoryQuestion, CategoryRoute, Incident, IncidentStatus, Ticket

NAMESPACE = uuid.UUID("0b3c4b8e-5f4c-4a57-9a43-5c1d2b0f7d11")


def _id(name: str) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, name)


def _category(code: str) -> Category:
    return Category.objects.get(organisation__isnull=True, code=code)


def _routes(organisation) -> None:
    team = Team.objects.filter(organisation=organisation, name="Maintenance Nord").first()
    cleaner = Contractor.objects.filter(organisation=organisation, name="Net'Propre").first()
    for code, handler in (
        ("chauffage", {"team": team}),
        ("plomberie", {"team": team}),
        ("ventilation", {"team": team}),
        ("proprete", {"contractor": cleaner}),
    ):
        if next(iter(handler.values())) is None:
            continue
        CategoryRoute.objects.get_or_create(
            organisation=organisation, category=_category(code), residence=None, defaults=handler
        )


def _file(name: str, **kwargs) -> tuple[Ticket, bool]:
    existed = Ticket.objects.filter(pk=_id(name)).exists()
    return services.ticket_create(client_id=_id(name), **kwargs), not existed


def seed_demo_tickets(organisation, *, tenant_phone: str, caretaker_phone: str) -> None:
    """Routes, the demo tenant's requests at several stages, a common-area one, an incident."""
    tenant = User.objects.filter(phone=tenant_phone, organisation=organisation).first()
    caretaker = User.objects.filter(phone=caretaker_phone, organisation=organisation).first()
    if tenant is None or caretaker is None:
        return
    dwelling = estate.current_household_dwellings(tenant).first()
    if dwelling is None:
        return
    if not Category.objects.filter(organisation__isnull=True).exists():
        seed_standard_categories(Category, CategoryQuestion)
    _routes(organisation)
    technician = User.objects.filter(organisation=organisation, role="technician").first()

    leak, new = _file(
        "leak",
        actor=tenant,
        source="tenant_app",
        category=_category("plomberie-fuite"),
        dwelling=dwelling,
        description="De l'eau coule sous l'évier de la cuisine depuis ce matin.",
        answers={"room": "cuisine", "water_off": True},
    )
    if new and technician is not None:
        services.ticket_transition(ticket=leak, actor=technician, to_status="acknowledged")
        start = timezone.localtime().replace(hour=9, minute=0, second=0, microsecond=0)
        services.appointment_propose(
            ticket=leak,
            actor=technician,
            slots=[
                (start + dt.timedelta(days=d), start + dt.timedelta(days=d, hours=2))
                for d in (1, 2, 3)
            ],
        )

    shutter, new = _file(
        "shutter",
        actor=tenant,
        source="tenant_app",
        category=_category("menuiseries-volet"),
        dwelling=dwelling,
        description="Le volet roulant de la chambre est bloqué à mi-hauteur.",
    )
    if new:
        services.ticket_transition(
            ticket=shutter, actor=caretaker, to_status="resolved", note="Sangle remplacée."
        )

    hall = CommonArea.objects.filter(entrance=dwelling.entrance).first()
    if hall is not None:
        light, new = _file(
            "hall-light",
            actor=caretaker,
            source="caretaker",
            category=_category("eclairage-panne"),
            common_area=hall,
            description="Deux plafonniers éteints dans le hall.",
        )
        if new:
            services.ticket_follow(ticket=light, actor=tenant)

    building = dwelling.entrance.building
    heating = _category("chauffage")
    if not Incident.objects.filter(
        organisation=organisation, building=building, category=heating, status=IncidentStatus.OPEN
    ).exists():
        services.incident_open(
            actor=caretaker,
            building=building,
            category=heating,
            public_message=(
                "Le chauffage est coupé dans le bâtiment pour une réparation de la chaufferie. "
                "Retour prévu ce soir."
            ),
            expected_end=timezone.now() + dt.timedelta(hours=8),
        )
