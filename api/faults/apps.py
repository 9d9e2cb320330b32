from django.apps import AppConfig


class FaultsConfig(AppConfig):
    """Fault detection: rules over device readings, and the faults they raise."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "api.faults"
    label = "faults"
