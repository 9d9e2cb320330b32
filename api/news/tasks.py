"""Celery tasks of the news app."""

from celery import shared_task

from . import services


@shared_task(name="news.publish_due", ignore_result=True)
def publish_due() -> int:
    """Publish scheduled posts whose time has come, telling their households."""
    return services.posts_publish_due()
