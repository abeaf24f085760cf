"""Password reset by email: Django's flow in Russian and English, the email in the GP's language, and a
throttle like the login's (5 requests for one email or 20 from one address within 15 minutes, then 429 with
Retry-After, audited). The answer never says whether an account has the address, nor does the work the request
does: the email is sent by a Celery task enqueued after the commit, carrying ids only. The clock is driven.

Each request runs its on-commit callbacks as a real commit would (the test's transaction never commits) and the
task runs in-process, as on the embedded default; one test publishes to the real Redis instead."""

import re
from unittest import mock

import pytest
from django.core import mail
from django.db import connection
from django.test import Client, TestCase
from django.test.utils import CaptureQueriesContext

from clinic.models import AuditEvent
from clinic.tasks import SEND_PASSWORD_RESET
from tests.factories import PASSWORD, MembershipFactory
from tests.test_lockout import clock  # noqa: F401  (fixture)

RESET = "/accounts/password_reset/"
DONE = "/accounts/password_reset/done/"
NEW_PASSWORD = "another-long-passphrase-7"


@pytest.fixture
def gp_with_email(gp):
    gp.email = "anna.petrova@example.org"
    gp.save()
    return gp


@pytest.fixture(autouse=True)
def tasks_run_in_process():
    from config.celery import app

    eager = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = eager


def ask(client, email, **extra):
    with TestCase.captureOnCommitCallbacks(execute=True):
        return client.post(RESET, {"email": email}, **extra)


def link_in(message):
    return re.search(r"https?://testserver(/accounts/reset/\S+/)", message.body).group(1)


