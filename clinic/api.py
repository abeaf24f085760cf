import logging

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from knox.models import get_token_model
from knox.settings import knox_settings
from rest_framework import serializers, status
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework.views import exception_handler as drf_exception_handler

from clinic.authentication import LocalizedTokenAuthentication
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


_TOKEN_ANSWER = inline_serializer(
    "ApiToken",
    {
        "token": serializers.CharField(help_text="Send it as `Authorization: Token <token>`. Shown only once."),
        "expiry": serializers.DateTimeField(
            help_text="When the token stops working (API_TOKEN_HOURS after it was issued)."
        ),
    },
)
_DETAIL = inline_serializer("Detail", {"detail": serializers.CharField()})


class TokenView(APIView):
    """A username and password for a new API token (django-rest-knox: only its digest is stored) and its
    expiry. Read with the strict parser (no NaN, no deep nesting, no NUL); the login lockout applies
    (clinic.lockout: the password is checked by its backend)."""

    authentication_classes = ()
    permission_classes = ()
    throttle_classes = ()
    parser_classes = [StrictJSONParser, FormParser, MultiPartParser]
    renderer_classes = [JSONRenderer]
    serializer_class = AuthTokenSerializer

    @extend_schema(
        operation_id="auth_token_create",
        request=AuthTokenSerializer,
        auth=[],
        responses={
            200: _TOKEN_ANSWER,
            # DRF's validation answer: the problems by field (`username`, `password`, `non_field_errors`
            # for wrong credentials), or `detail` for a body that is not JSON.
            400: OpenApiResponse(OpenApiTypes.OBJECT, description="What is wrong, by field"),
            429: inline_serializer("LockedOut", {"detail": serializers.CharField()}),
        },
        description="A new API token and its expiry. 400 for a wrong username or password; 429 (with "
        "Retry-After) after too many failed logins.",
    )
    def post(self, request):
        serializer = self.serializer_class(data=request.data, context={"request": request, "view": self})
        serializer.is_valid(raise_exception=True)
        instance, key = get_token_model().objects.create(
            user=serializer.validated_data["user"], expiry=knox_settings.TOKEN_TTL
        )
        return Response({"token": key, "expiry": serializers.DateTimeField().to_representation(instance.expiry)})


class LogoutView(APIView):
    """Revokes the API token this request was sent with (other tokens of the user keep working)."""

    authentication_classes = [LocalizedTokenAuthentication]
    permission_classes = [IsAuthenticated]

    @extend_schema(operation_id="auth_logout", request=None, responses={204: None, 401: _DETAIL})
    def post(self, request):
        request.auth.delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


class LogoutAllView(APIView):
    """Revokes every API token of the user this request's token belongs to."""

    authentication_classes = [LocalizedTokenAuthentication]
    permission_classes = [IsAuthenticated]

    @extend_schema(operation_id="auth_logout_all", request=None, responses={204: None, 401: _DETAIL})
    def post(self, request):
        request.user.auth_token_set.all().delete()
        return Response(status=status.HTTP_204_NO_CONTENT)
