"""FHIR R4: the encounter exported as a Bundle (validated by fhir.resources R4B and fhirclient), Patient import."""

import json

import fhirclient.models.bundle as fc_bundle
import fhirclient.models.patient as fc_patient
import pytest
from django.conf import settings
from fhir.resources.R4B.bundle import Bundle

from clinic.models import Patient
from referrals import services as referral_services
from tests.record_factories import actor_for, api_client_for, encounter_of, patient_of, workup_for
from workups.models import Decision
from workups.services import recommendation_decide

FHIR = "application/fhir+json"


@pytest.fixture
def full_encounter(gp):
    """A finalized encounter with accepted tests, an issued referral with its letter, and a requisition."""
    patient = patient_of(
        gp, family_name="Иванова", given_name="Анна", sex="female", identifier="MRN-5", phone="+7 900 000-00-00"
    )
    encounter = encounter_of(
        gp, patient=patient, pregnant=False, temperature_c=37.2, heart_rate=80, systolic_bp=120, diastolic_bp=80
    )
    workup = workup_for(gp, encounter)
    actor = actor_for(gp)
    for code in ("lab_urinalysis", "lab_nechiporenko", "us_kidneys", "lab_cbc"):
        recommendation_decide(actor=actor, recommendation=workup.items.get(code=code), decision=Decision.ACCEPTED)
    recommendation_decide(
        actor=actor, recommendation=workup.items.get(code="lab_biochemistry"), decision=Decision.DECLINED, reason="done"
    )
    nephrology = workup.referrals.get(specialty="nephrology")
    recommendation_decide(actor=actor, recommendation=nephrology, decision=Decision.ACCEPTED)
    referral = referral_services.referral_create(actor=actor, encounter=encounter, recommendation=nephrology)
    referral_services.document_render(kind="referral", pk=referral.pk, claimant="test:1:fhir")
    referral_services.referral_issue(actor=actor, referral=referral)
    # Issuing renders the letter again, now with its number and time of issue.
    referral_services.document_render(kind="referral", pk=referral.pk, claimant="test:3:fhir")
    requisition = referral_services.requisition_request(actor=actor, encounter=encounter)
    referral_services.document_render(kind="requisition", pk=requisition.pk, claimant="test:2:fhir")
    return encounter


def export(client, encounter):
    response = client.get(f"/api/v1/encounters/{encounter.pk}/fhir/")
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith(FHIR)
    return json.loads(response.content)


def resources(bundle, kind):
    return [entry["resource"] for entry in bundle["entry"] if entry["resource"]["resourceType"] == kind]


def test_a_full_encounter_exports_as_a_bundle_both_fhir_libraries_accept(gp_api, full_encounter):
    bundle = export(gp_api, full_encounter)
    Bundle.model_validate(bundle)
    parsed = fc_bundle.Bundle(bundle, strict=True)
    assert parsed.type == "collection"
    kinds = [entry["resource"]["resourceType"] for entry in bundle["entry"]]
    assert kinds.count("Patient") == 1 and kinds.count("Encounter") == 1
    assert kinds.count("DocumentReference") == 2


def test_every_recorded_finding_is_an_observation_in_the_project_code_system(gp_api, full_encounter):
    bundle = export(gp_api, full_encounter)
    observed = {}
    for observation in resources(bundle, "Observation"):
        coding = observation["code"]["coding"][0]
        assert coding["system"] == settings.FHIR_CODE_SYSTEM_URL and coding["display"]
        observed[coding["code"]] = observation.get("valueBoolean", observation.get("valueQuantity"))
    for code, present in full_encounter.findings.items():
        assert observed[code] is present
    assert observed["pregnant"] is False
    assert observed["temperature_c"]["value"] == 37.2 and observed["temperature_c"]["code"] == "Cel"


