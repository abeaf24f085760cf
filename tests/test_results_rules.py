"""Results and next steps (GUIDANCE section 6): each result interpreted against its reference, rules
N1-N14 at their boundaries, results that raise the disposition and re-run the safety rules, and the
evaluate endpoint refusing what cannot be a result."""

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from tests.cases import body, case, items, referrals
from workups.engine import evaluate, get_knowledge_base

KB = get_knowledge_base()
EVALUATE = "/api/v1/workup/evaluate/"
LUMBAR = {"loc_lumbar": True}
DISPOSITION_RANK = {"observe": 0, "routine": 1, "urgent": 2, "emergency": 3}


def run(results, *, findings=None, **kwargs):
    return evaluate(KB, case(findings=findings or LUMBAR, results=results, **kwargs))


def flag_of(result, code):
    return {row["code"]: row["flag"] for row in result["results"]}[code]


# -- interpretation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sex, pregnant, value, flag",
    [
        ("male", None, 129, "low"),
        ("male", None, 130, "normal"),
        ("female", False, 119, "low"),
        ("female", False, 120, "normal"),
        ("female", True, 109, "low"),
        ("female", True, 115, "normal"),
    ],
)
def test_haemoglobin_is_judged_by_sex_and_pregnancy(sex, pregnant, value, flag):
    assert flag_of(run({"res_hemoglobin": value}, sex=sex, pregnant=pregnant), "res_hemoglobin") == flag


@pytest.mark.parametrize(
    "sex, age, value, flag",
    [
        ("male", 60, 30, "normal"),
        ("male", 60, 31, "high"),  # age/2 = 30
        ("female", 60, 35, "normal"),
        ("female", 60, 36, "high"),  # (age + 10)/2 = 35
    ],
)
def test_the_esr_reference_grows_with_age_and_is_higher_for_women(sex, age, value, flag):
    assert flag_of(run({"res_esr": value}, sex=sex, age=age), "res_esr") == flag


def test_each_result_carries_its_value_unit_reference_and_source():
    row = run({"res_crp": 12.5})["results"][0]

    assert row["code"] == "res_crp" and row["value"] == 12.5 and row["flag"] == "high"
    assert row["unit"] == "mg/L" and row["reference"] == "≤ 5 mg/L" and row["source"]


def test_true_false_results_read_positive_negative_or_present_absent():
    result = run({"res_ua_nitrite": False, "img_vertebral_fracture": False, "res_troponin_above_url": True})

    assert [(row["code"], row["flag"]) for row in result["results"]] == [
        ("res_ua_nitrite", "negative"),
        ("res_troponin_above_url", "positive"),
        ("img_vertebral_fracture", "absent"),
    ]


def test_in_russian_the_reference_has_a_decimal_comma_and_russian_units():
    result = evaluate(get_knowledge_base("ru"), case(findings=LUMBAR, results={"res_wbc": 12.3}))

    assert result["results"][0]["reference"] == "4,0–11,0 ×10⁹/л"


def test_normal_results_change_nothing():
    without = run({})
    with_normal = run({"res_hemoglobin": 140, "res_wbc": 6.0, "res_crp": 1, "res_egfr": 95, "res_esr": 5})

    assert (items(with_normal), referrals(with_normal), with_normal["disposition"]) == (
        items(without),
        referrals(without),
        without["disposition"],
    )


# -- the rules --------------------------------------------------------------------------------------


def test_n1_a_positive_troponin_or_acute_ischaemia_is_an_emergency_cardiology_referral():
    for results in ({"res_troponin_above_url": True}, {"ecg_acute_ischaemia": True}):
        result = run(results, findings={"loc_left_scapular": True})
        assert result["disposition"] == "emergency"
        assert referrals(result)["cardiology"] == "emergency"


def test_n2_compression_on_imaging_is_an_emergency_neurosurgery_referral():
    result = run({"img_cauda_or_cord_compression": True})

    assert result["disposition"] == "emergency" and referrals(result) == {"neurosurgery": "emergency"}


