import pytest

from tests.conftest import client_for
from tests.factories.estate import scope_world


@pytest.fixture
def world(db):
    return scope_world()


@pytest.fixture
def as_role(world):
    """`as_role("caretaker")`: an API client logged in as that role's person of the world."""
    cache = {}

    def make(role):
        if role not in cache:
            cache[role] = client_for(world.users[role])
        return cache[role]

    return make
