"""The worklist's tables and the workup's entered results on a phone (375 px), in a real browser, in Russian and
English: each row is a card, so the due date with its overdue badge and the link to act on it (or a result's flag,
reference and acknowledge form) are on the screen without scrolling sideways; the page never scrolls sideways and
axe-core finds no violation (the cards are still a table for a screen reader).
"""

import datetime
import os

import pytest

from referrals import services as referral_services
from tests.record_factories import (
    URINARY,
    accept_tests,
    actor_for,
    clinic_local,
    encounter_of,
    patient_of,
    screened,
    workup_for,
)
from tests.test_browser import browser, documents_render_in_process, plain_static_files  # noqa: F401 (fixtures)
from tests.test_browser_consultation import PHONE, context_for, gp_of, log_in, no_axe_violations  # noqa: F401
from workups.services import result_enter

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SECTIONS = ("unacknowledged", "awaited", "referrals")


def one_of_each(gp):
    """A patient with a long name whose tests were accepted six weeks ago (awaited, overdue), with a low haemoglobin
    not yet acknowledged and an urgent referral issued: a row in each of the worklist's sections."""
    encounter = encounter_of(
        gp,
        patient=patient_of(gp, family_name="Константинопольская", given_name="Александра", middle_name="Владиславовна"),
        findings=screened(URINARY),
    )
    accept_tests(gp, workup_for(gp, encounter), at=clinic_local() - datetime.timedelta(weeks=6))
    actor = actor_for(gp)
    result_enter(actor=actor, encounter=encounter, code="res_hemoglobin", value=90)
    referral = referral_services.referral_create(
        actor=actor, encounter=encounter, specialty="neurology", urgency="urgent", reason="Numbness"
    )
    referral_services.referral_issue(actor=actor, referral=referral)
    return encounter


def on_screen(page, locator, where):
    """Shown, and within the phone's width: not behind a sideways scroll."""
    assert locator.is_visible(), f"{where}: not visible"
    box = locator.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], f"{where}: {box}"


def no_sideways_overflow(page, selector, where):
    """Neither the element nor the page is wider than what shows: nothing scrolls sideways."""
    widths = page.evaluate(
        "s => { const e = document.querySelector(s), d = document.documentElement;"
        " return [e.scrollWidth, e.clientWidth, d.scrollWidth, d.clientWidth]; }",
        selector,
    )
    assert widths[0] <= widths[1], f"{where}: {selector} scrollWidth {widths[0]} > clientWidth {widths[1]}"
    assert widths[2] <= widths[3], f"{where}: page scrollWidth {widths[2]} > clientWidth {widths[3]}"


@pytest.mark.parametrize("language", ["ru", "en"])
def test_on_a_phone_each_worklist_row_shows_its_due_date_and_its_link_without_scrolling_sideways(
    context_for,  # noqa: F811 (the fixture)
    live_server,
    language,
):
    gp = gp_of(language, f"dr_worklist_phone_{language}")
    one_of_each(gp)
    page = context_for(locale="ru-RU" if language == "ru" else "en-GB", viewport=PHONE)
    log_in(page, live_server, gp.username)

    page.goto(f"{live_server.url}/worklist/")
    page.wait_for_selector("#worklist-referrals tbody tr")

    for key in SECTIONS:
        where = f"{key} ({language})"
        no_sideways_overflow(page, f"#worklist-{key} .table-scroll", where)
        row = page.locator(f"#worklist-{key} tbody tr").first
        on_screen(page, row.locator("td").first.locator("a"), f"{where}, patient")
        on_screen(page, row.locator(".badge").first, f"{where}, urgency")
        on_screen(page, row.locator("time"), f"{where}, due date")
        on_screen(page, row.locator("td").last.locator("a"), f"{where}, action link")
    # Six weeks on, the awaited tests are overdue: the badge says so beside the date.
    on_screen(page, page.locator("#worklist-awaited tbody tr").first.locator(".badge.overdue"), "overdue badge")
    no_axe_violations(page, f"worklist on a phone ({language})")


@pytest.mark.parametrize("language", ["ru", "en"])
def test_on_a_phone_an_entered_result_shows_its_flag_reference_and_acknowledge_form_without_scrolling_sideways(
    context_for,  # noqa: F811 (the fixture)
    live_server,
    language,
):
    gp = gp_of(language, f"dr_results_phone_{language}")
    encounter = one_of_each(gp)
    page = context_for(locale="ru-RU" if language == "ru" else "en-GB", viewport=PHONE)
    log_in(page, live_server, gp.username)

    page.goto(f"{live_server.url}/encounters/{encounter.pk}/workup/")
    page.wait_for_selector("table.results-table tbody tr")

    no_sideways_overflow(page, "#results .table-scroll", f"results ({language})")
    row = page.locator("table.results-table tbody tr[data-code=res_hemoglobin]")
    cells = row.locator("td")
    for index, what in enumerate(("analyte", "value", "flag", "reference")):
        on_screen(page, cells.nth(index), f"results ({language}), {what}")
    on_screen(page, row.locator(".flag"), f"results ({language}), flag")
    on_screen(page, row.locator("form.acknowledge textarea"), f"results ({language}), action taken")
    on_screen(page, row.locator("form.acknowledge button"), f"results ({language}), acknowledge")
    no_axe_violations(page, f"workup results on a phone ({language})")
