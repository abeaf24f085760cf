"""Usability defects that put patients at risk, fixed in the browser pages (no browser needed here):
issuing saves what was typed and asks for confirmation; finalizing lists what is unfinished and needs a
reason for an untouched emergency; a subfebrile temperature against a No to fever is shown; "not
recorded" and "no" differ; "all remaining red flags: no"; accept all; the error summary."""

import re

import pytest

from clinic.models import Encounter
from referrals import services as referral_services
from referrals.models import Referral
from tests.record_factories import actor_for, encounter_of, patient_of, screened, workup_for
from workups.models import Decision
from workups.services import recommendation_decide

CAUDA_EQUINA = {"loc_lumbar": True, "rf_saddle_anesthesia": True, "rf_bladder_dysfunction": True}


def html(response):
    return response.content.decode()


@pytest.fixture
def letter(gp):
    encounter = encounter_of(gp)
    workup_for(gp, encounter)
    return referral_services.referral_create(
        actor=actor_for(gp, channel="web"),
        encounter=encounter,
        specialty="nephrology",
        urgency="urgent",
        reason="Loin pain and numbness",
    )


def letter_form(referral, **changes):
    return {
        "urgency": referral.urgency,
        "reason": referral.reason,
        "question": referral.question,
        "icd10": referral.icd10,
        "diagnosis": referral.diagnosis,
        "language": referral.language,
        **changes,
    }


# -- 1. issuing: saved first, previewed, confirmed -------------------------------------------------


def test_the_letter_form_has_the_icd10_diagnosis_and_language_fields(gp_web, letter):
    page = html(gp_web.get(f"/referrals/{letter.pk}/"))
    for name in ("urgency", "reason", "question", "icd10", "diagnosis", "language"):
        assert f'name="{name}"' in page, name
    assert 'name="issue"' in page and "confirm()" not in page


def test_issue_saves_the_typed_question_then_asks_for_confirmation_with_a_preview(gp_web, letter):
    response = gp_web.post(
        f"/referrals/{letter.pk}/",
        letter_form(letter, question="Stone or pyelonephritis?", icd10="N23", diagnosis="Renal colic", issue="1"),
    )
    assert response.status_code == 302 and response["Location"] == f"/referrals/{letter.pk}/issue/"
    letter.refresh_from_db()
    assert letter.question == "Stone or pyelonephritis?" and letter.status == "draft"  # saved, not yet issued
    assert (letter.icd10, letter.diagnosis) == ("N23", "Renal colic")

    confirm = html(gp_web.get(f"/referrals/{letter.pk}/issue/"))
    preview = confirm[confirm.index("letter-preview") :]
    assert "Stone or pyelonephritis?" in preview and "N23" in preview and "Renal colic" in preview
    assert "Loin pain and numbness" in preview and "Nephrolog" in preview
    assert 'id="confirm-issue"' in confirm and f'href="/referrals/{letter.pk}/"' in confirm  # back to editing

    generation = re.search(r'name="generation" value="(\d+)"', confirm).group(1)
    assert gp_web.post(f"/referrals/{letter.pk}/issue/", {"generation": generation}).status_code == 302
    letter.refresh_from_db()
    assert letter.status == "issued" and letter.question == "Stone or pyelonephritis?"


def test_a_letter_changed_since_its_preview_is_not_issued_unseen(gp_web, gp, letter):
    confirm = html(gp_web.get(f"/referrals/{letter.pk}/issue/"))
    generation = re.search(r'name="generation" value="(\d+)"', confirm).group(1)
    referral_services.referral_update(actor=actor_for(gp, channel="web"), referral=letter, question="Changed")
    response = gp_web.post(f"/referrals/{letter.pk}/issue/", {"generation": generation}, follow=True)
    letter.refresh_from_db()
    assert letter.status == "draft" and "changed since you saw it" in html(response)


