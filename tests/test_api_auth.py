"""Token authentication of the API: a GP gets a token; nobody else gets in."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.cases import body
from tests.factories import PASSWORD

PROTECTED = [
    ("post", "/api/v1/workup/evaluate/"),
    ("get", "/api/v1/vocabulary/"),
    ("get", "/api/v1/ping/"),
]


def test_a_gp_exchanges_credentials_for_a_token_that_opens_the_api(anonymous, gp):
    response = anonymous.post("/api/v1/auth/token/", {"username": gp.username, "password": PASSWORD}, format="json")
    assert response.status_code == 200
    token = response.json()["token"]
    anonymous.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert anonymous.post("/api/v1/workup/evaluate/", body(), format="json").status_code == 200


@pytest.mark.parametrize(
    "credentials", [{"username": "gp_anna", "password": "wrong"}, {"username": "nobody", "password": "x"}, {}]
)
def test_wrong_credentials_are_a_400(anonymous, gp, credentials):
    response = anonymous.post("/api/v1/auth/token/", credentials, format="json")
    assert response.status_code == 400
    assert "token" not in response.json()


@pytest.mark.parametrize("method, url", PROTECTED)
def test_an_anonymous_caller_is_refused_with_401(anonymous, db, method, url):
    response = getattr(anonymous, method)(url, body() if method == "post" else None, format="json")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Token")


@pytest.mark.parametrize("method, url", PROTECTED)
def test_a_made_up_token_is_refused_with_401(anonymous, db, method, url):
    anonymous.credentials(HTTP_AUTHORIZATION="Token " + "0" * 40)
    response = getattr(anonymous, method)(url, body() if method == "post" else None, format="json")
    assert response.status_code == 401


def test_a_token_request_reads_the_gps_membership_and_clinic_once_and_answers_in_the_clinics_language(gp, gp_api):
    clinic = gp.membership.clinic
    clinic.language, clinic.time_zone = "ru", "Asia/Vladivostok"
    clinic.save()
    gp_api.get("/api/v1/ping/")  # warm up (content types and the like)

    with CaptureQueriesContext(connection) as captured:
        response = gp_api.get("/api/v1/ping/")

    assert response.status_code == 200 and response["Content-Language"] == "ru"
    reads = [query["sql"] for query in captured if query["sql"].lstrip().upper().startswith("SELECT")]
    assert sum('"clinic_membership"' in sql for sql in reads) == 1
    assert not any('FROM "clinic_clinic"' in sql for sql in reads)  # joined to the membership, not read apart
