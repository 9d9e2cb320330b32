"""Settling the contractor's disputes, and the organisation's scoring thresholds."""

import uuid

import pytest

from api.audits.models import Audit, AuditEvent, AuditEventKind, ScoringPolicy
from api.tickets.models import Status, Ticket
from tests.conftest import client_for
from tests.factories.accounts import UserFactory
from tests.factories.audits import audit_body
from tests.factories.estate import AgencyMembershipFactory, place_factory

pytestmark = pytest.mark.django_db


def _disputed(site, values, disputed_codes):
    """An audit sent by the site's auditor, countersigned with `disputed_codes` disputed."""
    body = audit_body(site.entrance, site.template, values)
    audit = client_for(site.auditor).post("/api/v1/audits/", body, format="json").json()
    answers = {a["question_code"]: a for a in audit["answers"]}
    disputes = [{"answer": answers[code]["id"], "note": "Fait ce matin"} for code in disputed_codes]
    signed = client_for(site.contractor_user).post(
        f"/api/v1/audits/{audit['id']}/countersign/", {"disputes": disputes}, format="json"
    )
    assert signed.status_code == 200, signed.content
    return signed.json(), answers


def _settle(user, audit_id, answer_id, **body):
    return client_for(user).post(
        f"/api/v1/audits/{audit_id}/items/{answer_id}/settle/", body, format="json"
    )


def test_an_overturned_item_is_rescored_and_its_request_closed(site):
    audit, answers = _disputed(
        site, {"poubelles-bacs": "not_compliant", "hall-sol": "0"}, ["poubelles-bacs", "hall-sol"]
    )
    assert audit["capped"] is True and audit["status"] == "disputed"
    bins = answers["poubelles-bacs"]
    ticket_id = bins["correction"]["ticket"]

    response = _settle(
        site.auditor, audit["id"], bins["id"], outcome="overturned", reason="Bacs lavés à 7h"
    )
    assert response.status_code == 200, response.content
    data = response.json()
    assert data["capped"] is False and float(data["score"]) > float(audit["score"])
    assert data["status"] == "disputed"  # the hall floor is still disputed
    settled = next(a for a in data["answers"] if a["id"] == bins["id"])
    assert settled["value"] == "compliant" and settled["failed"] is False
    assert settled["original_value"] == "not_compliant"
    assert settled["dispute_outcome"] == "overturned" and settled["settled_at"]
    ticket = Ticket.objects.get(pk=ticket_id)
    assert ticket.status == Status.CLOSED
    assert "Bacs lavés à 7h" in ticket.events.filter(to_status=Status.CLOSED).get().note
    event = AuditEvent.objects.get(kind=AuditEventKind.SETTLED)
    assert event.actor == site.auditor and event.data["outcome"] == "overturned"
    assert event.data["ticket_status"] == Status.CLOSED

    hall = answers["hall-sol"]
    upheld = _settle(site.auditor, audit["id"], hall["id"], outcome="upheld", reason="Photo")
    assert upheld.status_code == 200, upheld.content
    data = upheld.json()
    assert data["status"] == "countersigned"  # no disputed item left
    kept = next(a for a in data["answers"] if a["id"] == hall["id"])
    assert kept["value"] == "0" and kept["failed"] is True and kept["dispute_outcome"] == "upheld"
    assert data["score"] == response.json()["score"]
    hall_ticket = Ticket.objects.get(pk=hall["correction"]["ticket"])
    assert hall_ticket.status != Status.CLOSED


def test_a_scale_item_overturned_takes_the_given_value(site):
    audit, answers = _disputed(site, {"hall-sol": "1"}, ["hall-sol"])
    hall = answers["hall-sol"]
    bad = _settle(
        site.auditor, audit["id"], hall["id"], outcome="overturned", reason="x", value="compliant"
    )
    assert bad.status_code == 400  # a scale question takes 2, 3 or na
    good = _settle(
        site.auditor, audit["id"], hall["id"], outcome="overturned", reason="x", value="2"
    )
    assert good.status_code == 200, good.content
    assert good.json()["score"] == "100.00" or float(good.json()["score"]) > float(audit["score"])
    assert good.json()["status"] == "countersigned"


