"""Shared ground of the requests tests: a scoped world, the standard categories, clients."""

import pytest

from api.tickets import services
from tests.conftest import client_for
from tests.factories.estate import scope_world
from tests.factories.tickets import ensure_standard_tree, standard_category


@pytest.fixture
def world(db):
    ensure_standard_tree()
    return scope_world()


@pytest.fixture
def home(world):
    return world.home


@pytest.fixture
def leak():
    return standard_category("plomberie-fuite")


@pytest.fixture
def hall_dirty():
    return standard_category("proprete-hall")


@pytest.fixture
def clients(world):
    return {role: client_for(user) for role, user in world.users.items()}


@pytest.fixture
def file_leak(home, leak):
    """The home tenant files a leak about their dwelling through the service."""

    def file(**kwargs):
        params = {
            "actor": home.tenant,
            "source": "tenant_app",
            "category": leak,
            "dwelling": home.dwelling,
            "description": "L'eau coule sous l'évier.",
            "answers": {"room": "cuisine"},
        }
        params.update(kwargs)
        return services.ticket_create(**params)

    return file
