"""The FHIR R4 server at /fhir/: metadata, Patient (read, search, conditional create, versioned update),
the encounter's resources read and searched, lab results posted as Observations, the referral's Task
updated with the specialist's outcome, documents as Binary; errors as OperationOutcome."""

import base64
import datetime as dt
import json
from unittest import mock
from urllib.parse import urlencode

import pytest
from django.utils import timezone
from django.utils.http import http_date
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.task import Task

from clinic.models import AuditEvent, Patient
from referrals.models import Referral
from tests.record_factories import api_client_for, encounter_of, patient_of
from tests.test_fhir import full_encounter  # noqa: F401 (a fixture)

FHIR = "application/fhir+json"
MRN = "https://ehr.example.org/mrn"


def body(response):
    return json.loads(response.content)


def put(client, path, resource, **headers):
    return client.generic("PUT", path, json.dumps(resource), content_type=FHIR, **headers)


def post(client, path, resource, **headers):
    return client.generic("POST", path, json.dumps(resource), content_type=FHIR, **headers)


def outcome(response, status, where=None):
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith(FHIR)
    result = body(response)
    assert result["resourceType"] == "OperationOutcome", result
    if where:
        assert any(where in " ".join(issue.get("expression", [])) for issue in result["issue"]), result
    return result


# -- metadata and authorization ---------------------------------------------------------------------


def test_metadata_is_public_and_tells_exactly_what_is_implemented(anonymous, db):
    response = anonymous.get("/fhir/metadata")
    assert response.status_code == 200 and response["Content-Type"].startswith(FHIR)
    statement = body(response)
    CapabilityStatement.model_validate(statement)
    assert statement["fhirVersion"] == "4.0.1" and "json" in statement["format"]
    rest = statement["rest"][0]
    assert rest["security"]["service"][0]["text"] == "Token"
    resources = {entry["type"]: entry for entry in rest["resource"]}
    assert set(resources) == {
        "Patient",
        "Encounter",
        "Observation",
        "ServiceRequest",
        "Condition",
        "DocumentReference",
        "Binary",
        "Task",
        "RequestGroup",
    }
    assert [i["code"] for i in resources["Patient"]["interaction"]] == [
        "read",
        "vread",
        "search-type",
        "create",
        "update",
    ]
    assert "vread" in [i["code"] for i in resources["Task"]["interaction"]]
    assert resources["Patient"]["readHistory"] is False  # only the current version is served
    # If-None-Match and If-Modified-Since where a read has an ETag (a version) to compare.
    assert resources["Patient"]["conditionalRead"] == resources["Task"]["conditionalRead"] == "full-support"
    assert resources["Observation"]["conditionalRead"] == "not-supported"
    assert {p["name"] for p in resources["Patient"]["searchParam"]} == {"_id", "identifier", "name", "birthdate"}
    assert resources["Patient"]["conditionalCreate"] is True
    assert [i["code"] for i in resources["Binary"]["interaction"]] == ["read"]
    assert [i["code"] for i in resources["Observation"]["interaction"]] == ["read", "search-type", "create"]


@pytest.mark.parametrize(
    "path", ["/fhir/Patient/1", "/fhir/Patient?name=x", "/fhir/Observation?patient=1", "/fhir/Binary/referral-1"]
)
def test_everything_but_metadata_needs_the_token(anonymous, db, path):
    response = anonymous.get(path)
    outcome(response, 401)
    assert response["WWW-Authenticate"] == "Token"
    anonymous.credentials(HTTP_AUTHORIZATION="Token not-a-token")
    outcome(anonymous.get(path), 401)
    # For the integrator, in English whatever language the request asks for.
    refused = outcome(anonymous.get(path, HTTP_ACCEPT_LANGUAGE="ru"), 401)
    assert refused["issue"][0]["diagnostics"] == "Invalid token."


# -- Patient ----------------------------------------------------------------------------------------


def test_patient_read_has_version_and_etag_and_another_clinics_is_a_404(gp, gp_api, other_gp):
    patient = patient_of(gp, family_name="Иванова", given_name="Анна", identifier="A-1", identifier_system=MRN)
    response = gp_api.get(f"/fhir/Patient/{patient.pk}")
    assert response.status_code == 200 and response["ETag"] == 'W/"1"'
    resource = body(response)
    assert resource["meta"]["versionId"] == "1" and resource["identifier"] == [{"system": MRN, "value": "A-1"}]
    outcome(api_client_for(other_gp).get(f"/fhir/Patient/{patient.pk}"), 404)
    outcome(gp_api.get("/fhir/Patient/999999"), 404)
    outcome(gp_api.get("/fhir/Patient/abc"), 404)
    # One resource, one id: the same number written another way is no id of this server's.
    outcome(gp_api.get(f"/fhir/Patient/0{patient.pk}"), 404)
    outcome(gp_api.get(f"/fhir/Patient/0{patient.pk}/_history/1"), 404)


