"""JWTs against the real server: forged, expired and misused tokens get a 401; a refresh
token rotates exactly once even when twenty clients use it at the same moment; logout and
rotation revoke."""

import base64
import json
import threading
import urllib.error
import urllib.request
from datetime import timedelta

import jwt
import pytest
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _call(url: str, *, token: str | None = None, body: dict | None = None) -> tuple[int, dict]:
    """One real HTTP request; the status and the JSON body, whatever the status."""
    headers = {"Accept": "application/json"}
    data = None
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    method = "POST" if data else "GET"
    request = urllib.request.Request(url, data=data, headers=headers, method=method)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310
            return answer.status, json.loads(answer.read() or b"{}")
    except urllib.error.HTTPError as refused:
        return refused.code, json.loads(refused.read() or b"{}")


@pytest.fixture
def person(organisation):
    return UserFactory(organisation=organisation, role="tenant")


@pytest.fixture
def urls(live_server):
    base = f"{live_server.url}/api/v1"
    return {
        "me": f"{base}/me/",
        "refresh": f"{base}/auth/token/refresh",
        "logout": f"{base}/auth/logout",
    }


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _forged(person, kind: str) -> str:
    claims = dict(AccessToken.for_user(person).payload)
    if kind == "alg_none":
        return f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}."
    if kind == "wrong_key":
        return jwt.encode(claims, "not-the-key-" + "k" * 40, algorithm="HS256")
    if kind == "expired":
        token = AccessToken.for_user(person)
        token.set_exp(lifetime=-timedelta(seconds=1))
        return str(token)
    if kind == "refresh_as_access":
        return str(RefreshToken.for_user(person))
    raise AssertionError(kind)


def test_forged_expired_and_misused_tokens_get_a_401_and_logout_and_rotation_revoke(urls, person):
    # One test for all of these: each test against the live server costs a database flush.
    status, body = _call(urls["me"], token=str(AccessToken.for_user(person)))
    assert (status, body["id"]) == (200, str(person.id))
    for kind in ("alg_none", "wrong_key", "expired", "refresh_as_access"):
        status, body = _call(urls["me"], token=_forged(person, kind))
        assert status == 401, kind
        assert body["code"] == "token_not_valid", kind
        assert set(body) <= {"code", "detail", "fields"}

    # Rotation: the old refresh token is refused, the new one works once.
    old = str(RefreshToken.for_user(person))
    status, pair = _call(urls["refresh"], body={"refresh": old})
    assert status == 200
    assert _call(urls["me"], token=pair["access"])[0] == 200
    assert _call(urls["refresh"], body={"refresh": old})[0] == 401
    # An access token is no refresh token.
    assert _call(urls["refresh"], body={"refresh": pair["access"]})[0] == 401

    # Logout: the refresh token is revoked.
    assert _call(urls["logout"], body={"refresh": pair["refresh"]})[0] == 205
    status, body = _call(urls["refresh"], body={"refresh": pair["refresh"]})
    assert status == 401
    assert body["code"] == "token_not_valid"


def test_twenty_concurrent_refreshes_with_one_token_succeed_exactly_once(urls, person):
    refresh = str(RefreshToken.for_user(person))
    barrier = threading.Barrier(20)
    results: list[tuple[int, dict]] = []
    lock = threading.Lock()

    def use_it():
        barrier.wait(timeout=30)
        outcome = _call(urls["refresh"], body={"refresh": refresh})
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=use_it) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    statuses = sorted(status for status, _body in results)
    assert statuses == [200] + [401] * 19
    assert BlacklistedToken.objects.filter(token__user=person).count() == 1
    winner = next(body for status, body in results if status == 200)
    assert _call(urls["me"], token=winner["access"])[0] == 200
