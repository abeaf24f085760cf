"""The GP's consultation in a real headless Chromium (Debian's /usr/bin/chromium, driven by Playwright).

Set SCREENSHOT_DIR to keep page images (docs/screenshots/ holds the committed ones).
"""

import os
import re
from datetime import date
from pathlib import Path

import pytest
from playwright import sync_api as playwright_api

from tests.cases import RED_FLAGS
from tests.factories import PASSWORD, MembershipFactory

# Playwright's sync API runs an event loop in this thread; the ORM calls the test itself makes are
# plain synchronous ones, so Django's guard against the ORM inside a loop does not apply.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = "/usr/bin/chromium"
pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
]
SHOTS = Path(os.environ["SCREENSHOT_DIR"]) if os.environ.get("SCREENSHOT_DIR") else None


@pytest.fixture(scope="module")  # per module: tests/test_browser_*.py use it too, one Playwright at a time
def browser():
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture(autouse=True)
def plain_static_files(settings):
    # The live server serves static files from the finders, which know the plain names only.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture(autouse=True)
def documents_render_in_process():
    # The live server runs in this process; with no worker here, render letters in-process as the
    # embedded default does (workers are exercised in test_celery_workers).
    from config.celery import app

    eager = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = eager


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, locale="en-GB")
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


def shot(page, name):
    if SHOTS:
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def log_in(page, live_server, username):
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("main button[type=submit]")  # not the header's language switch
    page.wait_for_url(f"{live_server.url}/")


def answer(page, code, value):
    """Click the Yes / No / Not recorded segment of a finding, as a GP would."""
    index = {"": 0, "yes": 1, "no": 2}[value]
    page.click(f"label[for=id_f_{code}_{index}]")


def test_a_gp_runs_a_whole_consultation_in_the_browser(page, live_server, db):
    gp = MembershipFactory(user__username="dr_sokolova").user
    log_in(page, live_server, gp.username)

    page.click("text=Register a patient")
    page.fill("#id_family_name", "Иванова")
    page.fill("#id_given_name", "Мария")
    page.fill("#id_birth_date", "1987-05-14")
    page.check("#id_sex_0")  # female
    page.fill("#id_identifier", "MRN-0042")
    page.click("button:has-text('Save')")
    page.wait_for_selector("h1:has-text('Иванова Мария')")

    page.click("text=New encounter")
    page.fill("#id_duration_days", "10")
    answer(page, "loc_lumbar", "yes")
    answer(page, "sx_urinary_frequency", "yes")
    answer(page, "ex_cva_tenderness", "yes")
    page.click("label[for=id_pregnant_2]")  # not pregnant
    # The live panel warns while the red-flag screen is incomplete, and the flags are visibly marked.
    page.wait_for_selector("#workup-panel .banner.routine")
    assert page.locator("#workup-panel").inner_text().count("Red-flag screen incomplete") == 1
    assert page.locator("fieldset.red-flag.unanswered").count() == len(RED_FLAGS)
    for code in RED_FLAGS:
        answer(page, code, "no")
    assert page.locator("fieldset.red-flag.unanswered").count() == 0
    # Locator waits run in Playwright's own world: the page's CSP allows no eval, and needs none.
    playwright_api.expect(page.locator("#workup-panel")).not_to_contain_text("Red-flag screen incomplete")
    panel = page.locator("#workup-panel").inner_text()
    assert "Nechiporenko urine test" in panel and "Nephrology" in panel
    shot(page, "encounter-form")

    # Ticking saddle anaesthesia turns the panel into an emergency, without a page load.
    url_before = page.url
    answer(page, "rf_saddle_anesthesia", "yes")
    page.wait_for_selector("#workup-panel .banner.emergency")
    assert page.url == url_before
    assert "MRI of the lumbar spine" in page.locator("#workup-panel").inner_text()
    answer(page, "rf_saddle_anesthesia", "no")
    page.wait_for_selector("#workup-panel .banner.routine")

    page.click("button[name=show_workup]")
    page.wait_for_selector(".banner.routine")
    workup_url = page.url
    shot(page, "workup")

    # Accept one test; declining another needs a reason.
    urinalysis = page.locator("li.rec[data-code=lab_nechiporenko]")
    urinalysis.locator("button.accept").click()
    page.wait_for_selector("li.rec[data-code=lab_nechiporenko] .badge.decision-accepted")
    ultrasound = page.locator("li.rec[data-code=us_kidneys]")
    ultrasound.locator("button.decline").click()
    page.wait_for_selector("li.rec[data-code=us_kidneys] .error")
    page.locator("li.rec[data-code=us_kidneys] input[name=reason]").fill("Done last week at the district hospital")
    page.locator("li.rec[data-code=us_kidneys] button.decline").click()
    page.wait_for_selector("li.rec[data-code=us_kidneys] .badge.decision-declined")

    # The accepted referral's letter: written, rendered (in-process here), downloadable.
    nephrology = page.locator("li.rec[data-specialty=nephrology]")
    nephrology.locator("button.accept").click()
    page.wait_for_selector("li.rec[data-specialty=nephrology] .badge.decision-accepted")
    page.reload()
    page.locator("li.rec[data-specialty=nephrology] button.letter").click()
    page.wait_for_selector("h1:has-text('Referral to Nephrology')")
    page.fill("#id_question", "Pyelonephritis or a stone?")
    page.click("button:has-text('Save and re-render')")
    download_link = page.wait_for_selector(".pdf-status[data-status=ready] a")
    pdf = page.request.get(f"{live_server.url}{download_link.get_attribute('href')}")
    assert pdf.headers["content-type"] == "application/pdf" and pdf.body().startswith(b"%PDF")
    shot(page, "referral")
    page.click("#issue")
    page.wait_for_selector("#confirm-issue")  # the letter is shown for confirmation first
    assert "Pyelonephritis or a stone?" in page.locator(".letter-preview").inner_text()
    page.click("#confirm-issue")
    page.wait_for_selector(".badge.finalized:has-text('issued')")

    page.goto(workup_url)
    page.click("#request-requisition")
    page.wait_for_selector("#documents .pdf-status[data-status=ready] a:has-text('Requisition (PDF)')")

    page.click("#finalize")
    page.click("#confirm-finalize")
    page.wait_for_selector(".badge.finalized")
    assert page.locator("button.accept").count() == 0
    page.goto(page.url.replace("/workup/", "/workup/print/"))
    assert "Done last week at the district hospital" in page.content()
    shot(page, "print")

    page.goto(f"{live_server.url}/")
    page.fill("input[name=q]", "иван")
    page.wait_for_selector("#results a:has-text('Иванова Мария')")
    shot(page, "patients")


