"""The emergency path in one step: a GP whose patient must go to hospital now accepts the emergency workup, gets a
draft letter for each emergency referral and the patient leaflet with one button, then reads the letter and issues
it. A letter is never issued unseen; another clinic's encounter is a 404; a workup that is not an emergency, or a
finalized encounter, is refused with a message and changes nothing."""

import pytest
from django.test import Client

from clinic.models import AuditEvent
from referrals.models import Leaflet, Referral, ReferralStatus
from tests.record_factories import URINARY, actor_for, api_client_for, encounter_of, screened, workup_for
from workups.models import Decision
from workups.services import recommendation_decide

CAUDA_EQUINA = {"loc_lumbar": True, "rf_saddle_anesthesia": True, "rf_bladder_dysfunction": True}


@pytest.fixture
def emergency(gp):
    encounter = encounter_of(gp, findings=screened(CAUDA_EQUINA))
    workup = workup_for(gp, encounter)
    assert workup.disposition == "emergency"
    return encounter


def _url(encounter):
    return f"/encounters/{encounter.pk}/emergency/"


def test_the_emergency_banner_offers_the_one_step_path_in_both_languages(gp_web, emergency):
    page = gp_web.get(f"/encounters/{emergency.pk}/workup/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert f'action="{_url(emergency)}"' in page and "Send to hospital" in page

    page = gp_web.get(f"/encounters/{emergency.pk}/workup/", HTTP_ACCEPT_LANGUAGE="ru").content.decode()
    assert "Направить в стационар" in page


def test_one_step_accepts_the_emergency_workup_drafts_its_letters_and_asks_for_the_leaflet(gp_web, gp, emergency):
    response = gp_web.post(_url(emergency))

    workup = emergency.workups.get()
    emergency_referrals = list(workup.referrals.filter(urgency="emergency"))
    assert emergency_referrals
    assert all(row.decision == Decision.ACCEPTED for row in (*workup.items.all(), *workup.referrals.all()))
    letters = list(Referral.objects.filter(encounter=emergency).order_by("id"))
    assert {letter.recommendation_id for letter in letters} == {row.pk for row in emergency_referrals}
    # Drafted, not issued: the GP reads the letter on its confirmation page and issues it there.
    assert {letter.status for letter in letters} == {ReferralStatus.DRAFT}
    assert all(letter.urgency == "emergency" and letter.reason for letter in letters)
    assert response.status_code == 302 and response["Location"] == f"/referrals/{letters[0].pk}/issue/"
    assert Leaflet.objects.filter(encounter=emergency).count() == 1
    assert AuditEvent.objects.filter(action="create", object_type="referral").count() == len(letters)
    assert AuditEvent.objects.filter(action="create", object_type="leaflet").count() == 1

    confirmation = gp_web.get(response["Location"]).content.decode()
    assert "Check the letter and issue it" in confirmation


def test_a_second_press_drafts_no_second_letter(gp_web, emergency):
    gp_web.post(_url(emergency))
    letters = Referral.objects.filter(encounter=emergency).count()

    response = gp_web.post(_url(emergency))

    assert Referral.objects.filter(encounter=emergency).count() == letters
    assert response["Location"] == f"/encounters/{emergency.pk}/workup/#documents"


def test_a_workup_that_is_not_an_emergency_is_refused_and_nothing_changes(gp_web, gp):
    encounter = encounter_of(gp, findings=screened(URINARY))
    workup = workup_for(gp, encounter)
    assert workup.disposition != "emergency"

    response = gp_web.post(_url(encounter), follow=True)

    assert "This workup is not an emergency." in response.content.decode()
    assert not Referral.objects.filter(encounter=encounter).exists()
    assert not Leaflet.objects.filter(encounter=encounter).exists()
    assert not workup.items.filter(decision=Decision.ACCEPTED).exists()
    assert f'action="{_url(encounter)}"' not in gp_web.get(f"/encounters/{encounter.pk}/workup/").content.decode()


def test_a_finalized_encounter_is_refused(gp_web, gp, emergency):
    gp_web.post(f"/encounters/{emergency.pk}/finalize/", {"reason": "Sent by ambulance"})
    emergency.refresh_from_db()
    assert emergency.is_finalized

    response = gp_web.post(_url(emergency))

    assert response.status_code == 302
    assert not Referral.objects.filter(encounter=emergency).exists()


def test_another_clinics_gp_gets_a_404_and_nothing_is_made(other_gp, emergency):
    client = Client()
    client.force_login(other_gp)

    assert client.post(_url(emergency)).status_code == 404
    assert not Referral.objects.filter(encounter=emergency).exists()


def test_an_anonymous_caller_is_sent_to_log_in(emergency):
    response = Client().post(_url(emergency))

    assert response.status_code == 302 and "/login" in response["Location"]
    assert not Referral.objects.filter(encounter=emergency).exists()


def test_a_get_leads_back_to_the_workup_and_changes_nothing(gp_web, other_gp, emergency):
    """The address reloaded, bookmarked or opened after logging in: the workup, where the button is."""
    for method in (gp_web.get, gp_web.head):
        response = method(_url(emergency))
        assert response.status_code == 302 and response["Location"] == f"/encounters/{emergency.pk}/workup/"
    assert not Referral.objects.filter(encounter=emergency).exists()
    assert not emergency.workups.get().items.filter(decision=Decision.ACCEPTED).exists()

    client = Client()
    client.force_login(other_gp)
    assert client.get(_url(emergency)).status_code == 404


def test_issuing_the_emergency_letter_returns_to_the_checklist_of_what_is_left(gp_web, emergency):
    gp_web.post(_url(emergency))
    letter = Referral.objects.get(encounter=emergency, specialty="neurosurgery")
    page = gp_web.get(f"/encounters/{emergency.pk}/workup/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    checklist = page[page.index('id="emergency-status"') :]
    assert f'href="/referrals/{letter.pk}/issue/">check and issue it</a>' in checklist
    assert "Patient leaflet" in checklist and f'href="/encounters/{emergency.pk}/finalize/"' in checklist
    # Sent with a letter, never alone: the first step is the ambulance, and the banner says so too.
    assert "Call an ambulance (103 or 112) to take the patient to hospital" in checklist
    assert "EMERGENCY — call an ambulance and send to hospital now." in page

    letter.refresh_from_db()
    response = gp_web.post(
        f"/referrals/{letter.pk}/issue/", {"generation": letter.pdf_generation}, HTTP_ACCEPT_LANGUAGE="ru"
    )

    assert response["Location"] == f"/encounters/{emergency.pk}/workup/#emergency-status"
    letter.refresh_from_db()
    assert letter.status == ReferralStatus.ISSUED
    page = gp_web.get(response["Location"], HTTP_ACCEPT_LANGUAGE="ru").content.decode()
    checklist = page[page.index('id="emergency-status"') :]
    assert "Направление выдано." in page
    assert f'href="/referrals/{letter.pk}/issue/"' not in checklist
    assert "Отправка в стационар" in checklist and "Завершите приём" in checklist


def test_an_emergency_workup_offers_no_accept_all_and_no_primary_finalize(gp_web, emergency):
    """The one step already accepts what is pending: a second "accept all" only competes with it."""
    page = gp_web.get(f"/encounters/{emergency.pk}/workup/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert 'id="accept-all"' not in page
    assert 'class="button" id="finalize"' in page


def test_a_planned_letter_issued_stays_on_its_page(gp_web, gp):
    encounter = encounter_of(gp, findings=screened(URINARY))
    workup = workup_for(gp, encounter)
    row = workup.referrals.first()
    recommendation_decide(actor=actor_for(gp), recommendation=row, decision=Decision.ACCEPTED)
    gp_web.post(f"/workup-referrals/{row.pk}/letter/")
    letter = Referral.objects.get(encounter=encounter)
    assert letter.urgency != "emergency"

    response = gp_web.post(f"/referrals/{letter.pk}/issue/", {"generation": letter.pdf_generation})

    assert response["Location"] == f"/referrals/{letter.pk}/"


# -- over the API: an EHR with its own screens takes the same step --------------------------------------


def _api_url(encounter):
    return f"/api/v1/encounters/{encounter.pk}/emergency/"


def test_an_ehr_takes_the_emergency_step_and_gets_the_draft_letters_and_the_leaflet(gp, emergency):
    response = api_client_for(gp).post(_api_url(emergency), format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    letters = list(Referral.objects.filter(encounter=emergency).order_by("id"))
    assert [letter["id"] for letter in body["referrals"]] == [letter.pk for letter in letters]
    assert {letter["status"] for letter in body["referrals"]} == {"draft"}
    assert body["leaflet"]["id"] == Leaflet.objects.get(encounter=emergency).pk
    # The letter is issued only when asked for, after the EHR has shown it.
    issued = api_client_for(gp).post(f"/api/v1/referrals/{letters[0].pk}/issue/", format="json")
    assert issued.status_code == 200 and issued.json()["status"] == "issued"


def test_over_the_api_a_workup_that_is_not_an_emergency_is_a_400_naming_the_workup(gp):
    encounter = encounter_of(gp, findings=screened(URINARY))
    workup_for(gp, encounter)

    response = api_client_for(gp).post(_api_url(encounter), format="json")

    assert response.status_code == 400 and "workup" in response.json()
    assert not Referral.objects.filter(encounter=encounter).exists()


@pytest.mark.parametrize(("body", "field"), [({"urgency": "emergency"}, "urgency"), ([1], "body"), ("x", "body")])
def test_over_the_api_a_body_is_a_400_naming_it_and_nothing_is_made(gp, emergency, body, field):
    response = api_client_for(gp).post(_api_url(emergency), body, format="json")

    assert response.status_code == 400 and field in response.json()
    assert not Referral.objects.filter(encounter=emergency).exists()


def test_over_the_api_a_finalized_encounter_is_a_409(gp, gp_web, emergency):
    gp_web.post(f"/encounters/{emergency.pk}/finalize/", {"reason": "Sent by ambulance"})

    response = api_client_for(gp).post(_api_url(emergency), format="json")

    assert response.status_code == 409
    assert not Referral.objects.filter(encounter=emergency).exists()


def test_over_the_api_another_clinic_gets_a_404_and_an_anonymous_caller_a_401(other_gp, anonymous, emergency):
    assert api_client_for(other_gp).post(_api_url(emergency), format="json").status_code == 404
    assert anonymous.post(_api_url(emergency), format="json").status_code == 401
    assert not Referral.objects.filter(encounter=emergency).exists()


def test_the_api_step_is_documented_in_the_schema(anonymous):
    schema = anonymous.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    operation = schema["paths"]["/api/v1/encounters/{id}/emergency/"]["post"]

    assert operation["operationId"] == "encounter_emergency_documents"
    assert {"201", "400", "404", "409"} <= set(operation["responses"])
