"""The engine's states move from one row per (device, rule) to one row per device, and back."""

import importlib

import msgspec
import pytest
from django.db import connection
from django.db.migrations.loader import MigrationLoader

from api.faults import engine, services
from api.faults.models import DeviceRuleStates
from tests.factories.telemetry import DeviceFactory

pytestmark = pytest.mark.django_db

migration = importlib.import_module("api.faults.migrations.0003_device_rule_states")


def _apps_with_both_tables():
    """The app registry between the migration's table creation and FaultState's removal."""
    loader = MigrationLoader(connection)
    state = loader.project_state(("faults", "0002_tune_fault_state"))
    create = migration.Migration.operations[0]
    create.state_forwards("faults", state)
    apps = state.apps
    with connection.schema_editor() as editor:  # undone with the test's transaction
        editor.create_model(apps.get_model("faults", "FaultState"))
    return apps


def _state(rule: str, watermark: float | None, **extra) -> str:
    state = engine.RuleState(rule_id=rule, version=1, watermark=watermark, **extra)
    return engine.dump_state(state).decode()


def test_fault_states_are_grouped_per_device_unchanged_and_split_back():
    apps = _apps_with_both_tables()
    FaultState = apps.get_model("faults", "FaultState")
    one, two, three = DeviceFactory(), DeviceFactory(), DeviceFactory()
    lockout = _state("boiler_lockout", 100.5, values={"fault_code": 'E"1 é'}, active=True)
    pressure = _state("low_pressure", 200.25, since=150.0)
    FaultState.objects.bulk_create(
        [
            FaultState(device_id=one.id, rule="boiler_lockout", state=lockout, event_at=100.5),
            FaultState(device_id=one.id, rule="low_pressure", state=pressure, event_at=200.25),
            FaultState(device_id=two.id, rule="battery_low", state=_state("battery_low", None)),
            FaultState(device_id=three.id, rule="low_pressure", state="{not json", event_at=1.0),
        ]
    )
    with connection.schema_editor() as editor:
        migration.move_states(apps, editor)

    loaded = services.states_load([one.id, two.id, three.id])
    states, watermark = loaded[one.id]
    assert watermark == 200.25
    assert {rule: bytes(raw).decode() for rule, raw in states.items()} == {
        "boiler_lockout": lockout,
        "low_pressure": pressure,
    }
    assert loaded[two.id][1] is None and set(loaded[two.id][0]) == {"battery_low"}
    assert loaded[three.id][0] == {}  # the unreadable state is dropped, not the unit's row

    FaultState.objects.all().delete()
    with connection.schema_editor() as editor:
        migration.split_states(apps, editor)
    rows = {
        (row.device_id, row.rule): (row.state, row.event_at) for row in FaultState.objects.all()
    }
    assert rows == {
        (one.id, "boiler_lockout"): (lockout, 100.5),
        (one.id, "low_pressure"): (pressure, 200.25),
        (two.id, "battery_low"): (_state("battery_low", None), None),
    }
    assert DeviceRuleStates.objects.count() == 3
    assert msgspec.json.decode(DeviceRuleStates.objects.get(device=one).states)
