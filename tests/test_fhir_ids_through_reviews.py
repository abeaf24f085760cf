"""An EHR that keeps the FHIR ids it was given finds them again: an order keeps its id through the workups that an
edit of the findings or a review of the results stores after it; an order the GP takes back stays readable,
revoked; a result entered again keeps its Observation id, amended; and the stored workup is one RequestGroup,
every recommendation an action, the ones not ordered as contained proposals."""

import json

import pytest
from fhir.resources.R4B.requestgroup import RequestGroup

from clinic.services import encounter_update
from referrals import services as referral_services
from tests.record_factories import actor_for, api_client_for, encounter_of, workup_for
from workups.models import Decision
from workups.services import recommendation_decide, result_enter, workup_current, workup_review

FHIR = "application/fhir+json"


@pytest.fixture
def encounter(gp):
    """The default case (urinary symptoms): urinalysis, Nechiporenko, kidney ultrasound, nephrology."""
    return encounter_of(gp)


def read(client, path, status=200):
    response = client.get(path)
    assert response.status_code == status, response.content
    return json.loads(response.content)


def decide(gp, row, decision, reason=""):
    recommendation_decide(actor=actor_for(gp), recommendation=row, decision=decision, reason=reason)


def test_an_accepted_test_keeps_its_service_request_id_when_the_findings_are_edited_and_reviewed(gp, gp_api, encounter):
    workup = workup_for(gp, encounter)
    urinalysis = workup.items.get(code="lab_urinalysis")
    decide(gp, urinalysis, Decision.ACCEPTED)
    path = f"/fhir/ServiceRequest/item-{urinalysis.pk}"
    assert read(gp_api, path)["status"] == "active"

    # An edit of the findings stores a new workup, with new rows.
    encounter = encounter_update(actor=actor_for(gp), encounter=encounter, data={"duration_days": 12})
    edited = workup_current(actor=actor_for(gp), encounter=encounter)
    assert edited.pk != workup.pk and edited.items.get(code="lab_urinalysis").pk != urinalysis.pk
    assert read(gp_api, path)["status"] == "active"

    # A result answers it, and the review stores a follow-up workup: the same order, completed.
    result_enter(actor=actor_for(gp), encounter=encounter, code="res_ua_nitrite", value=False)
    reviewed, created = workup_review(actor=actor_for(gp), encounter=encounter)
    assert created and reviewed.items.get(code="lab_urinalysis").pk not in (urinalysis.pk,)
    order = read(gp_api, path)
    assert (order["id"], order["status"], order["intent"]) == (f"item-{urinalysis.pk}", "completed", "order")
    ids = {entry["resource"]["id"] for entry in read(gp_api, f"/fhir/ServiceRequest?encounter={encounter.pk}")["entry"]}
    assert f"item-{urinalysis.pk}" in ids
    assert not [i for i in ids if i.startswith("item-") and i != f"item-{urinalysis.pk}"], ids
    # The result names the order it answers by that id.
    observation = read(gp_api, f"/fhir/Observation?encounter={encounter.pk}&_count=200")
    nitrite = [entry["resource"] for entry in observation["entry"] if entry["resource"]["id"].startswith("result-")]
    assert nitrite[0]["basedOn"] == [{"reference": f"ServiceRequest/item-{urinalysis.pk}"}]


def test_an_order_taken_back_is_read_as_revoked_with_the_reason(gp, gp_api, encounter, other_gp):
    workup = workup_for(gp, encounter)
    ultrasound = workup.items.get(code="us_kidneys")
    decide(gp, ultrasound, Decision.ACCEPTED)
    decide(gp, ultrasound, Decision.DECLINED, reason="Done last week at another clinic")
    path = f"/fhir/ServiceRequest/item-{ultrasound.pk}"

    order = read(gp_api, path)
    assert (order["status"], order["intent"]) == ("revoked", "order")
    assert order["note"] == [{"text": "Done last week at another clinic"}]
    # The workup's action names that order, the one resource the EHR holds for it, not a contained copy.
    group = read(gp_api, f"/fhir/RequestGroup/workup-{encounter.pk}")
    [action] = [action for action in group["action"] if action["code"][0]["coding"][0]["code"] == "us_kidneys"]
    assert action["resource"] == {"reference": f"ServiceRequest/item-{ultrasound.pk}"}
    # Still revoked after a later workup, and still the EHR's only: another clinic reads a 404.
    encounter = encounter_update(actor=actor_for(gp), encounter=encounter, data={"duration_days": 12})
    workup_current(actor=actor_for(gp), encounter=encounter)
    assert read(gp_api, path)["status"] == "revoked"
    read(api_client_for(other_gp), path, 404)


def test_a_test_declined_without_being_ordered_is_no_order_of_the_ehrs(gp, gp_api, encounter):
    workup = workup_for(gp, encounter)
    ultrasound = workup.items.get(code="us_kidneys")
    decide(gp, ultrasound, Decision.DECLINED, reason="Done last week")

    read(gp_api, f"/fhir/ServiceRequest/item-{ultrasound.pk}", 404)
    found = read(gp_api, f"/fhir/ServiceRequest?encounter={encounter.pk}")
    assert found["total"] == 0


