"""CDS Hooks 2.0 endpoints: discovery, and the two services, authenticated as the spec describes.

Each service call carries `Authorization: Bearer <JWT>` signed by an EHR registered in the admin
(ehr.models.EhrClient): the issuer must be known and active, the signature must verify with a key from
its JWKS (by `kid`; `jku` only if allow-listed) or its PEM key, `aud` must be this service's URL, the
token unexpired and valid for at most 5 minutes, and its `jti` unused. `sub` is optional.
What the prefetch lacks is fetched from `fhirServer` with `fhirAuthorization`, concurrently, within 3 s, when
that server is one registered for the EHR (`EhrClient.fhir_servers`); another address is never contacted.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import ipaddress
import json
import logging
import re
import time
import uuid
from concurrent.futures import ThreadPoolExecutor, wait
from datetime import UTC, datetime
from types import SimpleNamespace
from urllib.parse import quote, urlsplit

import jwt
import requests
from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.http import JsonResponse
from django.utils import timezone, translation
from django.utils.translation import gettext
from django.views.decorators.csrf import csrf_exempt

from clinic.audit import Actor, audit_bounded, audit_record, client_ip
from clinic.models import Clinic, Encounter
from clinic.parsers import nests_deeper_than, strict_loads
from ehr import cds_hooks, identifier_systems
from ehr.models import CardFeedback, EhrClient, IssuedCard, UsedToken
from ehr.validators import registered_fhir_server

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


BEARER = re.compile(r"^\s*bearer\s+(\S+)\s*$", re.IGNORECASE)
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
MAX_LIFETIME = 300  # seconds: CDS Hooks clients sign a fresh token per call
JWKS_TTL = 300
FETCH_TIMEOUT = 3  # seconds for one key set fetch
FETCH_BUDGET = 3  # seconds for all the chart queries of one CDS call together
_jwks_memory: dict[str, tuple[float, dict]] = {}


def loopback(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def fetchable(url) -> bool:
    """https anywhere; plain http only to this machine (a stand-in EHR in development and tests)."""
    if not isinstance(url, str) or len(url) > 2000:
        return False
    scheme = urlsplit(url).scheme
    return scheme == "https" or (scheme == "http" and loopback(url))


def _fetch_jwks(url: str, *, fresh: bool = False) -> dict:
    """The key set at `url` (cached JWKS_TTL seconds in the cache, or in this process if the cache is down)."""
    key = "ehr-jwks:" + hashlib.sha256(url.encode()).hexdigest()
    if not fresh:
        try:
            cached = cache.get(key)
        except Exception:
            cached = None
        if cached is None and url in _jwks_memory and _jwks_memory[url][0] > time.monotonic():
            cached = _jwks_memory[url][1]
        if cached is not None:
            return cached
    if not fetchable(url):
        raise Unauthorized("the key set URL is not https")
    try:
        response = requests.get(url, timeout=FETCH_TIMEOUT, headers={"Accept": "application/json"})
        response.raise_for_status()
        data = response.json()
    except (requests.RequestException, ValueError):
        raise Unauthorized("the EHR's key set could not be fetched") from None
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
        raise Unauthorized("the EHR's key set is not a JWKS")
    # The cache only saves a fetch; the process-local copy below is enough when it is down.
    with contextlib.suppress(Exception):
        cache.set(key, data, JWKS_TTL)
    _jwks_memory[url] = (time.monotonic() + JWKS_TTL, data)
    return data


def _key_from_jwks(url: str, kid) -> object:
    for fresh in (False, True):  # an unknown kid: the keys may have rotated, fetch once more
        data = _fetch_jwks(url, fresh=fresh)
        keys = [entry for entry in data["keys"] if isinstance(entry, dict)]
        if kid is not None:
            keys = [entry for entry in keys if entry.get("kid") == kid]
        elif len(keys) != 1:
            raise Unauthorized("the token has no kid and the key set has several keys")
        if keys:
            try:
                return _parsed(json.dumps(keys[0], sort_keys=True), lambda text: jwt.PyJWK.from_json(text).key)
            except (jwt.PyJWTError, ValueError, TypeError, KeyError):
                raise Unauthorized("the key in the EHR's key set is not usable") from None
    raise Unauthorized("no key in the EHR's key set has this kid")


# Verification keys once parsed, by what they were parsed from (a JWK's JSON, or the algorithm and a PEM):
# parsing cost more than checking the signature, and an EHR signs every call with the same key. A rotated
# key has other text and is parsed afresh; the table is emptied when it fills.
_parsed_keys: dict = {}
PARSED_KEYS_MAX = 256


def _parsed(source, parse):
    key = _parsed_keys.get(source)
    if key is None:
        key = parse(source)
        if len(_parsed_keys) >= PARSED_KEYS_MAX:
            _parsed_keys.clear()
        _parsed_keys[source] = key
    return key


def _pem_key(pem: str, algorithm):
    """The PEM parsed as PyJWT would parse it for the token's algorithm; the text itself if it can't be, so
    that verifying fails as it always did."""
    try:
        return _parsed((algorithm, pem), lambda source: jwt.get_algorithm_by_name(source[0]).prepare_key(source[1]))
    except (jwt.PyJWTError, ValueError, TypeError, NotImplementedError):
        return pem


def _verification_key(client: EhrClient, header: dict):
    jku, kid = header.get("jku"), header.get("kid")
    if jku is not None:
        if not isinstance(jku, str) or jku not in (client.jku_allowlist or []):
            raise Unauthorized("the token's jku is not on this EHR's allow-list")
        return _key_from_jwks(jku, kid)
    if client.jwks_url:
        return _key_from_jwks(client.jwks_url, kid)
    if client.public_key:
        return _pem_key(client.public_key, header.get("alg"))
    raise Unauthorized("no key is registered for this EHR")


# The EHRs as last read, by issuer: the row of the client and its clinic, and the instances built from it.
_clients: dict[str, tuple[tuple, EhrClient]] = {}
CLIENTS_MAX = 256


@functools.cache
def _client_sql(vendor: str) -> str:
    """Every column of the active client of an issuer and of its clinic, in one plain query."""
    quote = connection.ops.quote_name
    clinic = EhrClient._meta.get_field("clinic")
    columns = [f"c.{quote(field.column)}" for field in EhrClient._meta.concrete_fields] + [
        f"k.{quote(field.column)}" for field in Clinic._meta.concrete_fields
    ]
    return (
        f"SELECT {', '.join(columns)} FROM {quote(EhrClient._meta.db_table)} c "  # noqa: S608 - from the models
        f"JOIN {quote(Clinic._meta.db_table)} k ON k.{quote(Clinic._meta.pk.column)} = c.{quote(clinic.column)} "
        f"WHERE c.{quote(EhrClient._meta.get_field('issuer').column)} = %s "
        f"AND c.{quote(EhrClient._meta.get_field('active').column)} = %s"
    )


def _active_client(issuer: str) -> EhrClient | None:
    """The active EhrClient of `issuer`, with its clinic, as the database has them now: one plain query reads
    both rows, and while they are what they were the instances built from them last time are reused
    (building them with the ORM cost more than the rest of the token's checks). A change to either row, a
    deactivation included, is seen at the next call. The instances are shared: callers only read them."""
    with connection.cursor() as cursor:
        cursor.execute(_client_sql(connection.vendor), [issuer, True])
        row = cursor.fetchone()
    if row is None:
        return None
    known = _clients.get(issuer)
    if known is not None and known[0] == row:
        return known[1]
    client = EhrClient.objects.select_related("clinic").filter(pk=row[0], active=True).order_by().first()
    if client is not None:
        if len(_clients) >= CLIENTS_MAX:
            _clients.clear()
        _clients[issuer] = (row, client)
    return client


def authenticate_ehr(request, *, also_audience: str | None = None) -> EhrClient:
    """The EHR that signed the request's token, its `jti` recorded against replay (in its own commit)."""
    client, claims = verified_ehr(request, also_audience=also_audience)
    _refuse_replay(client, claims)
    return client


_SEGMENT = re.compile(r"[A-Za-z0-9_-]+={0,2}")


def _peek(token: str) -> tuple[dict, dict]:
    """The token's header and claims, unverified: only to find the issuer and its key, before jwt.decode
    reads and checks the whole token. (PyJWT's own unverified reading checks every character in Python,
    and cost as much as verifying the signature.) ValueError when the token is not a JWT."""
    parts = token.split(".")
    if len(parts) != 3 or not all(_SEGMENT.fullmatch(part) for part in parts[:2]):
        raise ValueError("not three segments of base64url")
    header, claims = (json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))) for part in parts[:2])
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise ValueError("the header or the claims are not an object")
    return header, claims