def test_patient_search_by_identifier_name_and_birthdate_by_get_and_post(gp, gp_api, other_gp):
    anna = patient_of(gp, family_name="Иванова", given_name="Анна", identifier="A-1", identifier_system=MRN)
    patient_of(gp, family_name="Петров", given_name="Илья")
    patient_of(other_gp, family_name="Иванова", given_name="Анна", identifier="A-1", identifier_system=MRN)

    found = body(gp_api.get("/fhir/Patient", {"identifier": f"{MRN}|A-1"}))
    Bundle.model_validate(found)
    assert found["type"] == "searchset" and found["total"] == 1
    assert found["entry"][0]["resource"]["id"] == str(anna.pk)
    assert found["link"][0]["relation"] == "self"
    assert body(gp_api.get("/fhir/Patient", {"name": "иВАН"}))["total"] == 1
    assert body(gp_api.get("/fhir/Patient", {"birthdate": "1980-05-17"}))["total"] == 2
    assert body(gp_api.get("/fhir/Patient", {"birthdate": "1990-01-01"}))["total"] == 0

    # POST _search: the name travels in the body, never in the URL.
    response = gp_api.generic(
        "POST",
        "/fhir/Patient/_search",
        urlencode({"name": "Иванова"}),
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 200, response.content
    assert [entry["resource"]["id"] for entry in body(response)["entry"]] == [str(anna.pk)]

    outcome(gp_api.generic("POST", "/fhir/Patient/_search", json.dumps({"name": "x"}), content_type=FHIR), 415)
    outcome(gp_api.get("/fhir/Patient", {"gender": "female"}), 400, "gender")
    outcome(gp_api.get("/fhir/Patient", {"birthdate": "gt1980"}), 400, "birthdate")


def test_search_pages_with_count_and_next_links(gp, gp_api):
    for index in range(5):
        patient_of(gp, family_name=f"Page{index}")
    first = body(gp_api.get("/fhir/Patient", {"_count": 2}))
    assert first["total"] == 5 and len(first["entry"]) == 2
    next_url = next(link["url"] for link in first["link"] if link["relation"] == "next")
    second = body(gp_api.get(next_url.removeprefix("http://testserver")))
    assert {entry["resource"]["id"] for entry in second["entry"]}.isdisjoint(
        {entry["resource"]["id"] for entry in first["entry"]}
    )
    assert len(body(gp_api.get("/fhir/Patient", {"_count": 1000}))["entry"]) == 5  # capped at 200
    assert (
        "entry" not in body(gp_api.get("/fhir/Patient", {"_count": 0}))
        or body(gp_api.get("/fhir/Patient", {"_count": 0}))["entry"] == []
    )


def _post_search(client, path, terms):
    return client.generic("POST", path, urlencode(terms), content_type="application/x-www-form-urlencoded")


def _links(bundle):
    return {link["relation"]: link["url"].removeprefix("http://testserver") for link in bundle["link"]}


def test_a_post_search_keeps_its_terms_out_of_the_links_a_client_follows_with_get(gp, gp_api):
    # POST _search is how an EHR keeps a name, birth date or SNILS out of URLs; links that repeated them as a
    # GET query would hand them to every proxy and log on the way.
    for index in range(5):
        patient_of(gp, family_name="Иванова", given_name=f"Анна{index}")
    patient_of(gp, family_name="Петрова")
    terms = {"name": "Иванова", "birthdate": "1980-05-17", "_count": 2}
    first = body(_post_search(gp_api, "/fhir/Patient/_search", terms))
    assert first["total"] == 5 and len(first["entry"]) == 2
    links = _links(first)
    assert set(links) == {"self", "next"}
    for url in links.values():
        assert "Иванова" not in url and "%D0" not in url and "1980" not in url and "name=" not in url
        assert "_getpages=" in url and "_count=2" in url

    seen = [entry["resource"]["id"] for entry in first["entry"]]
    page = first
    while "next" in _links(page):
        page = body(gp_api.get(_links(page)["next"]))
        assert page["total"] == 5
        seen += [entry["resource"]["id"] for entry in page["entry"]]
    assert len(seen) == len(set(seen)) == 5
    back = body(gp_api.get(_links(page)["previous"]))
    assert [entry["resource"]["id"] for entry in back["entry"]] == seen[2:4]
    assert body(gp_api.get(_links(first)["self"]))["entry"] == first["entry"]


def test_a_get_search_links_repeat_its_parameters_as_given(gp, gp_api):
    for index in range(3):
        patient_of(gp, family_name="Page", given_name=f"N{index}")
    links = _links(body(gp_api.get("/fhir/Patient", {"name": "Page", "_count": 1})))
    assert "name=Page" in links["next"] and "_getpages" not in links["next"]


def test_a_post_search_link_answers_nobody_else_and_nothing_else(gp, gp_api, other_gp):
    for index in range(3):
        patient_of(gp, family_name="Иванова", given_name=f"Анна{index}")
    patient_of(other_gp, family_name="Иванова")
    next_url = _links(body(_post_search(gp_api, "/fhir/Patient/_search", {"name": "Иванова", "_count": 1})))["next"]
    token = next_url.split("_getpages=")[1].split("&")[0]

    # The GP of another clinic learns nothing from it: not our patients, and not theirs by our terms.
    outcome(api_client_for(other_gp).get(next_url), 400, "_getpages")
    outcome(gp_api.get("/fhir/Encounter", {"_getpages": token}), 400, "_getpages")
    outcome(gp_api.get("/fhir/Patient", {"_getpages": token, "name": "Петров"}), 400, "_getpages")
    forged = token[:-6] + ("AAAAAA" if not token.endswith("AAAAAA") else "BBBBBB")
    outcome(gp_api.get("/fhir/Patient", {"_getpages": forged}), 400, "_getpages")
    outcome(gp_api.get("/fhir/Patient", {"_getpages": "not a token"}), 400, "_getpages")
    outcome(gp_api.get("/fhir/Patient", {"_getpages": "x" * 5000}), 400, "_getpages")
    assert body(gp_api.get(next_url))["total"] == 3


def test_the_pages_of_a_post_search_are_kept_for_an_hour(gp, gp_api):
    for index in range(2):
        patient_of(gp, family_name="Иванова", given_name=f"Анна{index}")
    searched = timezone.now()
    with mock.patch("django.utils.timezone.now", return_value=searched):
        first = body(_post_search(gp_api, "/fhir/Patient/_search", {"name": "Иванова", "_count": 1}))
    next_url = _links(first)["next"]
    with mock.patch("django.utils.timezone.now", return_value=searched + dt.timedelta(minutes=59)):
        assert len(body(gp_api.get(next_url))["entry"]) == 1
    with mock.patch("django.utils.timezone.now", return_value=searched + dt.timedelta(minutes=61)):
        gone = outcome(gp_api.get(next_url), 410, "_getpages")
    assert "search again" in gone["issue"][0]["diagnostics"]


NEW_PATIENT = {
    "resourceType": "Patient",
    "identifier": [{"system": MRN, "value": "B-7"}],
    "name": [{"family": "Сидорова", "given": ["Мария"]}],
    "gender": "female",
    "birthDate": "1970-02-03",
}


def test_conditional_create_returns_one_match_unchanged_refuses_several_and_creates_when_none(gp, gp_api):
    response = post(gp_api, "/fhir/Patient", NEW_PATIENT, HTTP_IF_NONE_EXIST=f"identifier={MRN}|B-7")
    assert response.status_code == 201, response.content
    created = body(response)
    assert response["Location"].endswith(f"/fhir/Patient/{created['id']}/_history/1")
    assert response["ETag"] == 'W/"1"'

    changed = {**NEW_PATIENT, "name": [{"family": "Другая", "given": ["Мария"]}]}
    again = post(gp_api, "/fhir/Patient", changed, HTTP_IF_NONE_EXIST=f"identifier={MRN}|B-7")
    assert again.status_code == 200 and body(again)["id"] == created["id"]
    assert Patient.objects.get(pk=created["id"]).family_name == "Сидорова"

    patient_of(gp, identifier="B-7", identifier_system="https://other.example.org/mrn")
    outcome(post(gp_api, "/fhir/Patient", changed, HTTP_IF_NONE_EXIST="identifier=B-7"), 412)
    outcome(post(gp_api, "/fhir/Patient", changed, HTTP_IF_NONE_EXIST="name=x"), 400, "If-None-Exist")
    assert Patient.objects.count() == 2


def test_create_refuses_modifier_extensions_control_characters_and_other_media_types(gp_api):
    outcome(
        post(
            gp_api,
            "/fhir/Patient",
            {**NEW_PATIENT, "modifierExtension": [{"url": "https://x.org/y", "valueBoolean": True}]},
        ),
        400,
        "Patient.modifierExtension",
    )
    outcome(
        post(gp_api, "/fhir/Patient", {**NEW_PATIENT, "address": [{"text": "a\u0001b"}]}),
        400,
        "Patient.address[0].text",
    )
    outcome(gp_api.generic("POST", "/fhir/Patient", json.dumps(NEW_PATIENT), content_type="text/plain"), 415)
    outcome(gp_api.generic("POST", "/fhir/Patient", "{not json", content_type=FHIR), 400)
    assert not Patient.objects.exists()
    # application/json is accepted too.
    assert (
        gp_api.generic("POST", "/fhir/Patient", json.dumps(NEW_PATIENT), content_type="application/json").status_code
        == 201
    )


def test_update_only_with_if_match_and_the_version_moves(gp, gp_api, other_gp):
    patient = patient_of(gp, family_name="Иванова", given_name="Анна", sex="female")
    resource = body(gp_api.get(f"/fhir/Patient/{patient.pk}"))
    resource["name"] = [{"family": "Смирнова", "given": ["Анна"]}]

    outcome(put(gp_api, f"/fhir/Patient/{patient.pk}", resource), 428)
    outcome(put(gp_api, f"/fhir/Patient/{patient.pk}", resource, HTTP_IF_MATCH='W/"7"'), 412)
    outcome(put(api_client_for(other_gp), f"/fhir/Patient/{patient.pk}", resource, HTTP_IF_MATCH='W/"1"'), 404)
    outcome(
        # Another id than the URL's (never a fixed number: the patient's own id can be that number).
        put(gp_api, f"/fhir/Patient/{patient.pk}", {**resource, "id": str(patient.pk + 1)}, HTTP_IF_MATCH='W/"1"'),
        400,
        "Patient.id",
    )

    response = put(gp_api, f"/fhir/Patient/{patient.pk}", resource, HTTP_IF_MATCH='W/"1"')
    assert response.status_code == 200, response.content
    assert response["ETag"] == 'W/"2"' and body(response)["meta"]["versionId"] == "2"
    patient.refresh_from_db()
    assert (patient.family_name, patient.version) == ("Смирнова", 2)
    outcome(put(gp_api, f"/fhir/Patient/{patient.pk}", resource, HTTP_IF_MATCH='W/"1"'), 412)


def test_the_location_of_a_write_is_a_vread_of_the_current_version_and_an_older_one_is_gone(gp, gp_api, other_gp):
    created = post(gp_api, "/fhir/Patient", NEW_PATIENT)
    assert created.status_code == 201 and created["Last-Modified"]
    location = created["Location"].removeprefix("http://testserver")
    assert location.endswith("/_history/1")

    read = gp_api.get(location)
    assert read.status_code == 200, read.content
    assert read["ETag"] == 'W/"1"' and read["Last-Modified"]
    assert body(read) == body(created)
    outcome(api_client_for(other_gp).get(location), 404)

    resource = {**body(read), "name": [{"family": "Другая", "given": ["Мария"]}]}
    updated = put(gp_api, location.split("/_history/")[0], resource, HTTP_IF_MATCH='W/"1"')
    assert updated.status_code == 200 and updated["Last-Modified"]
    assert updated["Location"].endswith("/_history/2")
    assert gp_api.get(updated["Location"]).status_code == 200
    outcome(gp_api.get(location), 410)  # version 1: not kept
    outcome(gp_api.get(location.replace("/_history/1", "/_history/3")), 404)
    outcome(gp_api.get(location.replace("/_history/1", "/_history/x")), 404)


def test_a_resource_without_versions_has_no_vread(gp, gp_api):
    outcome(gp_api.get(f"/fhir/Encounter/{encounter_of(gp).pk}/_history/1"), 404)


def test_if_match_star_updates_whatever_the_current_version(gp, gp_api):
    patient = patient_of(gp, family_name="Иванова", given_name="Анна", sex="female")
    resource = body(gp_api.get(f"/fhir/Patient/{patient.pk}"))
    resource["name"] = [{"family": "Смирнова", "given": ["Анна"]}]

    response = put(gp_api, f"/fhir/Patient/{patient.pk}", resource, HTTP_IF_MATCH="*")

    assert response.status_code == 200, response.content
    assert response["ETag"] == 'W/"2"'


def test_an_update_the_encounters_make_impossible_is_refused(gp, gp_api):
    patient = patient_of(gp, sex="female")
    encounter_of(gp, patient=patient, pregnant=True)
    resource = body(gp_api.get(f"/fhir/Patient/{patient.pk}"))
    response = put(gp_api, f"/fhir/Patient/{patient.pk}", {**resource, "gender": "male"}, HTTP_IF_MATCH='W/"1"')
    outcome(response, 400, "Patient.gender")
    patient.refresh_from_db()
    assert (patient.sex, patient.version) == ("female", 1)


def test_a_read_of_a_version_the_ehr_holds_is_a_304_and_a_changed_one_is_sent_whole(gp, gp_api, other_gp):
    patient = patient_of(gp)
    path = f"/fhir/Patient/{patient.pk}"
    read = gp_api.get(path)

    unchanged = gp_api.get(path, HTTP_IF_NONE_MATCH=read["ETag"])
    assert unchanged.status_code == 304 and unchanged.content == b""
    assert unchanged["ETag"] == 'W/"1"'
    assert gp_api.get(path, HTTP_IF_MODIFIED_SINCE=read["Last-Modified"]).status_code == 304
    # Another clinic learns nothing from the condition: its read is a 404 still.
    outcome(api_client_for(other_gp).get(path, HTTP_IF_NONE_MATCH='W/"1"'), 404)
    # The read was audited like any other: the EHR read the record, from its cache.
    assert AuditEvent.objects.filter(action="view", object_type="patient", object_id=patient.pk).count() >= 2

    put(gp_api, path, {**body(read), "gender": "female"}, HTTP_IF_MATCH=read["ETag"])
    changed = gp_api.get(path, HTTP_IF_NONE_MATCH=read["ETag"])
    assert changed.status_code == 200 and changed["ETag"] == 'W/"2"'
    assert body(changed)["gender"] == "female"
    # A search is not a conditional read: it always answers with the Bundle.
    assert gp_api.get("/fhir/Patient", {"_id": patient.pk}, HTTP_IF_NONE_MATCH='W/"2"').status_code == 200


def test_head_answers_what_get_would_without_the_body(gp, gp_api, other_gp, anonymous):
    patient = patient_of(gp)
    read = gp_api.get(f"/fhir/Patient/{patient.pk}")
    head = gp_api.head(f"/fhir/Patient/{patient.pk}")
    assert head.status_code == 200 and head.content == b""
    assert head["ETag"] == read["ETag"] == 'W/"1"'
    assert head["Last-Modified"] == read["Last-Modified"] == http_date(patient.updated_at.timestamp())
    assert head["Content-Type"].startswith(FHIR)
    assert gp_api.head("/fhir/Patient", {"_id": patient.pk}).status_code == 200
    # Another clinic's patient is a 404 to HEAD as to GET; and a HEAD still needs the token.
    assert api_client_for(other_gp).head(f"/fhir/Patient/{patient.pk}").status_code == 404
    assert gp_api.head("/fhir/Patient/not-a-number").status_code == 404
    assert gp_api.head(f"/fhir/Patient/{patient.pk}", {"_format": "xml"}).status_code == 406
    assert anonymous.head(f"/fhir/Patient/{patient.pk}").status_code == 401


def test_a_head_read_is_audited_like_a_get(gp, gp_api):
    patient = patient_of(gp)
    before = AuditEvent.objects.filter(patient_id=patient.pk, action="view").count()
    gp_api.head(f"/fhir/Patient/{patient.pk}")
    assert AuditEvent.objects.filter(patient_id=patient.pk, action="view").count() == before + 1


def test_unsupported_methods_and_types(gp, gp_api):
    patient = patient_of(gp)
    response = gp_api.delete(f"/fhir/Patient/{patient.pk}")
    outcome(response, 405)
    assert response["Allow"] == "GET, PUT, HEAD"
    outcome(post(gp_api, "/fhir/Encounter", {"resourceType": "Encounter"}), 405)
    outcome(put(gp_api, "/fhir/Observation/1-x", {"resourceType": "Observation"}, HTTP_IF_MATCH='W/"1"'), 405)
    outcome(gp_api.get("/fhir/Medication/1"), 404)
    outcome(gp_api.get(f"/fhir/Patient/{patient.pk}", {"_format": "xml"}), 406)
    # Paths the server does not have answer as FHIR does, with an OperationOutcome, not the app's HTML page.
    # (Patient/<id>/_history/<vid> is a vread: test_the_location_of_a_write_is_a_vread_of_the_current_version...)
    for path in ("/fhir/", f"/fhir/Patient/{patient.pk}/_history"):
        outcome(gp_api.get(path), 404)
    outcome(post(gp_api, "/fhir/", {"resourceType": "Bundle", "type": "transaction"}), 404)


def test_a_search_with_several_values_is_refused_naming_the_parameter_not_answered_empty(gp, gp_api):
    first, second = patient_of(gp), patient_of(gp)
    outcome(gp_api.get("/fhir/Encounter", {"patient": f"{first.pk},{second.pk}"}), 400, "patient")
    outcome(gp_api.get("/fhir/Patient", {"_id": f"{first.pk},{second.pk}"}), 400, "_id")


def test_an_unsupported_parameter_is_refused_unless_the_client_asks_for_lenient_handling(gp, gp_api):
    patient = patient_of(gp)
    outcome(gp_api.get("/fhir/Patient", {"_sort": "name", "_id": patient.pk}), 400, "_sort")
    strict = gp_api.get("/fhir/Patient", {"_sort": "name", "_id": patient.pk}, HTTP_PREFER="handling=strict")
    outcome(strict, 400, "_sort")
    lenient = body(gp_api.get("/fhir/Patient", {"_sort": "name", "_id": patient.pk}, HTTP_PREFER="handling=lenient"))
    assert lenient["total"] == 1
    self_link = next(link["url"] for link in lenient["link"] if link["relation"] == "self")
    assert "_sort" not in self_link and f"_id={patient.pk}" in self_link


def test_the_json_format_is_accepted_however_a_client_writes_it(gp, gp_api):
    # "application/fhir+json" put in a URL unescaped arrives with its "+" as a space.
    patient = patient_of(gp)
    for written in (
        "json",
        "application/fhir+json",
        "application/fhir json",
        "application/json",
        "Application/FHIR+JSON",
    ):
        response = gp_api.get(f"/fhir/Patient/{patient.pk}?_format={written}")
        assert response.status_code == 200 and body(response)["resourceType"] == "Patient", written
    response = gp_api.get(f"/fhir/Patient/{patient.pk}", {"_format": "application/fhir+json; fhirVersion=4.0"})
    assert response.status_code == 200


# -- SNILS and the OMS policy (HL7 FHIR Russia RuCoreIG) ---------------------------------------------

SNILS_SYSTEM = "https://fhir.ru/ig/core/systems/snils"
OMS_SYSTEM = "https://fhir.ru/ig/core/systems/oms"
IDENTIFIER_TYPE = "https://fhir.ru/ig/core/CodeSystem/core-cs-semd-identifier-type"
CORE_PATIENT = "https://fhir.ru/ig/core/StructureDefinition/core-patient"
SNILS = "11223344595"  # passes the Pension Fund checksum
POLICY = "7700000000000001"


def national(resource) -> dict:
    """{system: value} of the Patient's SNILS and OMS identifiers."""
    return {
        entry["system"]: entry["value"]
        for entry in resource.get("identifier", [])
        if entry["system"].startswith(("https://fhir.ru/", "http://fhir.ru/"))
    }


def test_a_patient_is_sent_with_snils_and_policy_in_rucore_systems_and_types(gp, gp_api):
    patient = patient_of(
        gp, family_name="Иванова", given_name="Анна", middle_name="Сергеевна", snils=SNILS, oms_policy=POLICY
    )

    for resource in (
        body(gp_api.get(f"/fhir/Patient/{patient.pk}")),
        body(gp_api.get("/fhir/Patient", {"name": "Иванова"}))["entry"][0]["resource"],
    ):
        assert national(resource) == {SNILS_SYSTEM: "112-233-445-95", OMS_SYSTEM: POLICY}
        by_system = {entry["system"]: entry for entry in resource["identifier"]}
        snils, policy = by_system[SNILS_SYSTEM], by_system[OMS_SYSTEM]
        assert {"system": IDENTIFIER_TYPE, "code": "snils", "display": "СНИЛС"} in snils["type"]["coding"]
        assert {"system": IDENTIFIER_TYPE, "code": "oms-policy", "display": "Полис ОМС"} in policy["type"]["coding"]
        assert resource["meta"]["profile"] == [CORE_PATIENT]
        assert resource["name"][0]["given"] == ["Анна", "Сергеевна"]  # Core_Patient: the patronymic second

    # A patient without them carries neither.
    assert national(body(gp_api.get(f"/fhir/Patient/{patient_of(gp).pk}"))) == {}


@pytest.mark.parametrize(
    "identifier",
    [
        f"{SNILS_SYSTEM}|{SNILS}",
        f"{SNILS_SYSTEM}|112-233-445 95",
        f"{SNILS_SYSTEM}|112-233-445-95",
        "http://fhir.ru/ig/RuSEMD/systems/snils|112 233 445 95",  # RuSEMD's system, a synonym
        "http://fhir.ru/core/systems/snils|11223344595",
        "112-233-445 95",  # a bare value matches any system
        f"{OMS_SYSTEM}|{POLICY}",
        f"{OMS_SYSTEM}|7700 0000 0000 0001",
        "http://fhir.ru/ig/RuSEMD/systems/OMS|7700000000000001",
    ],
)
def test_a_gp_finds_a_patient_by_snils_or_policy_however_written_and_never_another_clinics(
    gp, gp_api, other_gp, identifier
):
    ours = patient_of(gp, family_name="Иванова", snils=SNILS, oms_policy=POLICY)
    patient_of(gp, family_name="Петров", snils="12345678964", oms_policy="7700000000000002")
    theirs = patient_of(other_gp, family_name="Иванова", snils=SNILS, oms_policy=POLICY)

    found = body(gp_api.get("/fhir/Patient", {"identifier": identifier}))
    assert [entry["resource"]["id"] for entry in found["entry"]] == [str(ours.pk)]
    by_post = gp_api.generic(
        "POST",
        "/fhir/Patient/_search",
        urlencode({"identifier": identifier}),
        content_type="application/x-www-form-urlencoded",
    )
    assert [entry["resource"]["id"] for entry in body(by_post)["entry"]] == [str(ours.pk)]
    # The GP of another clinic finds their own patient with the same SNILS, never ours.
    found = body(api_client_for(other_gp).get("/fhir/Patient", {"identifier": identifier}))
    assert [entry["resource"]["id"] for entry in found["entry"]] == [str(theirs.pk)]


@pytest.mark.parametrize(
    "identifier",
    [f"{SNILS_SYSTEM}|1122334459", f"{SNILS_SYSTEM}|abc", f"{OMS_SYSTEM}|{SNILS}", f"{SNILS_SYSTEM}|", "|" + SNILS],
)
def test_a_search_by_a_number_that_cannot_be_that_identifier_finds_nobody(gp, gp_api, identifier):
    patient_of(gp, snils=SNILS, oms_policy=POLICY)
    found = body(gp_api.get("/fhir/Patient", {"identifier": identifier}))
    assert found["total"] == 0


def test_a_created_patient_stores_snils_and_policy_from_its_identifiers(gp, gp_api):
    resource = {
        **NEW_PATIENT,
        "meta": {"profile": [CORE_PATIENT]},
        "name": [{"family": "Сидорова", "given": ["Мария", "Ивановна"]}],
        "identifier": [
            {"system": MRN, "value": "B-8"},
            {"system": "http://fhir.ru/ig/RuSEMD/systems/snils", "value": "112-233-445 95"},
            {"system": OMS_SYSTEM, "value": "7700 0000 0000 0001"},
        ],
    }
    response = post(gp_api, "/fhir/Patient", resource, HTTP_IF_NONE_EXIST=f"identifier={MRN}|B-8")
    assert response.status_code == 201, response.content
    patient = Patient.objects.get(pk=body(response)["id"])
    assert (patient.snils, patient.oms_policy, patient.identifier) == (SNILS, POLICY, "B-8")
    assert (patient.given_name, patient.middle_name) == ("Мария", "Ивановна")
    # Sent back in RuCoreIG's own systems only, never the synonym it came in.
    assert national(body(response)) == {SNILS_SYSTEM: "112-233-445-95", OMS_SYSTEM: POLICY}


def test_conditional_create_matches_on_snils_and_never_modifies_the_match(gp, gp_api, other_gp):
    ours = patient_of(gp, family_name="Иванова", given_name="Анна", sex="female", snils=SNILS)
    theirs = patient_of(other_gp, family_name="Иванова", snils=SNILS)
    stranger = {
        **NEW_PATIENT,
        "name": [{"family": "Другая", "given": ["Мария"]}],
        "identifier": [{"system": SNILS_SYSTEM, "value": "112-233-445-95"}],
    }

    for criteria in (f"identifier={SNILS_SYSTEM}|112-233-445 95", f"identifier={SNILS_SYSTEM}|{SNILS}"):
        response = post(gp_api, "/fhir/Patient", stranger, HTTP_IF_NONE_EXIST=criteria)
        assert response.status_code == 200 and body(response)["id"] == str(ours.pk)
    # Without criteria too: the SNILS in the resource finds the patient, returned as they are.
    response = post(gp_api, "/fhir/Patient", stranger)
    assert response.status_code == 200 and body(response)["id"] == str(ours.pk)
    ours.refresh_from_db()
    assert (ours.family_name, ours.given_name, ours.version) == ("Иванова", "Анна", 1)
    assert Patient.objects.filter(clinic=ours.clinic).count() == 1
    theirs.refresh_from_db()
    assert theirs.family_name == "Иванова"

    # The EHR's number names one patient and the SNILS another: refused, nothing made or changed.
    patient_of(gp, identifier="B-9", identifier_system=MRN)
    both = {**stranger, "identifier": [{"system": MRN, "value": "B-9"}, *stranger["identifier"]]}
    outcome(post(gp_api, "/fhir/Patient", both), 409, "Patient.identifier")
    assert Patient.objects.filter(clinic=ours.clinic).count() == 2


def test_a_gp_of_another_clinic_creates_their_own_patient_with_the_same_snils(gp, gp_api, other_gp):
    ours = patient_of(gp, snils=SNILS)
    resource = {**NEW_PATIENT, "identifier": [{"system": SNILS_SYSTEM, "value": SNILS}]}
    criteria = f"identifier={SNILS_SYSTEM}|{SNILS}"
    response = post(api_client_for(other_gp), "/fhir/Patient", resource, HTTP_IF_NONE_EXIST=criteria)
    assert response.status_code == 201, response.content
    assert body(response)["id"] != str(ours.pk)
    assert Patient.objects.filter(snils=SNILS).count() == 2


@pytest.mark.parametrize(
    "identifiers, where, words",
    [
        ([{"system": SNILS_SYSTEM, "value": "112-233-445 96"}], "Patient.identifier[1].value", "checksum"),
        ([{"system": "http://fhir.ru/ig/RuSEMD/systems/snils", "value": "1122334459"}], "Patient.identifier[1]", "11"),
        ([{"system": SNILS_SYSTEM, "value": "abc"}], "Patient.identifier[1].value", "11"),
        ([{"system": OMS_SYSTEM, "value": "770000000000001"}], "Patient.identifier[1].value", "16"),
        ([{"system": "http://fhir.ru/ig/RuSEMD/systems/OMS", "value": "7700-0000-0000-000X"}], "identifier[1]", "16"),
        (
            [{"system": SNILS_SYSTEM, "value": SNILS}, {"system": SNILS_SYSTEM, "value": "12345678964"}],
            "Patient.identifier[2].value",
            "SNILS",
        ),
    ],
)
def test_a_bad_snils_or_policy_is_a_400_naming_the_identifier(gp_api, identifiers, where, words):
    resource = {**NEW_PATIENT, "identifier": [*NEW_PATIENT["identifier"], *identifiers]}
    result = outcome(post(gp_api, "/fhir/Patient", resource), 400, where)
    assert words in " ".join(issue["diagnostics"] for issue in result["issue"])
    assert not Patient.objects.exists()


def test_an_update_carries_snils_and_a_snils_another_patient_has_is_refused(gp, gp_api):
    patient = patient_of(gp, family_name="Иванова", snils=SNILS, oms_policy=POLICY)
    patient_of(gp, snils="12345678964")
    resource = body(gp_api.get(f"/fhir/Patient/{patient.pk}"))

    taken = [{"system": SNILS_SYSTEM, "value": "123-456-789-64"}]
    response = put(gp_api, f"/fhir/Patient/{patient.pk}", {**resource, "identifier": taken}, HTTP_IF_MATCH='W/"1"')
    outcome(response, 400, "Patient.identifier[0]")

    # Read, changed and written back: the SNILS and the policy travel with it and stay.
    resource["name"][0]["family"] = "Смирнова"
    response = put(gp_api, f"/fhir/Patient/{patient.pk}", resource, HTTP_IF_MATCH='W/"1"')
    assert response.status_code == 200, response.content
    patient.refresh_from_db()
    assert (patient.family_name, patient.snils, patient.oms_policy) == ("Смирнова", SNILS, POLICY)

    # A new SNILS is stored; one left out is kept (the EHR may not know it).
    fresh = [{"system": SNILS_SYSTEM, "value": "200-300-400 48"}]
    response = put(gp_api, f"/fhir/Patient/{patient.pk}", {**resource, "identifier": fresh}, HTTP_IF_MATCH='W/"2"')
    assert response.status_code == 200, response.content
    patient.refresh_from_db()
    assert (patient.snils, patient.oms_policy) == ("20030040048", POLICY)


def test_the_capability_statement_documents_the_identifier_systems(anonymous, db):
    statement = body(anonymous.get("/fhir/metadata"))
    patient = next(entry for entry in statement["rest"][0]["resource"] if entry["type"] == "Patient")
    documentation = next(p for p in patient["searchParam"] if p["name"] == "identifier")["documentation"]
    for system in (
        SNILS_SYSTEM,
        OMS_SYSTEM,
        "http://fhir.ru/ig/RuSEMD/systems/snils",
        "http://fhir.ru/ig/RuSEMD/systems/OMS",
    ):
        assert system in documentation
    assert patient["supportedProfile"] == [CORE_PATIENT]
    assert SNILS_SYSTEM in patient["documentation"] and "core-cs-semd-identifier-type" in patient["documentation"]


# -- the encounter's resources ----------------------------------------------------------------------


def test_the_encounters_resources_are_searchable_and_readable_by_the_exports_ids(
    gp_api,
    full_encounter,  # noqa: F811
    other_gp,
):
    patient_id = full_encounter.patient_id
    referral = Referral.objects.get(encounter=full_encounter)
    expected = {
        "Encounter": {str(full_encounter.pk)},
        "Condition": {f"referral-{referral.pk}"},
        "Task": {f"referral-{referral.pk}"},
    }
    seen = {}
    for kind in ("Encounter", "Observation", "ServiceRequest", "Condition", "DocumentReference", "Task"):
        found = body(gp_api.get(f"/fhir/{kind}", {"patient": patient_id}))
        Bundle.model_validate(found)
        ids = {entry["resource"]["id"] for entry in found["entry"]}
        assert found["total"] == len(ids) > 0, kind
        seen[kind] = ids
        if kind in expected:
            assert ids == expected[kind]
        for resource_id in ids:
            response = gp_api.get(f"/fhir/{kind}/{resource_id}")
            assert response.status_code == 200, (kind, resource_id)
            resource = body(response)
            assert resource["id"] == resource_id
            assert "urn:uuid" not in json.dumps(resource)  # references are relative: Patient/12
            outcome(api_client_for(other_gp).get(f"/fhir/{kind}/{resource_id}"), 404)
    assert f"referral-{referral.pk}" in seen["ServiceRequest"]
    assert {f"{full_encounter.pk}-ex-cva-tenderness"} <= seen["Observation"]
    assert seen["DocumentReference"] >= {f"referral-{referral.pk}"}
    by_encounter = body(gp_api.get("/fhir/ServiceRequest", {"encounter": f"Encounter/{full_encounter.pk}"}))
    assert {entry["resource"]["id"] for entry in by_encounter["entry"]} == seen["ServiceRequest"]
    by_id = body(gp_api.get("/fhir/Condition", {"_id": f"referral-{referral.pk}"}))
    assert by_id["total"] == 1
    assert body(api_client_for(other_gp).get("/fhir/Observation", {"patient": patient_id}))["total"] == 0
    outcome(gp_api.get("/fhir/Observation"), 400)
    outcome(gp_api.get("/fhir/Observation/999999-ex-cva-tenderness"), 404)


def test_the_referral_is_a_service_request_a_task_and_a_letter_whose_pdf_is_a_binary(
    gp_api,
    full_encounter,  # noqa: F811
    other_gp,
):
    referral = Referral.objects.get(encounter=full_encounter)
    task = body(gp_api.get(f"/fhir/Task/referral-{referral.pk}"))
    Task.model_validate(task)
    assert task["status"] == "requested" and task["intent"] == "order"
    assert task["focus"] == {"reference": f"ServiceRequest/referral-{referral.pk}"}
    assert task["for"] == {"reference": f"Patient/{full_encounter.patient_id}"}

    letter = body(gp_api.get(f"/fhir/DocumentReference/referral-{referral.pk}"))
    assert {"system": "http://loinc.org", "code": "57133-1"} in [
        {key: coding[key] for key in ("system", "code")} for coding in letter["type"]["coding"]
    ]
    assert letter["docStatus"] == "final"
    url = letter["content"][0]["attachment"]["url"]
    assert url == f"http://testserver/fhir/Binary/referral-{referral.pk}"
    pdf = gp_api.get(url, HTTP_ACCEPT="application/pdf")
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"
    pdf_bytes = b"".join(pdf.streaming_content)
    assert pdf_bytes.startswith(b"%PDF")
    binary = gp_api.get(url, HTTP_ACCEPT=FHIR)
    assert binary["Content-Type"].startswith(FHIR)
    resource = body(binary)
    assert resource["resourceType"] == "Binary" and resource["contentType"] == "application/pdf"
    assert base64.b64decode(resource["data"]) == pdf_bytes
    outcome(api_client_for(other_gp).get(url, HTTP_ACCEPT="application/pdf"), 404)
    head = gp_api.head(url, HTTP_ACCEPT="application/pdf")
    assert head.status_code == 200 and head["Content-Type"] == "application/pdf"
    assert b"".join(head.streaming_content) == b""


# -- results in -------------------------------------------------------------------------------------


def hemoglobin(encounter, /, **changes):
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "718-7"}]},
        "subject": {"reference": f"Patient/{encounter.patient_id}"},
        "encounter": {"reference": f"Encounter/{encounter.pk}"},
        "effectiveDateTime": "2024-03-05",
        "valueQuantity": {"value": 9.1, "unit": "g/dL", "system": "http://unitsofmeasure.org", "code": "g/dL"},
        **changes,
    }


