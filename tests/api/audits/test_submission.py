"""Audits from the field: idempotent submission, scores, corrective requests, photos, signing."""

import datetime as dt
import io
import uuid

import pytest
from django.utils import timezone
from PIL import Image

from api.audits.models import Audit, AuditAnswer, AuditPhoto, AuditTemplate, TemplateQuestion
from api.tickets import services as tickets
from api.tickets.models import Source, Status, Ticket, TicketPhoto
from tests.conftest import client_for
from tests.factories.audits import audit_body

pytestmark = pytest.mark.django_db


def _jpeg() -> io.BytesIO:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), (120, 80, 40)).save(buffer, format="JPEG")
    buffer.seek(0)
    buffer.name = "p.jpg"
    return buffer


def _submit(site, values=None, key=None, **extra):
    client = client_for(site.auditor)
    body = audit_body(site.entrance, site.template, values, **extra)
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return client, body, client.post("/api/v1/audits/", body, format="json", **headers)


def test_a_clean_entrance_scores_100_and_opens_nothing(site):
    _, _, response = _submit(site)
    assert response.status_code == 201, response.content
    data = response.json()
    assert data["score"] == "100.00" and data["capped"] is False
    assert data["template_version"] == 1
    assert data["contractor"] == str(site.contractor.pk)
    assert len(data["answers"]) == 40
    assert data["area_scores"]["hall"]["score"] == "100.00"
    assert not Ticket.objects.filter(source=Source.AUDIT).exists()


