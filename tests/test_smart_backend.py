"""SMART Backend Services on the FHIR server: a registered EHR signs a JWT assertion, gets an access token
at POST /fhir/auth/token (client_credentials, private_key_jwt) and reads, or posts lab results, with it
as far as its scopes go; errors are RFC 6749 §5.2 JSON; tokens are stored hashed and expire."""

import json
import threading
import time
import uuid
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from unittest import mock
from urllib.parse import urlencode

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from django.db import connection
from django.utils import timezone
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from rest_framework.test import APIClient

from clinic.models import AuditEvent
from ehr import smart
from ehr.models import EhrClient, SmartAccessToken
from tests.record_factories import api_client_for, clinic_of, encounter_of, patient_of
from tests.test_fhir import full_encounter  # noqa: F401 (a fixture)
from tests.test_fhir_server import hemoglobin, outcome, post

TOKEN_URL = "http://testserver/fhir/auth/token"
CLIENT_ID = "hospital-ehr-backend"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
FORM = "application/x-www-form-urlencoded"


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


@pytest.fixture
def ehr(gp, rsa_key):
    return EhrClient.objects.create(
        clinic=clinic_of(gp),
        name="Hospital EHR",
        issuer="https://ehr.example.org",
        client_id=CLIENT_ID,
        public_key=_public_pem(rsa_key),
        active=True,
    )


def assertion(key, algorithm="RS384", headers=None, **changes) -> str:
    now = int(time.time())
    claims = {"iss": CLIENT_ID, "sub": CLIENT_ID, "aud": TOKEN_URL, "exp": now + 240, "jti": str(uuid.uuid4())}
    claims.update(changes)
    claims = {name: value for name, value in claims.items() if value is not None}
    return jwt.encode(claims, key, algorithm=algorithm, headers=headers)


def token_request(client, signed=None, *, key=None, scope="system/*.read", **form):
    data = {
        "grant_type": "client_credentials",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": signed if signed is not None else assertion(key),
        "scope": scope,
        **form,
    }
    data = {name: value for name, value in data.items() if value is not None}
    return client.generic("POST", "/fhir/auth/token", urlencode(data), content_type=FORM)


def access_token(client, key, scope="system/*.read") -> dict:
    response = token_request(client, key=key, scope=scope)
    assert response.status_code == 200, response.content
    return json.loads(response.content)


def bearer(raw) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def oauth_error(response, status, error):
    assert response.status_code == status, response.content
    data = json.loads(response.content)
    assert data["error"] == error, data
    assert isinstance(data["error_description"], str) and data["error_description"]
    assert response["Cache-Control"] == "no-store"
    return data


# -- discovery --------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/.well-known/smart-configuration", "/fhir/.well-known/smart-configuration"])
def test_the_smart_configuration_is_served(anonymous, db, path):
    response = anonymous.get(path)
    assert response.status_code == 200 and response["Content-Type"].startswith("application/json")
    document = json.loads(response.content)
    assert document["token_endpoint"] == TOKEN_URL
    assert document["token_endpoint_auth_methods_supported"] == ["private_key_jwt"]
    assert {"RS384", "ES384", "RS256", "ES256"} <= set(document["token_endpoint_auth_signing_alg_values_supported"])
    assert document["grant_types_supported"] == ["client_credentials"]
    assert {"system/*.read", "system/Observation.write", "system/*.rs", "system/Patient.read"} <= set(
        document["scopes_supported"]
    )
    assert "client-confidential-asymmetric" in document["capabilities"]
    assert document["code_challenge_methods_supported"] == ["S256"]  # required by SMART 2.0; never "plain"


def test_the_capability_statement_names_the_smart_service_and_the_token_endpoint(anonymous, db):
    statement = json.loads(anonymous.get("/fhir/metadata").content)
    CapabilityStatement.model_validate(statement)
    security = statement["rest"][0]["security"]
    assert [coding["code"] for service in security["service"] for coding in service.get("coding", [])] == [
        "SMART-on-FHIR"
    ]
    uris = security["extension"][0]
    assert uris["url"] == "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
    assert uris["extension"] == [{"url": "token", "valueUri": TOKEN_URL}]


