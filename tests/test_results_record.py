"""Results in the record (GUIDANCE 6): entered after finalizing too, interpreted and flagged, refused
when implausible; the follow-up review; acknowledgement of abnormal results."""

import datetime

import pytest
from django.utils import timezone

from clinic.models import AuditEvent
from tests.record_factories import URINARY, actor_for, api_client_for, encounter_of, screened, workup_for
from workups.models import Decision, Result, Workup
from workups.services import recommendation_decide, result_enter


def finalized_urinary(gp, *, accept=True):
    """An encounter of lumbar numbness with urinary symptoms, its tests and referrals accepted, finalized."""
    encounter = encounter_of(gp, findings=screened(URINARY))
    workup = workup_for(gp, encounter)
    if accept:
        for row in [*workup.items.all(), *workup.referrals.all()]:
            recommendation_decide(actor=actor_for(gp), recommendation=row, decision=Decision.ACCEPTED)
    response = api_client_for(gp).post(f"/api/v1/encounters/{encounter.pk}/finalize/", format="json")
    assert response.status_code == 200
    encounter.refresh_from_db()
    return encounter, workup


def enter(api, encounter, **body):
    return api.post(f"/api/v1/encounters/{encounter.pk}/results/", body, format="json")


def test_a_result_is_entered_after_finalizing_flagged_and_linked_to_the_accepted_test(gp):
    encounter, workup = finalized_urinary(gp)

    response = enter(
        api_client_for(gp),
        encounter,
        code="res_nech_leukocytes",
        value=5000,
        performed_on="2024-03-04",
        note="Morning sample",
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["flag"] == "high" and body["abnormal"] is True
    assert body["reference"] == "≤ 2000 /mL" and body["unit"] == "/mL" and body["source"]
    assert body["item"] == workup.items.get(code="lab_nechiporenko").pk
    assert body["acknowledged"] is False and body["current"] is True
    assert body["performed_on"] == "2024-03-04"
    assert AuditEvent.objects.filter(action="create", object_type="result", object_id=str(body["id"])).exists()


def test_a_normal_and_a_boolean_result_are_flagged(gp):
    encounter, _ = finalized_urinary(gp)
    api = api_client_for(gp)

    normal = enter(api, encounter, code="res_hemoglobin", value=128)
    nitrite = enter(api, encounter, code="res_ua_nitrite", value=False)

    assert normal.status_code == 201 and normal.json()["flag"] == "normal"  # female: low below 120
    assert nitrite.status_code == 201 and nitrite.json()["flag"] == "negative"
    assert nitrite.json()["value"] is False


def test_a_test_not_accepted_is_not_linked(gp):
    encounter, _ = finalized_urinary(gp, accept=False)

    response = enter(api_client_for(gp), encounter, code="res_nech_leukocytes", value=1000)

    assert response.status_code == 201 and response.json()["item"] is None


@pytest.mark.parametrize(
    "body, field",
    [
        ({"code": "res_hemoglobin", "value": 13.2}, "value"),  # g/dL typed into a g/L field: refused, not flagged
        ({"code": "res_hemoglobin", "value": True}, "value"),
        ({"code": "res_ua_nitrite", "value": 1}, "value"),
        ({"code": "res_nonsense", "value": 1}, "code"),
        ({"code": 5, "value": 1}, "code"),
        ({"value": 120}, "code"),
        ({"code": "res_hemoglobin"}, "value"),
        ({"code": "res_hemoglobin", "value": "120"}, "value"),
        ({"code": "res_hemoglobin", "value": 120, "note": "a\x00b"}, "note"),
        ({"code": "res_hemoglobin", "value": 120, "note": "a\x07b"}, "note"),
        ({"code": "res_hemoglobin", "value": 120, "note": "x" * 2001}, "note"),
        ({"code": "res_hemoglobin", "value": 120, "performed_on": "2024-02-28"}, "performed_on"),  # before the visit
        ({"code": "res_hemoglobin", "value": 120, "performed_on": "04.03.2024"}, "performed_on"),
        ({"code": "res_hemoglobin", "value": 120, "unit": "g/L"}, "unit"),
    ],
)
def test_bad_results_are_refused_naming_the_problem(gp, body, field):
    encounter, _ = finalized_urinary(gp, accept=False)

    response = enter(api_client_for(gp), encounter, **body)

    assert response.status_code == 400
    assert field in response.json()
    assert not Result.objects.exists()


def test_every_problem_is_named_at_once(gp):
    encounter, _ = finalized_urinary(gp, accept=False)

    response = enter(api_client_for(gp), encounter, code="res_hemoglobin", value=13.2, note="a\x00", extra=1)

    assert response.status_code == 400
    assert {"value", "note", "extra"} <= set(response.json())


def test_a_result_performed_in_the_future_is_refused(gp, monkeypatch):
    encounter, _ = finalized_urinary(gp, accept=False)
    monkeypatch.setattr(timezone, "now", lambda: datetime.datetime(2024, 3, 5, 9, 0, tzinfo=datetime.UTC))

    response = enter(api_client_for(gp), encounter, code="res_crp", value=3, performed_on="2024-03-06")

    assert response.status_code == 400 and "performed_on" in response.json()


def test_a_new_value_supersedes_the_current_one_and_both_are_kept(gp):
    encounter, _ = finalized_urinary(gp)
    api = api_client_for(gp)
    first = enter(api, encounter, code="res_crp", value=30).json()

    second = enter(api, encounter, code="res_crp", value=3).json()
    listed = api.get(f"/api/v1/encounters/{encounter.pk}/results/")

    assert listed.status_code == 200
    rows = listed.json()
    assert [(row["id"], row["current"]) for row in rows] == [(second["id"], True), (first["id"], False)]
    assert rows[1]["superseded_by"] == second["id"]
    assert Result.objects.filter(encounter=encounter).count() == 2
    assert AuditEvent.objects.filter(action="list", object_type="result").exists()


def test_the_review_stores_a_follow_up_workup_whose_new_rows_are_decided_after_finalizing(gp):
    encounter, initial = finalized_urinary(gp)
    before = (initial.result, sorted(initial.items.values_list("code", "decision")))
    api = api_client_for(gp)
    enter(api, encounter, code="res_nech_leukocytes", value=5000)

    response = api.post(f"/api/v1/encounters/{encounter.pk}/results/review/", format="json")

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["kind"] == "follow_up" and body["disposition"] == "urgent"
    assert [row["code"] for row in body["results"]] == ["res_nech_leukocytes"]
    rows = {row["code"]: row for row in body["items"]}
    assert rows["lab_urine_culture"]["new"] is True and rows["lab_urine_culture"]["decision"] == "pending"
    assert rows["lab_nechiporenko"]["new"] is False and rows["lab_nechiporenko"]["decision"] == "accepted"
    # The results raised the kidney ultrasound to urgent: it is asked again.
    assert rows["us_kidneys"]["urgency"] == "urgent" and rows["us_kidneys"]["decision"] == "pending"
    referrals = {row["specialty"]: row for row in body["referrals"]}
    assert referrals["nephrology"]["urgency"] == "urgent"

    accepted = api.patch(
        f"/api/v1/workup-items/{rows['lab_urine_culture']['id']}/", {"decision": "accepted"}, format="json"
    )
    locked = api.patch(
        f"/api/v1/workup-items/{initial.items.first().pk}/", {"decision": "declined", "reason": "x"}, format="json"
    )

    assert accepted.status_code == 200 and accepted.json()["decision"] == "accepted"
    assert locked.status_code == 409
    initial.refresh_from_db()
    assert (initial.result, sorted(initial.items.values_list("code", "decision"))) == before
    follow_up = Workup.objects.get(pk=body["id"])
    assert follow_up.case["results"] == {"res_nech_leukocytes": 5000}
    assert set(follow_up.translations) == {"ru"}
    assert follow_up.translations["ru"]["results"][0]["flag"] == "high"
    assert AuditEvent.objects.filter(action="review", object_type="workup", object_id=str(body["id"])).exists()


def test_reviewing_again_without_new_results_stores_nothing_new(gp):
    encounter, _ = finalized_urinary(gp)
    api = api_client_for(gp)
    enter(api, encounter, code="res_crp", value=12)
    first = api.post(f"/api/v1/encounters/{encounter.pk}/results/review/", format="json")

    again = api.post(f"/api/v1/encounters/{encounter.pk}/results/review/", format="json")

    assert first.status_code == 201 and again.status_code == 200
    assert again.json()["id"] == first.json()["id"]


def test_a_review_without_results_or_with_a_body_is_refused(gp):
    encounter, _ = finalized_urinary(gp)
    api = api_client_for(gp)

    empty = api.post(f"/api/v1/encounters/{encounter.pk}/results/review/", format="json")
    enter(api, encounter, code="res_crp", value=12)
    body = api.post(f"/api/v1/encounters/{encounter.pk}/results/review/", {"force": True}, format="json")

    assert empty.status_code == 400 and "results" in empty.json()
    assert body.status_code == 400 and "force" in body.json()


def test_a_follow_up_on_a_draft_does_not_confuse_the_initial_workup(gp):
    encounter = encounter_of(gp, findings=screened(URINARY))
    initial = workup_for(gp, encounter)
    actor = actor_for(gp)
    result_enter(actor=actor, encounter=encounter, code="res_nech_leukocytes", value=5000)
    api = api_client_for(gp)

    review = api.post(f"/api/v1/encounters/{encounter.pk}/results/review/", format="json")
    latest = api.get(f"/api/v1/encounters/{encounter.pk}/workup/")
    unfinished = api.get(f"/api/v1/encounters/{encounter.pk}/unfinished/")

    assert review.status_code == 201
    assert latest.json()["id"] == review.json()["id"] and latest.json()["stale"] is False
    assert unfinished.status_code == 200
    assert Workup.objects.filter(encounter=encounter, kind="initial").get().pk == initial.pk
    # Changing the encounter regenerates the initial workup, and only it.
    api.patch(f"/api/v1/encounters/{encounter.pk}/", {"duration_days": 12}, format="json")
    regenerated = api.post(f"/api/v1/encounters/{encounter.pk}/workup/")
    assert regenerated.status_code == 201 and regenerated.json()["kind"] == "initial"
    assert Workup.objects.filter(encounter=encounter, kind="follow_up").count() == 1


def test_an_abnormal_result_is_acknowledged_once_with_a_note(gp):
    encounter, _ = finalized_urinary(gp)
    api = api_client_for(gp)
    abnormal = enter(api, encounter, code="res_crp", value=40).json()

    no_note = api.post(f"/api/v1/results/{abnormal['id']}/acknowledge/", {}, format="json")
    blank = api.post(f"/api/v1/results/{abnormal['id']}/acknowledge/", {"note": "  "}, format="json")
    done = api.post(f"/api/v1/results/{abnormal['id']}/acknowledge/", {"note": "Called the patient in"}, format="json")
    twice = api.post(f"/api/v1/results/{abnormal['id']}/acknowledge/", {"note": "Again"}, format="json")

    assert no_note.status_code == 400 and "note" in no_note.json()
    assert blank.status_code == 400 and "note" in blank.json()
    assert done.status_code == 200
    assert done.json()["acknowledged"] is True and done.json()["acknowledgement_note"] == "Called the patient in"
    assert done.json()["acknowledged_by"] == gp.username
    assert twice.status_code == 409
    assert (
        AuditEvent.objects.filter(action="acknowledge", object_type="result", object_id=str(abnormal["id"])).count()
        == 1
    )


def test_a_normal_or_superseded_result_cannot_be_acknowledged(gp):
    encounter, _ = finalized_urinary(gp)
    api = api_client_for(gp)
    normal = enter(api, encounter, code="res_crp", value=2).json()
    old = enter(api, encounter, code="res_esr", value=60).json()
    enter(api, encounter, code="res_esr", value=70)

    assert api.post(f"/api/v1/results/{normal['id']}/acknowledge/", {"note": "ok"}, format="json").status_code == 409
    assert api.post(f"/api/v1/results/{old['id']}/acknowledge/", {"note": "ok"}, format="json").status_code == 409


@pytest.mark.parametrize("bad", [{"note": 5}, {"note": "a\x00b"}, {"note": "x" * 2001}, {"note": "ok", "why": 1}, []])
def test_a_bad_acknowledgement_is_named(gp, bad):
    encounter, _ = finalized_urinary(gp)
    api = api_client_for(gp)
    abnormal = enter(api, encounter, code="res_crp", value=40).json()

    response = api.post(f"/api/v1/results/{abnormal['id']}/acknowledge/", bad, format="json")

    assert response.status_code == 400


def test_another_clinic_gets_404_on_every_results_endpoint(gp, other_gp):
    encounter, _ = finalized_urinary(gp)
    result = enter(api_client_for(gp), encounter, code="res_crp", value=40).json()
    stranger = api_client_for(other_gp)

    assert stranger.get(f"/api/v1/encounters/{encounter.pk}/results/").status_code == 404
    assert enter(stranger, encounter, code="res_crp", value=3).status_code == 404
    assert stranger.post(f"/api/v1/encounters/{encounter.pk}/results/review/").status_code == 404
    assert stranger.get(f"/api/v1/results/{result['id']}/").status_code == 404
    assert (
        stranger.post(f"/api/v1/results/{result['id']}/acknowledge/", {"note": "x"}, format="json").status_code == 404
    )
    assert Result.objects.count() == 1 and Result.objects.get().acknowledged_at is None


def test_an_anonymous_caller_gets_401_on_every_results_endpoint(gp, anonymous):
    encounter, _ = finalized_urinary(gp)
    result = result_enter(actor=actor_for(gp), encounter=encounter, code="res_crp", value=40)

    assert anonymous.get(f"/api/v1/encounters/{encounter.pk}/results/").status_code == 401
    assert enter(anonymous, encounter, code="res_crp", value=3).status_code == 401
    assert anonymous.post(f"/api/v1/encounters/{encounter.pk}/results/review/").status_code == 401
    assert anonymous.get(f"/api/v1/results/{result.pk}/").status_code == 401
    assert anonymous.post(f"/api/v1/results/{result.pk}/acknowledge/", {"note": "x"}, format="json").status_code == 401


def test_the_result_reads_in_russian(gp):
    encounter, _ = finalized_urinary(gp)
    result = result_enter(actor=actor_for(gp), encounter=encounter, code="res_hemoglobin", value=100)

    response = api_client_for(gp).get(f"/api/v1/results/{result.pk}/", HTTP_ACCEPT_LANGUAGE="ru")

    assert response.json()["flag"] == "low" and response.json()["name"] == "Гемоглобин"
    assert "г/л" in response.json()["reference"]
