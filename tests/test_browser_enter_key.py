"""Enter pressed in a field, in a real browser: a reflex after typing a number or a reason, never a decision.

It must not answer the red flags "No" (the red flags' "all remaining: No" button comes first in the form), accept a
test the GP was giving a reason to decline, or register a possible duplicate past its warning; and the keyboard focus
is visible on a question still "not recorded".
"""

import os

import pytest

from clinic.models import Encounter, Patient
from tests.cases import RED_FLAGS
from tests.record_factories import URINARY, encounter_of, patient_of, screened, workup_for
from tests.test_browser import answer, browser, documents_render_in_process, plain_static_files  # noqa: F401
from tests.test_browser_consultation import context_for, gp_of, log_in  # noqa: F401
from workups.models import Decision

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def red_flags_answered_no(page):
    return page.locator("fieldset.red-flag input[value=no]:checked").count()


@pytest.mark.parametrize("language", ["ru", "en"])
def test_enter_in_a_field_of_the_encounter_form_answers_no_red_flag_and_leaves_nothing(
    context_for,  # noqa: F811 (the fixture)
    live_server,
    language,
):
    gp = gp_of(language, f"dr_enter_{language}")
    patient = patient_of(gp)
    page = context_for(locale="ru-RU" if language == "ru" else "en-GB")
    log_in(page, live_server, gp.username)
    new_encounter = f"{live_server.url}/patients/{patient.pk}/encounters/new/"
    page.goto(new_encounter)
    assert red_flags_answered_no(page) == 0

    for field in ("#id_duration_days", "#id_temperature_c"):
        page.fill(field, "10" if field == "#id_duration_days" else "37.2")
        page.press(field, "Enter")
        assert page.url == new_encounter
        assert red_flags_answered_no(page) == 0, f"Enter in {field} answered red flags"
    answer(page, "loc_lumbar", "yes")
    page.press("#id_f_loc_lumbar_1", "Enter")  # on a radio too: Chromium submits a form from a focused radio
    assert page.url == new_encounter and red_flags_answered_no(page) == 0
    assert not Encounter.objects.filter(patient=patient).exists()

    # The button itself still does what it says.
    page.click("#red-flags-no")
    assert red_flags_answered_no(page) == len(RED_FLAGS)


def test_without_javascript_enter_in_the_encounter_form_saves_the_draft_as_typed(browser, live_server):  # noqa: F811
    gp = gp_of("en", "dr_enter_nojs")
    patient = patient_of(gp)
    context = browser.new_context(java_script_enabled=False, locale="en-GB")
    try:
        page = context.new_page()
        log_in(page, live_server, gp.username)
        page.goto(f"{live_server.url}/patients/{patient.pk}/encounters/new/")
        answer(page, "loc_lumbar", "yes")
        page.fill("#id_duration_days", "10")
        with page.expect_navigation():
            page.press("#id_duration_days", "Enter")
        assert page.locator("[data-error-summary]").count() == 0, page.inner_text("#error-summary ul")
        encounter = Encounter.objects.get(patient=patient)
        assert page.url.endswith(f"/encounters/{encounter.pk}/")
        assert encounter.duration_days == 10 and encounter.findings.get("loc_lumbar") is True
        assert not any(encounter.findings.get(code) is False for code in RED_FLAGS), encounter.findings
    finally:
        context.close()


@pytest.mark.parametrize("language", ["ru", "en"])
def test_enter_in_the_reason_to_decline_declines_rather_than_accepts(
    context_for,  # noqa: F811 (the fixture)
    live_server,
    language,
):
    gp = gp_of(language, f"dr_enter_decline_{language}")
    encounter = encounter_of(gp, findings=screened(URINARY))
    workup = workup_for(gp, encounter)
    item = workup.items.order_by("position").first()
    page = context_for(locale="ru-RU" if language == "ru" else "en-GB")
    log_in(page, live_server, gp.username)
    page.goto(f"{live_server.url}/encounters/{encounter.pk}/workup/")
    row = page.locator(f"li.rec[data-code={item.code}]")
    row.locator("input[name=reason]").fill("Done five days ago, normal")
    row.locator("input[name=reason]").press("Enter")
    page.wait_for_selector(f"li.rec[data-code={item.code}] .badge.decision-declined")
    item.refresh_from_db()
    assert item.decision == Decision.DECLINED and item.decision_reason == "Done five days ago, normal"


def test_enter_past_a_possible_duplicate_does_not_register_it(context_for, live_server):  # noqa: F811
    gp = gp_of("en", "dr_enter_duplicate")
    existing = patient_of(gp, family_name="Petrova", given_name="Anna")
    page = context_for()
    log_in(page, live_server, gp.username)
    page.goto(f"{live_server.url}/patients/new/")
    page.fill("#id_family_name", existing.family_name)
    page.fill("#id_given_name", existing.given_name)
    page.fill("#id_birth_date", existing.birth_date.isoformat())
    page.check("#id_sex_0")
    page.click("main button.primary")
    page.wait_for_selector("#duplicates-title")

    with page.expect_navigation():
        page.press("#id_given_name", "Enter")
    assert page.locator("#duplicates-title").is_visible()
    assert Patient.objects.filter(clinic=existing.clinic, family_name="Petrova").count() == 1


def test_keyboard_focus_shows_on_a_question_still_not_recorded(context_for, live_server):  # noqa: F811
    gp = gp_of("en", "dr_enter_focus")
    patient = patient_of(gp)
    page = context_for()
    log_in(page, live_server, gp.username)
    page.goto(f"{live_server.url}/patients/{patient.pk}/encounters/new/")
    first = page.locator("fieldset.red-flag").first
    unanswered = first.locator("input[value='']")
    assert unanswered.is_checked()
    unanswered.focus()
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Tab")  # focus arrives by keyboard, so :focus-visible applies
    outline = page.evaluate(
        "id => { const s = getComputedStyle(document.querySelector(`label[for='${id}']`));"
        " return [document.activeElement.id, s.outlineStyle, s.outlineWidth]; }",
        unanswered.get_attribute("id"),
    )
    assert outline == [unanswered.get_attribute("id"), "solid", "3px"]
