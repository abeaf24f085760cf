"""The referral after `issued` (GUIDANCE 7): booked, completed with the specialist's conclusion (and its
PDF), cancelled or declined by the patient; impossible transitions are 409; every change is kept."""

import datetime
import re
from zoneinfo import ZoneInfo

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from clinic.models import AuditEvent
from referrals import services as referral_services
from referrals.models import Referral
from tests.record_factories import (
    URINARY,
    actor_for,
    api_client_for,
    clinic_local,
    clinic_today,
    encounter_of,
    screened,
    workup_for,
)
from workups.models import Decision
from workups.services import recommendation_decide

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def issued_referral(gp, *, issue=True):
    actor = actor_for(gp)
    referral = referral_services.referral_create(
        actor=actor,
        encounter=encounter_of(gp),
        specialty="neurology",
        urgency="routine",
        reason="Numbness of the lower back",
    )
    if issue:
        referral_services.referral_issue(actor=actor, referral=referral)
    referral.refresh_from_db()
    return referral


def change(api, referral, body, **kwargs):
    return api.post(f"/api/v1/referrals/{referral.pk}/status/", body, format=kwargs.pop("fmt", "json"), **kwargs)


def later(days, hour=10, minute=0):
    """An appointment `days` after the clinic's today, at hour:minute on its clock, as the API takes it."""
    day = clinic_today() + datetime.timedelta(days=days)
    return datetime.datetime.combine(day, datetime.time(hour, minute), tzinfo=ZoneInfo("Europe/Moscow")).isoformat()


def test_booked_rebooked_then_completed_with_the_history_kept(gp):
    referral = issued_referral(gp)
    api = api_client_for(gp)

    booked = change(api, referral, {"status": "booked", "appointment_at": later(7)})
    rebooked = change(api, referral, {"status": "booked", "appointment_at": later(9, 9, 30)})
    completed = change(api, referral, {"status": "completed", "conclusion": "L5 radiculopathy; physiotherapy."})
    shown = api.get(f"/api/v1/referrals/{referral.pk}/")

    assert booked.status_code == 200 and booked.json()["status"] == "booked"
    assert rebooked.status_code == 200
    assert completed.status_code == 200, completed.json()
    body = shown.json()
    assert body["status"] == "completed" and body["conclusion"] == "L5 radiculopathy; physiotherapy."
    assert body["appointment_at"].startswith(later(9)[:10])
    assert [event["status"] for event in body["history"]] == ["issued", "booked", "booked", "completed"]
    assert body["history"][1]["by"] == gp.username
    assert (
        AuditEvent.objects.filter(
            object_type="referral", object_id=str(referral.pk), action__startswith="status_"
        ).count()
        == 3
    )


@pytest.mark.parametrize(
    "status, extra",
    [
        ("cancelled", {"reason": "The specialist retired"}),
        ("declined_by_patient", {"reason": "The patient prefers to wait"}),
        ("completed", {"conclusion": "Nothing neurological."}),
    ],
)
def test_an_issued_referral_can_be_closed(gp, status, extra):
    referral = issued_referral(gp)

    response = change(api_client_for(gp), referral, {"status": status, **extra})

    assert response.status_code == 200
    assert response.json()["status"] == status
    assert response.json()["closed_at"] is not None


@pytest.mark.parametrize(
    "first, then",
    [
        ({"status": "completed", "conclusion": "Done"}, {"status": "booked", "appointment_at": "2024-03-10T10:00:00Z"}),
        ({"status": "cancelled", "reason": "x"}, {"status": "completed", "conclusion": "Done"}),
        ({"status": "declined_by_patient", "reason": "x"}, {"status": "cancelled", "reason": "y"}),
        ({"status": "completed", "conclusion": "Done"}, {"status": "completed", "conclusion": "Again"}),
    ],
)
def test_impossible_transitions_are_409(gp, first, then):
    referral = issued_referral(gp)
    api = api_client_for(gp)
    assert change(api, referral, first).status_code == 200

    response = change(api, referral, then)

    assert response.status_code == 409
    assert len(api.get(f"/api/v1/referrals/{referral.pk}/").json()["history"]) == 2


def test_a_draft_cannot_be_booked(gp):
    referral = issued_referral(gp, issue=False)

    response = change(api_client_for(gp), referral, {"status": "booked", "appointment_at": "2024-03-10T10:00:00Z"})

    assert response.status_code == 409
    assert Referral.objects.get(pk=referral.pk).status == "draft"


