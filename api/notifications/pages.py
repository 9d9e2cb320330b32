"""The page a technician opens from an alert's SMS or e-mail to acknowledge it (no login:
the signed link is the credential; a GET only shows, the button POSTs)."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from api.core.exceptions import ServiceError

from . import services


@require_http_methods(["GET", "POST"])
def alert_ack_page(request: HttpRequest, token: str) -> HttpResponse:
    """Show the alert and an "I take it" button; acknowledge on POST."""
    try:
        alert, user = services.alert_from_token(token)
    except ServiceError as error:
        return render(request, "notifications/ack.html", {"error": error.message}, status=400)
    if request.method == "POST":
        alert = services.alert_acknowledge(alert=alert, user=user, via="link")
    return render(
        request,
        "notifications/ack.html",
        {"alert": alert, "user": user, "mine": alert.acknowledged_by_id == user.pk},
    )
