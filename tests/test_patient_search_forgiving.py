"""The browser's patient search forgives the wrong keyboard layout and a name typed in Latin letters: when the
search finds nobody as typed, the patients found by the other spelling are shown under a notice naming it."""

import datetime
import re

from django.db import connection
from django.test.utils import CaptureQueriesContext

from clinic.models import AuditEvent
from tests.record_factories import api_client_for, patient_of


def search(client, query, *, birth_date="", language="en", live=True, page=None):
    headers = {"HTTP_ACCEPT_LANGUAGE": language}
    if live:
        headers["HTTP_HX_REQUEST"] = "true"
    url = f"/?page={page}" if page else "/"
    response = client.post(url, {"q": query, "birth_date": birth_date}, **headers)
    assert response.status_code == 200
    return response.content.decode()


def listed(page: str) -> list[str]:
    """The names in the results table, in its order."""
    return re.findall(r'<a href="/patients/\d+/">([^<]*)</a>', page)


def notice(page: str) -> str | None:
    found = re.search(r'<p class="warning" role="status" id="respelled">([^<]*)</p>', page)
    return found and found.group(1)


def test_a_name_typed_on_the_english_layout_finds_the_russian_name(gp_web, gp):
    patient_of(gp, family_name="Иванова", given_name="Анна")
    page = search(gp_web, "Bdfyjdf")
    assert listed(page) == ["Иванова Анна"]
    assert notice(page) == (
        "Nobody matches “Bdfyjdf”. Showing results for “Иванова”: the same keys on the other keyboard layout."
    )


def test_a_russian_name_typed_in_latin_letters_finds_it(gp_web, gp):
    patient_of(gp, family_name="Иванова", given_name="Анна")
    patient_of(gp, family_name="Щербакова", given_name="Ольга")
    page = search(gp_web, "ivanova")
    assert listed(page) == ["Иванова Анна"] and "Showing results for “иванова”: the name typed in Latin" in notice(page)
    page = search(gp_web, "Shcherbakova")
    assert listed(page) == ["Щербакова Ольга"] and "Showing results for “Щербакова”" in notice(page)


def test_a_full_name_in_latin_letters_finds_the_letters_the_latin_spelling_loses(gp_web, gp):
    """Olga drops the ь of Ольга, Maria the и of Мария, Daria the ь of Дарья: the first reading (Олга, Маря) finds
    nobody, so the search goes on to the next."""
    patient_of(gp, family_name="Кузнецова", given_name="Ольга")
    patient_of(gp, family_name="Иванова", given_name="Мария")
    patient_of(gp, family_name="Петрова", given_name="Дарья")
    for typed, found in (
        ("Kuznetsova Olga", "Кузнецова Ольга"),
        ("Ivanova Maria", "Иванова Мария"),
        ("Petrova Daria", "Петрова Дарья"),
    ):
        page = search(gp_web, typed)
        assert listed(page) == [found], typed
        assert f"Showing results for “{found}”" in notice(page)


def test_a_latin_name_typed_on_the_russian_layout_finds_it(gp_web, gp):
    patient_of(gp, family_name="Smith", given_name="John")
    page = search(gp_web, "ыьшер")
    assert listed(page) == ["Smith John"] and "Showing results for “smith”: the same keys" in notice(page)


def test_a_name_found_as_typed_is_not_replaced_by_another_spelling(gp_web, gp):
    patient_of(gp, family_name="Ivanova", given_name="Anna")
    patient_of(gp, family_name="Иванова", given_name="Анна")
    page = search(gp_web, "ivanova")
    assert listed(page) == ["Ivanova Anna"] and notice(page) is None


def test_another_spelling_never_finds_a_patient_of_another_clinic(gp_web, gp, other_gp):
    patient_of(other_gp, family_name="Иванова", given_name="Чужая")
    patient_of(gp, family_name="Петрова", given_name="Анна")
    for query in ("Bdfyjdf", "ivanova"):
        page = search(gp_web, query)
        assert "Чужая" not in page and listed(page) == [] and notice(page) is None
        assert "No patient matches." in page


