from django.urls import path
from rest_framework.routers import SimpleRouter

from . import apis

router = SimpleRouter()
router.register("notifications", apis.NotificationViewSet, basename="notification")
router.register("push-devices", apis.PushDeviceViewSet, basename="push-device")
router.register("broadcasts", apis.BroadcastViewSet, basename="broadcast")
router.register("door-knocking", apis.DoorKnockingViewSet, basename="door-knocking")
router.register("alerts", apis.TeamAlertViewSet, basename="alert")
router.register("on-call-shifts", apis.OnCallShiftViewSet, basename="on-call-shift")

urlpatterns = [
    path(
        "notification-preferences/",
        apis.PreferenceApi.as_view(),
        name="notification-preferences",
    ),
    path(
        "notifications/delivery-reports/<str:channel>/",
        apis.DeliveryReportApi.as_view(),
        name="notification-delivery-report",
    ),
    path("alerts/ack/<str:token>/", apis.AlertAckApi.as_view(), name="alert-ack"),
    *router.urls,
]
