"""Patients over the API: create, validate, list, search, filter and edit, within the GP's clinic."""

import datetime

import pytest

from clinic.models import Patient
from tests.record_factories import (
    EncounterFactory,
    api_client_for,
    clinic_of,
    clinic_today,
    patient_of,
    screened,
)

URL = "/api/v1/patients/"


def detail(patient_id):
    return f"{URL}{patient_id}/"


def new_patient(**changes):
    data = {
        "given_name": "Anna",
        "family_name": "Smirnova",
        "birth_date": "1980-05-17",
        "sex": "female",
        "identifier": "MRN-001",
        "phone": "+7 (912) 345-67-89",
    }
    data.update(changes)
    return {key: value for key, value in data.items() if value is not ...}


# -- create --------------------------------------------------------------------------------------


def test_a_gp_creates_a_patient_of_their_clinic_and_reads_it_back(gp, gp_api):
    response = gp_api.post(URL, new_patient(), format="json")

    assert response.status_code == 201
    created = response.json()
    assert {key: created[key] for key in ("given_name", "family_name", "birth_date", "sex", "identifier", "phone")} == {
        "given_name": "Anna",
        "family_name": "Smirnova",
        "birth_date": "1980-05-17",
        "sex": "female",
        "identifier": "MRN-001",
        "phone": "+7 (912) 345-67-89",
    }
    patient = Patient.objects.get(pk=created["id"])
    assert patient.clinic == clinic_of(gp)
    assert gp_api.get(detail(created["id"])).json() == created


def test_cyrillic_names_are_stored_as_written_and_trimmed(gp_api):
    response = gp_api.post(
        URL, new_patient(given_name="  Мария ", family_name="Иванова-Семёнова", identifier=""), format="json"
    )

    assert response.status_code == 201
    assert (response.json()["given_name"], response.json()["family_name"]) == ("Мария", "Иванова-Семёнова")
    assert gp_api.get(detail(response.json()["id"])).json()["family_name"] == "Иванова-Семёнова"


def test_identifier_and_phone_are_optional(gp_api):
    response = gp_api.post(URL, new_patient(identifier=..., phone=...), format="json")

    assert response.status_code == 201
    assert (response.json()["identifier"], response.json()["phone"]) == ("", "")


def _tomorrow():
    return (clinic_today() + datetime.timedelta(days=1)).isoformat()


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"birth_date": "17.05.1980"}, "birth_date"),
        ({"birth_date": "1980/05/17"}, "birth_date"),
        ({"birth_date": "1980-02-30"}, "birth_date"),
        ({"birth_date": 19800517}, "birth_date"),
        ({"birth_date": None}, "birth_date"),
        ({"birth_date": "1890-01-01"}, "birth_date"),
        ({"sex": "other"}, "sex"),
        ({"sex": "F"}, "sex"),
        ({"sex": 1}, "sex"),
        ({"sex": None}, "sex"),
        ({"given_name": 123}, "given_name"),
        ({"given_name": ""}, "given_name"),
        ({"given_name": "   "}, "given_name"),
        ({"family_name": ["Smirnova"]}, "family_name"),
        ({"family_name": "x" * 151}, "family_name"),
        ({"family_name": "Smir\nnova"}, "family_name"),
        ({"identifier": 1001}, "identifier"),
        ({"phone": "call me"}, "phone"),
        ({"phone": 79123456789}, "phone"),
        ({"nickname": "Anya"}, "nickname"),
        ({"clinic": 1}, "clinic"),
        ({"given_name": ...}, "given_name"),
        ({"birth_date": ...}, "birth_date"),
        ({"sex": ...}, "sex"),
    ],
)
def test_an_invalid_patient_is_a_400_naming_the_field_and_nothing_is_stored(gp_api, changes, field):
    response = gp_api.post(URL, new_patient(**changes), format="json")

    assert response.status_code == 400
    assert field in response.json()
    assert not Patient.objects.exists()


def test_a_birth_date_in_the_future_is_refused(gp_api):
    response = gp_api.post(URL, new_patient(birth_date=_tomorrow()), format="json")

    assert response.status_code == 400
    assert list(response.json()) == ["birth_date"]
    assert not Patient.objects.exists()


def test_a_patient_born_today_is_accepted(gp_api):
    response = gp_api.post(URL, new_patient(birth_date=clinic_today().isoformat()), format="json")

    assert response.status_code == 201


def test_every_problem_is_named_at_once(gp_api):
    response = gp_api.post(
        URL, {"given_name": 1, "birth_date": "yesterday", "sex": "x", "shoe_size": 42}, format="json"
    )

    assert response.status_code == 400
    assert set(response.json()) >= {"given_name", "family_name", "birth_date", "sex", "shoe_size"}


def test_a_body_that_is_not_an_object_is_a_400(gp_api):
    response = gp_api.post(URL, [new_patient()], format="json")

    assert response.status_code == 400
    assert not Patient.objects.exists()


