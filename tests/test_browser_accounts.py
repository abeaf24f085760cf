"""The account pages in a real browser (Chromium), in Russian and English: turning two-step login on with a
real code from the device's key, the recovery codes, the code asked at the next login, the password reset
(its form, "check your email", the new password from the emailed link, refused and accepted, "password
changed" and a used link) and the 429 lockout page; axe-core finds no accessibility violation on any of them,
and the browser reports no Content-Security-Policy violation (the QR code is inline SVG, with no script or
style)."""

import os
import time

import pytest
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from tests.factories import PASSWORD
from tests.test_browser import browser, documents_render_in_process, plain_static_files  # noqa: F401 (fixtures)
from tests.test_browser_consultation import context_for, gp_of, log_in, no_axe_violations  # noqa: F401

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def watching_the_console(page, errors):
    """Console errors (a refused script or style shows up there), collected into `errors` as they come."""
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    return errors


def next_code(device):
    # The code of the app's next 30-second step: within django-otp's tolerance of one step, and later than
    # any code already used (a code works once).
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time() + device.step
    return f"{totp.token():0{device.digits}d}"


@pytest.mark.parametrize("language", ["ru", "en"])
def test_two_step_login_pages_are_accessible_and_work_in_the_browser(context_for, live_server, language):  # noqa: F811
    gp = gp_of(language, f"dr_two_step_{language}")
    page = context_for(locale="ru-RU" if language == "ru" else "en-GB")
    errors = watching_the_console(page, [])
    log_in(page, live_server, gp.username)

    page.goto(f"{live_server.url}/accounts/two-factor/")
    no_axe_violations(page, f"two-step status, off ({language})")
    page.click("main a[href='/accounts/two-factor/setup/']")
    page.wait_for_url("**/accounts/two-factor/setup/")
    assert page.locator("main svg[role=img]").is_visible()
    no_axe_violations(page, f"two-step setup ({language})")
    device = TOTPDevice.objects.get(user=gp, confirmed=False)
    page.fill("input[name=code]", next_code(device))
    page.click("main button[type=submit]")
    page.locator("ul.recovery-codes li").nth(9).wait_for()
    assert page.locator("ul.recovery-codes li").count() == 10
    no_axe_violations(page, f"recovery codes ({language})")

    again = context_for(locale="ru-RU" if language == "ru" else "en-GB")
    watching_the_console(again, errors)
    again.goto(f"{live_server.url}/accounts/login/")
    again.fill("input[name=username]", gp.username)
    again.fill("input[name=password]", PASSWORD)
    again.click("main button[type=submit]")
    again.wait_for_url("**/accounts/two-factor/verify/?next=%2F")
    no_axe_violations(again, f"two-step code page ({language})")
    again.fill("input[name=code]", "12 34 5!")
    again.click("main button[type=submit]")
    again.locator(".field.invalid .error").wait_for()
    no_axe_violations(again, f"two-step code page with an error ({language})")
    again.fill("input[name=code]", next_code(TOTPDevice.objects.get(user=gp)))
    again.click("main button[type=submit]")
    again.wait_for_url(f"{live_server.url}/")
    again.goto(f"{live_server.url}/accounts/two-factor/")
    no_axe_violations(again, f"two-step status, on ({language})")

    assert not [error for error in errors if "Content Security Policy" in error], errors


@pytest.mark.parametrize("language", ["ru", "en"])
def test_the_lockout_page_and_the_password_reset_form_are_accessible(context_for, live_server, language):  # noqa: F811
    gp = gp_of(language, f"dr_locked_{language}")
    page = context_for(locale="ru-RU" if language == "ru" else "en-GB")
    errors = watching_the_console(page, [])

    page.goto(f"{live_server.url}/accounts/password_reset/")
    no_axe_violations(page, f"password reset form ({language})")
    page.goto(f"{live_server.url}/accounts/login/")
    statuses = []
    page.on("response", lambda answer: statuses.append(answer.status) if "/accounts/login/" in answer.url else None)
    for _ in range(5):
        page.fill("input[name=username]", gp.username)
        page.fill("input[name=password]", "wrong")
        page.click("main button[type=submit]")
        page.wait_for_load_state()

    assert statuses[-1] == 429
    assert page.locator("main [role=alert]").is_visible()
    no_axe_violations(page, f"lockout page ({language})")
    assert not [error for error in errors if "Content Security Policy" in error], errors


@pytest.mark.parametrize("language", ["ru", "en"])
def test_the_password_reset_pages_are_accessible_from_the_email_to_the_new_password(context_for, live_server, language):  # noqa: F811
    import re

    from django.core import mail

    gp = gp_of(language, f"dr_forgetful_{language}")
    gp.email = f"forgetful.{language}@example.org"
    gp.save()
    page = context_for(locale="ru-RU" if language == "ru" else "en-GB")
    errors = watching_the_console(page, [])

    page.goto(f"{live_server.url}/accounts/password_reset/")
    page.fill("input[name=email]", gp.email)
    page.click("main button[type=submit]")
    page.wait_for_url("**/accounts/password_reset/done/")
    assert page.locator("html").get_attribute("lang") == language
    no_axe_violations(page, f"password reset sent ({language})")

    # The email (sent by the task, in-process here) holds the link.
    (message,) = [message for message in mail.outbox if message.to == [gp.email]]
    link = re.search(r"https?://\S+(/accounts/reset/\S+/)", message.body).group(1)
    page.goto(f"{live_server.url}{link}")
    page.wait_for_url("**/accounts/reset/*/set-password/")
    no_axe_violations(page, f"set a new password ({language})")
    page.fill("input[name=new_password1]", "12345678")
    page.fill("input[name=new_password2]", "12345678")
    page.click("main button[type=submit]")
    page.locator(".field.invalid .error").first.wait_for()
    no_axe_violations(page, f"set a new password, refused ({language})")
    page.fill("input[name=new_password1]", "another-long-passphrase-7")
    page.fill("input[name=new_password2]", "another-long-passphrase-7")
    page.click("main button[type=submit]")
    page.wait_for_url("**/accounts/reset/done/")
    assert page.locator("html").get_attribute("lang") == language
    no_axe_violations(page, f"password reset complete ({language})")

    page.goto(f"{live_server.url}{link}")  # used once: the link no longer works
    page.locator("main [role=alert]").wait_for()
    no_axe_violations(page, f"a used reset link ({language})")
    assert not [error for error in errors if "Content Security Policy" in error], errors
