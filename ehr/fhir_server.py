"""A FHIR R4 (4.0.1) server at /fhir/: what ehr/fhir.py maps, read and searched by an EHR.

Resources are the encounter export's (same ids, same content), with references made relative
("Patient/12") and documents pointing to their Binary. Every interaction but `metadata` needs the
`Authorization: Token <key>` header, or a SMART Backend Services `Authorization: Bearer <access token>`
whose scopes allow it (ehr.smart); another clinic's resource is a 404 like an unknown one. Errors are
OperationOutcomes. Plain Django views (not DRF): FHIR decides the media types, statuses and error bodies.
"""

from __future__ import annotations

import base64
import json
import re
from datetime import datetime
from functools import wraps
from urllib.parse import urlencode

from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import FileResponse, Http404, HttpResponse, QueryDict
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.cache import get_conditional_response
from django.utils.http import http_date, parse_http_date_safe
from django.views.decorators.csrf import csrf_exempt
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from clinic import selectors
from clinic.audit import actor_from_request, audit_record
from clinic.models import Encounter, Patient
from clinic.numbers import whole_number
from clinic.parsers import nests_deeper_than, strict_loads
from ehr import fhir, identifier_systems, search_continuation, smart

FHIR_JSON = "application/fhir+json"
JSON_TYPES = (FHIR_JSON, "application/json")
FORM = "application/x-www-form-urlencoded"
COUNT_DEFAULT, COUNT_MAX = 50, 200
# The furthest a search pages (well inside a bigint, far past any clinic's records).
OFFSET_MOST = 10**9
BODY_MAX = 1024 * 1024

# What the server does, and nothing else: the CapabilityStatement is built from these tables.
REFERENCE_PARAMS = {"patient": "Patient", "subject": "Patient", "encounter": "Encounter"}
SEARCH_PARAMS = {
    "Patient": {"_id": "token", "identifier": "token", "name": "string", "birthdate": "date"},
    "Encounter": {"_id": "token", "patient": "reference", "subject": "reference"},
    "Observation": {"_id": "token", "patient": "reference", "subject": "reference", "encounter": "reference"},
    "ServiceRequest": {"_id": "token", "patient": "reference", "subject": "reference", "encounter": "reference"},
    "Condition": {"_id": "token", "patient": "reference", "subject": "reference", "encounter": "reference"},
    "DocumentReference": {"_id": "token", "patient": "reference", "subject": "reference", "encounter": "reference"},
    "Task": {"_id": "token", "patient": "reference", "subject": "reference", "encounter": "reference"},
    "RequestGroup": {"_id": "token", "patient": "reference", "subject": "reference", "encounter": "reference"},
    "Binary": {},
}
INTERACTIONS = {
    "Patient": ("read", "vread", "search-type", "create", "update"),
    "Encounter": ("read", "search-type"),
    "Observation": ("read", "search-type", "create"),
    "ServiceRequest": ("read", "search-type"),
    "Condition": ("read", "search-type"),
    "DocumentReference": ("read", "search-type"),
    "Task": ("read", "vread", "search-type", "update"),
    "RequestGroup": ("read", "search-type"),
    "Binary": ("read",),
}
# The total is always exact: _total and fhirpy's _totalMethod are accepted and change nothing.
CONTROL_PARAMS = {"_count", "_offset", "_format", "_total", "_totalMethod"}
# How the audit trail names the kind of a Patient search parameter (clinic.selectors.search_kinds).
FHIR_SEARCH_KINDS = {"_id": "id"}


class FhirError(Exception):
    def __init__(self, status: int, diagnostics: str, code: str = "invalid", expression=None, headers=None):
        super().__init__(diagnostics)
        self.status, self.code, self.expression, self.headers = status, code, expression, headers or {}
        self.diagnostics = diagnostics

    def response(self, request=None):
        issue = {"severity": "error", "code": self.code, "diagnostics": self.diagnostics}
        if self.expression:
            issue["expression"] = [self.expression]
        return respond(request, fhir.operation_outcome([issue]), self.status, **self.headers)


def respond(request, resource: dict, status: int = 200, **headers) -> HttpResponse:
    accept = request.META.get("HTTP_ACCEPT", "") if request is not None else ""
    media = "application/json" if "application/json" in accept and FHIR_JSON not in accept else FHIR_JSON
    response = HttpResponse(
        json.dumps(resource, ensure_ascii=False), status=status, content_type=f"{media}; charset=utf-8"
    )
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    if resource.get("resourceType") == "OperationOutcome":
        response["Content-Language"] = "en"  # the refusals' language (fhir_endpoint), not the request's
    else:
        # English codes and displays beside the clinic's own texts (a rationale, a reason), whatever the request's
        # Accept-Language: no one language to name.
        response.mixed_language = True
    response["Cache-Control"] = "private, no-store"
    return response


