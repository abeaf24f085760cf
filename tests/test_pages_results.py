"""Results, the follow-up review, acknowledgement, referral tracking and the worklist in the browser
pages (Django client, no browser): values flagged as typed, refused when implausible, entered after
finalizing; another clinic's records are 404; bad input is refused with the message beside its field."""

import datetime
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from referrals import services as referral_services
from referrals.models import ReferralEvent
from tests.record_factories import URINARY, accept_tests, actor_for, api_client_for, encounter_of, screened, workup_for
from workups.models import Decision, Result, Workup
from workups.services import recommendation_decide, result_enter


@pytest.fixture
def gp_web(gp):
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(gp)
    return client


@pytest.fixture
def other_web(other_gp):
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(other_gp)
    return client


def html(response):
    return response.content.decode()


def finalized_urinary(gp, *, referral=False):
    """Lumbar numbness with urinary symptoms, every recommendation accepted, finalized (with an issued
    referral to neurology first when `referral`: encounter.referral)."""
    encounter = encounter_of(
        gp, findings=screened(URINARY), visit_date=timezone.localdate() - datetime.timedelta(days=2)
    )
    workup = workup_for(gp, encounter)
    for row in [*workup.items.all(), *workup.referrals.all()]:
        recommendation_decide(actor=actor_for(gp), recommendation=row, decision=Decision.ACCEPTED)
    letter = issued(gp, encounter) if referral else None
    response = api_client_for(gp).post(f"/api/v1/encounters/{encounter.pk}/finalize/", format="json")
    assert response.status_code == 200
    encounter.refresh_from_db()
    encounter.referral = letter
    return encounter


def issued(gp, encounter, specialty="neurology"):
    actor = actor_for(gp)
    referral = referral_services.referral_create(
        actor=actor, encounter=encounter, specialty=specialty, urgency="urgent", reason="Numbness"
    )
    return referral_services.referral_issue(actor=actor, referral=referral)


# -- 1. the results panel ---------------------------------------------------------------------------


def test_the_panel_lists_each_awaited_test_with_its_analytes_and_units_after_finalizing(gp_web, gp):
    encounter = finalized_urinary(gp)
    page = html(gp_web.get(f"/encounters/{encounter.pk}/workup/"))
    assert 'id="results"' in page
    assert 'id="test-lab_nechiporenko"' in page
    for code in ("res_nech_leukocytes", "res_nech_erythrocytes", "res_nech_casts"):
        assert f'name="{code}"' in page, code
    assert "/mL" in page and 'id="test-lab_cbc"' in page and "g/L" in page
    # A true/false analyte is a choice of radio buttons, worded as its flags.
    assert 'type="radio" name="res_ua_nitrite" value="true"' in page and "positive" in page
    assert 'name="performed_on"' in page and 'name="note"' in page


def test_a_value_is_flagged_as_it_is_typed_and_an_implausible_one_refused_inline(gp_web, gp):
    encounter = finalized_urinary(gp)
    url = f"/encounters/{encounter.pk}/results/check/"
    high = html(
        gp_web.post(url, {"code": "res_nech_leukocytes", "res_nech_leukocytes": "5 000"}, HTTP_HX_REQUEST="true")
    )
    assert 'data-flag="high"' in high and "high" in high and "2000" in high
    normal = html(gp_web.post(url, {"code": "res_hemoglobin", "res_hemoglobin": "128"}))
    assert 'data-flag="normal"' in normal
    refused = html(gp_web.post(url, {"code": "res_hemoglobin", "res_hemoglobin": "13,2"}))
    assert "data-refused" in refused and "check the unit" in refused
    nitrite = html(gp_web.post(url, {"code": "res_ua_nitrite", "res_ua_nitrite": "true"}))
    assert 'data-flag="positive"' in nitrite
    assert "Enter a number" in html(gp_web.post(url, {"code": "res_hemoglobin", "res_hemoglobin": "abc"}))
    assert "Unknown result" in html(gp_web.post(url, {"code": "nope", "nope": "1"}))
    assert not Result.objects.exists()  # checking stores nothing


