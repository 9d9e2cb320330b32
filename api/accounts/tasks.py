"""Housekeeping of login material."""

import logging

from celery import shared_task

from .services import login_codes_purge, outstanding_tokens_purge

logger = logging.getLogger(__name__)


@shared_task(name="accounts.purge_expired_credentials", ignore_result=True)
def purge_expired_credentials() -> dict:
    """Delete login codes past their 24-hour window and expired refresh-token rows."""
    report = {"login_codes": login_codes_purge(), "refresh_tokens": outstanding_tokens_purge()}
    logger.info("Purged expired credentials: %s", report)
    return report
