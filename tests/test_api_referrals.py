"""Referrals and the requisition over the API: creation, validation, the 409-until-ready contract, scoping."""

import pytest

from clinic.models import AuditEvent
from referrals import services
from referrals.models import PdfStatus, Referral
from tests.record_factories import actor_for, api_client_for, encounter_of, screened, workup_for
from workups.models import Decision
from workups.services import recommendation_decide


@pytest.fixture
def accepted(gp):
    encounter = encounter_of(gp)
    workup = workup_for(gp, encounter)
    recommendation = workup.referrals.get(specialty="nephrology")
    recommendation_decide(actor=actor_for(gp), recommendation=recommendation, decision=Decision.ACCEPTED)
    return encounter, workup, recommendation


def render(referral_id):
    return services.document_render(kind="referral", pk=referral_id, claimant="test:1:api")


def test_a_referral_from_an_accepted_recommendation_answers_409_until_its_pdf_is_ready(gp_api, accepted):
    encounter, _, recommendation = accepted
    response = gp_api.post(
        "/api/v1/referrals/", {"recommendation": recommendation.pk, "question": "Stone?"}, format="json"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["specialty"] == "nephrology" and body["urgency"] == recommendation.urgency
    assert body["status"] == "draft" and body["question"] == "Stone?"
    # The reason says what this patient was found to have, then what the referral is for.
    assert body["reason"].startswith("Found: ") and body["reason"].endswith(".")
    pending = gp_api.get(f"/api/v1/referrals/{body['id']}/pdf/")
    assert pending.status_code == 409 and int(pending["Retry-After"]) > 0
    render(body["id"])
    ready = gp_api.get(f"/api/v1/referrals/{body['id']}/pdf/")
    assert ready.status_code == 200 and ready["Content-Type"] == "application/pdf"
    assert b"".join(ready.streaming_content).startswith(b"%PDF")
    assert gp_api.get(f"/api/v1/referrals/{body['id']}/").json()["pdf_url"].endswith("/pdf/")
    assert [row["id"] for row in gp_api.get(f"/api/v1/encounters/{encounter.pk}/referrals/").json()] == [body["id"]]


def test_a_client_asking_for_the_pdf_by_its_type_gets_the_file_or_json_saying_why_not(gp_api, other_gp, accepted):
    # Accept: application/pdf was a 406: clients that ask for exactly what they download could not have it.
    referral_id = gp_api.post("/api/v1/referrals/", {"recommendation": accepted[2].pk}, format="json").json()["id"]
    url = f"/api/v1/referrals/{referral_id}/pdf/"
    pending = gp_api.get(url, HTTP_ACCEPT="application/pdf")
    assert pending.status_code == 409 and pending["Content-Type"] == "application/json"
    assert pending.json()["pdf_status"] == "pending"
    render(referral_id)
    ready = gp_api.get(url, HTTP_ACCEPT="application/pdf")
    assert ready.status_code == 200 and ready["Content-Type"] == "application/pdf"
    assert b"".join(ready.streaming_content).startswith(b"%PDF")
    elsewhere = api_client_for(other_gp).get(url, HTTP_ACCEPT="application/pdf")
    assert elsewhere.status_code == 404 and elsewhere["Content-Type"] == "application/json"
    assert gp_api.get(url, HTTP_ACCEPT="image/png").status_code == 406


def test_a_referral_by_hand_needs_its_fields(gp_api, accepted):
    encounter = accepted[0]
    response = gp_api.post("/api/v1/referrals/", {"encounter": encounter.pk}, format="json")
    assert response.status_code == 400 and {"specialty", "urgency", "reason"} <= set(response.json())
    response = gp_api.post(
        "/api/v1/referrals/",
        {"encounter": encounter.pk, "specialty": "astrology", "urgency": "soon", "reason": "x"},
        format="json",
    )
    assert {"specialty", "urgency"} <= set(response.json())
    made = gp_api.post(
        "/api/v1/referrals/",
        {
            "encounter": encounter.pk,
            "specialty": "rheumatology",
            "urgency": "routine",
            "reason": "Morning stiffness",
            "question": "Axial spondyloarthritis?",
        },
        format="json",
    )
    assert made.status_code == 201


def test_a_recommendation_not_accepted_gets_no_letter(gp_api, accepted):
    neurology = accepted[1].referrals.get(specialty="neurology")
    response = gp_api.post("/api/v1/referrals/", {"recommendation": neurology.pk}, format="json")
    assert response.status_code == 400 and "recommendation" in response.json()
    assert not Referral.objects.exists()


def test_an_issued_referral_is_read_only(gp_api, accepted):
    referral = gp_api.post("/api/v1/referrals/", {"recommendation": accepted[2].pk}, format="json").json()
    assert gp_api.post(f"/api/v1/referrals/{referral['id']}/issue/").json()["status"] == "issued"
    response = gp_api.patch(f"/api/v1/referrals/{referral['id']}/", {"question": "changed"}, format="json")
    assert response.status_code == 409
    assert Referral.objects.get(pk=referral["id"]).question == ""


def test_changing_a_draft_renders_its_letter_again(gp_api, accepted):
    referral = gp_api.post("/api/v1/referrals/", {"recommendation": accepted[2].pk}, format="json").json()
    render(referral["id"])
    changed = gp_api.patch(f"/api/v1/referrals/{referral['id']}/", {"urgency": "urgent"}, format="json").json()
    assert changed["urgency"] == "urgent" and changed["pdf_status"] == "pending"
    assert render(referral["id"]) == "rendered"
    assert Referral.objects.get(pk=referral["id"]).pdf_renders == 2


def test_the_requisition_needs_an_accepted_test_then_answers_409_until_ready(gp_api, gp, accepted):
    encounter, workup, _ = accepted
    assert gp_api.post(f"/api/v1/encounters/{encounter.pk}/requisition/").status_code == 400
    assert gp_api.get(f"/api/v1/encounters/{encounter.pk}/requisition/pdf/").status_code == 404
    recommendation_decide(
        actor=actor_for(gp), recommendation=workup.items.get(code="lab_urinalysis"), decision=Decision.ACCEPTED
    )
    requested = gp_api.post(f"/api/v1/encounters/{encounter.pk}/requisition/")
    assert requested.status_code == 202 and requested.json()["pdf_status"] == PdfStatus.PENDING
    pending = gp_api.get(f"/api/v1/encounters/{encounter.pk}/requisition/pdf/")
    assert pending.status_code == 409 and "Retry-After" in pending
    services.document_render(kind="requisition", pk=requested.json()["id"], claimant="test:1:req")
    assert gp_api.get(f"/api/v1/encounters/{encounter.pk}/requisition/pdf/")["Content-Type"] == "application/pdf"


def test_letters_and_requisitions_are_a_404_for_another_clinic_and_a_401_for_nobody(
    gp_api, other_gp, anonymous, accepted
):
    encounter, _, recommendation = accepted
    referral = gp_api.post("/api/v1/referrals/", {"recommendation": recommendation.pk}, format="json").json()
    other = api_client_for(other_gp)
    urls = [
        f"/api/v1/referrals/{referral['id']}/",
        f"/api/v1/referrals/{referral['id']}/pdf/",
        f"/api/v1/encounters/{encounter.pk}/referrals/",
        f"/api/v1/encounters/{encounter.pk}/requisition/",
        f"/api/v1/encounters/{encounter.pk}/requisition/pdf/",
    ]
    for url in urls:
        response = other.get(url)
        assert response.status_code == 404, url
        assert "nephrology" not in response.content.decode().lower()
        assert anonymous.get(url).status_code == 401, url
    assert other.post("/api/v1/referrals/", {"recommendation": recommendation.pk}, format="json").status_code == 404
    assert (
        other.post(
            "/api/v1/referrals/",
            {"encounter": encounter.pk, "specialty": "neurology", "urgency": "routine", "reason": "x"},
            format="json",
        ).status_code
        == 404
    )
    assert other.post(f"/api/v1/referrals/{referral['id']}/issue/").status_code == 404
    assert Referral.objects.count() == 1


def test_downloads_are_audit_logged(gp_api, gp, accepted):
    referral = gp_api.post("/api/v1/referrals/", {"recommendation": accepted[2].pk}, format="json").json()
    render(referral["id"])
    gp_api.get(f"/api/v1/referrals/{referral['id']}/pdf/")
    event = AuditEvent.objects.filter(action="download", object_type="referral").get()
    assert event.actor_username == gp.username and event.patient_id == accepted[0].patient_id


def test_a_finalized_encounters_letters_are_locked_with_it(gp, gp_api, accepted):
    encounter, _, recommendation = accepted
    draft = gp_api.post("/api/v1/referrals/", {"recommendation": recommendation.pk}, format="json").json()
    gp_api.post(f"/api/v1/encounters/{encounter.pk}/finalize/", format="json")

    created = gp_api.post(
        "/api/v1/referrals/",
        {"encounter": encounter.pk, "specialty": "rheumatology", "urgency": "routine", "reason": "Morning stiffness"},
        format="json",
    )
    changed = gp_api.patch(f"/api/v1/referrals/{draft['id']}/", {"question": "Later?"}, format="json")
    issued = gp_api.post(f"/api/v1/referrals/{draft['id']}/issue/", format="json")

    assert (created.status_code, changed.status_code, issued.status_code) == (409, 409, 409)
    assert Referral.objects.get(pk=draft["id"]).status == "draft"
    assert Referral.objects.filter(encounter=encounter).count() == 1


@pytest.mark.parametrize(
    "language, found, never",
    [
        ("ru", "Выявлено: покалывание, «мурашки» (парестезии). Консультация невролога.", "головокружение"),
        ("en", "Found: tingling, pins and needles. Neurological assessment.", "dizziness"),
    ],
)
def test_a_letters_reason_names_what_this_patient_has_not_every_finding_the_rule_could_fire_on(
    gp, language, found, never
):
    # The rule's rationale lists every finding that could fire it; on form 057/у it would read as this patient's
    # history (dizziness, frequent urination he never had).
    encounter = encounter_of(gp, findings=screened({"loc_lumbar": True, "sx_tingling": True}))
    workup = workup_for(gp, encounter)
    recommendation = workup.referrals.get(specialty="neurology")
    recommendation_decide(actor=actor_for(gp), recommendation=recommendation, decision=Decision.ACCEPTED)
    referral = services.referral_create(
        actor=actor_for(gp), encounter=encounter, recommendation=recommendation, language=language
    )
    assert referral.reason == found
    assert never not in referral.reason.lower()
