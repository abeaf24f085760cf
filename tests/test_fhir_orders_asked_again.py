"""A test the GP ordered, that a result makes more urgent, is asked again in the follow-up workup: the order the
EHR holds is on hold until the GP decides (not revoked: nobody took it back, and a revoked order is final),
under the same id; accepted again it is active, declined it is revoked with the GP's reason."""

import json

import pytest
from fhir.resources.R4B.requestgroup import RequestGroup
from fhir.resources.R4B.servicerequest import ServiceRequest

from tests.record_factories import actor_for, api_client_for, encounter_of, workup_for
from workups.models import Decision
from workups.services import recommendation_decide, result_enter, workup_review


def read(client, path):
    response = client.get(path)
    assert response.status_code == 200, response.content
    return json.loads(response.content)


@pytest.fixture
def asked_again(gp):
    """The default (urinary) case with its kidney ultrasound ordered as routine; a Nechiporenko count of 5000
    raises it to urgent, and the review asks again. (encounter, the ultrasound's first row, its row now)"""
    encounter = encounter_of(gp)
    ultrasound = workup_for(gp, encounter).items.get(code="us_kidneys")
    recommendation_decide(actor=actor_for(gp), recommendation=ultrasound, decision=Decision.ACCEPTED)
    result_enter(actor=actor_for(gp), encounter=encounter, code="res_nech_leukocytes", value=5000)
    follow_up, created = workup_review(actor=actor_for(gp), encounter=encounter)
    again = follow_up.items.get(code="us_kidneys")
    assert created and (ultrasound.urgency, again.urgency, again.decision) == ("routine", "urgent", "pending")
    return encounter, ultrasound, again


def test_an_order_asked_again_after_a_result_is_on_hold_not_revoked(gp, asked_again):
    encounter, ultrasound, _again = asked_again
    ehr = api_client_for(gp)

    order = read(ehr, f"/fhir/ServiceRequest/item-{ultrasound.pk}")

    ServiceRequest.model_validate(order)
    assert (order["status"], order["intent"]) == ("on-hold", "order")
    assert "note" not in order
    # The workup's action for it is that order, not a new proposal beside it.
    group = read(ehr, f"/fhir/RequestGroup/workup-{encounter.pk}")
    RequestGroup.model_validate(group)
    [action] = [action for action in group["action"] if action["code"][0]["coding"][0]["code"] == "us_kidneys"]
    assert action["resource"] == {"reference": f"ServiceRequest/item-{ultrasound.pk}"}


def test_an_order_asked_again_and_accepted_is_active_under_the_same_id(gp, asked_again):
    encounter, ultrasound, again = asked_again

    recommendation_decide(actor=actor_for(gp), recommendation=again, decision=Decision.ACCEPTED)

    order = read(api_client_for(gp), f"/fhir/ServiceRequest/item-{ultrasound.pk}")
    assert (order["status"], order["priority"]) == ("active", "urgent")


def test_an_order_asked_again_and_declined_is_revoked_with_the_reason(gp, asked_again):
    encounter, ultrasound, again = asked_again

    recommendation_decide(
        actor=actor_for(gp), recommendation=again, decision=Decision.DECLINED, reason="Booked at the hospital"
    )

    order = read(api_client_for(gp), f"/fhir/ServiceRequest/item-{ultrasound.pk}")
    assert order["status"] == "revoked"
    assert order["note"] == [{"text": "Booked at the hospital"}]
