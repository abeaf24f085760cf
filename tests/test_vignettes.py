"""Every public clinical vignette, through the engine, through the API and through `check_vignettes`.

The vignettes are copied into tests/data (the project never reads ../shared). The checking rules live in
workups.vignettes, which the management command uses too: listed items and referrals must be there (with
their urgency when given), `no_*` ones must not, a `status` must be the answer's.
"""

from io import StringIO
from pathlib import Path

import pytest
import yaml
from django.core.management import CommandError, call_command

from tests.record_factories import api_token_for
from workups.engine import Case, evaluate, get_knowledge_base
from workups.vignettes import vignette_body, vignette_problems

VIGNETTE_FILE = Path(__file__).parent / "data" / "vignettes.yaml"
VIGNETTES = yaml.safe_load(VIGNETTE_FILE.read_text())
EXTRA_FILE = Path(__file__).parent / "data" / "vignettes-extra.yaml"
EXTRA = yaml.safe_load(EXTRA_FILE.read_text())
RED_FLAGS = get_knowledge_base().red_flags


@pytest.mark.parametrize("vignette", VIGNETTES, ids=[v["id"] for v in VIGNETTES])
def test_vignette_workup_through_the_engine(kb, vignette):
    body = vignette_body(vignette["case"], RED_FLAGS)
    assert vignette_problems(vignette["expect"], 200, evaluate(kb, Case(**body))) == []


@pytest.mark.parametrize("vignette", VIGNETTES, ids=[v["id"] for v in VIGNETTES])
def test_vignette_workup_through_the_api(gp_api, vignette):
    response = gp_api.post("/api/v1/workup/evaluate/", vignette_body(vignette["case"], RED_FLAGS), format="json")
    assert vignette_problems(vignette["expect"], response.status_code, response.json()) == []


@pytest.mark.parametrize("vignette", EXTRA, ids=[v["id"] for v in EXTRA])
def test_more_cases_of_the_same_guidance_through_the_api(gp_api, vignette):
    # Results ride beside the findings, so these go through the endpoint's validation too (an implausible value
    # is a 400, not a flag).
    response = gp_api.post("/api/v1/workup/evaluate/", vignette_body(vignette["case"], RED_FLAGS), format="json")
    assert vignette_problems(vignette["expect"], response.status_code, response.json()) == []


def run_check(*args) -> tuple[int, str]:
    out = StringIO()
    try:
        call_command("check_vignettes", *args, stdout=out)
    except SystemExit as exit_:
        return exit_.code, out.getvalue()
    return 0, out.getvalue()


def test_check_vignettes_passes_every_public_vignette_in_process(db):
    code, out = run_check(str(VIGNETTE_FILE))
    assert code == 0
    assert out.strip().splitlines()[-1] == f"{len(VIGNETTES)} passed, 0 failed"


WRONG = """
- id: X1
  title: One episode after a long static posture, expected wrongly
  case: {sex: female, age: 34, pregnant: false, duration_days: 2, screen: absent,
         findings: {loc_lumbar: true, pattern_positional: true, hx_prolonged_static_posture: true}}
  expect:
    disposition: emergency
    items: [mri_lumbar_spine@emergency]
- id: X2
  title: An implausible haemoglobin is refused
  case: {sex: male, age: 40, duration_days: 7, screen: absent, findings: {loc_lumbar: true},
         results: {res_hemoglobin: 13.2}}
  expect: {status: 400}
- id: X3
  title: A misspelt expectation, which would otherwise pass unchecked
  case: {sex: female, age: 34, pregnant: false, duration_days: 2, screen: absent,
         findings: {loc_lumbar: true, pattern_positional: true}}
  expect: {disposition: observe, no_item: [lab_cbc]}
"""


def test_check_vignettes_fails_and_names_each_problem_of_a_wrong_expectation(db, tmp_path):
    cases = tmp_path / "wrong.yaml"
    cases.write_text(WRONG)
    code, out = run_check(str(cases))
    assert code == 1
    assert "FAIL X1" in out and "disposition 'observe', want 'emergency'" in out
    assert "items: missing mri_lumbar_spine" in out
    assert "ok   X2" in out
    assert "FAIL X3" in out and "unknown expectation(s) no_item" in out
    assert out.strip().splitlines()[-1] == "1 passed, 2 failed"


def test_check_vignettes_against_a_running_server_with_a_token(live_server, gp):
    code, out = run_check(
        str(VIGNETTE_FILE), "--url", live_server.url, "--token", api_token_for(gp), "--only", "P01", "--only", "P19"
    )
    assert code == 0, out
    assert out.strip().splitlines()[-1] == "2 passed, 0 failed"


def test_check_vignettes_with_a_wrong_token_fails_every_case(live_server, gp):
    code, out = run_check(str(VIGNETTE_FILE), "--url", live_server.url, "--token", "not-a-token", "--only", "P01")
    assert code == 1 and "HTTP 401" in out


def test_check_vignettes_refuses_unusable_arguments(db, tmp_path):
    with pytest.raises(CommandError, match="go together"):
        call_command("check_vignettes", str(VIGNETTE_FILE), "--url", "http://127.0.0.1:1")
    with pytest.raises(CommandError, match="cannot read"):
        call_command("check_vignettes", str(tmp_path / "missing.yaml"))
    (tmp_path / "junk.yaml").write_text("just: a mapping\n")
    with pytest.raises(CommandError, match="not a list of cases"):
        call_command("check_vignettes", str(tmp_path / "junk.yaml"))
