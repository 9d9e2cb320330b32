"""The export of everything held about a person: contents, files, signed links, limits."""

import datetime as dt
import json
from urllib.parse import urlparse

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from api.accounts.models import PersonalDataAccess
from api.accounts.services import personal_data_access_record
from api.privacy import selectors, services, tasks
from api.privacy.models import DataExport, ExportStatus
from api.telemetry.models import ReadingHour
from api.tickets.models import TicketEvent
from tests.conftest import client_for
from tests.factories import DelegationFactory, UserFactory, place_factory
from tests.factories.estate import AgencyMembershipFactory
from tests.factories.notifications import NotificationFactory
from tests.factories.privacy import DataExportFactory, ready_export
from tests.factories.telemetry import DeviceFactory
from tests.factories.tickets import TicketFactory

URL = "/api/v1/privacy/export/"


@pytest.fixture
def run_tasks(monkeypatch, django_capture_on_commit_callbacks):
    """Run the export task at commit, in this process."""
    monkeypatch.setattr(
        tasks.build_export, "delay", lambda export_id: tasks.build_export(export_id)
    )

    def post(client, **headers):
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(URL, {}, format="json", **headers)

    return post


@pytest.fixture
def home(db):
    place = place_factory()
    tenant = place.tenant
    caretaker = UserFactory(organisation=place.organisation, role="caretaker", first_name="Paul")
    ticket = TicketFactory(dwelling=place.dwelling, reporter=tenant, description="Fuite WC")
    TicketEvent.objects.create(
        ticket=ticket,
        kind="comment",
        actor=caretaker,
        actor_role="caretaker",
        note="Locataire absent au passage, rappeler le soir.",
        public=False,
    )
    NotificationFactory(recipient=tenant, title="Votre demande", body="Prise en compte.")
    DelegationFactory(grantor=tenant)
    personal_data_access_record(viewer=caretaker, subjects=[tenant], context="people.detail")
    device = DeviceFactory(dwelling=place.dwelling)
    hour = (timezone.now() - dt.timedelta(hours=3)).replace(minute=0, second=0, microsecond=0)
    ReadingHour.objects.create(
        device=device, name=1, hour=hour, vmin=19.0, vmax=21.0, vsum=1200.0, count=60
    )
    return place


def test_person_data_covers_every_kind_of_record(home):
    data = selectors.person_data(home.tenant)
    keys = {section["key"] for section in data["sections"]}
    assert {"tickets.Ticket", "notifications.Notification", "estate.Delegation"} <= keys
    assert data["account"]["phone"] == str(home.tenant.phone)
    assert data["leases"][0]["lease"] == home.lease.reference
    timeline = next(s for s in data["sections"] if s["key"] == "tickets.timeline")
    internal = [row for row in timeline["rows"] if not row["shown_to_tenant"]]
    assert internal and "rappeler le soir" in internal[0]["note"]
    assert data["readings_summary"][0]["measure"] == "room_temp"
    assert data["readings_summary"][0]["mean"] == 20.0
    assert data["access_log"][0]["who"].startswith("Paul ")
    # Secrets never leave: no password hash or token in any section.
    text = json.dumps(data)
    assert home.tenant.password not in text
    assert "password" not in text


def test_records_about_the_home_count_only_during_the_lease(home):
    from api.notifications.models import HouseholdReach
    from tests.factories.notifications import HouseholdReachFactory

    during = HouseholdReachFactory(dwelling=home.dwelling, visit_note="Personne âgée seule")
    before = HouseholdReachFactory(dwelling=home.dwelling, visit_note="Ancien locataire")
    HouseholdReach.objects.filter(pk=before.pk).update(
        created_at=timezone.now() - dt.timedelta(days=800)
    )
    data = selectors.person_data(home.tenant)
    section = next(s for s in data["sections"] if s["key"] == "notifications.HouseholdReach")
    assert [row["id"] for row in section["rows"]] == [str(during.pk)]


def test_generic_walk_reaches_every_app_with_a_key_to_a_person():
    labels = {model._meta.label for model, _ in selectors.walked_models()}
    assert {"tickets.Ticket", "notifications.PushDevice", "documents.RentLedgerLine"} <= labels
    assert "accounts.PersonalDataAccess" not in labels


