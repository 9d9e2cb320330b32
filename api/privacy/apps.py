from django.apps import AppConfig


class PrivacyConfig(AppConfig):
    """Personal data: its register, retention, consent for in-home data, and people's rights."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "api.privacy"
    label = "privacy"
