"""A spine study the workup does not recommend, checked one order at a time (what the EHR's imaging alert asks):
"nothing calls for spine imaging" only when that is true. When the workup recommends another spine study, the
check names it instead, with its sources; with a red flag present the guidance has no general view (GUIDANCE 0.6).
"""

import pytest

from tests.cases import case
from workups.engine import load_knowledge_base, order_check

CAUDA_EQUINA = {"loc_lumbar": True, "rf_saddle_anesthesia": True}
CANCER_RISK = {"loc_lumbar": True, "rf_night_pain": True}


@pytest.fixture(scope="module")
def kb_en():
    return load_knowledge_base(language="en")


@pytest.fixture(scope="module")
def kb_ru():
    return load_knowledge_base(language="ru")


def test_an_xray_ordered_when_the_workup_sends_the_patient_for_an_emergency_mri_names_the_mri(kb_en):
    check = order_check(kb_en, case(age=50, findings=CAUDA_EQUINA), "xray_lumbar_spine")

    assert check["verdict"] == "not_indicated"
    assert check["reason"] == "The workup recommends MRI of the lumbar spine instead"
    assert check["alternatives"] == ["mri_lumbar_spine"]
    # Its sources are the MRI's (cauda equina), not Choosing Wisely's "without red flags".
    assert any("cauda equina" in source for source in check["sources"]), check["sources"]
    assert not any("without red flags" in source for source in check["sources"])


@pytest.mark.parametrize("order", ["mri_lumbar_spine", "mri_thoracic_spine", "ct_spine"])
def test_another_spine_study_ordered_where_the_workup_recommends_an_xray_names_the_xray(kb_en, order):
    check = order_check(kb_en, case(age=50, findings=CANCER_RISK), order)

    assert (check["verdict"], check["alternatives"]) == ("not_indicated", ["xray_lumbar_spine"])
    assert "X-ray of the lumbar spine" in check["reason"]


def test_the_study_the_workup_recommends_is_indicated(kb_en):
    assert order_check(kb_en, case(age=50, findings=CANCER_RISK), "xray_lumbar_spine")["verdict"] == "indicated"


def test_with_a_red_flag_present_and_no_spine_study_planned_the_guidance_has_no_view(kb_en):
    pyelonephritis = {"loc_lumbar": True, "rf_fever": True, "sx_dysuria": True}

    check = order_check(kb_en, case(age=50, findings=pyelonephritis), "xray_lumbar_spine")

    assert check["verdict"] == "not_assessed"


def test_without_red_flags_or_a_planned_study_the_stewardship_reason_stands(kb_en):
    check = order_check(kb_en, case(age=50, findings={"loc_lumbar": True}), "mri_lumbar_spine")

    assert check["verdict"] == "not_indicated" and check["alternatives"] == []
    assert check["reason"].startswith("Nothing in this presentation calls for spine imaging")
    assert any("without red flags" in source for source in check["sources"])


def test_the_reason_reads_in_russian_from_the_russian_base(kb_ru):
    check = order_check(kb_ru, case(age=50, findings=CAUDA_EQUINA), "xray_lumbar_spine")

    assert check["reason"] == "Вместо этого исследования рекомендовано: МРТ пояснично-крестцового отдела позвоночника"
