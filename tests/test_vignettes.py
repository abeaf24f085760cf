"""Every public clinical vignette, through the engine and through the API.

The vignettes are copied into tests/data (the project never reads ../shared).
The checking logic mirrors the public checker: listed items and referrals
must be there (with their urgency when given), `no_*` ones must not.
"""

from pathlib import Path

import pytest
import yaml

from tests.cases import red_flags_absent
from workups.engine import Case, evaluate

VIGNETTES = yaml.safe_load((Path(__file__).parent / "data" / "vignettes.yaml").read_text())


def vignette_body(spec):
    data = {key: value for key, value in spec.items() if key not in ("findings", "screen")}
    findings = dict(spec.get("findings") or {})
    if spec.get("screen") == "absent":
        for code, value in red_flags_absent().items():
            findings.setdefault(code, value)
    return {**data, "findings": findings}


def problems(expect, got):
    found = []
    if "disposition" in expect and got["disposition"] != expect["disposition"]:
        found.append(f"disposition {got['disposition']}, want {expect['disposition']}")
    for field, key in (("items", "code"), ("referrals", "specialty")):
        have = {row[key]: row["urgency"] for row in got[field]}
        for entry in expect.get(field, []):
            code, _, urgency = entry.partition("@")
            if code not in have:
                found.append(f"{field}: missing {code}")
            elif urgency and have[code] != urgency:
                found.append(f"{field}: {code} is {have[code]}, want {urgency}")
        found += [f"{field}: {code} must not be there" for code in expect.get("no_" + field, []) if code in have]
    for field in ("withheld", "warnings"):
        have = {row["code"] for row in got[field]}
        found += [f"{field}: missing {code}" for code in expect.get(field, []) if code not in have]
    flags = {row["code"]: row["flag"] for row in got.get("results", [])}
    found += [
        f"results: {code} is {flags.get(code)}, want {flag}"
        for code, flag in (expect.get("flags") or {}).items()
        if flags.get(code) != flag
    ]
    return found


@pytest.mark.parametrize("vignette", VIGNETTES, ids=[v["id"] for v in VIGNETTES])
def test_vignette_workup_through_the_engine(kb, vignette):
    body = vignette_body(vignette["case"])
    assert problems(vignette["expect"], evaluate(kb, Case(**body))) == []


@pytest.mark.parametrize("vignette", VIGNETTES, ids=[v["id"] for v in VIGNETTES])
def test_vignette_workup_through_the_api(gp_api, vignette):
    response = gp_api.post("/api/v1/workup/evaluate/", vignette_body(vignette["case"]), format="json")
    assert response.status_code == 200, response.content
    assert problems(vignette["expect"], response.json()) == []
