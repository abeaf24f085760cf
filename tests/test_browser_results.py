"""Closing the loop in a real browser (Chromium), in Russian and English: results entered after
finalizing and flagged as they are typed (an implausible value refused inline), the review with results
beside the first workup, a follow-up item accepted, an abnormal result acknowledged, and the worklist
badge in the navigation falling; referral tracking; axe-core finds no violation on the new pages.

SCREENSHOT_DIR=docs/screenshots keeps ru-worklist.png (1280 px wide).
"""

import datetime
import os

import pytest
from django.utils import timezone

from referrals import services as referral_services
from tests.record_factories import (
    URINARY,
    accept_tests,
    actor_for,
    api_client_for,
    encounter_of,
    patient_of,
    screened,
    workup_for,
)
from tests.test_browser import browser, documents_render_in_process, plain_static_files  # noqa: F401 (fixtures)
from tests.test_browser_consultation import context_for, gp_of, log_in, no_axe_violations, shot  # noqa: F401
from workups.models import Decision
from workups.services import recommendation_decide

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def finalized_with_letter(gp):
    """A woman with lumbar numbness and urinary symptoms seen two days ago: every recommendation
    accepted, a referral to neurology issued, the encounter finalized."""
    patient = patient_of(gp, family_name="Иванова", given_name="Мария", birth_date=datetime.date(1987, 5, 14))
    encounter = encounter_of(
        gp, patient=patient, findings=screened(URINARY), visit_date=timezone.localdate() - datetime.timedelta(days=2)
    )
    workup = workup_for(gp, encounter)
    actor = actor_for(gp)
    for row in [*workup.items.all(), *workup.referrals.all()]:
        recommendation_decide(actor=actor, recommendation=row, decision=Decision.ACCEPTED)
    referral = referral_services.referral_create(
        actor=actor, encounter=encounter, specialty="neurology", urgency="routine", reason="Numbness"
    )
    referral = referral_services.referral_issue(actor=actor, referral=referral)
    assert api_client_for(gp).post(f"/api/v1/encounters/{encounter.pk}/finalize/", format="json").status_code == 200
    return encounter, referral


def badge(page):
    """The navigation badge's count, once htmx has loaded it."""
    page.wait_for_selector("#worklist-badge[data-loaded]", state="attached")
    locator = page.locator("#worklist-count")
    return int(locator.get_attribute("data-count")) if locator.count() else 0


