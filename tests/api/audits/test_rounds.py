"""Rounds: reproducible draws that cover every entrance in a cycle; today's round on the phone."""

import datetime as dt

import pytest
from django.utils import timezone

from api.audits import services
from api.audits.models import AuditRound
from tests.conftest import client_for
from tests.factories.audits import AuditFactory, audit_body
from tests.factories.estate import BuildingFactory, EntranceFactory

pytestmark = pytest.mark.django_db


def _entrances(site, count):
    building = BuildingFactory(residence=site.residence)
    return [site.entrance] + [EntranceFactory(building=building) for _ in range(count - 1)]


def _plan(site, **extra):
    today = timezone.localdate()
    return services.round_plan(
        actor=site.auditor,
        residence=site.residence,
        period_start=today,
        period_end=today + dt.timedelta(days=6),
        **extra,
    )


def test_rounds_cover_every_entrance_within_a_cycle(site):
    entrances = _entrances(site, 7)
    seen = set()
    rounds = []
    # 7 entrances, 3 a round, at least 2 new each: the cycle ends by the fourth round.
    for _ in range(4):
        round = _plan(site)
        rounds.append(round)
        seen |= set(round.targets.values_list("entrance_id", flat=True))
        if seen == {e.pk for e in entrances}:
            break
    assert seen == {e.pk for e in entrances}
    assert {r.cycle for r in rounds} == {1}
    assert _plan(site).cycle == 2


def test_a_round_is_reproducible_from_its_seed(site):
    _entrances(site, 9)
    round = _plan(site, seed=12345)
    replay = services.round_replay(round)
    assert [e for e, _ in replay.picks] == [
        str(e) for e in round.targets.order_by("position").values_list("entrance_id", flat=True)
    ]
    assert round.selection["picks"] == [e for e, _ in replay.picks]


def test_recently_failed_entrances_come_back_sooner(site):
    entrances = _entrances(site, 9)
    first = _plan(site, seed=1)
    drawn = set(first.targets.values_list("entrance_id", flat=True))
    failed = next(e for e in entrances if e.pk in drawn)
    AuditFactory(entrance=failed, score=40, round=first)
    second = _plan(site, seed=2)
    reasons = {t.entrance_id: t.reason for t in second.targets.all()}
    assert reasons.get(failed.pk) == "recent_failure"


def test_plan_and_walk_today_s_round_through_the_api(site):
    _entrances(site, 2)
    client = client_for(site.auditor)
    today = timezone.localdate()
    response = client.post(
        "/api/v1/audit-rounds/",
        {
            "residence": str(site.residence.pk),
            "period_start": str(today),
            "period_end": str(today + dt.timedelta(days=3)),
            "assignee": str(site.auditor.pk),
            "seed": 99,
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    round = response.json()
    assert round["seed"] == 99 and len(round["targets"]) == 2
    phone = client.get("/api/v1/audit-rounds/today/").json()
    assert [r["id"] for r in phone["rounds"]] == [round["id"]]
    assert len(phone["template"]["sections"]) == 7
    target = AuditRound.objects.get(pk=round["id"]).targets.first().entrance
    body = audit_body(target, round=round["id"])
    assert client.post("/api/v1/audits/", body, format="json").status_code == 201
    detail = client.get(f"/api/v1/audit-rounds/{round['id']}/").json()
    assert detail["status"] == "in_progress"
    assert [t["audited"] for t in detail["targets"]].count(True) == 1
    assert client.post(f"/api/v1/audit-rounds/{round['id']}/cancel/").status_code == 409
    fresh = _plan(site)
    cancelled = client.post(f"/api/v1/audit-rounds/{fresh.pk}/cancel/")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"


def test_round_input_is_checked(site):
    client = client_for(site.auditor)
    today = timezone.localdate()
    body = {
        "residence": str(site.residence.pk),
        "period_start": str(today),
        "period_end": str(today - dt.timedelta(days=1)),
    }
    assert client.post("/api/v1/audit-rounds/", body, format="json").status_code == 400
    body["period_end"] = "0001-01-01"
    assert client.post("/api/v1/audit-rounds/", body, format="json").status_code == 400
    assert client_for(site.caretaker).post("/api/v1/audit-rounds/", body).status_code == 403
