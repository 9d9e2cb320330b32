from django.urls import path

from . import apis

urlpatterns = [
    path("devices/", apis.DeviceListCreateApi.as_view(), name="device-list"),
    path("devices/<str:device_id>/", apis.DeviceDetailApi.as_view(), name="device-detail"),
    path("devices/<str:device_id>/revoke", apis.DeviceRevokeApi.as_view(), name="device-revoke"),
    path("devices/<str:device_id>/series", apis.DeviceSeriesApi.as_view(), name="device-series"),
    path(
        "devices/<str:device_id>/events/", apis.DeviceEventListApi.as_view(), name="device-events"
    ),
    path("my-home/readings", apis.MyHomeReadingsApi.as_view(), name="my-home-readings"),
    path("quarantine/", apis.QuarantineListApi.as_view(), name="quarantine-list"),
]