def test_accepted_tests_are_orders_with_priority_category_and_their_reasons(gp_api, full_encounter):
    bundle = export(gp_api, full_encounter)
    observation_urls = {
        entry["resource"]["code"]["coding"][0]["code"]: entry["fullUrl"]
        for entry in bundle["entry"]
        if entry["resource"]["resourceType"] == "Observation"
    }
    orders = {
        request["code"]["coding"][0]["code"]: request
        for request in resources(bundle, "ServiceRequest")
        if request["category"][0]["coding"][0]["code"] != "referral"
    }
    assert set(orders) == {"lab_urinalysis", "lab_nechiporenko", "us_kidneys", "lab_cbc"}  # declined: not ordered
    urinalysis = orders["lab_urinalysis"]
    assert urinalysis["intent"] == "order" and urinalysis["priority"] == "routine"
    assert {
        "system": "http://loinc.org",
        "code": "24356-8",
        "display": "Urinalysis complete panel - Urine",
    } in urinalysis["code"]["coding"]
    assert {coding["code"] for coding in urinalysis["category"][0]["coding"]} >= {"lab", "108252007"}
    assert {coding["code"] for coding in orders["us_kidneys"]["category"][0]["coding"]} >= {"imaging", "363679005"}
    reasons = {coding["code"] for coding in urinalysis["reasonCode"][0]["coding"]}
    assert "ex_cva_tenderness" in reasons
    assert {"reference": observation_urls["ex_cva_tenderness"]} in urinalysis["supportingInfo"]
    assert orders["lab_nechiporenko"]["code"]["coding"] == [orders["lab_nechiporenko"]["code"]["coding"][0]]


def test_an_issued_referral_is_a_referral_order_with_the_specialty_as_performer_type(gp_api, full_encounter):
    bundle = export(gp_api, full_encounter)
    referrals = [
        request
        for request in resources(bundle, "ServiceRequest")
        if request["category"][0]["coding"][0]["code"] == "referral"
    ]
    assert len(referrals) == 1
    performer = {(coding["system"], coding["code"]) for coding in referrals[0]["performerType"]["coding"]}
    assert (settings.FHIR_CODE_SYSTEM_URL, "nephrology") in performer
    assert ("http://snomed.info/sct", "394589003") in performer
    assert ("http://snomed.info/sct", "3457005") in {
        (c["system"], c["code"]) for c in referrals[0]["category"][0]["coding"]
    }


def test_each_ready_pdf_is_a_document_reference_linking_to_it(gp_api, full_encounter):
    bundle = export(gp_api, full_encounter)
    for document in resources(bundle, "DocumentReference"):
        attachment = document["content"][0]["attachment"]
        assert attachment["contentType"] == "application/pdf"
        assert attachment["url"].startswith("http://testserver/api/v1/")
        assert gp_api.get(attachment["url"].removeprefix("http://testserver"))["Content-Type"] == "application/pdf"


def test_the_patient_carries_name_identifier_and_birth_date(gp_api, full_encounter):
    patient = resources(export(gp_api, full_encounter), "Patient")[0]
    fc_patient.Patient(patient, strict=True)
    assert patient["name"][0]["family"] == "Иванова" and patient["birthDate"] == "1980-05-17"
    assert patient["identifier"] == [{"system": settings.FHIR_IDENTIFIER_SYSTEM, "value": "MRN-5"}]
    assert patient["gender"] == "female"


