"""The second, independent R4 validator: HL7's own FHIR R4 (4.0.1) JSON schema, checked with `jsonschema`.

fhir.resources (tests/test_fhir.py, tests/test_fhir_server.py) is one reading of R4; HL7's schema is
another, written by the publisher of the standard. It knows every element of every R4 resource
(`additionalProperties: false`), the primitive types' patterns and the code lists of required bindings,
so a misspelt element, an R5-only element, a malformed date or a status outside R4's value set fails here.
The schema is vendored gzipped in tests/data (its origin and digest are in tests/data/README.md and
pinned below); nothing is fetched at test time.
"""

import functools
import gzip
import hashlib
import json
from pathlib import Path

import pytest
from jsonschema import Draft6Validator

from referrals.models import Referral
from tests.test_cds_hooks import (  # noqa: F401 (fixtures: call, clinic, ehr, rsa_key)
    MINOR_TRAUMA,
    URGENT,
    call,
    cards_of,
    clinic,
    ehr,
    fhir_patient,
    order_select,
    patient_view,
    rsa_key,
)
from tests.test_fhir import export, full_encounter  # noqa: F401 (a fixture)

SCHEMA = Path(__file__).resolve().parent / "data" / "fhir-r4.schema.json.gz"
SCHEMA_SHA256 = "2230406893b4cf002a4ee1e5e2bbeca22ac5d2d4931b3e9ef7b9594bbc376a01"  # the uncompressed file
FHIR = "application/fhir+json"


@functools.cache
def schema() -> dict:
    raw = gzip.decompress(SCHEMA.read_bytes())
    assert hashlib.sha256(raw).hexdigest() == SCHEMA_SHA256, "tests/data/fhir-r4.schema.json.gz is not HL7's R4 schema"
    return json.loads(raw)


@functools.cache
def validator_for(resource_type: str) -> Draft6Validator:
    """A validator whose entry point is one resource's definition (the root's oneOf over every resource
    type gives errors no one can read); references resolve within HL7's document."""
    document = schema()
    assert resource_type in document["definitions"], f"{resource_type} is not an R4 resource"
    root = {key: value for key, value in document.items() if key not in ("oneOf", "discriminator")}
    return Draft6Validator({**root, "$ref": f"#/definitions/{resource_type}"})


def problems(resource: dict) -> list[str]:
    errors = validator_for(resource["resourceType"]).iter_errors(resource)
    return [f"{'/'.join(map(str, error.absolute_path)) or '(root)'}: {error.message[:300]}" for error in errors]


def assert_r4(resource: dict) -> None:
    found = problems(resource)
    assert not found, f"{resource['resourceType']}/{resource.get('id')} is not R4:\n" + "\n".join(found)


def body(response) -> dict:
    assert response["Content-Type"].startswith(FHIR), response.content[:300]
    return json.loads(response.content)


# -- the schema itself ------------------------------------------------------------------------------


def test_the_vendored_schema_is_hl7s_r4_and_a_valid_draft_6_schema():
    document = schema()
    assert document["id"] == "http://hl7.org/fhir/json-schema/4.0"
    assert "4.0.1" in document["definitions"]["CapabilityStatement"]["properties"]["fhirVersion"]["enum"]
    Draft6Validator.check_schema(document)


def test_the_schema_refuses_what_r4_refuses():
    # The validator is only evidence if it can fail: an unknown element, a bad date, a status R4 lacks.
    good = {"resourceType": "Patient", "id": "p-1", "birthDate": "1980-05-17", "gender": "female"}
    assert problems(good) == []
    assert problems({**good, "birthdate": "1980-05-17"})  # misspelt: not an element of Patient
    assert problems({**good, "birthDate": "17.05.1980"})
    assert problems({**good, "gender": "f"})
    task = {"resourceType": "Task", "status": "requested", "intent": "order"}
    assert problems(task) == []
    assert problems({**task, "status": "booked"})  # not in R4's TaskStatus
    assert problems({**task, "requestedPerformer": [{"text": "neurology"}]})  # an R5 element
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": good}]}
    assert problems(bundle) == []
    bundle["entry"][0]["resource"] = {**good, "birthdate": "1980-05-17"}
    assert problems(bundle)  # the entries are checked too


# -- what the app sends -----------------------------------------------------------------------------


def test_the_encounter_export_bundle_and_every_resource_in_it_are_r4(gp_api, full_encounter):  # noqa: F811
    bundle = export(gp_api, full_encounter)

    assert_r4(bundle)  # Bundle.entry.resource is checked against the oneOf of every R4 resource
    kinds = set()
    for entry in bundle["entry"]:
        assert_r4(entry["resource"])
        kinds.add(entry["resource"]["resourceType"])
    assert {"Patient", "Encounter", "Observation", "ServiceRequest", "DocumentReference"} <= kinds


