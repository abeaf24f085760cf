"""The patient leaflet over the API, and the referral's language and provisional diagnosis (ICD-10)."""

import pytest

from clinic.models import AuditEvent
from referrals import services
from referrals.models import Leaflet, PdfStatus, Referral
from tests.factories import ClinicFactory, MembershipFactory
from tests.record_factories import actor_for, api_client_for, encounter_of, screened, workup_for
from workups.models import Decision
from workups.services import recommendation_decide

pytestmark = pytest.mark.django_db

RADICULAR = {
    "loc_lumbar": True,
    "sx_leg_pain": True,
    "ex_straight_leg_raise_positive": True,
    "ex_reflexes_reduced": True,
}


@pytest.fixture
def ru_gp(db):
    clinic = ClinicFactory(language="ru", time_zone="Asia/Yekaterinburg")
    return MembershipFactory(clinic=clinic, user__username="gp_irina").user


@pytest.fixture
def ru_api(ru_gp):
    return api_client_for(ru_gp)


@pytest.fixture
def radicular(ru_gp):
    """An accepted urgent neurology referral (rule U10: radiculopathy, M54.1) and an accepted MRI."""
    encounter = encounter_of(ru_gp, findings=screened(RADICULAR))
    workup = workup_for(ru_gp, encounter)
    actor = actor_for(ru_gp)
    neurology = workup.referrals.get(specialty="neurology")
    recommendation_decide(actor=actor, recommendation=neurology, decision=Decision.ACCEPTED)
    recommendation_decide(
        actor=actor, recommendation=workup.items.get(code="mri_lumbar_spine"), decision=Decision.ACCEPTED
    )
    return encounter, workup, neurology


def render(kind, pk):
    return services.document_render(kind=kind, pk=pk, claimant=f"test:1:{kind}")


# -- referrals: language and ICD-10 ----------------------------------------------------------------


