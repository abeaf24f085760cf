"""A search word of three letters or more that starts the name comes first: a GP types the family name, so
"ива" lists Иванов, Иванова, Ивашкин (in name order) before the names holding "ива" only inside (Петров Иван,
Сивак; in name order too). The pages (web, API, FHIR) read the first part as a range of the name index and the
second only when a page reaches it, so paging across the two never repeats or skips a patient."""

import datetime
import json
import re

from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from clinic import selectors
from clinic.models import Patient
from clinic.text import SUBSTRING_MIN, search_key
from tests.record_factories import actor_for, api_client_for, patient_of

STARTING = ["Ивашкин Пётр", "Иванова Анна", "Иванов Олег", "Ивакин Ян"]
INSIDE = ["Сивак Ольга", "Петров Иван", "Егорова Анна Ивановна", "Диванова Мария"]


def register(user, names):
    """Patients named "Family Given [Middle]", with name_search as clinic.services keeps it."""
    made = []
    for name in names:
        family, given, *middle = name.split()
        made.append(
            patient_of(
                user,
                family_name=family,
                given_name=given,
                middle_name=" ".join(middle),
                name_search=search_key(name),
            )
        )
    return made


def expected_order(patients, search):
    """What the search lists, worked out here from its rules: each word matched (a long one anywhere, a short
    first one at the start, a short later one at the start of a later part), the names starting with a long
    first word first, then name order in bytes, then id."""
    words = search_key(search).split()

    def matches(name):
        return all(
            word in name
            if len(word) >= SUBSTRING_MIN
            else name.startswith(word)
            if position == 0
            else f" {word}" in name
            for position, word in enumerate(words)
        )

    def key(patient):
        ranked = len(words[0]) >= SUBSTRING_MIN and not patient.name_search.startswith(words[0])
        return ranked, patient.name_search.encode(), patient.pk

    return [patient.pk for patient in sorted((p for p in patients if matches(p.name_search)), key=key)]


def web_ids(content: str) -> list[int]:
    return [int(pk) for pk in re.findall(r'href="/patients/(\d+)/"', content)]


def test_family_names_starting_with_the_word_come_before_names_holding_it_inside_each_in_name_order(gp):
    register(gp, STARTING + INSIDE + ["Смирнов Олег"])

    found = [str(patient) for patient in selectors.patient_queryset(actor=actor_for(gp), search="Ива")]

    assert found == [
        "Ивакин Ян",
        "Иванов Олег",
        "Иванова Анна",
        "Ивашкин Пётр",
        "Диванова Мария",
        "Егорова Анна Ивановна",
        "Петров Иван",
        "Сивак Ольга",
    ]


def test_the_web_list_and_both_api_searches_list_the_family_names_starting_with_the_word_first(gp):
    patients = register(gp, STARTING + INSIDE)
    expected = expected_order(patients, "ива")
    web = Client()
    web.force_login(gp)
    api = api_client_for(gp)

    page = web.post("/", {"q": "ИВА"}, HTTP_HX_REQUEST="true").content.decode()
    listed = api.get("/api/v1/patients/", {"search": "ива"}).json()
    searched = api.post("/api/v1/patients/search/", {"search": "Ива"}, format="json").json()

    assert web_ids(page) == expected
    assert [row["id"] for row in listed["results"]] == expected == [row["id"] for row in searched["results"]]
    assert (listed["count"], searched["count"]) == (8, 8)


def test_a_short_first_word_keeps_name_order_whatever_the_later_words(gp):
    # "ива" starts Пиванов's family name, and Пиванов still comes in name order, after Петров.
    patients = register(gp, ["Пивоваров Иван", "Пиванов Олег", "Петров Иван", "Ивлев Иван"])

    found = [patient.pk for patient in selectors.patient_queryset(actor=actor_for(gp), search="п ива")]

    assert found == expected_order(patients, "п ива")
    assert [str(Patient.objects.get(pk=pk)) for pk in found] == ["Петров Иван", "Пиванов Олег", "Пивоваров Иван"]


