"""Both CDS services driven by a stand-in EHR: a local HTTP server (127.0.0.1 only) serving a JWKS with a
rotated key and FHIR searchset Bundles of Patient, Condition (ICD-10, SNOMED CT) and Observation (LOINC,
°F, stale values, entered-in-error), called with signed JWTs, with prefetch, without, and with the
server down. Also feedback, the acceptance page, JWT rules and client registration."""

import datetime
import json
import socket
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.core.management import CommandError, call_command

from clinic.models import AuditEvent, Clinic
from ehr.models import CardFeedback, EhrClient, IssuedCard, UsedToken
from tests.factories import ClinicFactory
from tests.record_factories import PatientFactory

BASE = "http://testserver"
WORKUP = "back-numbness-workup"
IMAGING = "imaging-appropriateness"
ISSUER = "https://stand-in-ehr.example.org"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
PATIENT_ID = "p-77"


def ago(**delta) -> str:
    return (datetime.datetime.now() - datetime.timedelta(**delta)).replace(microsecond=0).isoformat()


def bundle(resources) -> dict:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(resources),
        "entry": [{"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": resource} for resource in resources],
    }


def temperature(obs_id, value, unit, when, status="final"):
    return {
        "resourceType": "Observation",
        "id": obs_id,
        "status": status,
        "category": [{"coding": [{"code": "vital-signs"}]}],
        "code": {"coding": [{"system": LOINC, "code": "8310-5", "display": "Body temperature"}]},
        "subject": {"reference": f"Patient/{PATIENT_ID}"},
        "effectiveDateTime": when,
        "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit},
    }


def chart(*, latest_f=98.6) -> dict:
    patient = {"resourceType": "Patient", "id": PATIENT_ID, "gender": "male", "birthDate": "1964-05-02"}
    conditions = [
        {
            "resourceType": "Condition",
            "id": "c-1",
            "clinicalStatus": {"coding": [{"code": "active"}]},
            "verificationStatus": {"coding": [{"code": "confirmed"}]},
            "code": {"coding": [{"system": ICD10, "code": "R20.2", "display": "Paraesthesia of skin"}]},
            "bodySite": [{"coding": [{"system": SNOMED, "code": "1141985005"}]}],
            "onsetDateTime": ago(days=12),
            "subject": {"reference": f"Patient/{PATIENT_ID}"},
        },
        {
            "resourceType": "Condition",
            "id": "c-2",
            "clinicalStatus": {"coding": [{"code": "resolved"}]},
            "verificationStatus": {"coding": [{"code": "confirmed"}]},
            "code": {"coding": [{"system": ICD10, "code": "C61", "display": "Malignant neoplasm of prostate"}]},
            "onsetDateTime": "2015-02-01",
            "subject": {"reference": f"Patient/{PATIENT_ID}"},
        },
        {
            "resourceType": "Condition",
            "id": "c-3",
            "verificationStatus": {"coding": [{"code": "confirmed"}]},
            "code": {"coding": [{"system": SNOMED, "code": "709044004", "display": "Chronic kidney disease"}]},
            "subject": {"reference": f"Patient/{PATIENT_ID}"},
        },
        {
            "resourceType": "Condition",
            "id": "c-4",
            "verificationStatus": {"coding": [{"code": "entered-in-error"}]},
            "code": {"coding": [{"system": ICD10, "code": "M41.2"}]},
            "subject": {"reference": f"Patient/{PATIENT_ID}"},
        },
    ]
    vitals = [
        temperature("t-old", 101.3, "[degF]", "2019-03-04T08:00:00"),  # stale fever
        temperature("t-new", latest_f, "[degF]", ago(hours=2)),  # today's value
        temperature("t-err", 104.0, "[degF]", ago(hours=1), status="entered-in-error"),
        {
            "resourceType": "Observation",
            "id": "bp-1",
            "status": "final",
            "code": {"coding": [{"system": LOINC, "code": "85354-9"}]},
            "effectiveDateTime": ago(hours=2),
            "component": [
                {
                    "code": {"coding": [{"system": LOINC, "code": "8480-6"}]},
                    "valueQuantity": {"value": 132, "code": "mm[Hg]"},
                },
                {
                    "code": {"coding": [{"system": LOINC, "code": "8462-4"}]},
                    "valueQuantity": {"value": 84, "code": "mm[Hg]"},
                },
            ],
        },
    ]
    labs = [
        {
            "resourceType": "Observation",
            "id": "hb-1",
            "status": "final",
            "effectiveDateTime": ago(days=3),
            "code": {"coding": [{"system": LOINC, "code": "718-7"}]},
            "valueQuantity": {"value": 14.1, "unit": "g/dL", "code": "g/dL"},
        }
    ]
    return {
        "patient": patient,
        "conditions": bundle(conditions),
        "vitals": bundle(vitals),
        "labs": bundle(labs),
        "findings": bundle([]),
    }


# -- the stand-in EHR ------------------------------------------------------------------------------


def _jwk(private_key, kid):
    public = jwt.algorithms.RSAAlgorithm.to_jwk(private_key.public_key())
    return {**json.loads(public), "kid": kid, "use": "sig", "alg": "RS256"}


class StandIn:
    def __init__(self):
        self.keys = {"key-1": rsa.generate_private_key(public_exponent=65537, key_size=2048)}
        self.chart = chart()
        self.requests = []  # (path, Authorization header)
        self.barrier = None  # when set, every FHIR request waits here for the others
        self.barrier_broken = False
        self.held = set()  # FHIR paths that get no answer until `release` is set
        self.release = threading.Event()
        self.raw = {}  # FHIR path -> the bytes sent as its 200 answer instead of the chart's JSON

    def gate(self, path) -> bool:
        """Hold a FHIR request as a test asks; False when the barrier broke (a request came alone)."""
        if self.barrier is not None:
            try:
                self.barrier.wait()
            except threading.BrokenBarrierError:
                self.barrier_broken = True
                return False
        if path in self.held:
            self.release.wait(timeout=30)
        return True

    def rotate(self, kid):
        self.keys[kid] = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def jwks(self):
        return {"keys": [_jwk(key, kid) for kid, key in self.keys.items()]}

    def answer(self, path, query):
        if path == "/jwks.json":
            return self.jwks()
        if path == f"/fhir/Patient/{PATIENT_ID}":
            return self.chart["patient"]
        if query.get("patient") != [PATIENT_ID]:
            return None
        if path == "/fhir/Condition":
            return self.chart["conditions"]
        if path == "/fhir/Observation":
            category = (query.get("category") or [""])[0]
            return {"vital-signs": self.chart["vitals"], "laboratory": self.chart["labs"]}.get(
                category, self.chart["findings"]
            )
        return None


