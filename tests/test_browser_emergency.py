"""The emergency path in a real browser (Chromium), in Russian and English: on an emergency workup one button
accepts the emergency workup, drafts its letter and asks for the leaflet; the GP lands on the letter's confirmation
page, issues it, and is back on the workup's checklist with the letter's and the leaflet's PDFs. axe-core finds no
accessibility violation on the workup page with the button, on the confirmation page it leads to, nor on the
checklist the GP returns to."""

import os

import pytest

from referrals.models import Leaflet, Referral
from tests.record_factories import encounter_of, screened, workup_for
from tests.test_browser import browser, documents_render_in_process, plain_static_files  # noqa: F401 (fixtures)
from tests.test_browser_consultation import context_for, gp_of, log_in, no_axe_violations  # noqa: F401

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CAUDA_EQUINA = {"loc_lumbar": True, "rf_saddle_anesthesia": True, "rf_bladder_dysfunction": True}


@pytest.mark.parametrize("language", ["ru", "en"])
def test_a_gp_sends_the_patient_to_hospital_in_two_clicks(context_for, live_server, language):  # noqa: F811
    gp = gp_of(language, f"dr_emergency_{language}")
    encounter = encounter_of(gp, findings=screened(CAUDA_EQUINA))
    workup_for(gp, encounter)
    page = context_for(locale="ru-RU" if language == "ru" else "en-GB")
    log_in(page, live_server, gp.username)

    page.goto(f"{live_server.url}/encounters/{encounter.pk}/workup/")
    page.wait_for_selector(".banner.emergency")
    no_axe_violations(page, f"emergency workup with the one-step button ({language})")
    page.click("#emergency-documents")
    page.wait_for_selector("#confirm-issue")
    no_axe_violations(page, f"the emergency letter's confirmation ({language})")
    page.click("#confirm-issue")
    # Issued, the GP is back on the workup at the checklist of what is left: the letter's and the leaflet's PDFs
    # to hand over, then finalizing.
    page.wait_for_selector("#emergency-status .badge.finalized")
    assert page.url.endswith(f"/encounters/{encounter.pk}/workup/#emergency-status")
    letter = Referral.objects.get(encounter=encounter)
    assert (letter.status, letter.urgency) == ("issued", "emergency")
    page.wait_for_selector(f"#emergency-status .pdf-status[data-status=ready] a[href='/referrals/{letter.pk}/pdf/']")
    page.wait_for_selector("#emergency-status .pdf-status[data-status=ready] a[href$='/leaflet/pdf/']")
    assert page.locator(f"#emergency-status a[href='/referrals/{letter.pk}/issue/']").count() == 0
    assert page.locator(f"#emergency-status a[href='/encounters/{encounter.pk}/finalize/']").is_visible()
    assert page.locator("#accept-all").count() == 0
    no_axe_violations(page, f"the emergency checklist after issuing ({language})")

    page.goto(f"{live_server.url}/encounters/{encounter.pk}/workup/")
    page.wait_for_selector("#documents .pdf-status[data-status=ready] a[href$='/leaflet/pdf/']")
    assert Leaflet.objects.filter(encounter=encounter).count() == 1
    # Everything is done: the button is gone, so a second press cannot ask for a second leaflet.
    assert page.locator("#emergency-documents").count() == 0
