"""CDS Hooks 2.0: discovery, JWT authentication of the EHR, and the cards of both services.

An EHR (clinic.models.EhrClient) calls the services with a JWT it signs with its private key; the
prefetched Patient and Observations (coded in settings.FHIR_CODE_SYSTEM_URL) are the case.
"""

import base64
import datetime
import json
import time
import uuid

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from django.conf import settings

from clinic.models import AuditEvent
from ehr.models import EhrClient, IssuedCard
from tests.cases import red_flags_absent
from tests.factories import ClinicFactory
from tests.record_factories import EncounterFactory, PatientFactory

WORKUP = "back-numbness-workup"
IMAGING = "imaging-appropriateness"
BASE = "http://testserver"
ISSUER = "https://ehr.example.org"
CLIENT_ID = "ehr-client-1"
EHR_MRN = "urn:oid:1.2.3.4.5"

# Personas: the findings the EHR has recorded (red flags not given are answered absent).
EMERGENCY = {"loc_lumbar": True, "rf_saddle_anesthesia": True}
URGENT = {"loc_lumbar": True, "rf_cancer_history": True}
ROUTINE = {"loc_lumbar": True, "sx_urinary_frequency": True, "ex_cva_tenderness": True}
RADICULAR = {"loc_lumbar": True, "sx_leg_pain": True, "ex_straight_leg_raise_positive": True}
POSITIONAL = {"loc_lumbar": True, "pattern_positional": True}
MINOR_TRAUMA = {"loc_lumbar": True, "hx_minor_trauma": True, "ex_paravertebral_tenderness": True}


# -- keys, clients, tokens -------------------------------------------------------------------------


def _public_pem(private_key) -> str:
    return (
        private_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


@pytest.fixture(scope="module")
def rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def other_rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def ec_key():
    return ec.generate_private_key(ec.SECP384R1())


@pytest.fixture
def clinic(db):
    return ClinicFactory()


@pytest.fixture
def ehr(clinic, rsa_key):
    return EhrClient.objects.create(
        clinic=clinic,
        name="Hospital EHR",
        issuer=ISSUER,
        client_id=CLIENT_ID,
        public_key=_public_pem(rsa_key),
        active=True,
    )


@pytest.fixture
def ec_ehr(clinic, ec_key):
    return EhrClient.objects.create(
        clinic=clinic,
        name="EC EHR",
        issuer="https://ec-ehr.example.org",
        client_id="ec-client",
        public_key=_public_pem(ec_key),
        active=True,
    )


def url_of(service: str) -> str:
    return f"{BASE}/cds-services/{service}"


def claims_for(service: str, **changes) -> dict:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "sub": CLIENT_ID,
        "aud": url_of(service),
        "iat": now,
        "exp": now + 300,
        "jti": str(uuid.uuid4()),
    }
    for name, value in changes.items():
        if value is None:
            claims.pop(name, None)
        else:
            claims[name] = value
    return claims


def sign(claims: dict, key, algorithm="RS256") -> str:
    return jwt.encode(claims, key, algorithm=algorithm)


# -- prefetch ------------------------------------------------------------------------------------


def fhir_patient(*, patient_id="ehr-42", gender="male", age=40, identifiers=()) -> dict:
    today = datetime.date.today()
    resource = {
        "resourceType": "Patient",
        "id": patient_id,
        "gender": gender,
        "birthDate": datetime.date(today.year - age, 1, 1).isoformat(),
    }
    if identifiers:
        resource["identifier"] = [{"system": system, "value": value} for system, value in identifiers]
    return resource


def observation(code: str, value: dict, index: int) -> dict:
    return {
        "resource": {
            "resourceType": "Observation",
            "id": f"obs-{index}",
            "status": "final",
            "code": {"coding": [{"system": settings.FHIR_CODE_SYSTEM_URL, "code": code}]},
            "subject": {"reference": "Patient/ehr-42"},
            **value,
        }
    }


def findings_bundle(findings: dict, *, screen=True, pregnant=None, duration_days=None) -> dict:
    all_findings = dict(findings)
    if screen:
        for code, value in red_flags_absent().items():
            all_findings.setdefault(code, value)
    entries = [
        observation(code, {"valueBoolean": value}, index) for index, (code, value) in enumerate(all_findings.items())
    ]
    if pregnant is not None:
        entries.append(observation("pregnant", {"valueBoolean": pregnant}, len(entries)))
    if duration_days is not None:
        entries.append(
            observation(
                "duration_days",
                {
                    "valueQuantity": {
                        "value": duration_days,
                        "unit": "d",
                        "system": "http://unitsofmeasure.org",
                        "code": "d",
                    }
                },
                len(entries),
            )
        )
    return {"resourceType": "Bundle", "type": "searchset", "entry": entries}


def patient_view(findings=ROUTINE, *, patient=None, **bundle_options) -> dict:
    return {
        "hookInstance": str(uuid.uuid4()),
        "hook": "patient-view",
        "context": {"userId": "Practitioner/7", "patientId": "ehr-42"},
        "prefetch": {"patient": patient or fhir_patient(), "findings": findings_bundle(findings, **bundle_options)},
    }


def service_request(order_id: str, code: str, priority="routine") -> dict:
    return {
        "resourceType": "ServiceRequest",
        "id": order_id,
        "status": "draft",
        "intent": "proposal",
        "priority": priority,
        "subject": {"reference": "Patient/ehr-42"},
        "code": {"coding": [{"system": settings.FHIR_CODE_SYSTEM_URL, "code": code}]},
    }


def order_select(findings, orders: dict, *, selected=None, patient=None, **bundle_options) -> dict:
    """`orders`: ServiceRequest id -> item code; all are selected unless `selected` says which."""
    selected = list(orders) if selected is None else selected
    return {
        "hookInstance": str(uuid.uuid4()),
        "hook": "order-select",
        "context": {
            "userId": "Practitioner/7",
            "patientId": "ehr-42",
            "selections": [f"ServiceRequest/{order_id}" for order_id in selected],
            "draftOrders": {
                "resourceType": "Bundle",
                "type": "collection",
                "entry": [{"resource": service_request(order_id, code)} for order_id, code in orders.items()],
            },
        },
        "prefetch": {"patient": patient or fhir_patient(), "findings": findings_bundle(findings, **bundle_options)},
    }