def test_replays_create_nothing(site):
    client, body, first = _submit(site, {"hall-sol": "0"}, key="k-1")
    assert first.status_code == 201
    counts = (Audit.objects.count(), AuditAnswer.objects.count(), Ticket.objects.count())
    again = client.post("/api/v1/audits/", body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert again.status_code == 201 and again["Idempotent-Replayed"] == "true"
    # A resend under a new key (the phone lost its key) is recognised by the audit's own id.
    other = client.post("/api/v1/audits/", body, format="json", HTTP_IDEMPOTENCY_KEY="k-2")
    assert other.status_code == 200
    assert other.json()["id"] == first.json()["id"] == body["id"]
    assert (Audit.objects.count(), AuditAnswer.objects.count(), Ticket.objects.count()) == counts


def test_someone_else_cannot_reuse_an_audit_id(site):
    _, body, _ = _submit(site)
    from tests.factories.estate import AgencyMembershipFactory

    colleague = AgencyMembershipFactory(agency=site.place.agency).user
    response = client_for(colleague).post("/api/v1/audits/", body, format="json")
    assert response.status_code == 409


def test_a_failed_critical_item_caps_the_score(site):
    _, _, response = _submit(site, {"poubelles-bacs": "not_compliant"})
    data = response.json()
    assert data["capped"] is True
    assert data["score"] == "50.00" and float(data["raw_score"]) > 90


def test_non_compliant_items_open_routed_requests(site):
    _, _, response = _submit(site, {"hall-sol": "1", "poubelles-bacs": "not_compliant"})
    answers = {a["question_code"]: a for a in response.json()["answers"]}
    hall = Ticket.objects.get(pk=answers["hall-sol"]["correction"]["ticket"])
    assert hall.source == Source.AUDIT and hall.category.code == "proprete-hall"
    assert hall.entrance_id == site.entrance.pk
    assert hall.assigned_contractor_id == site.contractor.pk  # the cleaning contractor's item
    assert hall.resolve_due_at is not None
    bins = Ticket.objects.get(pk=answers["poubelles-bacs"]["correction"]["ticket"])
    assert bins.priority == "urgent"  # critical: the continuous clock
    assert bins.assigned_contractor_id is None  # the caretaker's item
    assert response.json()["corrections"] == {"opened_or_joined": 2, "closed": 0}


def test_a_second_failure_joins_the_open_request(site):
    _, _, first = _submit(site, {"hall-sol": "1"})
    _, _, second = _submit(site, {"hall-sol": "0"})
    ticket_ids = {
        a["correction"]["ticket"]
        for r in (first, second)
        for a in r.json()["answers"]
        if a["question_code"] == "hall-sol"
    }
    assert len(ticket_ids) == 1
    assert Ticket.objects.filter(source=Source.AUDIT).count() == 1


def test_a_re_inspection_verifies_and_closes_the_correction(site):
    _, _, first = _submit(site, {"hall-sol": "1"})
    answer = next(a for a in first.json()["answers"] if a["question_code"] == "hall-sol")
    ticket = Ticket.objects.get(pk=answer["correction"]["ticket"])
    tickets.ticket_transition(ticket=ticket, actor=site.auditor, to_status=Status.RESOLVED)
    _, _, second = _submit(site)
    ticket.refresh_from_db()
    assert ticket.status == Status.CLOSED
    verified = AuditAnswer.objects.get(pk=answer["id"])
    assert verified.verified_by_id == uuid.UUID(second.json()["id"])
    detail = client_for(site.auditor).get(f"/api/v1/audits/{first.json()['id']}/").json()
    hall = next(a for a in detail["answers"] if a["question_code"] == "hall-sol")
    assert hall["correction"]["closed"] is True and hall["correction"]["verified_at"]
    assert detail["corrections"] == {"opened_or_joined": 1, "closed": 1}


def test_device_clock_skew_is_corrected_within_bounds(site):
    now = timezone.now()
    ahead = (now + dt.timedelta(hours=2)).isoformat()
    _, _, response = _submit(
        site,
        device_sent_at=ahead,
        started_at=(now + dt.timedelta(hours=1, minutes=30)).isoformat(),
        finished_at=(now + dt.timedelta(hours=1, minutes=55)).isoformat(),
    )
    assert response.status_code == 201, response.content
    audit = Audit.objects.get(pk=response.json()["id"])
    assert 7190 <= audit.clock_skew_seconds <= 7210
    assert audit.finished_at <= timezone.now()
    assert audit.device_finished_at > audit.finished_at
    _, _, refused = _submit(site, device_sent_at=(now + dt.timedelta(hours=10)).isoformat())
    assert refused.status_code == 400 and refused.json()["code"] == "clock_skew"
    _, _, future = _submit(site, finished_at=(now + dt.timedelta(hours=1)).isoformat())
    assert future.status_code == 400


def test_bad_answers_are_refused(site):
    client = client_for(site.auditor)
    body = audit_body(site.entrance, site.template)
    scale = next(a for a in body["answers"])
    scale["value"] = "compliant" if scale["value"] == "3" else "2"
    assert client.post("/api/v1/audits/", body, format="json").status_code == 400
    body = audit_body(site.entrance, site.template)
    body["answers"].append(dict(body["answers"][0]))
    assert client.post("/api/v1/audits/", body, format="json").status_code == 400


def test_photos_resume_and_reach_the_request(site):
    client, _, response = _submit(site, {"hall-sol": "0"})
    audit = response.json()
    answer = next(a for a in audit["answers"] if a["question_code"] == "hall-sol")
    assert answer["id"] in audit["photos_missing"]
    photo_id = str(uuid.uuid4())
    url = f"/api/v1/audits/{audit['id']}/photos/"
    upload = {"id": photo_id, "answer": answer["id"], "image": _jpeg()}
    first = client.post(url, upload, format="multipart")
    assert first.status_code == 201, first.content
    upload["image"] = _jpeg()
    again = client.post(url, upload, format="multipart")
    assert again.status_code == 200
    assert AuditPhoto.objects.count() == 1
    assert TicketPhoto.objects.filter(ticket_id=answer["correction"]["ticket"]).count() == 1
    detail = client.get(f"/api/v1/audits/{audit['id']}/").json()
    assert detail["photos_missing"] == []
    image = client.get(f"/api/v1/audits/{audit['id']}/photos/{photo_id}/")
    assert image.status_code == 200 and image["Content-Type"] == "image/jpeg"
    bad = client.post(
        url, {"answer": answer["id"], "image": io.BytesIO(b"nope")}, format="multipart"
    )
    assert bad.status_code == 400


def test_the_contractor_countersigns_and_disputes(site):
    _, _, response = _submit(site, {"hall-sol": "0"})
    audit = response.json()
    answer = next(a for a in audit["answers"] if a["question_code"] == "hall-sol")
    contractor = client_for(site.contractor_user)
    assert contractor.get(f"/api/v1/audits/{audit['id']}/").status_code == 200
    url = f"/api/v1/audits/{audit['id']}/countersign/"
    assert client_for(site.auditor).post(url, {}, format="json").status_code == 403
    signed = contractor.post(
        url, {"disputes": [{"answer": answer["id"], "note": "Lavé à 8h"}]}, format="json"
    )
    assert signed.status_code == 200, signed.content
    data = signed.json()
    assert data["status"] == "disputed"
    assert next(a for a in data["answers"] if a["id"] == answer["id"])["disputed"] is True
    assert contractor.post(url, {}, format="json").status_code == 409


def test_old_audits_keep_their_questionnaire_version(site):
    _, _, first = _submit(site)
    v1 = site.template
    v2 = AuditTemplate.objects.create(
        organisation=site.organisation, code=v1.code, version=2, name=v1.name
    )
    section = v2.sections.create(area_kind="hall", title="Hall", position=0)
    TemplateQuestion.objects.create(
        template=v2,
        section=section,
        code="hall-sol",
        text="Sol du hall",
        answer_type="compliance",
        responsible="cleaning_contractor",
    )
    client = client_for(site.auditor)
    body = audit_body(site.entrance, v2)
    second = client.post("/api/v1/audits/", body, format="json")
    assert second.status_code == 201
    assert second.json()["template_version"] == 2
    assert client.get(f"/api/v1/audits/{first.json()['id']}/").json()["template_version"] == 1
    listed = client.get("/api/v1/audit-templates/").json()["results"]
    assert {(t["version"], t["standard"]) for t in listed} >= {(1, True), (2, False)}


def test_caretakers_read_but_do_not_audit_and_tenants_see_nothing(site):
    _, body, response = _submit(site)
    caretaker = client_for(site.caretaker)
    assert caretaker.get(f"/api/v1/audits/{response.json()['id']}/").status_code == 200
    body["id"] = str(uuid.uuid4())
    assert caretaker.post("/api/v1/audits/", body, format="json").status_code == 403
    assert client_for(site.tenant).get("/api/v1/audits/").status_code == 403


def test_a_manager_publishes_a_new_version(site):
    from tests.factories.accounts import UserFactory

    manager = UserFactory(organisation=site.organisation, role="manager")
    section = {
        "area_kind": "hall",
        "title": "Hall",
        "questions": [
            {
                "code": "hall-sol",
                "text": "Sol du hall propre",
                "answer_type": "scale",
                "weight": 3,
                "responsible": "cleaning_contractor",
                "ticket_category": "proprete-hall",
            }
        ],
    }
    url = f"/api/v1/audit-templates/{site.template.pk}/revise/"
    assert (
        client_for(site.auditor).post(url, {"sections": [section]}, format="json").status_code
        == 403
    )
    response = client_for(manager).post(url, {"sections": [section]}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["version"] == 2 and len(response.json()["sections"]) == 1
    revised = AuditTemplate.objects.get(pk=response.json()["id"])
    body = audit_body(site.entrance, revised)  # no template named: the current one
    audit = client_for(site.auditor).post("/api/v1/audits/", body, format="json")
    assert audit.json()["template_version"] == 2
    site.template.refresh_from_db()
    assert site.template.is_current  # the standard one stays current for other landlords