# -- the token --------------------------------------------------------------------------------------


def test_a_registered_ehr_gets_a_token_and_reads_with_it(gp, ehr, rsa_key, full_encounter):  # noqa: F811
    client = APIClient()
    issued = access_token(client, rsa_key, scope="system/*.read launch/patient system/Nonsense.write")
    assert issued["token_type"] == "bearer" and issued["expires_in"] == 300
    assert issued["scope"] == "system/*.read"  # unknown scopes dropped
    ehr_api = bearer(issued["access_token"])
    patient_id = full_encounter.patient_id
    response = ehr_api.get(f"/fhir/Patient/{patient_id}")
    assert response.status_code == 200, response.content
    assert json.loads(response.content)["id"] == str(patient_id)
    found = json.loads(ehr_api.get("/fhir/Observation", {"patient": patient_id}).content)
    assert found["resourceType"] == "Bundle" and found["total"] > 0
    searched = ehr_api.generic("POST", "/fhir/Patient/_search", urlencode({"_id": patient_id}), content_type=FORM)
    assert json.loads(searched.content)["total"] == 1
    # The issue and the reads are in the audit trail, as the EHR's service user of the clinic.
    user = EhrClient.objects.get(pk=ehr.pk).service_user
    assert user is not None and not user.has_usable_password() and user.membership.clinic == clinic_of(gp)
    issue = AuditEvent.objects.get(action="smart_token")
    assert (issue.actor, issue.clinic_id, issue.patient_id, issue.object_id) == (user, ehr.clinic_id, None, str(ehr.pk))
    assert AuditEvent.objects.filter(actor=user, action="view", object_type="patient", patient_id=patient_id).exists()
    # A second token reuses the same service user.
    access_token(client, rsa_key)
    assert EhrClient.objects.get(pk=ehr.pk).service_user == user


def test_an_ehr_with_a_jwks_on_a_local_server_gets_a_token_by_kid(gp, rsa_key, other_rsa_key):
    keys = {
        "keys": [
            dict(json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(other_rsa_key.public_key())), kid="old"),
            dict(json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(rsa_key.public_key())), kid="current"),
        ]
    }

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            payload = json.dumps(keys).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        EhrClient.objects.create(
            clinic=clinic_of(gp),
            name="JWKS EHR",
            issuer="https://jwks-ehr.example.org",
            client_id=CLIENT_ID,
            jwks_url=f"http://127.0.0.1:{server.server_port}/jwks.json",
        )
        client = APIClient()
        response = token_request(client, assertion(rsa_key, headers={"kid": "current"}))
        assert response.status_code == 200, response.content
        oauth_error(token_request(client, assertion(rsa_key, headers={"kid": "old"})), 401, "invalid_client")
    finally:
        server.shutdown()
        server.server_close()


def test_an_es384_assertion_is_accepted(gp):
    key = ec.generate_private_key(ec.SECP384R1())
    EhrClient.objects.create(
        clinic=clinic_of(gp),
        name="EC EHR",
        issuer="https://ec.example.org",
        client_id=CLIENT_ID,
        public_key=_public_pem(key),
    )
    assert token_request(APIClient(), assertion(key, algorithm="ES384")).status_code == 200


def test_tokens_are_stored_hashed(ehr, rsa_key):
    raw = access_token(APIClient(), rsa_key)["access_token"]
    stored = SmartAccessToken.objects.get()
    assert stored.token_hash == smart.hash_token(raw) != raw and len(stored.token_hash) == 64
    assert stored.scopes == ["system/*.read"] and stored.client == ehr
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {SmartAccessToken._meta.db_table}")
        assert raw not in repr(cursor.fetchall())


def test_the_v2_scope_forms_are_granted_with_what_the_server_has(ehr, rsa_key):
    issued = access_token(APIClient(), rsa_key, scope="system/*.cruds system/Observation.c system/Patient.rs")
    assert issued["scope"] == "system/*.rs system/Observation.c system/Patient.rs"


