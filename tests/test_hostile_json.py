"""JSON that is not JSON or is nested absurdly deep gets a clear 400 from every JSON endpoint, also before
anyone is authenticated; a NUL is refused by the field that would hold it, and nothing reaches the database
that it would refuse."""

import pytest

from clinic.models import Encounter, Patient
from tests.cases import body
from tests.record_factories import encounter_body, patient_of

EVALUATE = "/api/v1/workup/evaluate/"


def post_raw(client, url, text):
    return client.generic("POST", url, text, content_type="application/json")


@pytest.mark.parametrize(
    "text, fragment",
    [
        ('{"sex": "male", "age": NaN}', "NaN"),
        ('{"sex": "male", "age": Infinity}', "Infinity"),
        ('{"sex": "male", "age": -Infinity}', "Infinity"),
        ('{"sex": "male", "temperature_c": 1e400}', "too large"),
        ("[" * 5000 + "]" * 5000, "nested deeper"),
        ('{"a": ' * 3000 + "1" + "}" * 3000, "nested deeper"),
    ],
)
def test_a_gp_gets_a_400_naming_the_problem(gp_api, text, fragment):
    response = post_raw(gp_api, EVALUATE, text)

    assert response.status_code == 400
    assert fragment in response.json()["detail"]


@pytest.mark.parametrize("url", ["/api/v1/auth/token/", EVALUATE, "/api/v1/patients/", "/api/v1/encounters/"])
def test_an_anonymous_deeply_nested_body_is_never_a_server_error(anonymous, db, url):
    # (db: the 401 is audited as a refused request.)
    response = post_raw(anonymous, url, "[" * 5000 + "]" * 5000)

    assert response.status_code in (400, 401)


def test_the_token_endpoint_refuses_deep_nesting_with_a_400(anonymous, db):
    response = post_raw(anonymous, "/api/v1/auth/token/", '{"username": ' + "[" * 5000 + "]" * 5000 + "}")

    assert response.status_code == 400


def test_a_nul_in_a_patients_name_is_refused_and_nothing_is_saved(gp_api):
    response = post_raw(
        gp_api,
        "/api/v1/patients/",
        '{"family_name": "Ива\\u0000нова", "given_name": "Мария", "birth_date": "1981-03-02", "sex": "female"}',
    )

    assert response.status_code == 400 and "family_name" in response.json()
    assert not Patient.objects.exists()


def test_a_nul_in_an_encounters_notes_is_refused_and_the_encounter_kept_as_it_was(gp, gp_api):
    import json

    patient = patient_of(gp)
    created = gp_api.post("/api/v1/encounters/", encounter_body(patient), format="json").json()
    text = json.dumps({"notes": {"history": "fell\u0000 down"}})

    response = gp_api.generic("PATCH", f"/api/v1/encounters/{created['id']}/", text, content_type="application/json")

    assert response.status_code == 400 and "history" in response.json()["notes"]
    assert Encounter.objects.get(pk=created["id"]).notes == created["notes"]


def test_brackets_within_text_are_not_nesting(gp, gp_api):
    import json

    patient = patient_of(gp)
    created = gp_api.post("/api/v1/encounters/", encounter_body(patient), format="json").json()
    history = 'fell "[[' + "[" * 100 + "{" * 100 + '" down'  # an escaped quote does not end the text
    text = json.dumps({"notes": {"history": history}})

    response = gp_api.generic("PATCH", f"/api/v1/encounters/{created['id']}/", text, content_type="application/json")

    assert response.status_code == 200, response.content
    assert Encounter.objects.get(pk=created["id"]).notes["history"] == history


def test_deep_nesting_after_a_text_with_brackets_and_escaped_quotes_is_refused(gp_api):
    # The note is the text \"[[[\ (a backslash, a quote, brackets, a backslash): valid JSON, then nesting.
    text = r'{"sex": "male", "note": "\\\"[[[\\", "findings": ' + "[" * 40 + "]" * 40 + "}"

    response = post_raw(gp_api, EVALUATE, text)

    assert response.status_code == 400
    assert "nested deeper" in response.json()["detail"]


def test_ordinary_json_still_works(gp_api):
    assert gp_api.post(EVALUATE, body(temperature_c=37.8), format="json").status_code == 200


def test_a_nul_in_a_search_is_never_a_server_error(gp, gp_api, client):
    patient_of(gp, family_name="Иванова", given_name="Мария", name_search="иванова мария")
    client.force_login(gp)

    api = gp_api.get("/api/v1/patients/", {"search": "ива\x00нова"})
    page = client.post("/", {"q": "ива\x00нова"})

    # The API refuses it by name; the page searches without it.
    assert api.status_code == 400 and "search" in api.json()
    assert page.status_code == 200 and "Иванова" in page.content.decode()


