"""Finalizing asks about what is unfinished, and an untouched emergency needs a reason; "accept all
recommended" accepts what is pending and leaves what the GP declined."""

from django.test import Client

from clinic.models import Encounter
from referrals import services as referral_services
from tests.record_factories import actor_for, api_client_for, encounter_of, screened, workup_for
from workups.models import Decision
from workups.services import recommendation_decide, result_acknowledge, result_enter

CAUDA_EQUINA = {"loc_lumbar": True, "rf_saddle_anesthesia": True, "rf_bladder_dysfunction": True}
URINARY = {"loc_lumbar": True, "sx_urinary_frequency": True, "ex_cva_tenderness": True}


def unfinished(api, encounter):
    response = api.get(f"/api/v1/encounters/{encounter.pk}/unfinished/")
    assert response.status_code == 200
    return response.json()


def test_an_emergency_with_nothing_acted_on_lists_it_and_needs_a_reason_to_finalize(gp):
    encounter = encounter_of(gp, findings=screened(CAUDA_EQUINA))
    workup_for(gp, encounter)
    api = api_client_for(gp)

    listed = unfinished(api, encounter)
    refused = api.post(f"/api/v1/encounters/{encounter.pk}/finalize/", {}, format="json")
    encounter.refresh_from_db()

    assert listed["emergency_untouched"] is True
    assert {row["urgency"] for row in listed["pending_urgent"]} == {"emergency"}
    assert refused.status_code == 400 and "reason" in refused.json()
    assert encounter.status == "draft"


def test_an_emergency_is_finalized_with_the_reason_recorded(gp):
    encounter = encounter_of(gp, findings=screened(CAUDA_EQUINA))
    workup_for(gp, encounter)

    response = api_client_for(gp).post(
        f"/api/v1/encounters/{encounter.pk}/finalize/",
        {"reason": "Sent by ambulance to the neurosurgical unit"},
        format="json",
    )

    assert response.status_code == 200
    encounter = Encounter.objects.get(pk=encounter.pk)
    assert encounter.status == "finalized"
    assert encounter.finalize_reason == "Sent by ambulance to the neurosurgical unit"


def test_once_an_emergency_row_is_acted_on_no_reason_is_needed(gp):
    encounter = encounter_of(gp, findings=screened(CAUDA_EQUINA))
    workup = workup_for(gp, encounter)
    recommendation_decide(
        actor=actor_for(gp),
        recommendation=workup.referrals.filter(urgency="emergency").first(),
        decision=Decision.ACCEPTED,
    )

    response = api_client_for(gp).post(f"/api/v1/encounters/{encounter.pk}/finalize/", format="json")

    assert response.status_code == 200


def test_unasked_red_flags_accepted_referrals_without_a_letter_and_draft_letters_are_listed(gp):
    findings = {**URINARY, "rf_fever": False}
    encounter = encounter_of(gp, findings=findings)
    workup = workup_for(gp, encounter)
    actor = actor_for(gp)
    referrals = list(workup.referrals.all())
    for row in referrals:
        recommendation_decide(actor=actor, recommendation=row, decision=Decision.ACCEPTED)
    draft = referral_services.referral_create(actor=actor, encounter=encounter, recommendation=referrals[0])

    listed = unfinished(api_client_for(gp), encounter)

    assert "rf_fever" not in {row["code"] for row in listed["red_flags_not_asked"]}
    assert "rf_saddle_anesthesia" in {row["code"] for row in listed["red_flags_not_asked"]}
    # The one with a draft letter is listed there, not twice.
    assert {row["id"] for row in listed["referrals_without_letter"]} == {row.pk for row in referrals[1:]}
    assert [row["id"] for row in listed["draft_letters"]] == [draft.pk]
    assert listed["anything"] is True and listed["emergency_untouched"] is False


def test_a_finished_routine_encounter_has_nothing_unfinished(gp):
    encounter = encounter_of(gp, findings=screened({"loc_lumbar": True, "pattern_positional": True}))
    workup_for(gp, encounter)

    listed = unfinished(api_client_for(gp), encounter)

    assert listed["anything"] is False


def test_accept_all_accepts_what_is_pending_and_keeps_what_was_declined(gp):
    encounter = encounter_of(gp, findings=screened(URINARY))
    workup = workup_for(gp, encounter)
    declined = workup.items.first()
    recommendation_decide(
        actor=actor_for(gp), recommendation=declined, decision=Decision.DECLINED, reason="Done last week"
    )

    response = api_client_for(gp).post(f"/api/v1/encounters/{encounter.pk}/workup/accept-all/", format="json")

    assert response.status_code == 200
    decisions = {row["id"]: row["decision"] for row in response.json()["items"] + response.json()["referrals"]}
    assert decisions.pop(declined.pk) == "declined"
    assert set(decisions.values()) == {"accepted"}


