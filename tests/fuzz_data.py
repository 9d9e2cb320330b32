"""The world the API fuzzer runs in: one organisation with a manager and some data."""

from tests.factories import OrganisationFactory, UserFactory
from tests.factories.accounts import seed_fuzz_accounts
from tests.factories.audits import seed_fuzz_audits
from tests.factories.consent import seed_fuzz_consent
from tests.factories.estate import seed_fuzz_estate
from tests.factories.faults import seed_fuzz_faults
from tests.factories.notifications import seed_fuzz_notifications
from tests.factories.privacy import seed_fuzz_privacy
from tests.factories.telemetry import seed_fuzz_telemetry
from tests.factories.tickets import seed_fuzz_tickets


def seed_fuzz_world() -> dict:
    """Enough data that list and detail endpoints have something to return."""
    organisation = OrganisationFactory(slug="fuzz")
    manager = UserFactory(
        organisation=organisation, role="manager", email="manager@fuzz.example", phone=None
    )
    seed_fuzz_estate(organisation)
    seed_fuzz_telemetry(organisation)
    seed_fuzz_notifications(organisation, manager)
    seed_fuzz_tickets(organisation, manager)
    seed_fuzz_privacy(organisation, manager)
    seed_fuzz_consent(organisation, manager)
    seed_fuzz_faults(organisation, manager)
    seed_fuzz_audits(organisation, manager)
    seed_fuzz_accounts(organisation, manager)
    return {"organisation": organisation, "manager": manager}
