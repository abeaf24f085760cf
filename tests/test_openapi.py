"""The OpenAPI schema describes the evaluate request and response fully."""

from io import StringIO

import pytest
from django.core.management import call_command


def test_the_schema_describes_the_evaluate_request_and_response(anonymous, db):
    response = anonymous.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = response.json()
    operation = schema["paths"]["/api/v1/workup/evaluate/"]["post"]
    request_ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    response_ref = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    components = schema["components"]["schemas"]
    request = components[request_ref]
    assert set(request["required"]) >= {"sex", "age", "duration_days", "findings"}
    findings_ref = (
        request["properties"]["findings"].get("$ref") or request["properties"]["findings"]["allOf"][0]["$ref"]
    )
    findings = components[findings_ref.rsplit("/", 1)[-1]]
    assert findings["properties"]["rf_saddle_anesthesia"]["type"] == "boolean"
    result = components[response_ref]
    assert {
        "disposition",
        "items",
        "referrals",
        "deferred",
        "withheld",
        "not_indicated",
        "warnings",
        "knowledge_base_version",
    } <= set(result["properties"])
    assert "400" in operation["responses"] and "401" in operation["responses"]


def test_the_interactive_docs_are_served_without_a_cdn(anonymous, db):
    response = anonymous.get("/api/docs/")
    assert response.status_code == 200
    assert b"cdn.jsdelivr" not in response.content


def test_the_interactive_docs_answer_other_methods_with_405_not_a_server_error(anonymous, db):
    for method in ("options", "post", "put", "delete"):
        assert getattr(anonymous, method)("/api/docs/").status_code == 405, method


def test_a_generated_client_sees_every_field_an_encounter_takes(anonymous, db):
    schema = anonymous.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    components = schema["components"]["schemas"]
    for path, method in (("/api/v1/encounters/", "post"), ("/api/v1/encounters/{id}/", "patch")):
        operation = schema["paths"][path][method]
        ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
        assert {"patient", "visit_date", "duration_days", "findings", "temperature_c", "notes"} <= set(
            components[ref]["properties"]
        ), (path, method)


def test_the_evaluate_request_documents_results(anonymous, db):
    schema = anonymous.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    operation = schema["paths"]["/api/v1/workup/evaluate/"]["post"]
    ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    assert "results" in schema["components"]["schemas"][ref]["properties"]


@pytest.mark.parametrize("language", ["en", "ru"])
def test_the_schema_is_generated_without_a_warning(tmp_path, language, db):
    # A warning is a name drf-spectacular had to make up (an enum named by a hash) or a field it could not
    # describe: both reach the generated clients' types. --fail-on-warn makes any warning a failure.
    schema = tmp_path / "schema.yaml"
    call_command(
        "spectacular", "--validate", "--fail-on-warn", "--lang", language, "--file", str(schema), stdout=StringIO()
    )

    assert "SexEnum:" in schema.read_text() and "Sex903Enum" not in schema.read_text()