def test_tenant_exports_and_downloads_with_signed_link(home, run_tasks):
    client = client_for(home.tenant)
    response = run_tasks(client)
    assert response.status_code == 202, response.content
    export_id = response.json()["id"]
    detail = client.get(f"{URL}{export_id}/")
    assert detail.status_code == 200
    body = detail.json()
    assert body["status"] == "ready"
    assert body["sections"]["tickets.Ticket"] == 1
    anonymous = APIClient()
    pdf = anonymous.get(urlparse(body["download"]["pdf"]).path)
    assert pdf.status_code == 200
    assert b"".join(pdf.streaming_content).startswith(b"%PDF")
    raw = anonymous.get(urlparse(body["download"]["json"]).path)
    data = json.loads(b"".join(raw.streaming_content))
    assert data["account"]["id"] == str(home.tenant.pk)
    assert client.get(URL).json()["results"][0]["id"] == export_id


def test_links_refuse_forgery_and_expiry(home, monkeypatch):
    export = ready_export(home.tenant)
    client = APIClient()
    token = services.export_token(export, "pdf")
    assert client.get(f"/privacy/download/{token}").status_code == 200
    assert client.get(f"/privacy/download/{token[:-2]}xx").status_code == 404
    assert client.get("/privacy/download/nonsense").status_code == 404
    monkeypatch.setattr(services, "EXPORT_LINK_LIFETIME", dt.timedelta(seconds=-1))
    assert client.get(f"/privacy/download/{token}").status_code == 410
    monkeypatch.undo()
    export.expires_at = timezone.now() - dt.timedelta(minutes=1)
    export.save()
    assert client.get(f"/privacy/download/{token}").status_code == 410
    services.exports_expire()
    export.refresh_from_db()
    assert export.status == ExportStatus.EXPIRED and not export.pdf_file


def test_exports_are_limited_per_person_per_day(home, monkeypatch):
    monkeypatch.setattr(tasks.build_export, "delay", lambda export_id: None)
    client = client_for(home.tenant)
    for _ in range(services.EXPORTS_PER_DAY):
        assert client.post(URL, {}, format="json").status_code == 202
    refused = client.post(URL, {}, format="json")
    assert refused.status_code == 429
    assert refused.json()["code"] == "export_limit"


def test_another_persons_export_is_a_404(home):
    other = place_factory(residence=home.residence).tenant
    export = DataExportFactory(subject=other)
    client = client_for(home.tenant)
    assert client.get(f"{URL}{export.pk}/").status_code == 404
    assert client.get(f"{URL}not-a-uuid/").status_code == 404
    assert client.get(URL).json()["results"] == []


def test_staff_export_for_a_tenant_is_logged(home, run_tasks):
    staff = AgencyMembershipFactory(agency=home.agency).user
    headers = {
        "HTTP_X_ON_BEHALF_OF": str(home.tenant.pk),
        "HTTP_X_ON_BEHALF_REASON": "Demande au guichet",
    }
    response = run_tasks(client_for(staff), **headers)
    assert response.status_code == 202, response.content
    export = DataExport.objects.get(pk=response.json()["id"])
    assert export.subject == home.tenant and export.requested_by == staff
    assert export.status == ExportStatus.READY
    assert (
        PersonalDataAccess.objects.filter(
            viewer=staff, subject=home.tenant, context="privacy.export"
        ).count()
        == 1
    )


def test_a_delegate_cannot_export_the_grantors_data(home):
    delegate = home.tenant.delegations_given.first().delegate
    response = client_for(delegate).post(
        URL, {}, format="json", HTTP_X_ON_BEHALF_OF=str(home.tenant.pk)
    )
    assert response.status_code == 403


def test_building_twice_is_harmless(home):
    export = DataExportFactory(subject=home.tenant)
    services.export_build(export_id=export.pk)
    first = DataExport.objects.get(pk=export.pk)
    services.export_build(export_id=export.pk)
    again = DataExport.objects.get(pk=export.pk)
    assert first.status == again.status == ExportStatus.READY
    assert first.pdf_file.name == again.pdf_file.name