def test_an_identifier_is_unique_within_a_clinic(gp, gp_api):
    patient_of(gp, identifier="MRN-7")

    response = gp_api.post(URL, new_patient(identifier=" MRN-7 "), format="json")

    assert response.status_code == 400
    assert list(response.json()) == ["identifier"]
    assert Patient.objects.filter(identifier="MRN-7").count() == 1


def test_the_same_identifier_is_allowed_in_another_clinic(gp, gp_api, other_gp):
    assert gp_api.post(URL, new_patient(identifier="MRN-7"), format="json").status_code == 201

    response = api_client_for(other_gp).post(URL, new_patient(identifier="MRN-7"), format="json")

    assert response.status_code == 201
    assert Patient.objects.filter(identifier="MRN-7").count() == 2


def test_many_patients_may_have_no_identifier(gp_api):
    for given in ("Anna", "Olga"):
        assert gp_api.post(URL, new_patient(given_name=given, identifier=""), format="json").status_code == 201


# -- list, search and filter ---------------------------------------------------------------------


def test_the_list_is_paginated_with_count_next_previous_and_results(gp, gp_api):
    for family in ("Alekseeva", "Borisova", "Vasilieva"):
        patient_of(gp, family_name=family)

    first = gp_api.get(URL, {"page_size": 2}).json()
    second = gp_api.get(URL, {"page_size": 2, "page": 2}).json()

    assert set(first) == {"count", "count_is_lower_bound", "next", "previous", "results"}
    assert first["count"] == 3 and first["next"] and first["previous"] is None
    assert [row["family_name"] for row in first["results"]] == ["Alekseeva", "Borisova"]
    assert second["count"] == 3 and second["next"] is None and second["previous"]
    assert [row["family_name"] for row in second["results"]] == ["Vasilieva"]
    assert set(first["results"][0]) == {
        "id",
        "given_name",
        "family_name",
        "middle_name",
        "birth_date",
        "sex",
        "snils",
        "oms_policy",
        "insurer",
        "address",
        "identifier",
        "phone",
        "created_at",
        "updated_at",
    }


def test_the_default_page_holds_25_patients(gp, gp_api):
    for _ in range(26):
        patient_of(gp)

    data = gp_api.get(URL).json()

    assert data["count"] == 26 and len(data["results"]) == 25 and data["next"]


def test_an_empty_clinic_lists_no_patients(gp_api):
    assert gp_api.get(URL).json() == {
        "count": 0,
        "count_is_lower_bound": False,
        "next": None,
        "previous": None,
        "results": [],
    }


@pytest.fixture
def named_patients(gp):
    names = [
        ("Мария", "Иванова"),
        ("Пётр", "Семёнов"),
        ("Anna", "Petrova"),
        ("Jürgen", "Müller"),
        ("Karl", "Großmann"),
        ("Ivan", "Sidorov"),
    ]
    return {f"{family} {given}": patient_of(gp, given_name=given, family_name=family) for given, family in names}


def found(client, **params):
    response = client.get(URL, params)
    assert response.status_code == 200
    return sorted(f"{row['family_name']} {row['given_name']}" for row in response.json()["results"])


@pytest.mark.parametrize(
    "search, expected",
    [
        ("иван", ["Иванова Мария"]),
        ("ИВАНОВА", ["Иванова Мария"]),
        ("иВаНоВа", ["Иванова Мария"]),
        ("ванов", ["Иванова Мария"]),
        ("мария", ["Иванова Мария"]),
        ("Мария Иванова", ["Иванова Мария"]),
        ("  иванова   мар ", ["Иванова Мария"]),
        ("семен", ["Семёнов Пётр"]),
        ("СЕМЁНОВ", ["Семёнов Пётр"]),
        ("петр", ["Семёнов Пётр"]),
        ("PETR", ["Petrova Anna"]),
        ("petrova", ["Petrova Anna"]),
        ("MÜLLER", ["Müller Jürgen"]),
        ("grossmann", ["Großmann Karl"]),
        ("GROSSMANN", ["Großmann Karl"]),
        ("ivan", ["Sidorov Ivan"]),
        ("иванова пётр", []),
        ("smith", []),
        ("%", []),
        ("_", []),
    ],
)
def test_search_finds_part_of_a_name_in_any_script_and_case(gp_api, named_patients, search, expected):
    assert found(gp_api, search=search) == expected


def test_an_empty_search_lists_everyone(gp_api, named_patients):
    assert len(found(gp_api, search="")) == len(named_patients)


def test_the_birth_date_filter_keeps_patients_born_that_day(gp, gp_api):
    patient_of(gp, given_name="Olga", family_name="Orlova", birth_date=datetime.date(1975, 1, 2))
    patient_of(gp, given_name="Oleg", family_name="Orlov", birth_date=datetime.date(1975, 1, 3))
    patient_of(gp, given_name="Nina", family_name="Nikitina", birth_date=datetime.date(1975, 1, 2))

    assert found(gp_api, birth_date="1975-01-02") == ["Nikitina Nina", "Orlova Olga"]
    assert found(gp_api, birth_date="1975-01-02", search="orl") == ["Orlova Olga"]
    assert found(gp_api, birth_date="1999-12-31") == []


