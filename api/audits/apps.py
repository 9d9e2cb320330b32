from django.apps import AppConfig


class AuditsConfig(AppConfig):
    """Cleanliness audits of common areas: questionnaires, rounds, scores, corrective work."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "api.audits"
    label = "audits"
