"""E-mail providers' delivery reports, received by django-anymail's tracking webhooks.

Anymail authenticates each provider's webhook (ANYMAIL["WEBHOOK_SECRET"] or the provider's
signing key) and sends its `tracking` signal; this receiver records the report on the
delivery whose provider message id it names.
"""

import logging

from anymail.signals import tracking
from django.dispatch import receiver

from api.core.exceptions import ServiceError

from .models import Channel, DeliveryStatus
from .services import delivery_status_record

logger = logging.getLogger(__name__)

STATUSES = {
    "delivered": DeliveryStatus.DELIVERED,
    "bounced": DeliveryStatus.FAILED,
    "rejected": DeliveryStatus.FAILED,
    "failed": DeliveryStatus.FAILED,
    "opened": DeliveryStatus.READ,
    "clicked": DeliveryStatus.READ,
}


@receiver(tracking, dispatch_uid="palier-email-tracking")
def email_tracking(sender, event, esp_name, **kwargs) -> None:
    """Record an e-mail delivered, bounced or opened."""
    status = STATUSES.get(event.event_type)
    if status is None or not event.message_id:
        return
    try:
        delivery_status_record(
            channel=Channel.EMAIL,
            status=status,
            provider_id=str(event.message_id),
            at=event.timestamp,
            error=str(event.description or event.reject_reason or ""),
        )
    except ServiceError:
        logger.info("%s report for an unknown message %s", esp_name, event.message_id)