@pytest.mark.parametrize("url", ["/", "/worklist/"])
def test_web_pages_answer_405_to_methods_they_do_not_take(gp, client, url):
    client.force_login(gp)

    assert client.delete(url).status_code == 405
    assert client.put(url).status_code == 405


def test_a_record_page_answers_405_to_delete(gp, client):
    from tests.record_factories import encounter_of, workup_for

    encounter = encounter_of(gp)
    workup_for(gp, encounter)
    client.force_login(gp)

    for url in (
        f"/patients/{encounter.patient_id}/",
        f"/encounters/{encounter.pk}/workup/",
        f"/encounters/{encounter.pk}/workup/print/",
    ):
        assert client.delete(url).status_code == 405, url


# -- FHIR bodies ------------------------------------------------------------------------------------


def _nested_extension(levels: int) -> dict:
    extension = {"url": "https://ehr.example.org/leaf", "valueString": "x"}
    for _ in range(levels):
        extension = {"url": "https://ehr.example.org/nested", "extension": [extension]}
    return extension


def _patient_with_deep_extension(levels=120) -> str:
    import json

    patient = {
        "resourceType": "Patient",
        "id": "1",
        "name": [{"family": "Иванова", "given": ["Анна"]}],
        "gender": "female",
        "birthDate": "1980-05-17",
        "extension": [_nested_extension(levels)],
    }
    return json.dumps(patient)


FHIR_WRITES = [
    ("POST", "/fhir/Patient"),
    ("POST", "/fhir/Observation"),
    ("PUT", "/fhir/Patient/1"),
    ("PUT", "/fhir/Task/referral-1"),
]


@pytest.mark.parametrize("method, url", FHIR_WRITES)
@pytest.mark.parametrize(
    "text", [_patient_with_deep_extension(), "[" * 5000 + "]" * 5000], ids=["deep extension", "bare brackets"]
)
def test_a_fhir_write_nested_too_deep_is_a_400_operation_outcome_naming_the_structure(gp_api, method, url, text):
    response = gp_api.generic(method, url, text, content_type="application/fhir+json", HTTP_IF_MATCH='W/"1"')

    assert response.status_code == 400, response.content
    assert response["Content-Type"].startswith("application/fhir+json")
    issue = response.json()["issue"][0]
    assert response.json()["resourceType"] == "OperationOutcome"
    assert issue["code"] == "structure" and "deeper than 32" in issue["diagnostics"]


@pytest.mark.parametrize(
    "text", [_patient_with_deep_extension(), "[" * 5000 + "]" * 5000], ids=["deep extension", "bare brackets"]
)
def test_the_api_fhir_patient_import_refuses_deep_nesting_with_an_operation_outcome(gp_api, text):
    response = gp_api.generic("POST", "/api/v1/fhir/Patient", text, content_type="application/fhir+json")

    assert response.status_code == 400, response.content
    result = response.json()
    assert result["resourceType"] == "OperationOutcome" and result["issue"][0]["code"] == "structure"
    assert "nested deeper" in result["issue"][0]["diagnostics"]
    assert not Patient.objects.exists()


def test_a_patient_with_a_few_nested_extensions_is_still_taken(gp_api):
    response = gp_api.generic(
        "POST", "/fhir/Patient", _patient_with_deep_extension(levels=5), content_type="application/fhir+json"
    )

    assert response.status_code == 201, response.content


def test_a_recursion_error_in_the_models_is_a_400_not_a_500(gp_api, monkeypatch):
    from fhir.resources.R4B.patient import Patient as FhirPatient

    def recurse(*args, **kwargs):
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(FhirPatient, "model_validate", recurse)
    response = gp_api.generic(
        "POST", "/fhir/Patient", _patient_with_deep_extension(levels=2), content_type="application/fhir+json"
    )

    assert response.status_code == 400, response.content
    assert response.json()["issue"][0]["code"] == "structure"


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_a_fhir_write_with_a_number_json_does_not_have_is_a_400_naming_it(gp_api, constant):
    text = (
        '{"resourceType": "Observation", "status": "final", "code": {"text": "x"}, '
        f'"valueQuantity": {{"value": {constant}, "unit": "g/L"}}}}'
    )

    response = gp_api.generic("POST", "/fhir/Observation", text, content_type="application/fhir+json")

    assert response.status_code == 400, response.content
    issue = response.json()["issue"][0]
    assert issue["code"] == "structure" and constant.lstrip("-").replace("1e400", "too large") in issue["diagnostics"]