def test_results_are_entered_after_finalizing_and_listed_with_flag_reference_and_who(gp_web, gp):
    encounter = finalized_urinary(gp)
    response = gp_web.post(
        f"/encounters/{encounter.pk}/results/enter/",
        {
            "test": "lab_nechiporenko",
            "res_nech_leukocytes": "5000",
            "res_nech_erythrocytes": "500",
            "res_nech_casts": "",
            "performed_on": encounter.visit_date.isoformat(),
            "note": "Morning sample",
        },
    )
    assert response.status_code == 302 and response["Location"].endswith("/workup/#results")
    stored = {row.code: row for row in Result.objects.filter(encounter=encounter)}
    assert set(stored) == {"res_nech_leukocytes", "res_nech_erythrocytes"}
    assert stored["res_nech_leukocytes"].flag == "high" and stored["res_nech_erythrocytes"].flag == "normal"
    page = html(gp_web.get(f"/encounters/{encounter.pk}/workup/"))
    row = page.split(f'id="result-{stored["res_nech_leukocytes"].pk}"')[1].split("</tr>")[0]
    assert "HIGH" in row.upper() and "▲" in row and "≤ 2000" in row and gp.username in row or gp.get_full_name() in row
    assert 'name="note"' in row and "Acknowledge" in row  # abnormal: a sign-off form
    normal_row = page.split(f'id="result-{stored["res_nech_erythrocytes"].pk}"')[1].split("</tr>")[0]
    assert "Acknowledge" not in normal_row


@pytest.mark.parametrize(
    "language, shown, never",
    [("ru", ["14,5 ×10⁹", "6\xa0500 в 1 мл"], ["14,500", "14.5"]), ("en", ["14.5 ×10⁹", "6,500 /mL"], ["14.500"])],
)
def test_a_value_is_shown_with_the_decimals_it_has_in_the_readers_number_format(gp_web, gp, language, shown, never):
    # "14,500" is how a decimal comma writes 14.5 to three places, and how a reader sees fourteen thousand five hundred.
    encounter = finalized_urinary(gp)
    day = encounter.visit_date.isoformat()
    for test, values in (("lab_cbc", {"res_wbc": "14.5"}), ("lab_nechiporenko", {"res_nech_leukocytes": "6500"})):
        response = gp_web.post(
            f"/encounters/{encounter.pk}/results/enter/", {"test": test, **values, "performed_on": day, "note": ""}
        )
        assert response.status_code == 302, html(response)
    pages = [
        html(gp_web.get(f"/encounters/{encounter.pk}/workup/", HTTP_ACCEPT_LANGUAGE=language)),
        html(gp_web.get("/worklist/", HTTP_ACCEPT_LANGUAGE=language)),
    ]
    for page in pages:
        for text in shown:
            assert text in page, text
        for text in never:
            assert text not in page, text


def test_a_new_value_supersedes_the_old_which_is_shown_as_superseded(gp_web, gp):
    encounter = finalized_urinary(gp)
    url = f"/encounters/{encounter.pk}/results/enter/"
    gp_web.post(url, {"test": "lab_cbc", "res_hemoglobin": "90"})
    gp_web.post(url, {"test": "lab_cbc", "res_hemoglobin": "128"})
    old, new = Result.objects.filter(encounter=encounter, code="res_hemoglobin").order_by("id")
    page = html(gp_web.get(f"/encounters/{encounter.pk}/workup/"))
    assert f'id="result-{old.pk}" class="abnormal superseded"' in page
    assert "superseded" in page.split(f'id="result-{old.pk}"')[1].split("</tr>")[0]
    assert "superseded" not in page.split(f'id="result-{new.pk}"')[1].split("</tr>")[0]