@pytest.fixture(scope="module")
def stand_in():
    state = StandIn()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            parts = urlsplit(self.path)
            state.requests.append((parts.path, self.headers.get("Authorization")))
            passed = not parts.path.startswith("/fhir/") or state.gate(parts.path)
            data = state.answer(parts.path, parse_qs(parts.query)) if passed else None
            body = json.dumps(data or {"resourceType": "OperationOutcome"}).encode()
            if parts.path in state.raw:
                data, body = True, state.raw[parts.path]
            self.send_response(200 if data is not None else 404 if passed else 503)
            self.send_header("Content-Type", "application/fhir+json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.base = f"http://127.0.0.1:{server.server_address[1]}"
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def unhurried_budget(monkeypatch):
    """A loaded machine must not turn a slow answer into "could not be reached" (an unreadable answer read as
    unreachable failed so on a busy CI): the fetch budget is a test's subject only where it sets its own."""
    from ehr import cds_views

    monkeypatch.setattr(cds_views, "FETCH_BUDGET", 60)
    monkeypatch.setattr(cds_views, "FETCH_TIMEOUT", 60)  # the EHR's key set, likewise


@pytest.fixture
def closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def clinic(db):
    return ClinicFactory()


@pytest.fixture
def ehr(clinic, stand_in):
    stand_in.requests.clear()
    stand_in.barrier, stand_in.barrier_broken, stand_in.held = None, False, set()
    stand_in.release = threading.Event()
    stand_in.raw = {}
    # Made directly, not through the admin's validation: the stand-in is plain http on 127.0.0.1.
    return EhrClient.objects.create(
        clinic=clinic,
        name="Stand-in EHR",
        issuer=ISSUER,
        jwks_url=f"{stand_in.base}/jwks.json",
        fhir_servers=[f"{stand_in.base}/fhir"],
        active=True,
    )


def registers(ehr, *bases):
    EhrClient.objects.filter(pk=ehr.pk).update(fhir_servers=[*ehr.fhir_servers, *bases])


def token(stand_in, audience, *, kid="key-1", lifetime=300, headers=None, **claims):
    now = int(time.time())
    payload = {"iss": ISSUER, "aud": audience, "iat": now, "exp": now + lifetime, "jti": str(uuid.uuid4()), **claims}
    return jwt.encode(payload, stand_in.keys[kid], algorithm="RS256", headers={"kid": kid, **(headers or {})})


def post(client, stand_in, service, body, *, scheme="Bearer", **token_options):
    auth = f"{scheme} {token(stand_in, f'{BASE}/cds-services/{service}', **token_options)}"
    return client.post(f"/cds-services/{service}", data=body, content_type="application/json", HTTP_AUTHORIZATION=auth)


def hook_body(hook, *, prefetch=None, fhir_server=None, context=None):
    body = {
        "hook": hook,
        "hookInstance": str(uuid.uuid4()),
        "context": {"userId": "Practitioner/1", "patientId": PATIENT_ID, **(context or {})},
    }
    if prefetch is not None:
        body["prefetch"] = prefetch
    if fhir_server:
        body["fhirServer"] = fhir_server
        body["fhirAuthorization"] = {
            "access_token": "tok-123",
            "token_type": "Bearer",
            "expires_in": 300,
            "scope": "patient/*.read",
            "subject": "cds-service",
        }
    return body


def cards_of(response):
    assert response.status_code == 200, response.content
    return response.json()["cards"]


def summaries(cards):
    return " | ".join(card["summary"] for card in cards).lower()


def creates(cards):
    return [
        action["resource"]
        for card in cards
        for suggestion in card.get("suggestions", [])
        for action in suggestion["actions"]
        if action["type"] == "create"
    ]


# -- patient-view on a real chart ------------------------------------------------------------------


def test_patient_view_with_prefetch_reads_icd10_snomed_and_loinc(client, ehr, stand_in):
    cards = cards_of(post(client, stand_in, WORKUP, hook_body("patient-view", prefetch=chart())))

    text = summaries(cards)
    assert "cancer" in text  # C61 resolved: still a history of cancer
    assert "infection" not in text  # 98.6 °F today is 37 °C; the 2019 fever and the entered-in-error 104 °F don't count
    info = next(card for card in cards if card["indicator"] == "info")
    assert "Not available" not in info["detail"]
    assert not stand_in.requests or all(path == "/jwks.json" for path, _ in stand_in.requests)


def test_a_lumbar_radiculopathy_code_without_a_body_site_is_read_as_where_the_numbness_is(client, ehr, stand_in):
    prefetch = chart()
    numbness = prefetch["conditions"]["entry"][0]["resource"]
    del numbness["bodySite"]
    numbness["code"] = {"coding": [{"system": ICD10, "code": "M54.16", "display": "Radiculopathy, lumbar region"}]}
    cards = cards_of(post(client, stand_in, WORKUP, hook_body("patient-view", prefetch=prefetch)))
    assert "not enough data" not in summaries(cards) and "cancer" in summaries(cards)


def test_a_latest_temperature_of_101_3_f_is_a_fever(client, ehr, stand_in):
    cards = cards_of(post(client, stand_in, WORKUP, hook_body("patient-view", prefetch=chart(latest_f=101.3))))
    assert "infection" in summaries(cards)


def test_patient_view_without_prefetch_fetches_from_the_fhir_server(client, ehr, stand_in):
    with_prefetch = cards_of(post(client, stand_in, WORKUP, hook_body("patient-view", prefetch=chart())))
    stand_in.requests.clear()

    fetched = cards_of(post(client, stand_in, WORKUP, hook_body("patient-view", fhir_server=f"{stand_in.base}/fhir")))

    assert [card["summary"] for card in fetched] == [card["summary"] for card in with_prefetch]
    fhir_calls = [(path, auth) for path, auth in stand_in.requests if path.startswith("/fhir/")]
    assert {path for path, _ in fhir_calls} == {f"/fhir/Patient/{PATIENT_ID}", "/fhir/Condition", "/fhir/Observation"}
    assert all(auth == "Bearer tok-123" for _, auth in fhir_calls)


def test_a_null_prefetch_entry_is_fetched(client, ehr, stand_in):
    prefetch = {**chart(), "conditions": None}
    cards = cards_of(
        post(
            client, stand_in, WORKUP, hook_body("patient-view", prefetch=prefetch, fhir_server=f"{stand_in.base}/fhir")
        )
    )
    assert "cancer" in summaries(cards)
    assert [path for path, _ in stand_in.requests if path.startswith("/fhir/")] == ["/fhir/Condition"]


def test_with_the_fhir_server_down_and_no_prefetch_the_answer_is_412(client, ehr, stand_in, closed_port):
    # CDS Hooks: a service that cannot obtain the data it needs (no prefetch key, the FHIR server out of reach)
    # SHALL answer 412 Precondition Failed.
    registers(ehr, f"http://127.0.0.1:{closed_port}/fhir")
    response = post(
        client, stand_in, WORKUP, hook_body("patient-view", fhir_server=f"http://127.0.0.1:{closed_port}/fhir")
    )

    assert response.status_code == 412
    assert "prefetch" in response.json()["error"]


def test_with_the_fhir_server_down_and_the_patient_prefetched_the_answer_is_a_card_saying_so(
    client, ehr, stand_in, closed_port
):
    registers(ehr, f"http://127.0.0.1:{closed_port}/fhir")
    prefetch = {"patient": chart()["patient"]}
    body = hook_body("patient-view", prefetch=prefetch, fhir_server=f"http://127.0.0.1:{closed_port}/fhir")
    cards = cards_of(post(client, stand_in, WORKUP, body))
    assert [card["indicator"] for card in cards] == ["warning"]
    assert "not enough data" in cards[0]["summary"]
    assert "could not be reached" in cards[0]["detail"]


def only_registers(ehr, *bases):
    EhrClient.objects.filter(pk=ehr.pk).update(fhir_servers=list(bases))


def test_an_unregistered_fhir_server_is_never_contacted_and_without_the_patient_the_answer_is_412(
    client, ehr, stand_in, caplog
):
    # The EHR names a server it did not register (here the stand-in, which records every request): the app
    # must not be made to fetch an address of the caller's choosing.
    only_registers(ehr, "https://ehr.example.org/fhir")
    with caplog.at_level("INFO", logger="ehr.cds_views"):
        response = post(client, stand_in, WORKUP, hook_body("patient-view", fhir_server=f"{stand_in.base}/fhir"))

    assert response.status_code == 412
    assert "registered" in response.json()["error"]
    assert not [path for path, _ in stand_in.requests if path != "/jwks.json"]
    event = AuditEvent.objects.get(action="cds_fhir_server_not_registered")
    assert (event.actor_username, event.clinic_id, event.channel) == (f"ehr:{ISSUER}", ehr.clinic_id, "cds")
    assert event.object_id == f"/cds-services/{WORKUP}" and event.patient_id is None
    logged = " ".join(record.getMessage() for record in caplog.records)
    assert "not registered" in logged and "127.0.0.1" in logged
    assert "/fhir" not in logged and PATIENT_ID not in logged


def test_an_unregistered_fhir_server_with_the_patient_prefetched_gets_the_missing_data_card(client, ehr, stand_in):
    only_registers(ehr)
    body = hook_body(
        "patient-view", prefetch={"patient": chart()["patient"]}, fhir_server=f"{stand_in.base}/fhir?_tenant=a"
    )
    cards = cards_of(post(client, stand_in, WORKUP, body))

    assert not [path for path, _ in stand_in.requests if path != "/jwks.json"]
    assert [card["indicator"] for card in cards] == ["warning"]
    assert "not enough data" in cards[0]["summary"]
    assert "not registered for this EHR" in cards[0]["detail"]


def test_a_server_beside_the_registered_one_on_the_same_host_is_not_contacted(client, ehr, stand_in):
    # Registered: {base}/fhir. Another path of the same host, or a user name in front of it, is another address.
    for other in (f"{stand_in.base}/fhir-admin", stand_in.base, stand_in.base.replace("//", "//user@")):
        stand_in.requests.clear()
        response = post(client, stand_in, WORKUP, hook_body("patient-view", fhir_server=other))
        assert response.status_code == 412, other
        assert not [path for path, _ in stand_in.requests if path != "/jwks.json"], other


def test_a_registered_fhir_server_is_used_whatever_the_case_of_its_scheme_and_a_trailing_slash(client, ehr, stand_in):
    only_registers(ehr, stand_in.base.upper() + "/fhir/")
    cards = cards_of(post(client, stand_in, WORKUP, hook_body("patient-view", fhir_server=f"{stand_in.base}/fhir")))

    assert cards
    assert len([path for path, _ in stand_in.requests if path.startswith("/fhir/")]) == 5
    assert not AuditEvent.objects.filter(action="cds_fhir_server_not_registered").exists()


def test_fhir_server_bases_compare_by_host_case_default_port_and_trailing_slash_but_not_path_case():
    from ehr.validators import registered_fhir_server

    registered = ["https://EHR.Example.org:443/fhir/r4/"]
    assert registered_fhir_server("https://ehr.example.org/fhir/r4", registered)
    assert registered_fhir_server("HTTPS://ehr.example.org/fhir/r4//", registered)
    assert not registered_fhir_server("https://ehr.example.org/FHIR/r4", registered)
    assert not registered_fhir_server("https://ehr.example.org:8443/fhir/r4", registered)
    assert not registered_fhir_server("https://ehr.example.org/fhir/r4?x=1", registered)
    assert not registered_fhir_server("https://ehr.example.org:99999/fhir/r4", registered)
    assert not registered_fhir_server("https://ehr.example.org/fhir/r4", [])


def test_the_missing_chart_is_fetched_with_concurrent_queries(client, ehr, stand_in):
    # Each of the five FHIR queries waits at a barrier for all five. Sent one after another, the first would
    # wait alone until the barrier broke (its 20 s are within the test's fetch budget) and the chart would be lost.
    stand_in.barrier = threading.Barrier(5, timeout=20)

    cards = cards_of(post(client, stand_in, WORKUP, hook_body("patient-view", fhir_server=f"{stand_in.base}/fhir")))

    assert not stand_in.barrier_broken
    assert len([path for path, _ in stand_in.requests if path.startswith("/fhir/")]) == 5
    assert "cancer" in summaries(cards) and "not enough data" not in summaries(cards)


def test_a_query_that_outlasts_the_budget_gives_the_data_unavailable_card(client, ehr, stand_in, monkeypatch):
    from ehr import cds_views

    monkeypatch.setattr(cds_views, "FETCH_BUDGET", 0.5)  # the EHR's Condition search never answers in time
    stand_in.held = {"/fhir/Condition"}
    try:
        response = post(client, stand_in, WORKUP, hook_body("patient-view", fhir_server=f"{stand_in.base}/fhir"))
    finally:
        stand_in.release.set()

    cards = cards_of(response)
    assert [card["indicator"] for card in cards] == ["warning"]
    assert "not enough data" in cards[0]["summary"] and "could not be reached" in cards[0]["detail"]


def test_no_query_is_sent_once_the_budget_is_spent(stand_in):
    from ehr.cds_views import FetchTimedOut, _fetch

    stand_in.requests.clear()
    with pytest.raises(FetchTimedOut):
        _fetch(f"{stand_in.base}/fhir/Condition?patient={PATIENT_ID}", {}, deadline=time.monotonic())
    assert stand_in.requests == []


def test_order_select_without_prefetch_fetches_too(client, ehr, stand_in):
    order = {
        "resourceType": "ServiceRequest",
        "id": "sr-1",
        "status": "draft",
        "intent": "proposal",
        "code": {"coding": [{"system": SNOMED, "code": "32962002"}]},
    }
    context = {
        "selections": ["ServiceRequest/sr-1"],
        "draftOrders": {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": order}]},
    }
    response = post(
        client, stand_in, IMAGING, hook_body("order-select", fhir_server=f"{stand_in.base}/fhir", context=context)
    )
    assert response.status_code == 200
    assert any(path == "/fhir/Condition" for path, _ in stand_in.requests)


def test_a_snomed_coded_order_is_recognised(client, ehr, stand_in):
    from ehr.cds_hooks import _item_of_order

    assert _item_of_order({"code": {"coding": [{"system": SNOMED, "code": "32962002"}]}}) == "ct_abdomen"
    assert _item_of_order({"code": {"coding": [{"system": LOINC, "code": "58410-2"}]}}) == "lab_cbc"
    assert _item_of_order({"code": {"coding": [{"system": SNOMED, "code": "0000"}]}}) is None


@pytest.mark.parametrize(
    "answer", [b"[" * 100_000 + b"]" * 100_000, b"{not json", b"\xff\xfe"], ids=["deep", "not json", "not utf-8"]
)
def test_an_unreadable_answer_from_the_fhir_server_is_data_not_available_with_a_note(client, ehr, stand_in, answer):
    stand_in.raw = {"/fhir/Condition": answer, "/fhir/Observation": answer}
    prefetch = {"patient": chart()["patient"]}
    body = hook_body("patient-view", prefetch=prefetch, fhir_server=f"{stand_in.base}/fhir")

    cards = cards_of(post(client, stand_in, WORKUP, body))

    assert "not enough data" in cards[0]["summary"]
    assert "could not be read" in cards[0]["detail"]


def test_a_russian_ehr_gets_the_notes_on_unusable_values_in_russian(client, ehr, stand_in):
    prefetch = chart()
    # The newest temperature is 98.6 sent as Cel (a °F reading mislabelled): implausible, so it is left out.
    prefetch["vitals"]["entry"].append({"resource": temperature("t-cel", 98.6, "Cel", ago(minutes=30))})
    body = hook_body("patient-view", prefetch=prefetch)
    auth = f"Bearer {token(stand_in, f'{BASE}/cds-services/{WORKUP}')}"

    response = client.post(
        f"/cds-services/{WORKUP}",
        data=body,
        content_type="application/json",
        HTTP_AUTHORIZATION=auth,
        HTTP_ACCEPT_LANGUAGE="ru",
    )

    info = next(card for card in cards_of(response) if card["indicator"] == "info")
    assert "LOINC 8310-5 (temperature_c) не учтён: 98.6 Cel — неправдоподобное значение." in info["detail"]
    assert "Длительность не указана: принята за 0 дней." in info["detail"]
    assert "not used" not in info["detail"] and "Duration not recorded" not in info["detail"]
    assert info["links"][0]["label"].startswith("Открыть")


def test_the_prefetched_patient_must_be_context_patient_id(client, ehr, stand_in):
    body = hook_body("patient-view", prefetch=chart())
    body["context"]["patientId"] = "someone-else"
    assert post(client, stand_in, WORKUP, body).status_code == 400


JUNK = {
    "prefetch a list": lambda body: body.update(prefetch=[1, 2]),
    "patient a string": lambda body: body["prefetch"].update(patient="Patient/p-77"),
    "conditions a list": lambda body: body["prefetch"].update(conditions=[{"resourceType": "Condition"}]),
    "vitals a number": lambda body: body["prefetch"].update(vitals=7),
    "labs not a bundle": lambda body: body["prefetch"].update(labs={"resourceType": "Observation"}),
    "entry a string": lambda body: body["prefetch"]["vitals"].update(entry="x"),
    "entry with a non-dict": lambda body: body["prefetch"]["vitals"]["entry"].append("x"),
    "resource a string": lambda body: body["prefetch"]["conditions"]["entry"].append({"resource": "Condition/1"}),
    "code a string": lambda body: body["prefetch"]["vitals"]["entry"][0]["resource"].update(code="8310-5"),
    "coding a dict": lambda body: body["prefetch"]["conditions"]["entry"][0]["resource"]["code"].update(coding={}),
    "valueQuantity a list": lambda body: body["prefetch"]["vitals"]["entry"][1]["resource"].update(valueQuantity=[1]),
    "bodySite a string": lambda body: body["prefetch"]["conditions"]["entry"][0]["resource"].update(bodySite="back"),
    "identifier a dict": lambda body: body["prefetch"]["patient"].update(identifier={"value": "x"}),
    "birthDate a number": lambda body: body["prefetch"]["patient"].update(birthDate=1964),
    "deep nesting": lambda body: body["prefetch"].update(
        findings={
            "resourceType": "Bundle",
            "entry": [{"resource": {"resourceType": "Observation", "x": json.loads("[" * 500 + "]" * 500)}}],
        }
    ),
    "fhirServer a number": lambda body: body.update(fhirServer=5),
    "fhirAuthorization a string": lambda body: body.update(fhirAuthorization="tok"),
}


@pytest.mark.parametrize("junk", list(JUNK))
def test_junk_is_400_never_500(client, ehr, stand_in, junk):
    body = hook_body("patient-view", prefetch=chart())
    JUNK[junk](body)
    response = post(client, stand_in, WORKUP, body)
    assert response.status_code in (200, 400), (junk, response.status_code)
    if junk not in ("code a string", "coding a dict", "valueQuantity a list", "bodySite a string", "identifier a dict"):
        assert response.status_code == 400, (junk, response.content)


@pytest.mark.parametrize(
    "orders",
    [
        {"selections": "ServiceRequest/sr-1", "draftOrders": {"resourceType": "Bundle", "entry": []}},
        {"selections": [{"x": 1}], "draftOrders": {"resourceType": "Bundle", "entry": []}},
        {"selections": [], "draftOrders": {"resourceType": "Bundle", "entry": ["x"]}},
        {"selections": [], "draftOrders": "Bundle"},
    ],
)
def test_junk_orders_are_400(client, ehr, stand_in, orders):
    response = post(client, stand_in, IMAGING, hook_body("order-select", prefetch=chart(), context=orders))
    assert response.status_code == 400


# -- cards: no duplicates, no patient ids in source.url, recorded ----------------------------------


def test_no_item_is_suggested_twice_and_source_urls_are_not_patient_specific(client, ehr, stand_in):
    cards = cards_of(post(client, stand_in, WORKUP, hook_body("patient-view", prefetch=chart())))

    keys = []
    for resource in creates(cards):
        codes = [coding["code"] for coding in resource.get("code", {}).get("coding", [])][:1] or [
            coding["code"] for coding in resource["performerType"]["coding"]
        ][:1]
        keys.append(codes[0])
    assert keys and len(keys) == len(set(keys))
    for card in cards:
        url = card["source"].get("url")
        assert url is None or (url == f"{BASE}/" and PATIENT_ID not in url)
        assert "_rule" not in card
    issued = IssuedCard.objects.filter(client=ehr)
    assert {str(row.uuid) for row in issued} == {card["uuid"] for card in cards}
    assert all(row.service == WORKUP and row.rule for row in issued)


# -- feedback --------------------------------------------------------------------------------------


def _feedback(client, stand_in, service, items):
    auth = f"Bearer {token(stand_in, f'{BASE}/cds-services/{service}/feedback')}"
    return client.post(
        f"/cds-services/{service}/feedback",
        data={"feedback": items},
        content_type="application/json",
        HTTP_AUTHORIZATION=auth,
    )


def test_feedback_is_stored_and_the_acceptance_rate_is_shown_per_rule(client, ehr, stand_in, admin_client):
    cards = cards_of(post(client, stand_in, WORKUP, hook_body("patient-view", prefetch=chart())))
    warning = next(card for card in cards if card["indicator"] == "warning")
    info = next(card for card in cards if card["indicator"] == "info")
    now = datetime.datetime.now(datetime.UTC).isoformat()
    items = [
        {
            "card": warning["uuid"],
            "outcome": "accepted",
            "outcomeTimestamp": now,
            "acceptedSuggestions": [{"id": warning["suggestions"][0]["uuid"]}],
        },
        {
            "card": info["uuid"],
            "outcome": "overridden",
            "outcomeTimestamp": now,
            "overrideReason": {
                "reason": {"code": "override-clinical-judgement", "display": "Clinical judgement"},
                "userComment": "seen by oncology last week",
            },
        },
    ]

    response = _feedback(client, stand_in, WORKUP, items)

    assert response.status_code == 200, response.content
    stored = {row.outcome: row for row in CardFeedback.objects.filter(client=ehr)}
    assert set(stored) == {"accepted", "overridden"}
    assert stored["overridden"].override_reason_code == "override-clinical-judgement"
    assert stored["overridden"].override_comment == "seen by oncology last week"
    assert stored["accepted"].rule == IssuedCard.objects.get(uuid=warning["uuid"]).rule
    page = admin_client.get("/admin/ehr/cardfeedback/acceptance/")
    assert page.status_code == 200
    html = page.content.decode()
    assert stored["accepted"].rule in html and "100%" in html and "0%" in html


def test_the_acceptance_page_is_staff_only(client, db):
    response = client.get("/admin/ehr/cardfeedback/acceptance/")
    assert response.status_code == 302 and "/login" in response["Location"]


@pytest.mark.parametrize(
    "items",
    [
        [{"card": "not-a-uuid", "outcome": "accepted", "outcomeTimestamp": "2026-01-01T00:00:00Z"}],
        [
            {"card": str(uuid.uuid4()), "outcome": "accepted", "outcomeTimestamp": "2026-01-01T00:00:00Z"}
        ],  # never issued
        [{"card": str(uuid.uuid4()), "outcome": "maybe", "outcomeTimestamp": "2026-01-01T00:00:00Z"}],
        ["x"],
        [],
    ],
)
def test_bad_feedback_is_400(client, ehr, stand_in, items):
    assert _feedback(client, stand_in, WORKUP, items).status_code == 400


@pytest.mark.parametrize(
    "change, named",
    [
        ({"acceptedSuggestions": []}, "acceptedSuggestions"),
        ({"acceptedSuggestions": None}, "acceptedSuggestions"),
        ({"outcomeTimestamp": "2026-01-01T09:00:00"}, "outcomeTimestamp"),  # no offset: no instant
        ({"outcomeTimestamp": "2026-01-01"}, "outcomeTimestamp"),
        ({"outcomeTimestamp": "yesterday"}, "outcomeTimestamp"),
    ],
)
def test_feedback_that_cds_hooks_does_not_allow_is_400_naming_the_field_and_stores_nothing(
    client, ehr, stand_in, change, named
):
    cards = cards_of(post(client, stand_in, WORKUP, hook_body("patient-view", prefetch=chart())))
    card = next(card for card in cards if card.get("suggestions"))
    item = {
        "card": card["uuid"],
        "outcome": "accepted",
        "outcomeTimestamp": "2026-01-01T09:00:00+03:00",
        "acceptedSuggestions": [{"id": card["suggestions"][0]["uuid"]}],
    }
    assert _feedback(client, stand_in, WORKUP, [item]).status_code == 200  # as sent, it is good
    response = _feedback(client, stand_in, WORKUP, [{**item, **change}])
    assert response.status_code == 400 and named in response.json()["error"]
    assert CardFeedback.objects.filter(client=ehr).count() == 1


def _accepted(card, suggestion_id=None):
    return {
        "card": card["uuid"],
        "outcome": "accepted",
        "outcomeTimestamp": "2026-01-01T09:00:00+03:00",
        "acceptedSuggestions": [{"id": suggestion_id or card["suggestions"][0]["uuid"]}],
    }


def _card_with_suggestions(client, stand_in):
    cards = cards_of(post(client, stand_in, WORKUP, hook_body("patient-view", prefetch=chart())))
    return next(card for card in cards if card.get("suggestions"))


def test_feedback_accepting_a_suggestion_the_card_never_had_is_400_naming_it(client, ehr, stand_in):
    card = _card_with_suggestions(client, stand_in)

    response = _feedback(client, stand_in, WORKUP, [_accepted(card, suggestion_id=str(uuid.uuid4()))])

    assert response.status_code == 400
    assert "feedback[0].acceptedSuggestions[0]" in response.json()["error"]
    assert not CardFeedback.objects.exists()


def test_a_second_contradictory_outcome_for_a_card_is_409_and_the_first_is_kept(client, ehr, stand_in):
    card = _card_with_suggestions(client, stand_in)
    assert _feedback(client, stand_in, WORKUP, [_accepted(card)]).status_code == 200
    overridden = {"card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-01-01T09:05:00Z"}

    response = _feedback(client, stand_in, WORKUP, [overridden])

    assert response.status_code == 409 and "already answered" in response.json()["error"]
    assert list(CardFeedback.objects.values_list("outcome", flat=True)) == ["accepted"]


def test_two_outcomes_for_one_card_in_one_request_are_refused(client, ehr, stand_in):
    card = _card_with_suggestions(client, stand_in)
    overridden = {"card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-01-01T09:05:00Z"}

    response = _feedback(client, stand_in, WORKUP, [_accepted(card), overridden])

    assert response.status_code == 409 and "feedback[1]" in response.json()["error"]
    assert not CardFeedback.objects.exists()


def test_the_same_outcome_sent_again_is_taken_once(client, ehr, stand_in):
    card = _card_with_suggestions(client, stand_in)
    assert _feedback(client, stand_in, WORKUP, [_accepted(card)]).status_code == 200

    assert _feedback(client, stand_in, WORKUP, [_accepted(card)]).status_code == 200
    assert CardFeedback.objects.count() == 1


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_feedback_with_a_bare_nan_or_infinity_is_400_naming_it(client, ehr, stand_in, constant):
    card = _card_with_suggestions(client, stand_in)
    text = json.dumps({"feedback": [{**_accepted(card), "extra": "__X__"}]}).replace('"__X__"', constant)
    auth = f"Bearer {token(stand_in, f'{BASE}/cds-services/{WORKUP}/feedback')}"

    response = client.post(
        f"/cds-services/{WORKUP}/feedback", data=text, content_type="application/json", HTTP_AUTHORIZATION=auth
    )

    assert response.status_code == 400 and constant.lstrip("-") in response.json()["error"]
    assert not CardFeedback.objects.exists()


def test_feedback_needs_a_valid_token(client, ehr, stand_in):
    response = client.post(f"/cds-services/{WORKUP}/feedback", data={"feedback": []}, content_type="application/json")
    assert response.status_code == 401


# -- JWT -------------------------------------------------------------------------------------------


def test_a_rotated_key_is_found_by_kid(client, ehr, stand_in):
    assert post(client, stand_in, WORKUP, hook_body("patient-view", prefetch=chart())).status_code == 200
    stand_in.rotate("key-2")  # the JWKS (possibly cached with key-1 only) now also has key-2

    response = post(client, stand_in, WORKUP, hook_body("patient-view", prefetch=chart()), kid="key-2")

    assert response.status_code == 200, response.content


def test_an_unknown_kid_is_401(client, ehr, stand_in):
    stand_in.keys["stray"] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    try:
        forged = jwt.encode(
            {
                "iss": ISSUER,
                "aud": f"{BASE}/cds-services/{WORKUP}",
                "iat": int(time.time()),
                "exp": int(time.time()) + 60,
                "jti": str(uuid.uuid4()),
            },
            stand_in.keys["stray"],
            algorithm="RS256",
            headers={"kid": "not-published"},
        )
    finally:
        del stand_in.keys["stray"]
    response = client.post(
        f"/cds-services/{WORKUP}",
        data=hook_body("patient-view", prefetch=chart()),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {forged}",
    )
    assert response.status_code == 401


def test_jku_on_the_allow_list_is_used_and_any_other_refused(client, clinic, stand_in):
    EhrClient.objects.create(
        clinic=clinic, name="jku EHR", issuer=ISSUER, active=True, jku_allowlist=[f"{stand_in.base}/jwks.json"]
    )
    body = lambda: hook_body("patient-view", prefetch=chart())  # noqa: E731
    ok = post(client, stand_in, WORKUP, body(), headers={"jku": f"{stand_in.base}/jwks.json"})
    other = post(client, stand_in, WORKUP, body(), headers={"jku": f"{stand_in.base}/other-jwks.json"})
    assert ok.status_code == 200, ok.content
    assert other.status_code == 401


def test_a_token_living_longer_than_five_minutes_is_refused(client, ehr, stand_in):
    response = post(client, stand_in, WORKUP, hook_body("patient-view", prefetch=chart()), lifetime=3600)
    assert response.status_code == 401 and "5 minutes" in response.json()["error"]


@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "Bearer"])
def test_the_bearer_scheme_is_case_insensitive(client, ehr, stand_in, scheme):
    assert post(client, stand_in, WORKUP, hook_body("patient-view", prefetch=chart()), scheme=scheme).status_code == 200


