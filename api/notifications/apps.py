from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "api.notifications"
    label = "notifications"
    verbose_name = "Notifications"

    def ready(self) -> None:
        # The e-mail provider's delivery reports arrive as django-anymail's tracking signal.
        from . import webhooks  # noqa: F401