def test_bad_input_is_refused_beside_its_field_and_nothing_is_stored(gp_web, gp):
    encounter = finalized_urinary(gp)
    url = f"/encounters/{encounter.pk}/results/enter/"
    response = gp_web.post(url, {"test": "lab_cbc", "res_hemoglobin": "13.2", "res_wbc": "6"})
    assert response.status_code == 200 and "check the unit" in html(response)
    assert 'value="13.2"' in html(response)  # what was typed stays
    assert not Result.objects.exists()  # nothing of the test stored while one value is wrong
    future = (timezone.localdate() + datetime.timedelta(days=3)).isoformat()
    response = gp_web.post(url, {"test": "lab_cbc", "res_hemoglobin": "128", "performed_on": future})
    assert "The date is in the future." in html(response) and not Result.objects.exists()
    assert "Enter at least one value." in html(gp_web.post(url, {"test": "lab_cbc"}))
    assert "Choose a test awaiting results." in html(gp_web.post(url, {"test": "nothing"}))
    assert "must be" not in html(gp_web.post(url, {"test": "lab_urinalysis", "res_ua_nitrite": "maybe"}))
    assert not Result.objects.exists()


def test_the_panel_is_in_russian(gp, gp_web):
    encounter = finalized_urinary(gp)
    page = html(gp_web.get(f"/encounters/{encounter.pk}/workup/", HTTP_ACCEPT_LANGUAGE="ru"))
    assert "Результаты" in page and "Гемоглобин" in page and "г/л" in page
    refused = html(
        gp_web.post(
            f"/encounters/{encounter.pk}/results/check/",
            {"code": "res_hemoglobin", "res_hemoglobin": "13,2"},
            HTTP_ACCEPT_LANGUAGE="ru",
        )
    )
    assert "data-refused" in refused and "check the unit" not in refused


# -- 2. the review ----------------------------------------------------------------------------------


def test_review_stores_the_follow_up_and_shows_it_beside_the_first_with_new_rows(gp_web, gp):
    encounter = finalized_urinary(gp)
    result_enter(actor=actor_for(gp), encounter=encounter, code="res_ua_nitrite", value=True)
    result_enter(actor=actor_for(gp), encounter=encounter, code="res_nech_leukocytes", value=50000)
    response = gp_web.post(f"/encounters/{encounter.pk}/review/")
    assert response.status_code == 302 and response["Location"] == f"/encounters/{encounter.pk}/review/"
    follow_up = Workup.objects.filter(encounter=encounter).order_by("-id").first()
    assert follow_up.kind == "follow_up"
    page = html(gp_web.get(f"/encounters/{encounter.pk}/review/"))
    assert "First workup" in page and "With the results" in page
    new_rows = follow_up.items.filter(is_new=True)
    if new_rows.exists():
        assert "new with the results" in page
    # The follow-up rows are decidable after finalizing; the first workup's are not.
    row = follow_up.items.first()
    assert f"/workup-items/{row.pk}/decide/" in page
    first = Workup.objects.filter(encounter=encounter, kind="initial").first()
    assert f"/workup-items/{first.items.first().pk}/decide/" not in page
    decided = gp_web.post(
        f"/workup-items/{row.pk}/decide/", {"decision": "declined", "reason": "Seen", "next": "review"}
    )
    assert decided.status_code == 302 and decided["Location"] == f"/encounters/{encounter.pk}/review/"
    row.refresh_from_db()
    assert row.decision == "declined"
    # A first-workup row stays locked after finalizing.
    locked = first.items.first()
    before = locked.decision
    gp_web.post(f"/workup-items/{locked.pk}/decide/", {"decision": "declined", "reason": "x"})
    locked.refresh_from_db()
    assert locked.decision == before


def test_review_without_results_says_so(gp_web, gp):
    encounter = finalized_urinary(gp)
    response = gp_web.post(f"/encounters/{encounter.pk}/review/", follow=True)
    assert "Enter at least one result before reviewing." in html(response)
    assert not Workup.objects.filter(encounter=encounter, kind="follow_up").exists()


# -- 3. acknowledgement -----------------------------------------------------------------------------


