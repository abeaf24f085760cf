"""The whole consultation in a real browser, in Russian and in English, with the safety fixes: issuing
saves the typed question and asks for confirmation with a preview; finalizing lists what is unfinished
and an untouched emergency needs a reason; axe-core finds no accessibility violation on any page; on a
phone (375 px) no page scrolls sideways and the disposition stays in sight.

SCREENSHOT_DIR=docs/screenshots keeps images of the Russian interface (ru-*.png).
"""

import os
import re
from pathlib import Path

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright import sync_api as playwright_api

from tests.cases import RED_FLAGS
from tests.factories import PASSWORD, ClinicFactory, MembershipFactory
from tests.record_factories import encounter_of, screened, workup_for
from tests.test_browser import (  # noqa: F401  (fixtures)
    answer,
    browser,
    documents_render_in_process,
    plain_static_files,
)

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SHOTS = Path(os.environ["SCREENSHOT_DIR"]) if os.environ.get("SCREENSHOT_DIR") else None
AXE = Axe()
PHONE = {"width": 375, "height": 740}


def shot(page, name, *, full_page=True):
    if SHOTS:
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=full_page)


def no_axe_violations(page, where):
    violations = AXE.run(page).response["violations"]
    report = [
        f"{v['id']} ({v['impact']}): {v['help']} — "
        + "; ".join(n["target"][0] if isinstance(n["target"][0], str) else str(n["target"]) for n in v["nodes"][:5])
        for v in violations
    ]
    assert not report, f"{where}: " + "\n".join(report)


def no_sideways_scroll(page, where):
    widths = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], f"{where}: scrollWidth {widths[0]} > innerWidth {widths[1]}"


def menu_on_one_row(page, where):
    # On a desktop the main menu is one row of links: squeezed by the GP's name and clinic, it once stacked
    # them one under another (and would wrap a long Russian link into two lines).
    tops = page.evaluate(
        "[...document.querySelectorAll('header nav a')]"
        ".map(a => a.getClientRects().length === 1 ? a.getBoundingClientRect().top : -1)"
    )
    assert len(tops) == 4 and len(set(tops)) == 1 and tops[0] >= 0, f"{where}: menu links' tops {tops}"


@pytest.fixture
def context_for(browser):  # noqa: F811
    contexts = []

    def make(*, viewport=None, locale="en-GB"):
        context = browser.new_context(viewport=viewport or {"width": 1280, "height": 900}, locale=locale)
        context.set_default_timeout(15_000)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


def log_in(page, live_server, username):
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")


def gp_of(language, username):
    return MembershipFactory(clinic=ClinicFactory(language=language), user__username=username).user