@pytest.mark.parametrize(
    "diameter, urgency", [(2.9, None), (3.0, "routine"), (5.4, "routine"), (5.5, "urgent"), (6.1, "urgent")]
)
def test_n3_the_aneurysm_size_sets_the_vascular_referral(diameter, urgency):
    result = run({"res_aorta_diameter_cm": diameter}, age=70)

    assert referrals(result).get("vascular_surgery") == urgency


def test_n4_pyuria_with_cva_tenderness_gets_culture_ultrasound_and_nephrology_urgently():
    result = run({"res_nech_leukocytes": 6500}, findings={"loc_lumbar": True, "ex_cva_tenderness": True})

    assert items(result)["lab_urine_culture"] == "urgent" and items(result)["us_kidneys"] == "urgent"
    assert referrals(result)["nephrology"] == "urgent"


def test_n4_pyuria_without_fever_or_cva_tenderness_gets_a_routine_culture_only():
    result = run({"res_ua_nitrite": True})

    assert items(result).get("lab_urine_culture") == "routine"
    assert "nephrology" not in referrals(result)


@pytest.mark.parametrize(
    "age, extra, urgency",
    [(59, {"sx_dysuria": True}, "routine"), (60, {}, "routine"), (60, {"sx_dysuria": True}, "urgent")],
)
def test_n5_haematuria_at_60_with_dysuria_is_an_urgent_urology_referral(age, extra, urgency):
    result = run({"res_nech_erythrocytes": 5000}, findings={**LUMBAR, **extra}, age=age)

    assert referrals(result)["urology"] == urgency
    assert "us_kidneys" in items(result)


def test_n5_a_raised_white_cell_count_counts_like_dysuria():
    result = run({"res_nech_erythrocytes": 5000, "res_wbc": 14}, age=65)

    assert referrals(result)["urology"] == "urgent"


def test_n6_a_stone_is_urgent_and_with_fever_an_emergency():
    assert referrals(run({"img_urolithiasis_or_hydronephrosis": True}))["urology"] == "urgent"
    febrile = run({"img_urolithiasis_or_hydronephrosis": True}, findings={**LUMBAR, "rf_fever": True})
    assert febrile["disposition"] == "emergency" and referrals(febrile)["urology"] == "emergency"


@pytest.mark.parametrize("egfr, urgency", [(29, "urgent"), (30, "routine"), (59, "routine"), (60, None)])
def test_n7_the_egfr_sets_the_nephrology_referral(egfr, urgency):
    assert referrals(run({"res_egfr": egfr})).get("nephrology") == urgency


def test_n7_an_egfr_below_30_counts_as_kidney_disease_for_the_contrast_warning():
    result = run({"res_egfr": 25, "img_suspected_malignancy": True})

    assert "contrast_and_kidney_disease" in {row["code"] for row in result["warnings"]}


@pytest.mark.parametrize("esr, fires", [(19, False), (20, True)])
def test_n8_the_esr_threshold_is_a_fixed_20_whatever_the_age_reference(esr, fires):
    # At 80 the age reference is 45 mm/h: an ESR of 20 is "normal" yet still meets N8.
    result = run({"res_esr": esr}, findings={**LUMBAR, "rf_night_pain": True}, age=80)

    assert ("N8" in result["fired_rules"]) is fires
    assert (referrals(result).get("oncology") == "urgent") is fires
    assert (items(result).get("mri_lumbar_spine") == "urgent") is fires


def test_n9_a_suspicious_lesion_or_infection_on_imaging():
    lesion = run({"img_suspected_malignancy": True}, findings={"loc_interscapular": True})
    infection = run({"img_suspected_infection": True})

    assert referrals(lesion)["oncology"] == "urgent" and items(lesion)["mri_thoracic_spine"] == "urgent"
    assert referrals(infection)["infectious_disease"] == "urgent" and referrals(infection)["neurosurgery"] == "urgent"


def test_n10_a_fracture_is_urgent_traumatology_and_with_a_deficit_emergency_neurosurgery():
    plain = run({"img_vertebral_fracture": True})
    deficit = run({"img_vertebral_fracture": True}, findings={**LUMBAR, "ex_leg_weakness": True})

    assert referrals(plain)["traumatology"] == "urgent"
    assert deficit["disposition"] == "emergency" and referrals(deficit)["neurosurgery"] == "emergency"
    # The urgent part waits behind the emergency.
    assert "traumatology" in {row["code"] for row in deficit["deferred"] if row["kind"] == "referral"}


