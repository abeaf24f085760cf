"""An EHR posting lab results as FHIR Observations and updating a referral's Task: what is read from each
answer element, and each malformed element refused with an OperationOutcome that names it."""

import json

import pytest

from tests.record_factories import api_client_for, encounter_of

FHIR = "application/fhir+json"
LOINC, SNOMED, UCUM = "http://loinc.org", "http://snomed.info/sct", "http://unitsofmeasure.org"
LAB = "https://lab.example.org"  # a lab's own code system and units


def send(client, method, path, resource, **headers):
    return client.generic(method, path, json.dumps(resource), content_type=FHIR, **headers)


def refused(response, status, where):
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith(FHIR)
    result = json.loads(response.content)
    assert result["resourceType"] == "OperationOutcome", result
    assert any(where in " ".join(issue.get("expression", [])) for issue in result["issue"]), result
    return result


@pytest.fixture
def ehr(gp):
    """An EHR integration acting for the GP (their API token)."""
    return api_client_for(gp)


@pytest.fixture
def encounter(gp):
    return encounter_of(gp)


def observation(encounter, /, **changes):
    resource = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": "5802-4"}]},  # nitrite in urine: a yes/no result
        "subject": {"reference": f"Patient/{encounter.patient_id}"},
        "encounter": {"reference": f"Encounter/{encounter.pk}"},
        "effectiveDateTime": "2024-03-05T09:30:00+03:00",
    }
    resource.update(changes)
    return {key: value for key, value in resource.items() if value is not None}


def hemoglobin(encounter, /, **changes):
    quantity = {"value": 9.1, "unit": "g/dL", "system": UCUM, "code": "g/dL"}
    return observation(
        encounter, code={"coding": [{"system": LOINC, "code": "718-7"}]}, valueQuantity=quantity, **changes
    )


# -- what a result says -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "answer, value",
    [
        ({"valueBoolean": True}, True),
        ({"valueBoolean": False}, False),
        ({"valueCodeableConcept": {"coding": [{"system": SNOMED, "code": "10828004"}]}}, True),
        ({"valueCodeableConcept": {"coding": [{"system": SNOMED, "code": "260385009"}]}}, False),
        # Another system's coding is passed over; the SNOMED CT one is read.
        (
            {
                "valueCodeableConcept": {
                    "coding": [
                        {"system": f"{LAB}/codes", "code": "NEG"},
                        {"system": SNOMED, "code": "260385009"},
                    ]
                }
            },
            False,
        ),
    ],
)
def test_a_yes_no_result_is_read_from_a_boolean_or_a_snomed_answer(ehr, encounter, answer, value):
    response = send(ehr, "POST", "/fhir/Observation", observation(encounter, **answer))

    assert response.status_code == 201, response.content
    result = encounter.results.get()
    assert (result.code, result.value_bool, str(result.performed_on)) == ("res_ua_nitrite", value, "2024-03-05")


def test_the_notes_of_a_result_are_kept_together(ehr, encounter):
    notes = [{"text": "Haemolysed sample"}, {"text": "Repeat ordered"}]

    response = send(ehr, "POST", "/fhir/Observation", hemoglobin(encounter, note=notes))

    assert response.status_code == 201, response.content
    assert encounter.results.get().note == "Haemolysed sample\nRepeat ordered"


@pytest.mark.parametrize(
    "changes, where",
    [
        ({"valueCodeableConcept": {"coding": [{"system": SNOMED, "code": "52101004"}]}}, "Observation.value[x]"),
        ({"valueString": "positive"}, "Observation.value[x]"),
        ({"status": "registered"}, "Observation.status"),
        ({"subject": {"reference": "Group/7"}}, "Observation.subject"),
        ({"subject": None}, "Observation.subject"),
        ({"encounter": {"reference": "Encounter/first"}}, "Observation.encounter"),
        ({"effectiveDateTime": "2024-03"}, "Observation.effectiveDateTime"),
    ],
)
def test_a_yes_no_result_with_a_malformed_element_is_refused_by_name(ehr, encounter, changes, where):
    answered = any(key.startswith("value") for key in changes)
    resource = observation(encounter, **({} if answered else {"valueBoolean": True}), **changes)

    refused(send(ehr, "POST", "/fhir/Observation", resource), 400, where)
    assert not encounter.results.exists()


@pytest.mark.parametrize(
    "quantity, where",
    [
        (None, "Observation.valueQuantity"),
        ({"value": "9.1", "unit": "g/dL", "system": UCUM, "code": "g/dL"}, "Observation.valueQuantity"),
        (
            {"value": 9.1, "unit": "g/dL", "system": f"{LAB}/units", "code": "g/dL"},
            "Observation.valueQuantity.system",
        ),
        ({"value": 9.1}, "Observation.valueQuantity.code"),
    ],
)
def test_a_measured_result_needs_a_ucum_quantity_in_a_unit_we_convert(ehr, encounter, quantity, where):
    resource = hemoglobin(encounter)
    if quantity is None:
        del resource["valueQuantity"]
    else:
        resource["valueQuantity"] = quantity

    refused(send(ehr, "POST", "/fhir/Observation", resource), 400, where)
    assert not encounter.results.exists()