@pytest.mark.parametrize("value", ["02.01.1975", "1975-13-01", "yesterday"])
def test_a_malformed_birth_date_filter_is_a_400(gp_api, value):
    response = gp_api.get(URL, {"birth_date": value})

    assert response.status_code == 400
    assert "birth_date" in response.json()


def test_an_unknown_patient_is_a_404(gp_api, db):
    assert gp_api.get(detail(987654)).status_code == 404


# -- edit ----------------------------------------------------------------------------------------


def test_patch_changes_only_the_fields_given_and_renames_for_search(gp, gp_api):
    patient = patient_of(gp, given_name="Мария", family_name="Иванова", phone="", identifier="A-1")

    response = gp_api.patch(detail(patient.pk), {"family_name": "Петрова", "phone": "+7 900 000-00-00"}, format="json")

    assert response.status_code == 200
    data = response.json()
    assert (data["given_name"], data["family_name"], data["phone"], data["identifier"]) == (
        "Мария",
        "Петрова",
        "+7 900 000-00-00",
        "A-1",
    )
    assert found(gp_api, search="петров") == ["Петрова Мария"]
    assert found(gp_api, search="иванова") == []


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"birth_date": "1980-13-01"}, "birth_date"),
        ({"sex": "unknown"}, "sex"),
        ({"given_name": ""}, "given_name"),
        ({"given_name": None}, "given_name"),
        ({"phone": "+7 abc"}, "phone"),
        ({"clinic": 2}, "clinic"),
        ({"id": 5}, "id"),
    ],
)
def test_an_invalid_patch_is_a_400_and_changes_nothing(gp, gp_api, changes, field):
    patient = patient_of(gp, given_name="Anna", sex="female", birth_date=datetime.date(1980, 5, 17))

    response = gp_api.patch(detail(patient.pk), {"family_name": "Changed", **changes}, format="json")

    assert response.status_code == 400
    assert field in response.json()
    patient.refresh_from_db()
    assert (patient.family_name != "Changed", patient.given_name, patient.sex) == (True, "Anna", "female")


def test_a_patch_into_a_future_birth_date_is_refused(gp, gp_api):
    patient = patient_of(gp, birth_date=datetime.date(1980, 5, 17))

    response = gp_api.patch(detail(patient.pk), {"birth_date": _tomorrow()}, format="json")

    assert response.status_code == 400
    assert "birth_date" in response.json()
    patient.refresh_from_db()
    assert patient.birth_date == datetime.date(1980, 5, 17)


def test_a_patch_onto_another_patients_identifier_is_refused(gp, gp_api):
    patient_of(gp, identifier="MRN-1")
    patient = patient_of(gp, identifier="MRN-2")

    response = gp_api.patch(detail(patient.pk), {"identifier": "MRN-1"}, format="json")

    assert response.status_code == 400
    assert "identifier" in response.json()
    patient.refresh_from_db()
    assert patient.identifier == "MRN-2"


def test_a_patient_recorded_as_pregnant_cannot_become_male(gp, gp_api):
    patient = patient_of(gp, sex="female")
    EncounterFactory(patient=patient, clinician=gp, pregnant=True)

    response = gp_api.patch(detail(patient.pk), {"sex": "male"}, format="json")

    assert response.status_code == 400
    assert "sex" in response.json()
    patient.refresh_from_db()
    assert patient.sex == "female"


def test_a_birth_date_after_an_existing_visit_is_refused(gp, gp_api):
    patient = patient_of(gp, birth_date=datetime.date(1980, 1, 1))
    encounter = EncounterFactory(patient=patient, clinician=gp, visit_date=datetime.date(2024, 3, 1))

    response = gp_api.patch(detail(patient.pk), {"birth_date": "2024-06-01"}, format="json")

    assert response.status_code == 400
    assert "birth_date" in response.json()
    assert gp_api.get(f"/api/v1/encounters/{encounter.pk}/").json()["age"] == 44


def test_a_patient_with_a_female_only_finding_cannot_become_male(gp, gp_api):
    patient = patient_of(gp, sex="female")
    EncounterFactory(patient=patient, clinician=gp, findings=screened({"loc_lumbar": True, "sx_missed_period": True}))

    response = gp_api.patch(detail(patient.pk), {"sex": "male"}, format="json")

    assert response.status_code == 400
    assert "sex" in response.json()


@pytest.mark.parametrize("method", ["put", "delete"])
def test_patients_cannot_be_replaced_or_deleted(gp, gp_api, method):
    patient = patient_of(gp)

    response = getattr(gp_api, method)(detail(patient.pk), new_patient(), format="json")

    assert response.status_code == 405
    assert Patient.objects.filter(pk=patient.pk).exists()
