"""The demo seeds a round for the team leader and past audits, once."""

import pytest

from api.audits.demo import seed_demo_audits
from api.audits.models import Audit, AuditRound
from api.estate.demo import AGENCY_STAFF_EMAIL
from tests.factories.estate import AgencyMembershipFactory

pytestmark = pytest.mark.django_db


def test_demo_audits_are_seeded_once(site):
    AgencyMembershipFactory(
        agency=site.place.agency,
        user__email=AGENCY_STAFF_EMAIL,
        user__organisation=site.organisation,
        user__role="agency_staff",
    )
    seed_demo_audits(site.organisation)
    seed_demo_audits(site.organisation)
    assert Audit.objects.count() == 3
    assert AuditRound.objects.count() == 1
    assert Audit.objects.filter(capped=True).count() == 1