def test_a_result_for_an_encounter_of_another_clinic_is_refused(ehr, other_gp):
    theirs = encounter_of(other_gp)

    refused(send(ehr, "POST", "/fhir/Observation", hemoglobin(theirs)), 422, "Observation.subject")
    assert not theirs.results.exists()


# -- the referral's Task ---------------------------------------------------------------------------------


@pytest.fixture
def task(gp, ehr):
    """The Task of an issued letter to nephrology, read by the EHR (version 1)."""
    api = api_client_for(gp)
    encounter = encounter_of(gp)
    workup = api.post(f"/api/v1/encounters/{encounter.pk}/workup/", format="json").json()
    recommendation = next(row for row in workup["referrals"] if row["specialty"] == "nephrology")
    api.patch(f"/api/v1/workup-referrals/{recommendation['id']}/", {"decision": "accepted"}, format="json")
    letter = api.post("/api/v1/referrals/", {"recommendation": recommendation["id"]}, format="json").json()
    issued = api.post(f"/api/v1/referrals/{letter['id']}/issue/")
    assert issued.status_code == 200, issued.content
    path = f"/fhir/Task/referral-{letter['id']}"
    response = ehr.get(path)
    assert response.status_code == 200 and response["ETag"] == 'W/"1"'
    return path, json.loads(response.content), letter["id"]


def update(ehr, path, resource, version=1):
    return send(ehr, "PUT", path, resource, HTTP_IF_MATCH=f'W/"{version}"')


@pytest.mark.parametrize(
    "changes, where",
    [
        ({"status": "in-progress"}, "Task.status"),
        ({"status": "accepted", "focus": {"reference": "ServiceRequest/referral-999999"}}, "Task.focus"),
        # Another patient's: the EHR's mistake must not be taken silently (the Task stays this patient's).
        ({"status": "accepted", "for": {"reference": "Patient/999999"}}, "Task.for"),
        ({"status": "accepted", "restriction": {"period": {"start": "2030-01-10T10:00:00"}}}, "Task.restriction"),
        ({"status": "accepted", "restriction": {"period": {"start": "next Tuesday"}}}, "Task.restriction"),
        # FHIR JSON's types, strictly (fhir.resources alone takes a number for a dateTime, a string for a bool).
        ({"status": "accepted", "restriction": {"period": {"start": 20300110}}}, "Task.restriction"),
        ({"status": "completed", "lastModified": 1709625600}, "Task.lastModified"),
        ({"status": "completed", "output": [{"type": {"text": "x"}, "valueBoolean": "yes"}]}, "Task.output"),
    ],
)
def test_a_task_update_with_a_malformed_element_is_refused_by_name_and_changes_nothing(ehr, task, changes, where):
    path, resource, _ = task

    refused(update(ehr, path, {**resource, **changes}), 400, where)
    assert json.loads(ehr.get(path).content)["status"] == "requested"


def test_the_same_task_sent_back_unchanged_changes_nothing(ehr, task):
    path, resource, _ = task

    response = update(ehr, path, resource)

    assert response.status_code == 200 and response["ETag"] == 'W/"1"'
    assert json.loads(response.content)["status"] == "requested"


def test_a_cancelled_task_cancels_the_letter_with_its_reason(gp, ehr, task):
    path, resource, letter = task

    response = update(ehr, path, {**resource, "status": "cancelled", "statusReason": {"text": "Seen privately"}})

    assert response.status_code == 200, response.content
    detail = api_client_for(gp).get(f"/api/v1/referrals/{letter}/").json()
    assert detail["status"] == "cancelled"
    assert json.loads(response.content)["statusReason"]["text"] == "Seen privately"


def test_a_completed_task_with_its_appointment_records_both(gp, ehr, task):
    path, resource, letter = task
    done = {
        **resource,
        "status": "completed",
        "restriction": {"period": {"start": "2030-01-10T10:00:00+03:00"}},
        "output": [{"type": {"text": "Specialist's conclusion"}, "valueString": "Chronic pyelonephritis."}],
    }

    response = update(ehr, path, done)

    assert response.status_code == 200, response.content
    detail = api_client_for(gp).get(f"/api/v1/referrals/{letter}/").json()
    assert (detail["status"], detail["conclusion"]) == ("completed", "Chronic pyelonephritis.")
    assert detail["appointment_at"].startswith("2030-01-10")


def test_a_gp_of_another_clinic_cannot_update_the_task(other_gp, task):
    path, resource, _ = task

    refused(update(api_client_for(other_gp), path, {**resource, "status": "accepted"}), 404, "")