def test_a_gp_of_another_clinic_cannot_see_the_patient(page, live_server, db):
    from clinic.audit import Actor
    from clinic.services import patient_create

    gp = MembershipFactory(user__username="dr_one").user
    other = MembershipFactory(user__username="dr_two").user
    patient = patient_create(
        actor=Actor(user=gp, clinic=gp.membership.clinic, channel="web"),
        given_name="Пётр",
        family_name="Смирнов",
        birth_date=date(1970, 1, 1),
        sex="male",
    )
    log_in(page, live_server, other.username)
    response = page.goto(f"{live_server.url}/patients/{patient.pk}/")
    assert response.status == 404
    assert "Смирнов" not in page.content()
    page.goto(f"{live_server.url}/")
    page.fill("input[name=q]", "смир")
    page.wait_for_selector("#results:has-text('No patient matches')")


def test_an_invalid_field_keeps_everything_else_entered(page, live_server, db):
    from clinic.audit import Actor
    from clinic.services import patient_create

    gp = MembershipFactory(user__username="dr_three").user
    patient = patient_create(
        actor=Actor(user=gp, clinic=gp.membership.clinic, channel="web"),
        given_name="Олег",
        family_name="Кузнецов",
        birth_date=date(1980, 2, 2),
        sex="male",
    )
    log_in(page, live_server, gp.username)
    page.goto(f"{live_server.url}/patients/{patient.pk}/encounters/new/")
    assert page.locator("#id_pregnant_1").count() == 0  # pregnancy is not asked of a man
    assert page.locator("#id_f_sx_missed_period_1").count() == 0
    page.fill("#id_duration_days", "-5")
    answer(page, "loc_interscapular", "yes")
    answer(page, "sx_cough", "yes")
    page.fill("#id_temperature_c", "38.6")
    page.click("button[name=save]")
    page.wait_for_selector(".banner-error")
    assert page.locator("#id_f_loc_interscapular_1").is_checked()
    assert page.locator("#id_f_sx_cough_1").is_checked()
    assert page.input_value("#id_temperature_c") == "38.6"
    assert re.search(r"greater than or equal to 0", page.content())
