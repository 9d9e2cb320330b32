"""Monthly PDFs rendered ahead on the 1st, served as stored while still current."""

import datetime as dt

import pytest
from django.utils import timezone

from api.audits import reports
from api.audits.models import Audit, AuditReport
from api.audits.tasks import store_monthly_reports
from tests.conftest import client_for
from tests.factories.audits import AuditFactory
from tests.factories.estate import AgencyMembershipFactory, place_factory

pytestmark = pytest.mark.django_db


def _last_month() -> dt.date:
    return reports.previous_month(timezone.localdate())


def _in(month: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(month + dt.timedelta(days=9), dt.time(10)))


@pytest.fixture
def rendered(monkeypatch):
    """Counts the PDFs rendered on demand (after the stored ones were made)."""
    calls = []

    def patch(content=b"%PDF-on-demand"):
        def fake(**kwargs):
            calls.append(kwargs)
            return content

        monkeypatch.setattr(reports, "residence_report_pdf", fake)
        monkeypatch.setattr(reports, "contractor_report_pdf", fake)

    return calls, patch


def test_last_months_reports_are_stored_and_served(site, rendered):
    month = _last_month()
    audit = AuditFactory(entrance=site.entrance, contractor=site.contractor, finished_at=_in(month))
    assert store_monthly_reports() == 2
    stored = {r.subject: r for r in AuditReport.objects.all()}
    assert set(stored) == {"residence", "contractor"}
    residence_report = stored["residence"]
    assert residence_report.period == month and residence_report.audits == 1
    assert residence_report.residences == [str(site.residence.pk)]
    assert residence_report.file.read().startswith(b"%PDF")  # the real rendering, once
    calls, patch = rendered
    # A second run replaces the files rather than adding rows.
    patch(b"%PDF-stored")
    assert store_monthly_reports(month.isoformat()) == 2
    assert AuditReport.objects.count() == 2
    calls.clear()
    patch()
    client = client_for(site.auditor)
    label = f"{month:%Y-%m}"
    url = f"/api/v1/audit-reports/residences/{site.residence.pk}/"
    response = client.get(url, {"month": label})
    assert response.status_code == 200 and response.content.startswith(b"%PDF")
    assert response.content == b"%PDF-stored"
    contractor_url = f"/api/v1/audit-reports/contractors/{site.contractor.pk}/"
    assert client_for(site.contractor_user).get(contractor_url, {"month": label}).status_code == 200
    assert calls == []
    # This month has nothing stored: rendered on demand.
    client.get(url)
    assert len(calls) == 1
    # An audit changed since (a dispute settled, a late submission): rendered again.
    Audit.objects.filter(pk=audit.pk).update(updated_at=timezone.now() + dt.timedelta(seconds=1))
    assert client.get(url, {"month": label}).content == b"%PDF-on-demand"
    AuditReport.objects.all().update(updated_at=timezone.now() + dt.timedelta(seconds=2))
    AuditFactory(entrance=site.entrance, finished_at=_in(month) + dt.timedelta(days=1))
    assert client.get(url, {"month": label}).content == b"%PDF-on-demand"


def test_a_stored_report_goes_only_to_those_who_see_all_it_covers(site, rendered):
    month = _last_month()
    elsewhere = place_factory(organisation=site.organisation)
    AuditFactory(entrance=site.entrance, contractor=site.contractor, finished_at=_in(month))
    AuditFactory(entrance=elsewhere.entrance, contractor=site.contractor, finished_at=_in(month))
    calls, patch = rendered
    patch(b"%PDF-stored")
    assert store_monthly_reports() == 3
    calls.clear()
    patch()
    # The site's agency staff does not see the other residence: the contractor's stored PDF
    # would show it, so theirs is rendered over their own scope.
    url = f"/api/v1/audit-reports/contractors/{site.contractor.pk}/"
    label = f"{month:%Y-%m}"
    assert client_for(site.auditor).get(url, {"month": label}).content == b"%PDF-on-demand"
    assert len(calls) == 1 and calls[0]["contractor"] == site.contractor
    other_staff = AgencyMembershipFactory(agency=elsewhere.agency).user
    own = client_for(other_staff).get(
        f"/api/v1/audit-reports/residences/{elsewhere.residence.pk}/", {"month": label}
    )
    assert own.status_code == 200 and own.content == b"%PDF-stored"