def base_url(request) -> str:
    return request.build_absolute_uri(reverse("fhir-metadata")).removesuffix("metadata")


def etag(version) -> str:
    return f'W/"{version}"'


def _last_modified(moment: str | None) -> dict:
    return {"Last-Modified": http_date(datetime.fromisoformat(moment).timestamp())} if moment else {}


def _versions(resource: dict) -> dict:
    """The HTTP headers a read gives of a resource's meta: ETag from versionId, Last-Modified from lastUpdated."""
    meta = resource.get("meta", {})
    headers = {"ETag": etag(meta["versionId"])} if "versionId" in meta else {}
    # A Task has no meta.lastUpdated: its lastModified says when it last changed.
    headers.update(_last_modified(meta.get("lastUpdated") or resource.get("lastModified")))
    return headers


# -- the request: authentication, formats, bodies ---------------------------------------------------


def _authenticate(request):
    try:
        found = smart.authenticate_fhir(Request(request))
    except AuthenticationFailed as error:
        raise FhirError(
            401, str(error.detail), "login", headers={"WWW-Authenticate": smart.challenge(request)}
        ) from None
    if found is None:
        raise FhirError(401, "Send Authorization: Token <key>.", "login", headers={"WWW-Authenticate": "Token"})
    request.user, request.smart_token = found
    actor = actor_from_request(request, channel="fhir")
    translation.activate("en")  # the actor brought the clinic's language and time zone: the zone is what counts
    if actor.clinic is None:
        raise FhirError(403, "The account is not a member of a clinic.", "forbidden")
    return actor


def _check_format(request):
    fmt = request.GET.get("_format")
    if fmt is not None:
        # "application/fhir+json" written into a URL unescaped arrives with its "+" read as a space; clients do
        # send it so, and may add parameters ("; fhirVersion=4.0").
        fmt = fmt.replace(" ", "+").split(";")[0].strip().lower()
    if fmt is not None and fmt not in ("json", *JSON_TYPES):
        raise FhirError(406, "Only JSON is supported (_format json or application/fhir+json).", "not-supported")
    accept = request.META.get("HTTP_ACCEPT", "")
    if accept and not any(kind in accept for kind in ("json", "*/*", "application/*", "application/pdf")):
        raise FhirError(406, "Only application/fhir+json (and application/json) is produced.", "not-supported")


def _body(request) -> dict:
    media = request.content_type.split(";")[0].strip().lower()
    if media not in JSON_TYPES:
        raise FhirError(415, "Send application/fhir+json (or application/json).", "not-supported")
    if len(request.body) > BODY_MAX:
        raise FhirError(413, "The body is too large.", "too-costly")
    try:
        text = request.body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise FhirError(400, f"The body is not JSON: {error}", "structure") from None
    # Checked on the text, before parsing: json.loads (and the models after it) recurse once per level.
    if nests_deeper_than(text, fhir.MAX_DEPTH):
        raise FhirError(400, f"The body nests JSON deeper than {fhir.MAX_DEPTH} levels.", "structure")
    try:
        # Standard JSON only, as the API reads it: NaN, Infinity and 1e400 are not JSON, and no value.
        return strict_loads(text, depth=fhir.MAX_DEPTH)
    except (ValueError, RecursionError) as error:
        raise FhirError(400, f"The body is not JSON: {error}", "structure") from None


def _if_match(request) -> int | None:
    """The version an update expects, or None for `If-Match: *` (HTTP: any current version will do)."""
    header = request.META.get("HTTP_IF_MATCH")
    if not header:
        raise FhirError(428, 'An update needs If-Match: W/"<versionId>" (read the resource first).', "required")
    if header.strip() == "*":
        return None
    found = re.fullmatch(r'\s*(?:W/)?"?(\d+)"?\s*', header)
    if not found:
        raise FhirError(400, 'If-Match must be W/"<versionId>".', "invalid")
    return int(found.group(1))


def _conditional(request, response):
    """A read whose ETag the client holds already (If-None-Match), or unchanged since If-Modified-Since: 304, with
    no body (HTTP; FHIR's conditional read). The read still happened, and was audited."""
    if request.method not in ("GET", "HEAD") or response.status_code != 200 or response.streaming:
        return response
    modified = parse_http_date_safe(response.get("Last-Modified", ""))
    return get_conditional_response(request, etag=response.get("ETag"), last_modified=modified, response=response)


