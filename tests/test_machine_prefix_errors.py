"""Under /api/, /fhir/ and /cds-services/ every refusal is what a machine client reads: JSON (an
OperationOutcome on /fhir/), never the app's HTML pages: a body over Django's upload limit is a 413, an
unknown route a 404, and a POST to an /api/ route without its trailing slash is not redirected with a 301
(which a client may resend as a GET)."""

import json

import pytest
from django.conf import settings

FHIR = "application/fhir+json"


def too_big() -> str:
    return json.dumps({"notes": "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)})


def assert_operation_outcome(response, status, fragment):
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith(FHIR)
    result = json.loads(response.content)
    assert result["resourceType"] == "OperationOutcome"
    assert fragment in result["issue"][0]["diagnostics"]
    return result


# -- bodies over the upload limit --------------------------------------------------------------------


@pytest.mark.parametrize(
    "method, url", [("POST", "/fhir/Patient"), ("POST", "/fhir/Observation"), ("PUT", "/fhir/Patient/1")]
)
def test_a_fhir_body_over_the_limit_is_a_413_operation_outcome(gp_api, method, url):
    response = gp_api.generic(method, url, too_big(), content_type=FHIR, HTTP_IF_MATCH='W/"1"')

    result = assert_operation_outcome(response, 413, "too large")
    assert result["issue"][0]["code"] == "too-costly"


@pytest.mark.parametrize(
    "url", ["/api/v1/patients/", "/api/v1/encounters/", "/api/v1/workup/evaluate/", "/api/v1/fhir/Patient"]
)
def test_an_api_body_over_the_limit_is_a_413_in_json(gp_api, url):
    response = gp_api.generic("POST", url, too_big(), content_type="application/json")

    assert response.status_code == 413, response.content
    assert response["Content-Type"].startswith("application/json")
    assert "too large" in response.json()["detail"]


def test_an_anonymous_body_over_the_limit_is_never_an_html_page(anonymous, db):
    response = anonymous.generic("POST", "/api/v1/auth/token/", too_big(), content_type="application/json")

    assert response.status_code in (401, 413), response.content
    assert response["Content-Type"].startswith("application/json")


# -- unknown routes and the trailing slash -----------------------------------------------------------


@pytest.mark.parametrize("url", ["/api/v1/no-such-thing/", "/api/v2/patients/", "/api/v1/patients/abc/"])
def test_an_unknown_api_route_is_a_json_404(gp_api, url):
    response = gp_api.get(url)

    assert response.status_code == 404, response.content
    assert response["Content-Type"].startswith("application/json")
    assert "/api/schema/" in response.json()["detail"]


@pytest.mark.parametrize("url", ["/cds-services/no-such-service", "/cds-services/back-numbness-workup/extra"])
def test_an_unknown_cds_route_is_a_json_404(client, db, url):
    response = client.post(url, data="{}", content_type="application/json")

    assert response.status_code == 404, response.content
    assert response["Content-Type"].startswith("application/json")
    assert "/cds-services" in response.json()["error"]


@pytest.mark.parametrize("url", ["/fhir/", "/fhir/Patient/1/2/3/4"])
def test_an_unknown_fhir_route_is_an_operation_outcome_404(gp_api, url):
    assert_operation_outcome(gp_api.get(url), 404, "/fhir/metadata")


def test_a_web_page_that_does_not_exist_is_still_the_html_page(client, db):
    response = client.get("/no-such-page/")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_a_write_to_an_api_route_without_its_slash_is_redirected_keeping_its_method(gp_api, method):
    response = gp_api.generic(method, "/api/v1/encounters?x=1", "{}", content_type="application/json")

    assert response.status_code == 308, response.content
    assert response["Location"] == "/api/v1/encounters/?x=1"


def test_a_get_without_the_slash_is_still_redirected(gp_api):
    response = gp_api.get("/api/v1/patients")

    assert response.status_code in (301, 308) and response["Location"] == "/api/v1/patients/"