def test_a_loinc_lab_result_becomes_a_result_flagged_like_any_other(gp, gp_api):
    encounter = encounter_of(gp)
    response = post(gp_api, "/fhir/Observation", hemoglobin(encounter))
    assert response.status_code == 201, response.content
    observation = body(response)
    Observation.model_validate(observation)
    result = encounter.results.get()
    assert (result.code, result.value_number, str(result.performed_on)) == ("res_hemoglobin", 91.0, "2024-03-05")
    assert observation["id"] == f"result-{result.pk}"
    assert response["Location"].endswith(f"/fhir/Observation/result-{result.pk}")
    assert response["Last-Modified"]
    assert observation["valueQuantity"]["value"] == 91.0
    assert observation["interpretation"][0]["coding"][0]["code"] == "L"
    assert body(gp_api.get(f"/fhir/Observation/result-{result.pk}"))["id"] == observation["id"]


def test_a_coded_positive_answer_is_a_true_result(gp, gp_api):
    encounter = encounter_of(gp)
    resource = hemoglobin(
        encounter,
        code={"coding": [{"system": "http://loinc.org", "code": "5802-4"}]},
        valueCodeableConcept={"coding": [{"system": "http://snomed.info/sct", "code": "10828004"}]},
    )
    del resource["valueQuantity"]
    response = post(gp_api, "/fhir/Observation", resource)
    assert response.status_code == 201, response.content
    assert encounter.results.get().value_bool is True


