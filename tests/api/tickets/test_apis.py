"""The requests endpoints: scope, shapes, anonymity, photos, queues, exports, query counts."""

import csv
import io
import uuid

import pytest
from openpyxl import load_workbook
from PIL import Image
from pillow_heif import from_pillow
from rest_framework import serializers as drf
from rest_framework.renderers import JSONRenderer
from rest_framework.test import APIClient, APIRequestFactory

from api.accounts.models import PersonalDataAccess
from api.tickets import services
from api.tickets.models import Ticket
from api.tickets.selectors import ticket_rows
from api.tickets.serializers import TicketListSerializer
from tests.conftest import client_for
from tests.factories import CommonAreaFactory, place_factory
from tests.factories.estate import TeamFactory
from tests.factories.tickets import (
    IncidentFactory,
    TicketFactory,
    common_area_ticket,
    image_bytes,
)

pytestmark = pytest.mark.django_db


def _create_body(place, category, **extra):
    body = {
        "category": str(category.id),
        "dwelling": str(place.dwelling.id),
        "description": "L'eau coule sous l'évier.",
        "answers": {"room": "cuisine"},
    }
    body.update(extra)
    return body


class TestFilingThroughTheApi:
    def test_anonymous_is_refused(self):
        assert APIClient().get("/api/v1/tickets/").status_code == 401

    def test_created_with_a_client_id_and_replayed(self, world, clients, leak):
        client_id = str(uuid.uuid4())
        body = _create_body(world.home, leak, id=client_id)
        first = clients["tenant"].post("/api/v1/tickets/", body, format="json")
        assert first.status_code == 201, first.content
        assert first.json()["id"] == client_id
        assert first.json()["payer"] == "depends"
        again = clients["tenant"].post("/api/v1/tickets/", body, format="json")
        assert again.status_code == 200
        assert Ticket.objects.count() == 1

    def test_out_of_scope_places_do_not_exist(self, world, clients, leak):
        response = clients["tenant"].post(
            "/api/v1/tickets/", _create_body(world.other_tenant, leak), format="json"
        )
        assert response.status_code == 400
        assert "dwelling" in response.json()["fields"]

    def test_answers_errors_name_the_question(self, world, clients, leak):
        response = clients["tenant"].post(
            "/api/v1/tickets/", _create_body(world.home, leak, answers={}), format="json"
        )
        assert response.status_code == 400
        assert response.json()["fields"] == {"answers.room": ["This answer is required."]}

    def test_agency_files_on_behalf_with_a_reason(self, world, clients, leak):
        headers = {"HTTP_X_ON_BEHALF_OF": str(world.home.tenant.id)}
        refused = clients["agency_staff"].post(
            "/api/v1/tickets/", _create_body(world.home, leak), format="json", **headers
        )
        assert refused.status_code == 400
        response = clients["agency_staff"].post(
            "/api/v1/tickets/",
            _create_body(world.home, leak),
            format="json",
            HTTP_X_ON_BEHALF_REASON="Appel au standard",
            **headers,
        )
        assert response.status_code == 201
        ticket = Ticket.objects.get()
        assert (ticket.source, ticket.reporter) == ("agency", world.home.tenant)


