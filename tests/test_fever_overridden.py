"""Fever answered No with a measured 38.6 °C: the engine counts fever as present (the temperature overrides the
answer), so no letter or summary prints "No fever", and the live panel and the workup page say that the
temperature overrode the answer."""

import pytest

from referrals import documents
from referrals import services as referral_services
from tests.record_factories import URINARY, actor_for, encounter_of, patient_of, screened, workup_for

FEVER_NO = {**screened(URINARY), "rf_fever": False}
WARNING_EN = "Fever was answered No, but 38.6 °C is recorded: fever is counted as present."


def html(response):
    return response.content.decode()


def febrile_encounter(gp, temperature=38.6):
    encounter = encounter_of(gp, findings=FEVER_NO, temperature_c=temperature)
    return encounter, workup_for(gp, encounter)


@pytest.mark.parametrize(
    ("language", "negative", "fever"),
    [("ru", "Лихорадки нет", "лихорадка (температура 38,0 °C и выше)"), ("en", "No fever", "fever")],
)
def test_a_letter_never_prints_no_fever_when_the_temperature_counted_it(gp, language, negative, fever):
    encounter, workup = febrile_encounter(gp)
    letter = referral_services.referral_create(
        actor=actor_for(gp),
        encounter=encounter,
        specialty="neurology",
        urgency="routine",
        reason="Numbness",
        language=language,
    )

    context = documents.letter_context(letter, workup=workup)

    assert negative not in context["negatives"]
    assert not any(negative in section["absent"] for section in documents.findings_sections(encounter, language))
    red_flags = [section for section in context["positives"] if section["key"] == "red_flags"]
    assert red_flags and fever in red_flags[0]["present"]
    # The engine read the findings the same way: fever is among what it found.
    assert any("rf_fever" in (row.triggered_by or ()) for row in [*workup.items.all(), *workup.referrals.all()])


def test_below_the_threshold_the_no_to_fever_is_printed_as_answered(gp):
    encounter, workup = febrile_encounter(gp, temperature=37.9)
    letter = referral_services.referral_create(
        actor=actor_for(gp), encounter=encounter, specialty="neurology", urgency="routine", reason="x", language="en"
    )

    assert "No fever" in documents.letter_context(letter, workup=workup)["negatives"]


def test_the_workup_page_and_the_record_summary_say_the_temperature_overrode_the_answer(gp_web, gp):
    encounter, _ = febrile_encounter(gp)

    page = html(gp_web.get(f"/encounters/{encounter.pk}/workup/", HTTP_ACCEPT_LANGUAGE="en"))

    assert WARNING_EN in page and 'data-mismatch="fever-overridden"' in page
    assert "No fever" not in page


def test_the_workup_page_says_nothing_when_fever_was_answered_yes(gp_web, gp):
    encounter = encounter_of(gp, findings={**FEVER_NO, "rf_fever": True}, temperature_c=38.6)
    workup_for(gp, encounter)

    page = html(gp_web.get(f"/encounters/{encounter.pk}/workup/", HTTP_ACCEPT_LANGUAGE="en"))

    assert 'data-mismatch="fever-overridden"' not in page


def panel_body(**values):
    body = {
        "visit_date": "2024-03-01",
        "duration_days": "3",
        **{f"f_{code}": "yes" if value else "no" for code, value in FEVER_NO.items()},
    }
    body.update(values)
    return body


@pytest.mark.parametrize(
    ("temperature", "fever", "shown"),
    [("38.6", "no", True), ("38,0", "no", True), ("37.9", "no", False), ("38.6", "yes", False), ("38.6", "", False)],
)
def test_the_live_panel_warns_when_the_temperature_overrides_a_no_to_fever(gp_web, gp, temperature, fever, shown):
    patient = patient_of(gp)

    panel = html(
        gp_web.post(
            f"/patients/{patient.pk}/encounters/preview/",
            panel_body(temperature_c=temperature, f_rf_fever=fever),
            HTTP_ACCEPT_LANGUAGE="en",
        )
    )

    assert ('data-mismatch="fever-overridden"' in panel) is shown
    if shown and temperature == "38.6":
        assert WARNING_EN in panel
        assert "fever counted as present (38.6 °C)" in panel  # the strip's summary too


def test_the_record_lists_fever_as_counted_and_says_why(gp_web, gp):
    encounter, _ = febrile_encounter(gp)

    record = html(gp_web.get(f"/encounters/{encounter.pk}/workup/print/", HTTP_ACCEPT_LANGUAGE="en"))

    assert WARNING_EN in record and 'data-mismatch="fever-overridden"' in record
    assert "No fever" not in record
