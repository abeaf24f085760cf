"""A FHIR client no one here wrote (fhirpy) against the server over real HTTP: read, search, conditional
create, a lab result posted as an Observation (and corrected), and the workup followed from its RequestGroup."""

import pytest
from fhirpy import SyncFHIRClient
from fhirpy.base.exceptions import AuthorizationError, OperationOutcome, ResourceNotFound

from tests.factories import MembershipFactory
from tests.record_factories import actor_for, api_token_for, encounter_of, patient_of, workup_for
from workups.models import Decision
from workups.services import recommendation_decide

MRN = "https://ehr.example.org/mrn"

pytestmark = pytest.mark.slow


@pytest.fixture
def gp_live(transactional_db):
    return MembershipFactory(user__username="gp_live").user


@pytest.fixture
def client(live_server, gp_live):
    token = api_token_for(gp_live)
    return SyncFHIRClient(url=f"{live_server.url}/fhir", authorization=f"Token {token}")


def test_fhirpy_reads_searches_creates_conditionally_and_posts_a_result(client, gp_live, live_server):
    patient = patient_of(gp_live, family_name="Иванова", given_name="Анна", identifier="A-1", identifier_system=MRN)
    encounter = encounter_of(gp_live, patient=patient)

    read = client.reference("Patient", str(patient.pk)).to_resource()
    assert read["name"][0]["family"] == "Иванова" and read["meta"]["versionId"] == "1"

    found = client.resources("Patient").search(identifier=f"{MRN}|A-1").fetch()
    assert [resource.id for resource in found] == [str(patient.pk)]
    assert client.resources("Patient").search(name="иван").count() == 1
    encounters = client.resources("Encounter").search(patient=f"Patient/{patient.pk}").fetch_all()
    assert [resource.id for resource in encounters] == [str(encounter.pk)]

    # Conditional create: the match comes back unchanged; without one, the patient is created.
    newcomer = client.resource(
        "Patient",
        identifier=[{"system": MRN, "value": "A-1"}],
        name=[{"family": "Другая", "given": ["Анна"]}],
        gender="female",
        birthDate="1980-05-17",
    )
    same, created = client.resources("Patient").search(identifier=f"{MRN}|A-1").get_or_create(newcomer)
    assert (same.id, created) == (str(patient.pk), False) and same["name"][0]["family"] == "Иванова"
    newcomer["identifier"] = [{"system": MRN, "value": "A-2"}]
    other, created = client.resources("Patient").search(identifier=f"{MRN}|A-2").get_or_create(newcomer)
    assert created and other.id != str(patient.pk)

    observation = client.resource(
        "Observation",
        status="final",
        code={"coding": [{"system": "http://loinc.org", "code": "718-7"}]},
        subject={"reference": f"Patient/{patient.pk}"},
        encounter={"reference": f"Encounter/{encounter.pk}"},
        valueQuantity={"value": 13.2, "unit": "g/dL", "system": "http://unitsofmeasure.org", "code": "g/dL"},
    )
    observation.save()
    assert observation.id.startswith("result-")
    assert observation["valueQuantity"]["value"] == 132.0 and observation["interpretation"]
    assert client.resources("Observation").search(patient=str(patient.pk), _id=observation.id).count() == 1

    bad = client.resource(
        "Observation",
        status="final",
        code={"coding": [{"system": "http://loinc.org", "code": "718-7"}]},
        subject={"reference": f"Patient/{patient.pk}"},
        encounter={"reference": f"Encounter/{encounter.pk}"},
        valueQuantity={"value": 13.2, "unit": "furlong", "code": "furlong"},
    )
    with pytest.raises(OperationOutcome):
        bad.save()
    with pytest.raises(ResourceNotFound):
        client.reference("Patient", "999999").to_resource()
    with pytest.raises(AuthorizationError):
        SyncFHIRClient(url=f"{live_server.url}/fhir").reference("Patient", str(patient.pk)).to_resource()


