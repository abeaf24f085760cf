"""The patient search at clinic scale: what a word matches, and (on PostgreSQL) that indexes serve it.

A word of three letters or more matches anywhere in the name, through the trigram index. A word of one or two
letters (the live search sends them while the GP types) matches the start of the family name when it is the first
word, and the start of a later part of the name otherwise, through the name index in byte order; either way the
matches come in the order of that index (name, then id), except that the names starting with a long first word
come before those holding it inside (tests/test_patient_search_order.py)."""

import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from clinic.audit import Actor
from clinic.models import Encounter, Patient
from clinic.selectors import encounters_of_patient, patient_page, patient_queryset
from clinic.text import search_key
from tests.record_factories import clinic_of, encounter_of, patient_of


def actor(user):
    return Actor(user=user, clinic=clinic_of(user), channel="api")


def names(gp, search="", **kwargs):
    return [str(patient) for patient in patient_queryset(actor=actor(gp), search=search, **kwargs)]


@pytest.fixture
def clinic_list(gp):
    """Names as a clinic has them, in Cyrillic and Latin, with ё."""
    for family, given, middle in [
        ("Иванова", "Мария", "Петровна"),
        ("Сиваков", "Иван", "Ильич"),
        ("Ерёмин", "Пётр", "Семёнович"),
        ("Егорова", "Анна", "Ивановна"),
        ("Smith", "John", ""),
        ("Müller", "Jürgen", ""),
        ("Ким", "Ирина", "Олеговна"),
    ]:
        patient_of(
            gp,
            family_name=family,
            given_name=given,
            middle_name=middle,
            name_search=search_key(f"{family} {given} {middle}"),
        )


# -- what a word matches --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "search, expected",
    [
        # One or two letters: the start of the family name, in any case and with ё as е.
        ("и", ["Иванова Мария Петровна"]),
        ("И", ["Иванова Мария Петровна"]),
        ("ив", ["Иванова Мария Петровна"]),
        ("е", ["Егорова Анна Ивановна", "Ерёмин Пётр Семёнович"]),
        ("Ё", ["Егорова Анна Ивановна", "Ерёмин Пётр Семёнович"]),
        ("ер", ["Ерёмин Пётр Семёнович"]),
        ("ки", ["Ким Ирина Олеговна"]),
        ("SM", ["Smith John"]),
        ("mü", ["Müller Jürgen"]),
        ("ва", []),  # inside Иванова and Сиваков, but the start of no family name
        # Three letters or more: anywhere in the name, the family names starting with the word first.
        ("ива", ["Иванова Мария Петровна", "Егорова Анна Ивановна", "Сиваков Иван Ильич"]),
        ("ивано", ["Иванова Мария Петровна", "Егорова Анна Ивановна"]),
        ("ван", ["Егорова Анна Ивановна", "Иванова Мария Петровна", "Сиваков Иван Ильич"]),
        ("ерем", ["Ерёмин Пётр Семёнович"]),
        ("mith", ["Smith John"]),
        # A short word after the first: the start of a later part of the name.
        ("иванова м", ["Иванова Мария Петровна"]),
        ("иванова п", ["Иванова Мария Петровна"]),
        ("иванова и", []),
        ("ив ма", ["Иванова Мария Петровна"]),
        ("е а", ["Егорова Анна Ивановна"]),
        ("ки ир ол", ["Ким Ирина Олеговна"]),
        ("сиваков и", ["Сиваков Иван Ильич"]),
        # Nothing a name holds.
        ("%", []),
        ("_", []),
        ("и%", []),
    ],
)
def test_a_gp_finds_patients_by_the_words_they_type(gp, clinic_list, search, expected):
    assert names(gp, search) == expected


def test_a_single_letter_lists_the_family_names_starting_with_it_in_name_order(gp):
    for family in ("Ильина", "Иванов", "Игнатьев", "Сивак", "Яковлева"):
        patient_of(gp, family_name=family, given_name="Анна")

    assert [name.split()[0] for name in names(gp, "и")] == ["Иванов", "Игнатьев", "Ильина"]


def test_namesakes_are_listed_in_a_stable_order(gp):
    same = [patient_of(gp, family_name="Петрова", given_name="Анна") for _ in range(3)]

    found = list(patient_queryset(actor=actor(gp), search="пе"))

    assert [patient.pk for patient in found] == sorted(patient.pk for patient in same)


def test_short_words_keep_the_birth_date_and_the_clinic(gp, other_gp):
    patient_of(gp, family_name="Орлова", given_name="Ольга", birth_date=datetime.date(1975, 1, 2))
    patient_of(gp, family_name="Орлов", given_name="Олег", birth_date=datetime.date(1975, 1, 3))
    patient_of(other_gp, family_name="Орлова", given_name="Ольга", birth_date=datetime.date(1975, 1, 2))

    assert names(gp, "ор", birth_date=datetime.date(1975, 1, 2)) == ["Орлова Ольга"]
    assert names(gp, "о") == ["Орлов Олег", "Орлова Ольга"]


# -- the indexes (PostgreSQL, where the scale is) -------------------------------------------------------


