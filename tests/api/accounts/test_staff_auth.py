"""Staff password login, refresh rotation, logout and brute-force lockout."""

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.utils import timezone

from tests.factories import UserFactory

PASSWORD = "correct-horse-battery"


@pytest.fixture
def staff(organisation):
    return UserFactory(
        organisation=organisation, role="agency_staff", email="agent@example.org", phone=None
    )


def _login(client, email, password, **extra):
    return client.post(
        "/api/v1/auth/token", {"email": email, "password": password}, format="json", **extra
    )


@pytest.mark.django_db
def test_staff_logs_in_and_refresh_rotates(api_client, staff):
    answer = _login(api_client, "agent@example.org", PASSWORD)
    assert answer.status_code == 200
    pair = answer.json()
    assert set(pair) == {"access", "refresh"}

    rotated = api_client.post("/api/v1/auth/token/refresh", {"refresh": pair["refresh"]})
    assert rotated.status_code == 200
    assert rotated.json()["refresh"] != pair["refresh"]

    replay = api_client.post("/api/v1/auth/token/refresh", {"refresh": pair["refresh"]})
    assert replay.status_code == 401, "a rotated refresh token must be revoked"
    assert replay.json()["code"] == "token_not_valid"


@pytest.mark.django_db
def test_logout_revokes_the_refresh_token(api_client, staff):
    pair = _login(api_client, "agent@example.org", PASSWORD).json()
    assert api_client.post("/api/v1/auth/logout", {"refresh": pair["refresh"]}).status_code == 205
    after = api_client.post("/api/v1/auth/token/refresh", {"refresh": pair["refresh"]})
    assert after.status_code == 401


@pytest.mark.django_db
def test_a_wrong_password_is_a_plain_401(api_client, staff):
    answer = _login(api_client, "agent@example.org", "wrong-password")
    assert answer.status_code == 401
    assert answer.json()["code"] == "no_active_account"


@pytest.mark.django_db
def test_repeated_failures_lock_the_account(api_client, staff):
    for _ in range(4):
        assert _login(api_client, "agent@example.org", "wrong-password").status_code == 401
    fifth = _login(api_client, "agent@example.org", "wrong-password")
    assert fifth.status_code == 429
    assert fifth.json()["code"] == "account_locked"

    locked = _login(api_client, "agent@example.org", PASSWORD)
    assert locked.status_code == 429, "even the right password is refused while locked"
    body = locked.json()
    assert body["code"] == "account_locked"
    assert "locked" in body["detail"] or "bloqué" in body["detail"]
    assert "access" not in body
    assert int(locked.headers["Retry-After"]) == 15 * 60


@pytest.mark.django_db
def test_the_lockout_ignores_case_and_spaces_in_the_email(api_client, staff):
    for variant in [
        "agent@example.org",
        "AGENT@example.org",
        " Agent@Example.org ",
        "agent@EXAMPLE.org",
    ]:
        _login(api_client, variant, "wrong-password")
    _login(api_client, "aGeNt@example.org", "wrong-password")
    assert _login(api_client, "agent@example.org", PASSWORD).status_code == 429
    assert AccessAttempt.objects.get().username == "agent@example.org"


@pytest.mark.django_db
def test_a_forged_forwarded_address_does_not_reset_the_lockout(api_client, staff):
    for index in range(5):
        _login(
            api_client,
            "agent@example.org",
            "wrong-password",
            HTTP_X_FORWARDED_FOR=f"198.51.100.{index}",
        )
    forged = _login(
        api_client, "agent@example.org", PASSWORD, HTTP_X_FORWARDED_FOR="198.51.100.200"
    )
    assert forged.status_code == 429


@pytest.mark.django_db
def test_a_lockout_does_not_block_colleagues(api_client, staff, organisation):
    UserFactory(organisation=organisation, role="manager", email="boss@example.org", phone=None)
    for _ in range(5):
        _login(api_client, "agent@example.org", "wrong-password")
    assert _login(api_client, "boss@example.org", PASSWORD).status_code == 200


@pytest.mark.django_db
def test_the_lockout_ends_after_the_cool_off(api_client, staff):
    for _ in range(5):
        _login(api_client, "agent@example.org", "wrong-password")
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=16))
    answer = _login(api_client, "agent@example.org", PASSWORD)
    assert answer.status_code == 200
    assert not AccessAttempt.objects.exists(), "a successful login resets the failures"


@pytest.mark.django_db
def test_unknown_accounts_lock_the_same_way(api_client):
    answers = [_login(api_client, "nobody@example.org", "wrong-password") for _ in range(6)]
    assert [a.status_code for a in answers] == [401] * 4 + [429] * 2


@pytest.mark.django_db
def test_behind_a_trusted_proxy_the_lockout_follows_the_real_client(api_client, staff, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    for index in range(5):
        # The client forges the left part; the proxy appends the address it saw.
        _login(
            api_client,
            "agent@example.org",
            "wrong-password",
            HTTP_X_FORWARDED_FOR=f"10.0.0.{index}, 203.0.113.7",
        )
    attacker = _login(
        api_client, "agent@example.org", PASSWORD, HTTP_X_FORWARDED_FOR="10.9.9.9, 203.0.113.7"
    )
    assert attacker.status_code == 429
    colleague = _login(
        api_client, "agent@example.org", PASSWORD, HTTP_X_FORWARDED_FOR="198.51.100.20"
    )
    assert colleague.status_code == 200, "the real owner, elsewhere, is not locked out"
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) <= {"203.0.113.7"}


@pytest.mark.django_db
def test_a_successful_login_clears_earlier_failures(api_client, staff):
    for _ in range(4):
        _login(api_client, "agent@example.org", "wrong-password")
    assert _login(api_client, "agent@example.org", PASSWORD).status_code == 200
    for _ in range(4):
        assert _login(api_client, "agent@example.org", "wrong-password").status_code == 401
