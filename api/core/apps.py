from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "api.core"
    label = "core"
    verbose_name = "Palier"

    def ready(self) -> None:
        from api.core import redaction

        # Every log record of the process is cleaned of tokens, codes and secrets.
        redaction.install()
