"""Limits on what a request may carry or ask for; every refusal a clear 4xx in the one shape."""

import io

import pytest
from django.test import override_settings
from PIL import Image
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory
from rest_framework.throttling import ScopedRateThrottle

from api.core.pagination import PagePagination
from tests.conftest import client_for
from tests.factories.estate import place_factory
from tests.factories.tickets import TicketFactory, ensure_standard_tree, standard_category

OTP_REQUEST = "/api/v1/auth/otp/request"


def _is_error_shape(body: dict) -> bool:
    return {"code", "detail"} <= set(body) <= {"code", "detail", "fields"}


# --- Request bodies -----------------------------------------------------------------------------


@pytest.mark.django_db
@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=1024)
def test_a_json_body_over_the_limit_is_a_413(api_client):
    answer = api_client.post(
        OTP_REQUEST, {"phone": "+33612345678", "pad": "x" * 2000}, format="json"
    )
    assert answer.status_code == 413
    body = answer.json()
    assert _is_error_shape(body)
    assert body["code"] == "request_too_large"


@pytest.mark.django_db
@override_settings(MAX_REQUEST_BYTES=4096)
def test_any_body_over_the_total_limit_is_a_413_even_an_upload(api_client):
    upload = io.BytesIO(b"\xff" * 8192)
    upload.name = "photo.jpg"
    answer = api_client.post(OTP_REQUEST, {"image": upload}, format="multipart")
    assert answer.status_code == 413
    assert answer.json()["code"] == "request_too_large"


@pytest.mark.django_db
def test_a_body_within_the_limits_goes_through(api_client):
    answer = api_client.post(OTP_REQUEST, {"phone": "not a number"}, format="json")
    assert answer.status_code == 400
    assert answer.json()["code"] == "validation_error"


@pytest.mark.django_db
def test_a_malformed_content_length_is_a_400(api_client):
    answer = api_client.post(
        OTP_REQUEST, {"phone": "+33612345678"}, format="json", CONTENT_LENGTH="-5x"
    )
    assert answer.status_code == 400
    assert _is_error_shape(answer.json())


@pytest.mark.django_db
@override_settings(DATA_UPLOAD_MAX_NUMBER_FIELDS=5)
def test_too_many_form_fields_is_a_400(api_client):
    fields = "&".join(f"f{n}=1" for n in range(20))
    answer = api_client.generic(
        "POST", OTP_REQUEST, fields, content_type="application/x-www-form-urlencoded"
    )
    assert answer.status_code == 400
    assert answer.json()["code"] == "too_many_fields"


# --- Uploads: size, pixels, type by content -----------------------------------------------------


@pytest.fixture
def photo_ticket(db):
    ensure_standard_tree()
    home = place_factory()
    ticket = TicketFactory(
        dwelling=home.dwelling, category=standard_category("plomberie-fuite"), reporter=home.tenant
    )
    return client_for(home.tenant), ticket


def _upload(client, ticket, content: bytes, name: str):
    upload = io.BytesIO(content)
    upload.name = name
    return client.post(
        f"/api/v1/tickets/{ticket.id}/photos/", {"image": upload}, format="multipart"
    )


def _png(size) -> bytes:
    out = io.BytesIO()
    Image.new("1", size).save(out, format="PNG")
    return out.getvalue()


def test_uploads_are_checked_by_size_pixels_and_content(photo_ticket, monkeypatch):
    client, ticket = photo_ticket
    bomb = _upload(client, ticket, _png((9000, 9000)), "small.png")
    assert bomb.status_code == 400
    assert bomb.json()["code"] == "too_large"
    disguised = _upload(client, ticket, b"<?php echo 'hi'; ?>" * 10, "photo.jpg")
    assert disguised.status_code == 400
    assert disguised.json()["fields"]["image"]
    monkeypatch.setattr("api.tickets.photos.MAX_PHOTO_BYTES", 100)
    heavy = _upload(client, ticket, _png((64, 64)) + b"\0" * 200, "heavy.png")
    assert heavy.status_code == 400
    assert heavy.json()["code"] == "too_large"


# --- Page sizes ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("asked", "given"),
    [("100000", 200), ("200", 200), ("10", 10), ("0", 50), ("-3", 50), ("abc", 50), ("", 50)],
)
def test_page_sizes_are_capped(asked, given):
    request = Request(APIRequestFactory().get("/x", {"page_size": asked}))
    assert PagePagination().get_page_size(request) == given


@pytest.mark.django_db
def test_pages_out_of_range_or_malformed_are_a_404_in_the_error_shape(photo_ticket):
    client, _ticket = photo_ticket
    for page in ("999999999999999999999", "abc", "-1"):
        answer = client.get("/api/v1/tickets/", {"page": page, "page_size": 100000})
        assert answer.status_code == 404, page
        assert _is_error_shape(answer.json())
    listed = client.get("/api/v1/tickets/", {"page_size": 100000})
    assert listed.status_code == 200


# --- SMS: per number, per address (hour and day), per day for everyone -------------------------


@pytest.fixture
def rates(monkeypatch):
    def lower(**changes):
        monkeypatch.setattr(
            ScopedRateThrottle, "THROTTLE_RATES", {**ScopedRateThrottle.THROTTLE_RATES, **changes}
        )

    return lower


@pytest.mark.django_db
def test_code_requests_are_limited_per_address_per_day(api_client, rates, settings, tmp_path):
    settings.OUTBOX_DIR = tmp_path
    settings.OTP_REQUEST_MIN_SECONDS = 0
    rates(otp_ip="1000/hour", otp_ip_day="3/day")
    for n in range(3):
        assert api_client.post(OTP_REQUEST, {"phone": f"+3361234500{n}"}).status_code == 202
    refused = api_client.post(OTP_REQUEST, {"phone": "+33612345009"})
    assert refused.status_code == 429
    assert refused.json()["code"] == "throttled"
    assert int(refused.headers["Retry-After"]) > 3600


@pytest.mark.django_db
def test_code_requests_are_limited_per_number_and_by_the_daily_budget(
    api_client, settings, tmp_path
):
    settings.OUTBOX_DIR = tmp_path
    settings.OTP_REQUEST_MIN_SECONDS = 0
    for _ in range(5):
        assert api_client.post(OTP_REQUEST, {"phone": "+33612345001"}).status_code == 202
    per_number = api_client.post(OTP_REQUEST, {"phone": "+33612345001"})
    assert (per_number.status_code, per_number.json()["code"]) == (429, "otp_number_limit")
    settings.SMS_DAILY_BUDGET = 0
    budget = api_client.post(OTP_REQUEST, {"phone": "+33612345002"})
    assert (budget.status_code, budget.json()["code"]) == (429, "sms_unavailable")