def test_replay_protection_lives_in_the_database(client, ehr, stand_in, settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}  # no cache at all
    signed = token(stand_in, f"{BASE}/cds-services/{WORKUP}")
    send = lambda: client.post(  # noqa: E731
        f"/cds-services/{WORKUP}",
        data=hook_body("patient-view", prefetch=chart()),  # noqa: E731
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {signed}",
    )
    assert send().status_code == 200
    assert UsedToken.objects.filter(issuer=ISSUER).count() == 1
    replay = send()
    assert replay.status_code == 401 and "used already" in replay.json()["error"]


def test_expired_used_tokens_are_pruned(client, ehr, stand_in):
    UsedToken.objects.create(issuer=ISSUER, jti="old", expires_at=datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC))
    assert post(client, stand_in, WORKUP, hook_body("patient-view", prefetch=chart())).status_code == 200
    assert not UsedToken.objects.filter(jti="old").exists()


# -- audit of unmatched calls ----------------------------------------------------------------------


def _unknown_issuer_call(client, stand_in, issuer, path=f"/cds-services/{WORKUP}"):
    signed = token(stand_in, f"{BASE}{path}", iss=issuer)
    return client.post(
        path,
        data=hook_body("patient-view", prefetch=chart()),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {signed}",
    )


def test_a_call_from_an_unregistered_ehr_is_refused_and_audited_with_its_issuer(client, ehr, stand_in):
    response = _unknown_issuer_call(client, stand_in, "https://unknown-ehr.example.org")

    assert response.status_code == 401
    event = AuditEvent.objects.get(action="cds_unknown_issuer")
    assert event.actor_username == "ehr:https://unknown-ehr.example.org"
    assert (event.clinic_id, event.channel, event.ip_address) == (None, "cds", "127.0.0.1")
    assert (event.object_type, event.object_id) == ("cds_service", f"/cds-services/{WORKUP}")
    assert event.patient_id is None and event.patient_ids == []