@pytest.fixture
def call(client, ehr, rsa_key):
    """POST a hook request with a valid RS256 token (unless `token=` or `raw=` says otherwise)."""

    def _call(service, body, *, token=None, raw=None, authorization=None):
        if authorization is None:
            authorization = f"Bearer {token or sign(claims_for(service), rsa_key)}"
        headers = {"HTTP_AUTHORIZATION": authorization} if authorization else {}
        data = raw if raw is not None else body
        return client.post(f"/cds-services/{service}", data=data, content_type="application/json", **headers)

    return _call


def cards_of(response) -> list[dict]:
    assert response.status_code == 200, response.content
    data = response.json()
    assert set(data) == {"cards"}
    for card in data["cards"]:
        assert_card_shape(card)
    return data["cards"]


def assert_card_shape(card: dict):
    """CDS Hooks 2.0 Card: uuid, summary (< 140 chars), indicator, source.label; suggestions and links."""
    uuid.UUID(card["uuid"])
    assert isinstance(card["summary"], str) and 0 < len(card["summary"]) <= 140
    assert card["indicator"] in ("info", "warning", "critical")
    assert isinstance(card["source"], dict) and isinstance(card["source"]["label"], str) and card["source"]["label"]
    if "detail" in card:
        assert isinstance(card["detail"], str)
    for suggestion in card.get("suggestions", []):
        assert suggestion["label"]
        uuid.UUID(suggestion["uuid"])
        for action in suggestion.get("actions", []):
            assert action["type"] in ("create", "update", "delete")
            assert action["description"]
            if action["type"] == "create":
                assert action["resource"]["resourceType"]
            if action["type"] == "delete":
                assert isinstance(action["resourceId"], str) and action["resourceId"]  # CDS Hooks 2.0: a string
    if card.get("suggestions"):
        assert card["selectionBehavior"] in ("at-most-one", "any")
    for link in card.get("links", []):
        assert link["label"] and link["type"] in ("absolute", "smart")
        assert link["url"].startswith(f"{BASE}/")
    for reason in card.get("overrideReasons", []):
        assert reason["code"] and reason["display"]


def created(card: dict) -> list[dict]:
    return [
        action["resource"]
        for suggestion in card.get("suggestions", [])
        for action in suggestion["actions"]
        if action["type"] == "create"
    ]


def our_code(resource: dict):
    for coding in (resource.get("code") or {}).get("coding") or []:
        if coding.get("system") == settings.FHIR_CODE_SYSTEM_URL:
            return coding["code"]
    return None


def by_indicator(cards, indicator) -> list[dict]:
    return [card for card in cards if card["indicator"] == indicator]


# -- discovery -------------------------------------------------------------------------------------


def test_discovery_lists_both_services_without_authentication(client, db):
    response = client.get("/cds-services")

    assert response.status_code == 200
    services = {service["id"]: service for service in response.json()["services"]}
    assert set(services) == {WORKUP, IMAGING}
    assert services[WORKUP]["hook"] == "patient-view"
    assert services[IMAGING]["hook"] == "order-select"
    for service in services.values():
        assert service["title"] and service["description"]
        assert set(service["prefetch"]) == {"patient", "conditions", "vitals", "labs", "findings"}
        assert service["prefetch"]["conditions"] == "Condition?patient={{context.patientId}}"
        assert service["prefetch"]["vitals"] == "Observation?patient={{context.patientId}}&category=vital-signs"
        assert service["prefetch"]["labs"] == "Observation?patient={{context.patientId}}&category=laboratory"
        assert service["prefetch"]["patient"] == "Patient/{{context.patientId}}"
        assert "{{context.patientId}}" in service["prefetch"]["findings"]
        assert service["prefetch"]["findings"].startswith("Observation?")
        assert settings.FHIR_CODE_SYSTEM_URL in service["prefetch"]["findings"]


def test_discovery_refuses_post(client, db):
    assert client.post("/cds-services", data={}, content_type="application/json").status_code == 405


# -- authentication --------------------------------------------------------------------------------


OPEN_THE_APP = [{"label": "Open the back numbness workup", "url": f"{BASE}/", "type": "absolute"}]


def test_a_registered_ehr_with_an_rs256_token_gets_the_workup_to_order(call, kb):
    cards = cards_of(call(WORKUP, patient_view(ROUTINE)))

    assert len(cards) == 1
    card = cards[0]
    assert (card["summary"], card["indicator"]) == ("Back numbness: Routine workup", "info")
    assert card["source"] == {"label": f"{kb.title} (knowledge base {kb.version})", "url": f"{BASE}/"}
    # A patient the clinic does not know: the link opens the app, not somebody's record.
    assert card["links"] == OPEN_THE_APP
    assert card["selectionBehavior"] == "any"
    [suggestion] = card["suggestions"]
    assert (suggestion["label"], suggestion["isRecommended"]) == ("Order the recommended workup", True)
    assert all(action["type"] == "create" for action in suggestion["actions"])
    resources = created(card)
    assert all(
        (resource["resourceType"], resource["status"], resource["intent"], resource["priority"], resource["subject"])
        == ("ServiceRequest", "draft", "proposal", "routine", {"reference": "Patient/ehr-42"})
        for resource in resources
    )
    tests = [our_code(resource) for resource in resources if "performerType" not in resource]
    specialists = [
        coding["code"]
        for resource in resources
        if "performerType" in resource
        for coding in resource["performerType"]["coding"]
        if coding["system"] == settings.FHIR_CODE_SYSTEM_URL
    ]
    assert tests == ["lab_cbc", "lab_biochemistry", "lab_urinalysis", "lab_nechiporenko", "us_kidneys", "us_prostate"]
    assert specialists == ["neurology", "urology", "nephrology"]
    descriptions = [action["description"] for action in suggestion["actions"]]
    assert "Order Urinalysis (routine)" in descriptions and "Refer to Urology (routine)" in descriptions
    urinalysis = next(resource for resource in resources if our_code(resource) == "lab_urinalysis")
    assert {"system": "http://loinc.org", "code": "24356-8", "display": "Urinalysis complete panel - Urine"} in (
        urinalysis["code"]["coding"]
    )
    assert "exclude a kidney cause" in urinalysis["reasonCode"][0]["text"]
    assert "- **Urinalysis** (routine)" in card["detail"] and "- Refer to **Nephrology** (routine)" in card["detail"]