def test_a_search_no_spelling_finds_says_no_patient_matches(gp_web, gp):
    patient_of(gp, family_name="Петрова", given_name="Анна")
    for query in ("qwzx", "ывапр", "Кузнецова"):
        page = search(gp_web, query)
        assert listed(page) == [] and notice(page) is None and "No patient matches." in page


def test_the_notice_is_in_russian_for_a_russian_gp(gp_web, gp):
    patient_of(gp, family_name="Иванова", given_name="Анна")
    assert notice(search(gp_web, "ivanova", language="ru")) == (
        "По запросу «ivanova» пациентов не найдено. Показаны результаты для «иванова» (латиница переведена в"
        " кириллицу)."
    )
    assert notice(search(gp_web, "Bdfyjdf", language="ru")) == (
        "По запросу «Bdfyjdf» пациентов не найдено. Показаны результаты для «Иванова» (исправлена раскладка"
        " клавиатуры)."
    )


def test_the_whole_page_shows_the_notice_and_keeps_what_was_typed_in_the_box(gp_web, gp):
    patient_of(gp, family_name="Иванова", given_name="Анна")
    page = search(gp_web, "Bdfyjdf", live=False)
    assert "<html" in page and notice(page).startswith("Nobody matches “Bdfyjdf”. Showing results for “Иванова”")
    assert 'name="q" value="Bdfyjdf"' in page
    assert listed(page) == ["Иванова Анна"]


def test_the_birth_date_still_narrows_a_search_found_by_another_spelling(gp_web, gp):
    patient_of(gp, family_name="Иванова", given_name="Анна", birth_date=datetime.date(1961, 2, 3))
    patient_of(gp, family_name="Иванова", given_name="Вера", birth_date=datetime.date(1970, 1, 1))
    page = search(gp_web, "ivanova", birth_date="1970-01-01")
    assert listed(page) == ["Иванова Вера"] and "Showing results for “иванова”" in notice(page)
    page = search(gp_web, "ivanova", birth_date="1999-09-09")
    assert listed(page) == [] and notice(page) is None


def test_the_audit_trail_records_the_patients_listed_by_another_spelling_and_never_the_terms(gp_web, gp):
    anna = patient_of(gp, family_name="Иванова", given_name="Анна")
    search(gp_web, "ivanova")
    event = AuditEvent.objects.filter(action="search").latest("id")
    assert event.object_id == "name" and event.patient_ids == [anna.pk]
    assert "ivanova" not in str(vars(event)) and "иванова" not in str(vars(event))


def test_the_pages_of_a_search_found_by_another_spelling_page_on_in_it(gp_web, gp):
    for number in range(30):
        patient_of(gp, family_name="Иванова", given_name=f"Анна{number:02}")
    first, second = search(gp_web, "ivanova"), search(gp_web, "ivanova", page=2)
    assert len(listed(first)) == 25 and len(listed(second)) == 5
    assert "Showing results for “иванова”" in notice(second)
    assert 'name="q" value="ivanova"' in second  # the Back button posts what was typed again


def queries(client, query):
    with CaptureQueriesContext(connection) as captured:
        search(client, query)
    return len(captured)


def test_a_search_found_by_another_spelling_costs_the_same_queries_for_2_or_30_patients(gp_web, gp):
    for number in range(2):
        patient_of(gp, family_name="Иванова", given_name=f"Анна{number:02}")
    queries(gp_web, "ivanova")  # warm up (the session, content types)
    few = queries(gp_web, "ivanova")
    for number in range(2, 30):
        patient_of(gp, family_name="Иванова", given_name=f"Анна{number:02}")
    assert queries(gp_web, "ivanova") == few
    # Found as typed, no other spelling is tried; found by none, each is tried once.
    assert queries(gp_web, "иванова") < few
    assert queries(gp_web, "qwzx") <= few


def test_the_api_search_still_matches_exactly_what_an_ehr_sent(gp):
    patient_of(gp, family_name="Иванова", given_name="Анна")
    api = api_client_for(gp)
    for query in ("ivanova", "Bdfyjdf"):
        response = api.post("/api/v1/patients/search/", {"search": query}, format="json")
        assert response.status_code == 200 and response.json()["results"] == []
        assert api.get("/api/v1/patients/", {"search": query}).json()["results"] == []
