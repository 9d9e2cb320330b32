"""Health endpoints for load balancers and orchestrators."""

from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from .health import readiness

_Check = inline_serializer(
    "DependencyCheck",
    {
        "ok": serializers.BooleanField(),
        "detail": serializers.CharField(),
        "ms": serializers.FloatField(),
    },
)


class HealthApi(APIView):
    """Liveness: the process answers."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        tags=["health"],
        responses=inline_serializer("Health", {"status": serializers.CharField()}),
    )
    def get(self, request):
        return Response({"status": "ok"})


class ReadyApi(APIView):
    """Readiness: the database, the task broker and the MQTT broker are reachable."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        tags=["health"],
        responses={
            200: inline_serializer(
                "Readiness",
                {
                    "ready": serializers.BooleanField(),
                    "checks": serializers.DictField(child=_Check),
                    "worker_heartbeat": serializers.DateTimeField(allow_null=True),
                },
            ),
            503: OpenApiResponse(description="A dependency is unreachable; same body."),
        },
    )
    def get(self, request):
        report = readiness()
        return Response(report, status=200 if report["ready"] else 503)