def test_a_registered_ehr_with_an_rs256_token_is_warned_off_an_mri_not_indicated(call):
    cards = cards_of(call(IMAGING, order_select(POSITIONAL, {"sr-1": "mri_lumbar_spine"})))

    assert len(cards) == 1
    card = cards[0]
    assert (card["summary"], card["indicator"]) == ("MRI of the lumbar spine is not indicated now", "warning")
    assert card["source"] == {"label": "NICE NG59 1.1.4: do not routinely offer imaging in a non-specialist setting"}
    assert card["links"] == OPEN_THE_APP
    # Nothing to order instead: the GP either cancels the order or says why it stands.
    assert "suggestions" not in card
    assert [reason["code"] for reason in card["overrideReasons"]] == [
        "override-clinical-judgement",
        "override-red-flag",
        "override-specialist-request",
    ]
    assert card["detail"].startswith("Nothing in this presentation calls for spine imaging")
    assert "Choosing Wisely" in card["detail"]


def test_a_registered_ehr_with_an_es384_token_gets_cards(client, ec_ehr, ec_key):
    token = sign(claims_for(WORKUP, iss=ec_ehr.issuer, sub=ec_ehr.client_id), ec_key, "ES384")

    response = client.post(
        f"/cds-services/{WORKUP}",
        data=patient_view(ROUTINE),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )

    assert [card["indicator"] for card in cards_of(response)] == ["info"]


def test_es384_token_works_for_the_imaging_service_too(client, ec_ehr, ec_key):
    token = sign(claims_for(IMAGING, iss=ec_ehr.issuer, sub=ec_ehr.client_id), ec_key, "ES384")

    response = client.post(
        f"/cds-services/{IMAGING}",
        data=order_select(POSITIONAL, {"sr-1": "mri_lumbar_spine"}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )

    assert [card["indicator"] for card in cards_of(response)] == ["warning"]


def _expired():
    now = int(time.time())
    return {"iat": now - 7200, "exp": now - 3600}


AUTH_FAILURES = {
    "unknown issuer": lambda keys: sign(claims_for(WORKUP, iss="https://stranger.example.org"), keys["rsa"]),
    "bad signature": lambda keys: sign(claims_for(WORKUP), keys["other"]),
    "expired": lambda keys: sign(claims_for(WORKUP, **_expired()), keys["rsa"]),
    "other service's audience": lambda keys: sign(claims_for(WORKUP, aud=url_of(IMAGING)), keys["rsa"]),
    "audience of another host": lambda keys: sign(
        claims_for(WORKUP, aud=f"https://elsewhere.example.org/cds-services/{WORKUP}"), keys["rsa"]
    ),
    "wrong sub": lambda keys: sign(claims_for(WORKUP, sub="someone-else"), keys["rsa"]),
    "missing jti": lambda keys: sign(claims_for(WORKUP, jti=None), keys["rsa"]),
    "missing aud": lambda keys: sign(claims_for(WORKUP, aud=None), keys["rsa"]),
    "missing exp": lambda keys: sign(claims_for(WORKUP, exp=None), keys["rsa"]),
    "missing iat": lambda keys: sign(claims_for(WORKUP, iat=None), keys["rsa"]),
    "missing iss": lambda keys: sign(claims_for(WORKUP, iss=None), keys["rsa"]),
    "alg none": lambda keys: jwt.encode(claims_for(WORKUP), None, algorithm="none"),
    "HS256 (a shared secret)": lambda keys: jwt.encode(claims_for(WORKUP), "a-shared-secret-" * 4, algorithm="HS256"),
}


@pytest.mark.parametrize("failure", list(AUTH_FAILURES))
def test_every_authentication_failure_is_401(call, rsa_key, other_rsa_key, failure):
    token = AUTH_FAILURES[failure]({"rsa": rsa_key, "other": other_rsa_key})

    response = call(WORKUP, patient_view(ROUTINE), token=token)

    assert response.status_code == 401, (failure, response.content)
    assert "cards" not in response.json()
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "authorization", ["", "Token abc", "Bearer ", "Bearer not-a-jwt", "Bearer a.b.c", "Basic dXNlcjpwYXNz"]
)
def test_a_missing_or_malformed_authorization_header_is_401(call, authorization):
    response = call(WORKUP, patient_view(ROUTINE), authorization=authorization or "")
    assert response.status_code == 401


def test_no_authorization_header_at_all_is_401(client, ehr):
    response = client.post(f"/cds-services/{WORKUP}", data=patient_view(ROUTINE), content_type="application/json")
    assert response.status_code == 401


@pytest.mark.parametrize(
    "token",
    [
        "a.b",
        "a.b.c.d",
        "e30.!!!.sig",
        "bm90IGpzb24.e30.sig",  # the header is not JSON
        "W10.e30.sig",  # the header is a list
        base64.urlsafe_b64encode(b"[" * 5000 + b"]" * 5000).decode().rstrip("=") + ".e30.sig",
    ],
)
def test_a_token_that_is_not_a_jwt_is_401(call, token):
    response = call(WORKUP, patient_view(ROUTINE), token=token)

    assert response.status_code == 401 and "not a JWT" in response.json()["error"]


def test_an_inactive_ehr_client_is_refused(call, ehr, rsa_key):
    ehr.active = False
    ehr.save()
    response = call(WORKUP, patient_view(ROUTINE), token=sign(claims_for(WORKUP), rsa_key))
    assert response.status_code == 401


def test_an_ehr_deactivated_between_two_calls_is_refused_at_the_second(call, ehr, rsa_key):
    assert call(WORKUP, patient_view(ROUTINE)).status_code == 200
    EhrClient.objects.filter(pk=ehr.pk).update(active=False)

    response = call(WORKUP, patient_view(ROUTINE), token=sign(claims_for(WORKUP), rsa_key))

    assert response.status_code == 401


def test_a_new_key_registered_between_two_calls_is_used_at_the_second(call, ehr, other_rsa_key):
    assert call(WORKUP, patient_view(ROUTINE)).status_code == 200
    EhrClient.objects.filter(pk=ehr.pk).update(public_key=_public_pem(other_rsa_key))

    response = call(WORKUP, patient_view(ROUTINE), token=sign(claims_for(WORKUP), other_rsa_key))

    assert response.status_code == 200


def test_the_clinics_language_changed_between_two_calls_is_that_of_the_second_calls_cards(call, clinic):
    clinic.language = "en"
    clinic.save()
    assert cards_of(call(WORKUP, patient_view(EMERGENCY)))[0]["summary"].startswith("Emergency")
    clinic.language = "ru"
    clinic.save()

    cards = cards_of(call(WORKUP, patient_view(EMERGENCY)))

    assert cards[0]["summary"].startswith("Экстренн")


