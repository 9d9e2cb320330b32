"""Security headers on every answer: no sniffing, no framing, a referrer policy, HSTS over
HTTPS in production, and a Content-Security-Policy on HTML pages."""

import pytest
from django.test import override_settings


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/health/", "/api/v1/me/", "/api/v1/nowhere/"])
def test_api_answers_carry_the_security_headers(api_client, path):
    answer = api_client.get(path)
    assert answer["X-Content-Type-Options"] == "nosniff"
    assert answer["X-Frame-Options"] == "DENY"
    assert answer["Referrer-Policy"] == "same-origin"
    assert answer["Cross-Origin-Opener-Policy"] == "same-origin"
    assert "camera=()" in answer["Permissions-Policy"]


@pytest.mark.django_db
def test_html_pages_carry_a_content_security_policy(client):
    page = client.get("/admin/login/")
    assert page.status_code == 200
    assert page["Content-Type"].startswith("text/html")
    policy = page["Content-Security-Policy"]
    assert "default-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert "object-src 'none'" in policy


@pytest.mark.django_db
def test_json_answers_need_no_content_security_policy(api_client):
    assert "Content-Security-Policy" not in api_client.get("/api/health/")


@pytest.mark.django_db
@override_settings(
    SECURE_HSTS_SECONDS=31536000, SECURE_HSTS_INCLUDE_SUBDOMAINS=True, SECURE_HSTS_PRELOAD=True
)
def test_https_answers_carry_hsts_as_configured_in_production(api_client):
    answer = api_client.get("/api/health/", secure=True)
    assert answer["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
