"""Two-step login (django-otp): a GP turns it on with a real authenticator key (the QR code, the key, the
first code), gets ten single-use recovery codes, and from then on a login asks for a code before any page;
a clinic can require it; wrong codes are throttled (429 with Retry-After). The codes are real TOTP codes
computed from the device's key at a driven clock (django_otp.oath.TOTP), never slept on."""

import datetime as dt
import re
from types import SimpleNamespace
from unittest import mock

import pytest
from django.test import Client
from django_otp.oath import TOTP
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice
from rest_framework.test import APIClient

from clinic.models import AuditEvent
from tests.factories import PASSWORD, MembershipFactory
from tests.record_factories import api_token_for

LOGIN = "/accounts/login/"
SETUP = "/accounts/two-factor/setup/"
VERIFY = "/accounts/two-factor/verify/"
STATUS = "/accounts/two-factor/"


@pytest.fixture
def clock():
    """django.utils.timezone.now and the TOTP device's time.time, moved by hand: clock.advance(seconds=…)."""

    class Clock:
        now = dt.datetime(2025, 3, 3, 9, 0, 5, tzinfo=dt.UTC)

        def advance(self, **delta):
            self.now += dt.timedelta(**delta)

    fake = Clock()
    otp_time = SimpleNamespace(time=lambda: fake.now.timestamp())
    with (
        mock.patch("django.utils.timezone.now", side_effect=lambda: fake.now),
        mock.patch("django_otp.plugins.otp_totp.models.time", otp_time),
    ):
        yield fake


def code_for(device, clock, *, steps=0):
    """The code an authenticator app with this device's key shows at the clock's time (plus `steps`)."""
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = clock.now.timestamp() + steps * device.step
    return f"{totp.token():0{device.digits}d}"


def log_in(username=None, **extra):
    browser = Client(**extra)
    response = browser.post(LOGIN, {"username": username or "gp_anna", "password": PASSWORD})
    assert response.status_code == 302, response.content.decode()[:500]
    return browser


def turn_on(browser, user, clock):
    """The setup page's steps: read the key, type the app's first code. Answers the recovery codes."""
    assert browser.get(SETUP).status_code == 200
    device = TOTPDevice.objects.get(user=user, confirmed=False)
    page = browser.post(SETUP, {"code": code_for(device, clock)})
    assert page.status_code == 200, page.content.decode()[:2000]
    return re.findall(r"<li><code>(\w+)</code></li>", page.content.decode())


@pytest.fixture
def enrolled(gp, clock):
    """The GP with two-step login on; answers their recovery codes."""
    browser = Client()
    browser.force_login(gp)
    codes = turn_on(browser, gp, clock)
    clock.advance(seconds=30)  # the next code the app shows
    return codes


def events(action):
    return list(AuditEvent.objects.filter(action=action).order_by("id"))


# -- turning it on ----------------------------------------------------------------------------------


def test_a_gp_turns_on_two_step_login_and_gets_ten_single_use_recovery_codes(gp, clock):
    browser = Client()
    browser.force_login(gp)
    assert "Off: your password alone signs you in" in browser.get(STATUS).content.decode()

    page = browser.get(SETUP).content.decode()
    device = TOTPDevice.objects.get(user=gp, confirmed=False)
    secret = re.search(r"secret=([A-Z2-7]+)", page).group(1)
    assert "otpauth://totp/Back%20numbness%20workup%3Agp_anna?secret=" in page
    assert secret.replace(" ", "") == device.config_url.split("secret=")[1].split("&")[0]
    assert '<svg role="img"' in page and "<title>QR code to scan with the app</title>" in page
    assert "<script>" not in page and "style=" not in page
    # Reloading the page shows the same key: nothing to scan twice.
    assert browser.get(SETUP).content.decode().count(secret) == page.count(secret)

    response = browser.post(SETUP, {"code": code_for(device, clock)})

    codes = re.findall(r"<li><code>(\w+)</code></li>", response.content.decode())
    assert len(codes) == len(set(codes)) == 10
    device.refresh_from_db()
    assert device.confirmed
    assert sorted(StaticToken.objects.filter(device__user=gp).values_list("token", flat=True)) == sorted(codes)
    assert [(e.actor, e.object_type, e.object_id) for e in events("two_factor_on")] == [(gp, "user", str(gp.pk))]
    assert "On since" in browser.get(STATUS).content.decode()


