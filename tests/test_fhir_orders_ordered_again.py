"""A revoked ServiceRequest is final for an EHR (it cancels the test at the lab). So a test the GP took back and
then accepts again is a new order, the next round (`item-<n>-r2`), which `replaces` the revoked one; the revoked
one stays readable as it was. A test taken back and proposed again by a later workup is a proposal until the GP
accepts it; an order that a later workup no longer has is revoked."""

import json

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from fhir.resources.R4B.requestgroup import RequestGroup
from fhir.resources.R4B.servicerequest import ServiceRequest

from clinic.services import encounter_update
from tests.factories import MembershipFactory
from tests.record_factories import (
    LOCATION_ONLY,
    URINARY,
    actor_for,
    api_client_for,
    clinic_of,
    encounter_of,
    screened,
    workup_for,
)
from workups.models import Decision, ItemOrder
from workups.services import recommendation_decide, result_enter, workup_current, workup_review


def read(client, path, status=200):
    response = client.get(path)
    assert response.status_code == status, response.content
    return json.loads(response.content) if status == 200 else None


def decide(gp, row, decision, reason=""):
    recommendation_decide(actor=actor_for(gp), recommendation=row, decision=decision, reason=reason)


def action_of(group, code):
    [action] = [action for action in group["action"] if action["code"][0]["coding"][0]["code"] == code]
    return action


@pytest.fixture
def colleague(gp):
    """Another GP of the same clinic."""
    return MembershipFactory(
        clinic=clinic_of(gp), user__username="gp_vera", user__first_name="Вера", user__last_name="Смирнова"
    ).user


@pytest.fixture
def encounter(gp):
    """The default (urinary) case: its workup has the kidney ultrasound, and CRP with ESR."""
    return encounter_of(gp)


def test_a_test_taken_back_and_accepted_again_is_a_new_order_that_replaces_the_revoked_one(gp, gp_api, encounter):
    ultrasound = workup_for(gp, encounter).items.get(code="us_kidneys")
    decide(gp, ultrasound, Decision.ACCEPTED)
    decide(gp, ultrasound, Decision.DECLINED, reason="The patient is away this month")

    decide(gp, ultrasound, Decision.ACCEPTED)

    first, second = f"item-{ultrasound.pk}", f"item-{ultrasound.pk}-r2"
    revoked = read(gp_api, f"/fhir/ServiceRequest/{first}")
    assert (revoked["status"], revoked["note"]) == ("revoked", [{"text": "The patient is away this month"}])
    again = read(gp_api, f"/fhir/ServiceRequest/{second}")
    ServiceRequest.model_validate(again)
    assert (again["status"], again["intent"]) == ("active", "order")
    assert again["replaces"] == [{"reference": f"ServiceRequest/{first}"}]
    assert "note" not in again
    assert again["authoredOn"] >= revoked["authoredOn"]
    # The EHR finds both in the encounter; the workup's action names the order in force.
    found = read(gp_api, f"/fhir/ServiceRequest?encounter={encounter.pk}&_count=100")
    statuses = {entry["resource"]["id"]: entry["resource"]["status"] for entry in found["entry"]}
    assert (statuses[first], statuses[second]) == ("revoked", "active")
    group = read(gp_api, f"/fhir/RequestGroup/workup-{encounter.pk}")
    RequestGroup.model_validate(group)
    assert action_of(group, "us_kidneys")["resource"] == {"reference": f"ServiceRequest/{second}"}

    # Taken back and accepted once more: a third order, replacing the second, which is now revoked too.
    decide(gp, ultrasound, Decision.DECLINED, reason="Done elsewhere")
    decide(gp, ultrasound, Decision.ACCEPTED)
    assert read(gp_api, f"/fhir/ServiceRequest/{second}")["status"] == "revoked"
    third = read(gp_api, f"/fhir/ServiceRequest/item-{ultrasound.pk}-r3")
    assert (third["status"], third["replaces"]) == ("active", [{"reference": f"ServiceRequest/{second}"}])
    assert read(gp_api, f"/fhir/ServiceRequest/{first}")["status"] == "revoked"


def test_a_test_set_back_to_pending_is_the_same_order_on_hold_and_accepted_again_the_same_order(gp, gp_api, encounter):
    ultrasound = workup_for(gp, encounter).items.get(code="us_kidneys")
    decide(gp, ultrasound, Decision.ACCEPTED)

    decide(gp, ultrasound, Decision.PENDING)
    assert read(gp_api, f"/fhir/ServiceRequest/item-{ultrasound.pk}")["status"] == "on-hold"
    decide(gp, ultrasound, Decision.ACCEPTED)

    assert read(gp_api, f"/fhir/ServiceRequest/item-{ultrasound.pk}")["status"] == "active"
    read(gp_api, f"/fhir/ServiceRequest/item-{ultrasound.pk}-r2", 404)
    assert ItemOrder.objects.filter(encounter=encounter, code="us_kidneys").count() == 1