def fhir_endpoint(*methods, public=False):
    allowed = (*methods, "HEAD") if "GET" in methods else methods

    def decorate(view):
        @csrf_exempt
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            # One language in every answer: the server's own refusals are English (for the integrator), so the
            # record's messages it passes on (a result out of range, a refused transition) are English too,
            # whatever Accept-Language says. The resources carry the clinic's texts, in no request's language.
            with translation.override("en"):
                try:
                    return _conditional(request, answer(request, *args, **kwargs))
                except FhirError as error:
                    return error.response(request)
                except fhir.FhirInvalid as invalid:
                    return respond(request, fhir.operation_outcome(invalid.issues), invalid.status)
                except Http404:
                    return FhirError(404, "No such resource.", "not-found").response(request)

        def answer(request, *args, **kwargs):
            if request.method not in allowed:
                raise FhirError(
                    405,
                    f"{request.method} is not supported here.",
                    "not-supported",
                    headers={"Allow": ", ".join(allowed)},
                )
            if request.method == "HEAD":
                # HTTP's HEAD: the GET's status and headers (ETag, Last-Modified), read and audited alike, with no
                # body.
                request.method = "GET"
                try:
                    response = wrapped(request, *args, **kwargs)
                finally:
                    request.method = "HEAD"
                if response.streaming:
                    response.streaming_content = ()  # the file stays registered to be closed
                else:
                    response.content = b""
                return response
            actor = None if public else _authenticate(request)
            if request.method != "POST" or not request.path.endswith("/_search"):
                _check_format(request)
            resource_type = kwargs.get("resource_type")
            if resource_type is not None and resource_type not in INTERACTIONS:
                raise FhirError(404, f"{resource_type} is not a resource type this server has.", "not-supported")
            problem = smart.scope_problem(request, resource_type, instance="resource_id" in kwargs)
            if problem:
                raise FhirError(403, problem, "forbidden")
            return view(request, actor, *args, **kwargs)

        return wrapped

    return decorate


@csrf_exempt
def unknown(request, rest=""):
    """Any other path under the FHIR base: a FHIR client reads an OperationOutcome, not the app's HTML page."""
    return FhirError(
        404, "No such FHIR endpoint here: /fhir/metadata lists what this server offers.", "not-found"
    ).response(request)


# -- resources as the export makes them -------------------------------------------------------------


def _rewrite(value, references: dict):
    if isinstance(value, dict):
        return {
            key: (
                references.get(inner, inner)
                if key == "reference" and isinstance(inner, str)
                else _rewrite(inner, references)
            )
            for key, inner in value.items()
        }
    if isinstance(value, list):
        return [_rewrite(inner, references) for inner in value]
    return value


def encounter_resources(request, encounter: Encounter) -> list[dict]:
    """The encounter's resources, references relative, documents pointing to their Binary."""
    base = base_url(request)
    bundle = fhir.encounter_resources(
        encounter=encounter,
        absolute=request.build_absolute_uri,
        binary_url=lambda resource_id: f"{base}Binary/{resource_id}",
    )
    references = {
        entry["fullUrl"]: f"{entry['resource']['resourceType']}/{entry['resource']['id']}" for entry in bundle["entry"]
    }
    return [_rewrite(entry["resource"], references) for entry in bundle["entry"]]


_ID = re.compile(r"(?:(referral|requisition|leaflet|item|result|workup)-)?(\d+)(?:-[a-z0-9-]+)?")


def _encounter_id_of(resource_type: str, resource_id: str):
    """Which encounter a resource id belongs to (the ids are the export's), or None."""
    from referrals.models import Leaflet, Referral, Requisition
    from workups.models import Result, WorkupItem

    found = _ID.fullmatch(resource_id or "")
    kind, pk = (found.group(1), whole_number(found.group(2))) if found and len(resource_id) <= 64 else (None, None)
    if pk is None:
        return None
    allowed = {
        "Encounter": {None},
        "Observation": {None, "result"},
        "ServiceRequest": {"item", "referral"},
        "Condition": {"referral"},
        "Task": {"referral"},
        "DocumentReference": {"referral", "requisition", "leaflet"},
        "Binary": {"referral", "requisition", "leaflet"},
        "RequestGroup": {"workup"},
    }[resource_type]
    exact = {"Encounter": str(pk), "RequestGroup": f"workup-{pk}"}.get(resource_type, resource_id)
    if kind not in allowed or resource_id != exact:
        return None
    if kind in (None, "workup"):  # the encounter's own id
        return pk
    model, field = {
        "result": (Result, "encounter_id"),
        "item": (WorkupItem, "workup__encounter_id"),
        "referral": (Referral, "encounter_id"),
        "requisition": (Requisition, "encounter_id"),
        "leaflet": (Leaflet, "encounter_id"),
    }[kind]
    return model.objects.filter(pk=pk).values_list(field, flat=True).first()


def _find(request, actor, resource_type: str, resource_id: str) -> dict:
    encounter_id = _encounter_id_of(resource_type, resource_id)
    if encounter_id is None:
        raise Http404
    encounter = selectors.encounter_get(actor=actor, encounter_id=encounter_id)
    for resource in encounter_resources(request, encounter):
        if resource["resourceType"] == resource_type and resource["id"] == resource_id:
            return resource
    raise Http404


