import logging

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView, exception_handler as drf_exception_handler

logger = logging.getLogger(__name__)


def exception_handler(exc, context):
    """DRF's handler, but an unexpected error is logged without the request body (patient data)."""
    response = drf_exception_handler(exc, context)
    if response is None:
        view = context.get("view")
        logger.error("unhandled error in %s: %s", type(view).__name__ if view else "?", type(exc).__name__)
    return response


class PingView(APIView):
    """The cheapest authenticated endpoint: a liveness check for integrators and the benchmark baseline."""

    @extend_schema(operation_id="ping", responses=inline_serializer("Ping", {"status": serializers.CharField()}))
    def get(self, request):
        return Response({"status": "ok"})