def test_the_exported_patient_carries_snils_and_policy_as_rucore_identifiers(gp, gp_api, full_encounter):
    patient = full_encounter.patient
    patient.snils, patient.oms_policy, patient.middle_name = "11223344595", "7700000000000001", "Сергеевна"
    patient.save()

    bundle = export(gp_api, full_encounter)
    Bundle.model_validate(bundle)
    fc_bundle.Bundle(bundle, strict=True)
    resource = resources(bundle, "Patient")[0]
    assert resource["meta"]["profile"] == ["https://fhir.ru/ig/core/StructureDefinition/core-patient"]
    assert resource["name"][0]["given"] == ["Анна", "Сергеевна"]
    assert resource["identifier"][0] == {"system": settings.FHIR_IDENTIFIER_SYSTEM, "value": "MRN-5"}
    snils, policy = resource["identifier"][1:]
    assert (snils["system"], snils["value"]) == ("https://fhir.ru/ig/core/systems/snils", "112-233-445-95")
    assert snils["type"]["coding"][0] == {
        "system": "https://fhir.ru/ig/core/CodeSystem/core-cs-semd-identifier-type",
        "code": "snils",
        "display": "СНИЛС",
    }
    assert (policy["system"], policy["value"]) == ("https://fhir.ru/ig/core/systems/oms", "7700000000000001")
    assert policy["type"]["coding"][:2] == [
        {
            "system": "https://fhir.ru/ig/core/CodeSystem/core-cs-semd-identifier-type",
            "code": "oms-policy",
            "display": "Полис ОМС",
        },
        # Core_Patient's omsPolicy slice also requires the coverage document "Полис ОМС".
        {
            "system": "https://fhir.ru/ig/core/CodeSystem/core-cs-nsi-coverage-document",
            "code": "1",
            "display": "Полис ОМС",
        },
    ]


def test_another_clinics_encounter_is_a_404(other_gp, full_encounter, anonymous):
    response = api_client_for(other_gp).get(f"/api/v1/encounters/{full_encounter.pk}/fhir/")
    assert response.status_code == 404 and "Иванова" not in response.content.decode()
    assert anonymous.get(f"/api/v1/encounters/{full_encounter.pk}/fhir/").status_code == 401


def test_the_code_system_lists_every_code(anonymous, db):
    response = anonymous.get("/api/v1/fhir/CodeSystem/workup")
    system = json.loads(response.content)
    codes = {concept["code"] for concept in system["concept"]}
    assert system["url"] == settings.FHIR_CODE_SYSTEM_URL
    assert {"rf_saddle_anesthesia", "lab_nechiporenko", "neurology", "pregnant", "duration_days"} <= codes


FHIR_PATIENT = {
    "resourceType": "Patient",
    "identifier": [{"system": "https://ehr.example.org/mrn", "value": "A-1001"}],
    "name": [{"family": "Петров", "given": ["Илья", "Сергеевич"]}],
    "gender": "male",
    "birthDate": "1975-04-03",
    "telecom": [{"system": "phone", "value": "+7 495 000-00-01"}],
}


def post_patient(client, body):
    return client.generic("POST", "/api/v1/fhir/Patient", json.dumps(body), content_type=FHIR)


def test_importing_a_patient_creates_it_in_the_callers_clinic(gp_api, gp):
    response = post_patient(gp_api, FHIR_PATIENT)
    assert response.status_code == 201 and response["Content-Type"].startswith(FHIR)
    patient = Patient.objects.get(identifier="A-1001")
    assert patient.clinic == gp.membership.clinic and patient.given_name == "Илья Сергеевич"
    assert patient.identifier_system == "https://ehr.example.org/mrn" and patient.phone == "+7 495 000-00-01"
    assert json.loads(response.content)["name"][0]["family"] == "Петров"


def test_posting_the_same_identifier_again_returns_that_patient_and_never_changes_it(gp, gp_api):
    # A POST is a create: the match is returned as it is (FHIR conditional create), so a patient seen in a
    # finalized encounter keeps the name and sex the record was made with.
    first = json.loads(post_patient(gp_api, FHIR_PATIENT).content)
    encounter = encounter_of(gp, patient=Patient.objects.get())
    gp_api.post(f"/api/v1/encounters/{encounter.pk}/finalize/", format="json")

    response = post_patient(
        gp_api, {**FHIR_PATIENT, "gender": "female", "name": [{"family": "Петров-Водкин", "given": ["Илья"]}]}
    )

    assert response.status_code == 200
    assert json.loads(response.content)["id"] == first["id"]
    assert (Patient.objects.get().family_name, Patient.objects.get().sex) == ("Петров", "male")


def test_an_identifier_without_a_system_is_refused_rather_than_matched_to_anybody(gp_api):
    response = post_patient(gp_api, {**FHIR_PATIENT, "identifier": [{"value": "A-1001"}]})

    assert response.status_code == 400
    assert "Patient.identifier[0].system" in json.loads(response.content)["issue"][0]["expression"]
    assert not Patient.objects.exists()