# -- search -----------------------------------------------------------------------------------------


def _reference_value(request, value: str, resource_type: str):
    """The id a reference search parameter gives: "12", "Patient/12" or this server's full URL of it (another
    server's Patient/12 is another patient: None)."""
    text = value.strip().rstrip("/")
    if "/" not in text:
        return whole_number(text)
    return fhir.local_reference_id(text, resource_type, base_url(request))


def _paging(params) -> tuple[int, int]:
    count = whole_number(params.get("_count", str(COUNT_DEFAULT)))
    if count is None:
        raise FhirError(400, "_count must be a whole number (0 or more).", "invalid", "_count")
    offset = whole_number(params.get("_offset", "0"), most=OFFSET_MOST)
    if offset is None:
        raise FhirError(400, f"_offset must be a whole number from 0 to {OFFSET_MOST}.", "invalid", "_offset")
    return min(count, COUNT_MAX), offset


def _params(request, resource_type) -> dict:
    """The search parameters (one value each: a repeated parameter is refused rather than half-read)."""
    params = QueryDict(mutable=True)
    params.update(request.GET)
    if request.method == "POST":
        media = request.content_type.split(";")[0].strip().lower()
        if request.body and media != FORM:
            raise FhirError(415, f"POST _search takes {FORM}.", "not-supported")
        params.update(request.POST)
    known = set(SEARCH_PARAMS[resource_type]) | CONTROL_PARAMS | {search_continuation.PARAM}
    # FHIR search: with `Prefer: handling=lenient` a parameter the server does not support is left out (the
    # Bundle's self link shows what was used); by default, or with handling=strict, it is refused.
    lenient = "handling=lenient" in request.META.get("HTTP_PREFER", "").replace(" ", "").lower()
    result = {}
    for name in params:
        if name not in known and lenient:
            continue
        if name not in known:
            raise FhirError(
                400,
                f"Search parameter {name} is not supported for {resource_type}; supported: "
                + ", ".join(sorted(SEARCH_PARAMS[resource_type]))
                + ".",
                "not-supported",
                name,
            )
        values = params.getlist(name)
        longest = 4000 if name == search_continuation.PARAM else 200
        if len(values) != 1 or len(values[0]) > longest:
            raise FhirError(400, f"Give {name} once (at most {longest} characters).", "invalid", name)
        if "," in values[0] and name not in CONTROL_PARAMS:
            # A comma means "this or that" in FHIR search; read as one value it would find nothing, which a
            # client takes for "no data".
            raise FhirError(
                400,
                f"{name}: several values (a comma) are not supported; search once per value.",
                "not-supported",
                name,
            )
        result[name] = values[0]
    return result


def _criteria(request, actor, resource_type, params) -> tuple[dict, dict]:
    """The search's terms, and what its Bundle's page links carry: the parameters as given, or, for a search
    sent by POST (and the pages that follow it), its terms sealed in one `_getpages` token, so that links a
    client follows with GET keep the terms out of URLs (ehr.search_continuation)."""
    criteria = {name: value for name, value in params.items() if name not in CONTROL_PARAMS}
    controls = {name: value for name, value in params.items() if name in CONTROL_PARAMS}
    now = int(timezone.now().timestamp())
    name = search_continuation.PARAM
    if name in criteria:
        token = criteria.pop(name)
        if criteria:
            raise FhirError(
                400,
                f"{name} carries its search's terms: follow the link as given, with no other search parameter.",
                "invalid",
                name,
            )
        try:
            criteria = search_continuation.unseal(
                token, clinic_id=actor.clinic.pk, resource_type=resource_type, now=now
            )
        except search_continuation.Expired:
            raise FhirError(
                410, "The pages of a search sent by POST are kept for an hour: search again.", "processing", name
            ) from None
        except search_continuation.Refused:
            raise FhirError(
                400, f"{name} is not a search of this server for {resource_type}: search again.", "invalid", name
            ) from None
        return criteria, {**controls, name: token}
    if request.method == "POST" and criteria:
        token = search_continuation.seal(
            clinic_id=actor.clinic.pk, resource_type=resource_type, criteria=criteria, now=now
        )
        return criteria, {**controls, name: token}
    return criteria, params


def _searchset(request, resource_type, params, resources, total, offset, count) -> dict:
    base = base_url(request)

    def link(relation, at):
        query = {**params, "_count": count, "_offset": at}
        return {"relation": relation, "url": f"{base}{resource_type}?{urlencode(query)}"}

    links = [link("self", offset)]
    if offset + count < total and count:
        links.append(link("next", offset + count))
    if offset > 0:
        links.append(link("previous", max(offset - count, 0)))
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": total,
        "link": links,
        "entry": [
            {
                "fullUrl": f"{base}{resource['resourceType']}/{resource['id']}",
                "resource": resource,
                "search": {"mode": "match"},
            }
            for resource in resources
        ],
    }


