"""Open311 GeoReport v2: discovery, services, requests; no tenant's personal data ever out."""

from decimal import Decimal
from xml.etree import ElementTree as ET

import pytest
from django.test import Client

from api.tickets import services
from api.tickets.models import Ticket
from tests.factories import CommonAreaFactory
from tests.factories.tickets import TicketFactory, common_area_ticket

pytestmark = pytest.mark.django_db
BASE = "/open311/v2"


def _xml(response) -> ET.Element:
    return ET.fromstring(response.content)  # noqa: S314 - Palier's own output, in a test


@pytest.fixture
def http():
    return Client()


@pytest.fixture
def partner(world):
    return services.partner_create(organisation=world.home.organisation, name="Ville")


@pytest.fixture
def jurisdiction(world):
    return {"jurisdiction_id": world.home.organisation.slug}


def test_discovery_in_json_and_xml(http):
    body = http.get(f"{BASE}/discovery.json").json()
    assert body["endpoints"][0]["specification"] == "http://wiki.open311.org/GeoReport_v2"
    xml = _xml(http.get(f"{BASE}/discovery.xml"))
    assert xml.tag == "discovery" and xml.find("endpoints/endpoint/url") is not None


def test_services_list_the_categories(http, jurisdiction):
    services_json = http.get(f"{BASE}/services.json", jurisdiction).json()
    leak = next(s for s in services_json if s["service_code"] == "plomberie-fuite")
    assert leak["metadata"] is True and leak["group"] == "Plomberie" and leak["type"] == "realtime"
    xml = _xml(http.get(f"{BASE}/services.xml", jurisdiction))
    assert "plomberie-fuite" in [s.findtext("service_code") for s in xml.findall("service")]


def test_a_jurisdiction_is_needed_when_several_landlords_share_the_server(http, world):
    response = http.get(f"{BASE}/services.json")
    assert response.status_code == 400
    assert response.json() == [{"code": 400, "description": "jurisdiction_id is required."}]
    unknown = http.get(f"{BASE}/services.xml", {"jurisdiction_id": "nope"})
    error = _xml(unknown)
    assert unknown.status_code == 404 and error.tag == "errors"
    assert error.findtext("error/code") == "404"


def test_service_definition_lists_the_questions_as_attributes(http, jurisdiction):
    body = http.get(f"{BASE}/services/plomberie-fuite.json", jurisdiction).json()
    room = next(a for a in body["attributes"] if a["code"] == "room")
    assert room["datatype"] == "singlevaluelist" and room["required"] is True
    assert {"key": "cuisine", "name": "Cuisine"} in room["values"]
    water = next(a for a in body["attributes"] if a["code"] == "water_off")
    assert [v["key"] for v in water["values"]] == ["true", "false"]
    assert http.get(f"{BASE}/services/nothing.json", jurisdiction).status_code == 404


def _post(http, key, **data):
    return http.post(f"{BASE}/requests.json", {"api_key": key, **data})


def test_posting_needs_a_partner_key(http, world):
    assert _post(http, "", service_code="autre").status_code == 403
    response = _post(http, "p311_bad_key", service_code="autre")
    assert response.status_code == 403 and response.json()[0]["code"] == 403


def test_post_about_a_building_then_read_it_back(http, world, partner):
    _, key = partner
    response = _post(
        http,
        key,
        service_code="proprete-encombrants",
        address_id=f"{world.home.residence.reference}/{world.home.building.reference}",
        description="Matelas devant l'entrée",
        first_name="Jeanne",
        email="jeanne@example.org",
    )
    assert response.status_code == 201, response.content
    request_id = response.json()[0]["service_request_id"]
    ticket = Ticket.objects.get(pk=request_id)
    assert (ticket.source, ticket.place_kind, ticket.partner) == ("open311", "building", partner[0])
    assert ticket.external_contact["email"] == "jeanne@example.org"
    read = http.get(f"{BASE}/requests/{request_id}.json", {"api_key": key}).json()[0]
    assert read["status"] == "open" and read["service_code"] == "proprete-encombrants"
    assert "jeanne" not in str(read).lower()


