"""Seed the standard cleanliness questionnaire and the request categories its failures open."""

from django.db import migrations


def seed(apps, schema_editor):
    from api.audits.standard_template import seed_cleanliness_categories, seed_standard_template

    seed_standard_template(
        apps.get_model("audits", "AuditTemplate"),
        apps.get_model("audits", "TemplateSection"),
        apps.get_model("audits", "TemplateQuestion"),
    )
    seed_cleanliness_categories(apps.get_model("tickets", "Category"))


class Migration(migrations.Migration):
    dependencies = [("audits", "0001_initial"), ("tickets", "0002_standard_categories")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
