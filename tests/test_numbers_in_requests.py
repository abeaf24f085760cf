"""Numbers typed into a request (a page, an id in a path, a query or a reference, a search's count and offset)
that are not numbers a database can hold: "²" (a digit to str.isdigit(), not to int()), five thousand digits
(int() refuses them), thirty digits (no column holds them), a minus sign. Each was a server error somewhere;
each is now an answer: the list's first page, an empty search, a 404 or a 400 naming the parameter."""

import json

import pytest
from django.test import Client

from clinic.numbers import PAGE_MOST, whole_number
from tests.record_factories import encounter_of, patient_of

NOT_NUMBERS = ["²", "9" * 5000, "1" + "0" * 30, "-1", "1.5", " 1", "١"]
FHIR = "application/fhir+json"


@pytest.mark.parametrize("text", NOT_NUMBERS + ["", "0" * 19])
def test_only_plain_digits_a_database_can_hold_are_read_as_a_number(text):
    assert whole_number(text) is None


def test_plain_digits_are_read_up_to_the_limit_given():
    assert whole_number("0") == 0 and whole_number("42") == 42
    assert whole_number(str(10**18 - 1)) == 10**18 - 1
    assert whole_number(str(PAGE_MOST + 1), most=PAGE_MOST) is None


@pytest.mark.parametrize("page", NOT_NUMBERS + [str(PAGE_MOST + 1)])
def test_a_gp_asking_the_api_for_an_impossible_page_gets_a_404_saying_what_a_page_is(gp_api, gp, page):
    patient_of(gp, family_name="Орлова")
    response = gp_api.get("/api/v1/patients/", {"page": page})
    assert response.status_code == 404
    detail = response.json()["detail"]
    assert str(PAGE_MOST) in detail and (len(page) < 3 or page not in detail)  # a long text is not echoed back


@pytest.mark.parametrize("page", NOT_NUMBERS + [str(PAGE_MOST + 1)])
def test_a_gp_following_an_impossible_page_link_gets_the_first_page(gp, page):
    patient_of(gp, family_name="Орлова")
    client = Client()
    client.force_login(gp)
    response = client.get("/", {"page": page})
    assert response.status_code == 200
    assert "Орлова" in response.content.decode()


def fhir_issue(response, status, expression):
    assert response.status_code == status, response.content
    outcome = json.loads(response.content)
    assert outcome["resourceType"] == "OperationOutcome"
    assert [expression] in [issue.get("expression") for issue in outcome["issue"]], outcome


@pytest.mark.parametrize("text", NOT_NUMBERS)
def test_an_ehr_paging_a_fhir_search_by_a_non_number_is_told_which_parameter(gp_api, gp, text):
    patient_of(gp)
    fhir_issue(gp_api.get("/fhir/Patient", {"_offset": text}), 400, "_offset")
    fhir_issue(gp_api.get("/fhir/Patient", {"_count": text}), 400, "_count")


def test_an_offset_past_what_a_search_pages_is_refused_and_one_within_it_is_an_empty_page(gp_api, gp):
    patient_of(gp)
    fhir_issue(gp_api.get("/fhir/Patient", {"_offset": str(10**9 + 1)}), 400, "_offset")
    bundle = json.loads(gp_api.get("/fhir/Patient", {"_offset": str(10**9)}).content)
    assert bundle["total"] == 1 and not bundle.get("entry")


@pytest.mark.parametrize("text", NOT_NUMBERS)
def test_an_ehr_searching_or_reading_by_an_id_that_is_no_number_finds_nothing(gp_api, gp, text):
    encounter = encounter_of(gp)
    if len(text) > 200:  # a search parameter's length is checked first, and named
        fhir_issue(gp_api.get("/fhir/Patient", {"_id": text}), 400, "_id")
        return
    for params in ({"_id": text}, {"_id": f"Patient/{text}"}):
        bundle = json.loads(gp_api.get("/fhir/Patient", params).content)
        assert bundle["resourceType"] == "Bundle" and bundle["total"] == 0
    for name in ("patient", "subject"):
        bundle = json.loads(gp_api.get("/fhir/Encounter", {name: f"Patient/{text}"}).content)
        assert bundle["total"] == 0
    assert json.loads(gp_api.get("/fhir/Encounter", {"_id": f"{text}"}).content)["total"] == 0
    assert json.loads(gp_api.get("/fhir/Encounter", {"patient": encounter.patient_id}).content)["total"] == 1
    if "/" not in text and " " not in text:
        assert gp_api.get(f"/fhir/Patient/{text}").status_code == 404


@pytest.mark.parametrize("text", ["²", "1" + "0" * 30])
def test_an_ehr_posting_a_result_for_an_encounter_that_is_no_number_is_refused_not_a_server_error(gp_api, gp, text):
    encounter_of(gp)
    observation = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "https://example.org", "code": "x"}]},
        "encounter": {"reference": f"Encounter/{text}"},
        "subject": {"reference": f"Patient/{text}"},
        "valueBoolean": True,
    }
    response = gp_api.generic("POST", "/fhir/Observation", json.dumps(observation), content_type=FHIR)
    assert 400 <= response.status_code < 500, response.content