def test_an_abnormal_result_is_acknowledged_with_a_required_note(gp_web, gp):
    encounter = finalized_urinary(gp)
    result = result_enter(actor=actor_for(gp), encounter=encounter, code="res_hemoglobin", value=90)
    url = f"/results/{result.pk}/acknowledge/"
    response = gp_web.post(url, {"note": "  "})
    assert response.status_code == 200 and "Say what was done about this result." in html(response)
    result.refresh_from_db()
    assert result.acknowledged_at is None
    response = gp_web.post(url, {"note": "Iron started, repeat in 4 weeks"})
    assert response.status_code == 302
    result.refresh_from_db()
    assert result.acknowledged_by == gp and result.acknowledgement_note == "Iron started, repeat in 4 weeks"
    again = gp_web.post(url, {"note": "twice"}, follow=True)
    assert "acknowledged already" in html(again)
    page = html(gp_web.get(f"/encounters/{encounter.pk}/workup/"))
    assert "Iron started, repeat in 4 weeks" in page


# -- 4. referral tracking ---------------------------------------------------------------------------


def test_a_referral_is_booked_completed_with_a_pdf_and_its_history_shown(gp_web, gp):
    encounter = finalized_urinary(gp, referral=True)
    referral = encounter.referral
    page = html(gp_web.get(f"/referrals/{referral.pk}/"))
    assert 'id="track-booked"' in page and 'id="track-completed"' in page and 'id="track-closed"' in page
    url = f"/referrals/{referral.pk}/tracking/"
    assert gp_web.post(url, {"status": "booked", "appointment_at": "2030-05-06T10:30"}).status_code == 302
    referral.refresh_from_db()
    assert referral.status == "booked" and referral.appointment_at is not None
    pdf = SimpleUploadedFile("c.pdf", b"%PDF-1.4\n%%EOF\n", content_type="application/pdf")
    response = gp_web.post(
        url, {"status": "completed", "conclusion": "Radiculopathy L5; physiotherapy.", "conclusion_pdf": pdf}
    )
    assert response.status_code == 302
    referral.refresh_from_db()
    assert referral.status == "completed" and referral.conclusion_pdf
    page = html(gp_web.get(f"/referrals/{referral.pk}/"))
    assert "Radiculopathy L5" in page and f"/referrals/{referral.pk}/conclusion/" in page
    assert page.count('data-status="booked"') >= 1 and 'data-status="completed"' in page
    assert 'id="track-booked"' not in page  # closed: nothing more to record
    assert gp_web.get(f"/referrals/{referral.pk}/conclusion/").status_code == 200
    # An impossible transition is refused with a clear message.
    refused = gp_web.post(url, {"status": "cancelled", "reason": "x"}, follow=True)
    assert "cannot become" in html(refused)
    assert list(ReferralEvent.objects.filter(referral=referral).values_list("status", flat=True)) == [
        "issued",
        "booked",
        "completed",
    ]


def test_tracking_refuses_bad_input_beside_the_field(gp_web, gp):
    encounter = finalized_urinary(gp, referral=True)
    referral = encounter.referral
    url = f"/referrals/{referral.pk}/tracking/"
    assert "Give the date and time of the appointment." in html(gp_web.post(url, {"status": "booked"}))
    assert "required for this status" in html(gp_web.post(url, {"status": "cancelled", "reason": " "}))
    not_pdf = SimpleUploadedFile("c.pdf", b"hello", content_type="application/pdf")
    assert "not a PDF" in html(gp_web.post(url, {"status": "completed", "conclusion": "ok", "conclusion_pdf": not_pdf}))
    assert "Choose what became" in html(gp_web.post(url, {"status": "issued"}))
    referral.refresh_from_db()
    assert referral.status == "issued"
    declined = gp_web.post(url, {"status": "declined_by_patient", "reason": "Prefers to wait"})
    assert declined.status_code == 302
    referral.refresh_from_db()
    assert referral.status == "declined_by_patient" and referral.close_reason == "Prefers to wait"