@pytest.mark.parametrize(
    "change, where",
    [
        (
            {"modifierExtension": [{"url": "https://ehr.example.org/not-a-real-patient", "valueBoolean": True}]},
            "Patient.modifierExtension",
        ),
        (
            {
                "name": [
                    {
                        "family": "Петров",
                        "given": ["Илья"],
                        "modifierExtension": [{"url": "https://ehr.example.org/x", "valueBoolean": True}],
                    }
                ]
            },
            "Patient.name[0].modifierExtension",
        ),
        ({"name": [{"family": "П" * 151, "given": ["Илья"]}]}, "Patient.name.family"),
        ({"name": [{"family": "Пет\u0000ров", "given": ["Илья"]}]}, "Patient.name.family"),
        ({"identifier": [{"system": "https://ehr.example.org/mrn", "value": "A" * 65}]}, "Patient.identifier.value"),
    ],
)
def test_modifier_extensions_overlong_and_control_characters_are_refused(gp_api, change, where):
    response = post_patient(gp_api, {**FHIR_PATIENT, **change})

    assert response.status_code == 400, response.content
    outcome = json.loads(response.content)
    assert any(where in " ".join(issue.get("expression", [])) for issue in outcome["issue"]), outcome
    assert not Patient.objects.exists()


def test_an_imported_patient_keeps_the_snils_and_policy_of_its_identifiers(gp_api):
    identifiers = [
        *FHIR_PATIENT["identifier"],
        {"system": "http://fhir.ru/core/systems/snils", "value": "112 233 445 95"},
        {"system": "https://fhir.ru/ig/core/systems/OMS", "value": "7700-0000-0000-0001"},
    ]
    response = post_patient(gp_api, {**FHIR_PATIENT, "identifier": identifiers})

    assert response.status_code == 201, response.content
    patient = Patient.objects.get()
    assert (patient.identifier, patient.snils, patient.oms_policy) == ("A-1001", "11223344595", "7700000000000001")
    systems = [entry["system"] for entry in json.loads(response.content)["identifier"]]
    assert systems == [
        "https://ehr.example.org/mrn",
        "https://fhir.ru/ig/core/systems/snils",
        "https://fhir.ru/ig/core/systems/oms",
    ]
    # Posted again with only the SNILS, it is the same patient, unchanged.
    again = post_patient(
        gp_api,
        {**FHIR_PATIENT, "name": [{"family": "Другой", "given": ["Пётр"]}], "identifier": identifiers[1:2]},
    )
    assert again.status_code == 200 and json.loads(again.content)["id"] == str(patient.pk)
    assert Patient.objects.get().family_name == "Петров"


def test_an_imported_patient_with_a_bad_snils_is_a_400_naming_it(gp_api):
    bad = {"system": "https://fhir.ru/ig/core/systems/snils", "value": "11223344596"}
    identifiers = [*FHIR_PATIENT["identifier"], bad]
    response = post_patient(gp_api, {**FHIR_PATIENT, "identifier": identifiers})

    assert response.status_code == 400
    issue = json.loads(response.content)["issue"][0]
    assert issue["expression"] == ["Patient.identifier[1].value"] and "SNILS" in issue["diagnostics"]
    assert not Patient.objects.exists()


def test_the_same_identifier_in_another_clinic_is_another_patient(gp_api, other_gp):
    post_patient(gp_api, FHIR_PATIENT)
    assert post_patient(api_client_for(other_gp), FHIR_PATIENT).status_code == 201
    assert Patient.objects.count() == 2