@pytest.mark.parametrize("language", ["ru", "en"])
def test_a_whole_consultation_with_issue_confirmation_and_finalize_checklist(context_for, live_server, language):
    from referrals.models import Referral

    russian = language == "ru"
    # A Russian clinic (its letters in Russian, on form 057/у) and a browser asking for Russian, or English.
    gp = gp_of(language, f"dr_{language}")
    page = context_for(locale="ru-RU" if russian else "en-GB")
    # Before login: the login page in the browser's language.
    page.goto(f"{live_server.url}/accounts/login/")
    assert page.get_attribute("html", "lang") == language
    no_axe_violations(page, f"login ({language})")
    log_in(page, live_server, gp.username)
    assert page.get_attribute("html", "lang") == language
    no_axe_violations(page, f"patient list ({language})")
    menu_on_one_row(page, f"patient list ({language})")

    page.click("main a.button.primary")  # register a patient
    no_axe_violations(page, f"registration ({language})")
    page.fill("#id_family_name", "Иванова")
    page.fill("#id_given_name", "Мария")
    page.fill("#id_birth_date", "1987-05-14")
    page.check("#id_sex_0")
    page.click("main button.primary")
    page.wait_for_selector("h1:has-text('Иванова Мария')")
    no_axe_violations(page, f"patient page ({language})")

    page.click("main a.button.primary")  # new encounter
    page.fill("#id_duration_days", "10")
    answer(page, "loc_lumbar", "yes")
    answer(page, "sx_urinary_frequency", "yes")
    answer(page, "ex_cva_tenderness", "yes")
    page.click("label[for=id_pregnant_2]")
    page.fill("#id_temperature_c", "37,4" if russian else "37.4")
    answer(page, "rf_fever", "no")
    # The subfebrile temperature against the No to fever shows beside the answer, live.
    note = page.wait_for_selector("#subfebrile-note .mismatch")
    assert ("субфебрилитет" if russian else "subfebrile temperature") in note.inner_text()
    # One action answers every remaining red flag No; each is a visible, recorded answer.
    assert page.locator("fieldset.red-flag.unanswered").count() == len(RED_FLAGS) - 1
    page.click("#red-flags-no")
    assert page.locator("fieldset.red-flag.unanswered").count() == 0
    for code in RED_FLAGS:
        assert page.is_checked(f"#id_f_{code}_2"), code
    # Locator waits run in Playwright's own world: the page's CSP allows no eval, and needs none.
    playwright_api.expect(page.locator("#workup-panel [data-warning=red_flags_not_screened]")).to_have_count(0)
    page.wait_for_selector("#workup-panel .banner.routine")
    playwright_api.expect(page.locator("#disposition-live")).not_to_have_text(re.compile(r"^\s*$"))
    no_axe_violations(page, f"encounter form ({language})")
    if russian:
        shot(page, "ru-encounter-form")

    page.click("button[name=show_workup]")
    page.wait_for_selector("#accept-all")
    no_axe_violations(page, f"workup page ({language})")
    if russian:
        shot(page, "ru-workup")
    page.click("#accept-all")
    page.wait_for_selector(".messages li.success")
    assert page.locator("#accept-all").count() == 0
    assert page.locator(".badge.decision-pending").count() == 0

    page.locator("li.rec[data-specialty=nephrology] button.letter").click()
    page.wait_for_selector("#letter-form")
    for name in ("icd10", "diagnosis", "language", "question"):
        assert page.locator(f"#id_{name}").count() == 1, name
    no_axe_violations(page, f"referral letter page ({language})")
    # The question is typed and Issue pressed without saving first: it is saved, shown, then issued.
    question = "Пиелонефрит или конкремент?" if russian else "Pyelonephritis or a stone?"
    page.fill("#id_question", question)
    page.click("#issue")
    page.wait_for_selector("#confirm-issue")
    preview = page.locator(".letter-preview").inner_text()
    assert question in preview and "N" in preview  # the question, and the diagnosis with its ICD-10 code
    page.wait_for_selector(".pdf-status[data-status=ready]")
    no_axe_violations(page, f"issue confirmation ({language})")
    if russian:
        shot(page, "ru-referral-preview")
    page.click("#confirm-issue")
    page.wait_for_selector("h1 .badge.finalized")
    referral = Referral.objects.get(encounter__patient__family_name="Иванова", specialty="nephrology", created_by=gp)
    assert referral.status == "issued" and referral.question == question

    page.goto(page.url.split("/referrals/")[0] + f"/encounters/{referral.encounter_id}/referrals/new/")
    no_axe_violations(page, f"by-hand referral page ({language})")
    page.goto(f"{live_server.url}/encounters/{referral.encounter_id}/workup/print/")
    no_axe_violations(page, f"print view ({language})")
    assert ("субфебрилитет" if russian else "subfebrile temperature") in page.content()

    page.goto(f"{live_server.url}/encounters/{referral.encounter_id}/workup/")
    page.click("#finalize")
    page.wait_for_selector("#confirm-finalize")
    no_axe_violations(page, f"finalize confirmation ({language})")
    if russian:
        shot(page, "ru-finalize")
    page.click("#confirm-finalize")
    page.wait_for_selector("h1 .badge.finalized")
    page.goto(f"{live_server.url}/encounters/{referral.encounter_id}/")
    no_axe_violations(page, f"finalized encounter page ({language})")
    page.goto(f"{live_server.url}/referrals/{referral.pk}/")
    assert page.locator("#letter-form").count() == 0

    page.goto(f"{live_server.url}/")
    if russian:
        shot(page, "ru-patients")


@pytest.mark.parametrize("language", ["ru", "en"])
def test_finalizing_an_untouched_emergency_lists_it_and_needs_a_reason(context_for, live_server, language):
    gp = gp_of(language, f"dr_emergency_{language}")
    encounter = encounter_of(gp, findings={"loc_lumbar": True, "rf_saddle_anesthesia": True})  # others not asked
    workup_for(gp, encounter)
    page = context_for(locale="ru-RU" if language == "ru" else "en-GB")
    log_in(page, live_server, gp.username)
    page.goto(f"{live_server.url}/encounters/{encounter.pk}/workup/")
    page.click("#finalize")
    assert page.locator("[data-unfinished=pending_urgent] .badge.emergency").count() >= 1
    assert page.locator("[data-unfinished=red_flags_not_asked] li").count() == len(RED_FLAGS) - 1
    assert page.get_attribute("#id_reason", "required") is not None
    page.evaluate("document.getElementById('id_reason').removeAttribute('required')")  # as if the browser let it by
    page.click("#confirm-finalize")
    page.wait_for_selector("[data-error-summary]")
    assert page.evaluate("document.activeElement.id") == "id_reason"  # the first bad field is focused
    encounter.refresh_from_db()
    assert not encounter.is_finalized
    no_axe_violations(page, f"finalize with an error ({language})")
    page.fill("#id_reason", "Отправлена бригадой СМП в нейрохирургию" if language == "ru" else "Sent by ambulance")
    page.click("#confirm-finalize")
    page.wait_for_selector("h1 .badge.finalized")
    encounter.refresh_from_db()
    assert encounter.is_finalized and encounter.finalize_reason