@pytest.mark.parametrize(
    "changes, status, where",
    [
        (
            {
                "valueQuantity": {
                    "value": 9.1,
                    "unit": "mmol/L",
                    "system": "http://unitsofmeasure.org",
                    "code": "mmol/L",
                }
            },
            400,
            "Observation.valueQuantity.code",
        ),
        (
            {"valueQuantity": {"value": 900, "unit": "g/L", "system": "http://unitsofmeasure.org", "code": "g/L"}},
            400,
            "Observation.value",
        ),
        ({"code": {"coding": [{"system": "http://loinc.org", "code": "0000-0"}]}}, 400, "Observation.code"),
        ({"encounter": None}, 400, "Observation.encounter"),
        ({"status": "entered-in-error"}, 400, "Observation.status"),
        ({"note": [{"text": "bad\u0000note"}]}, 400, "Observation.note[0].text"),
        (
            {"modifierExtension": [{"url": "https://x.org/y", "valueBoolean": True}]},
            400,
            "Observation.modifierExtension",
        ),
        ({"effectiveDateTime": "2999-01-01"}, 400, "Observation.effectiveDateTime"),
        ({"encounter": {"reference": "Encounter/999999"}}, 422, "Observation.encounter"),
        ({"subject": {"reference": "Patient/999999"}}, 422, "Observation.subject"),
    ],
)
def test_an_invalid_observation_is_refused_naming_the_element(gp, gp_api, changes, status, where):
    encounter = encounter_of(gp)
    resource = {key: value for key, value in hemoglobin(encounter, **changes).items() if value is not None}
    outcome(post(gp_api, "/fhir/Observation", resource), status, where)
    assert not encounter.results.exists()