def _identifier_filter(patients, value: str):
    """`identifier=system|value` (the EHR's number, or SNILS and the OMS policy in RuCoreIG's systems or their
    synonyms, written with or without separators), `|value` (the clinic's own number) or a bare value (any)."""
    system, _, identifier = value.partition("|") if "|" in value else (None, None, value)
    match = identifier_systems.identifier_q(system, identifier)
    return patients.filter(match) if match is not None else patients.none()


def _patients(actor, params):
    from datetime import date

    birth_date = None
    if "birthdate" in params:
        text = params["birthdate"].removeprefix("eq")
        try:
            birth_date = date.fromisoformat(text)
        except ValueError:
            raise FhirError(400, "birthdate must be YYYY-MM-DD (eq only).", "invalid", "birthdate") from None
    patients = selectors.patient_queryset(actor=actor, search=params.get("name"), birth_date=birth_date)
    if "identifier" in params:
        patients = _identifier_filter(patients, params["identifier"])
    if "_id" in params:
        pk = whole_number(params["_id"])
        patients = patients.filter(pk=pk) if pk is not None else patients.none()
    return patients


def search(request, actor, resource_type):
    params = _params(request, resource_type)
    count, offset = _paging(params)
    criteria, params = _criteria(request, actor, resource_type, params)
    if resource_type == "Patient":
        patients = _patients(actor, criteria)
        total = patients.count()
        page = selectors.patient_rows(patients=patients, offset=offset, limit=count) if count else []
        terms = {FHIR_SEARCH_KINDS.get(name, name): value for name, value in criteria.items()}
        kinds = selectors.search_kinds(search=terms.pop("name", None), birth_date=terms.pop("birthdate", None), **terms)
        selectors.patients_listed(actor=actor, patients=page, kinds=kinds)
        resources = [fhir.patient_resource(patient) for patient in page]
        return respond(request, _searchset(request, resource_type, params, resources, total, offset, count))
    if resource_type == "Binary":
        raise FhirError(405, "Binary is read only (GET /fhir/Binary/<id>).", "not-supported")
    if not criteria:
        raise FhirError(
            400,
            f"Search {resource_type} by "
            + ", ".join(sorted(SEARCH_PARAMS[resource_type]))
            + ": a search of the whole clinic is not offered.",
            "too-costly",
        )
    encounters = Encounter.objects.filter(clinic=actor.clinic).order_by("-visit_date", "-id")
    for name in ("patient", "subject"):
        if name in criteria:
            pk = _reference_value(request, criteria[name], "Patient")
            encounters = encounters.filter(patient_id=pk) if pk is not None else encounters.none()
    if "encounter" in criteria:
        pk = _reference_value(request, criteria["encounter"], "Encounter")
        encounters = encounters.filter(pk=pk) if pk is not None else encounters.none()
    if "_id" in criteria:
        encounter_id = _encounter_id_of(resource_type, criteria["_id"])
        encounters = encounters.filter(pk=encounter_id) if encounter_id is not None else encounters.none()
    found = []
    for encounter_id in encounters.values_list("pk", flat=True)[:1000]:
        encounter = selectors.encounter_get(actor=actor, encounter_id=encounter_id, action="search")
        found += [
            resource
            for resource in encounter_resources(request, encounter)
            if resource["resourceType"] == resource_type
            and ("_id" not in criteria or resource["id"] == criteria["_id"])
        ]
    return respond(
        request, _searchset(request, resource_type, params, found[offset : offset + count], len(found), offset, count)
    )


# -- the views --------------------------------------------------------------------------------------


@fhir_endpoint("GET", public=True)
def metadata(request, actor):
    return respond(request, capability_statement(request))


@fhir_endpoint("GET", "POST")
def type_level(request, actor, resource_type):
    if request.method == "GET":
        return search(request, actor, resource_type)
    if "create" not in INTERACTIONS[resource_type]:
        raise FhirError(405, f"{resource_type} cannot be created here.", "not-supported", headers={"Allow": "GET"})
    if resource_type == "Patient":
        return patient_create(request, actor)
    return observation_create(request, actor)


@fhir_endpoint("POST")
def search_post(request, actor, resource_type):
    return search(request, actor, resource_type)


@fhir_endpoint("GET", "PUT")
def instance(request, actor, resource_type, resource_id):
    if request.method == "PUT":
        if "update" not in INTERACTIONS[resource_type]:
            raise FhirError(405, f"{resource_type} cannot be updated here.", "not-supported", headers={"Allow": "GET"})
        if resource_type == "Patient":
            return patient_update(request, actor, resource_id)
        return task_update(request, actor, resource_id)
    if resource_type == "Patient":
        patient = selectors.patient_get(actor=actor, patient_id=_patient_id(resource_id))
        resource = fhir.patient_resource(patient)
        return respond(request, resource, **_versions(resource))
    if resource_type == "Binary":
        return binary_read(request, actor, resource_id)
    resource = _find(request, actor, resource_type, resource_id)
    return respond(request, resource, **_versions(resource))


