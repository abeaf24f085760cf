"""The reads take a fixed number of queries, however many rows they show (the API, and the patient's page)."""

import datetime

from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from tests.record_factories import actor_for, encounter_of, patient_of, workup_for
from workups.services import workup_item_add, workup_referral_add

EXTRA_ITEMS = ["ecg", "xray_lumbar_spine", "mri_lumbar_spine", "ct_spine", "us_abdomen", "lab_crp_esr", "mri_brain"]
EXTRA_REFERRALS = ["orthopedics", "rheumatology", "oncology", "cardiology", "gastroenterology"]


def queries(client, url):
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, response.content
    return len(captured), response.json()


def test_the_patient_list_takes_as_many_queries_for_30_patients_as_for_2(gp, gp_api):
    for _ in range(2):
        patient_of(gp)
    queries(gp_api, "/api/v1/patients/")  # warm up (token, content types)

    small, small_data = queries(gp_api, "/api/v1/patients/")
    for _ in range(28):
        patient_of(gp)
    large, large_data = queries(gp_api, "/api/v1/patients/")

    assert (len(small_data["results"]), len(large_data["results"])) == (2, 25)
    assert large == small


def test_a_search_takes_as_many_queries_for_many_matches_as_for_few(gp, gp_api):
    patient_of(gp, family_name="Иванова")
    queries(gp_api, "/api/v1/patients/?search=иван")

    small, _ = queries(gp_api, "/api/v1/patients/?search=иван")
    for index in range(20):
        patient_of(gp, family_name=f"Иванова{index}")
    large, data = queries(gp_api, "/api/v1/patients/?search=иван")

    assert data["count"] == 21
    assert large == small


def test_the_workup_takes_as_many_queries_with_more_items_and_referrals(gp, gp_api):
    encounter = encounter_of(gp)
    workup = workup_for(gp, encounter)
    url = f"/api/v1/encounters/{encounter.pk}/workup/"
    queries(gp_api, url)

    small, small_data = queries(gp_api, url)
    actor = actor_for(gp)
    for code in EXTRA_ITEMS:
        workup_item_add(actor=actor, workup=workup, code=code)
    for specialty in EXTRA_REFERRALS:
        workup_referral_add(actor=actor, workup=workup, specialty=specialty)
    large, large_data = queries(gp_api, url)

    assert len(large_data["items"]) == len(small_data["items"]) + len(EXTRA_ITEMS)
    assert len(large_data["referrals"]) == len(small_data["referrals"]) + len(EXTRA_REFERRALS)
    assert large == small


def test_the_patients_encounters_take_as_many_queries_for_many_encounters(gp, gp_api):
    patient = patient_of(gp)
    workup_for(gp, encounter_of(gp, patient=patient, visit_date=datetime.date(2024, 1, 1)))
    url = f"/api/v1/patients/{patient.pk}/encounters/"
    queries(gp_api, url)

    small, _ = queries(gp_api, url)
    for day in range(2, 12):
        encounter = encounter_of(gp, patient=patient, visit_date=datetime.date(2024, 1, day))
        if day % 2:
            workup_for(gp, encounter)
    large, data = queries(gp_api, url)

    assert data["count"] == 11
    assert large == small


def visits(gp, patient, days, *, with_workups=False):
    for day in days:
        visit_date = datetime.date(2024, 1, 1) + datetime.timedelta(days=day)
        encounter = encounter_of(gp, patient=patient, visit_date=visit_date)
        if with_workups and day % 3 == 0:
            workup_for(gp, encounter)


def test_a_long_history_over_the_api_takes_as_many_queries_on_any_page_as_two_encounters(gp, gp_api):
    patient = patient_of(gp)
    visits(gp, patient, range(2), with_workups=True)
    url = f"/api/v1/patients/{patient.pk}/encounters/"
    queries(gp_api, url)

    small, _ = queries(gp_api, url)
    visits(gp, patient, range(2, 60), with_workups=True)
    first, first_data = queries(gp_api, url)
    last, last_data = queries(gp_api, url + "?page=3")

    assert (first_data["count"], len(first_data["results"]), len(last_data["results"])) == (60, 25, 10)
    assert first == last == small


def page_queries(client, url):
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200
    return len(captured), response.content.decode()


def test_the_patients_page_takes_as_many_queries_for_60_encounters_as_for_two(gp):
    client = Client()
    client.force_login(gp)
    patient = patient_of(gp)
    visits(gp, patient, range(2), with_workups=True)
    url = f"/patients/{patient.pk}/"
    page_queries(client, url)

    small, _ = page_queries(client, url)
    visits(gp, patient, range(2, 60), with_workups=True)
    first, first_page = page_queries(client, url)
    last, last_page = page_queries(client, url + "?page=3")

    assert first_page.count('href="/encounters/') == 25 and last_page.count('href="/encounters/') == 10
    assert first == last == small
