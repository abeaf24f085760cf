"""An EHR reads each FHIR refusal in one language: the server's own checks are English, and so are the record's
messages passed on with them, whatever Accept-Language the EHR sends (it used to get Russian and English mixed)."""

import json
import re

from tests.record_factories import encounter_of, workup_for

FHIR = "application/fhir+json"
LOINC, UCUM = "http://loinc.org", "http://unitsofmeasure.org"
CYRILLIC = re.compile("[а-яё]", re.IGNORECASE)


def diagnostics(response) -> list[str]:
    assert response["Content-Type"].startswith(FHIR)
    outcome = json.loads(response.content)
    assert outcome["resourceType"] == "OperationOutcome", outcome
    return [issue["diagnostics"] for issue in outcome["issue"]]


def test_a_result_refused_for_its_value_and_its_date_is_explained_in_english_only(gp_api, gp):
    encounter = encounter_of(gp)
    resource = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": "718-7"}]},
        "subject": {"reference": f"Patient/{encounter.patient_id}"},
        "encounter": {"reference": f"Encounter/{encounter.pk}"},
        "valueQuantity": {"value": 900, "unit": "g/L", "system": UCUM, "code": "g/L"},
        "effectiveDateTime": "2090-01-01",
    }

    response = gp_api.generic(
        "POST", "/fhir/Observation", json.dumps(resource), content_type=FHIR, HTTP_ACCEPT_LANGUAGE="ru"
    )

    assert response.status_code == 400
    texts = diagnostics(response)
    # Both problems, the range (the record's check) and the date, named in the same language.
    assert any("Haemoglobin" in text and "check the unit" in text for text in texts), texts
    assert any("future" in text for text in texts), texts
    assert not [text for text in texts if CYRILLIC.search(text)], texts
    assert response["Content-Language"] == "en"
    assert not encounter.results.exists()


def test_a_patient_refused_by_the_record_is_explained_in_english_on_the_fhir_server(gp_api):
    patient = {
        "resourceType": "Patient",
        # "Ivanоv" with a Cyrillic о: the record refuses a name mixing alphabets.
        "name": [{"family": "Ivan\u043ev", "given": ["Ivan"]}],
        "gender": "male",
        "birthDate": "1970-01-01",
    }

    for path in ("/fhir/Patient", "/api/v1/fhir/Patient"):
        response = gp_api.generic("POST", path, json.dumps(patient), content_type=FHIR, HTTP_ACCEPT_LANGUAGE="ru")

        assert response.status_code == 400, (path, response.content)
        texts = diagnostics(response)
        # The message names the Cyrillic letter it found; the rest of it is English.
        assert any("mixed" in text for text in texts), texts
        assert not [text for text in texts if CYRILLIC.search(text.replace("\u043e", ""))], texts
        assert response["Content-Language"] == "en"


def test_a_resource_read_in_russian_keeps_its_clinic_texts(gp_api, gp):
    """The refusals' language is not the resources': a read answers with what the record holds."""
    encounter = encounter_of(gp)

    response = gp_api.get(f"/fhir/Encounter/{encounter.pk}", HTTP_ACCEPT_LANGUAGE="ru")

    assert response.status_code == 200
    assert json.loads(response.content)["id"] == str(encounter.pk)


def test_a_resource_read_names_no_language_the_request_asked_for(gp_api, gp):
    """The same body in either language (English codes beside the clinic's own texts): a Content-Language that
    followed Accept-Language would tell a cache or a reader it was Russian, or English, when it is neither."""
    encounter = encounter_of(gp)
    workup_for(gp, encounter)

    bodies = set()
    for language in ("ru", "en"):
        for path in (f"/fhir/Encounter/{encounter.pk}", f"/fhir/RequestGroup/workup-{encounter.pk}", "/fhir/metadata"):
            response = gp_api.get(path, HTTP_ACCEPT_LANGUAGE=language)
            assert response.status_code == 200, response.content
            assert not response.has_header("Content-Language"), (path, response["Content-Language"])
            if "metadata" not in path:
                bodies.add((path, response.content))
    assert len(bodies) == 2