@pytest.mark.parametrize(
    "change, where",
    [
        ({"resourceType": "Observation"}, "Patient"),
        ({"gender": "unknown"}, "Patient.gender"),
        ({"birthDate": "03/04/1975"}, "Patient.birthDate"),
        ({"birthDate": "2999-01-01"}, "Patient.birthDate"),
        ({"name": []}, "Patient.name"),
        ({"name": "Petrov"}, "Patient.name"),
        ({"identifier": [{"system": 5, "value": "x"}]}, "Patient.identifier"),
        ({"active": "yes"}, "Patient.active"),
    ],
)
def test_an_invalid_patient_is_refused_with_an_operation_outcome_and_nothing_saved(gp_api, change, where):
    response = post_patient(gp_api, {**FHIR_PATIENT, **change})
    assert response.status_code == 400
    outcome = json.loads(response.content)
    assert outcome["resourceType"] == "OperationOutcome"
    assert any(where in " ".join(issue.get("expression", [])) for issue in outcome["issue"]), outcome
    assert not Patient.objects.exists()


def test_a_refused_post_leaves_the_existing_patient_as_it_was(gp_api):
    post_patient(gp_api, FHIR_PATIENT)
    response = post_patient(gp_api, {**FHIR_PATIENT, "birthDate": "2999-01-01"})
    assert response.status_code == 400
    assert Patient.objects.get().birth_date.isoformat() == "1975-04-03"


def test_results_that_came_back_are_exported_as_observations_with_their_interpretation(gp, gp_api, full_encounter):
    from workups.services import result_enter

    actor = actor_for(gp)
    result_enter(actor=actor, encounter=full_encounter, code="res_nech_leukocytes", value=6500)
    result_enter(actor=actor, encounter=full_encounter, code="res_ua_nitrite", value=True)
    bundle = export(gp_api, full_encounter)
    Bundle.model_validate(bundle)

    observations = {obs["code"]["coding"][0]["code"]: obs for obs in resources(bundle, "Observation")}
    leukocytes = observations["res_nech_leukocytes"]
    assert leukocytes["valueQuantity"] == {
        "value": 6500,
        "unit": "/mL",
        "system": "http://unitsofmeasure.org",
        "code": "/mL",
    }
    assert leukocytes["interpretation"][0]["coding"][0]["code"] == "H"
    assert leukocytes["category"][0]["coding"][0]["code"] == "laboratory"
    assert observations["res_ua_nitrite"]["valueBoolean"] is True
    assert observations["res_ua_nitrite"]["interpretation"][0]["coding"][0]["code"] == "POS"


def test_vital_signs_follow_the_r4_vital_signs_profile_with_loinc(gp_api, full_encounter):
    observations = {
        obs["code"]["coding"][0]["code"]: obs for obs in resources(export(gp_api, full_encounter), "Observation")
    }

    temperature = observations["temperature_c"]
    assert {"system": "http://loinc.org", "code": "8310-5", "display": "Body temperature"} in temperature["code"][
        "coding"
    ]
    assert temperature["meta"]["profile"] == ["http://hl7.org/fhir/StructureDefinition/vitalsigns"]
    pressure = observations["blood_pressure"]
    assert "85354-9" in {coding["code"] for coding in pressure["code"]["coding"]}
    components = {
        component["code"]["coding"][1]["code"]: component["valueQuantity"]["value"]
        for component in pressure["component"]
    }
    assert components == {"8480-6": 120, "8462-4": 80}
    assert "systolic_bp" not in observations and "diastolic_bp" not in observations


def test_crp_and_esr_are_two_orders_not_two_codings_of_one(gp, gp_api):
    from tests.record_factories import screened

    encounter = encounter_of(gp, findings=screened({"loc_lumbar": True, "rf_night_pain": True}))
    workup = workup_for(gp, encounter)
    recommendation_decide(
        actor=actor_for(gp), recommendation=workup.items.get(code="lab_crp_esr"), decision=Decision.ACCEPTED
    )

    requests = [
        request
        for request in resources(export(gp_api, encounter), "ServiceRequest")
        if request["code"]["coding"][0]["code"] == "lab_crp_esr"
    ]

    loinc = sorted(
        coding["code"]
        for request in requests
        for coding in request["code"]["coding"]
        if coding["system"] == "http://loinc.org"
    )
    assert loinc == ["1988-5", "30341-2"] and len(requests) == 2
    assert all(
        len([c for c in request["code"]["coding"] if c["system"] == "http://loinc.org"]) == 1 for request in requests
    )
    assert len({request["requisition"]["value"] for request in requests}) == 1


