"""Staff password login, refresh rotation, logout and brute-force lockout."""

import pytest

from tests.factories import UserFactory

PASSWORD = "correct-horse-battery"


@pytest.fixture
def staff(organisation):
    return UserFactory(
        organisation=organisation, role="agency_staff", email="agent@example.org", phone=None
    )


def _login(client, email, password):
    return client.post("/api/v1/auth/token", {"email": email, "password": password}, format="json")


@pytest.mark.django_db
def test_staff_logs_in_and_refresh_rotates(api_client, staff):
    pair = _login(api_client, "agent@example.org", PASSWORD).json()
    assert set(pair) == {"access", "refresh"}

    rotated = api_client.post("/api/v1/auth/token/refresh", {"refresh": pair["refresh"]})
    assert rotated.status_code == 200
    assert rotated.json()["refresh"] != pair["refresh"]

    replay = api_client.post("/api/v1/auth/token/refresh", {"refresh": pair["refresh"]})
    assert replay.status_code == 401, "a rotated refresh token must be revoked"


@pytest.mark.django_db
def test_logout_revokes_the_refresh_token(api_client, staff):
    pair = _login(api_client, "agent@example.org", PASSWORD).json()
    assert api_client.post("/api/v1/auth/logout", {"refresh": pair["refresh"]}).status_code == 205
    after = api_client.post("/api/v1/auth/token/refresh", {"refresh": pair["refresh"]})
    assert after.status_code == 401


@pytest.mark.django_db
def test_repeated_failures_lock_the_account(api_client, staff):
    for _ in range(5):
        assert _login(api_client, "agent@example.org", "wrong-password").status_code in {401, 429}
    locked = _login(api_client, "agent@example.org", PASSWORD)
    assert locked.status_code in {401, 403, 429}
    assert "access" not in locked.json()
