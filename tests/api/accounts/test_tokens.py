"""JWT hardening: forged, expired and misused tokens are refused; a refresh token rotates once."""

import base64
import json
import threading
from datetime import timedelta

import jwt
import pytest
from django.conf import settings
from django.db import connection
from rest_framework.test import APIClient
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from tests.factories import UserFactory

ME = "/api/v1/me/"
REFRESH = "/api/v1/auth/token/refresh"
LOGOUT = "/api/v1/auth/logout"


@pytest.fixture
def person(organisation):
    return UserFactory(organisation=organisation, role="caretaker")


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _claims(person, **extra) -> dict:
    token = AccessToken.for_user(person)
    return {**token.payload, **extra}


def _get_me(token: str):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client.get(ME)


@pytest.mark.django_db
def test_a_valid_access_token_is_accepted(person):
    assert _get_me(str(AccessToken.for_user(person))).status_code == 200


@pytest.mark.django_db
def test_an_unsigned_alg_none_token_is_refused(person):
    token = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(_claims(person))}."
    answer = _get_me(token)
    assert answer.status_code == 401
    assert answer.json()["code"] == "token_not_valid"


@pytest.mark.django_db
def test_a_token_signed_with_another_key_is_refused(person):
    forged = jwt.encode(_claims(person), "another-key-" + "x" * 40, algorithm="HS256")
    assert _get_me(forged).status_code == 401


@pytest.mark.django_db
def test_a_token_with_another_algorithm_is_refused(person):
    forged = jwt.encode(_claims(person), settings.SIMPLE_JWT["SIGNING_KEY"], algorithm="HS512")
    assert _get_me(forged).status_code == 401


@pytest.mark.django_db
def test_an_expired_token_is_refused(person):
    token = AccessToken.for_user(person)
    token.set_exp(lifetime=-timedelta(seconds=1))
    answer = _get_me(str(token))
    assert answer.status_code == 401
    assert answer.json()["code"] == "token_not_valid"


@pytest.mark.django_db
def test_a_refresh_token_is_not_an_access_token(person):
    assert _get_me(str(RefreshToken.for_user(person))).status_code == 401


@pytest.mark.django_db
def test_an_access_token_cannot_refresh(api_client, person):
    access = str(AccessToken.for_user(person))
    assert api_client.post(REFRESH, {"refresh": access}).status_code == 401


@pytest.mark.django_db
def test_a_tampered_token_is_refused(person):
    header, _payload, signature = str(AccessToken.for_user(person)).split(".")
    other = UserFactory(organisation=person.organisation)
    tampered = f"{header}.{_b64(_claims(person, user_id=str(other.id)))}.{signature}"
    assert _get_me(tampered).status_code == 401


@pytest.mark.django_db
def test_garbage_is_refused_without_a_server_error(api_client, person):
    for junk in ["", "a.b.c", "Bearer", "\xe9t\xe9" * 10, "x" * 5000]:
        assert _get_me(junk).status_code == 401
    assert api_client.post(REFRESH, {"refresh": "x" * 5000}).status_code == 400
    assert api_client.post(REFRESH, {"refresh": "a.b.c"}).status_code == 401
    assert api_client.post(REFRESH, ["not", "an", "object"], format="json").status_code == 400


@pytest.mark.django_db
def test_a_deactivated_person_is_refused(api_client, person):
    refresh = RefreshToken.for_user(person)
    person.is_active = False
    person.save()
    assert _get_me(str(refresh.access_token)).status_code == 401
    answer = api_client.post(REFRESH, {"refresh": str(refresh)})
    assert answer.status_code == 401
    assert answer.json()["code"] == "no_active_account"


@pytest.mark.django_db
def test_refresh_rotates_and_the_old_token_is_revoked(api_client, person):
    refresh = str(RefreshToken.for_user(person))
    rotated = api_client.post(REFRESH, {"refresh": refresh})
    assert rotated.status_code == 200
    pair = rotated.json()
    assert set(pair) == {"access", "refresh"}
    assert _get_me(pair["access"]).status_code == 200
    assert api_client.post(REFRESH, {"refresh": refresh}).status_code == 401
    assert api_client.post(REFRESH, {"refresh": pair["refresh"]}).status_code == 200


@pytest.mark.django_db
def test_logout_revokes_and_a_revoked_token_cannot_log_out_again(api_client, person):
    refresh = str(RefreshToken.for_user(person))
    assert api_client.post(LOGOUT, {"refresh": refresh}).status_code == 205
    assert api_client.post(REFRESH, {"refresh": refresh}).status_code == 401
    again = api_client.post(LOGOUT, {"refresh": refresh})
    assert again.status_code == 400
    assert again.json()["code"] == "token_not_valid"


@pytest.mark.django_db
def test_logout_ignores_a_stale_access_token_in_the_header(api_client, person):
    expired = AccessToken.for_user(person)
    expired.set_exp(lifetime=-timedelta(seconds=1))
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {expired}")
    refresh = str(RefreshToken.for_user(person))
    assert api_client.post(LOGOUT, {"refresh": refresh}).status_code == 205


@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_refreshes_with_one_token_succeed_exactly_once(organisation):
    person = UserFactory(organisation=organisation, role="tenant")
    refresh = str(RefreshToken.for_user(person))
    barrier = threading.Barrier(20)
    statuses: list[int] = []
    new_tokens: list[str] = []

    def use_it():
        try:
            client = APIClient()
            barrier.wait(timeout=10)
            answer = client.post(REFRESH, {"refresh": refresh}, format="json")
            statuses.append(answer.status_code)
            if answer.status_code == 200:
                new_tokens.append(answer.json()["refresh"])
        finally:
            connection.close()

    threads = [threading.Thread(target=use_it) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert sorted(statuses) == [200] + [401] * 19
    assert BlacklistedToken.objects.count() == 1
    assert OutstandingToken.objects.filter(user=person).count() == 2
    # The winner's new token is itself good for one rotation.
    assert APIClient().post(REFRESH, {"refresh": new_tokens[0]}).status_code == 200
