"""Residences, buildings, entrances, dwellings, common areas and equipment over the API."""

import pytest
from rest_framework.test import APIClient

from api.estate.models import Building, EstateEvent
from tests.factories import (
    BuildingFactory,
    CommonAreaFactory,
    DwellingFactory,
    EntranceFactory,
    EquipmentFactory,
    ResidenceFactory,
)

pytestmark = pytest.mark.django_db

LIST_ROUTES = [
    "residences",
    "buildings",
    "entrances",
    "dwellings",
    "common-areas",
    "equipment",
]


@pytest.mark.parametrize("route", LIST_ROUTES)
def test_anonymous_is_refused(route):
    assert APIClient().get(f"/api/v1/{route}/").status_code == 401


def test_agency_staff_manage_a_residence(world, as_role):
    client = as_role("agency_staff")
    created = client.post(
        "/api/v1/residences/",
        {
            "agency": str(world.home.agency.pk),
            "reference": "R-NEW",
            "name": "Les Tilleuls",
            "postcode": "93200",
            "city": "Saint-Denis",
            "priority_neighbourhood": True,
            "latitude": "48.936181",
            "longitude": "2.357443",
        },
        format="json",
    )
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["agency"] == {"id": str(world.home.agency.pk), "name": world.home.agency.name}
    assert body["priority_neighbourhood"] is True

    url = f"/api/v1/residences/{body['id']}/"
    changed = client.patch(url, {"name": "Les Tilleuls II"}, format="json")
    assert changed.status_code == 200
    assert changed.json()["name"] == "Les Tilleuls II"
    event = EstateEvent.objects.filter(subject_id=body["id"], kind="updated").get()
    assert event.data == {"name": ["Les Tilleuls", "Les Tilleuls II"]}
    assert event.actor == world.users["agency_staff"]

    assert client.delete(url).status_code == 204
    assert client.get(url).status_code == 404


def test_duplicate_reference_is_a_field_error(world, as_role):
    response = as_role("manager").post(
        "/api/v1/residences/",
        {
            "agency": str(world.home.agency.pk),
            "reference": world.home.residence.reference,
            "name": "Doublon",
        },
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["fields"] == {"reference": ["This reference is already used."]}


def test_agency_staff_cannot_use_another_agency(world, as_role):
    response = as_role("agency_staff").post(
        "/api/v1/residences/",
        {"agency": str(world.other_residence.agency.pk), "reference": "X", "name": "X"},
        format="json",
    )
    assert response.status_code == 400
    assert "agency" in response.json()["fields"]


def test_deleting_a_residence_in_use_is_refused(world, as_role):
    response = as_role("manager").delete(f"/api/v1/residences/{world.home.residence.pk}/")
    assert response.status_code == 409
    assert response.json()["code"] == "in_use"


def test_caretaker_reads_but_never_writes(world, as_role):
    client = as_role("caretaker")
    url = f"/api/v1/buildings/{world.home.building.pk}/"
    assert client.get(url).status_code == 200
    assert client.patch(url, {"reference": "Z"}, format="json").status_code == 403
    assert client.delete(url).status_code == 403
    Building.objects.get(pk=world.home.building.pk, reference=world.home.building.reference)


def test_building_entrance_dwelling_chain(world, as_role):
    client = as_role("admin")
    building = client.post(
        "/api/v1/buildings/",
        {"residence": str(world.home.residence.pk), "reference": "C"},
        format="json",
    ).json()
    entrance = client.post(
        "/api/v1/entrances/",
        {"building": building["id"], "reference": "1", "label": "Allée 1"},
        format="json",
    ).json()
    assert entrance["residence"] == str(world.home.residence.pk)
    dwelling = client.post(
        "/api/v1/dwellings/",
        {
            "entrance": entrance["id"],
            "reference": "LGT-C-1-01",
            "floor": 3,
            "door": "31",
            "type": "T4",
            "surface": "78.20",
        },
        format="json",
    )
    assert dwelling.status_code == 201, dwelling.json()
    body = dwelling.json()
    assert body["building"] == building["id"]
    assert body["residence_name"] == world.home.residence.name
    assert body["label"].startswith("LGT-C-1-01 – ")

    moved = client.patch(
        f"/api/v1/dwellings/{body['id']}/",
        {"entrance": str(world.home.entrance.pk)},
        format="json",
    )
    assert moved.json()["entrance"] == str(world.home.entrance.pk)


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"floor": 120}, "floor"),
        ({"type": "T9"}, "type"),
        ({"surface": "0"}, "surface"),
        ({"reference": ""}, "reference"),
    ],
)
def test_dwelling_fields_are_validated(world, as_role, payload, field):
    response = as_role("manager").patch(
        f"/api/v1/dwellings/{world.home.dwelling.pk}/", payload, format="json"
    )
    assert response.status_code == 400
    assert field in response.json()["fields"]


def test_dwelling_cannot_move_out_of_scope(world, as_role):
    response = as_role("agency_staff").patch(
        f"/api/v1/dwellings/{world.home.dwelling.pk}/",
        {"entrance": str(world.other_residence.entrance.pk)},
        format="json",
    )
    assert response.status_code == 400
    assert "entrance" in response.json()["fields"]


def test_malformed_id_is_a_404(as_role):
    assert as_role("manager").get("/api/v1/dwellings/not-a-uuid/").status_code == 404


