"""The browser pages without a browser: scoping, validation, read-only records and query counts."""

import datetime
import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils.html import escape

from clinic.models import AuditEvent, Encounter, Patient
from clinic.text import lower_first
from tests.record_factories import URINARY, actor_for, encounter_of, patient_of, screened, workup_for
from workups.engine import get_knowledge_base
from workups.services import workup_item_add, workup_referral_add


@pytest.fixture
def other_web(other_gp):
    client = Client()
    client.force_login(other_gp)
    return client


def page_urls(encounter, item, referral):
    patient = encounter.patient_id
    return {
        "get": [
            f"/patients/{patient}/",
            f"/patients/{patient}/edit/",
            f"/patients/{patient}/encounters/new/",
            f"/encounters/{encounter.pk}/",
            f"/encounters/{encounter.pk}/workup/",
            f"/encounters/{encounter.pk}/workup/print/",
        ],
        "post": [
            f"/patients/{patient}/edit/",
            f"/patients/{patient}/encounters/new/",
            f"/patients/{patient}/encounters/preview/",
            f"/encounters/{encounter.pk}/",
            f"/encounters/{encounter.pk}/workup/generate/",
            f"/encounters/{encounter.pk}/workup/add-item/",
            f"/encounters/{encounter.pk}/workup/add-referral/",
            f"/encounters/{encounter.pk}/finalize/",
            f"/workup-items/{item.pk}/decide/",
            f"/workup-referrals/{referral.pk}/decide/",
        ],
    }


@pytest.fixture
def record(gp):
    encounter = encounter_of(gp, patient=patient_of(gp, family_name="Иванова", given_name="Анна"))
    workup = workup_for(gp, encounter)
    return encounter, workup.items.first(), workup.referrals.first()


def test_every_patient_page_is_a_404_for_a_gp_of_another_clinic(other_web, record):
    urls = page_urls(*record)
    for url in urls["get"]:
        response = other_web.get(url)
        assert response.status_code == 404, url
        assert "Иванова" not in response.content.decode()
    for url in urls["post"]:
        assert other_web.post(url, {"decision": "accepted", "duration_days": "3"}).status_code == 404, url
    encounter = record[0]
    encounter.refresh_from_db()
    assert not encounter.is_finalized and record[1].decision == "pending"


def test_every_patient_page_sends_an_anonymous_caller_to_log_in(client, record):
    urls = page_urls(*record)
    for url in urls["get"] + urls["post"] + ["/"]:
        response = client.get(url) if url in urls["get"] or url == "/" else client.post(url)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/"), url


def test_patients_slash_leads_a_gp_to_the_patient_list(gp_web, gp):
    patient_of(gp, family_name="Сидорова", given_name="Вера")
    response = gp_web.get("/patients/", follow=True)
    assert response.redirect_chain == [("/", 302)]
    assert "Сидорова" in response.content.decode()


def test_search_finds_part_of_a_name_in_any_case_and_script(gp_web, gp, other_gp):
    patient_of(gp, family_name="Иванова", given_name="Анна")
    patient_of(gp, family_name="Petrov", given_name="Ivan")
    patient_of(other_gp, family_name="Иванов", given_name="Другой")

    def search(query):
        return gp_web.post("/", {"q": query}, HTTP_HX_REQUEST="true").content.decode()

    page = search("иван")
    assert "Иванова" in page and "Petrov" not in page and "Другой" not in page
    assert "Petrov" in search("IVAN")
    assert "Иванова" in search("АННА иван")


def test_search_is_answered_as_a_fragment_for_htmx(gp_web, gp):
    patient_of(gp, family_name="Сидоров", given_name="Илья")
    response = gp_web.post("/", {"q": "сидор"}, HTTP_HX_REQUEST="true")
    assert "<html" not in response.content.decode() and "Сидоров" in response.content.decode()


def field_errors(page: str, field: str) -> list[str]:
    """The problems shown beside one field of a patient form (templates/patients/_field.html)."""
    block = re.split(r'<(?:div|fieldset) class="field', page.split(f'for="id_{field}"', 1)[1], maxsplit=1)[0]
    return re.findall(r'<span class="error" role="alert">([^<]*)</span>', block)