def _patient_id(resource_id: str):
    """A Patient id as the server writes it (`12`, never `012`: one resource, one id), or None (a 404)."""
    pk = whole_number(resource_id)
    return pk if pk is not None and str(pk) == resource_id else None


def _current(request, actor, resource_type, resource_id) -> dict:
    if resource_type == "Patient":
        patient = selectors.patient_get(actor=actor, patient_id=_patient_id(resource_id))
        return fhir.patient_resource(patient)
    return _find(request, actor, resource_type, resource_id)


@fhir_endpoint("GET")
def vread(request, actor, resource_type, resource_id, version_id):
    """vread of the current version (the one a write's Location names); older versions are not kept."""
    if "vread" not in INTERACTIONS[resource_type]:
        raise FhirError(404, f"{resource_type} has no versions to read: read {resource_type}/<id>.", "not-supported")
    resource = _current(request, actor, resource_type, resource_id)
    current = whole_number(resource["meta"]["versionId"])
    wanted = whole_number(version_id)
    if wanted is None or current is None or wanted > current:
        raise FhirError(404, f"{resource_type}/{resource_id} has no version {version_id}.", "not-found")
    if wanted < current:
        raise FhirError(
            410,
            f"Version {wanted} is not kept: {resource_type}/{resource_id} is at version {current}.",
            "not-found",
            headers={"ETag": etag(current)},
        )
    return respond(request, resource, **_versions(resource))


def _patient_response(request, patient, status):
    location = f"{base_url(request)}Patient/{patient.pk}/_history/{patient.version}"
    resource = fhir.patient_resource(patient)
    return respond(request, resource, status, Location=location, **_versions(resource))


def patient_create(request, actor):
    data = _body(request)
    criteria = request.META.get("HTTP_IF_NONE_EXIST")
    # fhirpy's get_or_create sends the criteria as the query string of the POST.
    query = QueryDict(criteria) if criteria else request.GET.copy()
    query = {name: query.getlist(name) for name in query if name != "_format"}
    if query:
        if set(query) - {"identifier"} or any(len(values) != 1 for values in query.values()):
            raise FhirError(
                400, "If-None-Exist supports identifier=system|value (once).", "not-supported", "If-None-Exist"
            )
        matches = list(_identifier_filter(selectors.patient_queryset(actor=actor), query["identifier"][0])[:2])
        if len(matches) > 1:
            raise FhirError(412, "More than one patient matches If-None-Exist.", "multiple-matches")
        if matches:
            patient = selectors.patient_get(actor=actor, patient_id=matches[0].pk)
            return _patient_response(request, patient, 200)
    fhir.write_checks(data, "Patient")
    patient, created = fhir.patient_import(actor=actor, data=data)
    return _patient_response(request, patient, 201 if created else 200)


def _same_id(data, resource_id, resource_type):
    if not isinstance(data, dict) or data.get("id") != resource_id:
        raise FhirError(
            400, f"The body's id must be {resource_id}, the id in the URL.", "invalid", f"{resource_type}.id"
        )


def patient_update(request, actor, resource_id):
    data = _body(request)
    expected = _if_match(request)
    with transaction.atomic():
        patient = selectors.patient_get(actor=actor, patient_id=_patient_id(resource_id), action="open_for_update")
        patient = Patient.objects.select_for_update().get(pk=patient.pk)
        if expected is not None and patient.version != expected:
            raise FhirError(
                412,
                f"The patient is at version {patient.version}: read it again.",
                "conflict",
                headers={"ETag": etag(patient.version)},
            )
        _same_id(data, resource_id, "Patient")
        fhir.write_checks(data, "Patient")
        patient = fhir.patient_update_from_fhir(actor=actor, patient=patient, data=data)
    return _patient_response(request, patient, 200)


def observation_create(request, actor):
    data = _body(request)
    fields = fhir.observation_result_fields(data, time_zone=actor.clinic.time_zone, base=base_url(request))
    patient = Patient.objects.filter(clinic=actor.clinic, pk=fields["patient_id"]).first()
    if patient is None:
        raise FhirError(422, "No such Patient.", "not-found", "Observation.subject")
    encounter = Encounter.objects.filter(clinic=actor.clinic, pk=fields["encounter_id"], patient=patient).first()
    if encounter is None:
        raise FhirError(
            422,
            "The encounter must be one of this patient's (the one that ordered the test).",
            "not-found",
            "Observation.encounter",
        )
    with transaction.atomic():
        result = fhir.result_from_fhir(actor=actor, encounter=encounter, fields=fields)
    resource = _find(request, actor, "Observation", fhir.result_resource_id(result))
    return respond(
        request,
        resource,
        201,
        Location=f"{base_url(request)}Observation/{resource['id']}",
        **_last_modified(result.entered_at.isoformat()),
    )