def test_the_ehr_key_signs_for_its_own_issuer_only(call, ehr, ec_ehr, rsa_key):
    """A token naming the EC client as issuer, signed with the RSA client's key, does not verify."""
    token = sign(claims_for(WORKUP, iss=ec_ehr.issuer, sub=ec_ehr.client_id), rsa_key)
    assert call(WORKUP, patient_view(ROUTINE), token=token).status_code == 401


def test_a_token_for_the_workup_service_is_refused_by_the_imaging_service(call, rsa_key):
    token = sign(claims_for(WORKUP), rsa_key)
    response = call(IMAGING, order_select(POSITIONAL, {"sr-1": "mri_lumbar_spine"}), token=token)
    assert response.status_code == 401


def test_authentication_comes_before_reading_the_body(client, ehr):
    response = client.post(f"/cds-services/{WORKUP}", data="not json", content_type="application/json")
    assert response.status_code == 401


# -- patient-view cards ----------------------------------------------------------------------------


def test_an_emergency_gets_a_critical_card_ordering_an_mri_and_an_info_card(call):
    cards = cards_of(call(WORKUP, patient_view(EMERGENCY)))

    critical = by_indicator(cards, "critical")
    assert len(critical) == 1
    card = critical[0]
    assert "cauda equina" in card["summary"].lower()
    assert "NICE NG59" in card["source"]["label"]
    resources = created(card)
    assert resources and all(resource["resourceType"] == "ServiceRequest" for resource in resources)
    assert all(resource["status"] == "draft" for resource in resources)
    assert all(resource["subject"] == {"reference": "Patient/ehr-42"} for resource in resources)
    mri = [resource for resource in resources if our_code(resource) == "mri_lumbar_spine"]
    assert len(mri) == 1 and mri[0]["priority"] == "stat"
    referrals = [resource for resource in resources if "performerType" in resource]
    assert any(
        coding["code"] == "neurosurgery" for resource in referrals for coding in resource["performerType"]["coding"]
    )

    info = by_indicator(cards, "info")
    assert len(info) == 1
    assert "emergency" in info[0]["summary"].lower()
    assert not by_indicator(cards, "warning")


def test_an_urgent_case_gets_a_warning_card(call):
    cards = cards_of(call(WORKUP, patient_view(URGENT)))

    assert not by_indicator(cards, "critical")
    warnings = by_indicator(cards, "warning")
    assert len(warnings) == 1
    assert "cancer" in warnings[0]["summary"].lower()
    assert "ACR" in warnings[0]["source"]["label"]
    codes = {our_code(resource) for resource in created(warnings[0])}
    assert "mri_lumbar_spine" in codes
    assert all(resource["priority"] == "urgent" for resource in created(warnings[0]) if our_code(resource))
    assert len(by_indicator(cards, "info")) == 1


def test_a_routine_case_gets_only_the_info_card_with_the_recommended_workup(call, kb):
    cards = cards_of(call(WORKUP, patient_view(ROUTINE)))

    assert [card["indicator"] for card in cards] == ["info"]
    info = cards[0]
    assert "routine" in info["summary"].lower()
    assert kb.title in info["source"]["label"]
    codes = {our_code(resource) for resource in created(info)}
    assert {"lab_urinalysis", "lab_nechiporenko", "us_kidneys"} <= codes
    assert all(resource["status"] == "draft" and resource["intent"] == "proposal" for resource in created(info))
    assert "Urinalysis" in info["detail"]
    assert info["selectionBehavior"] == "any"


def test_a_case_with_nothing_to_do_gets_an_info_card_without_suggestions(call):
    cards = cards_of(call(WORKUP, patient_view(POSITIONAL)))

    assert [card["indicator"] for card in cards] == ["info"]
    assert "observe" in cards[0]["summary"].lower()
    assert "suggestions" not in cards[0]


def test_the_duration_default_is_stated_when_not_recorded(call):
    cards = cards_of(call(WORKUP, patient_view(ROUTINE)))
    assert "Duration not recorded" in cards[0]["detail"]

    cards = cards_of(call(WORKUP, patient_view(ROUTINE, duration_days=10)))
    assert "Duration not recorded" not in cards[0]["detail"]


def test_an_unscreened_red_flag_is_warned_about_in_the_info_card(call):
    cards = cards_of(call(WORKUP, patient_view({"loc_lumbar": True}, screen=False)))
    info = by_indicator(cards, "info")[0]
    assert "⚠" in info["detail"]


@pytest.mark.parametrize(
    "language, name",
    [
        ("en", "Saddle anaesthesia (numb perineum or inner thighs)"),
        ("ru", "Онемение в области промежности и внутренней поверхности бёдер («седловидная анестезия»)"),
    ],
)
def test_the_red_flags_not_screened_are_named_in_the_callers_language_not_by_code(client, ehr, rsa_key, language, name):
    response = client.post(
        f"/cds-services/{WORKUP}",
        data=patient_view({"loc_lumbar": True}, screen=False),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {sign(claims_for(WORKUP), rsa_key)}",
        HTTP_ACCEPT_LANGUAGE=language,
    )

    info = by_indicator(cards_of(response), "info")[0]
    assert name in info["detail"]
    assert "rf_saddle_anesthesia" not in info["detail"] and "rf_bladder_dysfunction" not in info["detail"]


def test_every_card_links_to_the_app_with_an_absolute_url(call):
    for findings in (EMERGENCY, URGENT, ROUTINE):
        for card in cards_of(call(WORKUP, patient_view(findings))):
            assert card["links"]
            assert all(link["url"].startswith(f"{BASE}/") and link["type"] == "absolute" for link in card["links"])


# -- the link to the patient in the app ------------------------------------------------------------


def _ehr_patient(identifier="MRN-001", system=EHR_MRN):
    return fhir_patient(identifiers=[(system, identifier)])


def test_a_known_patient_links_to_their_latest_encounters_workup(call, clinic):
    ours = PatientFactory(clinic=clinic, identifier="MRN-001", identifier_system=EHR_MRN)
    EncounterFactory(patient=ours, visit_date=datetime.date(2024, 1, 10))
    latest = EncounterFactory(patient=ours, visit_date=datetime.date(2024, 6, 1))

    cards = cards_of(call(WORKUP, patient_view(ROUTINE, patient=_ehr_patient())))

    assert {link["url"] for card in cards for link in card["links"]} == {f"{BASE}/encounters/{latest.pk}/workup/"}
    event = AuditEvent.objects.get(action="cds_link")
    assert (event.patient_id, event.clinic_id, event.channel) == (ours.pk, clinic.pk, "cds")