def test_n11_root_compression_with_weakness_is_neurosurgery_without_neurology():
    weak = run({"img_root_compression": True}, findings={**LUMBAR, "ex_leg_weakness": True})
    strong = run({"img_root_compression": True})

    assert referrals(weak)["neurosurgery"] == "urgent"
    assert referrals(strong)["neurology"] == "routine" and "neurosurgery" not in referrals(strong)


def test_n12_a_positive_hcg_makes_the_patient_pregnant_for_every_rule():
    findings = {**LUMBAR, "hx_minor_trauma": True, "ex_paravertebral_tenderness": True}
    result = run({"res_hcg": True}, findings=findings, sex="female", age=27, pregnant=False)

    assert "xray_lumbar_spine" not in items(result) and "mri_lumbar_spine" in items(result)
    assert "xray_lumbar_spine" in {row["code"] for row in result["withheld"]}
    assert "lab_pregnancy_test" not in items(result)
    assert referrals(result)["gynecology"] == "routine"


def test_n12_a_negative_hcg_satisfies_the_pregnancy_test_before_ionising_imaging():
    findings = {**LUMBAR, "hx_minor_trauma": True, "ex_paravertebral_tenderness": True}
    before = run({}, findings=findings, sex="female", age=27, pregnant=False)
    after = run({"res_hcg": False}, findings=findings, sex="female", age=27, pregnant=False)

    assert "lab_pregnancy_test" in items(before) and "xray_lumbar_spine" in items(before)
    assert "lab_pregnancy_test" not in items(after) and "xray_lumbar_spine" in items(after)


def test_n13_stenosis_is_a_routine_vascular_referral():
    assert referrals(run({"dop_significant_stenosis": True}))["vascular_surgery"] == "routine"


def test_n14_lipase_needs_abdominal_pain_or_tenderness_for_an_emergency():
    alone = run({"res_lipase_above_3x_uln": True})
    with_pain = run({"res_lipase_above_3x_uln": True}, findings={**LUMBAR, "ex_abdominal_tenderness": True})

    assert "N14" not in alone["fired_rules"]
    assert with_pain["disposition"] == "emergency" and referrals(with_pain)["gastroenterology"] == "emergency"


def test_every_results_rule_names_its_icd10_code_and_sources_in_both_languages():
    for language in ("en", "ru"):
        rules = [rule for rule in get_knowledge_base(language).rules if rule.id.startswith("N")]
        assert len({rule.id.split("-")[0] for rule in rules}) == 14
        assert all(rule.icd10 and rule.sources and rule.rationale for rule in rules)


# -- properties -------------------------------------------------------------------------------------

ABNORMAL = {
    "res_hemoglobin": 80,
    "res_wbc": 20,
    "res_esr": 90,
    "res_crp": 80,
    "res_egfr": 20,
    "res_nech_leukocytes": 9000,
    "res_nech_erythrocytes": 9000,
    "res_nech_casts": 100,
    "res_ua_nitrite": True,
    "res_troponin_above_url": True,
    "res_lipase_above_3x_uln": True,
    "res_aorta_diameter_cm": 6.0,
    "img_cauda_or_cord_compression": True,
    "img_root_compression": True,
    "img_vertebral_fracture": True,
    "img_suspected_malignancy": True,
    "img_suspected_infection": True,
    "img_urolithiasis_or_hydronephrosis": True,
    "dop_significant_stenosis": True,
    "ecg_acute_ischaemia": True,
}
FINDINGS = sorted(KB.vocabulary.findings)
PROPERTY = hypothesis_settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(
    present=st.sets(st.sampled_from(FINDINGS), max_size=6),
    sex=st.sampled_from(["female", "male"]),
    age=st.integers(min_value=18, max_value=90),
    added=st.sets(st.sampled_from(sorted(ABNORMAL)), min_size=1, max_size=4),
)
def test_adding_an_abnormal_result_never_lowers_the_disposition(present, sex, age, added):
    meta = KB.vocabulary.findings
    findings = {code: True for code in present if meta[code].get("sex") in (None, sex)} | LUMBAR
    before = run({}, findings=findings, sex=sex, age=age)
    after = run({code: ABNORMAL[code] for code in added}, findings=findings, sex=sex, age=age)

    assert DISPOSITION_RANK[after["disposition"]] >= DISPOSITION_RANK[before["disposition"]]