@pytest.mark.parametrize(
    "changes, where",
    [
        ({"effectiveDateTime": 20240305}, "Observation.effectiveDateTime"),
        ({"status": ["final"]}, "Observation.status"),
        ({"valueQuantity": {"value": "9.1", "unit": "g/dL"}}, "Observation.valueQuantity"),
        ({"issued": 1709625600}, "Observation.issued"),
    ],
)
def test_an_observation_with_a_value_of_the_wrong_json_type_is_a_400_naming_it(gp, gp_api, changes, where):
    encounter = encounter_of(gp)
    outcome(post(gp_api, "/fhir/Observation", hemoglobin(encounter, **changes)), 400, where)
    assert not encounter.results.exists()


def test_an_instant_is_dated_on_the_clinics_calendar(gp, gp_api):
    encounter = encounter_of(gp)  # the clinic is in Moscow (UTC+3): 22:30 UTC is 01:30 the next day there
    response = post(gp_api, "/fhir/Observation", hemoglobin(encounter, effectiveDateTime="2024-03-04T22:30:00Z"))
    assert response.status_code == 201, response.content
    assert str(encounter.results.get().performed_on) == "2024-03-05"


def test_a_result_for_another_clinics_patient_is_refused(gp, other_gp):
    encounter = encounter_of(other_gp)
    outcome(post(api_client_for(gp), "/fhir/Observation", hemoglobin(encounter)), 422, "Observation.subject")
    assert not encounter.results.exists()


