"""A reference is this server's resource only when it is relative (Patient/12) or a full URL under this server's
FHIR base. Another server's Patient/12 is another patient: a lab result posted for it is refused rather than
filed on this clinic's patient 12, and a search for it finds nothing."""

import json

import pytest

from tests.record_factories import encounter_of
from tests.test_fhir_server import hemoglobin, outcome, post
from workups.models import Result

EHR_BASE = "https://ehr.example.org/fhir/"


@pytest.mark.parametrize(
    "subject, encounter",
    [
        (f"{EHR_BASE}Patient/{{patient}}", f"{EHR_BASE}Encounter/{{encounter}}"),
        (f"{EHR_BASE}Patient/{{patient}}", "Encounter/{encounter}"),
        ("Patient/{patient}", "http://testserver/api/v1/Encounter/{encounter}"),
        ("other/Patient/{patient}", "Encounter/{encounter}"),
    ],
)
def test_a_result_for_another_servers_patient_or_encounter_is_refused(gp, gp_api, subject, encounter):
    ours = encounter_of(gp)
    numbers = {"patient": ours.patient_id, "encounter": ours.pk}
    resource = hemoglobin(
        ours,
        subject={"reference": subject.format(**numbers)},
        encounter={"reference": encounter.format(**numbers)},
    )

    response = post(gp_api, "/fhir/Observation", resource)

    refused = outcome(response, 400)
    where = {expression for issue in refused["issue"] for expression in issue.get("expression", [])}
    assert where & {"Observation.subject", "Observation.encounter"}
    assert not Result.objects.exists()


def test_a_result_naming_this_servers_resources_by_full_url_is_taken(gp, gp_api):
    ours = encounter_of(gp)
    resource = hemoglobin(
        ours,
        subject={"reference": f"http://testserver/fhir/Patient/{ours.patient_id}"},
        encounter={"reference": f"HTTP://TestServer/fhir/Encounter/{ours.pk}/"},
    )

    response = post(gp_api, "/fhir/Observation", resource)

    assert response.status_code == 201, response.content
    assert Result.objects.filter(encounter=ours).count() == 1


@pytest.mark.parametrize("name", ["patient", "subject"])
def test_a_search_by_another_servers_patient_finds_nothing(gp, gp_api, name):
    ours = encounter_of(gp)

    foreign = json.loads(gp_api.get("/fhir/Encounter", {name: f"{EHR_BASE}Patient/{ours.patient_id}"}).content)
    local = json.loads(
        gp_api.get("/fhir/Encounter", {name: f"http://testserver/fhir/Patient/{ours.patient_id}"}).content
    )

    assert foreign["total"] == 0
    assert [entry["resource"]["id"] for entry in local["entry"]] == [str(ours.pk)]


def test_a_search_by_another_servers_encounter_finds_nothing(gp, gp_api):
    ours = encounter_of(gp)

    found = json.loads(gp_api.get("/fhir/Observation", {"encounter": f"{EHR_BASE}Encounter/{ours.pk}"}).content)

    assert found["total"] == 0
