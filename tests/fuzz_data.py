"""The world the API fuzzer runs in: one organisation with a manager and some data."""

from tests.factories import OrganisationFactory, UserFactory


def seed_fuzz_world() -> dict:
    """Enough data that list and detail endpoints have something to return."""
    organisation = OrganisationFactory(slug="fuzz")
    manager = UserFactory(
        organisation=organisation, role="manager", email="manager@fuzz.example", phone=None
    )
    return {"organisation": organisation, "manager": manager}
