"""GET /api/v1/encounters/{id}/requisition/: the encounter's latest requisition, for an integrator polling it."""

import pytest
from celery import current_app

from clinic.models import AuditEvent
from tests.record_factories import api_client_for, encounter_of, workup_for


def url(encounter):
    return f"/api/v1/encounters/{encounter.pk}/requisition/"


@pytest.fixture
def encounter(gp, gp_api):
    """A draft encounter whose urinalysis and kidney ultrasound the GP accepted."""
    encounter = encounter_of(gp)
    workup = workup_for(gp, encounter)
    for code in ("lab_urinalysis", "us_kidneys"):
        item = workup.items.get(code=code)
        accepted = gp_api.patch(f"/api/v1/workup-items/{item.pk}/", {"decision": "accepted"}, format="json")
        assert accepted.status_code == 200
    return encounter


def render(requisition_id) -> str:
    return current_app.tasks["referrals.render_document"].apply(args=("requisition", requisition_id)).get()


def test_before_any_request_there_is_no_requisition(gp_api, encounter):
    response = gp_api.get(url(encounter))
    assert response.status_code == 404
    assert response.json() == {"detail": "No requisition has been requested for this encounter."}


def test_the_latest_requisition_is_answered_with_its_render_state(gp_api, encounter):
    first = gp_api.post(url(encounter), {"language": "en"}, format="json").json()
    second = gp_api.post(url(encounter), {"language": "ru"}, format="json").json()

    pending = gp_api.get(url(encounter))

    assert pending.status_code == 200
    body = pending.json()
    assert body["id"] == second["id"] != first["id"]
    assert (body["encounter"], body["language"], body["pdf_status"], body["pdf_url"]) == (
        encounter.pk,
        "ru",
        "pending",
        None,
    )
    assert body["number"] and body["workup"] == encounter.workups.latest().pk

    assert render(second["id"]) == "rendered"
    ready = gp_api.get(url(encounter)).json()
    assert ready["pdf_status"] == "ready" and ready["pdf_rendered_at"]
    assert ready["pdf_url"].endswith(f"/api/v1/encounters/{encounter.pk}/requisition/pdf/")
    assert gp_api.get(ready["pdf_url"])["Content-Type"] == "application/pdf"


def test_reading_the_requisition_is_audit_logged(gp, gp_api, encounter):
    requested = gp_api.post(url(encounter), format="json").json()

    gp_api.get(url(encounter))

    event = AuditEvent.objects.get(action="view", object_type="requisition")
    assert (event.object_id, event.patient_id, event.channel, event.actor_username) == (
        str(requested["id"]),
        encounter.patient_id,
        "api",
        gp.username,
    )


@pytest.mark.parametrize("body", [{"language": "de"}, {"language": 7}, {"language": None}, {"lang": "ru"}])
def test_a_request_in_a_language_we_do_not_write_is_refused_by_name_and_nothing_is_requested(gp_api, encounter, body):
    response = gp_api.post(url(encounter), body, format="json")

    assert response.status_code == 400 and set(response.json()) == set(body)
    assert gp_api.get(url(encounter)).status_code == 404


def test_a_gp_of_another_clinic_gets_a_404_and_an_anonymous_caller_a_401(gp_api, other_gp, anonymous, encounter):
    gp_api.post(url(encounter), format="json")
    stranger = api_client_for(other_gp)

    response = stranger.get(url(encounter))

    assert response.status_code == 404 and "number" not in response.json()
    assert stranger.post(url(encounter), format="json").status_code == 404
    assert not AuditEvent.objects.filter(object_type="requisition", action="view").exists()
    assert anonymous.get(url(encounter)).status_code == 401
