"""factory_boy factories, one module per app; import them from here."""

from tests.factories.accounts import OrganisationFactory, UserFactory
from tests.factories.estate import (
    AgencyFactory,
    BuildingFactory,
    CommonAreaFactory,
    DelegationFactory,
    DwellingFactory,
    EntranceFactory,
    EquipmentFactory,
    LeaseFactory,
    ResidenceFactory,
    TenantFactory,
    place_factory,
)

__all__ = ["OrganisationFactory", "UserFactory"]
__all__ += [
    "AgencyFactory",
    "BuildingFactory",
    "CommonAreaFactory",
    "DelegationFactory",
    "DwellingFactory",
    "EntranceFactory",
    "EquipmentFactory",
    "LeaseFactory",
    "ResidenceFactory",
    "TenantFactory",
    "place_factory",
]