@pytest.mark.parametrize(
    "body, field",
    [
        ({"status": "booked"}, "appointment_at"),
        ({"status": "booked", "appointment_at": "tomorrow"}, "appointment_at"),
        ({"status": "booked", "appointment_at": 5}, "appointment_at"),
        ({"status": "completed"}, "conclusion"),
        ({"status": "completed", "conclusion": "  "}, "conclusion"),
        ({"status": "cancelled"}, "reason"),
        ({"status": "declined_by_patient", "reason": ""}, "reason"),
        ({"status": "cancelled", "reason": "a\x00b"}, "reason"),
        ({"status": "cancelled", "reason": "x" * 2001}, "reason"),
        ({"status": "cancelled", "reason": "x", "conclusion": "y"}, "conclusion"),
        ({"status": "issued"}, "status"),
        ({"status": "lost"}, "status"),
        ({}, "status"),
        ({"status": "cancelled", "reason": "x", "when": 1}, "when"),
    ],
)
def test_bad_status_changes_are_named(gp, body, field):
    referral = issued_referral(gp)

    response = change(api_client_for(gp), referral, body)

    assert response.status_code == 400
    assert field in response.json()
    assert Referral.objects.get(pk=referral.pk).status == "issued"


def test_a_conclusion_pdf_is_uploaded_checked_and_served(gp):
    referral = issued_referral(gp)
    api = api_client_for(gp)

    response = api.post(
        f"/api/v1/referrals/{referral.pk}/status/",
        {
            "status": "completed",
            "conclusion": "See the letter",
            "conclusion_pdf": SimpleUploadedFile("letter.pdf", PDF, content_type="application/pdf"),
        },
        format="multipart",
    )

    assert response.status_code == 200, response.json()
    url = response.json()["conclusion_pdf_url"]
    assert url == f"/api/v1/referrals/{referral.pk}/conclusion/pdf/"
    served = api.get(url)
    assert served.status_code == 200 and served["Content-Type"] == "application/pdf"
    assert b"".join(served.streaming_content) == PDF
    assert api.get(url.replace(str(referral.pk), str(issued_referral(gp).pk))).status_code == 404


@pytest.mark.parametrize("content", [b"<html>not a pdf</html>", b"", b"%PDF-" + b"0" * (10 * 1024 * 1024)])
def test_a_conclusion_that_is_not_a_pdf_or_too_big_is_refused(gp, content):
    referral = issued_referral(gp)

    response = api_client_for(gp).post(
        f"/api/v1/referrals/{referral.pk}/status/",
        {
            "status": "completed",
            "conclusion": "See the letter",
            "conclusion_pdf": SimpleUploadedFile("letter.pdf", content, content_type="application/pdf"),
        },
        format="multipart",
    )

    assert response.status_code == 400 and "conclusion_pdf" in response.json()
    assert Referral.objects.get(pk=referral.pk).status == "issued"


def test_a_pdf_with_another_status_is_refused(gp):
    referral = issued_referral(gp)

    response = api_client_for(gp).post(
        f"/api/v1/referrals/{referral.pk}/status/",
        {
            "status": "cancelled",
            "reason": "x",
            "conclusion_pdf": SimpleUploadedFile("letter.pdf", PDF, content_type="application/pdf"),
        },
        format="multipart",
    )

    assert response.status_code == 400 and "conclusion_pdf" in response.json()


def test_another_clinic_gets_404(gp, other_gp):
    referral = issued_referral(gp)
    stranger = api_client_for(other_gp)

    assert change(stranger, referral, {"status": "cancelled", "reason": "x"}).status_code == 404
    assert stranger.get(f"/api/v1/referrals/{referral.pk}/conclusion/pdf/").status_code == 404
    assert Referral.objects.get(pk=referral.pk).status == "issued"


def test_an_anonymous_caller_gets_401(gp, anonymous):
    referral = issued_referral(gp)

    assert change(anonymous, referral, {"status": "cancelled", "reason": "x"}).status_code == 401
    assert anonymous.get(f"/api/v1/referrals/{referral.pk}/conclusion/pdf/").status_code == 401


# -- the appointment comes after the letter ---------------------------------------------------------


def issued_at_text(referral):
    """When the letter was issued, as the refusal writes it (the clinic's clock, English short format)."""
    return f"{clinic_local(referral.issued_at):%-d %b %Y, %H:%M}"


@pytest.mark.parametrize("status, extra", [("booked", {}), ("completed", {"conclusion": "Seen; nothing to add."})])
def test_an_appointment_before_the_letter_was_issued_is_refused_naming_the_field(gp, status, extra):
    referral = issued_referral(gp)
    before = clinic_local(referral.issued_at) - datetime.timedelta(days=30)

    response = change(api_client_for(gp), referral, {"status": status, "appointment_at": before.isoformat(), **extra})

    assert response.status_code == 400
    assert response.json()["appointment_at"] == [
        f"The appointment is before the referral was issued ({issued_at_text(referral)})."
    ]
    referral.refresh_from_db()
    assert referral.status == "issued" and referral.appointment_at is None


def test_an_appointment_in_the_minute_of_issue_or_after_is_accepted(gp):
    referral = issued_referral(gp)
    same_minute = clinic_local(referral.issued_at).replace(second=0, microsecond=0)

    response = change(api_client_for(gp), referral, {"status": "booked", "appointment_at": same_minute.isoformat()})

    assert response.status_code == 200, response.json()


