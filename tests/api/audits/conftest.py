import pytest

from tests.factories.audits import standard_template
from tests.factories.estate import (
    AgencyMembershipFactory,
    CaretakerAssignmentFactory,
    ContractorContractFactory,
    ContractorMemberFactory,
    place_factory,
)


class Site:
    """A residence with an entrance, its cleaning contractor and the people around it."""

    def __init__(self):
        self.place = place_factory()
        self.organisation = self.place.organisation
        self.residence = self.place.residence
        self.entrance = self.place.entrance
        contract = ContractorContractFactory(
            residence=self.residence, contractor__organisation=self.organisation
        )
        self.contractor = contract.contractor
        self.contractor_user = ContractorMemberFactory(contractor=self.contractor).user
        self.auditor = AgencyMembershipFactory(agency=self.place.agency).user
        self.caretaker = CaretakerAssignmentFactory(residence=self.residence).caretaker
        self.tenant = self.place.tenant
        self.template = standard_template()


@pytest.fixture
def site(db):
    return Site()
