"""An integrator's view of the API: a client generated from /api/schema/ by openapi-python-client (a
generator nobody here wrote) registers a patient, records an encounter and gets its workup over HTTP."""

import datetime
import importlib
import json
import subprocess
import sys

import pytest

from tests.cases import red_flags_absent
from tests.record_factories import api_token_for

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def generated_client(tmp_path, anonymous):
    schema = anonymous.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    (tmp_path / "schema.json").write_text(json.dumps(schema.json()))
    # No post-hooks: the generated code is used as generated, not reformatted by tools that may be absent.
    (tmp_path / "config.yaml").write_text(
        "post_hooks: []\nproject_name_override: backnumb-client\npackage_name_override: backnumb_client\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "openapi_python_client", "generate", "--path", "schema.json", "--config", "config.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    sys.path.insert(0, str(tmp_path / "backnumb-client"))
    try:
        yield importlib.import_module("backnumb_client")
    finally:
        sys.path.remove(str(tmp_path / "backnumb-client"))
        for name in [name for name in sys.modules if name.startswith("backnumb_client")]:
            del sys.modules[name]


def test_a_generated_client_creates_a_patient_an_encounter_and_a_workup(generated_client, live_server, gp):
    from backnumb_client import AuthenticatedClient
    from backnumb_client.api.v1 import encounter_workup_generate, v1_encounters_create, v1_patients_create
    from backnumb_client.models import EncounterWriteRequest, FindingsRequest, PatientWriteRequest

    token = api_token_for(gp)
    client = AuthenticatedClient(
        base_url=live_server.url, token=token, prefix="Token", headers={"Accept-Language": "en"}
    )

    patient = v1_patients_create.sync(
        client=client,
        body=PatientWriteRequest.from_dict(
            {"family_name": "Smirnova", "given_name": "Anna", "birth_date": "1980-05-17", "sex": "female"}
        ),
    )
    assert patient.id and patient.family_name == "Smirnova"

    findings = {"loc_lumbar": True, "sx_urinary_frequency": True, "ex_cva_tenderness": True, **red_flags_absent()}
    encounter = v1_encounters_create.sync(
        client=client,
        body=EncounterWriteRequest(
            patient=patient.id,
            visit_date=datetime.date.today(),
            duration_days=10,
            temperature_c=36.8,
            findings=FindingsRequest.from_dict(findings),
        ),
    )
    assert encounter.id and encounter.patient == patient.id

    workup = encounter_workup_generate.sync(encounter.id, client=client)
    assert getattr(workup.disposition, "value", workup.disposition) == "routine"
    assert "nephrology" in {row.specialty for row in workup.referrals}
    assert {row.code for row in workup.items} >= {"lab_urinalysis", "lab_nechiporenko"}
