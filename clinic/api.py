import logging

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView, exception_handler as drf_exception_handler

from clinic.errors import RecordLocked
from clinic.parsers import StrictJSONParser

logger = logging.getLogger(__name__)


def exception_handler(exc, context):
    """DRF's handler, plus the services' errors: a model validation error is a 400 naming its fields,
    a change to a finalized record a 409. An unexpected error is logged without the request body."""
    if isinstance(exc, RecordLocked):
        return Response({"detail": exc.message}, status=status.HTTP_409_CONFLICT)
    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        return Response(detail, status=status.HTTP_400_BAD_REQUEST)
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


class TokenView(ObtainAuthToken):
    """DRF's token login, reading JSON and forms with the strict parser (no NaN, no deep nesting, no NUL)."""

    parser_classes = [StrictJSONParser, FormParser, MultiPartParser]