def verified_ehr(request, *, also_audience: str | None = None) -> tuple[EhrClient, dict]:
    """The EHR that signed the request's token and the token's claims, all checked but the replay: the caller
    records the `jti` (`_refuse_replay`) before it answers, in the transaction of the answer's own writes."""
    match = BEARER.match(request.META.get("HTTP_AUTHORIZATION", ""))
    if not match:
        raise Unauthorized("a Bearer JWT is required")
    token = match.group(1)
    try:
        header, unverified = _peek(token)
    except (ValueError, RecursionError):
        raise Unauthorized("the token is not a JWT") from None
    issuer = unverified.get("iss")
    # An issuer no client could have (not a string, too long, control characters: PostgreSQL refuses a NUL)
    # is unknown without a query.
    known = isinstance(issuer, str) and 0 < len(issuer) <= 255 and not CONTROL.search(issuer)
    client = _active_client(issuer) if known else None
    if client is None:
        audit_unmatched(request, issuer=issuer, clinic=None, action="cds_unknown_issuer")
        raise Unauthorized("unknown issuer")
    key = _verification_key(client, header)
    try:
        audience = [_service_url(request)] + ([also_audience] if also_audience else [])
        claims = jwt.decode(
            token,
            key=key,
            algorithms=ALGORITHMS,
            audience=audience,
            issuer=client.issuer,
            leeway=30,
            options={"require": ["iss", "aud", "exp", "iat", "jti"]},
        )
    except jwt.ExpiredSignatureError:
        raise Unauthorized("the token has expired") from None
    except jwt.InvalidAudienceError:
        raise Unauthorized("the token is for another audience") from None
    except (jwt.PyJWTError, ValueError, TypeError) as error:
        raise Unauthorized(f"the token does not verify ({type(error).__name__})") from None
    if (
        not isinstance(claims["exp"], (int, float))
        or not isinstance(claims["iat"], (int, float))
        or claims["exp"] - claims["iat"] > MAX_LIFETIME
    ):
        raise Unauthorized("the token's lifetime is over 5 minutes")
    if not isinstance(claims["jti"], str) or not claims["jti"] or len(claims["jti"]) > 255:
        raise Unauthorized("the token's jti must be a string")
    if "sub" in claims and client.client_id and claims["sub"] != client.client_id:
        raise Unauthorized("the token's subject is not this EHR's client id")
    return client, claims


