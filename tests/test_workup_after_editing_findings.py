"""Editing an encounter's findings and working the workup out again keeps what the GP decided where it still holds:
a test the GP accepted that the engine no longer recommends stays, as the GP's order, still awaited and saying why (the
patient may be booked for it already); a test declined as routine that the new findings make urgent is asked again
(the reason given for a routine test does not cover an urgent one); a decline at the same urgency stands.
"""

from django.test import Client
from django.utils import translation

from referrals import documents
from tests.record_factories import URINARY, actor_for, encounter_of, screened, workup_for
from workups.models import KEPT_ACCEPTED, Decision
from workups.services import recommendation_decide, workup_generate


def decide(gp, workup, code, decision, reason=""):
    row = workup.items.get(code=code)
    recommendation_decide(actor=actor_for(gp), recommendation=row, decision=decision, reason=reason)


def edited(gp, encounter, findings):
    encounter.findings = findings
    encounter.save(update_fields=["findings"])
    return workup_generate(actor=actor_for(gp), encounter=encounter)


def test_an_accepted_test_the_new_findings_no_longer_call_for_stays_accepted_and_awaited(gp):
    encounter = encounter_of(gp, findings=screened(URINARY))
    decide(gp, workup_for(gp, encounter), "us_kidneys", Decision.ACCEPTED)

    again = edited(gp, encounter, screened({"loc_lumbar": True}))  # no urinary findings: observe
    assert again.disposition == "observe"
    kept = again.items.get(code="us_kidneys")
    assert kept.decision == Decision.ACCEPTED and kept.added_by_clinician and kept.rationale == KEPT_ACCEPTED
    assert kept.awaiting_since is not None  # still on the worklist as awaited
    assert kept.rules  # what fired it then stays with it
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(gp)
    with translation.override("en"):
        page = client.get(f"/encounters/{encounter.pk}/workup/").content.decode()
    assert "Accepted before the findings changed; the guidance no longer recommends it." in page
    # On a requisition it is the GP's order, not a sentence about the screen.
    assert documents._rationale(kept, {}, "ru") == "Назначено врачом"


def test_a_declined_test_is_asked_again_when_the_new_findings_make_it_urgent(gp):
    encounter = encounter_of(gp, findings=screened(URINARY))
    workup = workup_for(gp, encounter)
    decide(gp, workup, "lab_cbc", Decision.DECLINED, "Done five days ago, normal")
    decide(gp, workup, "lab_urinalysis", Decision.DECLINED, "Done last month")

    again = edited(gp, encounter, {**screened(URINARY), "rf_weight_loss": True})
    cbc = again.items.get(code="lab_cbc")
    assert cbc.urgency == "urgent"
    assert cbc.decision == Decision.PENDING and cbc.decision_reason == ""
    # Still routine: the decline stands, with its reason.
    urinalysis = again.items.get(code="lab_urinalysis")
    assert urinalysis.decision == Decision.DECLINED and urinalysis.decision_reason == "Done last month"


def test_a_declined_test_no_longer_recommended_is_simply_gone(gp):
    encounter = encounter_of(gp, findings=screened(URINARY))
    decide(gp, workup_for(gp, encounter), "us_kidneys", Decision.DECLINED, "Not now")
    again = edited(gp, encounter, screened({"loc_lumbar": True}))
    assert not again.items.filter(code="us_kidneys").exists()


def test_a_decision_taken_after_a_review_of_the_results_stands_when_the_findings_are_edited(gp):
    from workups.services import result_enter, workup_review

    encounter = encounter_of(gp, findings=screened(URINARY))
    decide(gp, workup_for(gp, encounter), "us_kidneys", Decision.ACCEPTED)
    # A Nechiporenko count of 5000 makes the ultrasound urgent: the follow-up asks again, and the GP declines it.
    result_enter(actor=actor_for(gp), encounter=encounter, code="res_nech_leukocytes", value=5000)
    follow_up, _created = workup_review(actor=actor_for(gp), encounter=encounter)
    decide(gp, follow_up, "us_kidneys", Decision.DECLINED, reason="Booked at the hospital")
    decide(gp, follow_up, "lab_cbc", Decision.ACCEPTED)

    again = edited(gp, encounter, screened({**URINARY, "sx_stiffness": True}))

    # The decisions given on the follow-up, not the ones of the first workup before it.
    declined = again.items.get(code="us_kidneys")
    assert (declined.decision, declined.decision_reason) == (Decision.DECLINED, "Booked at the hospital")
    assert declined.awaiting_since is None
    assert again.items.get(code="lab_cbc").decision == Decision.ACCEPTED
