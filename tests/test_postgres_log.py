"""No patient data in PostgreSQL's own log: statements travel with server-side parameter binding, so when one
fails, the log's STATEMENT line shows `$1`, never a patient's name or SNILS.

The tests read the real server log of the test run (scripts/test starts PostgreSQL with `-l $TEST_RUN_DIR/pg/log`).
Each looks only at what was written after it started, and every patient it makes up carries a marker unique to the
test, so nothing else in the log can make it pass or fail.
"""

import os
import uuid
from pathlib import Path

import psycopg
import pytest
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from clinic.models import Patient
from tests.processes import wait_for
from tests.record_factories import clinic_of

pytestmark = pytest.mark.django_db

INSERT_PATIENT = (
    "INSERT INTO clinic_patient (clinic_id, family_name, given_name, middle_name, birth_date, sex, identifier, "
    "identifier_system, phone, address, snils, oms_policy, insurer, name_search, version, created_at, updated_at) "
    "VALUES (%s, %s, %s, '', %s, 'female', '', '', '', '', %s, '', '', %s, 1, %s, %s)"
)


class ServerLog:
    """The part of the PostgreSQL server log written since it was opened."""

    def __init__(self):
        run_dir = os.environ.get("TEST_RUN_DIR")
        assert run_dir, "run the tests with ./scripts/test, which starts PostgreSQL with a log file"
        self.path = Path(run_dir) / "pg" / "log"
        self.start = self.path.stat().st_size

    def text(self) -> str:
        with self.path.open("rb") as log:
            log.seek(self.start)
            return log.read().decode("utf-8", errors="replace")

    def wait_for(self, fragment: str) -> str:
        """The new part of the log once it shows `fragment` (PostgreSQL writes its log asynchronously)."""
        return wait_for(lambda: fragment in (text := self.text()) and text, timeout=10, what=f"{fragment!r} in the log")


@pytest.fixture
def server_log():
    assert connection.vendor == "postgresql"
    return ServerLog()


@pytest.fixture
def marker():
    """A made-up patient that can only have come from this test: a family name, and a SNILS."""
    token = uuid.uuid4()
    digits = f"{token.int % 10**11:011d}"
    return {
        "family_name": f"Зловредова{token.hex[:10]}",
        "given_name": "Серафима",
        "snils": digits,
        "snils_formatted": f"{digits[:3]}-{digits[3:6]}-{digits[6:9]} {digits[9:]}",
        "probe": f"pglogprobe{token.hex[:12]}",
    }


def secrets_of(marker) -> list[str]:
    return [marker["family_name"], marker["snils"], marker["snils_formatted"]]


def failing(sql, params, *, cursor_factory=None):
    """Run a statement that PostgreSQL refuses, in a savepoint so the test goes on; return its error."""
    with pytest.raises((DatabaseError, psycopg.Error)) as refused, transaction.atomic():
        if cursor_factory is None:
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
        else:
            connection.ensure_connection()
            with cursor_factory(connection.connection) as cursor:
                cursor.execute(sql, params)
    return refused.value


def patient_row(clinic_id, marker, *, snils):
    name = f"{marker['family_name']} {marker['given_name']}".casefold()
    now = timezone.now()
    return [clinic_id, marker["family_name"], marker["given_name"], "1961-02-03", snils, name, now, now]


def test_the_app_binds_parameters_on_the_server():
    assert connection.features.uses_server_side_binding


def test_failed_statements_about_a_patient_are_logged_without_their_name_or_snils(gp, server_log, marker):
    clinic_id = clinic_of(gp).pk
    # A SNILS typed with its dashes does not fit the column (value too long): the statement fails on the server.
    failing(
        f"/* {marker['probe']}-too-long */ " + INSERT_PATIENT,
        patient_row(clinic_id, marker, snils=marker["snils_formatted"]),
    )
    # A patient registered into a clinic that no longer exists (foreign key, checked at once).
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    failing(f"/* {marker['probe']}-no-clinic */ " + INSERT_PATIENT, patient_row(0, marker, snils=marker["snils"]))
    # A search by name and SNILS that PostgreSQL cancels (statement timeout), as a slow search would be.
    with connection.cursor() as cursor:
        cursor.execute("SET statement_timeout = 50")
    try:
        failing(
            f"/* {marker['probe']}-timeout */ SELECT pg_sleep(5), "
            "(SELECT count(*) FROM clinic_patient WHERE family_name = %s OR snils = %s)",
            [marker["family_name"], marker["snils"]],
        )
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SET statement_timeout = 0")

    log = server_log.wait_for(f"{marker['probe']}-timeout")

    assert "value too long for type character varying(11)" in log
    assert f"{marker['probe']}-too-long */ INSERT INTO clinic_patient" in log
    assert f"{marker['probe']}-no-clinic */ INSERT INTO clinic_patient" in log
    assert "canceling statement due to statement timeout" in log
    assert "WHERE family_name = $1 OR snils = $2)" in log
    for secret in secrets_of(marker):
        assert secret not in log


def test_the_log_would_show_the_name_if_it_were_inlined_into_the_statement(gp, server_log, marker):
    """The control: the same failing statement bound on the client (as before) writes the name into the log,
    so the absence above is the binding's doing, not a log that misses statements."""
    failing(
        f"/* {marker['probe']}-inlined */ " + INSERT_PATIENT,
        patient_row(clinic_of(gp).pk, marker, snils=marker["snils_formatted"]),
        cursor_factory=psycopg.ClientCursor,
    )

    log = server_log.wait_for(f"{marker['probe']}-inlined")

    assert marker["family_name"] in log and marker["snils_formatted"] in log


def test_hostile_requests_about_a_patient_leave_nothing_of_them_in_the_log(gp, gp_api, server_log, marker):
    body = {
        "family_name": marker["family_name"],
        "given_name": marker["given_name"],
        "birth_date": "1961-02-03",
        "sex": "female",
        "snils": marker["snils"],
    }
    hostile = [
        {**body, "family_name": marker["family_name"] * 20},  # longer than the column
        {**body, "snils": marker["snils_formatted"] + "\x00"},
        {**body, "given_name": marker["given_name"] + "\x00"},
        {**body, "birth_date": marker["family_name"]},
    ]
    for answer in [gp_api.post("/api/v1/patients/", data, format="json") for data in hostile]:
        assert answer.status_code == 400, answer.content
    assert gp_api.get("/api/v1/patients/", {"search": marker["family_name"] + "\x00"}).status_code < 500
    assert gp_api.get("/api/v1/patients/", {"search": marker["snils"]}).status_code == 200
    # Then one statement that fails on the server, to know the log has caught up with the requests.
    failing(f"/* {marker['probe']}-end */ SELECT 1 / (0 * %s)", [1])

    log = server_log.wait_for(f"{marker['probe']}-end")

    assert not Patient.objects.filter(family_name__startswith=marker["family_name"]).exists()
    for secret in secrets_of(marker):
        assert secret not in log