def test_a_result_entered_again_keeps_its_observation_id_and_reads_amended(gp, gp_api, encounter):
    first = result_enter(actor=actor_for(gp), encounter=encounter, code="res_hemoglobin", value=98)
    path = f"/fhir/Observation/result-{first.pk}"
    assert read(gp_api, path)["status"] == "final"

    again = result_enter(actor=actor_for(gp), encounter=encounter, code="res_hemoglobin", value=128)

    assert again.pk != first.pk
    observation = read(gp_api, path)
    assert (observation["status"], observation["valueQuantity"]["value"]) == ("amended", 128)
    # The replaced value is not a second Observation of the same test.
    read(gp_api, f"/fhir/Observation/result-{again.pk}", 404)
    hb = [
        entry
        for entry in read(gp_api, f"/fhir/Observation?encounter={encounter.pk}&_count=200")["entry"]
        if entry["resource"]["id"].startswith("result-")
    ]
    assert len(hb) == 1


def test_a_result_posted_again_by_the_ehr_is_answered_with_the_id_it_had(gp, gp_api, encounter):
    hemoglobin = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "718-7"}]},
        "subject": {"reference": f"Patient/{encounter.patient_id}"},
        "encounter": {"reference": f"Encounter/{encounter.pk}"},
        "effectiveDateTime": "2024-03-05",
        "valueQuantity": {"value": 98, "unit": "g/L", "system": "http://unitsofmeasure.org", "code": "g/L"},
    }
    created = gp_api.generic("POST", "/fhir/Observation", json.dumps(hemoglobin), content_type=FHIR)
    assert created.status_code == 201, created.content
    corrected = {**hemoglobin, "valueQuantity": {**hemoglobin["valueQuantity"], "value": 118}}

    response = gp_api.generic("POST", "/fhir/Observation", json.dumps(corrected), content_type=FHIR)

    assert response.status_code == 201, response.content
    assert response["Location"] == created["Location"]
    assert json.loads(response.content)["status"] == "amended"


def test_the_workup_is_one_request_group_with_every_recommendation_as_an_action(gp, gp_api, encounter, other_gp):
    workup = workup_for(gp, encounter)
    urinalysis = workup.items.get(code="lab_urinalysis")
    decide(gp, urinalysis, Decision.ACCEPTED)
    ultrasound = workup.items.get(code="us_kidneys")
    decide(gp, ultrasound, Decision.DECLINED, reason="Done last week")
    nephrology = workup.referrals.get(specialty="nephrology")
    decide(gp, nephrology, Decision.ACCEPTED)
    referral = referral_services.referral_create(actor=actor_for(gp), encounter=encounter, recommendation=nephrology)
    referral_services.referral_issue(actor=actor_for(gp), referral=referral)
    path = f"/fhir/RequestGroup/workup-{encounter.pk}"

    group = read(gp_api, path)

    RequestGroup.model_validate(group)
    assert (group["intent"], group["status"]) == ("proposal", "active")
    assert group["code"]["coding"][0]["code"] == workup.disposition
    actions = {action["code"][0]["coding"][0]["code"]: action for action in group["action"]}
    assert set(actions) == {row.code for row in workup.items.all()} | {row.specialty for row in workup.referrals.all()}
    assert actions["lab_urinalysis"]["resource"] == {"reference": f"ServiceRequest/item-{urinalysis.pk}"}
    assert actions["nephrology"]["resource"] == {"reference": f"ServiceRequest/referral-{referral.pk}"}
    contained = {f"#{resource['id']}": resource for resource in group["contained"]}
    declined = contained[actions["us_kidneys"]["resource"]["reference"]]
    assert (declined["intent"], declined["status"], declined["note"]) == (
        "proposal",
        "revoked",
        [{"text": "Done last week"}],
    )
    pending = contained[actions["lab_nechiporenko"]["resource"]["reference"]]
    assert (pending["intent"], pending["status"]) == ("proposal", "draft")
    assert all(action.get("description") for action in group["action"])
    # Found by the encounter, and another clinic's is a 404.
    found = read(gp_api, f"/fhir/RequestGroup?encounter={encounter.pk}")
    assert [entry["resource"]["id"] for entry in found["entry"]] == [f"workup-{encounter.pk}"]
    read(api_client_for(other_gp), path, 404)


@pytest.mark.parametrize("resource_id", ["workup-abc", "workup-1-x", "workup-", "1", "item-1", "workup-99999999"])
def test_a_request_group_id_that_is_not_an_encounters_workup_is_a_404(gp, gp_api, encounter, resource_id):
    response = gp_api.get(f"/fhir/RequestGroup/{resource_id}")

    assert response.status_code == 404
    assert json.loads(response.content)["resourceType"] == "OperationOutcome"


def test_an_encounter_with_no_workup_yet_has_no_request_group(gp, gp_api, encounter):
    read(gp_api, f"/fhir/RequestGroup/workup-{encounter.pk}", 404)


@pytest.mark.parametrize(
    "query, where",
    [("status=active", "status"), ("encounter=1&encounter=2", "encounter"), ("patient=1,2", "patient")],
)
def test_a_request_group_search_the_server_does_not_offer_is_a_400_naming_the_parameter(gp_api, query, where):
    response = gp_api.get(f"/fhir/RequestGroup?{query}")

    assert response.status_code == 400
    outcome = json.loads(response.content)
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["expression"] == [where]