def test_every_resource_the_fhir_server_reads_and_searches_is_r4(gp_api, full_encounter):  # noqa: F811
    referral = Referral.objects.get(encounter=full_encounter)
    patient_id = full_encounter.patient_id

    patient = body(gp_api.get(f"/fhir/Patient/{patient_id}"))
    assert_r4(patient)
    assert_r4(body(gp_api.get(f"/fhir/Encounter/{full_encounter.pk}")))
    kinds = {"Patient", "Encounter"}
    for kind in ("Observation", "ServiceRequest", "Condition", "DocumentReference", "Task"):
        found = body(gp_api.get(f"/fhir/{kind}", {"patient": patient_id}))
        assert_r4(found)  # a searchset Bundle
        assert found["entry"], kind
        for entry in found["entry"]:
            assert_r4(body(gp_api.get(f"/fhir/{kind}/{entry['resource']['id']}")))
            kinds.add(kind)
    assert_r4(body(gp_api.get("/fhir/Patient", {"name": full_encounter.patient.family_name})))
    binary = gp_api.get(f"/fhir/Binary/referral-{referral.pk}", HTTP_ACCEPT=FHIR)
    assert_r4(body(binary))
    assert kinds == {"Patient", "Encounter", "Observation", "ServiceRequest", "Condition", "DocumentReference", "Task"}


def test_a_patient_with_snils_policy_and_patronymic_is_r4_read_searched_and_exported(
    gp,
    gp_api,
    full_encounter,  # noqa: F811
):
    patient = full_encounter.patient
    patient.snils, patient.oms_policy, patient.middle_name = "11223344595", "7700000000000001", "Сергеевна"
    patient.save()

    read = body(gp_api.get(f"/fhir/Patient/{patient.pk}"))
    assert {entry["system"] for entry in read["identifier"]} >= {
        "https://fhir.ru/ig/core/systems/snils",
        "https://fhir.ru/ig/core/systems/oms",
    }
    assert_r4(read)
    assert_r4(body(gp_api.get("/fhir/Patient", {"identifier": "https://fhir.ru/ig/core/systems/snils|11223344595"})))
    assert_r4(export(gp_api, full_encounter))


def test_a_bad_snils_outcome_is_r4(gp_api):
    resource = {
        "resourceType": "Patient",
        "identifier": [{"system": "https://fhir.ru/ig/core/systems/snils", "value": "112-233-445 96"}],
        "name": [{"family": "Петров", "given": ["Илья"]}],
        "gender": "male",
        "birthDate": "1975-04-03",
    }
    response = gp_api.generic("POST", "/fhir/Patient", json.dumps(resource), content_type=FHIR)
    assert response.status_code == 400
    assert_r4(body(response))


def test_the_capability_statement_is_r4(anonymous, db):
    statement = body(anonymous.get("/fhir/metadata"))
    assert_r4(statement)
    assert statement["fhirVersion"] == "4.0.1"


@pytest.mark.parametrize(
    "request_of",
    [
        lambda api: api.get("/fhir/Patient/999999"),  # 404
        lambda api: api.get("/fhir/Patient", {"gender": "female"}),  # 400: an unsupported parameter
        lambda api: api.get("/fhir/Observation"),  # 400: a search without a patient
        lambda api: api.get("/fhir/Medication/1"),  # 404: a type this server doesn't have
        lambda api: api.generic("POST", "/fhir/Patient", "{", content_type=FHIR),  # 400: not JSON
    ],
)
def test_every_error_is_an_r4_operation_outcome(gp_api, request_of):
    response = request_of(gp_api)
    assert 400 <= response.status_code < 500
    outcome = body(response)
    assert outcome["resourceType"] == "OperationOutcome"
    assert_r4(outcome)


def test_an_unauthenticated_callers_outcome_is_r4(anonymous, db):
    response = anonymous.get("/fhir/Patient/1")
    assert response.status_code == 401
    assert_r4(body(response))


# -- what the CDS cards suggest ---------------------------------------------------------------------


def _suggested_resources(cards) -> list[dict]:
    return [
        action["resource"]
        for card in cards
        for suggestion in card.get("suggestions", [])
        for action in suggestion["actions"]
        if action["type"] == "create"
    ]


def test_the_draft_orders_and_referrals_the_cds_cards_suggest_are_r4(call):  # noqa: F811
    workup = call("back-numbness-workup", patient_view(URGENT))
    pregnant = call(
        "imaging-appropriateness",
        order_select(
            MINOR_TRAUMA,
            {"sr-9": "xray_lumbar_spine"},
            patient=fhir_patient(gender="female", age=29),
            pregnant=True,
        ),
    )

    suggested = _suggested_resources(cards_of(workup)) + _suggested_resources(cards_of(pregnant))
    assert any("performerType" in resource for resource in suggested)  # a referral
    assert any("performerType" not in resource for resource in suggested)  # a test
    for resource in suggested:
        assert_r4(resource)