def test_the_clinics_own_identifier_system_matches_its_own_numbers(call, clinic):
    ours = PatientFactory(clinic=clinic, identifier="A-77", identifier_system="")
    encounter = EncounterFactory(patient=ours)

    patient = _ehr_patient("A-77", settings.FHIR_IDENTIFIER_SYSTEM)
    cards = cards_of(call(WORKUP, patient_view(ROUTINE, patient=patient)))

    assert cards[0]["links"][0]["url"] == f"{BASE}/encounters/{encounter.pk}/workup/"


def test_a_known_patient_without_an_encounter_links_to_the_patient(call, clinic):
    ours = PatientFactory(clinic=clinic, identifier="MRN-001", identifier_system=EHR_MRN)

    cards = cards_of(call(WORKUP, patient_view(ROUTINE, patient=_ehr_patient())))

    assert cards[0]["links"][0]["url"] == f"{BASE}/patients/{ours.pk}/"


def test_a_patient_of_another_clinic_with_the_same_identifier_is_never_linked(call, clinic):
    stranger = PatientFactory(clinic=ClinicFactory(), identifier="MRN-001", identifier_system=EHR_MRN)
    theirs = EncounterFactory(patient=stranger)

    for service, body in (
        (WORKUP, patient_view(ROUTINE, patient=_ehr_patient())),
        (IMAGING, order_select(POSITIONAL, {"sr-1": "mri_lumbar_spine"}, patient=_ehr_patient())),
    ):
        cards = cards_of(call(service, body))
        urls = {link["url"] for card in cards for link in card["links"]} | {
            card["source"].get("url") for card in cards if card["source"].get("url")
        }
        assert urls == {f"{BASE}/"}, urls
        assert not any(f"/encounters/{theirs.pk}/" in url or f"/patients/{stranger.pk}/" in url for url in urls)
    assert not AuditEvent.objects.filter(action="cds_link").exists()


def test_with_both_clinics_holding_the_identifier_the_own_clinics_patient_is_linked(call, clinic):
    stranger = PatientFactory(clinic=ClinicFactory(), identifier="MRN-001", identifier_system=EHR_MRN)
    EncounterFactory(patient=stranger, visit_date=datetime.date(2025, 1, 1))
    ours = PatientFactory(clinic=clinic, identifier="MRN-001", identifier_system=EHR_MRN)
    mine = EncounterFactory(patient=ours, visit_date=datetime.date(2023, 1, 1))

    cards = cards_of(call(WORKUP, patient_view(ROUTINE, patient=_ehr_patient())))

    assert {link["url"] for card in cards for link in card["links"]} == {f"{BASE}/encounters/{mine.pk}/workup/"}


def test_the_same_value_under_another_identifier_system_is_not_linked(call, clinic):
    ours = PatientFactory(clinic=clinic, identifier="MRN-001", identifier_system=EHR_MRN)
    EncounterFactory(patient=ours)

    cards = cards_of(call(WORKUP, patient_view(ROUTINE, patient=_ehr_patient("MRN-001", "urn:oid:9.9.9"))))

    assert cards[0]["links"][0]["url"] == f"{BASE}/"


# -- order-select cards ----------------------------------------------------------------------------


def test_an_indicated_mri_gets_no_card(call):
    body = order_select(RADICULAR, {"sr-1": "mri_lumbar_spine"}, duration_days=60)
    assert cards_of(call(IMAGING, body)) == []


def test_a_not_indicated_mri_gets_a_warning_with_override_reasons(call):
    body = order_select(POSITIONAL, {"sr-1": "mri_lumbar_spine"})

    cards = cards_of(call(IMAGING, body))

    assert len(cards) == 1
    card = cards[0]
    assert card["indicator"] == "warning"
    assert "MRI of the lumbar spine" in card["summary"]
    assert "NICE NG59" in card["source"]["label"]
    assert card["overrideReasons"]
    assert all(reason["system"] == settings.FHIR_CODE_SYSTEM_URL for reason in card["overrideReasons"])
    assert "suggestions" not in card


def test_the_same_mri_under_six_weeks_of_radicular_symptoms_is_not_indicated(call):
    body = order_select(RADICULAR, {"sr-1": "mri_lumbar_spine"}, duration_days=20)
    cards = cards_of(call(IMAGING, body))
    assert [card["indicator"] for card in cards] == ["warning"]


def test_an_mri_where_the_workup_recommends_an_xray_is_warned_off_with_the_xray_offered_instead(call):
    body = order_select({"loc_lumbar": True, "rf_night_pain": True}, {"sr-1": "mri_lumbar_spine"})

    [card] = cards_of(call(IMAGING, body))

    assert card["indicator"] == "warning"
    # Not "nothing calls for spine imaging" (a red flag is present): the study the workup recommends.
    assert card["detail"].startswith("The workup recommends X-ray of the lumbar spine instead")
    assert "Choosing Wisely" not in card["detail"] and "ACP/APS" in card["source"]["label"]
    [suggestion] = card["suggestions"]
    assert suggestion["actions"][0] == {
        "type": "delete",
        "description": suggestion["actions"][0]["description"],
        "resourceId": "ServiceRequest/sr-1",
    }
    [xray] = created(card)
    assert (our_code(xray), xray["priority"], xray["status"]) == ("xray_lumbar_spine", "urgent", "draft")
    # Already among the draft orders: not offered a second time.
    drafted = order_select(
        {"loc_lumbar": True, "rf_night_pain": True},
        {"sr-1": "mri_lumbar_spine", "sr-2": "xray_lumbar_spine"},
        selected=["sr-1"],
    )
    [card] = cards_of(call(IMAGING, drafted))
    assert "suggestions" not in card


def test_a_lumbar_xray_for_a_pregnant_patient_is_replaced_by_an_mri(call):
    patient = fhir_patient(gender="female", age=29)
    body = order_select(MINOR_TRAUMA, {"sr-9": "xray_lumbar_spine"}, patient=patient, pregnant=True)

    cards = cards_of(call(IMAGING, body))

    assert len(cards) == 1
    card = cards[0]
    assert card["indicator"] == "critical"
    assert "ACOG" in card["source"]["label"]
    [suggestion] = card["suggestions"]
    deletes = [action for action in suggestion["actions"] if action["type"] == "delete"]
    assert deletes == [
        {"type": "delete", "description": deletes[0]["description"], "resourceId": "ServiceRequest/sr-9"}
    ]
    creates = created(card)
    assert [our_code(resource) for resource in creates] == ["mri_lumbar_spine"]
    assert creates[0]["status"] == "draft" and creates[0]["subject"] == {"reference": "Patient/ehr-42"}