def test_fhirpy_finds_and_conditionally_creates_by_snils(client, gp_live):
    snils = "https://fhir.ru/ig/core/systems/snils"
    patient = patient_of(gp_live, family_name="Иванова", given_name="Анна", snils="11223344595")

    for value in ("11223344595", "112-233-445 95", "112-233-445-95"):
        found = client.resources("Patient").search(identifier=f"{snils}|{value}").fetch()
        assert [resource.id for resource in found] == [str(patient.pk)]
    found = client.resources("Patient").search(identifier="http://fhir.ru/ig/RuSEMD/systems/snils|11223344595")
    assert found.count() == 1
    read = client.reference("Patient", str(patient.pk)).to_resource()
    assert {"system": snils, "value": "112-233-445-95"}.items() <= read["identifier"][0].items()

    # get_or_create by SNILS: the match comes back unchanged.
    newcomer = client.resource(
        "Patient",
        identifier=[{"system": snils, "value": "112-233-445 95"}],
        name=[{"family": "Другая", "given": ["Анна"]}],
        gender="female",
        birthDate="1980-05-17",
    )
    same, created = client.resources("Patient").search(identifier=f"{snils}|112-233-445-95").get_or_create(newcomer)
    assert (same.id, created) == (str(patient.pk), False) and same["name"][0]["family"] == "Иванова"

    # A bad checksum is refused with an OperationOutcome.
    newcomer["identifier"] = [{"system": snils, "value": "112-233-445 96"}]
    with pytest.raises(OperationOutcome):
        client.resources("Patient").search(identifier=f"{snils}|11223344596").get_or_create(newcomer)


def test_fhirpy_follows_the_workup_from_its_request_group_to_the_orders_and_a_corrected_result(client, gp_live):
    encounter = encounter_of(gp_live)
    workup = workup_for(gp_live, encounter)
    urinalysis = workup.items.get(code="lab_urinalysis")
    recommendation_decide(actor=actor_for(gp_live), recommendation=urinalysis, decision=Decision.ACCEPTED)

    groups = client.resources("RequestGroup").search(encounter=f"Encounter/{encounter.pk}").fetch_all()
    assert [group.id for group in groups] == [f"workup-{encounter.pk}"]
    references = [action["resource"]["reference"] for action in groups[0]["action"] if "resource" in action]
    order = client.reference(reference=f"ServiceRequest/item-{urinalysis.pk}").to_resource()
    assert f"ServiceRequest/{order.id}" in references and order["intent"] == "order"

    def nitrite(value):
        result = client.resource(
            "Observation",
            status="final",
            code={"coding": [{"system": "http://loinc.org", "code": "5802-4"}]},
            subject={"reference": f"Patient/{encounter.patient_id}"},
            encounter={"reference": f"Encounter/{encounter.pk}"},
            valueBoolean=value,
        )
        result.save()
        return result

    first, corrected = nitrite(True), nitrite(False)
    assert corrected.id == first.id and corrected["status"] == "amended"
    assert client.reference("Observation", first.id).to_resource()["valueBoolean"] is False
    assert client.reference("ServiceRequest", order.id).to_resource()["status"] == "completed"


def test_fhirpy_follows_an_order_placed_again_back_to_the_one_it_replaces(client, gp_live):
    encounter = encounter_of(gp_live)
    ultrasound = workup_for(gp_live, encounter).items.get(code="us_kidneys")
    for decision, reason in ((Decision.ACCEPTED, ""), (Decision.DECLINED, "Not this week"), (Decision.ACCEPTED, "")):
        recommendation_decide(actor=actor_for(gp_live), recommendation=ultrasound, decision=decision, reason=reason)

    group = client.reference("RequestGroup", f"workup-{encounter.pk}").to_resource()
    [action] = [action for action in group["action"] if action["code"][0]["coding"][0]["code"] == "us_kidneys"]
    order = client.reference(reference=action["resource"]["reference"]).to_resource()
    assert (order.id, order["status"]) == (f"item-{ultrasound.pk}-r2", "active")
    replaced = order["replaces"][0].to_resource()
    assert (replaced.id, replaced["status"], replaced["note"][0]["text"]) == (
        f"item-{ultrasound.pk}",
        "revoked",
        "Not this week",
    )
    found = client.resources("ServiceRequest").search(encounter=f"Encounter/{encounter.pk}").fetch_all()
    assert sorted((each.id, each["status"]) for each in found if each.id.startswith(f"item-{ultrasound.pk}")) == [
        (f"item-{ultrasound.pk}", "revoked"),
        (f"item-{ultrasound.pk}-r2", "active"),
    ]
