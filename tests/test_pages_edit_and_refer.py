"""Two browser forms a GP uses on a draft encounter: editing the encounter, and referring by hand."""

import pytest
from django.test import Client

from clinic.models import AuditEvent, Encounter
from referrals.models import Referral
from tests.record_factories import URINARY, encounter_of, patient_of, screened, workup_for

DRAFT_FINDINGS = screened(URINARY)


@pytest.fixture
def other_web(other_gp):
    client = Client()
    client.force_login(other_gp)
    return client


@pytest.fixture
def draft(gp):
    """A man's draft encounter (lumbar numbness with urinary symptoms) with its workup."""
    encounter = encounter_of(
        gp, patient=patient_of(gp, sex="male", family_name="Орлов"), findings=DRAFT_FINDINGS, duration_days=10
    )
    workup_for(gp, encounter)
    return encounter


def form_data(encounter, **changes) -> dict:
    """The encounter form as the page posts it: every field, with the answers recorded."""
    data = {
        "visit_date": encounter.visit_date.isoformat(),
        "chief_complaint": encounter.chief_complaint,
        "duration_days": str(encounter.duration_days),
        **{f"f_{code}": "yes" if value else "no" for code, value in encounter.findings.items()},
        **{f"note_{section}": text for section, text in encounter.notes.items()},
    }
    data.update(changes)
    return data


# -- editing the encounter -------------------------------------------------------------------------


def test_a_gp_edits_a_draft_encounter_and_the_workup_is_marked_out_of_date(gp_web, gp, draft):
    body = form_data(draft, duration_days="45", f_sx_tingling="yes", note_history="Kidney stone in 2019")

    response = gp_web.post(f"/encounters/{draft.pk}/", body, follow=True)

    assert response.redirect_chain == [(f"/encounters/{draft.pk}/", 302)]
    assert "Saved." in response.content.decode()
    draft.refresh_from_db()
    assert draft.duration_days == 45 and draft.findings["sx_tingling"] is True
    assert draft.notes == {"history": "Kidney stone in 2019"}
    assert {key: value for key, value in draft.findings.items() if key != "sx_tingling"} == DRAFT_FINDINGS
    event = AuditEvent.objects.get(action="update", object_type="encounter", object_id=str(draft.pk))
    assert (event.channel, event.actor_username) == ("web", gp.username)
    workup_page = gp_web.get(f"/encounters/{draft.pk}/workup/").content.decode()
    assert "The findings changed since this workup was generated." in workup_page


def test_saving_and_showing_the_workup_generates_it_from_the_edited_findings(gp_web, draft):
    before = draft.workups.count()
    body = form_data(draft, f_ex_cva_tenderness="no", f_sx_urinary_frequency="no", show_workup="1")

    response = gp_web.post(f"/encounters/{draft.pk}/", body)

    assert response.status_code == 302 and response["Location"] == f"/encounters/{draft.pk}/workup/"
    assert draft.workups.count() == before + 1
    latest = draft.workups.order_by("-created_at", "-id").first()
    # No urinary symptom and no CVA tenderness left: the kidney workup is no longer recommended.
    assert not latest.items.filter(code="us_kidneys").exists()
    page = gp_web.get(f"/encounters/{draft.pk}/workup/").content.decode()
    assert "The findings changed since this workup was generated." not in page


@pytest.mark.parametrize(
    "changes, field, message",
    [
        ({"duration_days": "-3"}, "duration_days", "Ensure this value is greater than or equal to 0."),
        ({"duration_days": "ten"}, "duration_days", "Enter days, or a number with a unit: 3 weeks, 2 months, 1 year."),
        ({"visit_date": "2024-02-30"}, "visit_date", "Enter a valid date."),
    ],
)
def test_a_bad_entry_is_shown_beside_its_field_and_nothing_is_saved(gp_web, draft, changes, field, message):
    before = Encounter.objects.filter(pk=draft.pk).values().get()

    response = gp_web.post(f"/encounters/{draft.pk}/", form_data(draft, note_history="Kept on the page", **changes))

    page = response.content.decode()
    assert response.status_code == 200
    assert f'href="#id_{field}"' in page and message in page  # in the error summary, linked to the field
    assert "Kept on the page" in page  # what the GP typed is shown again
    assert Encounter.objects.filter(pk=draft.pk).values().get() == before
    assert not AuditEvent.objects.filter(action="update", object_type="encounter").exists()