def test_a_draft_referral_cannot_be_tracked(gp_web, gp):
    encounter = encounter_of(gp)
    workup_for(gp, encounter)
    draft = referral_services.referral_create(
        actor=actor_for(gp), encounter=encounter, specialty="neurology", urgency="routine", reason="Numbness"
    )
    response = gp_web.post(
        f"/referrals/{draft.pk}/tracking/", {"status": "booked", "appointment_at": "2030-05-06T10:30"}, follow=True
    )
    assert "cannot become" in html(response)
    draft.refresh_from_db()
    assert draft.status == "draft"


# -- 5. the worklist and the badge ------------------------------------------------------------------


def test_the_worklist_lists_results_tests_and_referrals_and_the_badge_counts(gp_web, gp):
    encounter = finalized_urinary(gp, referral=True)
    result_enter(actor=actor_for(gp), encounter=encounter, code="res_hemoglobin", value=90)
    page = html(gp_web.get("/worklist/"))
    assert 'id="worklist-unacknowledged"' in page and "Haemoglobin" in page or "Hemoglobin" in page
    assert 'data-kind="result"' in page and 'data-kind="test"' in page and 'data-kind="referral"' in page
    badge = html(gp_web.get("/worklist/badge/"))
    assert 'id="worklist-count" data-count="1"' in badge
    assert "1 overdue or unacknowledged" in badge
    assert "/worklist/badge/" in page  # every page loads the badge into its navigation
    # The page's own count says what the badge counts: nothing overdue yet, one result to sign off.
    assert "0 overdue · 1 to acknowledge ·" in page
    russian = html(gp_web.get("/worklist/", HTTP_ACCEPT_LANGUAGE="ru"))
    assert "1 ждёт подтверждения" in russian


def test_each_worklist_row_links_to_its_patient_and_where_it_is_done(gp_web, gp):
    encounter = finalized_urinary(gp, referral=True)
    result_enter(actor=actor_for(gp), encounter=encounter, code="res_hemoglobin", value=90)
    page = html(gp_web.get("/worklist/"))

    rows = re.findall(r'<tr class="[^"]*" data-kind="(\w+)" data-id="(\d+)"[^>]*>(.*?)</tr>', page, re.S)
    assert {kind for kind, _, _ in rows} == {"result", "test", "referral"}
    for kind, pk, row in rows:
        links = re.findall(r'<a href="([^"]+)">', row)
        workup = f"/encounters/{encounter.pk}/workup/"
        # A result opens at its own row (its sign-off form), a test awaited at the entry forms.
        opens = {"referral": f"/referrals/{pk}/", "result": f"{workup}#result-{pk}", "test": f"{workup}#results"}[kind]
        assert links == [f"/patients/{encounter.patient_id}/", opens], (kind, row)


def test_the_badge_shows_nothing_when_there_is_nothing(gp_web):
    page = html(gp_web.get("/worklist/"))
    assert 'id="nav-worklist"' in page
    assert "worklist-count" not in html(gp_web.get("/worklist/badge/"))


def test_the_worklist_due_dates_are_dd_mm_yyyy_in_russian(gp_web, gp):
    finalized_urinary(gp, referral=True)
    page = html(gp_web.get("/worklist/", HTTP_ACCEPT_LANGUAGE="ru"))

    assert "Рабочий список" in page
    assert re.search(r'<time datetime="\d{4}-\d{2}-\d{2}">\d{2}\.\d{2}\.\d{4}</time>', page)


def test_the_worklist_costs_the_same_queries_for_1_or_20_rows(gp_web, gp):
    def populate(count):
        for _ in range(count):
            encounter = encounter_of(gp, findings=screened(URINARY))
            workup = workup_for(gp, encounter)
            accept_tests(gp, workup)
            result_enter(actor=actor_for(gp), encounter=encounter, code="res_hemoglobin", value=90)
            issued(gp, encounter)

    populate(1)
    gp_web.get("/worklist/")
    with CaptureQueriesContext(connection) as one:
        assert gp_web.get("/worklist/").status_code == 200
    populate(19)
    with CaptureQueriesContext(connection) as twenty:
        response = gp_web.get("/worklist/")
    assert html(response).count('data-kind="referral"') == 20
    assert len(twenty) == len(one)


