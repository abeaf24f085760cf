"""The Russian record: patronymic, registration address, SNILS, OMS policy and insurer on the patient;
OGRN, legal name and time zone on the clinic; likely duplicates caught before registering."""

import datetime as dt
from unittest import mock

import pytest
from django.core.exceptions import ValidationError

from clinic import services
from clinic.identifiers import format_snils, snils_check_digits, validate_ogrn, validate_oms_policy, validate_snils
from clinic.models import Clinic, Patient
from tests.record_factories import PatientFactory, actor_for, api_client_for, clinic_of, patient_of

URL = "/api/v1/patients/"


def russian_patient(**changes):
    data = {
        "family_name": "Иванова",
        "given_name": "Мария",
        "middle_name": "Петровна",
        "birth_date": "1981-03-02",
        "sex": "female",
        "snils": "112-233-445 95",
        "oms_policy": "7700 0000 0000 0001",
        "insurer": "АО «СОГАЗ-Мед»",
        "address": "г. Москва, ул. Ленина, д. 5, кв. 12",
    }
    data.update(changes)
    return data


# -- the identifiers themselves --------------------------------------------------------------------


def test_a_snils_with_the_right_control_number_is_valid_whatever_the_separators():
    for written in ("112-233-445 95", "11223344595", "112 233 445 95"):
        validate_snils(written)
    assert snils_check_digits("112233445") == 95


def test_a_snils_whose_control_number_is_off_by_one_is_refused():
    with pytest.raises(ValidationError) as refused:
        validate_snils("112-233-445 96")
    assert refused.value.code == "snils_checksum"


@pytest.mark.parametrize("written", ["112-233-445", "1122334459a", "112-233-445 955"])
def test_a_snils_that_is_not_eleven_digits_is_refused(written):
    with pytest.raises(ValidationError) as refused:
        validate_snils(written)
    assert refused.value.code == "snils_format"


@pytest.mark.parametrize("first_nine, control", [("123456789", 64), ("087654303", 0), ("112233445", 95)])
def test_control_numbers_above_101_wrap_modulo_101_and_a_remainder_of_100_or_101_is_00(first_nine, control):
    # 123456789 sums to 165 (-> 64); 087654303 sums to 202, which is 0 modulo 101 (-> 00).
    assert snils_check_digits(first_nine) == control
    validate_snils(first_nine + f"{control:02d}")


def test_a_snils_is_shown_the_way_it_is_printed():
    assert format_snils("11223344595") == "112-233-445 95"


def test_an_oms_policy_has_sixteen_digits():
    validate_oms_policy("7700000000000001")
    validate_oms_policy("7700 0000 0000 0001")
    with pytest.raises(ValidationError):
        validate_oms_policy("770000000000001")


def test_an_ogrn_is_checked_by_python_stdnum():
    validate_ogrn("1027700000019")
    with pytest.raises(ValidationError) as refused:
        validate_ogrn("1027700000018")
    assert refused.value.code == "ogrn_checksum"
    with pytest.raises(ValidationError) as refused:
        validate_ogrn("10277000000")
    assert refused.value.code == "ogrn_format"


@pytest.mark.django_db
def test_a_clinic_with_a_bad_ogrn_or_time_zone_does_not_validate():
    clinic = Clinic(name="Поликлиника", ogrn="1027700000018", time_zone="Moscow/Nowhere")
    with pytest.raises(ValidationError) as refused:
        clinic.full_clean()
    assert set(refused.value.message_dict) == {"ogrn", "time_zone"}


# -- the patient over the API ----------------------------------------------------------------------


def test_a_gp_registers_a_russian_patient_with_patronymic_snils_and_oms(gp_api):
    response = gp_api.post(URL, russian_patient(), format="json")

    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["family_name"], body["given_name"], body["middle_name"]) == ("Иванова", "Мария", "Петровна")
    # Stored as digits, whatever separators were typed.
    assert (body["snils"], body["oms_policy"]) == ("11223344595", "7700000000000001")
    assert body["insurer"] == "АО «СОГАЗ-Мед»"
    assert body["address"].startswith("г. Москва")
    assert Patient.objects.get(pk=body["id"]).full_name == "Иванова Мария Петровна"


def test_the_russian_fields_are_optional_for_an_english_patient(gp_api):
    response = gp_api.post(
        URL, {"family_name": "Smith", "given_name": "John", "birth_date": "1970-01-01", "sex": "male"}, format="json"
    )

    assert response.status_code == 201
    assert {response.json()[key] for key in ("middle_name", "snils", "oms_policy", "insurer", "address")} == {""}


def test_a_bad_snils_and_oms_policy_are_each_named(gp_api):
    response = gp_api.post(URL, russian_patient(snils="112-233-445 96", oms_policy="12345"), format="json")

    assert response.status_code == 400
    assert set(response.json()) == {"snils", "oms_policy"}
    assert not Patient.objects.exists()


