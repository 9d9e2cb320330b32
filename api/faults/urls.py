"""Routes of the faults app, under /api/v1/."""

from django.urls import path

from . import apis

urlpatterns = [
    path("faults/", apis.FaultListApi.as_view(), name="fault-list"),
    path("faults/metrics/", apis.FaultMetricsApi.as_view(), name="fault-metrics"),
    path("faults/<uuid:pk>/", apis.FaultDetailApi.as_view(), name="fault-detail"),
    path(
        "faults/<uuid:pk>/acknowledge/",
        apis.FaultAcknowledgeApi.as_view(),
        name="fault-acknowledge",
    ),
    path("faults/<uuid:pk>/shelve/", apis.FaultShelveApi.as_view(), name="fault-shelve"),
    path("faults/<uuid:pk>/unshelve/", apis.FaultUnshelveApi.as_view(), name="fault-unshelve"),
    path(
        "faults/<uuid:pk>/out-of-service/",
        apis.FaultOutOfServiceApi.as_view(),
        name="fault-out-of-service",
    ),
    path(
        "faults/<uuid:pk>/back-in-service/",
        apis.FaultBackInServiceApi.as_view(),
        name="fault-back-in-service",
    ),
    path("faults/<uuid:pk>/comments/", apis.FaultCommentsApi.as_view(), name="fault-comments"),
    path("faults/<uuid:pk>/readings/", apis.FaultReadingsApi.as_view(), name="fault-readings"),
    path(
        "residences/<uuid:pk>/device-board/",
        apis.DeviceBoardApi.as_view(),
        name="residence-device-board",
    ),
    path("fault-calendar/", apis.FaultCalendarApi.as_view(), name="fault-calendar"),
    path("fault-rules/", apis.RuleOverrideListCreateApi.as_view(), name="fault-rule-list"),
    path("fault-rules/<uuid:pk>/", apis.RuleOverrideDetailApi.as_view(), name="fault-rule-detail"),
    path(
        "fault-rules/<uuid:pk>/versions/",
        apis.RuleOverrideVersionsApi.as_view(),
        name="fault-rule-versions",
    ),
]