def test_a_referral_takes_the_clinic_language_and_the_diagnosis_of_the_rule_behind_it(ru_api, radicular):
    response = ru_api.post("/api/v1/referrals/", {"recommendation": radicular[2].pk}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["language"] == "ru" and body["icd10"] == "M54.1" and body["diagnosis"] == "Радикулопатия"
    assert body["name"] == "Невролог" and body["number"] == f"{body['id']:06d}"
    # The recommendation's reason in Russian: what was found, then what the referral is for.
    assert body["reason"].startswith("Выявлено: ") and "консультация невролога" in body["reason"].lower()


def test_a_referral_in_english_and_one_by_hand_with_the_fallback_code(ru_api, radicular):
    english = ru_api.post(
        "/api/v1/referrals/", {"recommendation": radicular[2].pk, "language": "en"}, format="json"
    ).json()
    assert english["language"] == "en" and english["diagnosis"] == "Radiculopathy"
    assert english["reason"].startswith("Found: ") and "neurological assessment" in english["reason"].lower()
    by_hand = ru_api.post(
        "/api/v1/referrals/",
        {
            "encounter": radicular[0].pk,
            "specialty": "rheumatology",
            "urgency": "routine",
            "reason": "Утренняя скованность",
        },
        format="json",
    ).json()
    assert by_hand["icd10"] == "R20.2" and by_hand["diagnosis"] == "Парестезия кожи"


def test_the_gp_may_give_their_own_code_and_words_and_the_code_is_upper_cased(ru_api, radicular):
    body = ru_api.post(
        "/api/v1/referrals/",
        {"recommendation": radicular[2].pk, "icd10": "m51.1", "diagnosis": "Грыжа диска L4–L5 с радикулопатией"},
        format="json",
    ).json()
    assert body["icd10"] == "M51.1" and body["diagnosis"] == "Грыжа диска L4–L5 с радикулопатией"
    category = ru_api.post(
        "/api/v1/referrals/", {"recommendation": radicular[2].pk, "icd10": "M45"}, format="json"
    ).json()
    assert category["icd10"] == "M45" and category["diagnosis"] == "Анкилозирующий спондилит"


@pytest.mark.parametrize("code", ["M545", "XIII", "M50-M54", "Z99.99", "M54.", "54.5", "", 545, True])
def test_an_invalid_icd10_code_is_a_400_naming_icd10(ru_api, radicular, code):
    response = ru_api.post("/api/v1/referrals/", {"recommendation": radicular[2].pk, "icd10": code}, format="json")
    assert response.status_code == 400, (code, response.content)
    assert "icd10" in response.json()
    assert not Referral.objects.exists()


def test_a_valid_code_the_base_does_not_name_needs_words_in_russian(ru_api, radicular):
    response = ru_api.post("/api/v1/referrals/", {"recommendation": radicular[2].pk, "icd10": "G57.3"}, format="json")
    assert response.status_code == 400 and "diagnosis" in response.json()
    english = ru_api.post(
        "/api/v1/referrals/", {"recommendation": radicular[2].pk, "icd10": "G57.3", "language": "en"}, format="json"
    )
    assert english.status_code == 201 and english.json()["diagnosis"]  # WHO's title


def test_a_draft_changes_language_and_code_and_an_issued_one_is_re_rendered_with_its_time(ru_api, radicular):
    referral = ru_api.post("/api/v1/referrals/", {"recommendation": radicular[2].pk}, format="json").json()
    changed = ru_api.patch(f"/api/v1/referrals/{referral['id']}/", {"language": "en"}, format="json").json()
    assert changed["diagnosis"] == "Radiculopathy" and changed["reason"].startswith("Found: ")
    assert ru_api.patch(f"/api/v1/referrals/{referral['id']}/", {"icd10": "nonsense"}, format="json").status_code == 400
    assert ru_api.patch(f"/api/v1/referrals/{referral['id']}/", {"language": "de"}, format="json").status_code == 400
    recoded = ru_api.patch(
        f"/api/v1/referrals/{referral['id']}/", {"icd10": "M51.1", "language": "ru"}, format="json"
    ).json()
    assert recoded["icd10"] == "M51.1" and recoded["diagnosis"].startswith("Поражения межпозвоночных дисков")
    render("referral", referral["id"])
    issued = ru_api.post(f"/api/v1/referrals/{referral['id']}/issue/").json()
    assert issued["status"] == "issued" and issued["pdf_status"] == "pending"
    assert ru_api.get(f"/api/v1/referrals/{referral['id']}/pdf/").status_code == 409
    render("referral", referral["id"])
    download = ru_api.get(f"/api/v1/referrals/{referral['id']}/pdf/")
    assert download.status_code == 200
    saved = Referral.objects.get(pk=referral["id"])
    day = saved.issued_at.astimezone(__import__("zoneinfo").ZoneInfo("Asia/Yekaterinburg")).date()
    assert download["Content-Disposition"] == (
        f'inline; filename="napravlenie-{saved.pk:06d}-{day:%Y-%m-%d}-neurology.pdf"'
    )
    assert saved.pdf_renders == 2


def test_the_requisition_takes_a_language(ru_api, radicular):
    encounter = radicular[0]
    assert (
        ru_api.post(f"/api/v1/encounters/{encounter.pk}/requisition/", {"language": "xx"}, format="json").status_code
        == 400
    )
    response = ru_api.post(f"/api/v1/encounters/{encounter.pk}/requisition/", {"language": "en"}, format="json")
    assert response.status_code == 202 and response.json()["language"] == "en"
    render("requisition", response.json()["id"])
    download = ru_api.get(f"/api/v1/encounters/{encounter.pk}/requisition/pdf/")
    assert download.status_code == 200
    assert download["Content-Disposition"].startswith(f'inline; filename="requisition-{response.json()["id"]:06d}-')
    assert ru_api.post(f"/api/v1/encounters/{encounter.pk}/requisition/").json()["language"] == "ru"


# -- the leaflet -----------------------------------------------------------------------------------


def test_the_leaflet_answers_202_then_409_while_pending_then_the_pdf(ru_api, ru_gp, radicular):
    encounter = radicular[0]
    url = f"/api/v1/encounters/{encounter.pk}/leaflet/"
    assert ru_api.get(url).status_code == 404
    assert ru_api.get(f"{url}pdf/").status_code == 404
    requested = ru_api.post(url, {}, format="json")
    assert requested.status_code == 202, requested.content
    body = requested.json()
    assert body["pdf_status"] == PdfStatus.PENDING and body["language"] == "ru" and body["pdf_url"] is None
    pending = ru_api.get(f"{url}pdf/")
    assert pending.status_code == 409 and int(pending["Retry-After"]) > 0
    assert render("leaflet", body["id"]) == "rendered"
    assert render("leaflet", body["id"]) == "skipped"  # safe to run twice
    state = ru_api.get(url).json()
    assert state["pdf_status"] == "ready" and state["pdf_url"].endswith("/leaflet/pdf/")
    ready = ru_api.get(f"{url}pdf/")
    assert ready.status_code == 200 and ready["Content-Type"] == "application/pdf"
    assert b"".join(ready.streaming_content).startswith(b"%PDF")
    assert ready["Content-Disposition"].startswith(f'inline; filename="leaflet-{body["id"]:06d}-')
    actions = set(AuditEvent.objects.filter(object_type="leaflet").values_list("action", flat=True))
    assert actions == {"create", "view", "download"}
    assert Leaflet.objects.get(pk=body["id"]).pdf_renders == 1


def test_the_leaflet_in_english_on_request(ru_api, radicular):
    response = ru_api.post(f"/api/v1/encounters/{radicular[0].pk}/leaflet/", {"language": "en"}, format="json")
    assert response.status_code == 202 and response.json()["language"] == "en"


@pytest.mark.parametrize(
    "body, field",
    [
        ({"language": "de"}, "language"),
        ({"language": 1}, "language"),
        ({"language": None}, "language"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_leaflet_input_is_a_400_naming_the_field(ru_api, radicular, body, field):
    response = ru_api.post(f"/api/v1/encounters/{radicular[0].pk}/leaflet/", body, format="json")
    assert response.status_code == 400 and field in response.json(), response.content
    assert not Leaflet.objects.exists()


def test_a_leaflet_body_that_is_not_an_object_is_a_400(ru_api, radicular):
    response = ru_api.post(f"/api/v1/encounters/{radicular[0].pk}/leaflet/", ["ru"], format="json")
    assert response.status_code == 400


def test_the_leaflet_is_a_404_for_another_clinic_and_a_401_for_nobody(ru_api, other_gp, anonymous, radicular):
    encounter = radicular[0]
    requested = ru_api.post(f"/api/v1/encounters/{encounter.pk}/leaflet/", {}, format="json").json()
    render("leaflet", requested["id"])
    other = api_client_for(other_gp)
    for url in (f"/api/v1/encounters/{encounter.pk}/leaflet/", f"/api/v1/encounters/{encounter.pk}/leaflet/pdf/"):
        response = other.get(url)
        assert response.status_code == 404, url
        assert b"%PDF" not in response.content
        assert anonymous.get(url).status_code == 401, url
    assert other.post(f"/api/v1/encounters/{encounter.pk}/leaflet/", {}, format="json").status_code == 404
    assert anonymous.post(f"/api/v1/encounters/{encounter.pk}/leaflet/", {}, format="json").status_code == 401
    assert Leaflet.objects.count() == 1


def test_the_schema_documents_the_new_fields_and_the_leaflet(anonymous):
    schema = anonymous.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    components = schema["components"]["schemas"]
    assert {"language", "icd10", "diagnosis", "number"} <= set(components["Referral"]["properties"])
    assert {"language", "icd10", "diagnosis"} <= set(components["ReferralCreateRequest"]["properties"])
    assert "post" in schema["paths"]["/api/v1/encounters/{id}/leaflet/"]
    assert "get" in schema["paths"]["/api/v1/encounters/{id}/leaflet/pdf/"]