# -- the specialist's outcome -----------------------------------------------------------------------


def test_the_task_updated_completed_with_the_conclusion_completes_the_referral(
    gp_api,
    full_encounter,  # noqa: F811
    other_gp,
):
    referral = Referral.objects.get(encounter=full_encounter)
    path = f"/fhir/Task/referral-{referral.pk}"
    task = body(gp_api.get(path))
    done = {
        **task,
        "status": "completed",
        "output": [{"type": {"text": "Specialist's conclusion"}, "valueString": "Chronic pyelonephritis."}],
    }

    outcome(put(gp_api, path, done), 428)
    outcome(put(gp_api, path, done, HTTP_IF_MATCH='W/"5"'), 412)
    outcome(put(api_client_for(other_gp), path, done, HTTP_IF_MATCH='W/"1"'), 404)
    outcome(put(gp_api, path, {**done, "output": []}, HTTP_IF_MATCH='W/"1"'), 400, "Task.output")

    response = put(gp_api, path, done, HTTP_IF_MATCH='W/"1"')
    assert response.status_code == 200, response.content
    assert response["ETag"] == 'W/"2"' and response["Last-Modified"]
    updated = body(response)
    assert gp_api.get(f"{path}/_history/2").status_code == 200
    outcome(gp_api.get(f"{path}/_history/1"), 410)
    assert updated["status"] == "completed" and updated["output"][0]["valueString"] == "Chronic pyelonephritis."
    referral.refresh_from_db()
    assert (referral.status, referral.conclusion) == ("completed", "Chronic pyelonephritis.")
    assert body(gp_api.get(f"/fhir/ServiceRequest/referral-{referral.pk}"))["status"] == "completed"

    # Impossible transitions are a conflict.
    outcome(
        put(gp_api, path, {**updated, "status": "cancelled", "statusReason": {"text": "x"}}, HTTP_IF_MATCH='W/"2"'),
        409,
        "Task.status",
    )