def test_a_likely_duplicate_by_name_and_birth_date_is_shown_before_registering(gp, gp_api):
    existing = PatientFactory(
        clinic=clinic_of(gp),
        family_name="Иванова",
        given_name="Мария",
        birth_date="1981-03-02",
        name_search="иванова мария",
    )

    response = gp_api.post(URL, russian_patient(snils="", oms_policy=""), format="json")

    assert response.status_code == 409
    assert [row["id"] for row in response.json()["duplicates"]] == [existing.pk]
    assert Patient.objects.count() == 1


def test_a_likely_duplicate_by_snils_is_shown_even_under_another_name(gp, gp_api):
    existing = PatientFactory(clinic=clinic_of(gp), snils="11223344595")

    response = gp_api.post(URL, russian_patient(family_name="Петрова"), format="json")

    assert response.status_code == 409
    assert [row["id"] for row in response.json()["duplicates"]] == [existing.pk]


def test_the_gp_can_register_anyway_after_seeing_the_duplicate(gp, gp_api):
    PatientFactory(
        clinic=clinic_of(gp),
        family_name="Иванова",
        given_name="Мария",
        birth_date="1981-03-02",
        name_search="иванова мария",
    )

    response = gp_api.post(URL, russian_patient(snils="", oms_policy="", allow_duplicate=True), format="json")

    assert response.status_code == 201
    assert Patient.objects.count() == 2


def test_the_same_snils_twice_in_one_clinic_is_refused_even_when_allowed_as_a_duplicate(gp, gp_api):
    PatientFactory(clinic=clinic_of(gp), snils="11223344595")

    response = gp_api.post(URL, russian_patient(allow_duplicate=True), format="json")

    assert response.status_code == 400
    assert "snils" in response.json()


def test_another_clinics_patient_is_never_offered_as_a_duplicate(gp_api, other_gp):
    PatientFactory(
        clinic=clinic_of(other_gp),
        snils="11223344595",
        family_name="Иванова",
        given_name="Мария",
        birth_date="1981-03-02",
        name_search="иванова мария",
    )

    response = gp_api.post(URL, russian_patient(), format="json")

    assert response.status_code == 201


def test_a_patient_is_found_by_snils_or_oms_however_it_is_typed(gp, gp_api):
    wanted = PatientFactory(clinic=clinic_of(gp), snils="11223344595", oms_policy="7700000000000001")
    PatientFactory(clinic=clinic_of(gp), snils="")

    by_snils = gp_api.get(URL, {"search": "112-233-445 95"}).json()["results"]
    by_oms = gp_api.get(URL, {"search": "7700 0000 0000 0001"}).json()["results"]

    assert [row["id"] for row in by_snils] == [wanted.pk]
    assert [row["id"] for row in by_oms] == [wanted.pk]


def test_a_patient_is_found_by_patronymic(gp_api):
    created = gp_api.post(URL, russian_patient(), format="json").json()

    found = gp_api.get(URL, {"search": "петровна"}).json()["results"]

    assert [row["id"] for row in found] == [created["id"]]


def test_editing_a_patient_validates_the_snils_and_keeps_the_rest(gp, gp_api):
    created = gp_api.post(URL, russian_patient(), format="json").json()

    refused = gp_api.patch(f"{URL}{created['id']}/", {"snils": "112-233-445 96"}, format="json")
    changed = gp_api.patch(f"{URL}{created['id']}/", {"middle_name": "Павловна"}, format="json")

    assert refused.status_code == 400 and "snils" in refused.json()
    assert changed.status_code == 200
    assert (changed.json()["middle_name"], changed.json()["snils"]) == ("Павловна", "11223344595")


def test_another_clinics_gp_cannot_read_the_russian_fields(gp_api, other_gp):
    created = gp_api.post(URL, russian_patient(), format="json").json()

    assert api_client_for(other_gp).get(f"{URL}{created['id']}/").status_code == 404


@pytest.mark.parametrize(
    "field, value",
    [
        ("middle_name", "x" * 151),
        ("address", "x" * 301),
        ("insurer", "x" * 201),
        ("snils", 11223344595),
        ("middle_name", "Пет\x00ровна"),
        ("oms_policy", ["7700000000000001"]),
    ],
)
def test_bad_russian_fields_get_a_400_naming_them(gp_api, field, value):
    response = gp_api.post(URL, russian_patient(**{field: value}), format="json")

    assert response.status_code == 400
    assert field in response.json()


# -- the clinic's day, not the server's ------------------------------------------------------------


def test_an_encounter_made_outside_a_request_is_dated_by_the_clinics_clock(gp):
    """At 00:30 in Moscow it is still yesterday in UTC: a worker or an EHR's import that creates an encounter
    without a visit date dates it by the clinic's calendar, as the GP sees it."""
    patient = patient_of(gp)
    patient.clinic.time_zone = "Europe/Moscow"
    patient.clinic.save()
    moscow_half_past_midnight = dt.datetime(2026, 12, 1, 21, 30, tzinfo=dt.UTC)
    with mock.patch("django.utils.timezone.now", return_value=moscow_half_past_midnight):
        encounter = services.encounter_create(actor=actor_for(gp), patient=patient, data={"duration_days": 2})

    assert encounter.visit_date == dt.date(2026, 12, 2)
