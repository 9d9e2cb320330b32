"""The one error shape, on every kind of failure."""

import pytest

from api.core.exceptions import flatten_errors


def test_flatten_nested_errors_into_dotted_paths():
    detail = {
        "phone": ["Enter a valid phone number."],
        "photos": [{}, {"size": ["Too large."]}],
        "non_field_errors": ["Dates overlap."],
    }
    assert flatten_errors(detail) == {
        "phone": ["Enter a valid phone number."],
        "photos.1.size": ["Too large."],
        "non_field_errors": ["Dates overlap."],
    }


@pytest.mark.django_db
def test_validation_error_has_field_messages(api_client):
    response = api_client.post("/api/v1/auth/token", {"email": "x"}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "validation_error"
    assert "password" in body["fields"]


@pytest.mark.django_db
def test_unknown_api_url_is_json_404(api_client):
    response = api_client.get("/api/v1/no-such-thing/")
    assert response.status_code == 404
    assert response.json() == {"code": "not_found", "detail": "Not found."}


@pytest.mark.django_db
def test_malformed_json_is_a_400_not_a_500(api_client):
    response = api_client.post(
        "/api/v1/auth/token", data="{not json", content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"


@pytest.mark.django_db
def test_service_error_names_its_field(api_client):
    response = api_client.post("/api/v1/auth/logout", {"refresh": "garbage"}, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "token_not_valid"
    assert list(response.json()["fields"]) == ["refresh"]