def test_registration_shows_a_missing_name_beside_its_field_and_keeps_the_entries(gp_web):
    response = gp_web.post(
        "/patients/new/",
        {"family_name": "Орлова", "given_name": "", "birth_date": "1980-05-17", "sex": "female"},
        HTTP_ACCEPT_LANGUAGE="en",
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert field_errors(page, "given_name") == ["This field is required."]
    assert field_errors(page, "birth_date") == []
    assert 'value="Орлова"' in page and 'value="1980-05-17"' in page
    assert not Patient.objects.filter(family_name="Орлова").exists()


@pytest.mark.parametrize(
    "language, message", [("en", "The birth date is in the future."), ("ru", "Дата рождения в будущем.")]
)
def test_registration_refuses_a_birth_date_in_the_future_beside_the_field(gp_web, language, message):
    # Two days ahead: still in the future in any clinic's time zone.
    future = (datetime.date.today() + datetime.timedelta(days=2)).isoformat()
    response = gp_web.post(
        "/patients/new/",
        {"family_name": "Орлова", "given_name": "Анна", "birth_date": future, "sex": "female"},
        HTTP_ACCEPT_LANGUAGE=language,
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert field_errors(page, "birth_date") == [message]
    assert field_errors(page, "given_name") == []
    assert f'value="{future}"' in page and 'value="Анна"' in page
    assert not Patient.objects.filter(family_name="Орлова").exists()


def test_registration_names_a_future_birth_date_in_the_same_round_as_a_bad_snils(gp_web):
    # Not one problem per submit: a GP mends everything at once.
    future = (datetime.date.today() + datetime.timedelta(days=2)).isoformat()
    page = gp_web.post(
        "/patients/new/",
        {"family_name": "Орлова", "given_name": "Анна", "birth_date": future, "sex": "female", "snils": "123"},
        HTTP_ACCEPT_LANGUAGE="en",
    ).content.decode()
    assert field_errors(page, "birth_date") == ["The birth date is in the future."]
    assert field_errors(page, "snils")
    assert not Patient.objects.filter(family_name="Орлова").exists()


def test_a_finalized_encounter_is_read_only(gp_web, gp, record):
    encounter, item, _ = record
    assert gp_web.post(f"/encounters/{encounter.pk}/finalize/").status_code == 302
    assert gp_web.post(f"/encounters/{encounter.pk}/", {"duration_days": "3"}).status_code == 405
    gp_web.post(f"/workup-items/{item.pk}/decide/", {"decision": "accepted"})
    item.refresh_from_db()
    assert item.decision == "pending"
    page = gp_web.get(f"/encounters/{encounter.pk}/workup/").content.decode()
    assert "finalized" in page and 'button class="accept"' not in page
    encounter.refresh_from_db()
    assert encounter.duration_days == 10


def test_web_reads_are_audit_logged_as_web(gp_web, gp, record):
    encounter = record[0]
    before = AuditEvent.objects.count()
    gp_web.get(f"/patients/{encounter.patient_id}/")
    events = list(AuditEvent.objects.order_by("id")[before:])
    assert {event.channel for event in events} == {"web"}
    assert any(event.action == "view" and event.patient_id == encounter.patient_id for event in events)
    assert all(event.actor_username == gp.username for event in events)


def queries(client, method, url, data=None):
    with CaptureQueriesContext(connection) as captured:
        response = getattr(client, method)(url, data or {})
    assert response.status_code == 200, url
    return len(captured)


def test_the_patient_list_costs_the_same_queries_for_3_or_30_patients(gp_web, gp):
    for _ in range(3):
        patient_of(gp)
    few = queries(gp_web, "get", "/")
    for _ in range(27):
        patient_of(gp)
    assert queries(gp_web, "get", "/") == few
    assert queries(gp_web, "post", "/", {"q": "family"}) == few


def test_the_patient_page_costs_the_same_queries_for_1_or_12_encounters(gp_web, gp):
    patient = patient_of(gp)
    workup_for(gp, encounter_of(gp, patient=patient))
    few = queries(gp_web, "get", f"/patients/{patient.pk}/")
    for n in range(11):
        workup_for(gp, encounter_of(gp, patient=patient, visit_date=datetime.date(2023, 1, n + 1)))
    assert queries(gp_web, "get", f"/patients/{patient.pk}/") == few


def test_the_workup_page_costs_the_same_queries_however_many_recommendations(gp_web, gp):
    encounter = encounter_of(gp, findings=screened({"loc_lumbar": True}))
    workup = workup_for(gp, encounter)
    few = queries(gp_web, "get", f"/encounters/{encounter.pk}/workup/")
    actor = actor_for(gp, channel="web")
    for code in ("ecg", "lab_troponin", "us_spine", "mri_brain", "doppler_lower_limb", "lab_pancreatic_enzymes"):
        workup_item_add(actor=actor, workup=workup, code=code)
    for specialty in ("cardiology", "rheumatology", "oncology", "urology"):
        workup_referral_add(actor=actor, workup=workup, specialty=specialty)
    assert queries(gp_web, "get", f"/encounters/{encounter.pk}/workup/") == few


def test_the_print_page_costs_the_same_queries_with_more_findings_items_and_referrals(gp_web, gp):
    encounter = encounter_of(gp, findings=screened({"loc_lumbar": True}))
    workup_for(gp, encounter)
    url = f"/encounters/{encounter.pk}/workup/print/"
    few = queries(gp_web, "get", url)

    # More findings (a routine workup with its own tests and referrals), then tests and referrals by hand.
    Encounter.objects.filter(pk=encounter.pk).update(
        findings=screened({**URINARY, "sx_tingling": True, "hx_kidney_disease": True, "ex_muscle_spasm": True})
    )
    encounter.refresh_from_db()
    workup = workup_for(gp, encounter)
    actor = actor_for(gp, channel="web")
    for code in ("ecg", "lab_troponin", "us_spine", "mri_brain", "doppler_lower_limb"):
        workup_item_add(actor=actor, workup=workup, code=code)
    for specialty in ("cardiology", "rheumatology", "oncology"):
        workup_referral_add(actor=actor, workup=workup, specialty=specialty)

    with CaptureQueriesContext(connection) as captured:
        response = gp_web.get(url)
    page = response.content.decode()
    assert response.status_code == 200
    assert workup.items.count() >= 8 and workup.referrals.count() >= 4
    # Every row is on the page: the count below is for the full page, not a shorter one.
    vocabulary = get_knowledge_base().vocabulary
    for item in workup.items.all():
        assert escape(vocabulary.items[item.code]["name"]) in page, item.code
    for referral in workup.referrals.all():
        assert escape(vocabulary.specialties[referral.specialty]) in page, referral.specialty
    assert escape(lower_first(vocabulary.findings["ex_cva_tenderness"]["name"])) in page  # after another sign
    assert len(captured) == few


def test_the_encounter_form_costs_the_same_queries_however_many_findings(gp_web, gp):
    sparse = encounter_of(gp, findings={"loc_lumbar": True})
    full = encounter_of(
        gp,
        findings=screened(
            {
                "loc_lumbar": True,
                "sx_tingling": True,
                "sx_cough": False,
                "ex_muscle_spasm": True,
                "hx_osteoporosis": False,
            }
        ),
    )
    assert queries(gp_web, "get", f"/encounters/{sparse.pk}/") == queries(gp_web, "get", f"/encounters/{full.pk}/")


def test_the_live_panel_follows_the_unsaved_form(gp_web, gp):
    patient = patient_of(gp, sex="male")
    data = {"visit_date": "2024-03-01", "duration_days": "3", "f_loc_lumbar": "yes"}
    routine = gp_web.post(f"/patients/{patient.pk}/encounters/preview/", data).content.decode()
    assert 'data-disposition="routine"' in routine and "Red-flag screen incomplete" in routine
    emergency = gp_web.post(
        f"/patients/{patient.pk}/encounters/preview/", {**data, "f_rf_saddle_anesthesia": "yes"}
    ).content.decode()
    assert 'data-disposition="emergency"' in emergency
    missing = gp_web.post(f"/patients/{patient.pk}/encounters/preview/", {**data, "f_loc_lumbar": ""}).content.decode()
    assert "Record where the numbness is" in missing


def test_the_letter_shows_progress_while_rendering_and_a_link_when_ready(gp_web, gp, record):
    from referrals import services as referral_services
    from referrals.models import PdfStatus, Referral

    encounter = record[0]
    referral = referral_services.referral_create(
        actor=actor_for(gp, channel="web"),
        encounter=encounter,
        specialty="neurology",
        urgency="urgent",
        reason="Persistent numbness",
    )
    Referral.objects.filter(pk=referral.pk).update(pdf_status=PdfStatus.PENDING)
    status = gp_web.get(f"/referrals/{referral.pk}/status/").content.decode()
    assert "Rendering the PDF" in status and 'hx-trigger="every 1s"' in status
    referral_services.document_render(kind="referral", pk=referral.pk, claimant="test:1:x")
    status = gp_web.get(f"/referrals/{referral.pk}/status/").content.decode()
    assert "Letter (PDF)" in status and "hx-trigger" not in status
    response = gp_web.get(f"/referrals/{referral.pk}/pdf/")
    assert response["Content-Type"] == "application/pdf"


def test_letters_are_a_404_for_a_gp_of_another_clinic(other_web, gp, record):
    from referrals import services as referral_services

    referral = referral_services.referral_create(
        actor=actor_for(gp, channel="web"),
        encounter=record[0],
        specialty="neurology",
        urgency="urgent",
        reason="Persistent numbness",
    )
    for url in (
        f"/referrals/{referral.pk}/",
        f"/referrals/{referral.pk}/status/",
        f"/referrals/{referral.pk}/pdf/",
        f"/encounters/{record[0].pk}/requisition/status/",
        f"/encounters/{record[0].pk}/requisition/pdf/",
    ):
        assert other_web.get(url).status_code == 404, url
    assert other_web.post(f"/referrals/{referral.pk}/issue/").status_code == 404


def test_the_catalogue_pickers_start_with_nothing_chosen_and_an_unchosen_test_adds_nothing(gp_web, gp, record):
    # A stray click on "Add test" must not order the first test of the list (a blood count).
    encounter, _item, _referral = record
    page = gp_web.get(f"/encounters/{encounter.pk}/workup/", HTTP_ACCEPT_LANGUAGE="ru").content.decode()
    for name, words in (("code", "— выберите исследование —"), ("specialty", "— выберите специальность —")):
        select = re.search(rf'<select name="{name}"[^>]*>\s*<option value=""[^>]*>([^<]*)</option>', page)
        assert select and select.group(1) == words, name
    workup = encounter.workups.get()
    before = workup.items.count(), workup.referrals.count()
    gp_web.post(f"/encounters/{encounter.pk}/workup/add-item/", {"code": "", "urgency": "routine"})
    gp_web.post(f"/encounters/{encounter.pk}/workup/add-referral/", {"specialty": "", "urgency": "routine"})
    assert (workup.items.count(), workup.referrals.count()) == before


def test_an_accepted_row_folds_its_decline_away_and_a_pending_one_offers_it(gp_web, gp, record):
    from workups.models import Decision
    from workups.services import recommendation_decide

    encounter, item, _referral = record
    recommendation_decide(actor=actor_for(gp), recommendation=item, decision=Decision.ACCEPTED)
    page = gp_web.get(f"/encounters/{encounter.pk}/workup/").content.decode()
    rows = page.split('<li class="rec"')[1:]
    accepted = next(row for row in rows if f'id="item-{item.pk}"' in row)
    folded = re.search(r'<details class="change-mind"><summary>([^<]*)</summary>(.*?)</details>', accepted, re.S)
    assert folded and folded.group(1) == "Decline instead…" and 'name="reason"' in folded.group(2)
    assert accepted.count('name="reason"') == 1  # only inside the folded part
    pending = next(row for row in rows if "decision-pending" in row)
    assert 'name="reason"' in pending and "change-mind" not in pending


def test_the_encounter_form_marks_what_must_be_filled_in_and_only_that(gp_web, gp):
    patient = patient_of(gp)
    page = gp_web.get(f"/patients/{patient.pk}/encounters/new/", HTTP_ACCEPT_LANGUAGE="ru").content.decode()
    duration = page.split('for="id_duration_days">', 1)[1].split("</label>", 1)[0]
    temperature = page.split('for="id_temperature_c">', 1)[1].split("</label>", 1)[0]
    assert '<span class="required">(обязательно)</span>' in duration
    assert "обязательно" not in temperature


def test_items_not_indicated_for_one_reason_share_one_line_and_cite_its_sources_once(gp_web, gp):
    # Lumbar numbness, no red flag: X-ray and MRI are not indicated for the same reason (stewardship).
    encounter = encounter_of(gp, findings=screened({"loc_lumbar": True}))
    workup_for(gp, encounter)
    page = gp_web.get(f"/encounters/{encounter.pk}/workup/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    lines = re.findall(r"<li data-not-indicated><strong>([^<]*)</strong>(.*?)</li>", page, re.S)
    names = [name for name, _rest in lines]
    assert any("X-ray" in name and "MRI" in name for name in names), names
    for _name, rest in lines:
        sources = re.search(r'<span class="muted small">([^<]*)</span>', rest).group(1).split("; ")
        assert sources and len(sources) == len(set(sources))
