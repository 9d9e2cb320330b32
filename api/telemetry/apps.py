from django.apps import AppConfig


class TelemetryConfig(AppConfig):
    name = "api.telemetry"
    label = "telemetry"
    verbose_name = "Connected units"