def test_post_about_a_dwelling_with_typed_attributes(http, world, partner):
    _, key = partner
    response = _post(
        http,
        key,
        service_code="plomberie-fuite",
        address_id=world.home.dwelling.reference,
        **{"attribute[room]": "wc", "attribute[water_off]": "true"},
    )
    assert response.status_code == 201, response.content
    ticket = Ticket.objects.get()
    assert ticket.answers == {"room": "wc", "water_off": True}
    missing = _post(
        http, key, service_code="plomberie-fuite", address_id=world.home.dwelling.reference
    )
    assert missing.status_code == 400 and "answers.room" in missing.json()[0]["description"]


def test_post_by_coordinates_finds_the_nearest_residence(http, world, partner):
    _, key = partner
    residence = world.home.residence
    residence.latitude, residence.longitude = Decimal("48.856600"), Decimal("2.352200")
    residence.save()
    near = _post(http, key, service_code="exterieurs-portail", lat="48.8567", long="2.3523")
    assert near.status_code == 201
    assert Ticket.objects.get().residence == residence
    far = _post(http, key, service_code="exterieurs-portail", lat="43.3", long="5.4")
    assert far.status_code == 400
    nowhere = _post(http, key, service_code="exterieurs-portail", lat="999", long="0")
    assert nowhere.status_code == 400


def test_a_partner_limited_to_some_residences(http, world):
    _, key = services.partner_create(
        organisation=world.home.organisation,
        name="Amicale",
        residences=[world.other_residence.residence],
    )
    response = _post(
        http, key, service_code="autre", address_id=world.home.residence.reference, description="x"
    )
    assert response.status_code == 404


def test_get_requests_never_shows_personal_data(http, world, partner, jurisdiction):
    home = world.home
    private = TicketFactory(
        dwelling=home.dwelling, reporter=home.tenant, description="Mme Martin, 3e gauche, fuite"
    )
    hall = CommonAreaFactory(entrance=home.entrance)
    shared = common_area_ticket(hall, description="Ampoule grillée")
    anonymous = http.get(f"{BASE}/requests.json", jurisdiction).json()
    assert [r["service_request_id"] for r in anonymous] == [str(shared.id)]
    _, key = partner
    with_key = http.get(f"{BASE}/requests.json", {"api_key": key}).json()
    as_partner = {r["service_request_id"]: r for r in with_key}
    assert as_partner[str(private.id)]["description"] == ""
    text = str(with_key)
    for secret in (
        home.tenant.last_name,
        str(home.tenant.phone),
        home.dwelling.reference,
        "Martin",
    ):
        assert secret not in text
    assert as_partner[str(private.id)]["address_id"] == (
        f"{home.residence.reference}/{home.building.reference}"
    )


def test_get_requests_filters(http, world, jurisdiction):
    hall = CommonAreaFactory(entrance=world.home.entrance)
    open_one = common_area_ticket(hall)
    closed_one = common_area_ticket(hall, status="closed")

    def ids(**params):
        return {
            r["service_request_id"]
            for r in http.get(f"{BASE}/requests.json", {**jurisdiction, **params}).json()
        }

    assert ids(status="open") == {str(open_one.id)}
    assert ids(status="closed") == {str(closed_one.id)}
    assert ids(service_request_id=f"{open_one.id},nonsense") == {str(open_one.id)}
    assert ids(service_code="autre") == set()
    assert ids(start_date="2000-01-01T00:00:00Z", end_date="2000-01-02T00:00:00Z") == set()
    assert http.get(f"{BASE}/requests.json", {**jurisdiction, "status": "maybe"}).status_code == 400
    assert (
        http.get(f"{BASE}/requests.json", {**jurisdiction, "start_date": "yesterday"}).status_code
        == 400
    )
    xml = _xml(http.get(f"{BASE}/requests.xml", jurisdiction))
    assert xml.tag == "service_requests" and len(xml.findall("request")) == 2


def test_unknown_request_and_format(http, jurisdiction):
    assert http.get(f"{BASE}/requests/nope.json", jurisdiction).status_code == 404
    assert http.get(f"{BASE}/requests.csv", jurisdiction).status_code == 404
    assert http.delete(f"{BASE}/requests.json").status_code == 405
