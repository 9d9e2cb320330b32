"""Fixtures shared by the whole suite: people, authenticated clients, a clean cache."""

import logging

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from tests.factories import OrganisationFactory, UserFactory


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
