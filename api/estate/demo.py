"""The demo estate: 1 agency, 2 residences, 4 buildings, 8 entrances, 160 dwellings, their
tenants, caretakers, a technician team, a cleaning contractor and agency staff.

Idempotent: every object is found by its reference (or phone, or e-mail) before being created.
"""

import datetime as dt
from decimal import Decimal

from django.utils import timezone

from api.core.roles import Role

from .models import (
    Agency,
    AgencyMembership,
    Building,
    CaretakerAssignment,
    CommonArea,
    Contractor,
    ContractorContract,
    ContractorMember,
    Delegation,
    Dwelling,
    Entrance,
    Equipment,
    HouseholdMember,
    Lease,
    Residence,
    Team,
    TeamMembership,
    TeamSector,
)

STAFF_PASSWORD = "palier-demo-staff"  # noqa: S105 - demo only, printed on screen
AGENCY_STAFF_EMAIL = "agent@demo.palier.fr"
MANAGER_EMAIL = "manager@demo.palier.fr"
CARETAKER_PHONES = ("+33600000001", "+33600000002")
TECHNICIAN_PHONES = ("+33600000011", "+33600000012")
CONTRACTOR_PHONE = "+33600000021"
PREVIOUS_TENANT_PHONE = "+33600000100"
FIRST_TENANT_PHONE = 101  # +33600000101, +33600000102, …
DELEGATE_PHONE = "+33600000301"

RESIDENCES = [
    {
        "reference": "RES-LILAS",
        "name": "Les Lilas",
        "address": "12 rue des Lilas",
        "postcode": "93200",
        "city": "Saint-Denis",
        "priority_neighbourhood": True,
        "latitude": Decimal("48.936181"),
        "longitude": Decimal("2.357443"),
        "buildings": ("LIL-A", "LIL-B"),
        "unit": ("individual_boiler", "Saunier Duval", "ThemaPlus Condens"),
    },
    {
        "reference": "RES-TILLEULS",
        "name": "Les Tilleuls",
        "address": "5 avenue Jean Jaurès",
        "postcode": "93300",
        "city": "Aubervilliers",
        "priority_neighbourhood": False,
        "latitude": Decimal("48.914300"),
        "longitude": Decimal("2.382200"),
        "buildings": ("TIL-A", "TIL-B"),
        "unit": ("ventilation_unit", "Aldes", "EasyHOME Hygro"),
    },
]
ENTRANCES_PER_BUILDING = 2
FLOORS = 5
DOORS_PER_FLOOR = 4
TYPES = ("T1", "T2", "T3", "T4", "T3", "T5")
SURFACES = {"T1": "31.50", "T2": "46.00", "T3": "64.80", "T4": "79.20", "T5": "94.60"}
FIRST_NAMES = (
    "Amina", "Karim", "Sophie", "Lucas", "Fatou", "Mehdi", "Chloé", "Youssef", "Inès", "Thomas",
    "Aïcha", "Nicolas", "Léa", "Moussa", "Camille", "Samir", "Julie", "Ibrahima", "Sarah", "Hugo",
)  # fmt: skip
LAST_NAMES = (
    "Benali", "Martin", "Diallo", "Bernard", "Traoré", "Petit", "Nguyen", "Durand", "Haddad",
    "Moreau", "Kone", "Laurent", "Cissé", "Garcia", "Mansouri", "Roux", "Camara", "Fournier",
    "Bouzid", "Girard", "Keita",
)  # fmt: skip


def _person(organisation, *, role, phone=None, email=None, first_name="", last_name=""):
    from api.accounts.models import User

    lookup = {"phone": phone} if phone else {"email": email}
    user = User.objects.filter(**lookup).first()
    if user is None:
        user = User.objects.create_user(
            email=email,
            password=STAFF_PASSWORD if email else None,
            phone=phone,
            organisation=organisation,
            role=role,
            first_name=first_name,
            last_name=last_name,
        )
    return user


def _name(index: int) -> tuple[str, str]:
    return FIRST_NAMES[index % len(FIRST_NAMES)], LAST_NAMES[index * 7 % len(LAST_NAMES)]


