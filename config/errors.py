"""The bad request and not found answers.

The bad request page: Django's own is decorated with requires_csrf_token, which reads the form once more for
its token: when reading the form was what failed (a form sent as UTF-16), that raised the same error inside the
error page, and the answer was a bare 500. This one needs nothing from the request but its path and headers.

Under the machine-read prefixes (/api/, /fhir/, /cds-services/) the answer is what a client there reads: JSON
(an OperationOutcome on /fhir/), never the HTML page; a body over DATA_UPLOAD_MAX_MEMORY_SIZE is a 413 there,
and a route that does not exist a JSON 404."""

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpResponseBadRequest, JsonResponse
from django.template import loader
from django.views.defaults import page_not_found

FHIR_PREFIX = "/fhir/"
JSON_PREFIXES = ("/api/", "/cds-services")


def machine_prefix(path: str) -> str | None:
    """ "fhir", "json" or None: what kind of client a path under this prefix serves."""
    if path.startswith(FHIR_PREFIX):
        return "fhir"
    if path.startswith(JSON_PREFIXES):
        return "json"
    return None


def machine_error(request, status: int, message: str, *, fhir_code: str = "invalid", key: str = "detail"):
    """The error as the prefix's clients read one, or None for a browser page."""
    kind = machine_prefix(request.path)
    if kind == "fhir":
        from ehr.fhir_server import FhirError

        return FhirError(status, message, fhir_code).response(request)
    if kind == "json":
        # DRF's {"detail": ...} on /api/; CDS Hooks errors are {"error": ...} (ehr.cds_views).
        key = "error" if request.path.startswith("/cds-services") else key
        return JsonResponse({key: message}, status=status)
    return None


def bad_request(request, exception):
    if isinstance(exception, RequestDataTooBig):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        response = machine_error(
            request, 413, f"The body is too large (at most {limit} bytes).", fhir_code="too-costly"
        )
    else:
        response = machine_error(request, 400, "Bad request.")
    return response or HttpResponseBadRequest(loader.get_template("400.html").render())


NOT_FOUND = {
    "/api/": "No such API endpoint (or method): GET /api/schema/ describes the API.",
    "/fhir/": "No such FHIR endpoint here: /fhir/metadata lists what this server offers.",
    "/cds-services": "No such CDS service: GET /cds-services lists them.",
}


def not_found(request, exception):
    message = next((text for prefix, text in NOT_FOUND.items() if request.path.startswith(prefix)), "Not found.")
    return machine_error(request, 404, message, fhir_code="not-found") or page_not_found(request, exception)