def test_an_issued_referral_carries_its_icd10_diagnosis_as_a_condition(gp_api, full_encounter):
    bundle = export(gp_api, full_encounter)
    conditions = resources(bundle, "Condition")
    referral = next(
        request
        for request in resources(bundle, "ServiceRequest")
        if request["category"][0]["coding"][0]["code"] == "referral"
    )

    assert len(conditions) == 1
    condition = conditions[0]
    assert condition["code"]["coding"][0]["system"] == "http://hl7.org/fhir/sid/icd-10"
    assert condition["code"]["coding"][0]["code"] == full_encounter.referrals.get().icd10
    assert condition["verificationStatus"]["coding"][0]["code"] == "provisional"
    condition_url = next(
        entry["fullUrl"]
        for entry in bundle["entry"]
        if entry["resource"] is condition or entry["resource"] == condition
    )
    assert referral["reasonReference"] == [{"reference": condition_url}]


def test_the_letter_is_a_loinc_referral_note_and_a_draft_one_is_preliminary(gp, gp_api, full_encounter):
    letters = [
        document
        for document in resources(export(gp_api, full_encounter), "DocumentReference")
        if document["type"]["coding"][0]["code"] == "referral-letter"
    ]
    assert letters and all(document["docStatus"] == "final" for document in letters)
    assert {"system": "http://loinc.org", "code": "57133-1", "display": "Referral note"} in letters[0]["type"]["coding"]


def test_a_draft_letter_is_preliminary_and_orders_nothing(gp, gp_api):
    encounter = encounter_of(gp)
    workup = workup_for(gp, encounter)
    recommendation = workup.referrals.first()
    recommendation_decide(actor=actor_for(gp), recommendation=recommendation, decision=Decision.ACCEPTED)
    draft = referral_services.referral_create(actor=actor_for(gp), encounter=encounter, recommendation=recommendation)
    referral_services.document_render(kind="referral", pk=draft.pk, claimant="test:4:fhir")

    bundle = export(gp_api, encounter)

    letters = resources(bundle, "DocumentReference")
    assert [document["docStatus"] for document in letters] == ["preliminary"]
    assert not [
        request
        for request in resources(bundle, "ServiceRequest")
        if request["category"][0]["coding"][0]["code"] == "referral"
    ]
    assert not resources(bundle, "Condition")


def test_a_body_that_is_not_json_gets_an_operation_outcome(gp_api):
    response = gp_api.generic(
        "POST", "/api/v1/fhir/Patient", '{"resourceType": "Patient", "name": [', content_type=FHIR
    )

    assert response.status_code == 400
    assert json.loads(response.content)["resourceType"] == "OperationOutcome"


# -- closing the loop: an order answered by its result ----------------------------------------------


def orders_by_code(bundle):
    return {
        entry["resource"]["code"]["coding"][0]["code"]: entry
        for entry in bundle["entry"]
        if entry["resource"]["resourceType"] == "ServiceRequest"
        and entry["resource"]["category"][0]["coding"][0]["code"] != "referral"
    }


def test_an_accepted_test_is_completed_once_its_result_is_entered_and_the_result_is_based_on_it(
    gp, gp_api, full_encounter
):
    from workups.services import result_enter

    before = orders_by_code(export(gp_api, full_encounter))
    assert {entry["resource"]["status"] for entry in before.values()} == {"active"}

    result_enter(actor=actor_for(gp), encounter=full_encounter, code="res_ua_nitrite", value=True)
    bundle = export(gp_api, full_encounter)
    Bundle.model_validate(bundle)

    orders = orders_by_code(bundle)
    assert orders["lab_urinalysis"]["resource"]["status"] == "completed"
    assert orders["us_kidneys"]["resource"]["status"] == "active"  # still awaited
    nitrite = next(
        obs for obs in resources(bundle, "Observation") if obs["code"]["coding"][0]["code"] == "res_ua_nitrite"
    )
    assert nitrite["basedOn"] == [{"reference": orders["lab_urinalysis"]["fullUrl"]}]