def _register(organisation) -> list[Dwelling]:
    """The agency, residences, buildings, entrances, common areas, dwellings and their units."""
    agency, _ = Agency.objects.get_or_create(
        organisation=organisation, name="Agence Plaine Commune"
    )
    dwellings = []
    number = 0
    for spec in RESIDENCES:
        residence, _ = Residence.objects.get_or_create(
            organisation=organisation,
            reference=spec["reference"],
            defaults={
                "agency": agency,
                **{k: v for k, v in spec.items() if k not in {"reference", "buildings", "unit"}},
            },
        )
        CommonArea.objects.get_or_create(
            organisation=organisation, residence=residence, kind="outdoor", name="Espaces verts"
        )
        CommonArea.objects.get_or_create(
            organisation=organisation, residence=residence, kind="car_park", name="Parking"
        )
        for building_ref in spec["buildings"]:
            building, _ = Building.objects.get_or_create(
                organisation=organisation, residence=residence, reference=building_ref
            )
            cellar, _ = CommonArea.objects.get_or_create(
                organisation=organisation, building=building, kind="cellar", name="Caves"
            )
            CommonArea.objects.get_or_create(
                organisation=organisation,
                building=building,
                kind="bin_room",
                name="Local poubelles",
            )
            building_dwellings = []
            for entrance_number in range(1, ENTRANCES_PER_BUILDING + 1):
                entrance, _ = Entrance.objects.get_or_create(
                    organisation=organisation,
                    building=building,
                    reference=str(entrance_number),
                    defaults={"label": f"Allée {entrance_number}"},
                )
                hall, _ = CommonArea.objects.get_or_create(
                    organisation=organisation, entrance=entrance, kind="hall", name="Hall"
                )
                CommonArea.objects.get_or_create(
                    organisation=organisation, entrance=entrance, kind="stairwell", name="Escalier"
                )
                Equipment.objects.get_or_create(
                    organisation=organisation,
                    common_area=hall,
                    kind="entrance_door",
                    defaults={"make": "Vigik", "model": "Porte de hall"},
                )
                for floor in range(FLOORS):
                    for door in range(1, DOORS_PER_FLOOR + 1):
                        number += 1
                        kind = TYPES[number % len(TYPES)]
                        dwelling, _ = Dwelling.objects.get_or_create(
                            organisation=organisation,
                            reference=f"{building_ref}{entrance_number}-{floor}{door:02d}",
                            defaults={
                                "entrance": entrance,
                                "floor": floor,
                                "door": f"{floor}{door:02d}",
                                "type": kind,
                                "surface": Decimal(SURFACES[kind]),
                            },
                        )
                        unit_kind, make, model = spec["unit"]
                        Equipment.objects.get_or_create(
                            organisation=organisation,
                            dwelling=dwelling,
                            kind=unit_kind,
                            defaults={
                                "make": make,
                                "model": model,
                                "serial": f"{make[:2].upper()}{number:06d}",
                                "install_date": dt.date(2018 + number % 6, 1 + number % 12, 1),
                            },
                        )
                        dwellings.append(dwelling)
                        building_dwellings.append(dwelling)
            if spec["unit"][0] == "ventilation_unit":
                substation, created = Equipment.objects.get_or_create(
                    organisation=organisation,
                    common_area=cellar,
                    kind="heating_substation",
                    defaults={"make": "Danfoss", "model": "Termix"},
                )
                if created:
                    substation.serves_dwellings.set(building_dwellings)
    return dwellings


def _households(organisation, dwellings: list[Dwelling]) -> None:
    """A lease in force for all but every 16th dwelling; one earlier tenancy for history."""
    today = timezone.localdate()
    for index, dwelling in enumerate(dwellings):
        if (index + 1) % 16 == 0:
            continue  # vacant
        if index == 1:
            previous = _person(
                organisation,
                role=Role.TENANT,
                phone=PREVIOUS_TENANT_PHONE,
                first_name="Paul",
                last_name="Ancien",
            )
            old, _ = Lease.objects.get_or_create(
                organisation=organisation,
                reference="BAIL-0002-A",
                defaults={
                    "dwelling": dwelling,
                    "start_date": dt.date(2015, 3, 1),
                    "end_date": today - dt.timedelta(days=400),
                },
            )
            HouseholdMember.objects.get_or_create(
                lease=old, person=previous, defaults={"relation": "holder"}
            )
        first_name, last_name = _name(index)
        tenant = _person(
            organisation,
            role=Role.TENANT,
            phone=f"+33600000{FIRST_TENANT_PHONE + index:03d}",
            first_name=first_name,
            last_name=last_name,
        )
        lease, _ = Lease.objects.get_or_create(
            organisation=organisation,
            reference=f"BAIL-{index + 1:04d}",
            defaults={
                "dwelling": dwelling,
                "start_date": today - dt.timedelta(days=90 + 37 * index),
            },
        )
        HouseholdMember.objects.get_or_create(
            lease=lease, person=tenant, defaults={"relation": "holder"}
        )


