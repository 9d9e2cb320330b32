"""Fixtures shared by the whole suite: people, authenticated clients, a clean cache."""

import logging

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from api.core.redaction import JWT as JWT_SHAPE
from tests.factories import OrganisationFactory, UserFactory

# Tests that start brokers, bridges, workers or whole stacks on fixed ports and share the
# machine's Mosquitto subscriptions: under pytest-xdist they all run in one worker, one after
# the other, while the rest of the suite spreads over the others.
PROCESS_TESTS = ("tests/workers/", "tests/integration/", "tests/devices/test_simulator_mqtt.py")


def pytest_collection_modifyitems(config, items):
    for item in items:
        path = item.nodeid.split("::", 1)[0]
        if path.startswith(PROCESS_TESTS):
            item.add_marker(pytest.mark.xdist_group("processes"))


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """Hashing is deliberately slow in production; the suite only needs it to be correct."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _clean_cache():
    """Throttle counters and OTP limits live in the cache: each test starts from zero."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _fail_on_logged_exception(caplog):
    """A test that logs an unexpected exception (a 500 behind a 4xx, say) fails."""
    yield
    errors = [
        r
        for r in caplog.get_records("call")
        if r.levelno >= logging.ERROR and r.exc_info and not getattr(r, "expected", False)
    ]
    assert not errors, f"unexpected exception logged: {errors[0].getMessage()}"


@pytest.fixture(autouse=True)
def _no_token_in_the_logs(caplog):
    """No log record of any test holds a JWT (tests/test_log_hygiene.py checks the rest)."""
    yield
    leaks = [r for r in caplog.get_records("call") if JWT_SHAPE.search(r.getMessage())]
    assert not leaks, f"a token reached the logs ({leaks[0].name})"


@pytest.fixture
def organisation(db):
    return OrganisationFactory()


@pytest.fixture
def api_client():
    return APIClient()


def client_for(user) -> APIClient:
    """An API client carrying a fresh access token for `user`."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
    return client


@pytest.fixture
def admin_user(organisation):
    return UserFactory(organisation=organisation, role="admin", is_staff=True, is_superuser=True)


@pytest.fixture
def admin_client(admin_user):
    return client_for(admin_user)