def test_a_gp_resets_a_forgotten_password_through_the_emailed_link(gp_with_email, clock):  # noqa: F811
    browser = Client()
    assert "Forgot your password?" in browser.get("/accounts/login/").content.decode()

    response = ask(browser, "Anna.Petrova@example.org")

    assert (response.status_code, response["Location"]) == (302, DONE)
    assert "Check your email" in browser.get(DONE).content.decode()
    (message,) = mail.outbox
    assert message.to == ["anna.petrova@example.org"]
    assert message.subject == "Password reset: back numbness workup"
    assert "gp_anna" in message.body and "for 1 hour" in message.body
    form = browser.get(link_in(message), follow=True)
    assert "Choose a new password" in form.content.decode()
    done = browser.post(form.redirect_chain[-1][0], {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert done.status_code == 302
    assert "Your new password is set" in browser.get(done["Location"]).content.decode()
    assert Client().login(username=gp_with_email.username, password=NEW_PASSWORD)
    event = AuditEvent.objects.get(action="password_reset")
    assert (event.actor, event.object_type, event.object_id, event.patient_id) == (
        gp_with_email,
        "user",
        str(gp_with_email.pk),
        None,
    )


def test_an_address_without_an_account_gets_the_same_answer_and_no_email(gp_with_email, clock):  # noqa: F811
    known, unknown = ask(Client(), "anna.petrova@example.org"), ask(Client(), "nobody@example.org")

    assert (unknown.status_code, unknown["Location"]) == (known.status_code, known["Location"]) == (302, DONE)
    assert [message.to for message in mail.outbox] == [["anna.petrova@example.org"]]


def test_an_address_with_an_account_and_one_without_cost_the_request_the_same_work(
    gp_with_email,
    clock,  # noqa: F811
    django_assert_num_queries,
):
    enqueued = []
    with mock.patch("clinic.tasks.send_password_reset.delay", side_effect=lambda *a: enqueued.append(a)):
        with CaptureQueriesContext(connection) as known_queries:
            known = ask(Client(), "anna.petrova@example.org")
        with django_assert_num_queries(len(known_queries)):
            unknown = ask(Client(), "nobody@example.org")

    assert (known.status_code, unknown.status_code) == (302, 302)
    # One task each, the same shape: ids, the host and the scheme; no address, no token.
    assert enqueued == [([gp_with_email.pk], "testserver", False), ([], "testserver", False)]
    assert not mail.outbox


def test_the_task_travels_through_the_broker_with_ids_only(gp_with_email, clock, settings):  # noqa: F811
    import base64
    import json

    import redis

    from config.celery import app

    app.conf.task_always_eager = False
    queue = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    before = queue.llen("celery")

    ask(Client(), gp_with_email.email)

    raw = queue.lindex("celery", 0)  # the newest message
    assert queue.llen("celery") == before + 1
    queue.lrem("celery", 1, raw)
    message = json.loads(raw)
    assert message["headers"]["task"] == SEND_PASSWORD_RESET
    args, kwargs, _ = json.loads(base64.b64decode(message["body"]))
    assert (args, kwargs) == ([[gp_with_email.pk], "testserver", False], {})
    assert b"example.org" not in raw and b"anna" not in raw.lower()
    assert not mail.outbox


def test_an_account_deactivated_before_the_task_runs_gets_no_email(gp_with_email, clock):  # noqa: F811
    from clinic.tasks import send_password_reset

    gp_with_email.is_active = False
    gp_with_email.save()

    assert send_password_reset(user_ids=[gp_with_email.pk], domain="testserver", use_https=True) == 0
    assert not mail.outbox


def test_the_link_uses_the_scheme_and_host_the_request_came_by(gp_with_email, clock):  # noqa: F811
    ask(Client(), gp_with_email.email, secure=True, HTTP_HOST="localhost")

    (message,) = mail.outbox
    assert "https://localhost/accounts/reset/" in message.body


def test_a_used_link_does_not_work_twice(gp_with_email, clock):  # noqa: F811
    ask(Client(), gp_with_email.email)
    link = link_in(mail.outbox[0])
    first = Client()
    form = first.get(link, follow=True)
    first.post(form.redirect_chain[-1][0], {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})

    again = Client().get(link, follow=True)

    assert "This link does not work" in again.content.decode()
    assert 'name="new_password1"' not in again.content.decode()


def test_the_link_expires_after_an_hour(gp_with_email, clock):  # noqa: F811
    import datetime as dt

    ask(Client(), gp_with_email.email)
    link = link_in(mail.outbox[0])
    later = dt.datetime.now() + dt.timedelta(hours=1, minutes=1)

    with mock.patch("django.contrib.auth.tokens.PasswordResetTokenGenerator._now", return_value=later):
        page = Client().get(link, follow=True)

    assert "This link does not work" in page.content.decode()


@pytest.mark.parametrize(("email", "named"), [("", "This field is required"), ("not-an-address", "valid email")])
def test_a_request_without_a_usable_address_is_a_bad_request_naming_the_field(db, email, named):
    response = ask(Client(), email)

    assert response.status_code == 400
    page = response.content.decode()
    assert named in page and 'for="id_email"' in page
    assert not mail.outbox


def test_a_weak_new_password_is_refused_naming_the_field(gp_with_email, clock):  # noqa: F811
    browser = Client()
    ask(browser, gp_with_email.email)
    form = browser.get(link_in(mail.outbox[0]), follow=True)

    refused = browser.post(form.redirect_chain[-1][0], {"new_password1": "12345678", "new_password2": "12345678"})

    assert refused.status_code == 400
    assert "This password is too common" in refused.content.decode()
    assert Client().login(username=gp_with_email.username, password=PASSWORD)


def test_the_email_is_in_the_language_of_the_gp_it_is_sent_to(db, clock):  # noqa: F811
    russian = MembershipFactory(user__username="vrach", user__email="vrach@example.org", language="ru").user

    ask(Client(HTTP_ACCEPT_LANGUAGE="en"), russian.email)

    (message,) = mail.outbox
    assert message.subject == "Сброс пароля: обследование при онемении в спине"
    assert "Ссылка действует один раз" in message.body
    assert "vrach" in message.body
    # Nothing left in English: every Latin letter is the link's or the account's (its name and username).
    words = re.sub(r"https?://\S+", "", message.body).replace("vrach", "").replace(russian.get_full_name(), "")
    assert not re.search("[A-Za-z]", message.subject + words), words


def test_the_english_email_has_no_russian_in_it(db, clock):  # noqa: F811
    english = MembershipFactory(user__username="doctor", user__email="doc@example.org", language="en").user

    ask(Client(HTTP_ACCEPT_LANGUAGE="ru"), english.email)

    (message,) = mail.outbox
    assert "The link works once" in message.body
    assert not re.search("[А-Яа-яЁё]", message.subject + message.body), message.body


def test_the_pages_are_in_russian(db):
    browser = Client(HTTP_ACCEPT_LANGUAGE="ru")

    assert "Сброс пароля" in browser.get(RESET).content.decode()
    assert "Проверьте почту" in browser.get(DONE).content.decode()
    assert "Забыли пароль?" in browser.get("/accounts/login/").content.decode()


# -- the throttle ---------------------------------------------------------------------------------


def assert_throttled(response, *, retry_after):
    assert response.status_code == 429
    assert int(response["Retry-After"]) == retry_after
    page = response.content.decode()
    assert "Too many password reset requests" in page and "Traceback" not in page


def test_a_sixth_request_for_one_address_within_fifteen_minutes_is_refused(gp_with_email, clock):  # noqa: F811
    browser = Client()
    for _ in range(5):
        assert ask(browser, "anna.petrova@example.org").status_code == 302
        clock.advance(minutes=1)

    assert_throttled(ask(browser, "ANNA.PETROVA@example.org"), retry_after=10 * 60)
    assert len(mail.outbox) == 5
    # From another address too: the limit is the email's.
    assert_throttled(ask(Client(REMOTE_ADDR="10.9.8.7"), gp_with_email.email), retry_after=10 * 60)

    clock.advance(minutes=10)
    assert ask(browser, gp_with_email.email).status_code == 302
    assert len(mail.outbox) == 6


def test_an_address_without_an_account_is_throttled_the_same_way(db, clock):  # noqa: F811
    browser = Client()
    assert [ask(browser, "nobody@example.org").status_code for _ in range(5)] == [302] * 5

    assert_throttled(ask(browser, "nobody@example.org"), retry_after=15 * 60)


def test_twenty_requests_from_one_address_refuse_the_twenty_first(gp_with_email, clock):  # noqa: F811
    browser = Client()
    assert [ask(browser, f"someone{n}@example.org").status_code for n in range(20)] == [302] * 20

    assert_throttled(ask(browser, gp_with_email.email), retry_after=15 * 60)
    assert ask(Client(REMOTE_ADDR="10.9.8.7"), gp_with_email.email).status_code == 302


def test_each_refusal_is_audited_without_the_address_asked_for(gp_with_email, clock):  # noqa: F811
    for _ in range(6):
        ask(Client(), gp_with_email.email)
    for _ in range(6):
        ask(Client(), "nobody@example.org")

    events = list(AuditEvent.objects.filter(action="lockout").order_by("id"))
    assert [(e.object_type, e.object_id, e.actor, e.channel, e.ip_address) for e in events] == [
        ("password_reset", "email", gp_with_email, "web", "127.0.0.1"),
        ("password_reset", "email", None, "web", "127.0.0.1"),
    ]
    assert not any("example.org" in str(value) for e in events for value in vars(e).values())


def test_the_refusal_page_is_in_russian(db, clock):  # noqa: F811
    browser = Client(HTTP_ACCEPT_LANGUAGE="ru")
    for _ in range(5):
        ask(browser, "nobody@example.org")

    page = ask(browser, "nobody@example.org").content.decode()

    assert "Слишком много запросов на сброс пароля" in page and '<html lang="ru">' in page
