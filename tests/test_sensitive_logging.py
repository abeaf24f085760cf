"""No patient data in the application's log or in an error report, when a request fails inside a view that
handles a patient's name, SNILS, birth date or search terms.

The failures are real: PostgreSQL refuses the name (the test changes a column's type, as a botched migration
would) or gives up waiting for a table another session holds. PostgreSQL's own message then quotes the name
('invalid input syntax for type date: "…"'), so the test sees what an unguarded log or report would show and
checks it is not shown. Each test also renders the same failure the way Django would without the project's
guards, to show the name is there to be leaked (so the absence is the guards' doing).
"""

import logging
import random
import sys

import psycopg
import pytest
from django.db import connection
from django.test import Client
from django.views.debug import ExceptionReporter, SafeExceptionReporterFilter, get_exception_reporter_class
from rest_framework.test import APIClient

from clinic.identifiers import snils_check_digits
from config.reporting import PatientDataFormatter
from tests.record_factories import api_token_for

pytestmark = pytest.mark.django_db
STARS = SafeExceptionReporterFilter.cleansed_substitute


@pytest.fixture
def patient_data():
    """A made-up patient no other test uses: a family name and a SNILS that passes its checksum."""
    first_nine = f"{random.randrange(2_000_000, 999_999_999):09d}"
    snils = f"{first_nine}{snils_check_digits(first_nine):02d}"
    return {
        "family_name": f"Утечкина{random.randrange(10**6, 10**7)}",
        "given_name": "Агафья",
        "birth_date": "1958-07-09",
        "sex": "female",
        "snils": snils,
    }


def secrets_of(patient_data) -> list[str]:
    snils = patient_data["snils"]
    return [patient_data["family_name"], snils, f"{snils[:3]}-{snils[3:6]}-{snils[6:9]} {snils[9:]}"]


@pytest.fixture
def refusing_database():
    """As after a botched migration, the family-name column holds dates: PostgreSQL refuses any name, and its
    message quotes it ('invalid input syntax for type date: "…"'). Rolled back with the test."""
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE clinic_patient ALTER COLUMN family_name TYPE date USING '2000-01-01'")


@pytest.fixture
def patients_table_held():
    """Another session holds the patients' table (as a long migration would); this one waits at most 100 ms."""
    settings = connection.settings_dict
    other = psycopg.connect(
        host=settings["HOST"] or "127.0.0.1",
        port=settings["PORT"] or 5432,
        user=settings["USER"],
        password=settings["PASSWORD"] or None,
        dbname=settings["NAME"],
    )
    other.execute("SET lock_timeout = '5s'")
    other.execute("LOCK TABLE clinic_patient IN ACCESS EXCLUSIVE MODE")
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL lock_timeout = '100ms'")
    yield
    other.rollback()
    other.close()


def failed_request(caplog, send):
    """Send a request that fails with a 500; the `django.request` log record of it."""
    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="django.request"):
        response = send()
    assert response.status_code == 500, response.content.decode()
    (record,) = [record for record in caplog.records if record.name == "django.request"]
    assert record.exc_info and record.request is not None
    return record


def configured_formatter():
    """The formatter of the console handler the settings' LOGGING installs."""
    (formatter,) = [
        handler.formatter
        for handler in logging.getLogger().handlers
        if isinstance(handler.formatter, PatientDataFormatter)
    ]
    return formatter


def report_of(record) -> str:
    """The error report Django would mail or show for the record, as text and HTML."""
    reporter = get_exception_reporter_class(record.request)(record.request, *record.exc_info, is_email=True)
    return reporter.get_traceback_text() + reporter.get_traceback_html()


def unguarded_report_of(record) -> str:
    """The same report with Django's stock reporter and filter (what the project's settings replace)."""
    record.request.exception_reporter_filter = _ActiveStockFilter()
    try:
        return ExceptionReporter(record.request, *record.exc_info, is_email=True).get_traceback_text()
    finally:
        del record.request.exception_reporter_filter


class _ActiveStockFilter(SafeExceptionReporterFilter):
    def is_active(self, request):
        return True


def assert_nothing_of(patient_data, text):
    for secret in secrets_of(patient_data):
        assert secret not in text


def test_a_patient_the_database_refuses_over_the_api_leaves_no_trace(gp, patient_data, refusing_database, caplog):
    client = APIClient(raise_request_exception=False)
    client.credentials(HTTP_AUTHORIZATION=f"Token {api_token_for(gp)}")

    record = failed_request(caplog, lambda: client.post("/api/v1/patients/", patient_data, format="json"))

    logged = configured_formatter().format(record)
    assert "Internal Server Error: /api/v1/patients/" in logged
    assert "DataError" in logged and "SQLSTATE 22007" in logged
    assert "clinic/api_views.py" in logged  # the traceback is there, down to the view
    assert_nothing_of(patient_data, logged)
    report = report_of(record)
    assert "DataError" in report and "SQLSTATE 22007" in report
    assert "PatientListCreateView" in report and STARS in report
    assert_nothing_of(patient_data, report)
    # Unguarded, both would show the patient: the standard formatter, and the stock report.
    assert patient_data["family_name"] in logging.Formatter().format(record)
    assert patient_data["family_name"] in unguarded_report_of(record)


