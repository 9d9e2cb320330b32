"""factory_boy factories, one module per app; import them from here."""

from tests.factories.accounts import OrganisationFactory, UserFactory

__all__ = ["OrganisationFactory", "UserFactory"]