def test_a_wrong_first_code_leaves_it_off_and_names_the_field(gp, clock):
    browser = Client()
    browser.force_login(gp)
    browser.get(SETUP)
    device = TOTPDevice.objects.get(user=gp)

    response = browser.post(SETUP, {"code": code_for(device, clock, steps=5)})

    assert response.status_code == 400
    assert "That code is not right" in response.content.decode() and 'for="id_code"' in response.content.decode()
    device.refresh_from_db()
    assert not device.confirmed
    assert len(events("two_factor_failed")) == 1


@pytest.mark.parametrize(("code", "named"), [("", "This field is required"), ("12 34 5!", "letters and digits only")])
def test_a_code_that_is_not_a_code_is_a_bad_request_naming_the_field(gp, clock, code, named):
    browser = Client()
    browser.force_login(gp)
    browser.get(SETUP)

    response = browser.post(SETUP, {"code": code})

    assert response.status_code == 400 and named in response.content.decode()


# -- logging in with it -----------------------------------------------------------------------------


def test_after_turning_it_on_a_login_asks_for_the_code_before_any_page(gp, enrolled, clock):
    browser = log_in()

    for page in ("/", "/patients/new/", "/worklist/", "/admin/", STATUS):
        response = browser.get(page)
        assert (response.status_code, response["Location"]) == (302, f"{VERIFY}?next={page.replace('/', '%2F')}")
    assert browser.get(VERIFY).status_code == 200
    before = browser.cookies["sessionid"].value
    device = TOTPDevice.objects.get(user=gp)

    response = browser.post(VERIFY, {"code": code_for(device, clock), "next": "/patients/new/"})

    assert (response.status_code, response["Location"]) == (302, "/patients/new/")
    assert browser.get("/").status_code == 200
    assert browser.cookies["sessionid"].value != before


def test_an_api_call_with_a_session_that_owes_its_code_is_anonymous(gp, enrolled, clock):
    browser = log_in()
    api = APIClient()
    api.cookies = browser.cookies

    assert api.get("/api/v1/patients/").status_code in (401, 403)
    # An API token is the API's own credential: it still works.
    tokened = APIClient(HTTP_AUTHORIZATION=f"Token {api_token_for(gp)}")
    assert tokened.get("/api/v1/patients/").status_code == 200


def test_an_htmx_fragment_asked_for_by_a_session_that_owes_its_code_is_empty(gp, enrolled, clock):
    # The code page's header asks for the worklist badge: it gets nothing, and the page stays.
    response = log_in().get("/worklist/badge/", HTTP_HX_REQUEST="true")

    assert (response.status_code, response.content, "HX-Redirect" in response) == (204, b"", False)


@pytest.mark.parametrize(
    "next_page", ["abc", "language-switch", "patient-list", "https://evil.example/", "//evil.example/"]
)
def test_after_the_code_a_gp_goes_only_to_a_path_of_this_site(gp, enrolled, clock, next_page):
    # redirect() reads a bare word as the name of a URL pattern: "abc" was a server error and "language-switch"
    # a way to any named page; another site is where a phishing link would send the GP.
    browser = log_in()
    assert browser.get(VERIFY, {"next": next_page}).status_code == 200
    device = TOTPDevice.objects.get(user=gp)
    response = browser.post(VERIFY, {"code": code_for(device, clock), "next": next_page})
    assert (response.status_code, response["Location"]) == (302, "/")


def test_a_code_works_once(gp, enrolled, clock):
    device = TOTPDevice.objects.get(user=gp)
    code = code_for(device, clock)
    assert log_in().post(VERIFY, {"code": code}).status_code == 302

    replayed = log_in().post(VERIFY, {"code": code})

    assert replayed.status_code == 400


def test_a_recovery_code_signs_in_once(gp, enrolled, clock):
    browser = log_in()
    response = browser.post(VERIFY, {"code": enrolled[0].upper()}, follow=True)

    assert response.status_code == 200
    assert "You used a recovery code; 9 are left" in response.content.decode()
    assert [e.actor for e in events("recovery_code_used")] == [gp]
    clock.advance(seconds=5)  # past the throttle of a failure, so the refusal below is the code's own
    assert log_in().post(VERIFY, {"code": enrolled[0]}).status_code == 400


def test_another_gps_code_does_not_sign_this_gp_in(gp, other_gp, enrolled, clock):
    other = Client()
    other.force_login(other_gp)
    turn_on(other, other_gp, clock)
    clock.advance(seconds=30)

    response = log_in().post(VERIFY, {"code": code_for(TOTPDevice.objects.get(user=other_gp), clock)})

    assert response.status_code == 400
    assert events("two_factor_failed")[-1].actor == gp