def test_a_patient_the_database_refuses_from_the_web_form_leaves_no_trace_of_them(
    gp, patient_data, refusing_database, caplog
):
    client = Client(raise_request_exception=False)
    client.force_login(gp)

    record = failed_request(caplog, lambda: client.post("/patients/new/", patient_data))

    assert_nothing_of(patient_data, configured_formatter().format(record))
    report = report_of(record)
    assert "patient_create" in report
    for field in ("family_name", "given_name", "snils", "birth_date"):
        assert field in report  # the POST section names the fields, with stars for their values
    assert_nothing_of(patient_data, report)
    assert patient_data["birth_date"] not in report
    assert patient_data["family_name"] in unguarded_report_of(record)


def test_a_search_that_fails_leaves_its_terms_out_of_the_log_and_the_report(
    gp, patient_data, patients_table_held, caplog
):
    client = APIClient(raise_request_exception=False)
    client.credentials(HTTP_AUTHORIZATION=f"Token {api_token_for(gp)}")
    terms = {"search": patient_data["family_name"], "birth_date": patient_data["birth_date"]}

    record = failed_request(caplog, lambda: client.get("/api/v1/patients/", terms, HTTP_REFERER=f"/?q={terms}"))

    logged = configured_formatter().format(record)
    assert "OperationalError" in logged and "lock timeout" not in logged
    assert_nothing_of(patient_data, logged)
    report = report_of(record)
    assert "OperationalError" in report and "search" in report
    assert_nothing_of(patient_data, report)
    assert patient_data["birth_date"] not in report
    assert patient_data["family_name"] in unguarded_report_of(record)


# -- Celery's workers ------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_task_that_fails_naming_a_patient_leaves_the_name_out_of_the_worker_log(tmp_path, patient_data):
    from celery import Celery

    from tests.processes import RedisServer, Stack, wait_for
    from tests.test_celery_workers import database_url
    from tests.worker_failing_task import TASK

    redis = RedisServer(tmp_path)
    redis.start()
    stack = Stack(directory=tmp_path, database_url=database_url(), redis=redis, workers=0, web=False)
    try:
        # A worker as production starts it, with the test-only task module loaded besides the app's own.
        stack._spawn("worker", [*worker_command(), "--include", "tests.worker_failing_task"])
        wait_for(lambda: "ready." in stack.log("worker"), timeout=60, what="the worker")
        Celery(broker=redis.url).send_task(TASK, args=[patient_data["family_name"]])

        wait_for(lambda: "raised unexpected" in stack.log("worker"), timeout=30, what="the task's failure")
        logged = stack.log("worker")
    finally:
        stack.stop()
        redis.stop()

    (line,) = [line for line in logged.splitlines() if "raised unexpected" in line]
    assert " ERROR celery.app.trace Task tests.fails_naming_a_patient[" in line  # the settings' format
    assert line.endswith("raised unexpected: ValueError (its message is withheld, it may quote patient data)")
    assert 'raise ValueError(f"no chart for {family_name}")' in logged  # the traceback is there, down to the task
    assert "ValueError: the message is withheld" in logged
    assert patient_data["family_name"] not in logged


def worker_command():
    return [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", "prefork", "--concurrency", "1"] + [
        "--without-gossip",
        "--without-mingle",
        "--loglevel",
        "info",
    ]


def task_line(message, arguments, *, exc_info=None, level=logging.ERROR):
    record = logging.LogRecord("celery.app.trace", level, __file__, 1, message, None, exc_info)
    record.args = arguments  # as Celery logs it: one mapping for the %(name)s placeholders
    return configured_formatter().format(record)


def test_celery_task_lines_name_the_exception_type_and_never_a_return_value(patient_data):
    name = patient_data["family_name"]
    try:
        int(name)
    except ValueError as error:
        failed = task_line(
            "Task %(name)s[%(id)s] %(description)s: %(exc)s",
            {"name": "t", "id": "1", "description": "raised unexpected", "exc": repr(error)},
            exc_info=(type(error), error, error.__traceback__),
        )
    expected = task_line(
        "Task %(name)s[%(id)s] %(description)s: %(exc)s",
        {"name": "t", "id": "2", "description": "raised expected", "exc": f"KeyError('{name}')"},
        level=logging.INFO,
    )
    retried = task_line("Task %(name)s[%(id)s] retry: %(exc)s", {"name": "t", "id": "3", "exc": f"Retry: {name}"})
    succeeded = task_line(
        "Task %(name)s[%(id)s] succeeded in %(runtime)ss: %(return_value)s",
        {"name": "t", "id": "4", "runtime": 0.1, "return_value": repr({"family_name": name})},
        level=logging.INFO,
    )

    assert "Task t[1] raised unexpected: ValueError (its message is withheld" in failed
    assert "int(name)" in failed  # the traceback's code stays
    assert "Task t[2] raised expected: KeyError (its message is withheld" in expected
    assert "Task t[3] retry: an exception (its message is withheld" in retried
    assert "Task t[4] succeeded in 0.1s: (the return value is not logged)" in succeeded
    for line in (failed, expected, retried, succeeded):
        assert name not in line
