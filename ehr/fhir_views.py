"""FHIR R4 over HTTP: the encounter export, the Patient import and the project's CodeSystem."""

import json

from django.http import HttpResponse
from django.utils import translation
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.exceptions import ParseError, UnsupportedMediaType
from rest_framework.views import APIView

from clinic import selectors
from clinic.api_views import ApiActorMixin
from clinic.parsers import StrictJSONParser
from ehr import fhir

FHIR_JSON = "application/fhir+json"


class FhirJSONParser(StrictJSONParser):
    """FHIR JSON read as the API reads any JSON: standard JSON only (no NaN), nested no deeper than the
    FHIR server allows (a deep body cost recursion in the parser and the models)."""

    media_type = FHIR_JSON


def fhir_response(resource: dict, status: int = 200, **headers) -> HttpResponse:
    response = HttpResponse(
        json.dumps(resource, ensure_ascii=False), status=status, content_type=f"{FHIR_JSON}; charset=utf-8"
    )
    for name, value in headers.items():
        response[name] = value
    if resource.get("resourceType") == "OperationOutcome":
        response["Content-Language"] = "en"
    return response


def fhir_json(description: str) -> OpenApiResponse:
    """A documented answer in FHIR's own media type, as fhir_response sends it."""
    return OpenApiResponse(OpenApiTypes.OBJECT, description=description)


class EncounterFhirView(ApiActorMixin, APIView):
    @extend_schema(
        operation_id="encounter_fhir_export",
        responses={(200, FHIR_JSON): fhir_json("A FHIR R4 collection Bundle")},
    )
    def get(self, request, pk):
        encounter = selectors.encounter_get(actor=self.actor(), encounter_id=pk, action="view")
        bundle = fhir.encounter_export(actor=self.actor(), encounter=encounter, absolute=request.build_absolute_uri)
        return fhir_response(bundle)


class FhirPatientImportView(ApiActorMixin, APIView):
    parser_classes = [FhirJSONParser, StrictJSONParser]

    def dispatch(self, request, *args, **kwargs):
        # One language in an OperationOutcome, as on the FHIR server: the import's own checks are English, so the
        # record's refusals it passes on are too.
        with translation.override("en"):
            return super().dispatch(request, *args, **kwargs)

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        translation.activate("en")  # authentication brought the clinic's language back (dispatch restores it)

    def handle_exception(self, exc):
        # A FHIR client reads errors as an OperationOutcome, whatever went wrong with the body.
        if isinstance(exc, (ParseError, UnsupportedMediaType)):
            issue = {"severity": "error", "code": "structure", "diagnostics": str(exc.detail)}
            return fhir_response(fhir.operation_outcome([issue]), status=exc.status_code)
        return super().handle_exception(exc)

    @extend_schema(
        operation_id="fhir_patient_import",
        request={FHIR_JSON: OpenApiTypes.OBJECT, "application/json": OpenApiTypes.OBJECT},
        responses={
            (201, FHIR_JSON): fhir_json("The Patient, created"),
            (200, FHIR_JSON): fhir_json("The Patient already registered with that identifier, unchanged"),
            (400, FHIR_JSON): fhir_json("An OperationOutcome: what is wrong with the Patient"),
            (409, FHIR_JSON): fhir_json("An OperationOutcome: the Patient's identifiers name different patients"),
            (415, FHIR_JSON): fhir_json("An OperationOutcome: the body is not FHIR JSON"),
        },
    )
    def post(self, request):
        try:
            patient, created = fhir.patient_import(actor=self.actor(), data=request.data)
        except fhir.FhirInvalid as invalid:
            return fhir_response(fhir.operation_outcome(invalid.issues), status=invalid.status)
        location = request.build_absolute_uri(f"/api/v1/patients/{patient.pk}/")
        return fhir_response(fhir.patient_resource(patient), status=201 if created else 200, Location=location)


class FhirCodeSystemView(APIView):
    """The project's code system: public, like any terminology."""

    authentication_classes = []
    permission_classes = []

    @extend_schema(operation_id="fhir_code_system", responses={(200, FHIR_JSON): fhir_json("The CodeSystem")})
    def get(self, request):
        return fhir_response(fhir.code_system_resource())