def test_an_issuer_with_a_nul_is_refused_not_500_and_audited_printable(client, ehr, stand_in):
    response = _unknown_issuer_call(client, stand_in, "https://ehr.example.org\x00admin")

    assert response.status_code == 401
    assert AuditEvent.objects.get(action="cds_unknown_issuer").actor_username == "ehr:https://ehr.example.org?admin"


def test_a_flood_of_calls_from_unknown_issuers_writes_a_bounded_number_of_rows(client, ehr, stand_in, monkeypatch):
    from django.test import override_settings

    from clinic import audit

    monkeypatch.setattr(audit, "_clock", lambda: 60_000_000.0)  # one window throughout
    with override_settings(PROBE_AUDIT_LIMIT=3, PROBE_AUDIT_WINDOW=60):
        # A new issuer each call: the caller's own text must not open a new allowance.
        for n in range(12):
            assert _unknown_issuer_call(client, stand_in, f"https://scanner-{n}.example.org").status_code == 401

    rows = list(AuditEvent.objects.filter(channel="cds").order_by("id").values_list("action", "actor_username"))
    assert rows == [("cds_unknown_issuer", f"ehr:https://scanner-{n}.example.org") for n in range(3)] + [
        ("probes_limited", "ehr:https://scanner-3.example.org")
    ]
    assert set(AuditEvent.objects.filter(channel="cds").values_list("endpoint", flat=True)) == {
        f"POST /cds-services/{WORKUP}"
    }


