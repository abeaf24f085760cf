"""A name with Russian and Latin letters mixed in one word ("Пeтрoва" typed with a Latin e and o) is refused, naming
the letters, on the registration page, over the API and on an edit: it looks right on paper but no search finds it and
it does not match the same patient typed correctly, so one person would get two charts. A name wholly in Latin letters
(a foreign citizen) and a double-barrelled name with one part in each alphabet are kept.
"""

import pytest
from django.utils import translation

from clinic.models import Patient
from clinic.spellings import foreign_letters
from tests.record_factories import clinic_of, patient_of

URL = "/api/v1/patients/"
LATIN_E_O = "П\u0065тр\u006fва"  # П, Latin e, т, р, Latin o, в, а


def new_patient(**changes):
    return {"given_name": "Анна", "family_name": "Петрова", "birth_date": "1988-01-02", "sex": "female", **changes}


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (LATIN_E_O, ("latin", "e, o")),
        ("Petr\u043eva", ("cyrillic", "о")),  # a Cyrillic о in a Latin name
        ("Петрова", ("", "")),
        ("Petrova", ("", "")),
        ("Иванова-Smith", ("", "")),
        ("Анна Maria", ("", "")),
        ("", ("", "")),
    ],
)
def test_the_letters_of_the_other_alphabet_are_found_word_by_word(name, expected):
    assert foreign_letters(name) == expected


def test_the_api_refuses_a_mixed_family_name_naming_the_latin_letters_and_stores_nothing(gp, gp_api):
    response = gp_api.post(URL, new_patient(family_name=LATIN_E_O), format="json", HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 400, response.content
    (message,) = response.json()["family_name"]
    assert "Latin: e, o" in message
    assert not Patient.objects.filter(clinic=clinic_of(gp)).exists()


@pytest.mark.parametrize("field", ["given_name", "middle_name"])
def test_the_api_refuses_a_mixed_given_or_middle_name(gp_api, field):
    response = gp_api.post(URL, new_patient(**{field: "Серг\u0065евна"}), format="json")
    assert response.status_code == 400 and set(response.json()) == {field}


@pytest.mark.parametrize("family_name", ["Petrova", "Иванова-Smith"])
def test_a_name_in_latin_letters_or_a_double_barrelled_one_is_kept(gp_api, family_name):
    response = gp_api.post(URL, new_patient(family_name=family_name), format="json")
    assert response.status_code == 201, response.content
    assert response.json()["family_name"] == family_name


def test_the_registration_page_names_the_letters_in_russian_and_keeps_what_was_typed(gp, gp_web):
    with translation.override("ru"):
        response = gp_web.post(
            "/patients/new/",
            {**new_patient(family_name=LATIN_E_O), "birth_date": "02.01.1988"},
            HTTP_ACCEPT_LANGUAGE="ru",
        )
    page = response.content.decode()
    assert response.status_code == 200
    assert "В одном слове смешаны русские и латинские буквы (латинские: e, o)" in page
    assert f'value="{LATIN_E_O}"' in page
    assert not Patient.objects.filter(clinic=clinic_of(gp)).exists()


def test_editing_a_patient_into_a_mixed_name_is_refused_and_the_record_keeps_its_name(gp, gp_api):
    patient = patient_of(gp, family_name="Петрова")
    response = gp_api.patch(f"{URL}{patient.pk}/", {"family_name": LATIN_E_O}, format="json")
    assert response.status_code == 400 and "family_name" in response.json()
    patient.refresh_from_db()
    assert patient.family_name == "Петрова"