def test_dwelling_filters_and_search(world, as_role):
    client = as_role("manager")
    home = world.home.dwelling
    by_residence = client.get("/api/v1/dwellings/", {"residence": str(world.home.residence.pk)})
    assert {d["id"] for d in by_residence.json()["results"]} == {
        str(home.pk),
        str(world.other_tenant.dwelling.pk),
    }
    search = client.get("/api/v1/dwellings/", {"search": home.reference})
    assert [d["id"] for d in search.json()["results"]] == [str(home.pk)]
    vacant = DwellingFactory(entrance=world.home.entrance)
    empty = client.get("/api/v1/dwellings/", {"occupied": "false"})
    assert [d["id"] for d in empty.json()["results"]] == [str(vacant.pk)]
    bad = client.get("/api/v1/dwellings/", {"residence": "nope"})
    assert bad.status_code == 400


def test_residence_filters(world, as_role):
    world.other_residence.residence.priority_neighbourhood = True
    world.other_residence.residence.save()
    response = as_role("manager").get("/api/v1/residences/", {"priority_neighbourhood": "true"})
    assert [r["id"] for r in response.json()["results"]] == [
        str(world.other_residence.residence.pk)
    ]
    ordered = as_role("manager").get("/api/v1/residences/", {"ordering": "-reference"})
    references = [r["reference"] for r in ordered.json()["results"]]
    assert references == sorted(references, reverse=True)


def test_common_area_needs_exactly_one_place(world, as_role):
    client = as_role("manager")
    both = client.post(
        "/api/v1/common-areas/",
        {
            "kind": "hall",
            "entrance": str(world.home.entrance.pk),
            "building": str(world.home.building.pk),
        },
        format="json",
    )
    assert both.status_code == 400
    assert both.json()["code"] == "one_place"
    none = client.post("/api/v1/common-areas/", {"kind": "hall"}, format="json")
    assert none.status_code == 400
    ok = client.post(
        "/api/v1/common-areas/",
        {"kind": "bin_room", "name": "Local poubelles", "building": str(world.home.building.pk)},
        format="json",
    )
    assert ok.status_code == 201
    moved = client.patch(
        f"/api/v1/common-areas/{ok.json()['id']}/",
        {"residence": str(world.home.residence.pk)},
        format="json",
    )
    assert moved.status_code == 200
    assert moved.json()["building"] is None
    assert moved.json()["residence"] == str(world.home.residence.pk)


def test_common_area_filter_by_residence(world, as_role):
    hall = CommonAreaFactory(entrance=world.home.entrance)
    cellar = CommonAreaFactory(entrance=None, building=world.home.building, kind="cellar")
    CommonAreaFactory(entrance=world.other_residence.entrance)
    response = as_role("manager").get(
        "/api/v1/common-areas/", {"residence": str(world.home.residence.pk)}
    )
    assert {a["id"] for a in response.json()["results"]} == {str(hall.pk), str(cellar.pk)}


def test_equipment_serves_is_for_staff_only(world, as_role):
    client = as_role("manager")
    area = CommonAreaFactory(entrance=world.home.entrance, kind="cellar")
    created = client.post(
        "/api/v1/equipment/",
        {
            "kind": "heating_substation",
            "make": "Danfoss",
            "common_area": str(area.pk),
            "serves_dwellings": [str(world.home.dwelling.pk), str(world.other_tenant.dwelling.pk)],
        },
        format="json",
    )
    assert created.status_code == 201, created.json()
    equipment_id = created.json()["id"]
    assert set(created.json()["serves_dwellings"]) == {
        str(world.home.dwelling.pk),
        str(world.other_tenant.dwelling.pk),
    }
    as_tenant = as_role("tenant").get(f"/api/v1/equipment/{equipment_id}/")
    assert as_tenant.status_code == 200
    assert as_tenant.json()["serves_dwellings"] is None

    both = client.post(
        "/api/v1/equipment/",
        {"kind": "lift", "common_area": str(area.pk), "dwelling": str(world.home.dwelling.pk)},
        format="json",
    )
    assert both.status_code == 400
    foreign = client.patch(
        f"/api/v1/equipment/{equipment_id}/",
        {"serves_entrances": [str(world.other_organisation.entrance.pk)]},
        format="json",
    )
    assert foreign.status_code == 400
    assert client.delete(f"/api/v1/equipment/{equipment_id}/").status_code == 204


LIST_FACTORIES = {
    "residences": lambda w, i: ResidenceFactory(agency=w.home.agency),
    "buildings": lambda w, i: BuildingFactory(residence=w.home.residence),
    "entrances": lambda w, i: EntranceFactory(building=w.home.building),
    "dwellings": lambda w, i: DwellingFactory(entrance=w.home.entrance),
    "common-areas": lambda w, i: CommonAreaFactory(entrance=w.home.entrance),
    "equipment": lambda w, i: EquipmentFactory(dwelling=w.home.dwelling).serves_dwellings.add(
        w.home.dwelling
    ),
}


@pytest.mark.parametrize("route", LIST_ROUTES)
@pytest.mark.parametrize("role", ["tenant", "agency_staff"])
def test_list_query_count_does_not_grow(world, as_role, django_assert_max_num_queries, route, role):
    client = as_role(role)
    for i in range(3):
        LIST_FACTORIES[route](world, i)
    client.get(f"/api/v1/{route}/")  # warm caches (content types, etc.)
    with django_assert_max_num_queries(5):
        small = client.get(f"/api/v1/{route}/")
    for i in range(20):
        LIST_FACTORIES[route](world, i)
    with django_assert_max_num_queries(5):
        large = client.get(f"/api/v1/{route}/")
    assert small.status_code == large.status_code == 200