def test_the_error_summary_links_to_and_focuses_the_first_bad_field(context_for, live_server):
    gp = gp_of("en", "dr_errors")
    patient = encounter_of(gp).patient
    page = context_for()
    log_in(page, live_server, gp.username)
    page.goto(f"{live_server.url}/patients/{patient.pk}/encounters/new/")
    page.fill("#id_duration_days", "-5")
    page.click("button[name=save]")
    page.wait_for_selector("[data-error-summary]")
    assert page.locator("#location-error").count() == 1  # the missing location, on the first submit
    assert page.evaluate("document.activeElement.id").startswith("id_f_loc_")
    page.click("[data-error-summary] a[href='#id_duration_days']")
    assert page.evaluate("document.activeElement.id") == "id_duration_days"


def test_leaving_a_form_with_unsaved_findings_asks_first_and_saving_does_not(context_for, live_server):
    gp = gp_of("en", "dr_unsaved")
    patient = encounter_of(gp).patient
    page = context_for()
    log_in(page, live_server, gp.username)
    asked = []

    def stay(dialog):  # the GP answers "stay on the page"
        asked.append(dialog.type)
        dialog.dismiss()

    page.on("dialog", stay)
    new_encounter = f"{live_server.url}/patients/{patient.pk}/encounters/new/"
    page.goto(new_encounter)
    page.goto(f"{live_server.url}/")  # nothing typed yet: it leaves without a question
    assert asked == [] and page.url == f"{live_server.url}/"

    page.goto(new_encounter)
    page.fill("#id_duration_days", "12")
    page.click("header a.brand")
    assert asked == ["beforeunload"]
    assert page.url == new_encounter and page.input_value("#id_duration_days") == "12"

    page.check("#id_f_loc_lumbar_0")
    with page.expect_navigation():
        page.click("button[name=save]")
    assert asked == ["beforeunload"]  # saving did not ask