def test_issue_with_a_bad_field_shows_the_problem_and_does_not_go_on(gp_web, letter):
    response = gp_web.post(f"/referrals/{letter.pk}/", letter_form(letter, reason="", question="Kept", issue="1"))
    page = html(response)
    assert response.status_code == 200 and 'href="#id_reason"' in page and "Kept" in page
    letter.refresh_from_db()
    assert letter.status == "draft" and letter.question == ""


# -- 2. finalizing: the checklist, the reason, and read-only letters afterwards --------------------


def test_finalize_lists_what_is_unfinished_and_an_untouched_emergency_needs_a_reason(gp_web, gp):
    encounter = encounter_of(gp, findings={"loc_lumbar": True, "rf_saddle_anesthesia": True})  # others not asked
    workup_for(gp, encounter)
    page = html(gp_web.get(f"/encounters/{encounter.pk}/finalize/"))
    assert 'data-unfinished="pending_urgent"' in page and 'data-unfinished="red_flags_not_asked"' in page
    assert 'name="reason"' in page and "required" in page

    refused = gp_web.post(f"/encounters/{encounter.pk}/finalize/", {"reason": "  "})
    encounter.refresh_from_db()
    assert refused.status_code == 200 and not encounter.is_finalized
    assert 'href="#id_reason"' in html(refused) and 'aria-invalid="true"' in html(refused)

    done = gp_web.post(f"/encounters/{encounter.pk}/finalize/", {"reason": "Sent by ambulance"})
    encounter.refresh_from_db()
    assert done.status_code == 302 and encounter.is_finalized and encounter.finalize_reason == "Sent by ambulance"
    assert "Sent by ambulance" in html(gp_web.get(f"/encounters/{encounter.pk}/"))


def test_finalize_lists_referrals_without_a_letter_and_draft_letters(gp_web, gp):
    encounter = encounter_of(gp)
    workup = workup_for(gp, encounter)
    actor = actor_for(gp)
    rows = list(workup.referrals.all())
    for row in rows:
        recommendation_decide(actor=actor, recommendation=row, decision=Decision.ACCEPTED)
    draft = referral_services.referral_create(actor=actor, encounter=encounter, recommendation=rows[0])
    page = html(gp_web.get(f"/encounters/{encounter.pk}/finalize/"))
    assert 'data-unfinished="referrals_without_letter"' in page and 'data-unfinished="draft_letters"' in page
    assert f'href="/referrals/{draft.pk}/"' in page
    assert "required aria-required" not in page  # not an emergency: the reason is optional


def test_finalizing_an_encounter_never_evaluated_says_there_is_no_plan_yet_not_that_findings_changed(gp_web, gp):
    encounter = encounter_of(gp)
    page = html(gp_web.get(f"/encounters/{encounter.pk}/finalize/", HTTP_ACCEPT_LANGUAGE="en"))
    assert "No workup has been generated for this encounter yet" in page
    assert "The findings changed since" not in page

    workup_for(gp, encounter)
    encounter.findings = {**encounter.findings, "sx_leg_pain": True}
    encounter.save()
    page = html(gp_web.get(f"/encounters/{encounter.pk}/finalize/", HTTP_ACCEPT_LANGUAGE="en"))
    assert "The findings changed since the workup was generated" in page
    assert "No workup has been generated" not in page


def test_after_finalizing_letters_and_referrals_by_hand_are_read_only(gp_web, gp, letter):
    encounter = letter.encounter
    assert gp_web.post(f"/encounters/{encounter.pk}/finalize/", {}).status_code == 302
    page = html(gp_web.get(f"/referrals/{letter.pk}/"))
    assert 'name="question"' not in page and 'id="issue"' not in page and "finalized" in page
    by_hand = html(gp_web.get(f"/encounters/{encounter.pk}/referrals/new/"))
    assert 'name="specialty"' not in by_hand
    workup_page = html(gp_web.get(f"/encounters/{encounter.pk}/workup/"))
    assert "referrals/new/" not in workup_page and "accept-all" not in workup_page

    for url, data in (
        (f"/referrals/{letter.pk}/", letter_form(letter, question="late", save="1")),
        (f"/referrals/{letter.pk}/issue/", {"generation": str(letter.pdf_generation)}),
        (
            f"/encounters/{encounter.pk}/referrals/new/",
            {"specialty": "neurology", "urgency": "urgent", "reason": "late", "language": "en"},
        ),
    ):
        response = gp_web.post(url, data, follow=True)
        assert "can no longer be created, changed or issued" in html(response), url
    letter.refresh_from_db()
    assert letter.status == "draft" and letter.question == ""
    assert Referral.objects.filter(encounter=encounter).count() == 1


