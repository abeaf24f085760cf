"""The patient search by POST: the terms travel in a JSON body, never in a URL (so never in an access log),
with the same matching as `GET /api/v1/patients/?search=`, which stays for compatibility."""

import datetime
from urllib.parse import urlsplit

import pytest

from clinic.models import AuditEvent
from tests.record_factories import api_client_for, patient_of

URL = "/api/v1/patients/search/"
SNILS = "11223344595"  # a SNILS that passes its checksum
POLICY = "7712345678901234"
EVERYONE = ["Petrova Anna", "Иванов Пётр", "Иванова Мария"]


@pytest.fixture
def patients(gp):
    return {
        "ivanova": patient_of(
            gp,
            family_name="Иванова",
            given_name="Мария",
            birth_date=datetime.date(1961, 2, 3),
            snils=SNILS,
            oms_policy=POLICY,
        ),
        "ivanov": patient_of(gp, family_name="Иванов", given_name="Пётр", birth_date=datetime.date(1970, 1, 1)),
        "petrova": patient_of(gp, family_name="Petrova", given_name="Anna", birth_date=datetime.date(1961, 2, 3)),
    }


def names(response):
    assert response.status_code == 200, response.content
    return sorted(f"{row['family_name']} {row['given_name']}" for row in response.json()["results"])


@pytest.mark.parametrize(
    "body, expected",
    [
        ({"search": "иванов"}, ["Иванов Пётр", "Иванова Мария"]),
        ({"search": "ИВАНОВА мар"}, ["Иванова Мария"]),
        ({"search": "112-233-445 95"}, ["Иванова Мария"]),
        ({"birth_date": "1961-02-03"}, ["Petrova Anna", "Иванова Мария"]),
        ({"search": "иванов", "birth_date": "1961-02-03"}, ["Иванова Мария"]),
        ({"snils": "112-233-445 95"}, ["Иванова Мария"]),
        ({"snils": SNILS, "search": "петров"}, []),
        ({"oms_policy": POLICY}, ["Иванова Мария"]),
        ({"search": "smith"}, []),
        ({}, EVERYONE),
        ({"search": "", "birth_date": None, "snils": "", "oms_policy": ""}, EVERYONE),
    ],
)
def test_a_gp_finds_patients_by_the_terms_in_the_body(gp_api, patients, body, expected):
    assert names(gp_api.post(URL, body, format="json")) == expected


def test_the_answer_is_the_lists_page_and_the_terms_stay_out_of_the_next_link(gp, gp_api):
    for _ in range(3):
        patient_of(gp, family_name="Сидорова")

    first = gp_api.post(f"{URL}?page_size=2", {"search": "сидорова"}, format="json").json()
    second = gp_api.post(first["next"], {"search": "сидорова"}, format="json").json()

    assert set(first) == {"count", "count_is_lower_bound", "next", "previous", "results"}
    assert first["count"] == 3 and len(first["results"]) == 2
    assert urlsplit(first["next"]).query == "page=2&page_size=2"
    assert len(second["results"]) == 1 and second["next"] is None


def test_the_get_search_with_a_query_string_still_works(gp_api, patients):
    assert names(gp_api.get("/api/v1/patients/", {"search": "иванова"})) == ["Иванова Мария"]


def test_a_search_is_audited_with_the_patients_shown_and_never_the_term(gp, gp_api, patients):
    gp_api.post(URL, {"search": "иванова", "snils": SNILS}, format="json")

    event = AuditEvent.objects.filter(action="search", object_type="patient").get()
    assert event.patient_ids == [patients["ivanova"].pk] and event.channel == "api"
    assert "иванова" not in str(AuditEvent.objects.values().get(pk=event.pk)).lower()
    assert SNILS not in str(AuditEvent.objects.values().get(pk=event.pk))


def test_a_body_with_no_terms_is_audited_as_a_list(gp_api, patients):
    gp_api.post(URL, {}, format="json")

    assert AuditEvent.objects.filter(action="list", object_type="patient").count() == 1


def test_a_gp_of_another_clinic_finds_none_of_this_clinics_patients(other_gp, patients):
    client = api_client_for(other_gp)

    for body in ({"search": "иванова"}, {"snils": SNILS}, {"oms_policy": POLICY}, {"birth_date": "1961-02-03"}, {}):
        assert names(client.post(URL, body, format="json")) == []


def test_an_anonymous_caller_is_refused(anonymous, patients):
    assert anonymous.post(URL, {"search": "иванова"}, format="json").status_code == 401