def _refuse_replay(client, claims) -> None:
    """A token's `jti` is accepted once per issuer until the token expires, recorded in the database so it
    holds across processes (CDS Hooks: jti protects against replay). Expired records are pruned. Raises
    Unauthorized for a `jti` already recorded; inside a transaction, the record holds once it commits (a
    concurrent call with the same `jti` waits for it on PostgreSQL, and SQLite has one writer at a time)."""
    if not _record_jti(client, claims):
        raise Unauthorized("the token has been used already")


def _record_jti(client, claims) -> bool:
    """Record the token's `jti` (pruning the expired records first); False when it was recorded already.
    Plain SQL: two statements the ORM took longer to build than the database to run."""
    adapt = connection.ops.adapt_datetimefield_value
    now = adapt(timezone.now())
    expires = adapt(datetime.fromtimestamp(claims["exp"] + 60, tz=UTC))
    table = connection.ops.quote_name(UsedToken._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {table} WHERE expires_at < %s", [now])  # noqa: S608 - the model's table
        cursor.execute(
            f"INSERT INTO {table} (issuer, jti, expires_at) VALUES (%s, %s, %s) "  # noqa: S608 - the model's table
            "ON CONFLICT (issuer, jti) DO NOTHING RETURNING id",
            [client.issuer, claims["jti"], expires],
        )
        return cursor.fetchone() is not None


def _caller(issuer) -> str:
    """The EHR as the audit trail names it: its issuer, printable and bounded (it is the caller's text)."""
    if not isinstance(issuer, str) or not issuer:
        return "ehr:?"
    return "ehr:" + CONTROL.sub("?", issuer)[:146]


def audit_unmatched(request, *, issuer, clinic, action: str) -> None:
    """An AuditEvent for a CDS call that matched no registered EHR (`cds_unknown_issuer`), no patient of
    the EHR's clinic (`cds_no_patient_match`) or no FHIR server registered for the EHR
    (`cds_fhir_server_not_registered`): who (the issuer) and where (the address and the service);
    nothing of the patient, since no patient of ours is involved. Under the bound on probe rows
    (clinic.audit.audit_bounded): a flood of such calls writes a bounded number of rows and their count. An
    unknown issuer is counted by its address alone, since the issuer is the caller's own text."""
    audit_bounded(
        actor=Actor(
            user=SimpleNamespace(pk=None, username=_caller(issuer)),
            clinic=clinic,
            channel="cds",
            ip=client_ip(request),
        ),
        action=action,
        object_type="cds_service",
        object_id=request.path[:64],
        endpoint=f"{request.method} {request.path}"[:128],
        caller="" if clinic is None else None,
    )


def _link(request, client: EhrClient, patient: dict | None) -> dict:
    """Open the patient in the app: their latest encounter's workup when one of the EHR's identifiers is
    known: the EHR's number, the SNILS or the OMS policy. A call for a patient we can't match (no Patient, or
    no identifier of this clinic's) is audited."""
    if not isinstance(patient, dict):
        audit_unmatched(request, issuer=client.issuer, clinic=client.clinic, action="cds_no_patient_match")
        return _home_link(request.build_absolute_uri("/"))
    identifiers = [
        (entry.get("system") or "", str(entry["value"]))
        for entry in (patient.get("identifier") if isinstance(patient.get("identifier"), list) else [])[:20]
        if isinstance(entry, dict)
        and isinstance(entry.get("value"), (str, int))
        and isinstance(entry.get("system") or "", str)
        and entry.get("value")
    ]
    # One query for every identifier the EHR sent (its own number, SNILS and the OMS policy in RuCoreIG's
    # systems or their synonyms); the first identifier that matches wins.
    ours = identifier_systems.patient_matching(clinic=client.clinic, identifiers=identifiers)
    if ours is None:
        audit_unmatched(request, issuer=client.issuer, clinic=client.clinic, action="cds_no_patient_match")
        return _home_link(request.build_absolute_uri("/"))
    actor = Actor(
        user=SimpleNamespace(pk=None, username=_caller(client.issuer)),
        clinic=client.clinic,
        channel="cds",
        ip=client_ip(request),
    )
    audit_record(actor=actor, action="cds_link", object_type="patient", object_id=ours.pk, patient_id=ours.pk)
    encounter = (
        Encounter.objects.filter(patient=ours).order_by("-visit_date", "-id").values_list("pk", flat=True).first()
    )
    path = f"/encounters/{encounter}/workup/" if encounter else f"/patients/{ours.pk}/"
    return {
        "label": gettext("Open the encounter in the workup app"),
        "url": request.build_absolute_uri(path),
        "type": "absolute",
    }


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
    with contextlib.suppress(zoneinfo.ZoneInfoNotFoundError, ValueError):
        timezone.activate(zoneinfo.ZoneInfo(client.clinic.time_zone))


class FetchTimedOut(Exception):
    """The chart fetch's overall budget ran out before this request could be sent or answered."""


class FetchUnreadable(Exception):
    """The EHR's FHIR server answered 200 with a body that is not JSON, or nests too deeply to be read."""


def _fetch(url: str, headers: dict, deadline: float):
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise FetchTimedOut
    response = requests.get(url, headers=headers, timeout=remaining, allow_redirects=False)
    if response.status_code != 200:
        return None
    # As a request's body is: the depth checked on the text, before the parser recurses into it.
    try:
        text = response.content.decode("utf-8-sig")
        if nests_deeper_than(text, cds_hooks.MAX_DEPTH):
            raise FetchUnreadable
        return json.loads(text)
    except (ValueError, RecursionError):
        raise FetchUnreadable from None


def _fetch_part(key: str, url: str, base: str, headers: dict, deadline: float):
    """One prefetch key from the EHR (a Patient, or a searchset Bundle with up to 5 pages), or None when
    the EHR answered with something unusable. Runs in a worker thread: no database, no gettext."""
    data = _fetch(url, headers, deadline)
    if key == "patient":
        return data if isinstance(data, dict) and data.get("resourceType") == "Patient" else None
    cds_hooks.check_bundle(data, key)
    pages = 1
    next_url = _next_link(data)
    while next_url and next_url.startswith(base + "/") and pages < 5:
        page = _fetch(next_url, headers, deadline)
        cds_hooks.check_bundle(page, key)
        data["entry"] = (data.get("entry") or []) + (page.get("entry") or [])
        next_url, pages = _next_link(page), pages + 1
    return data


def _origin(url: str) -> str:
    """The scheme, host and port of a URL, for the log: never its path or query, which may name a patient."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "an unreadable address"
    host = CONTROL.sub("?", parts.hostname or "?")[:255]
    return f"{CONTROL.sub('?', parts.scheme)[:10]}://{host}" + (f":{port}" if port else "")


def _unregistered_fhir_server(request, client: EhrClient, base: str) -> None:
    """Audited and logged, by the server's origin alone: an EHR naming a FHIR server it did not register
    is either misconfigured or trying to make the app fetch an address of its choosing."""
    logger.warning(
        "CDS Hooks: %s named a fhirServer at %s that is not registered for it; nothing was fetched",
        _caller(client.issuer),
        _origin(base),
    )
    audit_unmatched(request, issuer=client.issuer, clinic=client.clinic, action="cds_fhir_server_not_registered")


def fetch_chart(body: dict, chart: dict, patient_id: str, *, request, client: EhrClient) -> tuple[dict, list[str]]:
    """Fill what the prefetch lacks (missing or null) from `fhirServer` with `fhirAuthorization`, using the
    same queries as the prefetch templates, when that server is one registered for the EHR: any other is
    treated as out of reach, and nothing is sent to it. The queries run at once in a thread pool within one
    budget of FETCH_BUDGET seconds (one slow EHR costs one timeout, not one per query). What cannot be had
    stays None; notes say why."""
    missing = [key for key in cds_hooks.PREFETCH_KEYS if chart.get(key) is None]
    base = body.get("fhirServer")
    if not missing or not base:
        return chart, []
    if not fetchable(base):
        return chart, [gettext("The EHR's FHIR server was not queried: its address is not https.")]
    if not registered_fhir_server(base, client.fhir_servers):
        _unregistered_fhir_server(request, client, base)
        return chart, [gettext("The EHR's FHIR server was not queried: its address is not registered for this EHR.")]
    headers = {"Accept": "application/fhir+json"}
    token = (body.get("fhirAuthorization") or {}).get("access_token")
    if token:
        headers["Authorization"] = f"Bearer {token}"
    base = base.rstrip("/")
    chart = dict(chart)
    templates = cds_hooks.prefetch_templates()
    deadline = time.monotonic() + FETCH_BUDGET
    pool = ThreadPoolExecutor(max_workers=len(missing), thread_name_prefix="cds-fetch")
    try:
        futures = {
            pool.submit(
                _fetch_part,
                key,
                f"{base}/" + templates[key].replace("{{context.patientId}}", quote(patient_id, safe="")),
                base,
                headers,
                deadline,
            ): key
            for key in missing
        }
        done, late = wait(futures, timeout=max(deadline - time.monotonic(), 0))
    finally:
        # Don't wait for a late request: each has a timeout within the budget and ends by itself.
        pool.shutdown(wait=False, cancel_futures=True)
    unreachable, unreadable = bool(late), False
    for future in done:
        key = futures[future]
        try:
            chart[key] = future.result()
        except (requests.ConnectionError, requests.Timeout, FetchTimedOut):
            unreachable = True
        except FetchUnreadable:
            chart[key], unreadable = None, True
        except (requests.RequestException, ValueError, cds_hooks.MalformedRequest):
            chart[key] = None
    if unreachable:
        logger.info("CDS Hooks: the EHR's FHIR server is unreachable or did not answer in time")
        return chart, [gettext("The EHR's FHIR server could not be reached.")]
    if unreadable:
        logger.info("CDS Hooks: the EHR's FHIR server answered with JSON that could not be read")
        return chart, [
            gettext("The EHR's FHIR server sent an answer that could not be read (not JSON, or nested too deeply).")
        ]
    return chart, []


def _next_link(bundle: dict):
    links = bundle.get("link")
    if not isinstance(links, list):
        return None
    for link in links:
        if isinstance(link, dict) and link.get("relation") == "next" and isinstance(link.get("url"), str):
            return link["url"]
    return None


def _home(request) -> str:
    return request.build_absolute_uri("/")


def _record(cards: list[dict], *, service: str, client: EhrClient) -> list[dict]:
    """Store each issued card (uuid, service, rule, summary: no patient data) so feedback can be related."""
    if not cards:
        return cards
    # One plain INSERT, each value prepared by its field as the ORM would: building the instances and the
    # statement with the ORM cost several times the insert itself.
    names = ("uuid", "service", "rule", "summary", "suggestions", "client", "issued_at")
    fields = [IssuedCard._meta.get_field(name) for name in names]
    issued_at = timezone.now()
    params = []
    for card in cards:
        suggestions = [suggestion["uuid"] for suggestion in card.get("suggestions", []) if "uuid" in suggestion]
        values = (uuid.UUID(card["uuid"]), service, card.pop("_rule", "")[:150], card["summary"][:140], suggestions)
        values += (client.pk, issued_at)
        params += [field.get_db_prep_save(value, connection) for field, value in zip(fields, values, strict=True)]
    quote = connection.ops.quote_name
    row = f"({', '.join(['%s'] * len(fields))})"
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {quote(IssuedCard._meta.db_table)} ({', '.join(quote(field.column) for field in fields)}) "  # noqa: S608 - from the model
            f"VALUES {', '.join([row] * len(cards))}",
            params,
        )
    return cards


def _refusal(problem) -> JsonResponse:
    logger.info("CDS Hooks call refused: %s", problem)
    response = _error(401, str(problem))
    response["WWW-Authenticate"] = 'Bearer error="invalid_token"'
    return response


def _read_body(request):
    """The body's JSON, or a 400. Its nesting is checked on the text before parsing (at C speed, which
    walking the parsed body was not): nothing deeper than cds_hooks.MAX_DEPTH is parsed or read."""
    try:
        text = (request.body or b"null").decode("utf-8-sig")
        if nests_deeper_than(text, cds_hooks.MAX_DEPTH):
            return _error(400, "The request nests too deeply.")
        json.loads(text)  # JSON at all: else the answer says only that
    except (ValueError, UnicodeDecodeError, RecursionError):
        return _error(400, "the body is not JSON")
    try:
        # Standard JSON only, as the API reads it: NaN, Infinity and 1e400 are no value a card can act on.
        with translation.override("en"):
            return strict_loads(text, depth=cds_hooks.MAX_DEPTH)
    except ValueError as error:
        return _error(400, f"the body is not standard JSON: {error}")


# CDS Hooks: a service that cannot obtain the data it needs, because the request's prefetch lacks the key and
# the FHIR server cannot be reached (or was not given), SHALL answer 412. A key sent as null is the client
# saying it has no such data: that is answered with a card, as is a chart that holds too little.
PATIENT_NOT_HAD = (
    "the Patient could not be obtained: send it as the prefetch key 'patient', or give fhirServer (https, one"
    " registered for this EHR) and fhirAuthorization so that the service can read it"
)


def _patient_not_had(body: dict, chart: dict) -> bool:
    prefetch = body.get("prefetch")
    absent = not isinstance(prefetch, dict) or "patient" not in prefetch
    return absent and not isinstance(chart.get("patient"), dict)


def _service(request, *, hook, service, cards_for):
    if request.method == "OPTIONS":
        return _json({})
    if request.method != "POST":
        response = _error(405, "use POST")
        response["Allow"] = "POST, OPTIONS"
        return response
    try:
        client, claims = verified_ehr(request)
    except Unauthorized as problem:
        return _refusal(problem)
    _activate_clinic(request, client)
    body = _read_body(request)
    try:
        if isinstance(body, JsonResponse):
            _refuse_replay(client, claims)
            return body
        try:
            context = cds_hooks._require(body, hook)
            if hook == "order-select":
                cds_hooks.selected_orders(context)  # junk in the orders is a 400 before any fetching
            chart = cds_hooks.check_prefetch(body.get("prefetch"))
        except cds_hooks.MalformedRequest as problem:
            _refuse_replay(client, claims)
            return _error(400, str(problem))
        fetch_notes, recorded = [], False
        if body.get("fhirServer") and any(chart.get(key) is None for key in cds_hooks.PREFETCH_KEYS):
            # A replayed token sends nothing to the EHR's server: its jti is recorded (and committed) first.
            _refuse_replay(client, claims)
            recorded = True
            chart, fetch_notes = fetch_chart(body, chart, context["patientId"], request=request, client=client)
        # The jti, the audit event of the patient link and the issued cards in one transaction: one commit
        # (and fsync) instead of three. No savepoint: nothing in it is undone alone, and a replay is found
        # before anything is written (the prune aside); an error rolls it all back, and no cards are sent.
        with transaction.atomic(savepoint=False):
            if not recorded and not _record_jti(client, claims):
                return _refusal(Unauthorized("the token has been used already"))
            if _patient_not_had(body, chart):
                # Still on the trail: the EHR called about a patient the service could not see.
                audit_unmatched(request, issuer=client.issuer, clinic=client.clinic, action="cds_no_patient_match")
                return _error(412, PATIENT_NOT_HAD)
            return _answer(request, client, chart, context, fetch_notes, service=service, cards_for=cards_for)
    except Unauthorized as problem:
        return _refusal(problem)


def _answer(request, client, chart, context, fetch_notes, *, service, cards_for):
    home = _home(request)
    patient_id = context["patientId"]
    try:
        link = _link(request, client, chart.get("patient"))
        try:
            case, notes = cds_hooks.case_from_chart(chart, patient_id=patient_id, today=timezone.localdate())
        except cds_hooks.DataUnavailable as unavailable:
            cards = [cds_hooks.unavailable_card(str(unavailable), link=link, home=home, notes=fetch_notes)]
        else:
            cards = cards_for(case=case, context=context, notes=fetch_notes + notes, link=link, home=home)
    except cds_hooks.MalformedRequest as problem:
        return _error(400, str(problem))
    return _json({"cards": _record(cards, service=service, client=client)})


def _home_link(home: str) -> dict:
    return {"label": gettext("Open the back numbness workup"), "url": home, "type": "absolute"}


@csrf_exempt
def workup_service(request):
    return _service(
        request,
        hook="patient-view",
        service=cds_hooks.WORKUP_SERVICE,
        cards_for=lambda case, context, notes, link, home: cds_hooks.workup_cards(
            case, patient_id=context["patientId"], notes=notes, link=link, home=home
        ),
    )


@csrf_exempt
def imaging_service(request):
    return _service(
        request,
        hook="order-select",
        service=cds_hooks.IMAGING_SERVICE,
        cards_for=lambda case, context, notes, link, home: cds_hooks.imaging_cards(case, context=context, link=link),
    )


# -- feedback (CDS Hooks 2.0) ----------------------------------------------------------------------


class FeedbackConflict(Exception):
    """409: feedback that contradicts the outcome already recorded for a card."""


def _feedback_rows(body, client: EhrClient, service: str) -> list[CardFeedback]:
    """The feedback's rows to store, or MalformedRequest (400) naming what is wrong, or FeedbackConflict (409)
    for a card answered already with another outcome. An outcome sent again as it was recorded is not stored
    twice. Call in a transaction (the cards are locked)."""
    if not isinstance(body, dict) or not isinstance(body.get("feedback"), list) or not body["feedback"]:
        raise cds_hooks.MalformedRequest('the body must be {"feedback": [...]}')
    if len(body["feedback"]) > 100 or cds_hooks.too_deep(body, 12):
        raise cds_hooks.MalformedRequest("too much feedback in one request")
    items = []
    for index, item in enumerate(body["feedback"]):
        where = f"feedback[{index}]"
        if not isinstance(item, dict):
            raise cds_hooks.MalformedRequest(f"{where} must be an object")
        try:
            card_uuid = uuid.UUID(str(item.get("card")))
        except ValueError:
            raise cds_hooks.MalformedRequest(f"{where}.card must be a card uuid") from None
        outcome = item.get("outcome")
        if outcome not in ("accepted", "overridden"):
            raise cds_hooks.MalformedRequest(f"{where}.outcome must be accepted or overridden")
        moment = item.get("outcomeTimestamp")
        try:
            outcome_at = datetime.fromisoformat(moment.replace("Z", "+00:00")) if isinstance(moment, str) else None
        except ValueError:
            outcome_at = None
        # RFC 3339 (as CDS Hooks profiles it): a date, a time and an offset; a time without one is no instant.
        if outcome_at is None or "T" not in moment.upper() or timezone.is_naive(outcome_at):
            raise cds_hooks.MalformedRequest(
                f"{where}.outcomeTimestamp must be a date-time with its offset (RFC 3339, e.g. 2026-01-01T09:00:00Z)"
            )
        accepted = item.get("acceptedSuggestions", [])
        if not isinstance(accepted, list) or not all(
            isinstance(row, dict) and isinstance(row.get("id"), str) for row in accepted
        ):
            raise cds_hooks.MalformedRequest(f'{where}.acceptedSuggestions must be a list of {{"id": ...}}')
        if outcome == "accepted" and not accepted:
            # CDS Hooks 2.0: required for an accepted outcome; a rate of acceptance needs to know what was taken.
            raise cds_hooks.MalformedRequest(f"{where}.acceptedSuggestions is required when the outcome is accepted")
        reason = item.get("overrideReason") or {}
        if not isinstance(reason, dict):
            raise cds_hooks.MalformedRequest(f"{where}.overrideReason must be an object")
        coding = reason.get("reason") or {}
        comment = reason.get("userComment") or ""
        if not isinstance(coding, dict) or not isinstance(comment, str):
            raise cds_hooks.MalformedRequest(f"{where}.overrideReason is malformed")
        items.append(
            (
                card_uuid,
                outcome,
                outcome_at,
                [row["id"][:100] for row in accepted[:50]],
                str(coding.get("code") or "")[:200],
                str(coding.get("display") or "")[:500],
                comment[:2000],
            )
        )
    seen = set()
    for index, row in enumerate(items):
        if row[0] in seen:
            raise FeedbackConflict(f"feedback[{index}]: a second outcome for card {row[0]} in the same request")
        seen.add(row[0])
    # Locked: two requests answering the same card at once are taken one after the other (the view's transaction).
    issued = {
        card.uuid: card
        for card in IssuedCard.objects.select_for_update().filter(
            client=client, service=service, uuid__in=[row[0] for row in items]
        )
    }
    unknown = [str(row[0]) for row in items if row[0] not in issued]
    if unknown:
        raise cds_hooks.MalformedRequest(f"cards not issued by this service to this EHR: {', '.join(unknown[:5])}")
    for index, (card_uuid, _outcome, _at, accepted, *_rest) in enumerate(items):
        offered = set(issued[card_uuid].suggestions)
        for position, suggestion_id in enumerate(accepted):
            if suggestion_id not in offered:
                raise cds_hooks.MalformedRequest(
                    f"feedback[{index}].acceptedSuggestions[{position}].id is not a suggestion of card {card_uuid}"
                )
    answered = {
        row.card_id: row
        for row in CardFeedback.objects.filter(card__in=[issued[row[0]] for row in items]).order_by("received_at")
    }
    repeated = set()
    for index, (card_uuid, outcome, _at, accepted, *_rest) in enumerate(items):
        earlier = answered.get(issued[card_uuid].pk)
        if earlier is None:
            continue
        if earlier.outcome != outcome or sorted(earlier.accepted_suggestions) != sorted(accepted):
            raise FeedbackConflict(
                f"feedback[{index}]: card {card_uuid} was already answered ({earlier.outcome}); "
                "a card takes one outcome"
            )
        repeated.add(card_uuid)  # the same outcome sent again (a retry): kept once
    items = [row for row in items if row[0] not in repeated]
    return [
        CardFeedback(
            card=issued[card_uuid],
            card_uuid=card_uuid,
            service=service,
            rule=issued[card_uuid].rule,
            outcome=outcome,
            outcome_at=outcome_at,
            accepted_suggestions=accepted,
            override_reason_code=code if outcome == "overridden" else "",
            override_reason_display=display if outcome == "overridden" else "",
            override_comment=comment if outcome == "overridden" else "",
            client=client,
        )
        for card_uuid, outcome, outcome_at, accepted, code, display, comment in items
    ]


@csrf_exempt
def feedback(request, service_id: str):
    if service_id not in (cds_hooks.WORKUP_SERVICE, cds_hooks.IMAGING_SERVICE):
        return _error(404, "no such service")
    if request.method == "OPTIONS":
        return _json({})
    if request.method != "POST":
        response = _error(405, "use POST")
        response["Allow"] = "POST, OPTIONS"
        return response
    try:
        client = authenticate_ehr(request, also_audience=_service_url(request).rsplit("/feedback", 1)[0])
    except Unauthorized as problem:
        return _refusal(problem)
    body = _read_body(request)
    if isinstance(body, JsonResponse):
        return body
    try:
        with transaction.atomic():
            CardFeedback.objects.bulk_create(_feedback_rows(body, client, service_id))
    except cds_hooks.MalformedRequest as problem:
        return _error(400, str(problem))
    except FeedbackConflict as problem:
        return _error(409, str(problem))
    return _json({})