def test_on_the_fhir_server_the_result_names_its_service_request_by_id(gp, gp_api, full_encounter):
    from workups.services import result_enter

    result = result_enter(actor=actor_for(gp), encounter=full_encounter, code="res_ua_nitrite", value=True)
    observation = json.loads(gp_api.get(f"/fhir/Observation/result-{result.pk}").content)
    request_id = f"item-{result.item_id}"
    assert observation["basedOn"] == [{"reference": f"ServiceRequest/{request_id}"}]
    request = json.loads(gp_api.get(f"/fhir/ServiceRequest/{request_id}").content)
    assert request["status"] == "completed"


def test_of_crp_and_esr_only_the_order_whose_result_came_back_is_completed(gp, gp_api):
    from tests.record_factories import screened
    from workups.services import result_enter

    encounter = encounter_of(gp, findings=screened({"loc_lumbar": True, "rf_night_pain": True}))
    workup = workup_for(gp, encounter)
    recommendation_decide(
        actor=actor_for(gp), recommendation=workup.items.get(code="lab_crp_esr"), decision=Decision.ACCEPTED
    )
    result_enter(actor=actor_for(gp), encounter=encounter, code="res_crp", value=12)
    bundle = export(gp_api, encounter)
    Bundle.model_validate(bundle)

    by_loinc = {
        next(c["code"] for c in entry["resource"]["code"]["coding"] if c["system"] == "http://loinc.org"): entry
        for entry in bundle["entry"]
        if entry["resource"]["resourceType"] == "ServiceRequest"
    }
    assert by_loinc["1988-5"]["resource"]["status"] == "completed"
    assert by_loinc["30341-2"]["resource"]["status"] == "active"
    crp = next(obs for obs in resources(bundle, "Observation") if obs["code"]["coding"][0]["code"] == "res_crp")
    assert crp["basedOn"] == [{"reference": by_loinc["1988-5"]["fullUrl"]}]


def test_a_numeric_reference_range_carries_ucum_low_and_high_beside_its_text(gp, gp_api, full_encounter):
    from workups.services import result_enter

    actor = actor_for(gp)
    result_enter(actor=actor, encounter=full_encounter, code="res_nech_leukocytes", value=6500)  # ≤ 2000 /mL
    result_enter(actor=actor, encounter=full_encounter, code="res_hemoglobin", value=118)  # ≥ 120 g/L (woman)
    result_enter(actor=actor, encounter=full_encounter, code="res_wbc", value=6.2)  # 4.0–11.0
    result_enter(actor=actor, encounter=full_encounter, code="res_aorta_diameter_cm", value=2.1)  # < 3.0 cm
    result_enter(actor=actor, encounter=full_encounter, code="res_ua_nitrite", value=False)
    bundle = export(gp_api, full_encounter)
    Bundle.model_validate(bundle)
    ranges = {
        obs["code"]["coding"][0]["code"]: obs["referenceRange"][0]
        for obs in resources(bundle, "Observation")
        if obs.get("referenceRange")
    }

    ucum = "http://unitsofmeasure.org"
    leukocytes = ranges["res_nech_leukocytes"]
    assert leukocytes["text"] and "low" not in leukocytes
    assert leukocytes["high"] == {"value": 2000, "unit": "/mL", "system": ucum, "code": "/mL"}
    assert ranges["res_hemoglobin"]["low"] == {"value": 120, "unit": "g/L", "system": ucum, "code": "g/L"}
    assert "high" not in ranges["res_hemoglobin"]
    assert (ranges["res_wbc"]["low"]["value"], ranges["res_wbc"]["high"]["value"]) == (4.0, 11.0)
    assert ranges["res_wbc"]["high"]["code"] == "10*9/L"
    # FHIR bounds are inclusive: "< 3.0 cm" has none (3.0 cm is an aneurysm), and a yes/no result none either.
    assert set(ranges["res_aorta_diameter_cm"]) == {"text"}
    assert set(ranges["res_ua_nitrite"]) == {"text"}