def test_wrong_codes_are_throttled_even_before_the_right_one(gp, enrolled, clock):
    device = TOTPDevice.objects.get(user=gp)
    browser = log_in()
    wrong = code_for(device, clock, steps=10)

    assert browser.post(VERIFY, {"code": wrong}).status_code == 400
    throttled = browser.post(VERIFY, {"code": code_for(device, clock)})
    assert (throttled.status_code, throttled["Retry-After"]) == (429, "1")
    assert "Too many wrong codes: wait 1 second" in throttled.content.decode()

    clock.advance(seconds=1)
    assert browser.post(VERIFY, {"code": wrong}).status_code == 400
    assert browser.post(VERIFY, {"code": code_for(device, clock)})["Retry-After"] == "2"

    clock.advance(seconds=2)
    assert browser.post(VERIFY, {"code": code_for(device, clock)}).status_code == 302
    assert len(events("two_factor_failed")) == 2


def test_turning_it_off_lets_the_password_alone_sign_in_again(gp, enrolled, clock):
    browser = log_in()
    browser.post(VERIFY, {"code": code_for(TOTPDevice.objects.get(user=gp), clock)})

    assert browser.post("/accounts/two-factor/off/").status_code == 302

    assert not TOTPDevice.objects.filter(user=gp).exists() and not StaticToken.objects.filter(device__user=gp).exists()
    assert log_in().get("/").status_code == 200
    assert [e.actor for e in events("two_factor_off")] == [gp]


def test_new_recovery_codes_replace_the_old_ones(gp, enrolled, clock):
    browser = log_in()
    browser.post(VERIFY, {"code": code_for(TOTPDevice.objects.get(user=gp), clock)})

    page = browser.post("/accounts/two-factor/recovery-codes/").content.decode()

    new = re.findall(r"<li><code>(\w+)</code></li>", page)
    assert len(new) == 10 and not set(new) & set(enrolled)
    assert sorted(StaticToken.objects.filter(device__user=gp).values_list("token", flat=True)) == sorted(new)


def test_a_session_from_before_it_was_turned_on_must_give_a_code_to_change_it(gp, clock):
    older = Client()
    older.force_login(gp)
    enrolling = Client()
    enrolling.force_login(gp)
    turn_on(enrolling, gp, clock)

    refused = older.post("/accounts/two-factor/off/")

    assert refused.status_code == 302 and refused["Location"].startswith(VERIFY)
    assert TOTPDevice.objects.filter(user=gp, confirmed=True).exists()


# -- required by the clinic -------------------------------------------------------------------------


@pytest.fixture
def required(gp):
    clinic = gp.membership.clinic
    clinic.two_factor_required = True
    clinic.save()
    return clinic


def test_a_clinic_that_requires_it_sends_a_gp_without_a_device_to_turn_it_on_first(gp, required, clock):
    browser = log_in()

    response = browser.get("/patients/new/")
    assert (response.status_code, response["Location"]) == (302, f"{SETUP}?next=%2Fpatients%2Fnew%2F")
    assert browser.get(VERIFY)["Location"].startswith(SETUP)
    page = browser.get(response["Location"]).content.decode()
    assert "Your clinic requires two-step login" in page

    turn_on(browser, gp, clock)

    assert browser.get("/patients/new/").status_code == 200


def test_a_gp_whose_clinic_requires_it_cannot_turn_it_off(gp, required, clock):
    browser = log_in()
    turn_on(browser, gp, clock)

    refused = browser.post("/accounts/two-factor/off/", follow=True)

    assert "cannot be turned off" in refused.content.decode()
    assert TOTPDevice.objects.filter(user=gp, confirmed=True).exists()


def test_a_gp_of_a_clinic_that_does_not_require_it_is_not_asked(gp, other_gp, required, clock):
    assert log_in(other_gp.username).get("/").status_code == 200


# -- languages --------------------------------------------------------------------------------------


def test_the_pages_are_in_russian(db, clock):
    gp = MembershipFactory(user__username="vrach", language="ru").user
    browser = log_in(gp.username)

    setup = browser.get(SETUP).content.decode()
    assert "Включить двухэтапный вход" in setup and "QR-код" in setup
    codes = turn_on(browser, gp, clock)
    assert len(codes) == 10
    clock.advance(seconds=30)
    verify = log_in(gp.username).get(VERIFY).content.decode()
    assert "Двухэтапный вход" in verify and "кодов восстановления" in verify
