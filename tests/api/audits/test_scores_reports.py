"""Scores, rankings, trends, the monthly PDF, the CSV export and the tenants' survey."""

import datetime as dt
import io

import pytest
from django.utils import timezone
from pypdf import PdfReader

from api.audits import services
from api.audits.models import SurveyResponse
from tests.conftest import client_for
from tests.factories.audits import AuditFactory, SurveyResponseFactory, audit_body
from tests.factories.estate import place_factory

pytestmark = pytest.mark.django_db


def test_scores_rank_residences_and_contractors(site):
    other = place_factory(agency=site.place.agency)
    AuditFactory(entrance=site.entrance, score=95, contractor=site.contractor)
    AuditFactory(entrance=site.entrance, score=85, contractor=site.contractor)
    AuditFactory(entrance=other.entrance, score=60)
    client = client_for(site.auditor)
    rows = client.get("/api/v1/audit-scores/").json()["results"]
    assert [(r["label"], r["score"], r["rank"], r["band"]) for r in rows] == [
        (site.residence.name, "90.00", 1, "bonus"),
        (other.residence.name, "60.00", 2, "penalty"),
    ]
    by_contractor = client.get("/api/v1/audit-scores/", {"group": "contractor"}).json()
    assert by_contractor["results"][0]["id"] == str(site.contractor.pk)
    assert client.get("/api/v1/audit-scores/", {"group": "nope"}).status_code == 400


def test_entrance_scores_show_the_tenants_survey_beside(site):
    AuditFactory(entrance=site.entrance, score=70)
    SurveyResponseFactory(entrance=site.entrance, rating=4)
    SurveyResponseFactory(entrance=site.entrance, rating=2)
    rows = client_for(site.auditor).get("/api/v1/audit-scores/", {"group": "entrance"})
    survey = rows.json()["results"][0]["survey"]
    assert survey == {"mean": 3.0, "score": 66.67, "answers": 2}


def test_trends_by_month(site):
    now = timezone.now()
    AuditFactory(entrance=site.entrance, score=50, finished_at=now - dt.timedelta(days=62))
    AuditFactory(entrance=site.entrance, score=90, finished_at=now)
    data = client_for(site.auditor).get(
        "/api/v1/audit-scores/trends/", {"residence": str(site.residence.pk), "months": 3}
    )
    series = data.json()["series"]
    assert len(series) == 3
    assert series[-1]["score"] == "90.00"
    assert sum(point["audits"] for point in series) == 2


def test_the_monthly_pdf_is_a_real_pdf_with_charts(site):
    client = client_for(site.auditor)
    client.post(
        "/api/v1/audits/", audit_body(site.entrance, values={"hall-sol": "0"}), format="json"
    )
    month = timezone.localdate().strftime("%Y-%m")
    listed = client.get("/api/v1/audit-reports/", {"month": month}).json()["results"]
    assert listed[0]["residence"] == str(site.residence.pk)
    response = client.get(listed[0]["pdf"])
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    reader = PdfReader(io.BytesIO(response.content))
    text = "".join(page.extract_text() for page in reader.pages)
    assert site.residence.name in text
    assert "Sol du hall" in text
    assert any(page.images for page in reader.pages)
    contractor = client_for(site.contractor_user).get(
        f"/api/v1/audit-reports/contractors/{site.contractor.pk}/", {"month": month}
    )
    assert contractor.status_code == 200
    assert site.contractor.name in PdfReader(io.BytesIO(contractor.content)).pages[0].extract_text()
    assert client.get(listed[0]["pdf"], {"month": "2026-13"}).status_code == 400


def test_csv_export(site):
    AuditFactory(entrance=site.entrance, score=77)
    response = client_for(site.auditor).get("/api/v1/audit-reports/export/")
    assert response.status_code == 200
    lines = response.content.decode().splitlines()
    assert lines[0].startswith("audit;finished_at;residence")
    assert "77" in lines[1] and site.residence.name in lines[1]


def test_tenants_rate_their_entrance_in_the_app(site):
    client = client_for(site.tenant)
    url = "/api/v1/cleanliness-surveys/"
    first = client.post(url, {"entrance": str(site.entrance.pk), "rating": 2}, format="json")
    assert first.status_code == 201
    again = client.post(url, {"entrance": str(site.entrance.pk), "rating": 4}, format="json")
    assert again.status_code == 200 and again.json()["rating"] == 4
    assert SurveyResponse.objects.count() == 1
    elsewhere = place_factory()
    refused = client.post(url, {"entrance": str(elsewhere.entrance.pk), "rating": 4}, format="json")
    assert refused.status_code == 404
    assert client_for(site.auditor).post(url, {}, format="json").status_code == 403


def test_tenants_rate_through_a_signed_sms_link(site, api_client):
    token = services.survey_token(person=site.tenant, entrance=site.entrance)
    url = f"/api/v1/cleanliness-surveys/sms/{token}/"
    page = api_client.get(url)
    assert page.status_code == 200 and len(page.json()["choices"]) == 4
    answer = api_client.post(url, {"rating": 1}, format="json")
    assert answer.status_code == 201 and answer.json()["channel"] == "sms"
    assert api_client.get(url).json()["answered_this_week"] == 1
    assert api_client.get(f"/api/v1/cleanliness-surveys/sms/{token}x/").status_code == 404
    assert api_client.post(url, {"rating": 9}, format="json").status_code == 400
    audit = AuditFactory(entrance=site.entrance)
    detail = client_for(site.auditor).get(f"/api/v1/audits/{audit.pk}/").json()
    assert detail["tenant_survey"]["answers"] == 1


def test_survey_invitations_go_once_a_week(site):
    from api.notifications.models import Notification

    client = client_for(site.auditor)
    url = "/api/v1/cleanliness-surveys/invite/"
    first = client.post(url, {"entrance": str(site.entrance.pk)}, format="json")
    assert first.status_code == 200 and first.json() == {"sent": 1}
    note = Notification.objects.get(recipient=site.tenant)
    assert "/api/v1/cleanliness-surveys/sms/" in note.body
    assert client.post(url, {"entrance": str(site.entrance.pk)}, format="json").json() == {
        "sent": 0
    }
    assert client_for(site.tenant).post(url, {}, format="json").status_code == 403


def test_the_daily_task_invites_tenants_of_entrances_audited_this_week(site):
    from api.audits.tasks import send_survey_invitations

    AuditFactory(entrance=site.entrance)
    AuditFactory(
        entrance=place_factory().entrance, finished_at=timezone.now() - dt.timedelta(days=9)
    )
    assert send_survey_invitations() == 1
    assert send_survey_invitations() == 0


def test_scores_per_kind_of_area(site):
    client = client_for(site.auditor)
    client.post(
        "/api/v1/audits/",
        audit_body(site.entrance, values={"poubelles-bacs": "not_compliant"}),
        format="json",
    )
    rows = client.get("/api/v1/audit-scores/", {"group": "area"}).json()["results"]
    by_kind = {row["id"]: row for row in rows}
    assert by_kind["hall"]["score"] == "100.00"
    assert by_kind["bin_room"]["rank"] == len(rows)  # capped at 50: the worst
    assert by_kind["bin_room"]["capped_audits"] == 1
    assert by_kind["bin_room"]["label"] == "Bin room"