def test_another_clinic_gets_404_for_the_checklist_and_accept_all(gp, other_gp):
    encounter = encounter_of(gp, findings=screened(URINARY))
    workup_for(gp, encounter)
    stranger = api_client_for(other_gp)

    assert stranger.get(f"/api/v1/encounters/{encounter.pk}/unfinished/").status_code == 404
    assert stranger.post(f"/api/v1/encounters/{encounter.pk}/workup/accept-all/").status_code == 404


def test_an_anonymous_caller_gets_401(anonymous, gp):
    encounter = encounter_of(gp, findings=screened(URINARY))

    assert anonymous.get(f"/api/v1/encounters/{encounter.pk}/unfinished/").status_code == 401
    assert anonymous.post(f"/api/v1/encounters/{encounter.pk}/workup/accept-all/").status_code == 401


def test_a_bad_finalize_reason_is_named(gp):
    encounter = encounter_of(gp, findings=screened(CAUDA_EQUINA))
    workup_for(gp, encounter)
    api = api_client_for(gp)

    for bad in ({"reason": 5}, {"reason": "x" * 2001}, {"reason": "a\x00b"}, {"why": "unknown field"}):
        response = api.post(f"/api/v1/encounters/{encounter.pk}/finalize/", bad, format="json")
        assert response.status_code == 400, bad
        assert set(response.json()) <= {"reason", "why"}


def test_accept_all_on_a_finalized_encounter_is_refused(gp):
    encounter = encounter_of(gp, findings=screened(URINARY))
    workup_for(gp, encounter)
    api = api_client_for(gp)
    api.post(f"/api/v1/encounters/{encounter.pk}/finalize/", format="json")

    assert api.post(f"/api/v1/encounters/{encounter.pk}/workup/accept-all/").status_code == 409


def test_abnormal_results_not_yet_acknowledged_are_listed_until_they_are(gp):
    encounter = encounter_of(gp, findings=screened(URINARY))
    workup_for(gp, encounter)
    actor = actor_for(gp)
    high = result_enter(actor=actor, encounter=encounter, code="res_nech_leukocytes", value=6500)
    result_enter(actor=actor, encounter=encounter, code="res_nech_erythrocytes", value=500)  # normal: not listed
    api = api_client_for(gp)

    listed = unfinished(api, encounter)["abnormal_results_unacknowledged"]
    page = Client(HTTP_ACCEPT_LANGUAGE="ru")
    page.force_login(gp)
    html = page.get(f"/encounters/{encounter.pk}/finalize/").content.decode()
    result_acknowledge(actor=actor, result=high, note="Urine culture sent, seen tomorrow")

    assert [(row["code"], row["flag"]) for row in listed] == [("res_nech_leukocytes", "high")]
    assert "Отклонения в результатах, не подтверждённые врачом" in html and f"#result-{high.pk}" in html
    assert unfinished(api, encounter)["abnormal_results_unacknowledged"] == []


def test_a_referral_issued_before_the_review_is_not_offered_again_after_it(gp):
    encounter = encounter_of(gp, findings=screened(URINARY))
    workup = workup_for(gp, encounter)
    actor = actor_for(gp)
    for row in [*workup.items.all(), *workup.referrals.all()]:
        recommendation_decide(actor=actor, recommendation=row, decision=Decision.ACCEPTED)
    issued = {}
    for row in workup.referrals.all():
        letter = referral_services.referral_create(actor=actor, encounter=encounter, recommendation=row)
        issued[row.specialty] = referral_services.referral_issue(actor=actor, referral=letter)
    result_enter(actor=actor, encounter=encounter, code="res_hemoglobin", value=135)
    api = api_client_for(gp)
    assert unfinished(api, encounter)["referrals_without_letter"] == []

    review = api.post(f"/api/v1/encounters/{encounter.pk}/results/review/", format="json")
    assert review.status_code in (200, 201), review.content
    followup = encounter.workups.order_by("-created_at", "-id").first()
    assert followup.pk != workup.pk and set(followup.referrals.values_list("specialty", flat=True)) == set(issued)

    assert unfinished(api, encounter)["referrals_without_letter"] == []
    page = Client(HTTP_ACCEPT_LANGUAGE="en")
    page.force_login(gp)
    html = page.get(f"/encounters/{encounter.pk}/workup/").content.decode()
    assert "Write the letter" not in html
    # A cancelled letter no longer stands for its referral.
    for letter in issued.values():
        referral_services.referral_status_change(
            actor=actor, referral=letter, status="cancelled", reason="Wrong clinic"
        )
    assert {row["name"] for row in unfinished(api, encounter)["referrals_without_letter"]}
