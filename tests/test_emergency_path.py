"""The emergency path in one step: a GP whose patient must go to hospital now accepts the emergency workup, gets a
draft letter for each emergency referral and the patient leaflet with one button, then reads the letter and issues
it. A letter is never issued unseen; another clinic's encounter is a 404; a workup that is not an emergency, or a
finalized encounter, is refused with a message and changes nothing."""

import pytest
from django.test import Client

from clinic.models import AuditEvent
from referrals.models import Leaflet, Referral, ReferralStatus
from tests.record_factories import URINARY, encounter_of, screened, workup_for
from workups.models import Decision

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


def test_a_get_is_refused(gp_web, emergency):
    assert gp_web.get(_url(emergency)).status_code == 405
