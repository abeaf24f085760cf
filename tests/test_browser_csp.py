"""The Content-Security-Policy holds on the pages outside the GP's app too: the admin (its login, a changelist
and a change form as staff) and the interactive API docs (Swagger UI, served from the app's own static files
with its start-up script as a file). A real Chromium loads each page and reports no CSP violation, neither on
the console nor as a `securitypolicyviolation` event, and Swagger UI renders the API's operations."""

import os

import pytest

from tests.factories import PASSWORD, MembershipFactory
from tests.record_factories import patient_of
from tests.test_browser import browser, documents_render_in_process, plain_static_files  # noqa: F401 (fixtures)
from tests.test_browser_consultation import context_for  # noqa: F401

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Runs before any of the page's own scripts, in every frame: each violation the browser reports is kept.
RECORD_VIOLATIONS = """
window.cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.cspViolations.push(`${event.violatedDirective} ${event.blockedURI} ${event.sourceFile}:${event.lineNumber}`);
});
"""


def watched(page):
    """The page, with its CSP violations (events and console errors) collected into page.violations."""
    page.violations = []
    page.add_init_script(RECORD_VIOLATIONS)
    page.on(
        "console",
        lambda message: (
            page.violations.append(message.text)
            if message.type == "error" and "Content Security Policy" in message.text
            else None
        ),
    )
    return page


def assert_no_violations(page, where):
    reported = page.evaluate("window.cspViolations || []")
    assert not (page.violations + reported), f"{where}: {page.violations + reported}"


@pytest.fixture
def staff(gp):
    from django.contrib.auth.models import Permission

    user = MembershipFactory(clinic=gp.membership.clinic, user__username="admin_olga", user__is_staff=True).user
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="clinic"))
    patient_of(gp, family_name="Соколова", given_name="Вера", sex="female", identifier="MRN-1")
    return user


def test_the_admin_runs_under_the_policy(context_for, live_server, staff):  # noqa: F811
    page = watched(context_for())

    page.goto(f"{live_server.url}/admin/")
    page.fill("input[name=username]", staff.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{live_server.url}/admin/")
    assert_no_violations(page, "admin login")

    page.goto(f"{live_server.url}/admin/clinic/patient/")
    assert page.locator("#result_list tbody tr").count() == 1
    assert_no_violations(page, "patient changelist")
    page.locator("#result_list tbody tr a").first.click()
    page.wait_for_url("**/change/")
    page.locator("#content-main form").wait_for()
    assert_no_violations(page, "patient change form")


def test_the_api_docs_render_under_the_policy(context_for, live_server, gp):  # noqa: F811
    page = watched(context_for())

    response = page.goto(f"{live_server.url}/api/docs/")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    page.locator(".opblock").first.wait_for()
    assert page.locator(".opblock").count() > 20
    assert page.locator(".opblock-summary-path", has_text="/api/v1/patients/").first.is_visible()
    page.locator(".opblock-summary").first.click()  # an operation opens: its parameters and responses
    page.locator(".opblock-body").first.wait_for()
    assert_no_violations(page, "API docs")