@pytest.mark.parametrize("language", ["ru", "en"])
def test_the_error_pages_pass_axe_in_both_languages(context_for, live_server, language):
    from django.test import RequestFactory
    from django.utils import translation
    from django.views.defaults import server_error

    from config.errors import bad_request

    gp = gp_of(language, f"dr_errors_{language}")
    page = context_for(locale="ru-RU" if language == "ru" else "en-GB")
    log_in(page, live_server, gp.username)
    russian = language == "ru"
    page.goto(f"{live_server.url}/patients/999999/")
    assert page.inner_text("main h1") == ("Страница не найдена" if russian else "Page not found")
    assert page.get_attribute("html", "lang") == language
    no_axe_violations(page, f"404 ({language})")
    # A form sent without its CSRF cookie (one that expired, or cookies refused) gets the CSRF failure page.
    page.context.clear_cookies()
    page.goto(f"{live_server.url}/accounts/login/")
    page.context.clear_cookies()
    page.fill("input[name=username]", gp.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("main button[type=submit]")
    assert page.inner_text("main h1") == ("Форма устарела" if russian else "The form has expired")
    assert page.get_attribute("html", "lang") == language
    no_axe_violations(page, f"CSRF failure ({language})")
    # The server error page as Django renders it (no context), shown from the app's origin so that
    # its stylesheet loads as it would.
    with translation.override(language):
        html = server_error(RequestFactory().get("/")).content.decode()
    page.set_content(html)
    assert page.inner_text("main h1") == ("Произошла ошибка" if russian else "Something went wrong")
    assert page.get_attribute("html", "lang") == language
    no_axe_violations(page, f"server error ({language})")
    # The bad request page (a form the app cannot read), rendered as the handler renders it.
    with translation.override(language):
        html = bad_request(RequestFactory().get("/"), None).content.decode()
    page.set_content(html)
    assert page.inner_text("main h1") == ("Не удалось прочитать запрос" if russian else "The request could not be read")
    assert page.get_attribute("html", "lang") == language
    no_axe_violations(page, f"bad request ({language})")


def test_the_skip_link_moves_to_the_content(context_for, live_server):
    gp = gp_of("en", "dr_keyboard")
    page = context_for()
    log_in(page, live_server, gp.username)
    page.goto(f"{live_server.url}/patients/new/")  # a page without an autofocused field
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip-link"
    assert page.locator(".skip-link").bounding_box()["y"] >= 0  # shown when focused
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"


def test_on_a_phone_nothing_scrolls_sideways_and_the_disposition_stays_in_sight(context_for, live_server):
    from referrals import services as referral_services
    from tests.record_factories import actor_for

    gp = gp_of("ru", "dr_phone")
    encounter = encounter_of(gp, findings=screened({"loc_lumbar": True, "sx_urinary_frequency": True}))
    workup = workup_for(gp, encounter)
    letter = referral_services.referral_create(
        actor=actor_for(gp, channel="web"),
        encounter=encounter,
        specialty="neurology",
        urgency="urgent",
        reason="Онемение",
    )
    # Rows in the worklist and the results table: accepted tests awaited, and an abnormal result to sign off.
    from workups.models import Decision
    from workups.services import recommendation_decide, result_enter

    for row in workup.items.all():
        recommendation_decide(actor=actor_for(gp), recommendation=row, decision=Decision.ACCEPTED)
    result_enter(actor=actor_for(gp), encounter=encounter, code="res_nech_leukocytes", value=6500)
    page = context_for(viewport=PHONE, locale="ru-RU")
    page.goto(f"{live_server.url}/accounts/login/")
    no_sideways_scroll(page, "login")
    log_in(page, live_server, gp.username)
    pages = [
        "/",
        "/patients/new/",
        f"/patients/{encounter.patient_id}/",
        f"/patients/{encounter.patient_id}/encounters/new/",
        f"/encounters/{encounter.pk}/",
        f"/encounters/{encounter.pk}/workup/",
        f"/referrals/{letter.pk}/",
        f"/referrals/{letter.pk}/issue/",
        f"/encounters/{encounter.pk}/referrals/new/",
        f"/encounters/{encounter.pk}/finalize/",
        f"/encounters/{encounter.pk}/workup/print/",
        "/worklist/",
    ]
    for url in pages:
        page.goto(f"{live_server.url}{url}")
        page.wait_for_load_state("networkidle")
        no_sideways_scroll(page, url)
        # A one-word column header stays one word on one line (the print view broke "Ср/оч/но/сть" into letters).
        broken = page.evaluate(
            "[...document.querySelectorAll('th')]"
            ".filter(th => th.innerText.trim() && !/\\s/.test(th.innerText.trim()))"
            ".filter(th => !th.querySelector('.visually-hidden'))"
            ".filter(th => { const r = document.createRange(); r.selectNodeContents(th);"
            " return r.getClientRects().length > 1; })"
            ".map(th => th.innerText)"
        )
        assert not broken, f"{url}: headers broken across lines: {broken}"
    assert workup.items.exists()
    # The header leaves the phone's screen to the record (it took 162 of 740 px): the menu, the language and the
    # account's links in at most 100 px, every menu link and logging out still there.
    page.goto(f"{live_server.url}/")
    assert page.locator("header.topbar").bounding_box()["height"] <= 100
    for link in ("nav a[href='/']", "#nav-worklist", ".who button[type=submit]"):
        assert page.locator(f"header.topbar {link}").is_visible(), link
    # The list's own «Register a patient» button is right below: the header's would be the same link twice.
    assert page.locator("main a[href='/patients/new/']").is_visible()
    assert not page.locator("header.topbar nav a[href='/patients/new/']").is_visible()
    page.goto(f"{live_server.url}/worklist/")
    assert page.locator("header.topbar nav a[href='/patients/new/']").is_visible()

    page.goto(f"{live_server.url}/patients/{encounter.patient_id}/encounters/new/")
    page.fill("#id_duration_days", "2")
    answer(page, "loc_lumbar", "yes")
    answer(page, "rf_saddle_anesthesia", "yes")
    page.wait_for_selector("#disposition-live[data-disposition=emergency]")
    page.locator("#id_f_rf_night_pain_2").scroll_into_view_if_needed()  # deep in the form
    strip = page.locator("#disposition-live")
    box = strip.bounding_box()
    assert strip.is_visible() and 0 <= box["y"] <= 5 and box["width"] > 300  # stuck to the top of the screen
    no_sideways_scroll(page, "encounter form with an emergency")
    sizes = page.evaluate("[...document.querySelectorAll('.tri label')].map(l => [l.offsetWidth, l.offsetHeight])")
    assert sizes and min(min(size) for size in sizes) >= 44, "a yes/no answer is smaller than a fingertip (44 px)"
    shot(page, "ru-phone-encounter-form", full_page=False)