class TestReading:
    def test_lists_are_scoped(self, world, clients):
        mine = TicketFactory(dwelling=world.home.dwelling, reporter=world.home.tenant)
        theirs = TicketFactory(dwelling=world.other_tenant.dwelling)
        ids = {r["id"] for r in clients["tenant"].get("/api/v1/tickets/").json()["results"]}
        assert ids == {str(mine.id)}
        assert clients["tenant"].get(f"/api/v1/tickets/{theirs.id}/").status_code == 404
        assert clients["tenant"].get("/api/v1/tickets/not-a-uuid/").status_code == 404

    def test_a_neighbour_never_reads_who_filed(self, world, clients, hall_dirty):
        home = world.home
        neighbour = place_factory(entrance=home.entrance)
        hall = CommonAreaFactory(entrance=home.entrance)
        ticket = services.ticket_create(
            actor=neighbour.tenant,
            source="tenant_app",
            category=hall_dirty,
            common_area=hall,
            description="Le hall est sale",
        )
        services.ticket_comment_add(ticket=ticket, actor=neighbour.tenant, text="Toujours sale")
        detail = clients["tenant"].get(f"/api/v1/tickets/{ticket.id}/").json()
        assert detail["reporter"] is None and detail["reported_by_me"] is False
        comments = clients["tenant"].get(f"/api/v1/tickets/{ticket.id}/comments/").json()
        assert comments["results"][0]["author"] == "Un résident"
        events = clients["tenant"].get(f"/api/v1/tickets/{ticket.id}/events/").json()["results"]
        assert all(e["actor"] is None for e in events)
        text = str(clients["tenant"].get(f"/api/v1/tickets/{ticket.id}/timeline/").json())
        assert neighbour.tenant.last_name not in text
        staff_view = clients["caretaker"].get(f"/api/v1/tickets/{ticket.id}/").json()
        assert staff_view["reporter"]["name"] == neighbour.tenant.full_name
        assert PersonalDataAccess.objects.filter(
            viewer=world.users["caretaker"], subject=neighbour.tenant
        ).exists()

    def test_internal_events_are_hidden_from_tenants(self, world, clients, file_leak):
        ticket = file_leak()
        services.ticket_comment_add(
            ticket=ticket, actor=world.users["caretaker"], text="Appeler le syndic", public=False
        )
        tenant_events = clients["tenant"].get(f"/api/v1/tickets/{ticket.id}/events/").json()
        assert all(e["public"] for e in tenant_events["results"])
        staff_events = clients["caretaker"].get(f"/api/v1/tickets/{ticket.id}/events/").json()
        assert any(not e["public"] for e in staff_events["results"])

    def test_timeline_speaks_the_tenants_language(self, world, clients, file_leak):
        tenant = world.home.tenant
        tenant.language = "ar"
        tenant.save()
        ticket = file_leak()
        services.ticket_transition(
            ticket=ticket,
            actor=world.users["caretaker"],
            to_status="waiting",
            waiting_reason="no_access",
        )
        timeline = client_for(tenant).get(f"/api/v1/tickets/{ticket.id}/timeline/").json()
        assert timeline["language"] == "ar"
        assert timeline["entries"][0]["by"] == "أنت"
        assert "لم نتمكن من دخول المسكن" in timeline["entries"][-1]["text"]
        assert timeline["waiting_reason_text"] == "لم نتمكن من دخول المسكن."

    def test_categories_in_the_readers_language(self, world):
        tenant = world.home.tenant
        tenant.language = "en"
        tenant.save()
        client = client_for(tenant)
        response = client.get("/api/v1/categories/", {"code": "plomberie-bouche"})
        category = response.json()["results"][0]
        assert category["label"] == "Blocked sink or toilet"
        assert category["payer"] == "tenant"
        assert "tenant's repair" in category["payer_note"]
        roots = client.get("/api/v1/categories/", {"root": "true", "page_size": 100}).json()
        assert {"chauffage", "plomberie", "ascenseur", "proprete", "voisinage"} <= {
            c["code"] for c in roots["results"]
        }

    def test_similar_before_filing(self, world, clients, hall_dirty):
        home = world.home
        hall = CommonAreaFactory(entrance=home.entrance)
        open_one = common_area_ticket(hall, category=hall_dirty)
        private = TicketFactory(dwelling=place_factory(entrance=home.entrance).dwelling)
        response = clients["tenant"].get(
            "/api/v1/tickets/similar/",
            {"category": str(hall_dirty.id), "common_area": str(hall.id)},
        )
        assert response.status_code == 200
        body = response.json()
        assert [t["id"] for t in body["similar"]] == [str(open_one.id)]
        assert str(private.id) not in str(body)
        assert body["payer"] == "landlord" and body["incident"] is None


class TestFollowConfirmComment:
    def test_me_too_endpoint(self, world, clients, hall_dirty):
        hall = CommonAreaFactory(entrance=world.home.entrance)
        ticket = common_area_ticket(hall, category=hall_dirty)
        response = clients["tenant"].post(f"/api/v1/tickets/{ticket.id}/follow/")
        assert response.json() == {"following": True, "followers_count": 1}
        listed = clients["tenant"].get("/api/v1/tickets/").json()["results"][0]
        assert listed["following"] is True and listed["followers_count"] == 1
        response = clients["tenant"].delete(f"/api/v1/tickets/{ticket.id}/follow/")
        assert response.json() == {"following": False, "followers_count": 0}

    def test_comment_endpoint(self, world, clients, file_leak):
        ticket = file_leak()
        response = clients["tenant"].post(
            f"/api/v1/tickets/{ticket.id}/comments/", {"text": "Merci"}, format="json"
        )
        assert response.status_code == 201
        assert response.json()["mine"] is True and response.json()["author"] == "Vous"

    def test_transition_endpoint(self, world, clients, file_leak):
        ticket = file_leak()
        response = clients["caretaker"].post(
            f"/api/v1/tickets/{ticket.id}/transition/",
            {"to_status": "waiting", "waiting_reason": "parts_on_order", "note": "Pièce jeudi"},
            format="json",
        )
        assert response.status_code == 200
        assert response.json()["status"] == "waiting"
        assert response.json()["waiting_reason_text"] == "Une pièce a été commandée."
        refused = clients["tenant"].post(
            f"/api/v1/tickets/{ticket.id}/transition/", {"to_status": "resolved"}, format="json"
        )
        assert refused.status_code == 403