# -- 3. a subfebrile temperature against a No to fever ---------------------------------------------


def encounter_body(**values):
    body = {
        "visit_date": "2024-03-01",
        "duration_days": "3",
        **{f"f_{code}": "yes" if value else "no" for code, value in screened().items()},
    }
    body.update(values)
    return body


@pytest.mark.parametrize(
    ("temperature", "fever", "shown"),
    [
        ("37,4", "no", True),
        ("37.1", "no", True),
        ("37.9", "no", True),
        ("37.0", "no", False),
        ("38.2", "no", False),
        ("37.5", "", False),
    ],
)
def test_the_live_panel_shows_a_subfebrile_temperature_beside_a_no_to_fever(gp_web, gp, temperature, fever, shown):
    patient = patient_of(gp)
    panel = html(
        gp_web.post(
            f"/patients/{patient.pk}/encounters/preview/", encounter_body(temperature_c=temperature, f_rf_fever=fever)
        )
    )
    assert ('data-mismatch="subfebrile"' in panel) is shown
    assert 'id="subfebrile-note" hx-swap-oob="true"' in panel  # the note beside the answer follows the form


def test_the_form_and_the_record_show_it_in_russian(gp_web, gp):
    patient = patient_of(gp)
    form = html(
        gp_web.post(
            f"/patients/{patient.pk}/encounters/new/",
            encounter_body(temperature_c="37,6", duration_days="-1"),
            HTTP_ACCEPT_LANGUAGE="ru",
        )
    )
    assert "субфебрилитет" in form
    assert form.index("субфебрилитет") > form.index('name="f_rf_fever"')  # beside the fever answer
    assert (
        gp_web.post(
            f"/patients/{patient.pk}/encounters/new/", encounter_body(temperature_c="37,6"), HTTP_ACCEPT_LANGUAGE="ru"
        ).status_code
        == 302
    )
    encounter = Encounter.objects.get(patient=patient)
    workup_for(gp, encounter)
    assert "субфебрилитет" in html(gp_web.get(f"/encounters/{encounter.pk}/", HTTP_ACCEPT_LANGUAGE="ru"))
    assert "subfebrile temperature (37.1–37.9 °C) recorded" in html(
        gp_web.get(f"/encounters/{encounter.pk}/workup/print/", HTTP_ACCEPT_LANGUAGE="en")
    )
    gp_web.post(f"/encounters/{encounter.pk}/finalize/", {})
    assert "субфебрилитет" in html(gp_web.get(f"/encounters/{encounter.pk}/", HTTP_ACCEPT_LANGUAGE="ru"))


# -- 4. not recorded vs no; all remaining red flags: no; accept all; the error summary -------------


def test_not_recorded_and_no_differ_in_words_on_the_form_and_on_the_record(gp_web, gp):
    encounter = encounter_of(gp, findings={"loc_lumbar": True, "rf_fever": False})
    form = html(gp_web.get(f"/encounters/{encounter.pk}/"))
    assert 'class="answer-none">Not asked<' in form and 'class="answer-no">No<' in form
    assert 'class="answer-none">Not recorded<' in form  # outside the red flags
    workup_for(gp, encounter)
    record = html(gp_web.get(f"/encounters/{encounter.pk}/workup/print/"))
    assert "Answered No:" in record and "Not asked (not recorded):" in record


