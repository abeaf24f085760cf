"""CDS Hooks 2.0 endpoints: discovery, and the two services, authenticated as the spec describes.

Each service call carries `Authorization: Bearer <JWT>` signed by an EHR registered in the admin
(clinic.models.EhrClient): the issuer must be known and active, the signature must verify with its
public key, `sub` must be its client id, `aud` this service's URL, and the token unexpired.
"""
from __future__ import annotations

import json
import logging
import operator
from functools import reduce
from types import SimpleNamespace

import jwt
from django.conf import settings
from django.core.cache import cache
from django.db.models import Q
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from clinic.audit import Actor, audit_record
from clinic.models import Encounter, Patient
from ehr.models import EhrClient
from ehr import cds_hooks

logger = logging.getLogger(__name__)
ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384"]
CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Headers": "Authorization, Content-Type",
    "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
}


class Unauthorized(Exception):
    pass


def _json(data, status=200):
    response = JsonResponse(data, status=status, json_dumps_params={"ensure_ascii": False})
    for name, value in CORS.items():
        response[name] = value
    return response


def _error(status, message):
    return _json({"error": message}, status=status)


def _service_url(request) -> str:
    base = getattr(settings, "CDS_HOOKS_BASE_URL", None)
    return f"{base.rstrip('/')}{request.path}" if base else request.build_absolute_uri(request.path)


def authenticate_ehr(request) -> EhrClient:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if not header.startswith("Bearer "):
        raise Unauthorized("a Bearer JWT is required")
    token = header[len("Bearer "):].strip()
    try:
        issuer = jwt.decode(token, options={"verify_signature": False}).get("iss")
    except jwt.PyJWTError:
        raise Unauthorized("the token is not a JWT") from None
    client = EhrClient.objects.select_related("clinic").filter(issuer=issuer, active=True).first() if issuer else None
    if client is None:
        raise Unauthorized("unknown issuer")
    try:
        claims = jwt.decode(token, key=client.public_key, algorithms=ALGORITHMS, audience=_service_url(request),
                            issuer=client.issuer, leeway=30,
                            options={"require": ["iss", "sub", "aud", "exp", "iat", "jti"]})
    except jwt.ExpiredSignatureError:
        raise Unauthorized("the token has expired") from None
    except jwt.InvalidAudienceError:
        raise Unauthorized("the token is for another audience") from None
    except (jwt.PyJWTError, ValueError, TypeError) as error:
        raise Unauthorized(f"the token does not verify ({type(error).__name__})") from None
    if claims.get("sub") != client.client_id:
        raise Unauthorized("the token's subject is not this EHR's client id")
    _refuse_replay(client, claims)
    return client


def _refuse_replay(client, claims) -> None:
    """A token's `jti` is accepted once, until the token expires (CDS Hooks: jti protects against replay)."""
    remaining = int(claims["exp"] - timezone.now().timestamp()) + 60
    try:
        first_use = cache.add(f"cds-jti:{client.pk}:{claims['jti']}", 1, timeout=max(remaining, 1))
    except Exception:  # the cache (Redis) is down: the signature and expiry checks still stand
        logger.warning("CDS Hooks replay check skipped: the cache is unavailable")
        return
    if not first_use:
        raise Unauthorized("the token has been used already")


def _link(request, client: EhrClient, patient: dict) -> dict:
    """Open the patient in the app: their latest encounter's workup when the EHR's identifier is known."""
    identifiers = [("" if entry.get("system") == settings.FHIR_IDENTIFIER_SYSTEM else entry.get("system") or "",
                    str(entry["value"]))
                   for entry in (patient.get("identifier") or [])[:20] if isinstance(entry, dict) and entry.get("value")]
    ours = None
    if identifiers:
        # One query for every identifier the EHR sent; the first identifier that matches wins.
        match = reduce(operator.or_, (Q(identifier_system=system, identifier=value) for system, value in identifiers))
        found = {(row.identifier_system, row.identifier): row for row in
                 Patient.objects.filter(match, clinic=client.clinic)}
        ours = next((found[key] for key in identifiers if key in found), None)
    if ours is None:
        return {"label": "Open the back numbness workup", "url": request.build_absolute_uri("/"), "type": "absolute"}
    actor = Actor(user=SimpleNamespace(pk=None, username=f"ehr:{client.issuer}"), clinic=client.clinic,
                  channel="cds", ip=request.META.get("REMOTE_ADDR"))
    audit_record(actor=actor, action="cds_link", object_type="patient", object_id=ours.pk, patient_id=ours.pk)
    encounter = Encounter.objects.filter(patient=ours).order_by("-visit_date", "-id").values_list("pk", flat=True).first()
    path = f"/encounters/{encounter}/workup/" if encounter else f"/patients/{ours.pk}/"
    return {"label": "Open the encounter in the workup app", "url": request.build_absolute_uri(path),
            "type": "absolute"}


@csrf_exempt
def discovery(request):
    if request.method == "OPTIONS":
        return _json({})
    if request.method != "GET":
        response = _error(405, "use GET")
        response["Allow"] = "GET, OPTIONS"
        return response
    return _json(cds_hooks.discovery())


def _activate_clinic(request, client) -> None:
    """Cards in the EHR's Accept-Language (else the clinic's language); "today" in the clinic's time zone."""
    import zoneinfo

    from django.utils import translation

    from clinic.middleware import supported_language

    header = request.META.get("HTTP_ACCEPT_LANGUAGE")
    if not header or translation.get_language() not in ("ru", "en"):
        translation.activate(supported_language(client.clinic.language) or translation.get_language())
    try:
        timezone.activate(zoneinfo.ZoneInfo(client.clinic.time_zone))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        pass


def _service(request, *, hook, cards_for):
    if request.method == "OPTIONS":
        return _json({})
    if request.method != "POST":
        response = _error(405, "use POST")
        response["Allow"] = "POST, OPTIONS"
        return response
    try:
        client = authenticate_ehr(request)
    except Unauthorized as problem:
        logger.info("CDS Hooks call refused: %s", problem)
        response = _error(401, str(problem))
        response["WWW-Authenticate"] = 'Bearer error="invalid_token"'
        return response
    _activate_clinic(request, client)
    try:
        body = json.loads(request.body or b"null")
    except (ValueError, UnicodeDecodeError):
        return _error(400, "the body is not JSON")
    try:
        context = cds_hooks._require(body, hook)
        case, notes = cds_hooks.case_from_prefetch(body.get("prefetch") or {}, today=timezone.localdate())
        link = _link(request, client, body["prefetch"]["patient"])
        cards = cards_for(case=case, context=context, notes=notes, link=link)
    except cds_hooks.PrefetchMissing as missing:
        return _error(412, str(missing))
    except cds_hooks.MalformedRequest as problem:
        return _error(400, str(problem))
    return _json({"cards": cards})


@csrf_exempt
def workup_service(request):
    return _service(request, hook="patient-view", cards_for=lambda case, context, notes, link: cds_hooks.workup_cards(
        case, patient_id=context["patientId"], notes=notes, link=link))


@csrf_exempt
def imaging_service(request):
    return _service(request, hook="order-select", cards_for=lambda case, context, notes, link: cds_hooks.imaging_cards(
        case, context=context, link=link))