@pytest.mark.parametrize("language", ["ru", "en"])
def test_results_after_finalizing_review_acknowledge_and_the_badge_falls(context_for, live_server, language):  # noqa: F811 (the fixture)
    russian = language == "ru"
    gp = gp_of(language, f"dr_results_{language}")
    encounter, referral = finalized_with_letter(gp)
    page = context_for(locale="ru-RU" if russian else "en-GB")
    log_in(page, live_server, gp.username)
    assert badge(page) == 0  # nothing overdue or unacknowledged yet

    page.goto(f"{live_server.url}/encounters/{encounter.pk}/workup/")
    panel = page.locator("#results")
    assert panel.locator("form#test-lab_nechiporenko").count() == 1
    # Flagged as typed: a high Nechiporenko leukocyte count, with its reference.
    page.fill("#value-lab_nechiporenko-res_nech_leukocytes", "5000")
    page.wait_for_selector("#flag-lab_nechiporenko-res_nech_leukocytes [data-flag=high]")
    assert "2000" in page.inner_text("#flag-lab_nechiporenko-res_nech_leukocytes")
    # A haemoglobin of 13.2 (g/dL typed into g/L) is refused inline, not flagged.
    page.fill("#value-lab_cbc-res_hemoglobin", "13,2" if russian else "13.2")
    page.wait_for_selector("#flag-lab_cbc-res_hemoglobin [data-refused]")
    assert ("невозможное значение" if russian else "check the unit") in page.inner_text("#flag-lab_cbc-res_hemoglobin")
    no_axe_violations(page, f"results panel while typing ({language})")
    # A true/false analyte is a radio button; positive nitrite is flagged.
    page.check("#test-lab_urinalysis input[name=res_ua_nitrite][value=true]")
    page.wait_for_selector("#flag-lab_urinalysis-res_ua_nitrite [data-flag=positive]")

    page.click("#test-lab_urinalysis button[type=submit]")
    page.wait_for_selector(".results-table tr[data-code=res_ua_nitrite].abnormal")
    page.fill("#value-lab_nechiporenko-res_nech_leukocytes", "5000")
    page.click("#test-lab_nechiporenko button[type=submit]")
    page.wait_for_selector(".results-table tr[data-code=res_nech_leukocytes].abnormal")
    assert badge(page) == 2  # two abnormal results not acknowledged
    row = page.locator(".results-table tr[data-code=res_nech_leukocytes]")
    assert "▲" in row.inner_text() and row.locator("form.acknowledge").count() == 1
    no_axe_violations(page, f"workup page with results ({language})")
    # Both at once, refused without a note: the ticks stay, the note is in focus with its error.
    several = page.locator("form#acknowledge-selected")
    assert several.locator("input[type=checkbox]:checked").count() == 0  # none until the GP says which
    several.locator("[data-select-all]").click()
    assert several.locator("input[type=checkbox]:checked").count() == 2
    several.locator("button[type=submit]").click()
    page.wait_for_selector("#ack-selected-note-error")
    assert page.evaluate("document.activeElement.id") == "ack-selected-note"
    assert page.locator("form#acknowledge-selected input[type=checkbox]:checked").count() == 2
    no_axe_violations(page, f"acknowledging several results, refused ({language})")

    # Review with results: the follow-up beside the first workup; a new row accepted.
    page.click("#review-with-results")
    page.wait_for_selector(".follow-up-workup")
    assert page.locator(".first-workup").count() == 1
    no_axe_violations(page, f"review with results ({language})")
    if russian:
        shot(page, "ru-review")
    new_row = page.locator(".follow-up-workup li.rec:has(.badge.new)").first
    assert new_row.count() == 1, "the results bring something new"
    new_row.locator("button.accept").click()
    page.wait_for_selector(".follow-up-workup li.rec:has(.badge.new) .badge.decision-accepted")

    # Acknowledge both abnormal results; the badge falls to zero.
    page.goto(f"{live_server.url}/encounters/{encounter.pk}/workup/#results")
    page.click(".results-table tr[data-code=res_nech_leukocytes] form.acknowledge button")  # without a note
    page.wait_for_selector(".results-table tr[data-code=res_nech_leukocytes] form.acknowledge .error")
    assert badge(page) == 2
    for code, note in (("res_nech_leukocytes", "Urine culture requested"), ("res_ua_nitrite", "Antibiotic started")):
        form = page.locator(f".results-table tr[data-code={code}] form.acknowledge")
        form.locator("textarea").fill(note)
        form.locator("button").click()
        page.wait_for_selector(f".results-table tr[data-code={code}] .badge.decision-accepted")
        if code == "res_nech_leukocytes":
            assert badge(page) == 1
    assert badge(page) == 0

    # Referral tracking: book, then an impossible transition is refused with a message.
    page.goto(f"{live_server.url}/referrals/{referral.pk}/")
    page.fill("#appointment-booked", "2030-05-06T10:30")
    page.click("#track-booked button")
    page.wait_for_selector("#tracking li[data-status=booked]")
    no_axe_violations(page, f"referral tracking ({language})")
    page.fill("#close-reason", "Prefers to wait")
    page.check("#track-closed input[value=declined_by_patient]")
    page.click("#track-closed button")
    page.wait_for_selector("#tracking li[data-status=declined_by_patient]")

    page.goto(f"{live_server.url}/worklist/")
    page.wait_for_selector("#worklist-awaited")
    no_axe_violations(page, f"worklist ({language})")


def test_the_worklist_in_russian_screenshot(context_for, live_server):  # noqa: F811 (the fixture)
    gp = gp_of("ru", "dr_worklist")
    encounter, _ = finalized_with_letter(gp)
    from workups.services import result_enter

    result_enter(actor=actor_for(gp), encounter=encounter, code="res_hemoglobin", value=96)
    other = encounter_of(
        gp, patient=patient_of(gp, family_name="Петров", given_name="Сергей", sex="male"), findings=screened(URINARY)
    )
    workup = workup_for(gp, other)
    accept_tests(gp, workup, at=timezone.now() - datetime.timedelta(days=30))
    page = context_for(locale="ru-RU", viewport={"width": 1280, "height": 900})
    log_in(page, live_server, gp.username)
    page.goto(f"{live_server.url}/worklist/")
    page.wait_for_selector("#worklist-unacknowledged tr[data-kind=result]")
    assert page.locator("tr.overdue").count() >= 1 and page.locator(".badge.overdue").count() >= 1
    assert badge(page) >= 6
    dates = page.locator("table.worklist time").all_inner_texts()
    assert dates and all(len(text) == 10 and text[2] == "." and text[5] == "." for text in dates)
    no_axe_violations(page, "worklist (ru)")
    shot(page, "ru-worklist")