def test_settling_is_refused_outside_the_rules(site):
    audit, answers = _disputed(
        site, {"hall-sol": "0", "hall-murs-miroir": "not_compliant"}, ["hall-sol"]
    )
    hall = answers["hall-sol"]
    manager = UserFactory(organisation=site.organisation, role="manager")
    for user in (site.contractor_user, site.caretaker, site.tenant):
        assert _settle(user, audit["id"], hall["id"], outcome="upheld", reason="r").status_code in (
            403,
            404,
        )
    stranger = AgencyMembershipFactory(agency=place_factory().agency).user
    assert (
        _settle(stranger, audit["id"], hall["id"], outcome="upheld", reason="r").status_code == 404
    )
    assert _settle(manager, audit["id"], hall["id"], outcome="maybe", reason="r").status_code == 400
    assert _settle(manager, audit["id"], hall["id"], outcome="upheld", reason="").status_code == 400
    missing = _settle(manager, audit["id"], uuid.uuid4(), outcome="upheld", reason="r")
    assert missing.status_code == 404
    assert (
        _settle(manager, audit["id"], "not-a-uuid", outcome="upheld", reason="r").status_code == 404
    )
    undisputed = answers["hall-murs-miroir"]["id"]
    assert (
        _settle(manager, audit["id"], undisputed, outcome="upheld", reason="r").status_code == 409
    )
    assert (
        _settle(manager, audit["id"], hall["id"], outcome="upheld", reason="r").status_code == 200
    )
    again = _settle(manager, audit["id"], hall["id"], outcome="overturned", reason="r")
    assert again.status_code == 409
    assert Audit.objects.get(pk=audit["id"]).status == "countersigned"


def test_a_shared_request_stays_open_when_another_failure_needs_it(site):
    # Two audits failing the same item join one request; overturning one keeps it open.
    first, first_answers = _disputed(site, {"hall-sol": "0"}, ["hall-sol"])
    _disputed(site, {"hall-sol": "0"}, [])
    hall = first_answers["hall-sol"]
    response = _settle(site.auditor, first["id"], hall["id"], outcome="overturned", reason="r")
    assert response.status_code == 200
    assert Ticket.objects.get(pk=hall["correction"]["ticket"]).status != Status.CLOSED
    assert AuditEvent.objects.get(kind=AuditEventKind.SETTLED).data["ticket_kept"] is True


# --- scoring policy -----------------------------------------------------------------------------

POLICY = "/api/v1/audit-scoring-policy/"


def test_a_manager_changes_the_thresholds_and_the_change_is_recorded(site):
    manager = UserFactory(organisation=site.organisation, role="manager")
    client = client_for(manager)
    default = client.get(POLICY)
    assert default.status_code == 200
    assert default.json()["penalty_below"] == "70.00" and default.json()["version"] == 1
    assert default.json()["updated_at"] is None
    changed = client.patch(POLICY, {"penalty_below": "65", "critical_cap": "40"}, format="json")
    assert changed.status_code == 200, changed.content
    data = changed.json()
    assert data["penalty_below"] == "65.00" and data["critical_cap"] == "40.00"
    assert data["bonus_from"] == "90.00" and data["version"] == 2
    assert data["updated_by"] == str(manager.pk) and data["updated_at"]
    event = AuditEvent.objects.get(kind=AuditEventKind.POLICY_CHANGED)
    assert event.actor == manager and event.data["before"]["penalty_below"] == "70.00"
    assert event.data["after"]["critical_cap"] == "40.00"
    # The new cap applies to the next audit.
    body = audit_body(site.entrance, site.template, {"poubelles-bacs": "not_compliant"})
    audit = client_for(site.auditor).post("/api/v1/audits/", body, format="json").json()
    assert audit["score"] == "40.00"
    # Another organisation is untouched.
    other = UserFactory(organisation=place_factory().organisation, role="manager")
    assert client_for(other).get(POLICY).json()["penalty_below"] == "70.00"
    # Sending the same values again changes nothing.
    client.patch(POLICY, {"penalty_below": "65"}, format="json")
    assert ScoringPolicy.objects.get(organisation=site.organisation).version == 2


def test_the_thresholds_are_validated_and_only_managers_change_them(site):
    manager = UserFactory(organisation=site.organisation, role="manager")
    client = client_for(manager)
    for body in (
        {"penalty_below": "-1"},
        {"bonus_from": "100.5"},
        {"critical_cap": "1e9"},
        {"penalty_below": "95"},  # above the bonus threshold
        {"penalty_below": "80", "bonus_from": "80"},
        {"penalty_below": "abc"},
    ):
        assert client.patch(POLICY, body, format="json").status_code == 400, body
    assert not ScoringPolicy.objects.exists()
    assert client_for(site.auditor).get(POLICY).status_code == 200
    assert client_for(site.contractor_user).get(POLICY).status_code == 200
    for user in (site.auditor, site.contractor_user, site.caretaker, site.tenant):
        assert (
            client_for(user).patch(POLICY, {"bonus_from": "95"}, format="json").status_code == 403
        )
    assert client_for(site.tenant).get(POLICY).status_code == 403


def test_a_change_that_changes_nothing_stores_nothing(site):
    from api.audits import services

    manager = UserFactory(organisation=site.organisation, role="manager")
    assert client_for(manager).patch(POLICY, {}, format="json").status_code == 200
    assert (
        client_for(manager).patch(POLICY, {"bonus_from": "90"}, format="json").json()["version"]
        == 1
    )
    assert not ScoringPolicy.objects.exists()
    with pytest.raises(services.ServiceError):
        services.scoring_policy_update(actor=manager, critical_cap="abc")
    with pytest.raises(services.ServiceError):
        services.scoring_policy_update(actor=manager, nope=1)
