"""Patient data never crosses clinics: another clinic's record is a 404 exactly like a missing one,
the body says nothing about it, and nothing is changed; without credentials everything is a 401."""

import datetime
import json

import pytest

from clinic.models import Encounter, Patient
from tests.record_factories import (
    api_client_for,
    encounter_body,
    encounter_of,
    patient_of,
    screened,
    workup_for,
)
from workups.models import Workup, WorkupItem, WorkupReferral

MISSING = 987_654_321


@pytest.fixture
def theirs(other_gp):
    """The other clinic's record: a patient, an encounter with a workup, an item and a referral."""
    patient = patient_of(
        other_gp,
        given_name="Зинаида",
        family_name="Тайнова",
        identifier="SECRET-42",
        phone="+7 999 111-22-33",
        birth_date=datetime.date(1961, 7, 8),
    )
    encounter = encounter_of(
        other_gp, patient=patient, chief_complaint="Confidential complaint", notes={"history": "Confidential history"}
    )
    workup = workup_for(other_gp, encounter)
    return {
        "patient": patient,
        "encounter": encounter,
        "workup": workup,
        "item": workup.items.all()[0],
        "referral": workup.referrals.all()[0],
    }


def requests_for(ids):
    """Every patient-data request of the API, aimed at the given record ids."""
    patient, encounter, workup, item, referral = (
        ids[k] for k in ("patient", "encounter", "workup", "item", "referral")
    )
    return [
        ("get", f"/api/v1/patients/{patient}/", None),
        ("patch", f"/api/v1/patients/{patient}/", {"phone": "+7 000"}),
        ("get", f"/api/v1/patients/{patient}/encounters/", None),
        ("get", f"/api/v1/encounters/{encounter}/", None),
        ("patch", f"/api/v1/encounters/{encounter}/", {"duration_days": 99}),
        ("get", f"/api/v1/encounters/{encounter}/workup/", None),
        ("post", f"/api/v1/encounters/{encounter}/workup/", None),
        ("post", f"/api/v1/encounters/{encounter}/finalize/", None),
        ("get", f"/api/v1/workup-items/{item}/", None),
        ("patch", f"/api/v1/workup-items/{item}/", {"decision": "declined", "reason": "x"}),
        ("get", f"/api/v1/workup-referrals/{referral}/", None),
        ("patch", f"/api/v1/workup-referrals/{referral}/", {"decision": "accepted"}),
        ("post", "/api/v1/encounters/", encounter_body(Patient(pk=patient))),
        ("post", "/api/v1/workup-items/", {"workup": workup, "code": "ecg"}),
        ("post", "/api/v1/workup-referrals/", {"workup": workup, "specialty": "cardiology"}),
    ]


def ids_of(record):
    return {key: value.pk for key, value in record.items()}


def state(record):
    patient = Patient.objects.get(pk=record["patient"].pk)
    encounter = Encounter.objects.get(pk=record["encounter"].pk)
    return (
        [getattr(patient, f.name) for f in Patient._meta.concrete_fields],
        [getattr(encounter, f.name) for f in Encounter._meta.concrete_fields],
        Encounter.objects.count(),
        Workup.objects.count(),
        sorted(WorkupItem.objects.values_list("id", "code", "decision", "decision_reason")),
        sorted(WorkupReferral.objects.values_list("id", "specialty", "decision", "decision_reason")),
    )


def secrets_in(record):
    patient = record["patient"]
    return [
        patient.given_name,
        patient.family_name,
        patient.identifier,
        patient.phone,
        "1961-07-08",
        "Confidential",
        "SECRET",
    ]


@pytest.mark.parametrize("index", range(15))
def test_another_clinics_record_is_a_404_that_reveals_and_changes_nothing(gp, gp_api, theirs, index):
    method, url, body = requests_for(ids_of(theirs))[index]
    before = state(theirs)

    response = getattr(gp_api, method)(url, body, format="json")

    assert response.status_code == 404, (method, url, response.content)
    assert set(response.json()) == {"detail"}
    text = response.content.decode()
    for secret in secrets_in(theirs):
        assert secret not in text
    assert state(theirs) == before


@pytest.mark.parametrize("index", range(15))
def test_another_clinics_record_answers_exactly_like_a_missing_one(gp, gp_api, theirs, index):
    method, url, body = requests_for(ids_of(theirs))[index]
    missing_method, missing_url, missing_body = requests_for(dict.fromkeys(theirs, MISSING))[index]

    theirs_response = getattr(gp_api, method)(url, body, format="json")
    missing_response = getattr(gp_api, missing_method)(missing_url, missing_body, format="json")

    assert (theirs_response.status_code, theirs_response.json()) == (
        missing_response.status_code,
        missing_response.json(),
    )