@PROPERTY
@given(present=st.sets(st.sampled_from(FINDINGS), max_size=8), age=st.integers(min_value=14, max_value=48))
def test_a_positive_hcg_never_leaves_an_ionising_item_that_has_an_alternative(present, age):
    findings = {code: True for code in present if KB.vocabulary.findings[code].get("sex") != "male"} | LUMBAR
    result = run({"res_hcg": True}, findings=findings, sex="female", age=age, pregnant=False)
    replaceable = {"xray_lumbar_spine", "xray_thoracic_spine", "ct_spine", "ct_abdomen"}

    issued = set(items(result)) | {row["code"] for row in result["deferred"] if row["kind"] == "item"}
    assert not issued & replaceable


# -- the endpoint -----------------------------------------------------------------------------------


def test_the_endpoint_takes_results_beside_findings_and_echoes_them_interpreted(gp_api):
    response = gp_api.post(
        EVALUATE,
        body(
            sex="female",
            age=38,
            findings={**LUMBAR, "ex_cva_tenderness": True},
            results={"res_nech_leukocytes": 6500, "res_ua_nitrite": True},
        ),
        format="json",
    )

    assert response.status_code == 200, response.json()
    assert {row["code"]: row["flag"] for row in response.json()["results"]} == {
        "res_nech_leukocytes": "high",
        "res_ua_nitrite": "positive",
    }
    assert response.json()["disposition"] == "urgent"


@pytest.mark.parametrize(
    "results, code, fragment",
    [
        ({"res_hemoglobn": 120}, "res_hemoglobn", "Unknown result code"),
        ({"res_ua_nitrite": 1}, "res_ua_nitrite", "true or false"),
        ({"res_hemoglobin": True}, "res_hemoglobin", "must be a number"),
        ({"res_hemoglobin": "130"}, "res_hemoglobin", "must be a number"),
        ({"res_hemoglobin": 13.2}, "res_hemoglobin", "check the unit"),
        ({"res_aorta_diameter_cm": 61}, "res_aorta_diameter_cm", "check the unit"),
        ({"res_egfr": -5}, "res_egfr", "check the unit"),
    ],
)
def test_a_bad_result_is_refused_naming_its_code(gp_api, results, code, fragment):
    response = gp_api.post(EVALUATE, body(results=results), format="json")

    assert response.status_code == 400
    assert fragment in " ".join(response.json()["results"][code])


def test_nan_and_a_non_object_are_refused(gp_api):
    nan = gp_api.generic(
        "POST",
        EVALUATE,
        '{"sex": "male", "age": 40, "duration_days": 1, "findings": {"loc_lumbar": true}, "results": {"res_crp": NaN}}',
        content_type="application/json",
    )
    listed = gp_api.post(EVALUATE, body(results=[1, 2]), format="json")

    assert nan.status_code == 400
    assert listed.status_code == 400 and "results" in listed.json()


def test_a_pregnancy_test_is_refused_for_a_man(gp_api):
    response = gp_api.post(EVALUATE, body(sex="male", results={"res_hcg": True}), format="json")

    assert response.status_code == 400 and "res_hcg" in response.json()["results"]


def test_the_vocabulary_lists_each_result_with_its_unit_and_plausible_range(gp_api):
    codes = {row["code"]: row for row in gp_api.get("/api/v1/vocabulary/").json()["codes"]}

    assert codes["res_hemoglobin"] | {} == {
        "code": "res_hemoglobin",
        "name": "Haemoglobin",
        "group": "result",
        "type": "numeric",
        "unit": "g/L",
        "plausible": [20, 250],
    }
    assert codes["res_hcg"]["type"] == "boolean" and "unit" not in codes["res_hcg"]