def test_feedback_from_an_unregistered_ehr_is_audited_too(client, ehr, stand_in):
    path = f"/cds-services/{WORKUP}/feedback"
    assert _unknown_issuer_call(client, stand_in, "https://unknown-ehr.example.org", path).status_code == 401
    assert AuditEvent.objects.get(action="cds_unknown_issuer").object_id == path


def test_a_call_for_a_patient_of_no_record_here_is_audited_without_patient_data(client, ehr, stand_in, clinic):
    cards = cards_of(post(client, stand_in, WORKUP, hook_body("patient-view", prefetch=chart())))

    assert cards and {link["url"] for card in cards for link in card["links"]} == {f"{BASE}/"}
    event = AuditEvent.objects.get(action="cds_no_patient_match")
    assert (event.actor_username, event.clinic_id, event.channel) == (f"ehr:{ISSUER}", clinic.pk, "cds")
    assert (event.object_type, event.object_id, event.ip_address) == (
        "cds_service",
        f"/cds-services/{WORKUP}",
        "127.0.0.1",
    )
    assert event.patient_id is None and event.patient_ids == []
    assert PATIENT_ID not in str(event) and PATIENT_ID not in event.object_id


def test_a_call_whose_patient_could_not_be_had_is_audited_as_unmatched(client, ehr, stand_in, closed_port):
    response = post(
        client, stand_in, WORKUP, hook_body("patient-view", fhir_server=f"http://127.0.0.1:{closed_port}/fhir")
    )

    assert response.status_code == 412
    assert AuditEvent.objects.filter(action="cds_no_patient_match", clinic_id=ehr.clinic_id).count() == 1