@pytest.mark.parametrize(
    "body, field",
    [
        ({"search": "ива\x00нова"}, "search"),
        ({"search": ["иванова"]}, "search"),
        ({"search": "и" * 201}, "search"),
        ({"birth_date": "03.02.1961"}, "birth_date"),
        ({"birth_date": 19610203}, "birth_date"),
        ({"snils": "112-233-445 96"}, "snils"),
        ({"snils": "12345"}, "snils"),
        ({"oms_policy": "12345"}, "oms_policy"),
        ({"oms_policy": 7712345678901234}, "oms_policy"),
        ({"surname": "Иванова"}, "surname"),
        (["иванова"], "non_field_errors"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(gp_api, patients, body, field):
    response = gp_api.post(URL, body, format="json")

    assert response.status_code == 400
    assert field in response.json()


def test_a_body_that_is_not_json_is_a_400(gp_api):
    response = gp_api.generic("POST", URL, '{"search": ', content_type="application/json")

    assert response.status_code == 400


def test_reading_the_search_with_get_is_not_allowed(gp_api):
    assert gp_api.get(URL).status_code == 405


def test_the_schema_describes_the_search_body_and_its_page(anonymous, db):
    schema = anonymous.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()

    operation = schema["paths"][URL]["post"]
    components = schema["components"]["schemas"]
    request = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    page = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    assert set(components[request]["properties"]) == {"search", "birth_date", "snils", "oms_policy"}
    assert set(components[page]["properties"]) == {"count", "count_is_lower_bound", "next", "previous", "results"}
    assert components[page]["properties"]["count_is_lower_bound"]["type"] == "boolean"
    assert operation["operationId"] == "patients_search"
    listed = schema["paths"]["/api/v1/patients/"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    listed_page = components[listed["$ref"].rsplit("/", 1)[-1]]
    assert listed_page["properties"]["count_is_lower_bound"]["type"] == "boolean"
    assert "count_is_lower_bound" in listed_page["required"]


# -- the count stops at a bound (clinic.selectors.PATIENT_COUNT_LIMIT; 3 here) ---------------------------------


@pytest.fixture
def count_limit_3(monkeypatch):
    from clinic import selectors

    monkeypatch.setattr(selectors, "PATIENT_COUNT_LIMIT", 3)


def sidorovs(gp, count):
    for index in range(count):
        patient_of(gp, family_name="Сидорова", given_name=f"Анна{index}")


def test_up_to_the_bound_the_count_is_exact(gp, gp_api, count_limit_3):
    sidorovs(gp, 3)

    for response in (
        gp_api.post(URL, {"search": "сидор"}, format="json"),
        gp_api.get("/api/v1/patients/", {"search": "сидор"}),
    ):
        body = response.json()
        assert (body["count"], body["count_is_lower_bound"], len(body["results"])) == (3, False, 3)
        assert body["next"] is None


def test_past_the_bound_the_count_is_the_bound_and_says_so_and_the_pages_go_on(gp, gp_api, count_limit_3):
    sidorovs(gp, 5)

    first = gp_api.post(f"{URL}?page_size=2", {"search": "сидор"}, format="json").json()
    second = gp_api.post(first["next"], {"search": "сидор"}, format="json").json()
    third = gp_api.post(second["next"], {"search": "сидор"}, format="json").json()
    listed = gp_api.get("/api/v1/patients/", {"search": "сидор"}).json()

    assert (first["count"], first["count_is_lower_bound"]) == (3, True)
    assert [len(page["results"]) for page in (first, second, third)] == [2, 2, 1]
    assert third["next"] is None and urlsplit(third["previous"]).query == "page=2&page_size=2"
    assert urlsplit(second["previous"]).query == "page_size=2"
    names_seen = [row["given_name"] for page in (first, second, third) for row in page["results"]]
    assert sorted(names_seen) == [f"Анна{index}" for index in range(5)]
    assert (listed["count"], listed["count_is_lower_bound"], len(listed["results"])) == (3, True, 5)


@pytest.mark.parametrize("page", ["0", "two", "9"])
def test_a_page_that_is_not_there_is_a_404(gp, gp_api, page):
    sidorovs(gp, 2)

    assert gp_api.post(f"{URL}?page={page}", {"search": "сидор"}, format="json").status_code == 404
    assert gp_api.get("/api/v1/patients/", {"page": page}).status_code == 404


def test_the_web_list_says_more_than_the_bound_match_and_still_pages(gp, count_limit_3):
    from django.test import Client

    sidorovs(gp, 30)
    web = Client()
    web.force_login(gp)

    first = web.post("/", {"q": "сидор"}, HTTP_HX_REQUEST="true").content.decode()
    second = web.post("/?page=2", {"q": "сидор"}, HTTP_HX_REQUEST="true").content.decode()
    russian = web.post("/", {"q": "сидор"}, HTTP_HX_REQUEST="true", HTTP_ACCEPT_LANGUAGE="ru").content.decode()
    few = web.post("/", {"q": "сидорова анна29"}, HTTP_HX_REQUEST="true").content.decode()

    assert "More than 3 patients match: add more of the name." in first
    assert "Page 1." in first and 'hx-post="/?page=2"' in first
    assert "Page 2." in second and second.count("<tr>") == 5 + 1  # the 26th to 30th, and the header
    assert 'hx-post="/?page=3"' not in second and 'hx-post="/?page=1"' in second
    assert "Найдено более 3 пациентов: уточните ФИО." in russian
    assert "More than" not in few and "Сидорова Анна29" in few