def test_the_task_follows_booking_and_the_patients_refusal(gp_api, full_encounter):  # noqa: F811
    referral = Referral.objects.get(encounter=full_encounter)
    path = f"/fhir/Task/referral-{referral.pk}"
    task = body(gp_api.get(path))
    booked = {**task, "status": "accepted", "restriction": {"period": {"start": "2030-01-10T10:00:00+03:00"}}}
    response = put(gp_api, path, booked, HTTP_IF_MATCH='W/"1"')
    assert response.status_code == 200, response.content
    assert body(response)["status"] == "accepted"
    assert body(response)["restriction"]["period"]["start"].startswith("2030-01-10")
    declined = {**body(response), "status": "rejected", "statusReason": {"text": "Patient declined"}}
    response = put(gp_api, path, declined, HTTP_IF_MATCH='W/"2"')
    assert response.status_code == 200, response.content
    referral.refresh_from_db()
    assert referral.status == "declined_by_patient" and body(response)["status"] == "rejected"


def test_a_draft_letter_is_preliminary_and_has_no_task_yet(gp, gp_api):
    from referrals import services as referral_services
    from tests.record_factories import actor_for, workup_for
    from workups.models import Decision
    from workups.services import recommendation_decide

    encounter = encounter_of(gp)
    workup = workup_for(gp, encounter)
    recommendation = workup.referrals.first()
    recommendation_decide(actor=actor_for(gp), recommendation=recommendation, decision=Decision.ACCEPTED)
    referral = referral_services.referral_create(
        actor=actor_for(gp), encounter=encounter, recommendation=recommendation
    )
    referral_services.document_render(kind="referral", pk=referral.pk, claimant="test:draft:fhir")

    letter = body(gp_api.get(f"/fhir/DocumentReference/referral-{referral.pk}"))
    assert letter["docStatus"] == "preliminary"
    outcome(gp_api.get(f"/fhir/Task/referral-{referral.pk}"), 404)
    outcome(
        put(
            gp_api,
            f"/fhir/Task/referral-{referral.pk}",
            {"resourceType": "Task", "id": f"referral-{referral.pk}", "status": "completed", "intent": "order"},
            HTTP_IF_MATCH='W/"1"',
        ),
        404,
    )
    assert body(gp_api.get("/fhir/Task", {"encounter": encounter.pk}))["total"] == 0
