"""The worklist's encounters left open, in a real browser, in Russian and English: on a phone (375 px) the section
fits the screen (no sideways scroll of the page nor of the section's table: its rows become cards), axe-core finds
no violation, and the visit date opens the encounter, where the GP sees what is left to do.
"""

import datetime
import os

import pytest

from tests.record_factories import URINARY, clinic_today, encounter_of, patient_of, screened, workup_for
from tests.test_browser import browser, documents_render_in_process, plain_static_files  # noqa: F401 (fixtures)
from tests.test_browser_consultation import PHONE, context_for, gp_of, log_in, no_axe_violations  # noqa: F401
from tests.test_browser_worklist_phone import no_sideways_overflow

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def left_open(gp):
    """Two consultations nobody finalized: one with its workup, one stopped before any (long names, as they come)."""
    week_ago = clinic_today() - datetime.timedelta(days=7)
    with_plan = encounter_of(
        gp,
        patient=patient_of(gp, family_name="Константинопольская", given_name="Александра", middle_name="Владиславовна"),
        findings=screened(URINARY),
        visit_date=week_ago,
    )
    workup_for(gp, with_plan)
    without_plan = encounter_of(
        gp,
        patient=patient_of(gp, family_name="Преображенский", given_name="Вячеслав", middle_name="Константинович"),
        findings=screened(URINARY),
        visit_date=week_ago + datetime.timedelta(days=1),
    )
    return with_plan, without_plan


@pytest.mark.parametrize("language", ["ru", "en"])
def test_on_a_phone_the_encounters_left_open_fit_the_screen_and_the_date_opens_the_encounter(
    context_for,  # noqa: F811 (the fixture)
    live_server,
    language,
):
    gp = gp_of(language, f"dr_left_open_{language}")
    with_plan, without_plan = left_open(gp)
    page = context_for(locale="ru-RU" if language == "ru" else "en-GB", viewport=PHONE)
    log_in(page, live_server, gp.username)

    page.goto(f"{live_server.url}/worklist/")
    page.wait_for_selector("#worklist-drafts tr[data-kind=encounter]")

    for selector in ("#worklist-drafts", "#worklist-drafts .table-scroll"):
        no_sideways_overflow(page, selector, f"worklist ({language})")
    # Each row still says whose encounter, of which day, what the plan is and how to finalize it.
    row = page.locator(f"#worklist-drafts tr[data-id='{with_plan.pk}']")
    assert row.locator("a[href$='/finalize/']").is_visible()
    assert row.locator(".badge").is_visible() and row.locator("time").is_visible()
    no_axe_violations(page, f"worklist on a phone ({language})")

    page.locator(f"#worklist-drafts tr[data-id='{with_plan.pk}'] time").click()
    page.wait_for_url(f"{live_server.url}/encounters/{with_plan.pk}/workup/")
    page.go_back()
    page.locator(f"#worklist-drafts tr[data-id='{without_plan.pk}'] time").click()
    page.wait_for_url(f"{live_server.url}/encounters/{without_plan.pk}/")


def test_on_a_desktop_the_worklist_with_encounters_left_open_has_no_axe_violation(context_for, live_server):  # noqa: F811
    gp = gp_of("en", "dr_left_open_desktop")
    left_open(gp)
    page = context_for(locale="en-GB")
    log_in(page, live_server, gp.username)

    page.goto(f"{live_server.url}/worklist/")
    page.wait_for_selector("#worklist-drafts tr[data-kind=encounter]")

    assert "2 not finalized" in page.inner_text("main .row-between p")
    no_axe_violations(page, "worklist on a desktop (en)")
