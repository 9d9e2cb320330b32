"""Factories for faults, rule overrides and engine state."""

import datetime as dt

import factory
from django.utils import timezone
from factory.django import DjangoModelFactory

from api.faults.models import Fault, FaultEvent, RuleOverride
from tests.factories.telemetry import DeviceFactory


def _place_of(device) -> dict:
    equipment = device.equipment
    dwelling = equipment.dwelling
    building = dwelling.entrance.building
    return {"dwelling": dwelling, "building": building, "residence": building.residence}


class FaultFactory(DjangoModelFactory):
    """An open, unacknowledged fault on a heating unit in a dwelling."""

    class Meta:
        model = Fault

    class Params:
        place = None  # a tests.factories.estate.Place: the unit goes in its dwelling

    device = factory.LazyAttribute(
        lambda o: DeviceFactory(dwelling=o.place.dwelling) if o.place else DeviceFactory()
    )
    organisation = factory.LazyAttribute(lambda o: o.device.organisation)
    rule = "low_pressure"
    title = "Low heating-circuit pressure"
    category = "boiler"
    severity = "major"
    state = "active_unack"
    raised_at = factory.LazyFunction(lambda: timezone.now() - dt.timedelta(minutes=5))
    values = factory.LazyFunction(lambda: {"ch_pressure": 0.7})
    dwelling = factory.LazyAttribute(lambda o: _place_of(o.device)["dwelling"])
    building = factory.LazyAttribute(lambda o: _place_of(o.device)["building"])
    residence = factory.LazyAttribute(lambda o: _place_of(o.device)["residence"])


class FaultEventFactory(DjangoModelFactory):
    class Meta:
        model = FaultEvent

    fault = factory.SubFactory(FaultFactory)
    kind = "comment"
    at = factory.LazyFunction(timezone.now)
    note = "Vu"


class RuleOverrideFactory(DjangoModelFactory):
    """Low pressure raised after 20 min instead of 30, in a residence."""

    class Meta:
        model = RuleOverride

    organisation = factory.LazyAttribute(
        lambda o: o.residence.organisation if o.residence else None
    )
    rule = "low_pressure"
    device_model = ""
    residence = None
    changes = factory.LazyFunction(lambda: {"persistence_s": 1200.0})
    severity = "major"
    source = "Maker's manual of the residence's boilers"


def seed_fuzz_faults(organisation, manager) -> None:
    """Faults in every state, a comment and a rule override for the API fuzzer."""
    from api.faults import services
    from tests.factories.estate import place_factory

    place = place_factory(organisation=organisation)
    device = DeviceFactory(dwelling=place.dwelling)
    for rule, state in (
        ("low_pressure", "active_unack"),
        ("no_heat", "active_ack"),
        ("cold_dwelling", "cleared_unack"),
        ("co2_high", "cleared"),
    ):
        fault = FaultFactory(device=device, rule=rule, state=state)
        FaultEventFactory(fault=fault)
    services.rule_override_create(
        actor=manager,
        organisation=organisation,
        rule="low_pressure",
        residence=place.residence,
        changes={"persistence_s": 1200.0},
        source="Maker's manual",
    )