def test_the_tracking_form_refuses_a_booking_before_the_issue_beside_the_date(gp):
    referral = issued_referral(gp)
    web = Client()
    web.force_login(gp)
    before = clinic_local(referral.issued_at) - datetime.timedelta(days=365)

    response = web.post(
        f"/referrals/{referral.pk}/tracking/",
        {"status": "booked", "appointment_at": before.strftime("%Y-%m-%dT%H:%M")},
        HTTP_ACCEPT_LANGUAGE="en",
    )

    page = response.content.decode()
    assert response.status_code == 200
    assert f"The appointment is before the referral was issued ({issued_at_text(referral)})." in page
    referral.refresh_from_db()
    assert referral.status == "issued"


# -- a letter issued holds its recommendation's decision --------------------------------------------


def letter_from_recommendation(gp, *, issue=True):
    """An encounter's recommended referral, accepted, with its letter written from it (and issued)."""
    actor = actor_for(gp)
    encounter = encounter_of(gp, findings=screened(URINARY))
    recommendation = workup_for(gp, encounter).referrals.order_by("id").first()
    recommendation_decide(actor=actor, recommendation=recommendation, decision=Decision.ACCEPTED)
    letter = referral_services.referral_create(actor=actor, encounter=encounter, recommendation=recommendation)
    if issue:
        letter = referral_services.referral_issue(actor=actor, referral=letter)
    return recommendation, letter


def decide(api, recommendation, body):
    return api.patch(f"/api/v1/workup-referrals/{recommendation.pk}/", body, format="json")


@pytest.mark.parametrize(
    "body", [{"decision": "declined", "reason": "Prefers to wait"}, {"decision": "pending"}], ids=["decline", "undo"]
)
def test_an_issued_letter_holds_its_recommendations_decision(gp, body):
    recommendation, letter = letter_from_recommendation(gp)

    response = decide(api_client_for(gp), recommendation, body)

    assert response.status_code == 409
    assert response.json()["detail"] == (
        f"Referral No. {letter.pk:06d} issued: to change the decision, close the referral."
    )
    recommendation.refresh_from_db()
    assert recommendation.decision == "accepted"
    assert Referral.objects.get(pk=letter.pk).status == "issued"


def test_a_completed_letter_holds_the_decision_too(gp):
    recommendation, letter = letter_from_recommendation(gp)
    api = api_client_for(gp)
    assert change(api, letter, {"status": "completed", "conclusion": "L5 radiculopathy."}).status_code == 200

    response = decide(api, recommendation, {"decision": "declined", "reason": "Not needed"})

    assert response.status_code == 409
    assert response.json()["detail"] == (
        f"Referral No. {letter.pk:06d} completed: the specialist's conclusion is recorded."
    )
    recommendation.refresh_from_db()
    assert recommendation.decision == "accepted"


def test_a_draft_or_a_closed_letter_leaves_the_decision_free(gp):
    recommendation, draft = letter_from_recommendation(gp, issue=False)
    api = api_client_for(gp)
    assert decide(api, recommendation, {"decision": "accepted"}).status_code == 200

    assert decide(api, recommendation, {"decision": "declined", "reason": "Prefers to wait"}).status_code == 200

    recommendation, letter = letter_from_recommendation(gp)
    assert change(api, letter, {"status": "cancelled", "reason": "x"}).status_code == 200
    assert decide(api, recommendation, {"decision": "declined", "reason": "Prefers to wait"}).status_code == 200


def test_the_workup_row_says_the_letter_holds_the_decision_in_place_of_its_buttons(gp):
    recommendation, letter = letter_from_recommendation(gp)
    web = Client()
    web.force_login(gp)

    page = web.get(f"/encounters/{letter.encounter_id}/workup/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    row = re.search(rf'<li class="rec" id="referral-{recommendation.pk}".*?(?=<li class="rec"|</section>)', page, re.S)[
        0
    ]
    refused = web.post(
        f"/workup-referrals/{recommendation.pk}/decide/",
        {"decision": "declined", "reason": "Prefers to wait"},
        HTTP_HX_REQUEST="true",
        HTTP_ACCEPT_LANGUAGE="en",
    ).content.decode()

    assert f"Referral No. {letter.pk:06d} issued: to change the decision, close the referral." in row
    assert f'href="/referrals/{letter.pk}/"' in row
    assert "Decline instead" not in row and 'name="decision"' not in row
    assert "to change the decision, close the referral." in refused
    recommendation.refresh_from_db()
    assert recommendation.decision == "accepted"


def test_the_booking_date_picker_starts_at_the_issue(gp):
    referral = issued_referral(gp)
    web = Client()
    web.force_login(gp)

    page = web.get(f"/referrals/{referral.pk}/", HTTP_ACCEPT_LANGUAGE="en").content.decode()

    assert f'min="{clinic_local(referral.issued_at):%Y-%m-%dT%H:%M}"' in page
