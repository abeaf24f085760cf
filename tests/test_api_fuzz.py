"""Property-based requests to every documented API operation (schemathesis): never a server error.

The bodies and parameters are generated from the OpenAPI schema, valid and invalid alike, and sent
through the WSGI application as a GP of one clinic with a patient, an encounter and a workup.
"""

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from config.wsgi import application
from tests.record_factories import api_token_for, encounter_of, patient_of, workup_for

schema = schemathesis.openapi.from_wsgi("/api/schema/", application)


@pytest.fixture
def keep_test_connection():
    # The WSGI handler closes the database connection after each request; inside a test transaction
    # that would end the test's transaction too (Django's own test client does the same as this).
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def authorization(gp, keep_test_connection):
    encounter = encounter_of(gp, patient=patient_of(gp))
    workup_for(gp, encounter)
    return {"Authorization": f"Token {api_token_for(gp)}"}


@schema.parametrize()
@settings(
    max_examples=15,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.function_scoped_fixture],
)
@pytest.mark.django_db
def test_no_request_is_answered_with_a_server_error(case, authorization):
    response = case.call(headers=authorization)
    case.validate_response(response, checks=[not_a_server_error])
