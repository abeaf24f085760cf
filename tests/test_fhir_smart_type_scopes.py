"""A backend EHR asks for the narrowest scopes it needs: every resource type the FHIR server reads has its own
system/<type>.read (and .rs) scope, offered in the SMART configuration, granted at the token endpoint and
enough to read that type, the workup's RequestGroup included."""

import json

import pytest
from rest_framework.test import APIClient

from tests.record_factories import encounter_of, workup_for
from tests.test_smart_backend import access_token, bearer, ehr, rsa_key  # noqa: F401 (fixtures)


def readable_types(client) -> list[str]:
    statement = json.loads(client.get("/fhir/metadata").content)
    return [
        resource["type"]
        for resource in statement["rest"][0]["resource"]
        if {"read", "search-type"} & {interaction["code"] for interaction in resource["interaction"]}
    ]


def test_every_type_the_server_reads_has_its_own_scope_in_the_smart_configuration(anonymous, db):
    offered = set(json.loads(anonymous.get("/.well-known/smart-configuration").content)["scopes_supported"])

    types = readable_types(anonymous)

    assert "RequestGroup" in types
    assert [kind for kind in types if f"system/{kind}.read" not in offered] == []
    assert [kind for kind in types if f"system/{kind}.rs" not in offered] == []


@pytest.mark.parametrize("scope", ["system/RequestGroup.read", "system/RequestGroup.rs"])
def test_a_request_group_scope_is_granted_and_reads_the_workup(gp, ehr, rsa_key, scope):  # noqa: F811
    encounter = encounter_of(gp)
    workup_for(gp, encounter)

    issued = access_token(APIClient(), rsa_key, scope=scope)

    assert issued["scope"] == scope
    reader = bearer(issued["access_token"])
    response = reader.get(f"/fhir/RequestGroup/workup-{encounter.pk}")
    assert response.status_code == 200, response.content
    found = json.loads(reader.get("/fhir/RequestGroup", {"encounter": encounter.pk}).content)
    assert [entry["resource"]["id"] for entry in found["entry"]] == [f"workup-{encounter.pk}"]
    # That scope reads the workup only.
    assert reader.get(f"/fhir/Encounter/{encounter.pk}").status_code == 403