def test_a_test_ordered_as_two_is_ordered_again_as_two_each_replacing_its_own(gp, gp_api):
    # With a fever, the urinary case is a kidney infection: CRP with ESR among its tests.
    encounter = encounter_of(gp, findings=screened({**URINARY, "rf_fever": True}))
    inflammation = workup_for(gp, encounter).items.get(code="lab_crp_esr")
    decide(gp, inflammation, Decision.ACCEPTED)
    decide(gp, inflammation, Decision.DECLINED, reason="Taken yesterday")

    decide(gp, inflammation, Decision.ACCEPTED)

    for index in (1, 2):
        assert read(gp_api, f"/fhir/ServiceRequest/item-{inflammation.pk}-{index}")["status"] == "revoked"
        again = read(gp_api, f"/fhir/ServiceRequest/item-{inflammation.pk}-r2-{index}")
        assert again["status"] == "active"
        assert again["replaces"] == [{"reference": f"ServiceRequest/item-{inflammation.pk}-{index}"}]
        assert again["requisition"]["value"] == f"item-{inflammation.pk}-r2"
    group = read(gp_api, f"/fhir/RequestGroup/workup-{encounter.pk}")
    assert [sub["resource"] for sub in action_of(group, "lab_crp_esr")["action"]] == [
        {"reference": f"ServiceRequest/item-{inflammation.pk}-r2-{index}"} for index in (1, 2)
    ]
    # A result answers the order in force, not the revoked one.
    result_enter(actor=actor_for(gp), encounter=encounter, code="res_crp", value=2)
    found = read(gp_api, f"/fhir/Observation?encounter={encounter.pk}&_count=200")
    [crp] = [entry["resource"] for entry in found["entry"] if entry["resource"]["id"].startswith("result-")]
    assert crp["basedOn"] == [{"reference": f"ServiceRequest/item-{inflammation.pk}-r2-1"}]


def test_a_test_taken_back_and_proposed_again_is_a_proposal_until_accepted(gp, gp_api, encounter):
    ultrasound = workup_for(gp, encounter).items.get(code="us_kidneys")
    decide(gp, ultrasound, Decision.ACCEPTED)
    decide(gp, ultrasound, Decision.DECLINED, reason="Routine: it can wait")
    # A Nechiporenko count of 5000 makes the ultrasound urgent: the follow-up asks the GP again.
    result_enter(actor=actor_for(gp), encounter=encounter, code="res_nech_leukocytes", value=5000)
    follow_up, created = workup_review(actor=actor_for(gp), encounter=encounter)
    again = follow_up.items.get(code="us_kidneys")
    assert created and (again.urgency, again.decision) == ("urgent", "pending")

    # The order taken back stays revoked (the EHR cancelled it); what the workup asks now is a proposal.
    assert read(gp_api, f"/fhir/ServiceRequest/item-{ultrasound.pk}")["status"] == "revoked"
    read(gp_api, f"/fhir/ServiceRequest/item-{ultrasound.pk}-r2", 404)
    group = read(gp_api, f"/fhir/RequestGroup/workup-{encounter.pk}")
    RequestGroup.model_validate(group)
    reference = action_of(group, "us_kidneys")["resource"]["reference"]
    [proposal] = [resource for resource in group["contained"] if f"#{resource['id']}" == reference]
    assert (proposal["status"], proposal["intent"], proposal["priority"]) == ("draft", "proposal", "urgent")

    decide(gp, again, Decision.ACCEPTED)

    order = read(gp_api, f"/fhir/ServiceRequest/item-{ultrasound.pk}-r2")
    assert (order["status"], order["priority"]) == ("active", "urgent")
    assert order["replaces"] == [{"reference": f"ServiceRequest/item-{ultrasound.pk}"}]


def test_an_order_a_later_workup_no_longer_has_is_revoked_and_accepted_again_is_a_new_order(gp, gp_api, encounter):
    actor = actor_for(gp)
    ultrasound = workup_for(gp, encounter).items.get(code="us_kidneys")
    decide(gp, ultrasound, Decision.ACCEPTED)
    decide(gp, ultrasound, Decision.PENDING)  # on hold: an order the GP has not confirmed

    # The findings are corrected: no urinary symptoms, so no kidney ultrasound.
    encounter = encounter_update(actor=actor, encounter=encounter, data={"findings": screened(LOCATION_ONLY)})
    assert not workup_current(actor=actor, encounter=encounter).items.filter(code="us_kidneys").exists()
    assert read(gp_api, f"/fhir/ServiceRequest/item-{ultrasound.pk}")["status"] == "revoked"

    encounter = encounter_update(actor=actor, encounter=encounter, data={"findings": screened(URINARY)})
    back = workup_current(actor=actor, encounter=encounter).items.get(code="us_kidneys")
    assert back.decision == "pending"
    read(gp_api, f"/fhir/ServiceRequest/item-{ultrasound.pk}-r2", 404)
    decide(gp, back, Decision.ACCEPTED)

    assert read(gp_api, f"/fhir/ServiceRequest/item-{ultrasound.pk}")["status"] == "revoked"
    assert read(gp_api, f"/fhir/ServiceRequest/item-{ultrasound.pk}-r2")["status"] == "active"


