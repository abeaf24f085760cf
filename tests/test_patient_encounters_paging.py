"""A patient's encounters page by page, newest first, in a stable order: on the patient's page and over the API.

A patient seen for years has thousands of encounters; the page shows 25 at a time (the API 25 by default, up to
100), so neither the page nor the answer grows with the history."""

import datetime
import re

import pytest
from django.test import Client

from tests.record_factories import api_client_for, encounter_of, patient_of


@pytest.fixture
def long_history(gp):
    """A patient seen 60 times, twice a day, so visit dates tie and the id decides: the ids newest first."""
    patient = patient_of(gp)
    encounters = [
        encounter_of(gp, patient=patient, visit_date=datetime.date(2024, 1, 1) + datetime.timedelta(days=n // 2))
        for n in range(60)
    ]
    newest_first = sorted(encounters, key=lambda encounter: (encounter.visit_date, encounter.pk), reverse=True)
    return patient, [encounter.pk for encounter in newest_first]


def shown(response) -> list[int]:
    assert response.status_code == 200
    return [int(pk) for pk in re.findall(r'href="/encounters/(\d+)/"', response.content.decode())]


def page_of(client, patient, **params):
    return client.get(f"/patients/{patient.pk}/", params)


# -- the patient's page ----------------------------------------------------------------------------------


def test_a_gp_sees_a_long_history_25_encounters_a_page_newest_first_each_once(gp_web, long_history):
    patient, newest_first = long_history

    pages = [shown(page_of(gp_web, patient, page=number)) for number in (1, 2, 3)]

    assert [len(page) for page in pages] == [25, 25, 10]
    assert pages[0] + pages[1] + pages[2] == newest_first


def test_the_order_is_the_same_on_every_reading(gp_web, long_history):
    patient, _ = long_history

    assert shown(page_of(gp_web, patient, page=2)) == shown(page_of(gp_web, patient, page=2))


def test_a_page_says_where_it_is_and_links_back_and_on(gp_web, long_history):
    patient, _ = long_history

    middle = page_of(gp_web, patient, page=2).content.decode()
    first = page_of(gp_web, patient).content.decode()
    last = page_of(gp_web, patient, page=3).content.decode()

    assert "Page 2 of 3." in middle and 'href="?page=1"' in middle and 'href="?page=3"' in middle
    assert "Page 1 of 3." in first and 'href="?page=2"' in first and "?page=0" not in first
    assert "Page 3 of 3." in last and "?page=4" not in last
    assert "Encounters (60)" in first


def test_the_pager_reads_in_russian(gp_web, long_history):
    patient, _ = long_history

    page = gp_web.get(f"/patients/{patient.pk}/", {"page": 2}, HTTP_ACCEPT_LANGUAGE="ru").content.decode()

    assert "Страница 2 из 3." in page and "Следующая" in page and "Назад" in page


@pytest.mark.parametrize("number, expected_page", [("abc", 1), ("", 1), ("-1", 3), ("99", 3), ("2.5", 1)])
def test_a_page_number_that_is_not_a_page_shows_the_nearest_page_not_an_error(
    gp_web, long_history, number, expected_page
):
    patient, newest_first = long_history

    ids = shown(page_of(gp_web, patient, page=number))

    assert ids == newest_first[(expected_page - 1) * 25 : expected_page * 25]


def test_a_patient_with_few_encounters_has_no_pager(gp_web, gp):
    patient = patient_of(gp)
    encounter_of(gp, patient=patient)

    page = page_of(gp_web, patient).content.decode()

    assert "Page 1 of" not in page and "?page=" not in page
    assert len(shown(page_of(gp_web, patient))) == 1


def test_a_gp_of_another_clinic_gets_a_404_for_any_page(other_gp, long_history):
    patient, _ = long_history
    client = Client()
    client.force_login(other_gp)

    assert page_of(client, patient, page=2).status_code == 404


# -- the API ---------------------------------------------------------------------------------------------


def api_page(client, patient, **params):
    response = client.get(f"/api/v1/patients/{patient.pk}/encounters/", params)
    return response


def test_the_api_lists_a_long_history_25_a_page_newest_first_each_once(gp_api, long_history):
    patient, newest_first = long_history

    pages = [api_page(gp_api, patient, page=number).json() for number in (1, 2, 3)]

    assert [page["count"] for page in pages] == [60, 60, 60]
    assert [row["id"] for page in pages for row in page["results"]] == newest_first
    assert pages[0]["previous"] is None and pages[0]["next"].endswith("page=2")
    assert pages[2]["next"] is None and pages[2]["previous"]


def test_the_api_takes_a_page_size_up_to_100(gp_api, long_history):
    patient, newest_first = long_history

    ten = api_page(gp_api, patient, page_size=10, page=2).json()
    capped = api_page(gp_api, patient, page_size=1000).json()

    assert [row["id"] for row in ten["results"]] == newest_first[10:20]
    assert len(capped["results"]) == 60  # all of them: fewer than the cap of 100


@pytest.mark.parametrize("number", ["4", "0", "abc"])
def test_a_page_past_the_end_of_the_api_list_is_a_404_saying_so(gp_api, long_history, number):
    patient, _ = long_history

    response = api_page(gp_api, patient, page=number)

    assert response.status_code == 404
    assert "page" in response.json()["detail"].lower()


def test_a_gp_of_another_clinic_gets_a_404_from_the_api(other_gp, long_history):
    patient, _ = long_history

    assert api_page(api_client_for(other_gp), patient, page=1).status_code == 404