def test_another_clinics_patient_is_a_404_even_with_an_invalid_encounter_body(gp_api, theirs):
    body = encounter_body(theirs["patient"], duration_days=-1, findings={}, pregnant="maybe")

    response = gp_api.post("/api/v1/encounters/", body, format="json")

    assert response.status_code == 404
    assert set(response.json()) == {"detail"}


def test_the_owning_clinic_still_reads_its_record(other_gp, theirs):
    client = api_client_for(other_gp)

    for method, url, _body in requests_for(ids_of(theirs)):
        if method == "get":
            assert client.get(url).status_code == 200, url


@pytest.mark.parametrize("index", range(15))
def test_an_anonymous_caller_gets_a_401_and_changes_nothing(anonymous, theirs, index):
    method, url, body = requests_for(ids_of(theirs))[index]
    before = state(theirs)

    response = getattr(anonymous, method)(url, body, format="json")

    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Token")
    for secret in secrets_in(theirs):
        assert secret not in response.content.decode()
    assert state(theirs) == before


@pytest.mark.parametrize(
    "method, url, body",
    [
        ("get", "/api/v1/patients/", None),
        ("get", "/api/v1/patients/?search=тайн", None),
        (
            "post",
            "/api/v1/patients/",
            {"given_name": "A", "family_name": "B", "birth_date": "1990-01-01", "sex": "male"},
        ),
    ],
)
def test_an_anonymous_caller_can_neither_list_nor_create_patients(anonymous, theirs, method, url, body):
    response = getattr(anonymous, method)(url, body, format="json")

    assert response.status_code == 401
    assert Patient.objects.count() == 1


def test_a_made_up_token_is_a_401(anonymous, theirs):
    anonymous.credentials(HTTP_AUTHORIZATION="Token " + "0" * 40)

    assert anonymous.get(f"/api/v1/patients/{theirs['patient'].pk}/").status_code == 401
    assert anonymous.get("/api/v1/patients/").status_code == 401


def test_the_list_shows_only_the_own_clinics_patients(gp, gp_api, theirs):
    own = patient_of(gp, given_name="Зинаида", family_name="Тайнова", birth_date=datetime.date(1961, 7, 8))

    for params in ({}, {"search": "тайнова"}, {"search": "ЗИНА"}, {"birth_date": "1961-07-08"}, {"page_size": 100}):
        data = gp_api.get("/api/v1/patients/", params).json()
        assert [row["id"] for row in data["results"]] == [own.pk], params
        assert data["count"] == 1
        assert "SECRET-42" not in json.dumps(data)


def test_a_search_for_another_clinics_patient_finds_nothing(gp, gp_api, theirs):
    patient_of(gp, given_name="Anna", family_name="Petrova")

    for params in ({"search": "тайн"}, {"search": "Зинаида Тайнова"}, {"birth_date": "1961-07-08"}):
        assert gp_api.get("/api/v1/patients/", params).json() == {
            "count": 0,
            "count_is_lower_bound": False,
            "next": None,
            "previous": None,
            "results": [],
        }


def test_another_clinics_encounters_are_not_listed_under_an_own_patient(gp, gp_api, theirs):
    own = patient_of(gp)
    encounter_of(gp, patient=own)

    data = gp_api.get(f"/api/v1/patients/{own.pk}/encounters/").json()

    assert data["count"] == 1
    assert theirs["encounter"].pk not in [row["id"] for row in data["results"]]


def test_a_new_patient_joins_the_creators_clinic_whatever_the_body_says(gp, gp_api, theirs):
    response = gp_api.post(
        "/api/v1/patients/",
        {
            "given_name": "A",
            "family_name": "B",
            "birth_date": "1990-01-01",
            "sex": "male",
            "clinic": theirs["patient"].clinic_id,
        },
        format="json",
    )

    assert response.status_code == 400
    assert "clinic" in response.json()
    assert Patient.objects.filter(clinic=theirs["patient"].clinic).count() == 1


def test_an_own_encounter_cannot_be_moved_to_another_clinics_patient(gp, gp_api, theirs):
    encounter = encounter_of(gp)

    response = gp_api.patch(f"/api/v1/encounters/{encounter.pk}/", {"patient": theirs["patient"].pk}, format="json")

    assert response.status_code == 400
    assert "Тайнова" not in response.content.decode()
    encounter.refresh_from_db()
    assert encounter.patient.clinic != theirs["patient"].clinic


def test_an_own_decision_body_cannot_reach_another_clinics_workup(gp, gp_api, theirs):
    own = encounter_of(gp, findings=screened({"loc_lumbar": True}))
    workup_for(gp, own)

    for url, body in (
        ("/api/v1/workup-items/", {"workup": theirs["workup"].pk, "code": "mri_brain"}),
        ("/api/v1/workup-referrals/", {"workup": theirs["workup"].pk, "specialty": "oncology"}),
    ):
        assert gp_api.post(url, body, format="json").status_code == 404
    assert not WorkupItem.objects.filter(code="mri_brain").exists()
    assert not WorkupReferral.objects.filter(specialty="oncology").exists()