def test_the_same_xray_for_a_woman_who_is_not_pregnant_gets_no_critical_card(call):
    patient = fhir_patient(gender="female", age=29)
    body = order_select(MINOR_TRAUMA, {"sr-9": "xray_lumbar_spine"}, patient=patient, pregnant=False)
    assert not by_indicator(cards_of(call(IMAGING, body)), "critical")


def test_a_lab_order_gets_no_card(call):
    patient = fhir_patient(gender="female", age=29)
    for findings, extra in ((POSITIONAL, {}), (MINOR_TRAUMA, {"pregnant": True})):
        body = order_select(findings, {"sr-2": "lab_cbc"}, patient=patient, **extra)
        assert cards_of(call(IMAGING, body)) == []


def test_only_the_selected_orders_are_checked(call):
    body = order_select(POSITIONAL, {"sr-1": "mri_lumbar_spine", "sr-2": "lab_cbc"}, selected=["sr-2"])
    assert cards_of(call(IMAGING, body)) == []


def test_a_selection_not_among_the_draft_orders_is_ignored(call):
    body = order_select(POSITIONAL, {"sr-1": "mri_lumbar_spine"})
    body["context"]["selections"] = ["ServiceRequest/unknown"]
    assert cards_of(call(IMAGING, body)) == []


@pytest.mark.parametrize("order", ["xray_lumbar_spine", "ct_spine"])
def test_no_mri_is_suggested_for_a_pregnant_patient_who_cannot_have_one(call, kb, order):
    from tests.cases import case
    from workups.engine import evaluate

    findings = {**MINOR_TRAUMA, "hx_mri_contraindication": True}
    issued = {
        row["code"] for row in evaluate(kb, case(sex="female", age=29, pregnant=True, findings=findings))["items"]
    }
    assert "mri_lumbar_spine" not in issued  # the workup itself withholds the MRI
    patient = fhir_patient(gender="female", age=29)
    body = order_select(findings, {"sr-9": order}, patient=patient, pregnant=True)

    cards = cards_of(call(IMAGING, body))

    assert [card["indicator"] for card in cards] == ["critical"]
    assert "mri_lumbar_spine" not in {our_code(resource) for resource in created(cards[0])}


def test_unsafe_orders_that_are_not_indicated_either_are_only_removed_with_the_reason(call):
    # Pregnant, every red flag answered no, nothing that calls for imaging: an MRI would be "not indicated now",
    # so the X-ray and the CT are removed, and no MRI is offered in their place.
    patient = fhir_patient(gender="female", age=29)
    body = order_select(POSITIONAL, {"sr-1": "xray_lumbar_spine", "sr-2": "ct_spine"}, patient=patient, pregnant=True)

    cards = cards_of(call(IMAGING, body))

    assert [card["indicator"] for card in cards] == ["critical", "critical"]
    for card, reference in zip(cards, ["ServiceRequest/sr-1", "ServiceRequest/sr-2"], strict=True):
        [suggestion] = card["suggestions"]
        assert [(action["type"], action.get("resourceId")) for action in suggestion["actions"]] == [
            ("delete", reference)
        ]
        assert "Not indicated now either" in card["detail"] and "Order instead" not in card["detail"]
    mri = order_select(POSITIONAL, {"sr-3": "mri_lumbar_spine"}, patient=patient, pregnant=True)
    assert [card["indicator"] for card in cards_of(call(IMAGING, mri))] == ["warning"]


def test_an_alternative_is_suggested_in_one_card_only(call):
    patient = fhir_patient(gender="female", age=29)
    body = order_select(MINOR_TRAUMA, {"sr-1": "xray_lumbar_spine", "sr-2": "ct_spine"}, patient=patient, pregnant=True)

    cards = cards_of(call(IMAGING, body))

    created_codes = [our_code(resource) for card in cards for resource in created(card)]
    assert created_codes.count("mri_lumbar_spine") == 1


def test_an_alternative_already_among_the_draft_orders_is_not_suggested_again(call):
    patient = fhir_patient(gender="female", age=29)
    body = order_select(
        MINOR_TRAUMA,
        {"sr-1": "xray_lumbar_spine", "sr-3": "mri_lumbar_spine"},
        selected=["sr-1"],
        patient=patient,
        pregnant=True,
    )

    [card] = cards_of(call(IMAGING, body))

    assert created(card) == []
    assert [action["type"] for action in card["suggestions"][0]["actions"]] == ["delete"]
    assert "already ordered or suggested" in card["detail"]


# -- data missing: a card that says so, not a 412 ------------------------------------------------------


def assert_data_unavailable(response):
    cards = cards_of(response)
    assert [card["indicator"] for card in cards] == ["warning"]
    assert "not enough data" in cards[0]["summary"]
    assert "suggestions" not in cards[0]
    return cards[0]


def test_no_prefetch_at_all_and_no_fhir_server_is_412_as_cds_hooks_requires(call):
    body = patient_view(ROUTINE)
    del body["prefetch"]
    response = call(WORKUP, body)
    assert response.status_code == 412
    assert "fhirServer" in response.json()["error"]


def test_no_patient_in_the_prefetch_and_no_fhir_server_is_412(call):
    body = patient_view(ROUTINE)
    del body["prefetch"]["patient"]
    assert call(WORKUP, body).status_code == 412


def test_a_null_prefetch_is_no_data_not_an_error(call):
    body = patient_view(ROUTINE)
    body["prefetch"] = {"patient": None, "findings": None, "conditions": None}
    assert_data_unavailable(call(WORKUP, body))


def test_no_findings_bundle_gets_the_data_unavailable_card(call):
    body = patient_view(ROUTINE)
    del body["prefetch"]["findings"]
    card = assert_data_unavailable(call(WORKUP, body))
    assert "where the numbness is" in card["detail"]


def test_a_findings_prefetch_that_is_not_a_bundle_is_400(call):
    body = patient_view(ROUTINE)
    body["prefetch"]["findings"] = {"resourceType": "Observation"}
    assert call(WORKUP, body).status_code == 400


@pytest.mark.parametrize("findings", [{"sx_leg_pain": True}, {"loc_lumbar": False, "sx_leg_pain": True}])
def test_no_location_gets_the_data_unavailable_card(call, findings):
    assert_data_unavailable(call(WORKUP, patient_view(findings)))