class TestPhotos:
    def _upload(self, client, ticket, content, name="photo.jpg", **extra):
        upload = io.BytesIO(content)
        upload.name = name
        return client.post(
            f"/api/v1/tickets/{ticket.id}/photos/", {"image": upload, **extra}, format="multipart"
        )

    def test_jpeg_gps_is_stripped_and_thumbnail_made(self, world, clients, file_leak):
        ticket = file_leak()
        exif = Image.Exif()
        exif[0x8825] = {1: "N", 2: (48.0, 51.0, 24.0)}  # GPSInfo
        exif[0x0110] = "Pixel 9"
        response = self._upload(
            clients["tenant"], ticket, image_bytes(size=(3000, 2000), exif=exif.tobytes())
        )
        assert response.status_code == 201, response.content
        photo = response.json()
        assert photo["width"] == 2560 and photo["content_type"] == "image/jpeg"
        stored = clients["tenant"].get(f"/api/v1/tickets/{ticket.id}/photos/{photo['id']}/")
        assert stored.status_code == 200 and stored["Content-Type"] == "image/jpeg"
        image = Image.open(io.BytesIO(b"".join(stored.streaming_content)))
        assert 0x8825 not in image.getexif() and not image.getexif()
        thumb = clients["tenant"].get(
            f"/api/v1/tickets/{ticket.id}/photos/{photo['id']}/thumbnail/"
        )
        thumbnail = Image.open(io.BytesIO(b"".join(thumb.streaming_content)))
        assert max(thumbnail.size) == 320

    def test_png_and_heic_are_accepted(self, world, clients, file_leak):
        ticket = file_leak()
        png = self._upload(clients["tenant"], ticket, image_bytes("PNG"), "a.png")
        assert png.status_code == 201 and png.json()["content_type"] == "image/png"
        heic = io.BytesIO()
        from_pillow(Image.new("RGB", (40, 30), (10, 20, 30))).save(heic, quality=50)
        response = self._upload(clients["tenant"], ticket, heic.getvalue(), "b.heic")
        assert response.status_code == 201 and response.json()["content_type"] == "image/jpeg"

    def test_content_is_checked_not_the_name(self, world, clients, file_leak):
        ticket = file_leak()
        fake = self._upload(clients["tenant"], ticket, b"%PDF-1.4 not a photo", "x.jpg")
        assert fake.status_code == 400 and fake.json()["fields"]["image"]
        gif = self._upload(clients["tenant"], ticket, image_bytes("GIF"), "x.gif")
        assert gif.status_code == 400 and gif.json()["code"] == "unsupported_type"

    def test_decompression_bombs_are_refused(self, world, clients, file_leak):
        ticket = file_leak()
        huge = io.BytesIO()
        Image.new("1", (10000, 10000)).save(huge, format="PNG")
        response = self._upload(clients["tenant"], ticket, huge.getvalue(), "bomb.png")
        assert response.status_code == 400 and response.json()["code"] == "too_large"

    def test_at_most_five_and_client_ids_replay(self, world, clients, file_leak):
        ticket = file_leak()
        photo_id = str(uuid.uuid4())
        first = self._upload(clients["tenant"], ticket, image_bytes(), id=photo_id)
        again = self._upload(clients["tenant"], ticket, image_bytes(), id=photo_id)
        assert (first.status_code, again.status_code) == (201, 200)
        for _ in range(4):
            assert self._upload(clients["tenant"], ticket, image_bytes()).status_code == 201
        sixth = self._upload(clients["tenant"], ticket, image_bytes())
        assert sixth.status_code == 400 and sixth.json()["code"] == "too_many"

    def test_photos_are_as_private_as_their_request(self, world, clients, file_leak):
        ticket = file_leak()
        photo = self._upload(clients["tenant"], ticket, image_bytes()).json()
        other = client_for(world.other_tenant.tenant)
        url = f"/api/v1/tickets/{ticket.id}/photos/{photo['id']}/"
        assert other.get(url).status_code == 404
        assert clients["caretaker"].get(url).status_code == 200
        assert (
            clients["tenant"].get(f"/api/v1/tickets/{ticket.id}/photos/{uuid.uuid4()}/").status_code
            == 404
        )


