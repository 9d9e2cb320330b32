"""Conditional requests and idempotent POSTs, for phones on bad networks."""

import uuid

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from api.core.idempotency import REPLAYED_HEADER, cache_key_for
from api.tickets.models import Ticket, TicketEvent
from tests.factories.tickets import TicketFactory

pytestmark = pytest.mark.django_db


class TestEtags:
    def test_detail_answers_304_until_the_request_changes(self, world, clients, file_leak):
        ticket = file_leak()
        url = f"/api/v1/tickets/{ticket.id}/"
        first = clients["caretaker"].get(url)
        etag = first["ETag"]
        assert etag
        again = clients["caretaker"].get(url, HTTP_IF_NONE_MATCH=etag)
        assert again.status_code == 304 and again.content == b""
        clients["caretaker"].post(
            f"/api/v1/tickets/{ticket.id}/comments/", {"text": "Vu"}, format="json"
        )
        changed = clients["caretaker"].get(url, HTTP_IF_NONE_MATCH=etag)
        assert changed.status_code == 200 and changed["ETag"] != etag

    def test_the_etag_is_per_viewer(self, world, clients, file_leak):
        ticket = file_leak()
        url = f"/api/v1/tickets/{ticket.id}/"
        staff = clients["caretaker"].get(url)["ETag"]
        assert clients["tenant"].get(url, HTTP_IF_NONE_MATCH=staff).status_code == 200

    def test_lists_answer_304_too(self, world, clients):
        TicketFactory(dwelling=world.home.dwelling)
        first = clients["caretaker"].get("/api/v1/tickets/")
        assert (
            clients["caretaker"]
            .get("/api/v1/tickets/", HTTP_IF_NONE_MATCH=first["ETag"])
            .status_code
            == 304
        )
        TicketFactory(dwelling=world.home.dwelling)
        assert (
            clients["caretaker"]
            .get("/api/v1/tickets/", HTTP_IF_NONE_MATCH=first["ETag"])
            .status_code
            == 200
        )

    def test_if_match_refuses_a_lost_update(self, world, clients, file_leak):
        ticket = file_leak()
        url = f"/api/v1/tickets/{ticket.id}/"
        etag = clients["agency_staff"].get(url)["ETag"]
        # Someone else changes it meanwhile.
        clients["caretaker"].post(
            f"/api/v1/tickets/{ticket.id}/transition/", {"to_status": "acknowledged"}, format="json"
        )
        stale = clients["agency_staff"].patch(
            url, {"priority": "low"}, format="json", HTTP_IF_MATCH=etag
        )
        assert stale.status_code == 412
        assert stale.json()["code"] == "precondition_failed"
        fresh_tag = clients["agency_staff"].get(url)["ETag"]
        ok = clients["agency_staff"].patch(
            url, {"priority": "low"}, format="json", HTTP_IF_MATCH=fresh_tag
        )
        assert ok.status_code == 200 and ok.json()["priority"] == "low"
        assert ok["ETag"] != fresh_tag

    def test_if_match_on_transitions(self, world, clients, file_leak):
        ticket = file_leak()
        response = clients["caretaker"].post(
            f"/api/v1/tickets/{ticket.id}/transition/",
            {"to_status": "acknowledged"},
            format="json",
            HTTP_IF_MATCH='"stale"',
        )
        assert response.status_code == 412
        ticket.refresh_from_db()
        assert ticket.status == "new"


class TestIdempotency:
    def _post(self, client, ticket, text, key):
        return client.post(
            f"/api/v1/tickets/{ticket.id}/comments/",
            {"text": text},
            format="json",
            HTTP_IDEMPOTENCY_KEY=key,
        )

    def test_a_replay_returns_the_first_response_and_acts_once(self, world, clients, file_leak):
        ticket = file_leak()
        key = str(uuid.uuid4())
        first = self._post(clients["tenant"], ticket, "Ça goutte encore", key)
        again = self._post(clients["tenant"], ticket, "Ça goutte encore", key)
        assert first.status_code == again.status_code == 201
        assert first.json() == again.json()
        assert again[REPLAYED_HEADER] == "true"
        assert TicketEvent.objects.filter(ticket=ticket, kind="comment").count() == 1

    def test_a_key_reused_for_another_request_is_refused(self, world, clients, file_leak):
        ticket = file_leak()
        key = "offline-42"
        self._post(clients["tenant"], ticket, "Un", key)
        reused = self._post(clients["tenant"], ticket, "Deux", key)
        assert reused.status_code == 422
        assert reused.json()["code"] == "idempotency_key_reused"

    def test_keys_are_per_person(self, world, clients, file_leak):
        ticket = file_leak()
        key = "same-key"
        self._post(clients["tenant"], ticket, "Un", key)
        other = self._post(clients["caretaker"], ticket, "Un", key)
        assert other.status_code == 201 and REPLAYED_HEADER not in other
        assert TicketEvent.objects.filter(ticket=ticket, kind="comment").count() == 2

    def test_filing_offline_twice_files_once(self, world, clients, leak):
        body = {
            "category": str(leak.id),
            "dwelling": str(world.home.dwelling.id),
            "description": "Fuite",
            "answers": {"room": "wc"},
        }
        key = str(uuid.uuid4())
        first = clients["tenant"].post(
            "/api/v1/tickets/", body, format="json", HTTP_IDEMPOTENCY_KEY=key
        )
        again = clients["tenant"].post(
            "/api/v1/tickets/", body, format="json", HTTP_IDEMPOTENCY_KEY=key
        )
        assert first.status_code == again.status_code == 201
        assert Ticket.objects.count() == 1

    def test_a_key_still_running_is_a_conflict(self, world, clients, file_leak):
        ticket = file_leak()
        cache.add(cache_key_for(str(world.home.tenant.pk), "busy") + ":lock", 1, 60)
        response = self._post(clients["tenant"], ticket, "Un", "busy")
        assert response.status_code == 409
        assert response.json()["code"] == "idempotency_key_in_use"

    def test_bad_keys_and_anonymous_requests(self, world, clients, file_leak):
        ticket = file_leak()
        assert self._post(clients["tenant"], ticket, "x", "é" * 3).status_code == 400
        assert self._post(clients["tenant"], ticket, "x", "a" * 256).status_code == 400
        anonymous = self._post(APIClient(), ticket, "x", "k")
        assert anonymous.status_code == 401

    def test_errors_are_kept_too_but_not_401(self, world, clients, file_leak):
        ticket = file_leak()
        first = self._post(clients["tenant"], ticket, "", "empty")
        again = self._post(clients["tenant"], ticket, "", "empty")
        assert first.status_code == again.status_code == 400
        assert again[REPLAYED_HEADER] == "true"

    def test_the_header_is_documented_on_every_post(self, admin_client):
        schema = admin_client.get("/api/schema/?format=json").json()
        posts = [
            operation
            for path in schema["paths"].values()
            for method, operation in path.items()
            if method == "post"
        ]
        assert posts
        for operation in posts:
            names = {p["name"] for p in operation.get("parameters", [])}
            assert "Idempotency-Key" in names
            assert "422" in operation["responses"]