@pytest.mark.parametrize(
    "failure, status, error",
    [
        ("wrong aud", 401, "invalid_client"),
        ("expired", 401, "invalid_client"),
        ("lifetime over 5 minutes", 401, "invalid_client"),
        ("iat to exp over 5 minutes", 401, "invalid_client"),
        ("unknown client", 401, "invalid_client"),
        ("inactive client", 401, "invalid_client"),
        ("sub is not iss", 401, "invalid_client"),
        ("wrong signature", 401, "invalid_client"),
        ("missing jti", 401, "invalid_client"),
        ("not a jwt", 401, "invalid_client"),
        ("client_id of another", 401, "invalid_client"),
        ("wrong grant_type", 400, "unsupported_grant_type"),
        ("no grant_type", 400, "invalid_request"),
        ("wrong assertion type", 400, "invalid_request"),
        ("no assertion", 400, "invalid_request"),
        ("missing scope", 400, "invalid_scope"),
        ("only unknown scopes", 400, "invalid_scope"),
    ],
)
def test_a_bad_token_request_gets_the_oauth_error(ehr, rsa_key, other_rsa_key, failure, status, error):
    now = int(time.time())
    client = APIClient()
    cases = {
        "wrong aud": lambda: token_request(client, assertion(rsa_key, aud="http://testserver/fhir/")),
        "expired": lambda: token_request(client, assertion(rsa_key, exp=now - 120)),
        "lifetime over 5 minutes": lambda: token_request(client, assertion(rsa_key, exp=now + 600)),
        "iat to exp over 5 minutes": lambda: token_request(client, assertion(rsa_key, iat=now - 300, exp=now + 60)),
        "unknown client": lambda: token_request(client, assertion(rsa_key, iss="stranger", sub="stranger")),
        "inactive client": lambda: (
            EhrClient.objects.filter(pk=ehr.pk).update(active=False),
            token_request(client, key=rsa_key),
        )[1],
        "sub is not iss": lambda: token_request(client, assertion(rsa_key, sub="someone-else")),
        "wrong signature": lambda: token_request(client, assertion(other_rsa_key)),
        "missing jti": lambda: token_request(client, assertion(rsa_key, jti=None)),
        "not a jwt": lambda: token_request(client, "not-a-jwt"),
        "client_id of another": lambda: token_request(client, key=rsa_key, client_id="another"),
        "wrong grant_type": lambda: token_request(client, key=rsa_key, grant_type="authorization_code"),
        "no grant_type": lambda: token_request(client, key=rsa_key, grant_type=None),
        "wrong assertion type": lambda: token_request(client, key=rsa_key, client_assertion_type="jwt"),
        "no assertion": lambda: token_request(client, "", key=rsa_key),
        "missing scope": lambda: token_request(client, key=rsa_key, scope=None),
        "only unknown scopes": lambda: token_request(client, key=rsa_key, scope="system/Patient.write user/*.read"),
    }
    oauth_error(cases[failure](), status, error)
    assert not SmartAccessToken.objects.exists()


def test_a_replayed_assertion_is_refused(ehr, rsa_key):
    client = APIClient()
    signed = assertion(rsa_key)
    assert token_request(client, signed).status_code == 200
    oauth_error(token_request(client, signed), 401, "invalid_client")


def test_the_token_endpoint_takes_only_a_form_post(ehr, rsa_key):
    client = APIClient()
    assert client.get("/fhir/auth/token").status_code == 405
    response = client.post("/fhir/auth/token", {"grant_type": "client_credentials"}, format="json")
    oauth_error(response, 400, "invalid_request")


# -- the bearer token on the FHIR server ------------------------------------------------------------


def test_posting_an_observation_needs_observation_write(gp, ehr, rsa_key):
    encounter = encounter_of(gp)
    client = APIClient()
    reader = bearer(access_token(client, rsa_key, scope="system/*.read")["access_token"])
    outcome(post(reader, "/fhir/Observation", hemoglobin(encounter)), 403)
    assert not encounter.results.exists()
    writer = bearer(access_token(client, rsa_key, scope="system/Observation.write")["access_token"])
    response = post(writer, "/fhir/Observation", hemoglobin(encounter))
    assert response.status_code == 201, response.content
    result = encounter.results.get()
    assert result.entered_by == EhrClient.objects.get(pk=ehr.pk).service_user
    # Observation.write reads nothing; the v2 form c does the same as write.
    outcome(writer.get(f"/fhir/Patient/{encounter.patient_id}"), 403)
    v2 = bearer(access_token(client, rsa_key, scope="system/Observation.c")["access_token"])
    assert post(v2, "/fhir/Observation", hemoglobin(encounter, effectiveDateTime="2024-03-06")).status_code == 201