@pytest.mark.parametrize("suffix", ["-r1", "-r02", "-r3", "-R2", "-r2-3", "-r"])
def test_an_order_round_that_was_never_placed_is_a_404(gp, gp_api, encounter, suffix):
    ultrasound = workup_for(gp, encounter).items.get(code="us_kidneys")
    decide(gp, ultrasound, Decision.ACCEPTED)
    decide(gp, ultrasound, Decision.DECLINED, reason="Not now")
    decide(gp, ultrasound, Decision.ACCEPTED)

    read(gp_api, f"/fhir/ServiceRequest/item-{ultrasound.pk}{suffix}", 404)


def test_another_clinics_ehr_reads_a_404_for_an_order_placed_again(gp, gp_api, other_gp, encounter):
    ultrasound = workup_for(gp, encounter).items.get(code="us_kidneys")
    decide(gp, ultrasound, Decision.ACCEPTED)
    decide(gp, ultrasound, Decision.DECLINED, reason="Not now")
    decide(gp, ultrasound, Decision.ACCEPTED)
    path = f"/fhir/ServiceRequest/item-{ultrasound.pk}-r2"
    assert read(gp_api, path)["status"] == "active"

    read(api_client_for(other_gp), path, 404)
    found = read(api_client_for(other_gp), f"/fhir/ServiceRequest?encounter={encounter.pk}")
    assert found.get("entry", []) == []


@pytest.mark.django_db(transaction=True)
def test_the_upgrade_makes_an_order_of_every_test_ordered_before_it_revoked_where_taken_back(gp):
    actor = actor_for(gp)
    kept, taken_back, dropped = encounter_of(gp), encounter_of(gp), encounter_of(gp)
    for each in (kept, taken_back, dropped):
        decide(gp, workup_for(gp, each).items.get(code="us_kidneys"), Decision.ACCEPTED)
    decide(gp, taken_back.workups.get().items.get(code="us_kidneys"), Decision.DECLINED, reason="Done elsewhere")
    on_hold = dropped.workups.get().items.get(code="us_kidneys")
    decide(gp, on_hold, Decision.PENDING)
    dropped = encounter_update(actor=actor, encounter=dropped, data={"findings": screened(LOCATION_ONLY)})
    workup_current(actor=actor, encounter=dropped)
    before = {
        (order.encounter_id, order.code): (order.round, order.revoked_at is not None, order.revoked_reason)
        for order in ItemOrder.objects.filter(code="us_kidneys")
    }
    assert before == {
        (kept.pk, "us_kidneys"): (1, False, ""),
        (taken_back.pk, "us_kidneys"): (1, True, "Done elsewhere"),
        (dropped.pk, "us_kidneys"): (1, True, ""),
    }

    executor = MigrationExecutor(connection)
    executor.migrate([("workups", "0008_ordered_at")])  # before the orders were kept
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes("workups"))

    after = {
        (order.encounter_id, order.code): (order.round, order.revoked_at is not None, order.revoked_reason)
        for order in ItemOrder.objects.filter(code="us_kidneys")
    }
    assert after == before
    assert ItemOrder.objects.get(encounter=kept, code="us_kidneys").ordered_by_id == gp.pk


def asked_again_after_a_result(gp, encounter, ultrasound):
    """A Nechiporenko count of 5000 makes the ultrasound urgent; the follow-up asks the GP again. Its row there."""
    result_enter(actor=actor_for(gp), encounter=encounter, code="res_nech_leukocytes", value=5000)
    follow_up, _created = workup_review(actor=actor_for(gp), encounter=encounter)
    return follow_up.items.get(code="us_kidneys")


