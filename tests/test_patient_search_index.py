"""On PostgreSQL the patient name search is served by a trigram index, not a scan."""

import datetime

import pytest
from django.db import connection

from clinic.audit import Actor
from clinic.models import Patient
from clinic.selectors import patient_queryset
from clinic.text import search_key

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="the index is PostgreSQL's")


def test_a_clinic_sized_name_search_uses_the_trigram_index(gp):
    clinic = gp.membership.clinic
    letters = "абвгдежзиклмнопрстуфхцчшэюя"

    def name(n):  # varied names, as a real clinic's are
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
    wanted = name(1234)
    query = patient_queryset(actor=Actor(user=gp, clinic=clinic, channel="api"), search=wanted[1:7].upper())
    sql, params = query.query.sql_with_params()
    with connection.cursor() as cursor:
        # Rows inserted after the index was built wait in GIN's pending list until autovacuum merges
        # them; the planner rightly avoids an index with a long pending list, so merge it as autovacuum would.
        cursor.execute("SELECT gin_clean_pending_list('patient_name_search_trgm')")
        cursor.execute("ANALYZE clinic_patient")
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "patient_name_search_trgm" in plan, plan
    assert wanted in [patient.family_name for patient in query]
