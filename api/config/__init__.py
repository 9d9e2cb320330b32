"""Project configuration: settings, URLs, WSGI and the Celery app binding."""

from workers.celery_app import app as celery_app

__all__ = ["celery_app"]