def task_update(request, actor, resource_id):
    from referrals.models import Referral
    from referrals.services import TransitionRefused, referral_status_change

    data = _body(request)
    expected = _if_match(request)
    found = re.fullmatch(r"referral-(\d+)", resource_id)
    with transaction.atomic():
        referral = (
            Referral.objects.select_for_update()
            .filter(pk=int(found.group(1)) if found else None, clinic=actor.clinic)
            .exclude(status="draft")
            .first()
        )
        if referral is None:
            raise Http404
        selectors.encounter_get(actor=actor, encounter_id=referral.encounter_id, action="open_for_update")
        version = fhir.referral_version(referral)
        if expected is not None and version != expected:
            raise FhirError(
                412, f"The Task is at version {version}: read it again.", "conflict", headers={"ETag": etag(version)}
            )
        _same_id(data, resource_id, "Task")
        change = fhir.task_change(data, referral)
        if change is not None:
            try:
                referral_status_change(actor=actor, referral=referral, **change)
            except TransitionRefused as refused:
                raise FhirError(409, str(refused.message), "business-rule", "Task.status") from None
            except ValidationError as error:
                raise fhir.FhirInvalid(
                    [
                        {
                            "severity": "error",
                            "code": "invalid",
                            "diagnostics": " ".join(messages),
                            "expression": [fhir.TASK_EXPRESSIONS.get(field, "Task")],
                        }
                        for field, messages in error.message_dict.items()
                    ]
                ) from None
    resource = _find(request, actor, "Task", resource_id)
    return respond(request, resource, **_versions(resource))