def test_a_search_of_another_clinic_never_lists_these_patients(gp, other_gp):
    register(gp, STARTING + INSIDE)
    theirs = register(other_gp, ["Иванов Борис", "Сивак Борис"])
    api = api_client_for(other_gp)

    listed = api.get("/api/v1/patients/", {"search": "ива", "page_size": 1}).json()
    second = api.get(listed["next"]).json()

    assert [listed["results"][0]["id"], second["results"][0]["id"]] == [patient.pk for patient in theirs]
    assert (second["count"], second["next"]) == (2, None)


def test_the_birth_date_and_other_words_narrow_both_parts(gp):
    born = datetime.date(1975, 1, 2)
    register(gp, STARTING + INSIDE)
    patient_of(gp, family_name="Иванова", given_name="Анна", birth_date=born, name_search=search_key("Иванова Анна"))
    patient_of(gp, family_name="Сивак", given_name="Анна", birth_date=born, name_search=search_key("Сивак Анна"))

    by_date = selectors.patient_queryset(actor=actor_for(gp), search="ива", birth_date=born)
    page = selectors.patient_page(patients=by_date, number=1, size=1)
    two_words = selectors.patient_queryset(actor=actor_for(gp), search="ива анна")
    words = selectors.patient_page(patients=two_words, number=1, size=5)

    assert [str(patient) for patient in page.object_list] == ["Иванова Анна"]
    assert (page.count, page.has_next) == (2, True)
    assert [str(patient) for patient in words.object_list] == [
        "Иванова Анна",
        "Иванова Анна",
        "Егорова Анна Ивановна",
        "Сивак Анна",
    ]


# -- paging across the two parts ---------------------------------------------------------------------------


def test_the_api_pages_across_the_two_parts_without_repeating_or_skipping_anyone(gp):
    patients = register(gp, [f"Иванова Анна{n:02}" for n in range(7)] + [f"Сиваков Олег{n:02}" for n in range(6)])
    expected = expected_order(patients, "ива")
    api = api_client_for(gp)

    for size in (1, 2, 3, 5, 7, 13, 25):
        for first, read in (
            (
                api.get(f"/api/v1/patients/?search=%D0%B8%D0%B2%D0%B0&page_size={size}"),  # "ива"
                lambda url: api.get(url),  # the next link carries the search
            ),
            (
                api.post(f"/api/v1/patients/search/?page_size={size}", {"search": "ива"}, format="json"),
                lambda url: api.post(url, {"search": "ива"}, format="json"),
            ),
        ):
            pages = [first.json()]
            while pages[-1]["next"] and len(pages) <= len(expected):
                pages.append(read(pages[-1]["next"]).json())
            assert [len(page["results"]) for page in pages[:-1]] == [size] * (len(pages) - 1)
            assert {page["count"] for page in pages} == {13} and pages[-1]["next"] is None
            assert [row["id"] for page in pages for row in page["results"]] == expected, size


def test_the_web_list_pages_across_the_two_parts_without_repeating_or_skipping_anyone(gp):
    # 25 a page: the first page ends inside the names starting with the word, the second reads both parts.
    patients = register(gp, [f"Иванов Пётр{n:02}" for n in range(30)] + [f"Сивакова Анна{n:02}" for n in range(12)])
    web = Client()
    web.force_login(gp)

    first = web.post("/", {"q": "ива"}, HTTP_HX_REQUEST="true").content.decode()
    second = web.post("/?page=2", {"q": "ива"}, HTTP_HX_REQUEST="true").content.decode()

    assert web_ids(first) + web_ids(second) == expected_order(patients, "ива")
    assert "Page 1 of 2." in first and "Page 2 of 2." in second


def test_an_ehr_pages_the_fhir_patient_search_across_the_two_parts_without_repeating_or_skipping_anyone(gp):
    patients = register(gp, [f"Иванова Анна{n}" for n in range(4)] + [f"Сиваков Олег{n}" for n in range(5)])
    api = api_client_for(gp)

    pages = [
        json.loads(api.get("/fhir/Patient", {"name": "ива", "_count": 2, "_offset": offset}).content)
        for offset in range(0, 10, 2)
    ]

    assert {page["total"] for page in pages} == {9}
    found = [int(entry["resource"]["id"]) for page in pages for entry in page.get("entry", [])]
    assert found == expected_order(patients, "ива")