def test_a_matched_patient_is_not_audited_as_unmatched(client, ehr, stand_in, clinic):
    ours = PatientFactory(clinic=clinic, identifier="MRN-9", identifier_system="urn:oid:1.2.3.4.5")
    prefetch = chart()
    prefetch["patient"]["identifier"] = [{"system": "urn:oid:1.2.3.4.5", "value": "MRN-9"}]

    cards_of(post(client, stand_in, WORKUP, hook_body("patient-view", prefetch=prefetch)))

    assert not AuditEvent.objects.filter(action="cds_no_patient_match").exists()
    assert AuditEvent.objects.get(action="cds_link").patient_id == ours.pk


SNILS = "11223344595"  # passes the Pension Fund checksum


def linked_patient_id():
    return AuditEvent.objects.get(action="cds_link").patient_id


@pytest.mark.parametrize(
    "identifier",
    [
        {"system": "https://fhir.ru/ig/core/systems/snils", "value": "112-233-445-95"},
        {"system": "https://fhir.ru/ig/core/systems/snils", "value": SNILS},
        {"system": "http://fhir.ru/ig/RuSEMD/systems/snils", "value": "112-233-445 95"},
        {"system": "https://fhir.ru/ig/core/systems/oms", "value": "7700000000000001"},
        {"system": "http://fhir.ru/ig/RuSEMD/systems/OMS", "value": "7700 0000 0000 0001"},
    ],
)
def test_the_ehrs_patient_is_matched_by_snils_or_policy(client, ehr, stand_in, clinic, identifier):
    ours = PatientFactory(clinic=clinic, snils=SNILS, oms_policy="7700000000000001")
    PatientFactory(snils=SNILS, oms_policy="7700000000000001")  # another clinic's, with the same numbers
    prefetch = chart()
    prefetch["patient"]["identifier"] = [{"system": "urn:oid:1.2.3.4.5", "value": "not-ours"}, identifier]

    cards = cards_of(post(client, stand_in, WORKUP, hook_body("patient-view", prefetch=prefetch)))

    assert linked_patient_id() == ours.pk
    assert f"{BASE}/patients/{ours.pk}/" in {link["url"] for card in cards for link in card["links"]}
    assert not AuditEvent.objects.filter(action="cds_no_patient_match").exists()


