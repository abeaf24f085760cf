"""Login lockout (django-axes, clinic.lockout): 5 failures for one username or 20 from one address within
15 minutes lock the login page and the token endpoint for 15 minutes: 429 with Retry-After, even with the
right password, audited. The clock is driven, never slept on."""

import datetime as dt
import logging
from unittest import mock

import pytest
from django.test import Client
from rest_framework.test import APIClient

from clinic.models import AuditEvent
from tests.factories import PASSWORD

TOKEN = "/api/v1/auth/token/"
LOGIN = "/accounts/login/"


@pytest.fixture
def clock():
    """django.utils.timezone.now, moved by hand: clock.advance(minutes=…)."""

    class Clock:
        now = dt.datetime(2025, 3, 3, 9, 0, tzinfo=dt.UTC)

        def advance(self, **delta):
            self.now += dt.timedelta(**delta)

    fake = Clock()
    with mock.patch("django.utils.timezone.now", side_effect=lambda: fake.now):
        yield fake


def token(client, username, password, **extra):
    return client.post(TOKEN, {"username": username, "password": password}, format="json", **extra)


def login(client, username, password, **extra):
    return client.post(LOGIN, {"username": username, "password": password}, **extra)


def assert_locked(response, *, json):
    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 15 * 60
    if json:
        assert set(response.json()) == {"detail"}
        assert "too many login attempts" in response.json()["detail"]
    else:
        assert "too many login attempts" in response.content.decode()
        assert "Traceback" not in response.content.decode()


def test_five_wrong_passwords_lock_the_token_endpoint_even_for_the_right_password(gp, clock):
    api = APIClient()
    assert [token(api, gp.username, "wrong").status_code for _ in range(4)] == [400] * 4
    assert_locked(token(api, gp.username, "wrong"), json=True)

    refused = token(api, gp.username, PASSWORD)
    assert_locked(refused, json=True)
    assert "token" not in refused.json()
    assert int(refused["Retry-After"]) == 15 * 60


def test_five_wrong_passwords_lock_the_login_page_even_for_the_right_password(gp, clock):
    browser = Client()
    assert [login(browser, gp.username, "wrong").status_code for _ in range(4)] == [200] * 4
    assert_locked(login(browser, gp.username, "wrong"), json=False)

    clock.advance(minutes=5)
    refused = login(browser, gp.username, PASSWORD)
    assert_locked(refused, json=False)
    assert int(refused["Retry-After"]) == 10 * 60
    assert "_auth_user_id" not in browser.session
    # The lock is the username's, wherever it is tried from: the token endpoint refuses it too.
    assert_locked(token(APIClient(), gp.username, PASSWORD), json=True)


def test_another_username_from_the_same_address_is_refused_only_after_twenty_failures(gp, other_gp, clock):
    api = APIClient()
    assert [token(api, f"nobody{n}", "wrong").status_code for n in range(19)] == [400] * 19
    # 19 failures from this address: the GP still gets in, and that success does not forgive the address.
    assert token(api, gp.username, PASSWORD).status_code == 200
    assert_locked(token(api, "nobody19", "wrong"), json=True)

    assert_locked(token(api, other_gp.username, PASSWORD), json=True)
    assert_locked(login(Client(), gp.username, PASSWORD), json=False)
    # The usernames themselves are not locked: from another address they get in.
    assert token(api, other_gp.username, PASSWORD, REMOTE_ADDR="10.1.2.3").status_code == 200


def test_four_failures_for_each_of_several_usernames_lock_none_of_them(gp, other_gp, clock):
    api = APIClient()
    for username in (gp.username, other_gp.username):
        assert [token(api, username, "wrong").status_code for _ in range(4)] == [400] * 4
    assert token(api, gp.username, PASSWORD).status_code == 200
    assert token(api, other_gp.username, PASSWORD).status_code == 200


def test_after_the_cool_off_the_right_password_works_again(gp, clock):
    api = APIClient()
    for _ in range(5):
        token(api, gp.username, "wrong")
    clock.advance(minutes=14, seconds=59)
    refused = token(api, gp.username, PASSWORD)
    assert_locked(refused, json=True)
    assert int(refused["Retry-After"]) == 1

    clock.advance(seconds=2)
    assert token(api, gp.username, PASSWORD).status_code == 200
    browser = Client()
    assert login(browser, gp.username, PASSWORD).status_code == 302
    assert browser.session["_auth_user_id"] == str(gp.pk)


def test_failures_older_than_fifteen_minutes_do_not_count(gp, clock):
    api = APIClient()
    for _ in range(4):
        token(api, gp.username, "wrong")
    clock.advance(minutes=16)
    assert [token(api, gp.username, "wrong").status_code for _ in range(4)] == [400] * 4
    assert token(api, gp.username, PASSWORD).status_code == 200


@pytest.mark.parametrize("endpoint", ["token", "login"])
def test_a_success_forgets_the_usernames_failures(gp, clock, endpoint):
    api, browser = APIClient(), Client()
    for _ in range(4):
        token(api, gp.username, "wrong")
    if endpoint == "token":
        assert token(api, gp.username, PASSWORD).status_code == 200
    else:
        assert login(browser, gp.username, PASSWORD).status_code == 302
    assert [token(api, gp.username, "wrong").status_code for _ in range(4)] == [400] * 4
    assert_locked(token(api, gp.username, "wrong"), json=True)