def test_a_type_scope_reads_that_type_only(gp, ehr, rsa_key):
    patient = patient_of(gp)
    ehr_api = bearer(access_token(APIClient(), rsa_key, scope="system/Patient.rs")["access_token"])
    assert ehr_api.get(f"/fhir/Patient/{patient.pk}").status_code == 200
    outcome(ehr_api.get("/fhir/Encounter", {"patient": patient.pk}), 403)


def test_patient_create_update_and_task_update_stay_with_the_token_header(gp, ehr, rsa_key):
    patient = patient_of(gp)
    ehr_api = bearer(access_token(APIClient(), rsa_key, scope="system/*.read system/Observation.write")["access_token"])
    outcome(post(ehr_api, "/fhir/Patient", {"resourceType": "Patient"}), 403)
    response = ehr_api.generic(
        "PUT",
        f"/fhir/Patient/{patient.pk}",
        json.dumps({"resourceType": "Patient"}),
        content_type="application/fhir+json",
        HTTP_IF_MATCH='W/"1"',
    )
    outcome(response, 403)
    response = ehr_api.generic(
        "PUT",
        "/fhir/Task/referral-1",
        json.dumps({"resourceType": "Task"}),
        content_type="application/fhir+json",
        HTTP_IF_MATCH='W/"1"',
    )
    outcome(response, 403)


def test_another_clinics_patient_is_a_404(gp, other_gp, ehr, rsa_key):
    theirs = patient_of(other_gp)
    ours = patient_of(gp)
    ehr_api = bearer(access_token(APIClient(), rsa_key)["access_token"])
    assert ehr_api.get(f"/fhir/Patient/{ours.pk}").status_code == 200
    outcome(ehr_api.get(f"/fhir/Patient/{theirs.pk}"), 404)
    assert json.loads(ehr_api.get("/fhir/Patient", {"_id": theirs.pk}).content)["total"] == 0
    assert (
        json.loads(ehr_api.get("/fhir/Encounter", {"patient": encounter_of(other_gp).patient_id}).content)["total"] == 0
    )


def test_an_expired_or_unknown_access_token_is_a_401_invalid_token(ehr, rsa_key, gp):
    patient = patient_of(gp)
    raw = access_token(APIClient(), rsa_key)["access_token"]
    later = timezone.now() + timedelta(seconds=301)
    with mock.patch("django.utils.timezone.now", return_value=later):
        response = bearer(raw).get(f"/fhir/Patient/{patient.pk}")
    outcome(response, 401)
    assert response["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    assert bearer(raw).get(f"/fhir/Patient/{patient.pk}").status_code == 200  # before then, it works
    response = bearer("not-a-token").get(f"/fhir/Patient/{patient.pk}")
    outcome(response, 401)
    assert response["WWW-Authenticate"] == 'Bearer error="invalid_token"'


def test_a_deactivated_ehr_loses_its_tokens(ehr, rsa_key, gp):
    patient = patient_of(gp)
    ehr_api = bearer(access_token(APIClient(), rsa_key)["access_token"])
    EhrClient.objects.filter(pk=ehr.pk).update(active=False)
    outcome(ehr_api.get(f"/fhir/Patient/{patient.pk}"), 401)


def test_the_token_lifetime_follows_the_setting(ehr, rsa_key, settings):
    settings.SMART_TOKEN_SECONDS = 120
    issued = access_token(APIClient(), rsa_key)
    assert issued["expires_in"] == 120
    stored = SmartAccessToken.objects.get()
    assert abs((stored.expires_at - stored.issued_at).total_seconds() - 120) < 5


def test_the_gp_token_header_still_works_for_everything(gp, ehr):
    patient = patient_of(gp)
    assert api_client_for(gp).get(f"/fhir/Patient/{patient.pk}").status_code == 200
