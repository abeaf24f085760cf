"""The workup page follows each decision without a reload (Chromium): a test accepted in its row (htmx swaps only
the row) at once shows its entry form in the results panel and the requisition's button in the documents, and
undoing it takes both away again; axe-core finds no violation on the page so changed."""

import os

import pytest

from tests.record_factories import URINARY, encounter_of, screened, workup_for
from tests.test_browser import browser, plain_static_files  # noqa: F401 (fixtures)
from tests.test_browser_consultation import context_for, gp_of, log_in, no_axe_violations  # noqa: F401

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_accepting_a_test_shows_its_result_form_and_the_requisition_button_at_once(context_for, live_server):  # noqa: F811 (the fixture)
    gp = gp_of("en", "dr_decisions")
    encounter = encounter_of(gp, findings=screened(URINARY))
    urinalysis = workup_for(gp, encounter).items.get(code="lab_urinalysis")
    page = context_for(locale="en-GB")
    log_in(page, live_server, gp.username)
    page.goto(f"{live_server.url}/encounters/{encounter.pk}/workup/")
    assert page.locator("#requisition-none").is_visible()
    assert page.locator("#results form#test-lab_urinalysis").count() == 0
    assert "No accepted test awaits a result." in page.inner_text("#results")
    loads = []
    page.on("load", lambda: loads.append(1))

    page.click(f"#item-{urinalysis.pk} button.accept")
    page.wait_for_selector(f"#item-{urinalysis.pk} .badge.decision-accepted")

    # No reload: the row, the results panel and the documents changed in place.
    page.wait_for_selector("#documents #request-requisition")
    assert page.locator("#requisition-none").count() == 0
    assert page.locator("#results form#test-lab_urinalysis").count() == 1
    assert "No accepted test awaits a result." not in page.inner_text("#results")
    assert loads == []
    assert page.locator("#results").count() == 1 and page.locator("#documents").count() == 1
    no_axe_violations(page, "workup page after accepting a test in its row")

    page.click(f"#item-{urinalysis.pk} button[name=decision][value=pending]")
    page.wait_for_selector("#documents #requisition-none")
    assert page.locator("#results form#test-lab_urinalysis").count() == 0
    assert loads == []