def test_each_refusal_is_audited_without_a_patient(gp, clock):
    api = APIClient()
    for _ in range(5):
        token(api, gp.username, "wrong")
    events = list(AuditEvent.objects.filter(action="lockout"))
    assert len(events) == 1
    event = events[0]
    assert (event.object_type, event.object_id, event.patient_id, event.patient_ids) == ("login", "username", None, [])
    assert (event.actor, event.actor_username, event.channel, event.ip_address) == (gp, gp.username, "api", "127.0.0.1")
    assert event.clinic_id == gp.membership.clinic_id

    login(Client(), gp.username, PASSWORD)
    latest = AuditEvent.objects.filter(action="lockout").order_by("-id")
    assert latest.count() == 2
    assert (latest[0].channel, latest[0].object_type, latest[0].actor) == ("web", "login", gp)


def test_a_made_up_username_is_not_written_into_the_audit(db, clock):
    api = APIClient()
    for _ in range(5):
        token(api, "hunter2-typed-as-a-username", "wrong")
    event = AuditEvent.objects.get(action="lockout")
    assert (event.actor, event.actor_username, event.object_type) == (None, "anonymous", "login")


def test_the_lockout_page_is_in_russian(gp, clock):
    browser = Client(HTTP_ACCEPT_LANGUAGE="ru")
    for _ in range(5):
        login(browser, gp.username, "wrong")
    response = login(browser, gp.username, PASSWORD)
    assert response.status_code == 429
    page = response.content.decode()
    assert '<html lang="ru">' in page
    assert "Учетная запись заблокирована: слишком много попыток входа" in page
    assert "Вход" in page
    assert "Traceback" not in page


def test_the_token_endpoint_answers_the_lockout_in_the_callers_language(gp, clock):
    api = APIClient(HTTP_ACCEPT_LANGUAGE="ru")
    for _ in range(5):
        token(api, gp.username, "wrong")
    response = token(api, gp.username, PASSWORD)
    assert response.status_code == 429
    assert response.json()["detail"].startswith("Учетная запись заблокирована")


def test_neither_the_username_nor_the_password_reaches_the_log(gp, clock, caplog):
    caplog.set_level(logging.DEBUG)
    api = APIClient()
    for _ in range(6):
        token(api, gp.username, "s3cret-guess")
    login(Client(), gp.username, PASSWORD)
    assert caplog.records
    assert gp.username not in caplog.text
    assert "s3cret-guess" not in caplog.text
    assert PASSWORD not in caplog.text


# -- behind a reverse proxy (TRUSTED_PROXY_COUNT) ------------------------------------------------------


def failures_from(api, count, *, forwarded, username="nobody{n}", proxy="127.0.0.1"):
    """`count` failed token requests arriving from the proxy at `proxy`, with X-Forwarded-For `forwarded`."""
    return [
        token(
            api,
            username.format(n=n),
            "wrong",
            REMOTE_ADDR=proxy,
            HTTP_X_FORWARDED_FOR=forwarded.format(n=n) if forwarded else "",
        ).status_code
        for n in range(count)
    ]


def test_with_no_proxy_x_forwarded_for_is_ignored(gp, clock):
    api = APIClient()
    assert failures_from(api, 20, forwarded="198.51.100.{n}") == [400] * 19 + [429]

    # Whatever address the caller claims, the connection's is locked.
    assert_locked(token(api, gp.username, PASSWORD, HTTP_X_FORWARDED_FOR="203.0.113.77"), json=True)


def test_behind_one_proxy_each_client_is_counted_at_its_own_address(gp, clock, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    api = APIClient()
    assert failures_from(api, 20, forwarded="198.51.100.7") == [400] * 19 + [429]

    assert_locked(token(api, "nobody", "wrong", HTTP_X_FORWARDED_FOR="198.51.100.7"), json=True)
    # Another client through the same proxy is not locked out.
    assert token(api, gp.username, PASSWORD, HTTP_X_FORWARDED_FOR="198.51.100.8").status_code == 200
    assert set(AuditEvent.objects.filter(action="lockout").values_list("ip_address", flat=True)) == {"198.51.100.7"}


def test_behind_a_proxy_a_forged_x_forwarded_for_entry_does_not_dodge_the_count(gp, clock, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    api = APIClient()
    # The client writes an address of its choosing; the proxy appends the real one after it.
    assert failures_from(api, 20, forwarded="10.0.{n}.1, 198.51.100.7") == [400] * 19 + [429]

    assert_locked(token(api, gp.username, PASSWORD, HTTP_X_FORWARDED_FOR="10.9.9.9, 198.51.100.7"), json=True)


def test_behind_two_proxies_the_client_is_the_second_address_from_the_right(gp, clock, settings):
    settings.TRUSTED_PROXY_COUNT = 2
    api = APIClient()
    # Client 198.51.100.7 -> CDN 203.0.113.1 -> our proxy -> the app.
    assert failures_from(api, 20, forwarded="10.0.{n}.1, 198.51.100.7, 203.0.113.1") == [400] * 19 + [429]

    assert token(api, gp.username, PASSWORD, HTTP_X_FORWARDED_FOR="198.51.100.8, 203.0.113.1").status_code == 200
    assert AuditEvent.objects.get(action="lockout").ip_address == "198.51.100.7"


def test_behind_a_proxy_a_request_that_skipped_it_is_counted_at_the_connection(gp, clock, settings):
    settings.TRUSTED_PROXY_COUNT = 2
    api = APIClient()
    # One entry where two proxies would have written two: not through both, so the connection's address counts.
    assert failures_from(api, 20, forwarded="198.51.{n}.7") == [400] * 19 + [429]


def test_the_audit_trail_records_the_client_behind_the_proxy(gp, gp_api, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    gp_api.get("/api/v1/patients/", HTTP_X_FORWARDED_FOR="10.9.9.9, 198.51.100.7")

    assert AuditEvent.objects.latest("id").ip_address == "198.51.100.7"
