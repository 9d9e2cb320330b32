"""Seed Palier's standard tree of request categories (idempotent upsert by code)."""

from django.db import migrations


def seed(apps, schema_editor):
    from api.tickets.category_tree import seed_standard_categories

    seed_standard_categories(
        apps.get_model("tickets", "Category"), apps.get_model("tickets", "CategoryQuestion")
    )


class Migration(migrations.Migration):
    dependencies = [("tickets", "0001_initial")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