def test_a_page_past_the_names_starting_with_the_word_reads_the_rest_where_it_left_off(gp):
    patients = register(gp, [f"Иванов Пётр{n}" for n in range(3)] + [f"Сивакова Анна{n:02}" for n in range(10)])
    everyone = selectors.patient_queryset(actor=actor_for(gp), search="ива")

    pages = [selectors.patient_page(patients=everyone, number=number, size=4) for number in (1, 2, 3, 4)]

    assert [patient.pk for page in pages for patient in page.object_list] == expected_order(patients, "ива")
    assert [page.has_next for page in pages] == [True, True, True, False]
    assert {(page.count, page.count_is_lower_bound) for page in pages} == {(13, False)}


NAMES = st.tuples(
    st.sampled_from(["Иванов", "Иванова", "Ивашкин", "Ива", "Сивак", "Диванова", "Петров", "Smith", "Ивлев"]),
    st.sampled_from(["Иван", "Анна", "Ивета", "Олег", "Ян"]),
)
SEARCHES = st.sampled_from(["ива", "ИВА", "иван", "ван", "ив", "и", "ива ан", "иван ив", "ив ива", "сив", "ива иван"])


@hypothesis_settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(
    names=st.lists(NAMES, max_size=14),
    search=SEARCHES,
    size=st.integers(1, 6),
    limit=st.integers(1, 12),
)
def test_paging_any_register_lists_every_match_once_in_order_with_the_right_count(
    gp, other_gp, monkeypatch, names, search, size, limit
):
    Patient.objects.all().delete()
    patients = register(gp, [f"{family} {given}" for family, given in names])
    register(other_gp, [f"{family} {given}" for family, given in names[:3]])
    expected = expected_order(patients, search)
    everyone = selectors.patient_queryset(actor=actor_for(gp), search=search)

    seen, number = [], 1
    with monkeypatch.context() as patch:
        patch.setattr(selectors, "PATIENT_COUNT_LIMIT", limit)
        while number <= len(expected) + 1:
            with CaptureQueriesContext(connection) as captured:
                page = selectors.patient_page(patients=everyone, number=number, size=size)
            assert len(captured) <= 4
            assert (page.count, page.count_is_lower_bound) == (min(len(expected), limit), len(expected) > limit)
            assert page.has_next == (len(expected) > number * size)
            seen += [patient.pk for patient in page.object_list]
            if not page.has_next:
                break
            number += 1
    assert seen == expected
    assert [patient.pk for patient in everyone] == expected
    assert [patient.pk for patient in selectors.patient_rows(patients=everyone, offset=2, limit=3)] == expected[2:5]


def test_a_page_takes_as_many_queries_for_many_matches_as_for_few(gp):
    def costs():
        """The queries of pages 1 to 3 of 2 patients, for the search "ива"."""
        everyone = selectors.patient_queryset(actor=actor_for(gp), search="ива")
        result = []
        for number in range(1, 4):
            with CaptureQueriesContext(connection) as captured:
                selectors.patient_page(patients=everyone, number=number, size=2)
            result.append(len(captured))
        return result

    register(gp, ["Иванов Пётр", "Иванова Анна", "Ивашкин Олег", "Сивак Ян", "Петров Иван"])
    few = costs()
    register(gp, [f"Иванов Пётр{n:02}" for n in range(40)] + [f"Сивакова Анна{n:02}" for n in range(40)])
    many = costs()

    assert max(few + many) <= 4
    assert many[0] == few[0]


def test_a_search_that_can_match_no_one_pages_as_empty(gp):
    register(gp, STARTING + INSIDE)
    nobody = selectors.patient_queryset(actor=actor_for(gp), search="ива").none()

    with CaptureQueriesContext(connection) as captured:
        pages = [selectors.patient_page(patients=nobody, number=number, size=2) for number in (1, 3)]

    assert [(page.object_list, page.count, page.has_next) for page in pages] == [([], 0, False)] * 2
    assert len(captured) == 0
