"""The duration of the numbness is typed as a GP writes it: days ("10"), or a number with a unit in Russian or
English ("3 нед", "2 мес.", "1,5 года", "2 weeks"), stored as days; an unknown unit is refused beside the field,
saying how to write it, and nothing is saved.
"""

import pytest
from django.utils import translation

from clinic.models import Encounter
from tests.record_factories import patient_of, screened


def posted(gp_web, patient, duration, language="en"):
    body = {
        "visit_date": "2024-03-01",
        "duration_days": duration,
        **{f"f_{code}": "yes" if value else "no" for code, value in screened().items()},
    }
    with translation.override(language):
        return gp_web.post(f"/patients/{patient.pk}/encounters/new/", body, HTTP_ACCEPT_LANGUAGE=language)


@pytest.mark.parametrize(
    ("typed", "days"),
    [("10", 10), ("3 нед", 21), ("2 мес.", 60), ("1,5 года", 548), ("2 weeks", 14), ("1 year", 365), ("5 лет", 1825)],
)
def test_a_duration_with_a_unit_is_stored_in_days(gp_web, gp, typed, days):
    patient = patient_of(gp)
    assert posted(gp_web, patient, typed, "ru").status_code == 302
    assert Encounter.objects.get(patient=patient).duration_days == days


@pytest.mark.parametrize("language, said", [("en", "3 weeks, 2 months, 1 year"), ("ru", "3 нед, 2 мес, 1 год")])
def test_an_unknown_unit_is_refused_saying_how_to_write_it(gp_web, gp, language, said):
    patient = patient_of(gp)
    response = posted(gp_web, patient, "2 fortnights", language)
    assert response.status_code == 200 and said in response.content.decode()
    assert not Encounter.objects.filter(patient=patient).exists()


def test_the_field_says_a_unit_may_be_given(gp_web, gp):
    patient = patient_of(gp)
    with translation.override("ru"):
        page = gp_web.get(f"/patients/{patient.pk}/encounters/new/", HTTP_ACCEPT_LANGUAGE="ru").content.decode()
    assert "Дни или с единицей: 3 нед, 2 мес, 1 год." in page
