"""The vocabulary is a public contract: every published code is known, named and served."""

from pathlib import Path

import yaml

CODES = yaml.safe_load((Path(__file__).parent / "data" / "codes.yaml").read_text())


def test_the_knowledge_base_knows_every_published_code_with_a_name(kb):
    vocabulary = kb.vocabulary
    for group, codes in CODES["findings"].items():
        for code in codes:
            assert vocabulary.findings[code]["group"] == group
            assert vocabulary.findings[code]["name"] and vocabulary.findings[code]["negative"]
    for code, category in CODES["items"].items():
        assert vocabulary.items[code]["category"] == category
    assert set(CODES["specialties"]) <= set(vocabulary.specialties)
    assert set(CODES["urgencies"]) <= set(vocabulary.urgencies)
    assert set(CODES["dispositions"]) <= set(vocabulary.dispositions)
    assert set(CODES["warnings"]) <= set(vocabulary.warnings)
    for kind in ("numeric", "boolean"):
        for code in CODES["results"][kind]:
            assert vocabulary.results[code]["type"] == kind, code
            assert vocabulary.results[code]["name"]


def test_the_red_flag_screen_is_the_published_red_flags(kb):
    assert list(kb.red_flags) == CODES["findings"]["rf"]


def test_the_api_serves_every_code_with_its_name_and_group(gp_api):
    response = gp_api.get("/api/v1/vocabulary/")
    assert response.status_code == 200
    served = {row["code"]: row for row in response.json()["codes"]}
    published = [code for codes in CODES["findings"].values() for code in codes]
    published += [*CODES["items"], *CODES["specialties"], *CODES["urgencies"], *CODES["warnings"]]
    published += [*CODES["results"]["numeric"], *CODES["results"]["boolean"]]
    for code in published:
        assert served[code]["name"] and served[code]["group"]
    assert served["rf_saddle_anesthesia"]["group"] == "rf"
    assert served["lab_nechiporenko"]["category"] == "lab"
    assert served["hx_prostate_disease"]["sex"] == "male"
    assert response.json()["knowledge_base_version"]