def test_a_location_entered_in_error_does_not_count(call):
    body = patient_view(ROUTINE)
    for entry in body["prefetch"]["findings"]["entry"]:
        if entry["resource"]["code"]["coding"][0]["code"] == "loc_lumbar":
            entry["resource"]["status"] = "entered-in-error"
    assert_data_unavailable(call(WORKUP, body))


def test_a_location_in_another_code_system_does_not_count(call):
    body = patient_view(ROUTINE)
    for entry in body["prefetch"]["findings"]["entry"]:
        entry["resource"]["code"]["coding"][0]["system"] = "http://example.org/other"
    assert_data_unavailable(call(WORKUP, body))


def test_order_select_without_prefetch_or_fhir_server_is_412(call):
    body = order_select(POSITIONAL, {"sr-1": "mri_lumbar_spine"})
    del body["prefetch"]
    assert call(IMAGING, body).status_code == 412


# -- malformed requests: 400 -----------------------------------------------------------------------


def test_a_body_that_is_not_json_is_400(call):
    assert call(WORKUP, None, raw="{not json").status_code == 400


@pytest.mark.parametrize("raw", ["", "[]", "null", '"text"'])
def test_a_body_that_is_not_a_json_object_is_400(call, raw):
    assert call(WORKUP, None, raw=raw).status_code == 400


@pytest.mark.parametrize(
    "service, body, hook",
    [
        (WORKUP, lambda: patient_view(ROUTINE), "order-select"),
        (WORKUP, lambda: patient_view(ROUTINE), "patient-views"),
        (IMAGING, lambda: order_select(POSITIONAL, {"sr-1": "mri_lumbar_spine"}), "patient-view"),
    ],
)
def test_the_wrong_hook_is_400(call, service, body, hook):
    request = body()
    request["hook"] = hook
    assert call(service, request).status_code == 400


@pytest.mark.parametrize(
    "change", ["no hookInstance", "empty hookInstance", "no context", "no patientId", "numeric patientId"]
)
def test_missing_required_fields_are_400(call, change):
    body = patient_view(ROUTINE)
    if change == "no hookInstance":
        del body["hookInstance"]
    elif change == "empty hookInstance":
        body["hookInstance"] = ""
    elif change == "no context":
        del body["context"]
    elif change == "no patientId":
        del body["context"]["patientId"]
    else:
        body["context"]["patientId"] = 42
    response = call(WORKUP, body)
    assert response.status_code == 400
    assert response.json()["error"]


@pytest.mark.parametrize("patient_id", ["x" * 65, "ehr/42", "ehr 42", "Пациент-1", "x" * 200_000])
def test_a_patient_id_that_is_not_a_fhir_id_is_a_400_naming_it(call, patient_id):
    body = patient_view(ROUTINE)
    body["context"]["patientId"] = patient_id
    response = call(WORKUP, body)
    assert response.status_code == 400
    assert "context.patientId must be a FHIR id" in response.json()["error"]
    assert len(response.content) < 2000  # the id is not echoed back


def test_a_patient_id_of_64_letters_digits_dashes_and_dots_is_taken(call):
    body = patient_view(ROUTINE)
    body["context"]["patientId"] = body["prefetch"]["patient"]["id"] = "Ab-9." + "x" * 59
    response = call(WORKUP, body)
    assert response.status_code == 200, response.content


@pytest.mark.parametrize("missing", ["selections", "draftOrders"])
def test_order_select_without_selections_or_draft_orders_is_400(call, missing):
    body = order_select(POSITIONAL, {"sr-1": "mri_lumbar_spine"})
    del body["context"][missing]
    assert call(IMAGING, body).status_code == 400


@pytest.mark.parametrize(
    "change, missing",
    [
        ({"gender": None}, "sex"),
        ({"gender": "unknown"}, "sex"),
        ({"gender": "other"}, "sex"),
        ({"birthDate": None}, "date of birth"),
        ({"birthDate": "1968"}, "date of birth"),
        ({"birthDate": "1968-03"}, "date of birth"),
    ],
)
def test_a_valid_patient_without_sex_or_a_full_birth_date_gets_a_card_saying_so_not_an_error(call, change, missing):
    # Valid FHIR, so not a malformed request: a 400 would leave the clinician with nothing and the EHR logging an
    # integration error.
    body = patient_view(ROUTINE)
    for field, value in change.items():
        if value is None:
            del body["prefetch"]["patient"][field]
        else:
            body["prefetch"]["patient"][field] = value
    card = assert_data_unavailable(call(WORKUP, body))
    assert missing in card["detail"]


@pytest.mark.parametrize("service", [WORKUP, IMAGING])
def test_get_on_a_service_is_405(client, ehr, service):
    assert client.get(f"/cds-services/{service}").status_code == 405


@pytest.mark.parametrize("service", [WORKUP, IMAGING])
def test_the_405_response_says_which_methods_are_allowed(client, ehr, service):
    response = client.get(f"/cds-services/{service}")
    assert response.status_code == 405
    assert "POST" in response.get("Allow", "")


# -- queries ---------------------------------------------------------------------------------------


def test_a_patient_view_call_makes_few_queries(call, clinic, django_assert_max_num_queries):
    ours = PatientFactory(clinic=clinic, identifier="MRN-001", identifier_system=EHR_MRN)
    EncounterFactory(patient=ours)
    body = patient_view(EMERGENCY, patient=_ehr_patient())

    with django_assert_max_num_queries(8):
        response = call(WORKUP, body)

    assert response.status_code == 200


def test_the_query_count_does_not_grow_with_the_patients_identifiers(call, django_assert_max_num_queries):
    patient = fhir_patient(identifiers=[(f"urn:oid:1.2.{index}", f"ID-{index}") for index in range(10)])
    body = patient_view(ROUTINE, patient=patient)

    with django_assert_max_num_queries(8):
        response = call(WORKUP, body)

    assert response.status_code == 200


def test_a_token_without_sub_is_accepted(call, rsa_key):
    """CDS Hooks 2.0 does not define `sub`: a token without one is fine."""
    assert call(WORKUP, patient_view(ROUTINE), token=sign(claims_for(WORKUP, sub=None), rsa_key)).status_code == 200


def test_a_token_is_accepted_once(call, rsa_key):
    token = sign(claims_for(WORKUP), rsa_key)
    assert call(WORKUP, patient_view(ROUTINE), token=token).status_code == 200
    replay = call(WORKUP, patient_view(ROUTINE), token=token)
    assert replay.status_code == 401 and "used already" in replay.json()["error"]