def test_all_remaining_red_flags_no_fills_the_unanswered_ones_and_saves_nothing(gp_web, gp):
    patient = patient_of(gp, sex="male")
    response = gp_web.post(
        f"/patients/{patient.pk}/encounters/new/",
        {
            "visit_date": "2024-03-01",
            "duration_days": "4",
            "f_loc_lumbar": "yes",
            "f_rf_fever": "yes",
            "red_flags_no": "1",
        },
    )
    page = html(response)
    assert response.status_code == 200 and not Encounter.objects.filter(patient=patient).exists()
    assert re.search(r'value="yes"[^>]*id="id_f_rf_fever_1"[^>]*checked|id="id_f_rf_fever_1"[^>]*checked', page)
    assert re.search(r'id="id_f_rf_saddle_anesthesia_2"[^>]*checked', page)
    assert re.search(r'id="id_f_rf_night_pain_2"[^>]*checked', page)
    assert not re.search(r'id="id_f_rf_fever_2"[^>]*checked', page)  # an answer given is kept
    assert re.search(r'id="id_f_loc_lumbar_1"[^>]*checked', page) and 'value="4"' in page
    assert "Unanswered red flags set to No (10): check them, then save." in page
    assert "banner-error" not in page


def test_accept_all_recommended_accepts_what_is_pending(gp_web, gp):
    encounter = encounter_of(gp)
    workup = workup_for(gp, encounter)
    declined = workup.items.first()
    recommendation_decide(actor=actor_for(gp), recommendation=declined, decision=Decision.DECLINED, reason="Done")
    assert 'id="accept-all"' in html(gp_web.get(f"/encounters/{encounter.pk}/workup/"))
    response = gp_web.post(f"/encounters/{encounter.pk}/workup/accept-all/", follow=True)
    assert "Accepted" in html(response)
    declined.refresh_from_db()
    assert declined.decision == "declined"
    assert set(workup.items.exclude(pk=declined.pk).values_list("decision", flat=True)) == {"accepted"}
    assert set(workup.referrals.values_list("decision", flat=True)) == {"accepted"}
    assert 'id="accept-all"' not in html(gp_web.get(f"/encounters/{encounter.pk}/workup/"))


def test_the_error_summary_links_to_each_field_and_the_location_shows_on_the_first_submit(gp_web, gp):
    patient = patient_of(gp)
    response = gp_web.post(
        f"/patients/{patient.pk}/encounters/new/",
        {"visit_date": "2024-03-01", "duration_days": "-5", "temperature_c": "abc"},
    )
    page = html(response)
    assert response.status_code == 200 and "data-error-summary" in page
    assert 'href="#id_duration_days"' in page and 'href="#id_temperature_c"' in page
    assert 'href="#id_f_loc_' in page and 'id="location-error"' in page  # no location: said at once
    summary = page[page.index("data-error-summary") : page.index("</ul>", page.index("data-error-summary"))]
    assert summary.index("#id_f_loc_") < summary.index("#id_duration_days") < summary.index("#id_temperature_c")


def test_the_registration_form_has_the_error_summary_too(gp_web):
    page = html(gp_web.post("/patients/new/", {"family_name": "Орлова", "sex": "female"}))
    assert "data-error-summary" in page and 'href="#id_given_name"' in page and 'href="#id_birth_date"' in page


# -- 6. labels on the catalogue ----------------------------------------------------------------------


def test_the_catalogue_controls_have_visible_labels_and_unique_ids(gp_web, gp):
    encounter = encounter_of(gp)
    workup_for(gp, encounter)
    page = html(gp_web.get(f"/encounters/{encounter.pk}/workup/"))
    for control in (
        "add_item_code",
        "add_item_urgency",
        "add_item_rationale",
        "add_referral_specialty",
        "add_referral_urgency",
        "add_referral_reason",
    ):
        assert f'<label for="{control}">' in page and f'id="{control}"' in page, control
    ids = re.findall(r'\sid="([^"]+)"', page)
    assert len(ids) == len(set(ids))
    assert (
        gp_web.post(f"/encounters/{encounter.pk}/workup/add-item/", {"code": "ecg", "urgency": "routine"}).status_code
        == 302
    )
    assert workup_for  # the catalogue still adds by the same field names
    assert encounter.workups.latest("created_at").items.filter(code="ecg").exists()


