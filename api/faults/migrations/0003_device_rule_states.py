"""The engine's state moves from one row per (device, rule) to one row per device.

Saving and reading about ten rows per unit in every batch was the main cost of ingest with
rules; one row per unit, holding each rule's state under the rule's id, is written and read
once. Existing states are carried over unchanged.
"""

import django.db.models.deletion
import msgspec
from django.db import DatabaseError, migrations, models, transaction

CHUNK = 500


def _document(states: dict[str, str]) -> str:
    # Each state is kept as the engine wrote it (embedded JSON, not re-encoded).
    return msgspec.json.encode(
        {rule: msgspec.Raw(text.encode()) for rule, text in sorted(states.items())}
    ).decode()


def _valid(text: str) -> bool:
    try:
        msgspec.json.decode(text)
    except (msgspec.DecodeError, TypeError):
        return False
    return True


def move_states(apps, schema_editor):
    """FaultState rows, grouped by device, into DeviceRuleStates (both databases)."""
    FaultState = apps.get_model("faults", "FaultState")
    DeviceRuleStates = apps.get_model("faults", "DeviceRuleStates")
    db = schema_editor.connection.alias
    rows = (
        FaultState.objects.using(db)
        .order_by("device_id", "rule")
        .values_list("device_id", "rule", "state", "event_at")
    )
    pending: list = []
    current, states, watermark = None, {}, None

    def flush_device():
        if current is not None:
            pending.append(
                DeviceRuleStates(device_id=current, states=_document(states), event_at=watermark)
            )

    for device_id, rule, state, event_at in rows.iterator(chunk_size=2000):
        if device_id != current:
            flush_device()
            if len(pending) >= CHUNK:
                DeviceRuleStates.objects.using(db).bulk_create(pending)
                pending = []
            current, states, watermark = device_id, {}, None
        if not _valid(state):
            continue  # a broken state would make the unit's whole row unreadable
        states[rule] = state
        if event_at is not None and (watermark is None or event_at > watermark):
            watermark = event_at
    flush_device()
    if pending:
        DeviceRuleStates.objects.using(db).bulk_create(pending)


def split_states(apps, schema_editor):
    """Back to one FaultState row per (device, rule)."""
    FaultState = apps.get_model("faults", "FaultState")
    DeviceRuleStates = apps.get_model("faults", "DeviceRuleStates")
    db = schema_editor.connection.alias
    decoder = msgspec.json.Decoder(dict[str, msgspec.Raw])
    pending: list = []
    for row in DeviceRuleStates.objects.using(db).iterator(chunk_size=500):
        for rule, raw in decoder.decode(row.states).items():
            text = bytes(raw).decode()
            watermark = msgspec.json.decode(text).get("watermark")
            pending.append(
                FaultState(device_id=row.device_id, rule=rule, state=text, event_at=watermark)
            )
        if len(pending) >= 2000:
            FaultState.objects.using(db).bulk_create(pending)
            pending = []
    if pending:
        FaultState.objects.using(db).bulk_create(pending)


def tune_state_table(apps, schema_editor):
    """Room in every page, so that the per-batch rewrites of a unit's row stay HOT (no index
    writes), frequent vacuuming of the dead versions they leave, and lz4 for the unit's
    document (about 3 kB, so compressed on every write: lz4 costs less than the default pglz
    there and keeps the row inline)."""
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(
        "ALTER TABLE faults_devicerulestates SET (fillfactor = 50, "
        "autovacuum_vacuum_scale_factor = 0.02)"
    )
    try:
        with transaction.atomic(using=schema_editor.connection.alias):
            schema_editor.execute(
                "ALTER TABLE faults_devicerulestates ALTER COLUMN states SET COMPRESSION lz4"
            )
    except DatabaseError:
        pass  # a server built without lz4 keeps pglz


class Migration(migrations.Migration):
    dependencies = [
        ("faults", "0002_tune_fault_state"),
        ("telemetry", "0001_initial"),
    ]

    operations = [
        migrations.CreateModel(
            name="DeviceRuleStates",
            fields=[
                (
                    "device",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="rule_states",
                        serialize=False,
                        to="telemetry.device",
                    ),
                ),
                (
                    "states",
                    models.TextField(
                        default="{}", help_text="{rule id: engine.RuleState} as JSON."
                    ),
                ),
                (
                    "event_at",
                    models.FloatField(
                        blank=True,
                        help_text="Watermark (latest of the rules'), unix seconds.",
                        null=True,
                    ),
                ),
                ("updated_at", models.DateTimeField(auto_now=True)),
            ],
            options={"verbose_name_plural": "device rule states"},
        ),
        migrations.RunPython(tune_state_table, migrations.RunPython.noop),
        migrations.RunPython(move_states, split_states),
        migrations.DeleteModel(name="FaultState"),
    ]