def _staff(organisation) -> None:
    """Caretakers, technicians, a cleaning contractor, agency staff, a manager, a delegation."""
    agency = Agency.objects.get(organisation=organisation, name="Agence Plaine Commune")
    residences = list(
        Residence.objects.filter(
            organisation=organisation, reference__in=[spec["reference"] for spec in RESIDENCES]
        ).order_by("reference")
    )
    lilas = next(r for r in residences if r.reference == "RES-LILAS")
    for phone, residence, name in zip(
        CARETAKER_PHONES,
        [lilas, *[r for r in residences if r != lilas]],
        ["Ali", "Nadia"],
        strict=True,
    ):
        caretaker = _person(
            organisation, role=Role.CARETAKER, phone=phone, first_name=name, last_name="Gardien"
        )
        CaretakerAssignment.objects.get_or_create(caretaker=caretaker, residence=residence)

    team, _ = Team.objects.get_or_create(organisation=organisation, name="Maintenance Nord")
    for phone, name in zip(TECHNICIAN_PHONES, ["Marc", "Yasmine"], strict=True):
        technician = _person(
            organisation, role=Role.TECHNICIAN, phone=phone, first_name=name, last_name="Technicien"
        )
        TeamMembership.objects.get_or_create(team=team, user=technician)
    for residence in residences:
        TeamSector.objects.get_or_create(team=team, residence=residence)

    contractor, _ = Contractor.objects.get_or_create(
        organisation=organisation, name="Net'Propre", defaults={"trade": "cleaning"}
    )
    ContractorContract.objects.get_or_create(
        contractor=contractor,
        residence=lilas,
        trade="cleaning",
        defaults={"start_date": dt.date(timezone.localdate().year, 1, 1)},
    )
    cleaner = _person(
        organisation,
        role=Role.CONTRACTOR,
        phone=CONTRACTOR_PHONE,
        first_name="Rose",
        last_name="Propreté",
    )
    ContractorMember.objects.get_or_create(contractor=contractor, user=cleaner)

    agent = _person(
        organisation,
        role=Role.AGENCY_STAFF,
        email=AGENCY_STAFF_EMAIL,
        first_name="Claire",
        last_name="Chargée de clientèle",
    )
    AgencyMembership.objects.get_or_create(agency=agency, user=agent)
    _person(
        organisation,
        role=Role.MANAGER,
        email=MANAGER_EMAIL,
        first_name="Bruno",
        last_name="Responsable",
    )

    tenant = _person(organisation, role=Role.TENANT, phone=f"+33600000{FIRST_TENANT_PHONE:03d}")
    helper = _person(
        organisation,
        role=Role.TENANT,
        phone=DELEGATE_PHONE,
        first_name="Myriam",
        last_name="Aide-à-domicile",
    )
    if not Delegation.objects.filter(grantor=tenant, delegate=helper).exists():
        now = timezone.now()
        Delegation.objects.create(
            organisation=organisation,
            grantor=tenant,
            delegate=helper,
            relation="home_helper",
            starts_at=now,
            expires_at=now + dt.timedelta(days=180),
            created_by=tenant,
        )


def seed_demo_estate(organisation) -> dict:
    """Create the demo estate and its people (idempotent); return their logins."""
    dwellings = _register(organisation)
    _households(organisation, dwellings)
    _staff(organisation)
    return {
        "caretaker_2_phone": CARETAKER_PHONES[1],
        "technician_phone": TECHNICIAN_PHONES[0],
        "contractor_phone": CONTRACTOR_PHONE,
        "delegate_phone": DELEGATE_PHONE,
        "agency_staff_email": AGENCY_STAFF_EMAIL,
        "manager_email": MANAGER_EMAIL,
        "staff_password": STAFF_PASSWORD,
    }