def test_an_order_placed_again_after_a_review_stays_in_force_when_the_findings_are_edited(gp, gp_api, encounter):
    actor = actor_for(gp)
    ultrasound = workup_for(gp, encounter).items.get(code="us_kidneys")
    decide(gp, ultrasound, Decision.ACCEPTED)
    decide(gp, ultrasound, Decision.DECLINED, reason="Routine: it can wait")
    decide(gp, asked_again_after_a_result(gp, encounter, ultrasound), Decision.ACCEPTED)

    encounter = encounter_update(actor=actor, encounter=encounter, data={"duration_days": encounter.duration_days + 3})
    row = workup_current(actor=actor, encounter=encounter).items.get(code="us_kidneys")

    # What the app awaits, the EHR holds as an order in force, and the workup's action names it.
    assert row.decision == "accepted" and row.awaiting_since is not None
    assert read(gp_api, f"/fhir/ServiceRequest/item-{ultrasound.pk}-r2")["status"] == "active"
    group = read(gp_api, f"/fhir/RequestGroup/workup-{encounter.pk}")
    assert action_of(group, "us_kidneys")["resource"] == {"reference": f"ServiceRequest/item-{ultrasound.pk}-r2"}


def test_an_order_declined_after_a_review_stays_revoked_when_the_findings_are_edited(gp, gp_api, encounter):
    actor = actor_for(gp)
    ultrasound = workup_for(gp, encounter).items.get(code="us_kidneys")
    decide(gp, ultrasound, Decision.ACCEPTED)
    decide(gp, asked_again_after_a_result(gp, encounter, ultrasound), Decision.DECLINED, reason="Not wanted")

    encounter = encounter_update(actor=actor, encounter=encounter, data={"duration_days": encounter.duration_days + 3})
    row = workup_current(actor=actor, encounter=encounter).items.get(code="us_kidneys")

    assert row.decision == "declined" and row.awaiting_since is None
    order = read(gp_api, f"/fhir/ServiceRequest/item-{ultrasound.pk}")
    assert (order["status"], order["note"]) == ("revoked", [{"text": "Not wanted"}])
    read(gp_api, f"/fhir/ServiceRequest/item-{ultrasound.pk}-r2", 404)


def test_a_revoked_order_reads_as_it_was_placed_and_names_who_placed_each(gp, gp_api, encounter, colleague):
    ultrasound = workup_for(gp, encounter).items.get(code="us_kidneys")
    decide(gp, ultrasound, Decision.ACCEPTED)
    decide(gp, ultrasound, Decision.DECLINED, reason="Routine: it can wait")
    before = read(gp_api, f"/fhir/ServiceRequest/item-{ultrasound.pk}")
    again = asked_again_after_a_result(gp, encounter, ultrasound)

    decide(colleague, again, Decision.ACCEPTED)

    after = read(gp_api, f"/fhir/ServiceRequest/item-{ultrasound.pk}")
    assert after == before and after["priority"] == "routine"
    placed_again = read(gp_api, f"/fhir/ServiceRequest/item-{ultrasound.pk}-r2")
    assert placed_again["priority"] == "urgent"
    # Each order names the GP who placed it: the first the GP, the second the colleague who accepted it again.
    assert before["requester"] == {"display": gp.get_full_name() or gp.get_username()}
    assert placed_again["requester"] == {"display": "Вера Смирнова"}


def test_a_result_stays_based_on_the_order_it_answered_when_the_test_is_ordered_again(gp, gp_api):
    encounter = encounter_of(gp, findings=screened({**URINARY, "rf_fever": True}))
    inflammation = workup_for(gp, encounter).items.get(code="lab_crp_esr")
    decide(gp, inflammation, Decision.ACCEPTED)
    result_enter(actor=actor_for(gp), encounter=encounter, code="res_crp", value=2)
    decide(gp, inflammation, Decision.DECLINED, reason="Entered by mistake")

    decide(gp, inflammation, Decision.ACCEPTED)

    found = read(gp_api, f"/fhir/Observation?encounter={encounter.pk}&_count=200")
    [crp] = [entry["resource"] for entry in found["entry"] if entry["resource"]["id"].startswith("result-")]
    assert crp["basedOn"] == [{"reference": f"ServiceRequest/item-{inflammation.pk}-1"}]


def test_a_test_declined_again_as_a_proposal_shows_the_new_reason_beside_the_order_revoked_before(
    gp, gp_api, encounter
):
    ultrasound = workup_for(gp, encounter).items.get(code="us_kidneys")
    decide(gp, ultrasound, Decision.ACCEPTED)
    decide(gp, ultrasound, Decision.DECLINED, reason="Reason A")

    decide(gp, asked_again_after_a_result(gp, encounter, ultrasound), Decision.DECLINED, reason="Reason B")

    assert read(gp_api, f"/fhir/ServiceRequest/item-{ultrasound.pk}")["note"] == [{"text": "Reason A"}]
    group = read(gp_api, f"/fhir/RequestGroup/workup-{encounter.pk}")
    RequestGroup.model_validate(group)
    reference = action_of(group, "us_kidneys")["resource"]["reference"]
    [proposal] = [resource for resource in group["contained"] if f"#{resource['id']}" == reference]
    assert (proposal["status"], proposal["intent"], proposal["note"]) == (
        "revoked",
        "proposal",
        [{"text": "Reason B"}],
    )