# -- another clinic ---------------------------------------------------------------------------------


def test_another_clinics_records_are_404(other_web, gp):
    encounter = finalized_urinary(gp, referral=True)
    result = result_enter(actor=actor_for(gp), encounter=encounter, code="res_hemoglobin", value=90)
    referral = encounter.referral
    assert (
        other_web.post(
            f"/encounters/{encounter.pk}/results/check/", {"code": "res_hemoglobin", "res_hemoglobin": "90"}
        ).status_code
        == 404
    )
    assert (
        other_web.post(
            f"/encounters/{encounter.pk}/results/enter/", {"test": "lab_cbc", "res_hemoglobin": "90"}
        ).status_code
        == 404
    )
    assert other_web.get(f"/encounters/{encounter.pk}/review/").status_code == 404
    assert other_web.post(f"/encounters/{encounter.pk}/review/").status_code == 404
    assert other_web.post(f"/results/{result.pk}/acknowledge/", {"note": "x"}).status_code == 404
    assert (
        other_web.post(f"/referrals/{referral.pk}/tracking/", {"status": "cancelled", "reason": "x"}).status_code == 404
    )
    assert other_web.get(f"/referrals/{referral.pk}/conclusion/").status_code == 404
    worklist = html(other_web.get("/worklist/"))
    assert encounter.patient.family_name not in worklist
    assert "worklist-count" not in html(other_web.get("/worklist/badge/"))
    result.refresh_from_db()
    referral.refresh_from_db()
    assert result.acknowledged_at is None and referral.status == "issued"
    assert Result.objects.filter(encounter=encounter).count() == 1


def test_anonymous_is_sent_to_log_in():
    client = Client()
    for url in ("/worklist/", "/worklist/badge/", "/encounters/1/review/"):
        assert client.get(url).status_code == 302


def test_a_get_of_a_forms_address_leads_back_to_the_form_and_another_clinic_gets_a_404(gp_web, other_web, gp):
    # The refusal page of these forms is shown at the form's address: reloading it, or switching the language on
    # it, is a GET there, which must lead back to the form rather than to a bare "method not allowed".
    encounter = finalized_urinary(gp, referral=True)
    actor = actor_for(gp)
    result = result_enter(actor=actor, encounter=encounter, code="res_nech_leukocytes", value=6500)
    workup = f"/encounters/{encounter.pk}/workup/"
    for address, leads_to in (
        (f"/encounters/{encounter.pk}/results/enter/", workup + "#results"),
        (f"/results/{result.pk}/acknowledge/", workup + f"#result-{result.pk}"),
        (f"/referrals/{encounter.referral.pk}/tracking/", f"/referrals/{encounter.referral.pk}/"),
    ):
        response = gp_web.get(address)
        assert response.status_code == 302 and response["Location"] == leads_to, address
        assert other_web.get(address).status_code == 404, address
        assert Client().get(address).status_code == 302 and "/login" in Client().get(address)["Location"]
    result.refresh_from_db()
    assert result.acknowledged_at is None  # a GET changed nothing


def test_a_refused_acknowledgement_focuses_its_note_so_the_error_is_in_sight(gp_web, gp):
    encounter = finalized_urinary(gp)
    result = result_enter(actor=actor_for(gp), encounter=encounter, code="res_nech_leukocytes", value=6500)
    page = html(gp_web.post(f"/results/{result.pk}/acknowledge/", {"note": "  "}))
    textarea = re.search(rf'<textarea id="ack-{result.pk}"[^>]*>', page).group(0)
    assert "autofocus" in textarea and 'aria-invalid="true"' in textarea
    assert page.count("autofocus") == 1