def test_a_date_field_keeps_its_value_in_russian(gp_web, gp):
    # <input type="date"> takes only YYYY-MM-DD: a date shown as 01.03.2024 would be blank in the browser
    # and the saved form would lose its visit date.
    encounter = encounter_of(gp)
    assert 'name="visit_date" value="2024-03-01"' in html(
        gp_web.get(f"/encounters/{encounter.pk}/", HTTP_ACCEPT_LANGUAGE="ru")
    )
    edit = html(gp_web.get(f"/patients/{encounter.patient_id}/edit/", HTTP_ACCEPT_LANGUAGE="ru"))
    assert 'name="birth_date" value="1980-05-17"' in edit


# -- 6. contrast of every badge and banner (WCAG AA: 4.5:1 for their small bold text) -----------------


def _luminance(hex_colour):
    hex_colour = hex_colour.lstrip("#")
    if len(hex_colour) == 3:
        hex_colour = "".join(c * 2 for c in hex_colour)
    channels = [int(hex_colour[i : i + 2], 16) / 255 for i in (0, 2, 4)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def test_every_badge_and_banner_has_a_contrast_of_at_least_4_5():
    from pathlib import Path

    css = (Path(__file__).resolve().parent.parent / "static" / "css" / "app.css").read_text()
    variables = dict(re.findall(r"--([\w-]+):\s*(#[0-9a-fA-F]{3,6})", css))

    def colour(value):
        value = value.strip()
        match = re.fullmatch(r"var\(--([\w-]+)\)", value)
        return variables[match.group(1)] if match else value

    base = re.search(r"\.badge \{[^}]*background: (#[0-9a-fA-F]+); color: ([^;]+);", css)
    rules = re.findall(r"\.(badge|banner)\.([\w-]+) \{ background: ([^;]+); color: ([^;]+);", css)
    assert len(rules) >= 12
    for kind, name, background, text in [("badge", "plain", base.group(1), base.group(2)), *rules]:
        light, dark = sorted([_luminance(colour(background)), _luminance(colour(text))], reverse=True)
        ratio = (light + 0.05) / (dark + 0.05)
        assert ratio >= 4.5, f".{kind}.{name}: {ratio:.2f}"


def test_the_patient_leaflet_is_requested_from_the_workup_page(gp_web, gp):
    encounter = encounter_of(gp)
    workup_for(gp, encounter)
    assert 'id="request-leaflet"' in html(gp_web.get(f"/encounters/{encounter.pk}/workup/"))
    assert gp_web.post(f"/encounters/{encounter.pk}/leaflet/").status_code == 302
    status = html(gp_web.get(f"/encounters/{encounter.pk}/leaflet/status/"))
    assert "pdf-status" in status


def test_the_requisition_button_appears_once_a_test_is_accepted(gp_web, gp):
    # A button that can only answer "accept a test first" is a dead end in a consultation: until a test is
    # accepted the page says what to do instead.
    encounter = encounter_of(gp)
    workup = workup_for(gp, encounter)
    page = html(gp_web.get(f"/encounters/{encounter.pk}/workup/"))
    assert 'id="request-requisition"' not in page
    assert "Accept at least one test to print its requisition." in page
    item = workup.items.first()
    recommendation_decide(actor=actor_for(gp, channel="web"), recommendation=item, decision=Decision.ACCEPTED)
    page = html(gp_web.get(f"/encounters/{encounter.pk}/workup/"))
    assert 'id="request-requisition"' in page
    assert 'id="requisition-none"' not in page