class TestAgencyQueues:
    def test_filters(self, world, clients):
        team = TeamFactory(organisation=world.home.organisation)
        sent = TicketFactory(dwelling=world.home.dwelling, assigned_team=team, priority="high")
        TicketFactory(dwelling=world.home.dwelling, status="closed")
        client = clients["agency_staff"]

        def ids(**query):
            return {r["id"] for r in client.get("/api/v1/tickets/", query).json()["results"]}

        assert ids(team=str(team.id)) == {str(sent.id)}
        assert ids(priority="high") == {str(sent.id)}
        assert len(ids(open="true")) == 1
        assert ids(agency=str(world.home.agency.id)) >= {str(sent.id)}
        assert ids(residence=str(world.other_residence.residence.id)) == set()

    def test_bulk_assignment(self, world, clients):
        tickets = [TicketFactory(dwelling=world.home.dwelling) for _ in range(3)]
        team = TeamFactory(organisation=world.home.organisation)
        response = clients["agency_staff"].post(
            "/api/v1/tickets/bulk-assign/",
            {"tickets": [str(t.id) for t in tickets], "team": str(team.id)},
            format="json",
        )
        assert response.json() == {"assigned": 3}
        assert set(Ticket.objects.values_list("assigned_team", flat=True)) == {team.id}
        foreign = TicketFactory(dwelling=world.other_residence.dwelling)
        refused = clients["agency_staff"].post(
            "/api/v1/tickets/bulk-assign/",
            {"tickets": [str(tickets[0].id), str(foreign.id)], "team": str(team.id)},
            format="json",
        )
        assert refused.status_code == 404
        assert (
            clients["technician"]
            .post("/api/v1/tickets/bulk-assign/", {"tickets": [str(tickets[0].id)]}, format="json")
            .status_code
            == 403
        )

    def test_csv_and_xlsx_exports(self, world, clients):
        TicketFactory(dwelling=world.home.dwelling, description="=HYPERLINK(evil)")
        TicketFactory(dwelling=world.other_residence.dwelling)
        response = clients["agency_staff"].get("/api/v1/tickets/export/")
        assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
        text = b"".join(response.streaming_content).decode("utf-8-sig")
        rows = list(csv.reader(io.StringIO(text), delimiter=";"))
        assert rows[0][0] == "reference" and len(rows) == 2
        assert world.home.tenant.last_name not in text
        xlsx = clients["agency_staff"].get("/api/v1/tickets/export/", {"file_format": "xlsx"})
        sheet = load_workbook(io.BytesIO(xlsx.content)).active
        assert sheet.max_row == 2
        assert clients["tenant"].get("/api/v1/tickets/export/").status_code == 403
        bad = clients["agency_staff"].get("/api/v1/tickets/export/", {"file_format": "pdf"})
        assert bad.status_code == 400


class TestQueryCounts:
    def _fill(self, world, count):
        for index in range(count):
            place = world.home if index % 2 else world.other_tenant
            team = TeamFactory(organisation=world.home.organisation)
            TicketFactory(dwelling=place.dwelling, assigned_team=team, reporter=place.tenant)

    @pytest.mark.parametrize("role", ["caretaker", "tenant", "agency_staff", "technician"])
    def test_list_queries_do_not_grow_with_rows(
        self, world, clients, role, django_assert_max_num_queries
    ):
        self._fill(world, 3)
        with django_assert_max_num_queries(12) as few:
            clients[role].get("/api/v1/tickets/", {"page_size": 200})
        self._fill(world, 30)
        with django_assert_max_num_queries(len(few.captured_queries)):
            response = clients[role].get("/api/v1/tickets/", {"page_size": 200})
        assert response.status_code == 200

    def test_other_lists_are_pinned(self, world, clients, django_assert_max_num_queries):
        self._fill(world, 5)
        for url in (
            "/api/v1/categories/",
            "/api/v1/incidents/",
            "/api/v1/appointments/",
            "/api/v1/incidents/banner/",
        ):
            with django_assert_max_num_queries(10):
                assert clients["caretaker"].get(url).status_code == 200


def test_the_fast_list_row_is_the_declared_shape(world, file_leak, hall_dirty):
    team = TeamFactory(organisation=world.home.organisation)
    resolved = file_leak()
    services.ticket_assign(
        ticket=resolved,
        actor=world.users["caretaker"],
        team=team,
        assignee=world.users["technician"],
    )
    services.ticket_transition(
        ticket=resolved, actor=world.users["caretaker"], to_status="resolved"
    )
    hall = CommonAreaFactory(entrance=world.home.entrance)
    shared = common_area_ticket(
        hall, category=hall_dirty, incident=IncidentFactory(building=world.home.building)
    )
    for role in ("tenant", "caretaker"):
        request = APIRequestFactory().get("/")
        request.user = world.users[role]
        serializer = TicketListSerializer(context={"request": request})
        for ticket in ticket_rows(user=request.user, ids=[resolved.pk, shared.pk]):
            generic = drf.ModelSerializer.to_representation(serializer, ticket)
            as_json = JSONRenderer().render
            assert as_json(serializer.row(ticket)) == as_json(generic), role