def plan(queryset, *, count=False) -> str:
    """EXPLAIN of the query a paginator runs: the count, or the first page of 25."""
    with CaptureQueriesContext(connection) as captured:
        if count:
            queryset.count()
        else:
            list(queryset[:25])
    sql = captured.captured_queries[-1]["sql"]
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + sql)
        return "\n".join(row[0] for row in cursor.fetchall())


@pytest.fixture
def big_clinic(gp):
    """5,000 varied names in the GP's clinic, analysed, with the trigram index's pending list merged as autovacuum
    would (the planner rightly avoids a GIN index with a long pending list)."""
    assert connection.vendor == "postgresql", "run the tests through ./scripts/test (PostgreSQL)"
    clinic = clinic_of(gp)
    letters = "абвгдежзиклмнопрстуфхцчшэюя"

    def name(n):
        return "".join(letters[(n * 7 + k * 13 + n // (k + 1)) % len(letters)] for k in range(8)).capitalize()

    Patient.objects.bulk_create(
        Patient(
            clinic=clinic,
            family_name=name(n),
            given_name="Имя",
            birth_date=datetime.date(1970, 1, 1),
            sex="male",
            name_search=search_key(f"{name(n)} Имя"),
        )
        for n in range(5000)
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT gin_clean_pending_list('patient_name_search_trgm')")
        cursor.execute("ANALYZE clinic_patient")
        cursor.execute("ANALYZE clinic_encounter")
    return name


def test_a_word_of_three_letters_or_more_is_found_through_the_trigram_index(gp, big_clinic):
    wanted = big_clinic(1234)
    query = patient_queryset(actor=actor(gp), search=wanted[1:7].upper())

    assert "patient_name_search_trgm" in plan(query)
    assert "patient_name_search_trgm" in plan(query, count=True)
    assert wanted in [patient.family_name for patient in query]


def page_plans(queryset, *, number=1) -> list[str]:
    """EXPLAIN of each query of page `number` of 25 (clinic.selectors.patient_page)."""
    with CaptureQueriesContext(connection) as captured:
        patient_page(patients=queryset, number=number, size=25)
    plans = []
    with connection.cursor() as cursor:
        for query in captured.captured_queries:
            cursor.execute("EXPLAIN " + query["sql"])
            plans.append("\n".join(row[0] for row in cursor.fetchall()))
    return plans


def test_the_page_of_a_long_word_never_walks_the_name_index_filtering_row_by_row(gp, big_clinic):
    # Walking an index in name order and testing each name is unbounded when the matches come late in the
    # alphabet (900,000 rows at 1.1 M patients); the names holding the word inside are found through the
    # trigram index and sorted.
    plans = page_plans(patient_queryset(actor=actor(gp), search="абв"))
    inside = [plan for plan in plans if "!~~" in plan]  # NOT LIKE 'абв%': the names holding it inside

    assert inside and all("patient_name_search_trgm" in plan for plan in inside), inside
    assert not any("Index Scan using patient_clinic_name" in plan for plan in inside), inside


@pytest.mark.parametrize("number", [1, 3])
def test_the_names_starting_with_a_long_word_are_read_off_the_name_index_up_to_the_page(gp, big_clinic, number):
    for index in range(80):
        patient_of(gp, family_name=f"Ивашкин{index:02}", given_name="Пётр", name_search=f"ивашкин{index:02} петр")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE clinic_patient")

    rows, count, *_ = page_plans(patient_queryset(actor=actor(gp), search="ива"), number=number)

    assert "Index Only Scan using patient_clinic_name_key" in rows and "patient_name_search_trgm" not in rows, rows
    assert "Index Only Scan using patient_clinic_name_key" in count, count


@pytest.mark.parametrize("word", ["а", "Аб", "я"])
def test_one_or_two_letters_are_a_range_of_the_name_index_for_the_page_and_the_count(gp, big_clinic, word):
    query = patient_queryset(actor=actor(gp), search=word)

    page, count = plan(query), plan(query, count=True)

    assert "patient_clinic_name_key" in page and "Sort" not in page, page
    assert "patient_clinic_name_key" in count and "Seq Scan" not in count, count


def test_the_unsearched_list_most_recent_first_is_read_off_its_index(gp, big_clinic):
    page = plan(patient_queryset(actor=actor(gp)).order_by("-updated_at", "-id"))

    assert "patient_clinic_updated" in page and "Sort" not in page, page


def test_a_patients_encounters_are_paged_off_their_index(gp, big_clinic):
    patient = patient_of(gp)
    clinician = encounter_of(gp, patient=patient).clinician
    # A long history (with ties on the visit date) beside the short ones of other patients.
    histories = [(patient, 3000), *((patient_of(gp), 20) for _ in range(50))]
    Encounter.objects.bulk_create(
        Encounter(
            clinic=patient.clinic,
            patient=someone,
            clinician=clinician,
            visit_date=datetime.date(2010, 1, 1) + datetime.timedelta(days=day // 2),
            duration_days=3,
        )
        for someone, visits in histories
        for day in range(visits)
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE clinic_encounter")

    page = plan(encounters_of_patient(actor=actor(gp), patient=patient))

    assert "encounter_patient_recent" in page and "Sort" not in page, page
