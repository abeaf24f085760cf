"""API tokens (django-rest-knox): stored as a digest, expire after API_TOKEN_HOURS (8 h), end at logout
(the token used), logout-all and a password change (all of the user's). The clock is driven, never slept on."""

import datetime as dt
from unittest import mock

import pytest
from django.contrib.auth import get_user_model
from knox.models import AuthToken
from rest_framework.test import APIClient

from tests.factories import PASSWORD

TOKEN = "/api/v1/auth/token/"
LOGOUT = "/api/v1/auth/logout/"
LOGOUT_ALL = "/api/v1/auth/logout-all/"
PING = "/api/v1/ping/"


@pytest.fixture
def clock():
    """django.utils.timezone.now (which knox reads too), moved by hand: clock.advance(hours=…)."""

    class Clock:
        now = dt.datetime(2025, 3, 3, 9, 0, tzinfo=dt.UTC)

        def advance(self, **delta):
            self.now += dt.timedelta(**delta)

    fake = Clock()
    with mock.patch("django.utils.timezone.now", side_effect=lambda: fake.now):
        yield fake


def issue(user, password=PASSWORD):
    response = APIClient().post(TOKEN, {"username": user.username, "password": password}, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def client_with(token):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def test_the_token_answer_has_the_token_and_its_expiry_eight_hours_on(gp, clock):
    answer = issue(gp)
    assert set(answer) == {"token", "expiry"}
    assert dt.datetime.fromisoformat(answer["expiry"]) == clock.now + dt.timedelta(hours=8)


def test_only_a_digest_of_the_token_is_stored(gp):
    token = issue(gp)["token"]
    stored = AuthToken.objects.get(user=gp)
    assert stored.digest != token and token not in stored.digest
    assert len(stored.digest) == 128  # sha512
    assert stored.token_key == token[:15]  # the lookup prefix, not the key


def test_the_authorization_token_header_opens_the_api(gp):
    response = client_with(issue(gp)["token"]).get(PING)
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_a_token_works_until_its_expiry_and_not_after(gp, clock):
    client = client_with(issue(gp)["token"])
    clock.advance(hours=7, minutes=59)
    assert client.get(PING).status_code == 200
    clock.advance(minutes=2)
    response = client.get(PING)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Token")
    assert not AuthToken.objects.filter(user=gp).exists()


def test_the_lifetime_follows_the_setting(gp, clock, settings):
    settings.REST_KNOX = {**settings.REST_KNOX, "TOKEN_TTL": dt.timedelta(hours=1)}
    answer = issue(gp)
    assert dt.datetime.fromisoformat(answer["expiry"]) == clock.now + dt.timedelta(hours=1)
    clock.advance(minutes=61)
    assert client_with(answer["token"]).get(PING).status_code == 401


def test_logout_revokes_the_token_used_and_no_other(gp):
    first, second = client_with(issue(gp)["token"]), client_with(issue(gp)["token"])
    assert first.post(LOGOUT).status_code == 204
    assert first.get(PING).status_code == 401
    assert second.get(PING).status_code == 200
    assert AuthToken.objects.filter(user=gp).count() == 1


def test_logout_all_revokes_every_token_of_the_user_only(gp, other_gp):
    first, second = client_with(issue(gp)["token"]), client_with(issue(gp)["token"])
    other = client_with(issue(other_gp)["token"])
    assert first.post(LOGOUT_ALL).status_code == 204
    assert first.get(PING).status_code == 401
    assert second.get(PING).status_code == 401
    assert other.get(PING).status_code == 200


def test_a_password_change_revokes_all_of_the_users_tokens(gp, other_gp):
    first, second = client_with(issue(gp)["token"]), client_with(issue(gp)["token"])
    other = client_with(issue(other_gp)["token"])
    user = get_user_model().objects.get(pk=gp.pk)
    user.set_password("another-password-7")
    user.save()
    assert first.get(PING).status_code == 401
    assert second.get(PING).status_code == 401
    assert other.get(PING).status_code == 200
    # A token issued with the new password works.
    assert client_with(issue(gp, "another-password-7")["token"]).get(PING).status_code == 200


def test_a_save_that_keeps_the_password_keeps_the_tokens(gp):
    client = client_with(issue(gp)["token"])
    user = get_user_model().objects.get(pk=gp.pk)
    user.first_name = "Анна"
    user.save()
    user.save(update_fields=["last_login"])
    assert client.get(PING).status_code == 200


def test_the_admins_password_form_revokes_the_tokens(gp, admin_client):
    client = client_with(issue(gp)["token"])
    response = admin_client.post(
        f"/admin/auth/user/{gp.pk}/password/",
        {"password1": "another-password-7", "password2": "another-password-7", "usable_password": "true"},
    )
    assert response.status_code == 302, response.content[:500]
    assert client.get(PING).status_code == 401


def test_an_anonymous_logout_is_401(anonymous, db):
    for url in (LOGOUT, LOGOUT_ALL):
        response = anonymous.post(url)
        assert response.status_code == 401
        assert response["WWW-Authenticate"].startswith("Token")


def test_a_made_up_or_garbled_token_is_401(anonymous, db):
    for key in ("0" * 64, "abc", "é" * 20):
        anonymous.credentials(HTTP_AUTHORIZATION=f"Token {key}")
        assert anonymous.get(PING).status_code == 401
        assert anonymous.post(LOGOUT).status_code == 401


def test_the_lockout_still_applies_to_the_token_endpoint(gp, clock):
    api = APIClient()
    wrong = {"username": gp.username, "password": "wrong"}
    assert [api.post(TOKEN, wrong, format="json").status_code for _ in range(4)] == [400] * 4
    assert api.post(TOKEN, wrong, format="json").status_code == 429
    refused = api.post(TOKEN, {"username": gp.username, "password": PASSWORD}, format="json")
    assert refused.status_code == 429
    assert "token" not in refused.json()
    assert not AuthToken.objects.filter(user=gp).exists()


def test_the_schema_documents_the_token_and_logout_endpoints(anonymous, db):
    schema = anonymous.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    token = schema["paths"][TOKEN]["post"]
    ref = token["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    assert {"token", "expiry"} <= set(schema["components"]["schemas"][ref]["properties"])
    assert {"200", "400", "429"} <= set(token["responses"])
    for url in (LOGOUT, LOGOUT_ALL):
        assert {"204", "401"} <= set(schema["paths"][url]["post"]["responses"])


def test_the_token_seed_demo_prints_works(db, monkeypatch):
    from io import StringIO

    from django.core.management import call_command

    monkeypatch.setenv("DEMO_PASSWORD", "a-demo-password-9")
    out = StringIO()
    call_command("seed_demo", stdout=out)
    token = next(line.split(": ", 1)[1] for line in out.getvalue().splitlines() if line.startswith("api token"))
    assert client_with(token).get(PING).status_code == 200
    # Run again (as scripts/serve does at every start): it prints a new token that works too.
    out = StringIO()
    call_command("seed_demo", stdout=out)
    again = next(line.split(": ", 1)[1] for line in out.getvalue().splitlines() if line.startswith("api token"))
    assert again != token
    assert client_with(again).get(PING).status_code == 200


def test_seed_demo_again_with_the_same_password_keeps_earlier_tokens_and_a_new_one_revokes_them(db, monkeypatch):
    from io import StringIO

    from django.core.management import call_command

    def seed(password):
        monkeypatch.setenv("DEMO_PASSWORD", password)
        out = StringIO()
        call_command("seed_demo", stdout=out)
        return next(line.split(": ", 1)[1] for line in out.getvalue().splitlines() if line.startswith("api token"))

    first = seed("a-demo-password-9")
    seed("a-demo-password-9")
    assert client_with(first).get(PING).status_code == 200
    latest = seed("another-demo-password-8")
    assert client_with(first).get(PING).status_code == 401
    assert client_with(latest).get(PING).status_code == 200
