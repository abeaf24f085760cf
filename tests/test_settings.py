"""Settings come from the environment, and a bad value stops start-up naming the variable."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def check(env_changes):
    env = {
        key: value for key, value in os.environ.items() if not key.startswith(("DJANGO_", "DATABASE_URL", "REDIS_URL"))
    }
    env.update({"DJANGO_SECRET_KEY": "x" * 50, **env_changes})
    env = {key: value for key, value in env.items() if value is not None}
    return subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True)


def test_the_embedded_default_starts_with_no_services():
    result = check({})
    assert result.returncode == 0, result.stderr


def test_a_command_starts_without_log_chatter_at_the_default_level():
    # Every manage.py command and worker starts the apps: a banner per process buries what the log is for.
    result = check({"DJANGO_LOG_LEVEL": "INFO"})
    assert result.returncode == 0, result.stderr
    assert "AXES" not in result.stderr, result.stderr


def test_the_embedded_default_passes_the_database_checks_without_a_warning(tmp_path):
    # The models' checks against SQLite itself (--database): a warning would be printed at every start.
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DJANGO_", "DATABASE_URL"))}
    env.update({"DJANGO_SECRET_KEY": "x" * 50, "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"})
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--database", "default", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    "env, named",
    [
        ({"DJANGO_DEBUG": "maybe"}, "DJANGO_DEBUG"),
        ({"DJANGO_SECRET_KEY": None}, "DJANGO_SECRET_KEY"),
        ({"DATABASE_URL": "mysql://db/x"}, "DATABASE_URL"),
        ({"DATABASE_URL": "not a url"}, "DATABASE_URL"),
        ({"REDIS_URL": "http://localhost:6379"}, "REDIS_URL"),
        ({"CELERY_TASK_TIME_LIMIT": "soon"}, "CELERY_TASK_TIME_LIMIT"),
        ({"DJANGO_LANGUAGE_CODE": "de"}, "DJANGO_LANGUAGE_CODE"),
        ({"DJANGO_TIME_ZONE": "Moscow/Nowhere"}, "DJANGO_TIME_ZONE"),
        ({"SESSION_IDLE_MINUTES": "half an hour"}, "SESSION_IDLE_MINUTES"),
        ({"SESSION_MAX_HOURS": "0"}, "SESSION_MAX_HOURS"),
        ({"DJANGO_SECURE_COOKIES": "maybe"}, "DJANGO_SECURE_COOKIES"),
        ({"EMAIL_BACKEND": "sendmail"}, "EMAIL_BACKEND"),
        ({"EMAIL_USE_SSL": "1", "EMAIL_USE_TLS": "1"}, "EMAIL_USE_SSL"),
        ({"PASSWORD_RESET_HOURS": "0"}, "PASSWORD_RESET_HOURS"),
        ({"TRUSTED_PROXY_COUNT": "-1"}, "TRUSTED_PROXY_COUNT"),
    ],
)
def test_a_bad_setting_stops_start_up_naming_it(env, named):
    result = check(env)
    assert result.returncode != 0
    assert named in result.stderr


def test_debug_runs_without_a_secret_key():
    assert check({"DJANGO_DEBUG": "1", "DJANGO_SECRET_KEY": None}).returncode == 0


def test_patient_pages_and_api_answers_are_never_cached_and_features_are_off(client, gp, gp_api):
    client.force_login(gp)

    page = client.get("/")
    api = gp_api.get("/api/v1/patients/")

    for response in (page, api):
        assert response["Cache-Control"] == "private, no-store"
        assert "camera=()" in response["Permissions-Policy"]
    assert page["Referrer-Policy"] == "same-origin" and page["X-Frame-Options"] == "DENY"


def test_a_session_lasts_a_working_day_not_two_weeks(settings):
    assert settings.SESSION_IDLE_SECONDS == 30 * 60 and settings.SESSION_ABSOLUTE_SECONDS == 12 * 3600
    assert settings.SESSION_COOKIE_AGE == 12 * 3600


def test_pages_carry_a_content_security_policy_that_allows_no_inline_script(client, gp):
    client.force_login(gp)

    policy = client.get("/")["Content-Security-Policy"]

    directives = dict(part.strip().split(" ", 1) for part in policy.split(";") if part.strip())
    assert directives["script-src"] == "'self'" and directives["style-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'" and directives["object-src"] == "'none'"
    assert "unsafe-inline" not in policy


def policy_of(response) -> dict[str, str]:
    return dict(part.strip().split(" ", 1) for part in response["Content-Security-Policy"].split(";") if part.strip())


def test_the_admin_and_the_api_docs_carry_the_policy_too(client, gp):
    admin_login, docs = client.get("/admin/login/"), client.get("/api/docs/")
    client.force_login(gp)
    admin_page = client.get("/admin/", follow=True)

    for response in (admin_login, admin_page, docs):
        assert response.status_code == 200
        directives = policy_of(response)
        assert directives["script-src"] == "'self'" and directives["frame-ancestors"] == "'none'"
        assert "unsafe-inline" not in response["Content-Security-Policy"]
    assert policy_of(admin_login)["style-src"] == "'self'"
    # The docs page's own <style> block, by its hash, and nothing else inline.
    style = policy_of(docs)["style-src"].split()
    assert style[0] == "'self'" and len(style) == 2 and style[1].startswith("'sha256-")
    # Swagger UI's start-up script is a file of the app's, not inline.
    assert 'src="/api/docs/?script="' in docs.content.decode() and "<script>" not in docs.content.decode()
    script = client.get("/api/docs/?script=")
    assert script["Content-Type"].startswith("application/javascript") and "SwaggerUIBundle(" in script.content.decode()


def test_the_embedded_database_makes_concurrent_writers_wait_rather_than_fail(tmp_path):
    # Side-by-side writes (gunicorn's workers, an EHR's parallel requests) answered 500 "database is locked" on
    # SQLite: a transaction that read first and then wrote could not wait for the lock. Each transaction now
    # takes it at BEGIN, with a busy timeout, in WAL mode; this reads that back from a real connection.
    script = (
        "import django; django.setup()\n"
        "from django.db import connection, transaction\n"
        "with transaction.atomic():\n"
        "    cursor = connection.cursor()\n"
        "    cursor.execute('PRAGMA journal_mode'); mode = cursor.fetchone()[0]\n"
        "    cursor.execute('PRAGMA busy_timeout'); timeout = cursor.fetchone()[0]\n"
        "print(mode, timeout, connection.settings_dict['OPTIONS']['transaction_mode'])\n"
    )
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DJANGO_", "DATABASE_URL"))}
    env.update(
        {
            "DJANGO_SECRET_KEY": "x" * 50,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        }
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["wal", "20000", "IMMEDIATE"]