def test_a_fetched_patient_is_matched_by_snils(client, ehr, stand_in, clinic, monkeypatch):
    ours = PatientFactory(clinic=clinic, snils=SNILS)
    snils = {"system": "https://fhir.ru/ig/core/systems/snils", "value": SNILS}
    patient = {**chart()["patient"], "identifier": [snils]}
    monkeypatch.setitem(stand_in.chart, "patient", patient)

    cards_of(post(client, stand_in, WORKUP, hook_body("patient-view", fhir_server=f"{stand_in.base}/fhir")))

    assert (f"/fhir/Patient/{PATIENT_ID}", "Bearer tok-123") in stand_in.requests
    assert linked_patient_id() == ours.pk


def test_the_ehrs_own_number_comes_first_when_it_names_another_patient(client, ehr, stand_in, clinic):
    by_number = PatientFactory(clinic=clinic, identifier="MRN-9", identifier_system="urn:oid:1.2.3.4.5")
    PatientFactory(clinic=clinic, snils=SNILS)
    prefetch = chart()
    prefetch["patient"]["identifier"] = [
        {"system": "urn:oid:1.2.3.4.5", "value": "MRN-9"},
        {"system": "https://fhir.ru/ig/core/systems/snils", "value": SNILS},
    ]

    cards_of(post(client, stand_in, WORKUP, hook_body("patient-view", prefetch=prefetch)))

    assert linked_patient_id() == by_number.pk  # the EHR's order: its first identifier that matches wins