def test_an_encounter_without_a_location_is_refused(gp_web, draft):
    body = form_data(draft, **{f"f_{code}": "no" for code in ("loc_lumbar",)})

    response = gp_web.post(f"/encounters/{draft.pk}/", body)

    page = response.content.decode()
    assert response.status_code == 200
    assert "Record where the numbness is: answer Yes to at least one place." in page
    draft.refresh_from_db()
    assert draft.findings == DRAFT_FINDINGS


def test_a_gp_of_another_clinic_can_neither_see_nor_edit_the_encounter(other_web, draft):
    before = Encounter.objects.filter(pk=draft.pk).values().get()

    assert other_web.get(f"/encounters/{draft.pk}/").status_code == 404
    response = other_web.post(f"/encounters/{draft.pk}/", form_data(draft, duration_days="99"))

    assert response.status_code == 404 and "Орлов" not in response.content.decode()
    assert Encounter.objects.filter(pk=draft.pk).values().get() == before


# -- referring by hand ---------------------------------------------------------------------------------


def test_a_gp_refers_by_hand_and_the_letter_is_drafted(gp_web, gp, draft, django_capture_on_commit_callbacks):
    form = gp_web.get(f"/encounters/{draft.pk}/referrals/new/").content.decode()
    assert 'name="specialty"' in form and 'value="rheumatology"' in form

    with django_capture_on_commit_callbacks() as enqueued:
        response = gp_web.post(
            f"/encounters/{draft.pk}/referrals/new/",
            {
                "specialty": "rheumatology",
                "urgency": "urgent",
                "reason": "Morning stiffness for three months",
                "question": "Axial spondyloarthritis?",
                "icd10": "m45",
                "language": "en",
            },
        )

    referral = Referral.objects.get(encounter=draft)
    assert response.status_code == 302 and response["Location"] == f"/referrals/{referral.pk}/"
    assert (referral.specialty, referral.urgency, referral.status, referral.recommendation_id) == (
        "rheumatology",
        "urgent",
        "draft",
        None,
    )
    assert (referral.reason, referral.question, referral.icd10) == (
        "Morning stiffness for three months",
        "Axial spondyloarthritis?",
        "M45",
    )
    assert referral.diagnosis  # left empty, so it takes the ICD-10 code's words
    assert (referral.pdf_status, len(enqueued)) == ("pending", 1)  # its letter is on its way to the renderer
    assert AuditEvent.objects.filter(object_type="referral", object_id=str(referral.pk), channel="web").exists()
    page = gp_web.get(f"/referrals/{referral.pk}/").content.decode()
    assert "Rheumatology" in page and "Morning stiffness for three months" in page


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"specialty": "astrology"}, "specialty"),
        ({"urgency": "whenever"}, "urgency"),
        ({"reason": ""}, "reason"),
        ({"reason": "x" * 2001}, "reason"),
        ({"icd10": "Q99.99.9"}, "icd10"),
        ({"language": "de"}, "language"),
    ],
)
def test_a_referral_by_hand_with_a_bad_entry_is_refused_beside_the_field(gp_web, draft, changes, field):
    body = {"specialty": "rheumatology", "urgency": "routine", "reason": "Stiffness", "language": "ru", **changes}

    response = gp_web.post(f"/encounters/{draft.pk}/referrals/new/", body)

    page = response.content.decode()
    assert response.status_code == 200
    assert f'href="#id_{field}"' in page  # the error summary links to the field
    assert not Referral.objects.exists()


def test_a_gp_of_another_clinic_cannot_refer_the_patient(other_web, draft):
    assert other_web.get(f"/encounters/{draft.pk}/referrals/new/").status_code == 404
    response = other_web.post(
        f"/encounters/{draft.pk}/referrals/new/",
        {"specialty": "rheumatology", "urgency": "routine", "reason": "Stiffness", "language": "ru"},
    )
    assert response.status_code == 404
    assert not Referral.objects.exists()


def test_a_finalized_encounter_takes_no_referral_by_hand(gp_web, draft):
    assert gp_web.post(f"/encounters/{draft.pk}/finalize/").status_code == 302
    draft.refresh_from_db()
    assert draft.is_finalized

    page = gp_web.get(f"/encounters/{draft.pk}/referrals/new/").content.decode()
    response = gp_web.post(
        f"/encounters/{draft.pk}/referrals/new/",
        {"specialty": "rheumatology", "urgency": "routine", "reason": "Stiffness", "language": "ru"},
        follow=True,
    )

    assert "This encounter is finalized" in page and 'name="specialty"' not in page
    assert "This encounter is finalized" in response.content.decode()
    assert not Referral.objects.exists()