def test_a_replayed_token_gets_no_cards_and_leaves_no_trace(call, rsa_key, clinic):
    ours = PatientFactory(clinic=clinic, identifier="MRN-001", identifier_system=EHR_MRN)
    body = patient_view(ROUTINE, patient=_ehr_patient())
    token = sign(claims_for(WORKUP), rsa_key)
    assert call(WORKUP, body, token=token).status_code == 200
    cards, events = IssuedCard.objects.count(), AuditEvent.objects.filter(patient_id=ours.pk).count()

    replay = call(WORKUP, body, token=token)

    assert replay.status_code == 401 and "cards" not in replay.json()
    assert IssuedCard.objects.count() == cards
    assert AuditEvent.objects.filter(patient_id=ours.pk).count() == events


def test_a_body_nested_too_deeply_is_400_and_spends_the_token(call, rsa_key):
    body = patient_view(ROUTINE)
    body["prefetch"]["findings"]["entry"][0]["resource"]["extension"] = json.loads("[" * 45 + "]" * 45)
    token = sign(claims_for(WORKUP), rsa_key)

    response = call(WORKUP, body, token=token)

    assert response.status_code == 400 and "nests too deeply" in response.json()["error"]
    assert call(WORKUP, patient_view(ROUTINE), token=token).status_code == 401


def test_brackets_in_the_callers_text_are_not_nesting(call):
    body = patient_view(ROUTINE)
    body["context"]["userId"] = 'Practitioner/"' + "[" * 100 + "{" * 100

    assert cards_of(call(WORKUP, body))


# -- results in the prefetch ------------------------------------------------------------------------


def _with_results(body: dict, results: dict) -> dict:
    entries = body["prefetch"]["findings"]["entry"]
    for code, value in results.items():
        if isinstance(value, bool):
            entries.append(observation(code, {"valueBoolean": value}, len(entries)))
        else:
            entries.append(observation(code, {"valueQuantity": {"value": value[0], "unit": value[1]}}, len(entries)))
    return body


def test_a_result_in_the_prefetch_is_used_by_the_rules(call):
    # Lumbar numbness and nothing else is routine; a 6.1 cm aorta makes it an urgent vascular referral (N3).
    body = _with_results(
        patient_view({"loc_lumbar": True}, patient=fhir_patient(age=71)), {"res_aorta_diameter_cm": (6.1, "cm")}
    )

    cards = cards_of(call(WORKUP, body))

    assert any(card["summary"].startswith("Urgent") and "aneurysm" in card["summary"].lower() for card in cards)


def test_a_result_outside_its_plausible_range_is_left_out_with_a_note(call):
    body = _with_results(patient_view({"loc_lumbar": True}), {"res_hemoglobin": (13.2, "g/dL")})

    cards = cards_of(call(WORKUP, body))

    info = next(card for card in cards if card["indicator"] == "info")
    assert "res_hemoglobin" in info["detail"] and "not used" in info["detail"]


def test_cards_follow_the_callers_language(client, ehr, rsa_key):
    token = sign(claims_for(WORKUP), rsa_key)
    response = client.post(
        f"/cds-services/{WORKUP}",
        data=patient_view(EMERGENCY),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
        HTTP_ACCEPT_LANGUAGE="ru",
    )

    cards = cards_of(response)
    critical = next(card for card in cards if card["indicator"] == "critical")
    assert critical["summary"].startswith("Экстренно") or critical["summary"].startswith("Экстренн")
    assert "Синдром конского хвоста" in critical["summary"] or "конского хвоста" in critical["summary"].lower()


def test_a_body_over_the_upload_limit_is_a_413_in_json(call, client, ehr, rsa_key):
    from django.conf import settings

    text = json.dumps({**patient_view(), "padding": "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)})

    response = call(WORKUP, None, raw=text)
    feedback = client.post(
        f"/cds-services/{WORKUP}/feedback",
        data=text,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {sign(claims_for(WORKUP), rsa_key)}",
    )

    for answer in (response, feedback):
        assert answer.status_code == 413, answer.content
        assert answer["Content-Type"].startswith("application/json")
        assert "too large" in answer.json()["error"]


# -- implausible values in the project's own codes ---------------------------------------------------


def _with_own_quantity(body: dict, code: str, value, unit: str, system="http://unitsofmeasure.org") -> dict:
    entries = body["prefetch"]["findings"]["entry"]
    quantity = {"value": value, "unit": unit, "code": unit}
    if system is not None:
        quantity["system"] = system
    entries.append(observation(code, {"valueQuantity": quantity}, len(entries)))
    return body


@pytest.mark.parametrize(
    "code, value, unit",
    [("temperature_c", 390, "Cel"), ("duration_days", -5, "d"), ("heart_rate", 5000, "/min"), ("spo2", -3, "%")],
)
def test_an_implausible_own_code_value_is_left_out_with_a_note_not_made_urgent(call, code, value, unit):
    body = _with_own_quantity(patient_view({"loc_lumbar": True}), code, value, unit)

    cards = cards_of(call(WORKUP, body))

    assert [card["indicator"] for card in cards] == ["info"], [card["summary"] for card in cards]
    assert f"{code} not used: {value} {unit} is implausible." in cards[0]["detail"]


def test_a_plausible_own_code_value_is_still_used(call):
    body = _with_own_quantity(patient_view({"loc_lumbar": True}), "temperature_c", 39.0, "Cel")

    cards = cards_of(call(WORKUP, body))

    assert any(card["indicator"] in ("warning", "critical") for card in cards)
    assert "not used" not in " ".join(card["detail"] for card in cards)


@pytest.mark.parametrize("code", ["temperature_c", "res_crp"])
def test_a_quantity_whose_unit_system_is_not_ucum_is_not_read_as_that_unit(call, code):
    value, unit = (39.5, "Cel") if code == "temperature_c" else (300, "mg/L")
    body = _with_own_quantity(patient_view({"loc_lumbar": True}), code, value, unit, system="http://example.org/units")

    cards = cards_of(call(WORKUP, body))

    assert [card["indicator"] for card in cards] == ["info"], [card["summary"] for card in cards]
    assert "the unit's system http://example.org/units is not UCUM" in cards[0]["detail"]


@pytest.mark.parametrize("birth_date", ["9999-12-31", "1800-01-01"])
def test_a_birth_date_giving_no_possible_age_gets_the_not_enough_data_card(call, birth_date):
    body = patient_view(ROUTINE)
    body["prefetch"]["patient"]["birthDate"] = birth_date

    card = assert_data_unavailable(call(WORKUP, body))

    assert "date of birth" in card["detail"] and birth_date in card["detail"]
