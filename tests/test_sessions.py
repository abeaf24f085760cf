"""Web sessions: a GP is signed out after 30 minutes without a request and 12 hours after logging in
however busy (both configurable), the session id changes at login, and the cookies are Secure, HttpOnly
and SameSite=Lax when debug is off. The clock is driven (django.utils.timezone.now), never slept on."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.sessions.models import Session
from django.test import Client
from rest_framework.test import APIClient

from tests.factories import PASSWORD
from tests.test_lockout import clock  # noqa: F401  (fixture)

ROOT = Path(__file__).resolve().parent.parent
LOGIN = "/accounts/login/"


@pytest.fixture
def browser(gp, clock):  # noqa: F811
    """The GP's browser, signed in at the clock's time."""
    client = Client()
    client.force_login(gp)
    return client


def signed_in(client):
    return "_auth_user_id" in client.session


def test_a_gp_idle_for_thirty_minutes_is_signed_out_and_sent_to_log_in(browser, clock):  # noqa: F811
    assert browser.get("/").status_code == 200
    # Each request starts the thirty minutes again.
    for _ in range(3):
        clock.advance(minutes=29, seconds=59)
        assert browser.get("/").status_code == 200

    clock.advance(minutes=30)
    response = browser.get("/patients/new/")

    assert response.status_code == 302
    assert response["Location"] == f"{LOGIN}?next=/patients/new/"
    assert not signed_in(browser)
    page = browser.get(response["Location"]).content.decode()
    assert "You were signed out after 30 minutes without activity" in page


def test_a_busy_gp_is_signed_out_twelve_hours_after_logging_in(browser, clock):  # noqa: F811
    for _ in range(12 * 3 - 1):
        clock.advance(minutes=20)
        assert browser.get("/").status_code == 200, clock.now

    clock.advance(minutes=19, seconds=59)
    assert browser.get("/").status_code == 200
    clock.advance(seconds=1)
    response = browser.get("/", follow=True)

    assert response.redirect_chain == [(f"{LOGIN}?next=/", 302)]
    assert not signed_in(browser)
    assert "a session lasts at most 12 hours" in response.content.decode()


def test_logging_in_again_starts_a_new_twelve_hours(gp, clock):  # noqa: F811
    browser = Client()
    assert browser.post(LOGIN, {"username": gp.username, "password": PASSWORD}).status_code == 302
    for _ in range(12 * 3):
        clock.advance(minutes=20)
        browser.get("/")
    assert not signed_in(browser)

    assert browser.post(LOGIN, {"username": gp.username, "password": PASSWORD}).status_code == 302
    clock.advance(minutes=20)
    assert browser.get("/").status_code == 200


def test_an_htmx_request_after_the_timeout_sends_the_whole_page_to_log_in(browser, clock):  # noqa: F811
    clock.advance(minutes=31)
    response = browser.get(
        "/worklist/badge/",
        HTTP_HX_REQUEST="true",
        HTTP_HX_CURRENT_URL="http://testserver/patients/7/?search=Ivanova",
    )

    assert response.status_code == 204
    # The page's path only: a query string may hold what was searched for.
    assert response["HX-Redirect"] == f"{LOGIN}?next=%2Fpatients%2F7%2F"
    assert not signed_in(browser)


def test_the_api_refuses_a_timed_out_session(browser, clock):  # noqa: F811
    api = APIClient()
    api.cookies = browser.cookies
    assert api.get("/api/v1/patients/").status_code == 200

    clock.advance(minutes=30)

    assert api.get("/api/v1/patients/").status_code in (401, 403)


def test_the_idle_timeout_is_configurable(browser, clock, settings):  # noqa: F811
    settings.SESSION_IDLE_SECONDS = 5 * 60
    clock.advance(minutes=4)
    assert browser.get("/").status_code == 200

    clock.advance(minutes=5)

    assert browser.get("/").status_code == 302
    assert not signed_in(browser)


def test_the_session_id_changes_at_login(gp, db):
    browser = Client()
    before = browser.session
    before["seen_before_login"] = True
    before.save()
    browser.cookies["sessionid"] = before.session_key

    assert browser.post(LOGIN, {"username": gp.username, "password": PASSWORD}).status_code == 302

    after = browser.cookies["sessionid"].value
    assert after != before.session_key
    assert not Session.objects.filter(session_key=before.session_key).exists()
    assert browser.session["_auth_user_id"] == str(gp.pk)


def test_the_cookies_are_secure_http_only_and_same_site_when_debug_is_off(gp, db, settings):
    # scripts/test runs with DJANGO_DEBUG=0 and no DJANGO_SECURE_COOKIES: the production defaults.
    assert not settings.DEBUG and "DJANGO_SECURE_COOKIES" not in os.environ
    browser = Client()

    form = browser.get(LOGIN)
    signed_in_response = browser.post(LOGIN, {"username": gp.username, "password": PASSWORD})

    for cookie in (form.cookies["csrftoken"], signed_in_response.cookies["sessionid"]):
        assert cookie["secure"] is True
        assert cookie["httponly"] is True
        assert cookie["samesite"] == "Lax"
    assert int(signed_in_response.cookies["sessionid"]["max-age"]) == 12 * 3600


def cookie_settings(**env_changes):
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DJANGO_", "SESSION_"))}
    env.update({"DJANGO_SECRET_KEY": "x" * 50, "DJANGO_SETTINGS_MODULE": "config.settings", **env_changes})
    code = (
        "from django.conf import settings as s; print(s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, "
        "s.SESSION_IDLE_SECONDS, s.SESSION_ABSOLUTE_SECONDS)"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_cookies_are_secure_by_default_and_only_debug_or_the_setting_turns_that_off():
    assert cookie_settings()[:2] == ["True", "True"]
    assert cookie_settings(DJANGO_DEBUG="1")[:2] == ["False", "False"]
    assert cookie_settings(DJANGO_SECURE_COOKIES="0")[:2] == ["False", "False"]


def test_the_timeouts_come_from_the_environment():
    assert cookie_settings()[2:] == ["1800", "43200"]
    assert cookie_settings(SESSION_IDLE_MINUTES="15", SESSION_MAX_HOURS="8")[2:] == ["900", "28800"]