@pytest.mark.parametrize(
    "identifier",
    [
        {"system": "https://fhir.ru/ig/core/systems/snils", "value": SNILS},  # only another clinic has it
        {"system": "https://fhir.ru/ig/core/systems/snils", "value": "112-233-445"},  # too short
        {"system": "https://fhir.ru/ig/core/systems/snils", "value": "112\u0000233"},
        {"system": "https://fhir.ru/ig/core/systems/oms", "value": SNILS},  # a SNILS is not a policy
    ],
)
def test_a_snils_of_no_patient_here_is_unmatched_and_audited(client, ehr, stand_in, identifier):
    PatientFactory(snils=SNILS)  # another clinic's
    prefetch = chart()
    prefetch["patient"]["identifier"] = [identifier]

    cards = cards_of(post(client, stand_in, WORKUP, hook_body("patient-view", prefetch=prefetch)))

    assert {link["url"] for card in cards for link in card["links"]} == {f"{BASE}/"}
    assert AuditEvent.objects.filter(action="cds_no_patient_match").count() == 1
    assert not AuditEvent.objects.filter(action="cds_link").exists()


# -- registration ----------------------------------------------------------------------------------


def test_register_a_client_with_a_jwks_url_for_the_only_clinic(clinic):
    call_command(
        "ehr_client_register",
        "--name",
        "City EHR",
        "--issuer",
        "https://city.example.org",
        "--jwks-url",
        "https://city.example.org/.well-known/jwks.json",
    )
    registered = EhrClient.objects.get(issuer="https://city.example.org")
    assert registered.clinic == clinic and registered.jwks_url.endswith("jwks.json") and not registered.public_key


def test_register_with_a_public_key_file_and_a_named_clinic(clinic, tmp_path):
    ClinicFactory(name="Second practice")
    key = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    path = tmp_path / "ehr.pem"
    path.write_bytes(key)
    call_command(
        "ehr_client_register",
        "--name",
        "PEM EHR",
        "--issuer",
        "https://pem.example.org",
        "--public-key",
        str(path),
        "--clinic",
        "Second practice",
    )
    registered = EhrClient.objects.get(issuer="https://pem.example.org")
    assert registered.clinic.name == "Second practice" and "BEGIN PUBLIC KEY" in registered.public_key


def test_register_without_clinic_when_there_are_several_names_the_choices(clinic):
    ClinicFactory(name="Second practice")
    with pytest.raises(CommandError) as error:
        call_command(
            "ehr_client_register",
            "--name",
            "X",
            "--issuer",
            "https://x.example.org",
            "--jwks-url",
            "https://x.example.org/jwks.json",
        )
    assert "Second practice" in str(error.value) and clinic.name in str(error.value)
    assert Clinic.objects.count() == 2 and not EhrClient.objects.exists()


def test_register_needs_exactly_one_key_source(clinic):
    with pytest.raises(CommandError):
        call_command("ehr_client_register", "--name", "X", "--issuer", "https://x.example.org")


def test_register_with_fhir_servers_keeps_them(clinic):
    call_command(
        "ehr_client_register",
        *("--name", "City EHR", "--issuer", "https://city.example.org"),
        *("--jwks-url", "https://city.example.org/jwks.json"),
        *("--fhir-server", "https://city.example.org/fhir/r4", "--fhir-server", "https://fhir2.example.org/"),
    )
    registered = EhrClient.objects.get(issuer="https://city.example.org")
    assert registered.fhir_servers == ["https://city.example.org/fhir/r4", "https://fhir2.example.org/"]


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("http://city.example.org/fhir", "https"),
        ("https://city.example.org/fhir?_tenant=a", "query"),
        ("https://city.example.org/fhir#r4", "fragment"),
        ("https://admin:secret@city.example.org/fhir", "user name"),
        ("city.example.org/fhir", "https"),
    ],
)
def test_register_refuses_a_fhir_server_that_is_not_a_plain_https_base(clinic, url, said):
    with pytest.raises(CommandError) as error:
        call_command(
            "ehr_client_register",
            *("--name", "X", "--issuer", "https://x.example.org", "--jwks-url", "https://x.example.org/jwks.json"),
            *("--fhir-server", url),
        )
    assert "--fhir-server" in str(error.value) and said in str(error.value)
    assert not EhrClient.objects.exists()


def _admin_add_ehr(admin_client, clinic, fhir_servers, *, language="en"):
    return admin_client.post(
        "/admin/ehr/ehrclient/add/",
        {
            "clinic": clinic.pk,
            "name": "Admin EHR",
            "issuer": "https://admin-ehr.example.org",
            "client_id": "",
            "public_key": "",
            "jwks_url": "https://admin-ehr.example.org/jwks.json",
            "jku_allowlist": "[]",
            "fhir_servers": fhir_servers,
            "active": "on",
        },
        HTTP_ACCEPT_LANGUAGE=language,
    )


@pytest.mark.parametrize(
    ("fhir_servers", "said"),
    [
        ('["http://admin-ehr.example.org/fhir"]', "is not an https URL"),
        ('["https://admin-ehr.example.org/fhir?_tenant=a"]', "has a query or a fragment"),
        ('"https://admin-ehr.example.org/fhir"', "JSON list"),
    ],
)
def test_the_admin_refuses_a_fhir_server_that_is_not_a_plain_https_base(admin_client, clinic, fhir_servers, said):
    response = _admin_add_ehr(admin_client, clinic, fhir_servers)

    assert response.status_code == 200
    assert said in response.content.decode()
    assert not EhrClient.objects.filter(issuer="https://admin-ehr.example.org").exists()


def test_the_admin_says_why_in_russian_too(admin_client, clinic):
    response = _admin_add_ehr(admin_client, clinic, '["http://admin-ehr.example.org/fhir"]', language="ru")

    assert "не URL https" in response.content.decode()
    assert not EhrClient.objects.filter(issuer="https://admin-ehr.example.org").exists()


def test_the_admin_keeps_https_fhir_servers(admin_client, clinic):
    response = _admin_add_ehr(admin_client, clinic, '["https://admin-ehr.example.org/fhir/r4"]')

    assert response.status_code == 302
    registered = EhrClient.objects.get(issuer="https://admin-ehr.example.org")
    assert registered.fhir_servers == ["https://admin-ehr.example.org/fhir/r4"]
