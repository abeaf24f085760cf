"""SMART Backend Services (SMART App Launch 2.x) for the FHIR server: a registered EHR gets an access token
with the client-credentials grant and a signed JWT assertion, and reads (and posts lab results) with it.

- `GET /.well-known/smart-configuration` (also under /fhir/): what the token endpoint accepts.
- `POST /fhir/auth/token` (form-encoded): `grant_type=client_credentials`, `client_assertion_type=
  urn:ietf:params:oauth:client-assertion-type:jwt-bearer`, `client_assertion=<JWT>`, `scope=...`.
  The assertion's `iss` and `sub` are an active EhrClient's `client_id`; it is verified exactly as CDS
  Hooks calls are (ehr.cds_views: the key by `kid` from the client's JWKS, an allow-listed `jku`, or its
  PEM key; at most 5 minutes of life; `jti` once), with `aud` the token endpoint's URL. Errors are
  RFC 6749 §5.2 JSON. The access token is random; only its SHA-256 is stored (SmartAccessToken).
- The FHIR server takes `Authorization: Bearer <access token>` (SmartBearerAuthentication) besides the
  `Token` header. The EHR acts as its service user: a User with no usable password and a Membership in
  the EHR's clinic, made at its first token, so the clinic scoping, the audit trail and the services that
  record who entered a result work unchanged. Each interaction needs a granted scope (`scope_problem`).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from datetime import timedelta

import jwt
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.http import JsonResponse
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed

from clinic.audit import Actor, audit_record, client_ip
from clinic.authentication import LocalizedTokenAuthentication
from ehr import cds_views
from ehr.models import EhrClient, SmartAccessToken

logger = logging.getLogger(__name__)

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
LEEWAY = 30  # seconds of clock skew, as for CDS Hooks tokens
# Every type the FHIR server reads (ehr.fhir_server.INTERACTIONS), each with its own scope.
READ_TYPES = (
    "Patient",
    "Encounter",
    "Observation",
    "ServiceRequest",
    "Condition",
    "DocumentReference",
    "Binary",
    "Task",
    "RequestGroup",
)
# SMART v1 scopes granted as asked; the v2 forms (system/<type>.rs, system/Observation.c) are granted with
# the permissions this server has.
SCOPES_V1 = ["system/*.read", *(f"system/{kind}.read" for kind in READ_TYPES), "system/Observation.write"]
SCOPES_V2 = ["system/*.rs", *(f"system/{kind}.rs" for kind in READ_TYPES), "system/Observation.c"]
PERMISSIONS_V2 = "cruds"


def token_seconds() -> int:
    return int(getattr(settings, "SMART_TOKEN_SECONDS", 300))


def _public_url(request, path: str) -> str:
    """The URL EHRs use for `path` (CDS_HOOKS_BASE_URL when a proxy hides the origin, as for CDS Hooks)."""
    base = getattr(settings, "CDS_HOOKS_BASE_URL", None)
    return f"{base.rstrip('/')}{path}" if base else request.build_absolute_uri(path)


def token_endpoint(request) -> str:
    return _public_url(request, reverse("smart-token"))


# -- scopes -----------------------------------------------------------------------------------------


def _parse(scope: str):
    """(resource type or "*", permission letters) of a system scope, or None."""
    context, _, rest = scope.partition("/")
    kind, _, permission = rest.partition(".")
    if context != "system" or not kind or not permission or "?" in permission:
        return None
    if permission == "read":
        return kind, "rs"
    if permission == "write":
        return kind, "cud"
    if (
        permission
        and all(letter in PERMISSIONS_V2 for letter in permission)
        and len(set(permission)) == len(permission)
    ):
        return kind, permission
    return None


def _allowed(kind: str) -> str:
    """The permissions this server can grant on `kind`."""
    if kind == "*" or kind in READ_TYPES:
        return "crs" if kind == "Observation" else "rs"
    return ""


def grant(requested: str) -> list[str]:
    """The scopes granted for a request: the supported ones, in the order asked, once each. Another v1
    scope (system/Patient.write) is dropped; a v2 one asking for more than the server has is narrowed to
    what it has (system/*.cruds → system/*.rs, system/Observation.cruds → system/Observation.crs)."""
    granted = []
    for scope in requested.split()[:50]:
        parsed = _parse(scope)
        if scope in SCOPES_V1:
            result = scope
        elif parsed is None or scope.endswith((".read", ".write")):
            continue
        else:
            kind, permission = parsed
            letters = "".join(letter for letter in PERMISSIONS_V2 if letter in permission and letter in _allowed(kind))
            result = f"system/{kind}.{letters}" if letters else None
        if result and result not in granted:
            granted.append(result)
    return granted


def allows(scopes, resource_type: str, permission: str) -> bool:
    """Whether the granted `scopes` permit `permission` (one of c r u d s) on `resource_type`."""
    for scope in scopes:
        parsed = _parse(scope)
        if parsed and parsed[0] in ("*", resource_type) and permission in parsed[1]:
            return True
    return False


def scope_problem(request, resource_type, *, instance: bool):
    """Why a bearer token may not do this FHIR interaction, or None (also for the Token header)."""
    token = getattr(request, "smart_token", None)
    if token is None or resource_type is None:
        return None
    if request.method in ("GET", "HEAD"):
        permission, needs = ("r", "read") if instance else ("s", "read")
    elif request.method == "POST" and request.path.endswith("/_search"):
        permission, needs = "s", "read"
    elif request.method == "POST":
        permission, needs = "c", "write"
    elif request.method == "PUT":
        permission, needs = "u", "write"
    else:
        permission, needs = "d", "write"
    if allows(token.scopes, resource_type, permission):
        return None
    return f"The access token's scopes ({token.scope}) do not include system/{resource_type}.{needs}" + (
        " (this is done with the Token header)." if needs == "write" and resource_type != "Observation" else "."
    )


# -- the discovery document -------------------------------------------------------------------------


def _cors(response):
    response["Access-Control-Allow-Origin"] = "*"
    return response


def smart_configuration(request):
    if request.method not in ("GET", "HEAD"):
        response = JsonResponse({"error": "use GET"}, status=405)
        response["Allow"] = "GET"
        return response
    return _cors(
        JsonResponse(
            {
                "token_endpoint": token_endpoint(request),
                "token_endpoint_auth_methods_supported": ["private_key_jwt"],
                "token_endpoint_auth_signing_alg_values_supported": list(cds_views.ALGORITHMS),
                "grant_types_supported": ["client_credentials"],
                "scopes_supported": SCOPES_V1 + SCOPES_V2,
                "capabilities": ["client-confidential-asymmetric", "permission-v1", "permission-v2"],
                # SMART 2.0 requires the field of every server; S256 is the only method it allows. This server
                # grants no authorization code, so no client is ever asked for a challenge.
                "code_challenge_methods_supported": ["S256"],
            }
        )
    )


# -- the token endpoint -----------------------------------------------------------------------------


class OAuthError(Exception):
    def __init__(self, error: str, description: str, status: int = 400):
        super().__init__(description)
        self.error, self.description, self.status = error, description, status

    def response(self):
        return _no_store(JsonResponse({"error": self.error, "error_description": self.description}, status=self.status))


def _no_store(response):
    response["Cache-Control"] = "no-store"
    response["Pragma"] = "no-cache"
    return response


def _form(request) -> dict:
    media = request.content_type.split(";")[0].strip().lower()
    if media != "application/x-www-form-urlencoded":
        raise OAuthError("invalid_request", "send the request form-encoded (application/x-www-form-urlencoded)")
    form = {}
    for name in request.POST:
        values = request.POST.getlist(name)
        if len(values) != 1:
            raise OAuthError("invalid_request", f"{name} is repeated")
        form[name] = values[0]
    return form


def _client_of(assertion: str) -> EhrClient:
    try:
        claims = jwt.decode(assertion, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise OAuthError("invalid_client", "the client assertion is not a JWT", 401) from None
    issuer = claims.get("iss")
    if not isinstance(issuer, str) or not issuer or claims.get("sub") != issuer:
        raise OAuthError("invalid_client", "the assertion's iss and sub must both be the client_id", 401)
    clients = list(EhrClient.objects.select_related("clinic").filter(client_id=issuer, active=True)[:2])
    if len(clients) != 1:
        if clients:
            logger.warning("SMART: several active EHR clients have the client_id %r", issuer)
        raise OAuthError("invalid_client", "unknown client", 401)
    return clients[0]


def authenticate_client(request, assertion: str) -> EhrClient:
    """The EhrClient whose assertion this is, verified as CDS Hooks tokens are (ehr.cds_views)."""
    client = _client_of(assertion)
    try:
        header = jwt.get_unverified_header(assertion)
        key = cds_views._verification_key(client, header)
        claims = jwt.decode(
            assertion,
            key=key,
            algorithms=cds_views.ALGORITHMS,
            audience=token_endpoint(request),
            issuer=client.client_id,
            leeway=LEEWAY,
            options={"require": ["iss", "sub", "aud", "exp", "jti"]},
        )
        exp, iat = claims["exp"], claims.get("iat")
        if (
            not isinstance(exp, (int, float))
            or exp - time.time() > cds_views.MAX_LIFETIME + LEEWAY
            or (iat is not None and (not isinstance(iat, (int, float)) or exp - iat > cds_views.MAX_LIFETIME))
        ):
            raise cds_views.Unauthorized("the assertion's lifetime is over 5 minutes")
        if not isinstance(claims["jti"], str) or not claims["jti"] or len(claims["jti"]) > 255:
            raise cds_views.Unauthorized("the assertion's jti must be a string")
        cds_views._refuse_replay(client, claims)
    except cds_views.Unauthorized as problem:
        raise OAuthError("invalid_client", str(problem), 401) from None
    except jwt.ExpiredSignatureError:
        raise OAuthError("invalid_client", "the assertion has expired", 401) from None
    except jwt.InvalidAudienceError:
        raise OAuthError("invalid_client", f"the assertion's aud must be {token_endpoint(request)}", 401) from None
    except (jwt.PyJWTError, ValueError, TypeError) as error:
        raise OAuthError("invalid_client", f"the assertion does not verify ({type(error).__name__})", 401) from None
    return client


def service_user(client: EhrClient):
    """The account the EHR acts as: made once, a member of the EHR's clinic (moved with it), no password."""
    from clinic.models import Membership

    with transaction.atomic():
        client = (
            EhrClient.objects.select_for_update(of=("self",)).select_related("clinic", "service_user").get(pk=client.pk)
        )
        user = client.service_user
        if user is None:
            User = get_user_model()
            username = f"ehr-client-{client.pk}"
            if User.objects.filter(username=username).exists():
                username = f"{username}-{secrets.token_hex(4)}"
            user = User(username=username, last_name=client.name[:150])
            user.set_unusable_password()
            user.save()
            client.service_user = user
            client.save(update_fields=["service_user"])
        membership = Membership.objects.filter(user=user).first()
        if membership is None:
            Membership.objects.create(user=user, clinic=client.clinic, title="EHR client", full_name=client.name[:300])
        elif membership.clinic_id != client.clinic_id:
            membership.clinic = client.clinic
            membership.save(update_fields=["clinic"])
    return user


@csrf_exempt
def token(request):
    if request.method != "POST":
        response = JsonResponse({"error": "invalid_request", "error_description": "use POST"}, status=405)
        response["Allow"] = "POST"
        return _no_store(response)
    try:
        form = _form(request)
        if form.get("grant_type") != "client_credentials":
            raise OAuthError(
                "unsupported_grant_type" if form.get("grant_type") else "invalid_request",
                "grant_type must be client_credentials",
            )
        if form.get("client_assertion_type") != ASSERTION_TYPE:
            raise OAuthError("invalid_request", f"client_assertion_type must be {ASSERTION_TYPE}")
        if not form.get("client_assertion"):
            raise OAuthError("invalid_request", "client_assertion is required")
        client = authenticate_client(request, form["client_assertion"])
        if form.get("client_id") not in (None, client.client_id):
            raise OAuthError("invalid_client", "client_id is not the assertion's", 401)
        granted = grant(form.get("scope", ""))
        if not granted:
            raise OAuthError("invalid_scope", "ask for one or more of: " + " ".join(SCOPES_V1 + SCOPES_V2))
    except OAuthError as error:
        logger.info("SMART token refused: %s: %s", error.error, error.description)
        return error.response()
    user = service_user(client)
    raw = secrets.token_urlsafe(32)
    seconds = token_seconds()
    now = timezone.now()
    SmartAccessToken.objects.filter(expires_at__lt=now - timedelta(days=1)).delete()
    SmartAccessToken.objects.create(
        token_hash=hash_token(raw), client=client, scope=" ".join(granted), expires_at=now + timedelta(seconds=seconds)
    )
    audit_record(
        actor=Actor(user=user, clinic=client.clinic, channel="fhir", ip=client_ip(request)),
        action="smart_token",
        object_type="ehr_client",
        object_id=client.pk,
    )
    return _no_store(
        JsonResponse({"access_token": raw, "token_type": "bearer", "expires_in": seconds, "scope": " ".join(granted)})
    )


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()


# -- the bearer token on the FHIR server ------------------------------------------------------------


class SmartBearerAuthentication(BaseAuthentication):
    """`Authorization: Bearer <access token>` from the token endpoint: the EHR's service user, with the
    token (its scopes) as `request.auth`."""

    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != b"bearer":
            return None
        if len(parts) != 2:
            raise AuthenticationFailed("Send Authorization: Bearer <access token>.")
        try:
            raw = parts[1].decode("ascii")
        except UnicodeDecodeError:
            raise AuthenticationFailed("The access token is not valid.") from None
        found = (
            SmartAccessToken.objects.select_related("client__service_user__membership")
            .filter(token_hash=hash_token(raw))
            .first()
        )
        if found is None or found.expires_at <= timezone.now():
            raise AuthenticationFailed("The access token is unknown or has expired.")
        client = found.client
        user = client.service_user
        membership = getattr(user, "membership", None) if user is not None else None
        if (
            not client.active
            or user is None
            or not user.is_active
            or membership is None
            or membership.clinic_id != client.clinic_id
        ):
            raise AuthenticationFailed("The access token is no longer valid: ask for a new one.")
        from clinic.middleware import activate_for

        activate_for(request._request, user, header_first=True)
        return user, found

    def authenticate_header(self, request):
        return 'Bearer error="invalid_token"'


def is_bearer(request) -> bool:
    parts = request.META.get("HTTP_AUTHORIZATION", "").split()
    return bool(parts) and parts[0].lower() == "bearer"


def authenticate_fhir(drf_request):
    """(user, SmartAccessToken or None) from a Bearer or Token header, or None without either;
    AuthenticationFailed when the credentials are wrong."""
    found = SmartBearerAuthentication().authenticate(drf_request)
    if found is not None:
        return found
    found = LocalizedTokenAuthentication().authenticate(drf_request)
    return (found[0], None) if found is not None else None


def challenge(request) -> str:
    return 'Bearer error="invalid_token"' if is_bearer(request) else "Token"
