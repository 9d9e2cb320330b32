from django.db import migrations


def tune_state_table(apps, schema_editor):
    """Room in every page, so that the engine's per-batch state updates stay HOT (no index
    writes), and frequent vacuuming of the dead versions they leave."""
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            "ALTER TABLE faults_faultstate SET (fillfactor = 50, "
            "autovacuum_vacuum_scale_factor = 0.02)"
        )


class Migration(migrations.Migration):
    dependencies = [("faults", "0001_initial")]

    operations = [migrations.RunPython(tune_state_table, migrations.RunPython.noop)]
