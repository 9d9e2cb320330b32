from django.urls import path
from rest_framework.routers import SimpleRouter

from . import apis

router = SimpleRouter()
router.register("tickets", apis.TicketViewSet, basename="ticket")
router.register("appointments", apis.AppointmentViewSet, basename="appointment")
router.register("categories", apis.CategoryViewSet, basename="category")
router.register("incidents", apis.IncidentViewSet, basename="incident")

urlpatterns = [
    path("sync/", apis.SyncApi.as_view(), name="sync"),
    path("kpis/", apis.KpiApi.as_view(), name="kpis"),
    path("sms/inbound/", apis.InboundSmsApi.as_view(), name="sms-inbound"),
    *router.urls,
]