def binary_read(request, actor, resource_id):
    from referrals.models import Leaflet, Referral, Requisition

    _find(request, actor, "DocumentReference", resource_id)  # scoped, and only a document that is ready
    kind, _, pk = resource_id.partition("-")
    model = {"referral": Referral, "requisition": Requisition, "leaflet": Leaflet}[kind]
    document = model.objects.get(pk=int(pk))
    if not document.pdf_file:
        raise Http404
    audit_record(
        actor=actor,
        action="download",
        object_type=kind,
        object_id=document.pk,
        patient_id=document.encounter.patient_id,
    )
    accept = request.META.get("HTTP_ACCEPT", "")
    if request.GET.get("_format") or any(kind in accept for kind in JSON_TYPES):
        with document.pdf_file.open("rb") as stored:
            data = base64.b64encode(stored.read()).decode("ascii")
        return respond(
            request,
            {
                "resourceType": "Binary",
                "id": resource_id,
                "contentType": "application/pdf",
                "securityContext": {"reference": f"DocumentReference/{resource_id}"},
                "data": data,
            },
        )
    response = FileResponse(document.pdf_file.open("rb"), content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="{resource_id}.pdf"'
    response["Cache-Control"] = "private, no-store"
    return response


# -- the CapabilityStatement ------------------------------------------------------------------------

SEARCH_DEFINITIONS = {
    "_id": "http://hl7.org/fhir/SearchParameter/Resource-id",
    "identifier": "http://hl7.org/fhir/SearchParameter/Patient-identifier",
    "name": "http://hl7.org/fhir/SearchParameter/Patient-name",
    "birthdate": "http://hl7.org/fhir/SearchParameter/individual-birthdate",
}
SEARCH_DOCUMENTATION = {
    "identifier": (
        "system|value (the system is required to match one patient; a bare value matches any system). "
        f"SNILS: {identifier_systems.SNILS_SYSTEM}|<11 digits, separators allowed>; OMS policy: "
        f"{identifier_systems.OMS_SYSTEM}|<16 digits> (HL7 FHIR Russia RuCoreIG, NamingSystem core-ns-rf-snils "
        "and core-ns-rf-oms). Also accepted: "
        + ", ".join(system for systems in identifier_systems.SYSTEMS.values() for system in systems[1:])
        + "."
    ),
    "name": "Any part of the family or given name, in any script and case",
    "birthdate": "YYYY-MM-DD, equality only",
    "patient": "Patient/<id>, <id> or this server's full URL of it",
    "subject": "Patient/<id>, <id> or this server's full URL of it",
    "encounter": "Encounter/<id>, <id> or this server's full URL of it",
}


def capability_statement(request) -> dict:
    base = base_url(request)
    resources = []
    for resource_type, interactions in INTERACTIONS.items():
        entry = {
            "type": resource_type,
            "interaction": [{"code": code} for code in interactions],
            "versioning": "versioned-update" if "update" in interactions else "no-version",
            "readHistory": False,
            "updateCreate": False,
            "conditionalCreate": resource_type == "Patient",
            "conditionalRead": "full-support" if "vread" in interactions else "not-supported",
            "conditionalUpdate": False,
            "conditionalDelete": "not-supported",
        }
        if resource_type == "Observation":
            entry["documentation"] = (
                "create: a lab result coded in LOINC (ehr/terminology_in.yaml), subject a "
                "Patient and encounter the Encounter that ordered the test; UCUM units "
                "converted, an unknown unit refused."
            )
        if resource_type == "Task":
            entry["documentation"] = (
                "One Task per issued referral (HL7 360X): focus the referral's ServiceRequest, "
                "status requested/accepted/completed/cancelled/rejected. update (If-Match) "
                "records the specialist's outcome: completed with output.valueString."
            )
        if resource_type == "Binary":
            entry["documentation"] = (
                "A document's PDF: Accept application/pdf gives the bytes, "
                "application/fhir+json a Binary with base64 data."
            )
        if resource_type == "Patient":
            entry["supportedProfile"] = [identifier_systems.CORE_PATIENT_PROFILE]
            entry["documentation"] = (
                "create: If-None-Exist identifier=system|value (or the same criteria as the "
                "POST's query string, as fhirpy's get_or_create sends them): a match is "
                "returned unchanged, several are 412. Without criteria, a patient whose number, SNILS "
                "or OMS policy the resource carries is returned unchanged. update: PUT with If-Match "
                "only. Patients are sent on HL7 FHIR Russia Core_Patient: SNILS as "
                f"{identifier_systems.SNILS_SYSTEM} (type core-cs-semd-identifier-type#snils, value "
                f"123-456-789-01), the OMS policy as {identifier_systems.OMS_SYSTEM} (type "
                "core-cs-semd-identifier-type#oms-policy, 16 digits), the patronymic as the second given "
                "name. A SNILS failing its checksum or a policy not of 16 digits is a 400 naming the identifier."
            )
        params = []
        for name, kind in SEARCH_PARAMS[resource_type].items():
            param = {"name": name, "type": kind}
            definition = SEARCH_DEFINITIONS.get(name) or f"http://hl7.org/fhir/SearchParameter/clinical-{name}"
            if name in ("patient", "subject", "encounter") and resource_type in ("Task", "Encounter"):
                definition = f"http://hl7.org/fhir/SearchParameter/{resource_type}-{name}"
            param["definition"] = definition
            if name in SEARCH_DOCUMENTATION:
                param["documentation"] = SEARCH_DOCUMENTATION[name]
            params.append(param)
        if params:
            entry["searchParam"] = params
        resources.append(entry)
    statement = {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": timezone.now().date().isoformat(),
        "publisher": "Back numbness workup",
        "kind": "instance",
        "software": {"name": "Back numbness workup FHIR server"},
        "implementation": {
            "description": "Back numbness workup: the clinic's encounters, results and referrals",
            "url": base.rstrip("/"),
        },
        "fhirVersion": "4.0.1",
        "format": [FHIR_JSON, "json"],
        "rest": [
            {
                "mode": "server",
                "documentation": (
                    f"Searches by GET or POST <type>/_search (form-encoded); searchset Bundles with "
                    f"total and self/next/previous links (a POST search's links carry its terms sealed in "
                    f"{search_continuation.PARAM}, for an hour); _count (default {COUNT_DEFAULT}, at most "
                    f"{COUNT_MAX}) and _offset page. A search parameter not listed is refused (400). "
                    "Another clinic's resources are 404. vread (Patient, Task) serves the current version, "
                    "the one a write's Location names; older versions are not kept (410). Writes answer ETag "
                    'and Last-Modified; an update takes If-Match: W/"<versionId>" or If-Match: *.'
                ),
                "security": {
                    "cors": False,
                    "extension": [
                        {
                            "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
                            "extension": [{"url": "token", "valueUri": smart.token_endpoint(request)}],
                        }
                    ],
                    "service": [
                        {"text": "Token"},
                        {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                                    "code": "SMART-on-FHIR",
                                }
                            ],
                            "text": "SMART-on-FHIR",
                        },
                    ],
                    "description": (
                        "Authorization: Token <key> (the API token of a GP account; POST "
                        "/api/v1/auth/token/) on every interaction except GET /fhir/metadata, or "
                        "SMART Backend Services: Authorization: Bearer <access token> from the token "
                        "endpoint (client_credentials with a private_key_jwt assertion; "
                        ".well-known/smart-configuration) for a registered EHR, which may read with "
                        "system/<type>.read (or .rs) and post lab Observations with "
                        "system/Observation.write (or .c)."
                    ),
                },
                "resource": resources,
            }
        ],
    }
    CapabilityStatement.model_validate(statement)
    return statement
