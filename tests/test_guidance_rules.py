"""Every rule of the clinical guidance (GUIDANCE.md), checked against the engine.

Each rule has at least one case where it fires (the items and referrals it issues,
with their urgency and the findings that triggered them) and one where a key
condition is missing and it does not. The cases are built with tests.cases.case:
every red flag is answered absent unless a test says otherwise.
"""

import pytest

from tests.cases import RED_FLAGS, case, items, referrals
from workups.engine import evaluate

LOCATIONS = ["loc_lumbar", "loc_interscapular", "loc_left_scapular", "loc_right_scapular", "loc_whole_spine"]
THORACIC_LOCATIONS = ["loc_interscapular", "loc_left_scapular", "loc_right_scapular", "loc_whole_spine"]
REGION_XRAY = {
    "loc_lumbar": {"xray_lumbar_spine"},
    "loc_interscapular": {"xray_thoracic_spine"},
    "loc_left_scapular": {"xray_thoracic_spine"},
    "loc_right_scapular": {"xray_thoracic_spine"},
    "loc_whole_spine": {"xray_thoracic_spine", "xray_lumbar_spine"},
}
REGION_MRI = {location: {code.replace("xray_", "mri_") for code in codes} for location, codes in REGION_XRAY.items()}
SPINE_IMAGING = {
    "xray_thoracic_spine",
    "xray_lumbar_spine",
    "mri_thoracic_spine",
    "mri_lumbar_spine",
    "ct_spine",
    "us_spine",
}


# -- helpers ----------------------------------------------------------------------------------------


def run(kb, *codes, sex="male", age=40, duration_days=7, absent=(), **extra):
    """Evaluate a case whose `codes` are present and `absent` are answered absent."""
    findings = {code: True for code in codes}
    findings.update({code: False for code in absent})
    return evaluate(kb, case(sex=sex, age=age, duration_days=duration_days, findings=findings, **extra))


def item_row(result, code):
    rows = [row for row in result["items"] if row["code"] == code]
    assert len(rows) == 1, f"{code} issued {len(rows)} times: {items(result)}"
    return rows[0]


def referral_row(result, specialty):
    rows = [row for row in result["referrals"] if row["specialty"] == specialty]
    assert len(rows) == 1, f"{specialty} referred {len(rows)} times: {referrals(result)}"
    return rows[0]


def assert_item(result, code, urgency, *triggers):
    row = item_row(result, code)
    assert row["urgency"] == urgency, (code, row["urgency"], urgency)
    assert set(triggers) <= set(row["triggered_by"]), (code, row["triggered_by"], triggers)
    assert row["rationale"] and row["sources"]
    return row


def assert_referral(result, specialty, urgency, *triggers):
    row = referral_row(result, specialty)
    assert row["urgency"] == urgency, (specialty, row["urgency"], urgency)
    assert set(triggers) <= set(row["triggered_by"]), (specialty, row["triggered_by"], triggers)
    assert row["reason"] and row["sources"]
    return row


def fired(result, rule_id):
    return rule_id in result["fired_rules"]


def deferred_codes(result, kind):
    return {entry["code"] for entry in result["deferred"] if entry["kind"] == kind}


def not_indicated_codes(result):
    return {entry["code"] for entry in result["not_indicated"]}


def withheld(result, code):
    rows = [row for row in result["withheld"] if row["code"] == code]
    assert len(rows) == 1, f"{code} withheld {len(rows)} times: {result['withheld']}"
    return rows[0]


def warning_codes(result):
    return [warning["code"] for warning in result["warnings"]]


# -- section 0: how the rules combine --------------------------------------------------------------


@pytest.mark.parametrize(
    "codes, disposition",
    [
        (("loc_lumbar", "pattern_positional"), "observe"),
        (("loc_lumbar", "sx_tingling"), "routine"),
        (("loc_lumbar", "sx_tingling", "rf_cancer_history"), "urgent"),
        (("loc_lumbar", "sx_tingling", "rf_cancer_history", "rf_saddle_anesthesia"), "emergency"),
        (("loc_interscapular", "sx_tingling", "rf_sudden_severe_pain"), "emergency"),
        (("loc_lumbar", "ex_vesicular_rash", "hx_scoliosis_kyphosis"), "urgent"),
    ],
)
def test_disposition_is_the_highest_tier_that_fires(kb, codes, disposition):
    assert run(kb, *codes)["disposition"] == disposition


def test_emergency_issues_only_emergency_rules_and_defers_the_rest(kb):
    # Saddle anaesthesia with frequent urination: hospital MRI, not a urology letter.
    result = run(
        kb,
        "loc_lumbar",
        "sx_leg_pain",
        "sx_urinary_frequency",
        "rf_saddle_anesthesia",
        "rf_bladder_dysfunction",
        sex="male",
        age=52,
        duration_days=3,
    )
    assert result["disposition"] == "emergency"
    assert items(result) == {"mri_lumbar_spine": "emergency"}
    assert referrals(result) == {"neurosurgery": "emergency"}
    assert {"urology", "neurology"} <= deferred_codes(result, "referral")
    assert {"lab_urinalysis", "us_prostate", "us_kidneys", "lab_cbc", "lab_biochemistry"} <= deferred_codes(
        result, "item"
    )
    for entry in result["deferred"]:
        assert entry["reason"]
        assert entry["sources"]


def test_an_item_both_issued_and_planned_is_not_also_deferred(kb):
    # E1 orders the lumbar MRI as an emergency; U1 would order the same MRI urgently.
    result = run(kb, "loc_lumbar", "rf_saddle_anesthesia", "rf_cancer_history")
    assert result["disposition"] == "emergency"
    assert items(result)["mri_lumbar_spine"] == "emergency"
    assert "mri_lumbar_spine" not in deferred_codes(result, "item")
    assert "oncology" in deferred_codes(result, "referral")
    assert {"lab_cbc", "lab_crp_esr", "lab_biochemistry"} <= deferred_codes(result, "item")


def test_no_deferral_below_emergency(kb):
    result = run(kb, "loc_lumbar", "sx_tingling", "rf_cancer_history")
    assert result["disposition"] == "urgent"
    assert result["deferred"] == []
    assert referrals(result) == {"oncology": "urgent", "neurology": "routine"}


def test_duplicate_item_merges_with_highest_urgency_and_union_of_triggers_and_sources(kb):
    # U1 (urgent, cancer history) and R9 (routine, persistent sciatica) both order the lumbar MRI.
    result = run(kb, "loc_lumbar", "rf_cancer_history", "sx_leg_pain", duration_days=60)
    assert [row["code"] for row in result["items"]].count("mri_lumbar_spine") == 1
    row = assert_item(result, "mri_lumbar_spine", "urgent", "rf_cancer_history", "sx_leg_pain", "loc_lumbar")
    assert set(kb.rule("U1").sources) <= set(row["sources"])
    assert set(kb.rule("R9").sources) <= set(row["sources"])
    assert {"U1", "R9"} <= set(row["rules"])


def test_duplicate_lab_from_urgent_rule_and_baseline_merges_to_urgent(kb):
    result = run(kb, "loc_lumbar", "rf_cancer_history")
    row = assert_item(result, "lab_cbc", "urgent", "rf_cancer_history")
    assert set(kb.rule("U1").sources) <= set(row["sources"])
    assert set(kb.rule("R1").sources) <= set(row["sources"])


def test_duplicate_referral_merges_with_highest_urgency_and_union_of_triggers(kb):
    # Neurology from R2 (routine, tingling) and from U10 (urgent, reduced reflexes).
    result = run(kb, "loc_lumbar", "sx_tingling", "ex_reflexes_reduced")
    assert [row["specialty"] for row in result["referrals"]].count("neurology") == 1
    row = assert_referral(result, "neurology", "urgent", "sx_tingling", "ex_reflexes_reduced")
    assert set(kb.rule("R2").sources) <= set(row["sources"])
    assert set(kb.rule("U10").sources) <= set(row["sources"])


def test_unscreened_red_flags_warn_with_the_list_and_never_observe(kb):
    result = run(kb, "loc_lumbar", "pattern_positional", screen=None)
    assert result["disposition"] == "routine"
    (warning,) = [w for w in result["warnings"] if w["code"] == "red_flags_not_screened"]
    assert warning["findings"] == RED_FLAGS
    assert items(result) == {"lab_cbc": "routine", "lab_biochemistry": "routine"}


def test_a_single_unanswered_red_flag_is_listed(kb):
    findings = {"loc_lumbar": True, "pattern_positional": True}
    findings.update({code: False for code in RED_FLAGS if code != "rf_night_pain"})
    result = evaluate(kb, case(findings=findings, screen=None))
    assert result["disposition"] != "observe"
    (warning,) = [w for w in result["warnings"] if w["code"] == "red_flags_not_screened"]
    assert warning["findings"] == ["rf_night_pain"]


def test_a_complete_screen_has_no_red_flag_warning(kb):
    result = run(kb, "loc_lumbar", "pattern_positional")
    assert "red_flags_not_screened" not in warning_codes(result)


def test_unscreened_red_flags_do_not_lower_a_higher_disposition(kb):
    result = run(kb, "loc_lumbar", "ex_vesicular_rash", screen=None)
    assert result["disposition"] == "urgent"
    assert "red_flags_not_screened" in warning_codes(result)


@pytest.mark.parametrize("location", LOCATIONS)
def test_stewardship_lists_region_xray_and_mri_when_no_spine_imaging(kb, location):
    result = run(kb, location, "sx_tingling")
    assert not SPINE_IMAGING & set(items(result))
    expected = REGION_XRAY[location] | REGION_MRI[location]
    assert not_indicated_codes(result) == expected
    for entry in result["not_indicated"]:
        assert entry["reason"]
        assert any("NICE NG59 1.1.4" in source for source in entry["sources"])
        assert any("ACR" in source for source in entry["sources"])
        assert any("Choosing Wisely" in source for source in entry["sources"])


def test_stewardship_also_applies_to_observe(kb):
    result = run(kb, "loc_lumbar", "pattern_positional")
    assert result["disposition"] == "observe"
    assert not_indicated_codes(result) == {"xray_lumbar_spine", "mri_lumbar_spine"}


def test_stewardship_is_silent_when_spine_imaging_is_recommended(kb):
    result = run(kb, "loc_lumbar", "rf_cancer_history")
    assert "mri_lumbar_spine" in items(result)
    assert not ({"xray_lumbar_spine", "mri_lumbar_spine"} & not_indicated_codes(result))


# -- section 1: emergency rules --------------------------------------------------------------------


@pytest.mark.parametrize(
    "flag", ["rf_saddle_anesthesia", "rf_bladder_dysfunction", "rf_bowel_incontinence", "rf_progressive_leg_weakness"]
)
def test_cauda_equina_flag_is_an_emergency_lumbar_mri_and_neurosurgery(kb, flag):
    result = run(kb, "loc_lumbar", flag)
    assert result["disposition"] == "emergency"
    assert fired(result, "E1")
    assert_item(result, "mri_lumbar_spine", "emergency", flag)
    assert_referral(result, "neurosurgery", "emergency", flag)


def test_saddle_anaesthesia_is_an_emergency_mri_and_neurosurgery(kb):
    result = run(kb, "loc_lumbar", "rf_saddle_anesthesia")
    assert items(result) == {"mri_lumbar_spine": "emergency"}
    assert referrals(result) == {"neurosurgery": "emergency"}


def test_cauda_equina_mri_is_lumbar_even_for_thoracic_numbness(kb):
    result = run(kb, "loc_interscapular", "rf_bowel_incontinence")
    assert_item(result, "mri_lumbar_spine", "emergency", "rf_bowel_incontinence")


def test_no_cauda_equina_without_its_red_flags(kb):
    result = run(kb, "loc_lumbar", "sx_leg_pain", "sx_urinary_frequency", "ex_leg_weakness")
    assert not fired(result, "E1")
    assert "neurosurgery" not in referrals(result)
    assert result["disposition"] != "emergency"


@pytest.mark.parametrize("location", THORACIC_LOCATIONS)
@pytest.mark.parametrize("companion", ["sx_dyspnea", "sx_pain_radiating_heart"])
def test_scapular_numbness_with_chest_heaviness_is_an_emergency_ecg_troponin_and_cardiology(kb, location, companion):
    result = run(kb, location, "sx_chest_heaviness", companion, age=61)
    assert result["disposition"] == "emergency"
    assert fired(result, "E2")
    for code in ("ecg", "lab_troponin"):
        assert_item(result, code, "emergency", location, "sx_chest_heaviness", companion)
    assert_referral(result, "cardiology", "emergency", "sx_chest_heaviness", companion)


@pytest.mark.parametrize(
    "codes",
    [
        ("loc_lumbar", "sx_chest_heaviness", "sx_dyspnea", "sx_pain_radiating_heart"),  # not thoracic
        ("loc_interscapular", "sx_chest_heaviness"),  # heaviness alone
        ("loc_interscapular", "sx_dyspnea", "sx_pain_radiating_heart"),  # no heaviness
    ],
)
def test_no_acute_coronary_syndrome_without_all_its_parts(kb, codes):
    result = run(kb, *codes, age=61)
    assert not fired(result, "E2")
    assert "lab_troponin" not in items(result)
    assert result["disposition"] != "emergency"


@pytest.mark.parametrize("location", LOCATIONS)
def test_sudden_tearing_pain_is_an_emergency_ecg_and_vascular_surgery(kb, location):
    result = run(kb, location, "rf_sudden_severe_pain")
    assert result["disposition"] == "emergency"
    assert fired(result, "E3")
    assert_item(result, "ecg", "emergency", "rf_sudden_severe_pain")
    assert_referral(result, "vascular_surgery", "emergency", "rf_sudden_severe_pain")


def test_no_aortic_emergency_without_sudden_severe_pain(kb):
    result = run(kb, "loc_interscapular", "sx_acute_paroxysmal_pain")
    assert not fired(result, "E3")
    assert "vascular_surgery" not in referrals(result)
    assert result["disposition"] == "routine"


@pytest.mark.parametrize(
    "codes, pregnant, expected_triggers",
    [
        (
            ("sx_missed_period", "sx_abnormal_vaginal_bleeding"),
            False,
            {"sx_missed_period", "sx_abnormal_vaginal_bleeding"},
        ),
        (("sx_missed_period", "sx_dizziness_on_standing"), None, {"sx_missed_period", "sx_dizziness_on_standing"}),
        (("sx_abnormal_vaginal_bleeding",), True, {"pregnant", "sx_abnormal_vaginal_bleeding"}),
        (("sx_dizziness_on_standing",), True, {"pregnant", "sx_dizziness_on_standing"}),
    ],
)
def test_pelvic_pain_with_pregnancy_and_bleeding_or_faintness_is_an_emergency_ectopic(
    kb, codes, pregnant, expected_triggers
):
    result = run(kb, "loc_lumbar", "sx_pelvic_pain", *codes, sex="female", age=28, pregnant=pregnant)
    assert result["disposition"] == "emergency"
    assert fired(result, "E4")
    triggers = {"sx_pelvic_pain", *expected_triggers}
    assert_item(result, "lab_pregnancy_test", "emergency", *triggers)
    assert_item(result, "us_pelvis", "emergency", *triggers)
    assert_referral(result, "gynecology", "emergency", *triggers)


@pytest.mark.parametrize(
    "sex, codes, pregnant",
    [
        ("male", ("sx_pelvic_pain", "sx_dizziness_on_standing"), None),
        ("female", ("sx_missed_period", "sx_abnormal_vaginal_bleeding"), False),  # no pelvic pain
        ("female", ("sx_pelvic_pain", "sx_abnormal_vaginal_bleeding"), False),  # no missed period, not pregnant
        ("female", ("sx_pelvic_pain", "sx_missed_period"), False),  # neither bleeding nor faintness
        ("female", ("sx_pelvic_pain",), True),  # pregnant, neither bleeding nor faintness
    ],
)
def test_no_ectopic_emergency_without_all_its_parts(kb, sex, codes, pregnant):
    result = run(kb, "loc_lumbar", *codes, sex=sex, age=28, pregnant=pregnant)
    assert not fired(result, "E4")
    assert result["disposition"] != "emergency"


@pytest.mark.parametrize("deficit", ["ex_leg_weakness", "ex_sensory_deficit"])
def test_major_trauma_with_a_deficit_is_an_emergency_ct_and_traumatology(kb, deficit):
    result = run(kb, "loc_lumbar", "rf_major_trauma", deficit)
    assert result["disposition"] == "emergency"
    assert fired(result, "E5")
    assert_item(result, "ct_spine", "emergency", "rf_major_trauma", deficit)
    assert_referral(result, "traumatology", "emergency", "rf_major_trauma", deficit)
    assert not fired(result, "U8")
    assert not fired(result, "U10")


def test_major_trauma_with_only_reduced_reflexes_is_not_the_trauma_emergency(kb):
    result = run(kb, "loc_lumbar", "rf_major_trauma", "ex_reflexes_reduced")
    assert not fired(result, "E5")
    assert "ct_spine" not in items(result)
    assert result["disposition"] == "urgent"
    assert fired(result, "U8") and fired(result, "U10")


# -- section 2: urgent rules -----------------------------------------------------------------------


@pytest.mark.parametrize("location", LOCATIONS)
def test_cancer_history_is_an_urgent_region_mri_labs_and_oncology(kb, location):
    result = run(kb, location, "rf_cancer_history")
    assert result["disposition"] == "urgent"
    assert fired(result, "U1")
    for code in REGION_MRI[location] | {"lab_cbc", "lab_crp_esr", "lab_biochemistry"}:
        assert_item(result, code, "urgent", "rf_cancer_history")
    assert not (set(REGION_MRI["loc_whole_spine"]) - REGION_MRI[location]) & set(items(result))
    assert_referral(result, "oncology", "urgent", "rf_cancer_history")


def test_no_cancer_workup_without_a_cancer_history(kb):
    result = run(kb, "loc_lumbar", "sx_tingling")
    assert not fired(result, "U1")
    assert "oncology" not in referrals(result)


@pytest.mark.parametrize("flag", ["rf_weight_loss", "rf_night_pain"])
@pytest.mark.parametrize("location", LOCATIONS)
def test_weight_loss_or_night_pain_is_urgent_labs_and_region_xray(kb, flag, location):
    result = run(kb, location, flag)
    assert result["disposition"] == "urgent"
    assert fired(result, "U2")
    for code in REGION_XRAY[location] | {"lab_cbc", "lab_crp_esr", "lab_biochemistry"}:
        assert_item(result, code, "urgent", flag)
    assert referrals(result) == {}


def test_weaker_cancer_flags_give_way_to_a_cancer_history(kb):
    result = run(kb, "loc_lumbar", "rf_night_pain", "rf_cancer_history")
    assert not fired(result, "U2")
    assert fired(result, "U1")
    assert "xray_lumbar_spine" not in items(result)
    assert "mri_lumbar_spine" in items(result)


def test_abdominal_mass_is_urgent_abdominal_imaging_and_oncology(kb):
    result = run(kb, "loc_lumbar", "ex_abdominal_mass")
    assert result["disposition"] == "urgent"
    assert fired(result, "U3")
    for code in ("us_abdomen", "ct_abdomen", "lab_cbc", "lab_biochemistry"):
        assert_item(result, code, "urgent", "ex_abdominal_mass")
    assert_referral(result, "oncology", "urgent", "ex_abdominal_mass")


def test_no_abdominal_imaging_without_a_mass(kb):
    result = run(kb, "loc_lumbar", "sx_tingling", absent=["ex_abdominal_mass"])
    assert not fired(result, "U3")
    assert "ct_abdomen" not in items(result)


@pytest.mark.parametrize("location", ["loc_lumbar", "loc_whole_spine"])
@pytest.mark.parametrize("urinary", ["ex_cva_tenderness", "sx_dysuria", "sx_urinary_frequency"])
def test_fever_with_lumbar_numbness_and_urinary_signs_is_an_urgent_kidney_infection(kb, location, urinary):
    result = run(kb, location, "rf_fever", urinary, sex="female", age=38, pregnant=False)
    assert result["disposition"] == "urgent"
    assert fired(result, "U4")
    for code in ("lab_urinalysis", "lab_nechiporenko", "lab_cbc", "lab_crp_esr", "us_kidneys"):
        assert_item(result, code, "urgent", "rf_fever", urinary)
    assert_referral(result, "nephrology", "urgent", "rf_fever", urinary)
    assert not fired(result, "U6")


def test_kidney_infection_needs_lumbar_numbness(kb):
    result = run(kb, "loc_interscapular", "rf_fever", "sx_dysuria")
    assert not fired(result, "U4")
    assert "nephrology" not in referrals(result)
    assert fired(result, "U6")


def test_urinary_signs_without_fever_are_not_a_kidney_infection(kb):
    result = run(kb, "loc_lumbar", "ex_cva_tenderness", sex="female", age=38, pregnant=False)
    assert not fired(result, "U4")
    assert result["disposition"] == "routine"
    assert referrals(result)["nephrology"] == "routine"


@pytest.mark.parametrize("temperature, fever", [(37.9, False), (38.0, True), (38.6, True)])
def test_measured_temperature_of_38_makes_fever_present(kb, temperature, fever):
    result = run(kb, "loc_lumbar", "ex_cva_tenderness", temperature_c=temperature)
    assert fired(result, "U4") is fever
    assert ("rf_fever" in result["red_flags"]) is fever
    if fever:
        assert_item(result, "us_kidneys", "urgent", "rf_fever", "ex_cva_tenderness")
    else:
        assert result["disposition"] == "routine"


@pytest.mark.parametrize("location", THORACIC_LOCATIONS)
@pytest.mark.parametrize("chest", ["sx_cough", "ex_lung_crackles", "sx_dyspnea"])
def test_fever_with_thoracic_numbness_and_chest_signs_is_an_urgent_chest_infection(kb, location, chest):
    result = run(kb, location, "rf_fever", chest)
    assert result["disposition"] == "urgent"
    assert fired(result, "U5")
    for code in ("xray_chest", "lab_cbc", "lab_crp_esr"):
        assert_item(result, code, "urgent", "rf_fever", chest)
    assert_referral(result, "pulmonology", "urgent", "rf_fever", chest)
    assert not fired(result, "U6")
    assert "infectious_disease" not in referrals(result)


def test_chest_infection_needs_thoracic_numbness(kb):
    result = run(kb, "loc_lumbar", "rf_fever", "sx_cough")
    assert not fired(result, "U5")
    assert "xray_chest" not in items(result)
    assert fired(result, "U6")


def test_chest_infection_needs_fever(kb):
    result = run(kb, "loc_interscapular", "ex_lung_crackles", temperature_c=37.9)
    assert not fired(result, "U5")
    assert "pulmonology" not in referrals(result)


@pytest.mark.parametrize("flag", ["rf_fever", "rf_immunosuppression"])
@pytest.mark.parametrize("location", LOCATIONS)
def test_unexplained_fever_or_immunosuppression_is_an_urgent_spinal_infection_workup(kb, flag, location):
    result = run(kb, location, flag)
    assert result["disposition"] == "urgent"
    assert fired(result, "U6")
    for code in REGION_MRI[location] | {"lab_cbc", "lab_crp_esr"}:
        assert_item(result, code, "urgent", flag)
    assert_referral(result, "infectious_disease", "urgent", flag)


@pytest.mark.parametrize(
    "codes",
    [("loc_lumbar", "rf_fever", "sx_dysuria"), ("loc_interscapular", "rf_fever", "sx_cough")],
)
def test_fever_explained_by_kidney_or_chest_infection_is_not_a_spinal_infection(kb, codes):
    result = run(kb, *codes)
    assert not fired(result, "U6")
    assert "infectious_disease" not in referrals(result)
    assert not SPINE_IMAGING & set(items(result))


def test_spinal_infection_workup_needs_fever_or_immunosuppression(kb):
    result = run(kb, "loc_lumbar", "sx_tingling", temperature_c=37.9)
    assert not fired(result, "U6")
    assert "infectious_disease" not in referrals(result)


@pytest.mark.parametrize("location", LOCATIONS)
def test_shingles_is_an_urgent_infectious_disease_referral_without_spine_imaging(kb, location):
    result = run(kb, location, "ex_vesicular_rash")
    assert result["disposition"] == "urgent"
    assert fired(result, "U7")
    assert_referral(result, "infectious_disease", "urgent", "ex_vesicular_rash")
    assert not SPINE_IMAGING & set(items(result))
    expected = REGION_XRAY[location] | REGION_MRI[location]
    assert expected <= not_indicated_codes(result)
    for entry in result["not_indicated"]:
        if entry["code"] in expected:
            assert "hingles" in entry["reason"]
            assert any("shingles" in source for source in entry["sources"])


def test_no_shingles_referral_without_a_rash(kb):
    result = run(kb, "loc_lumbar", "sx_tingling", absent=["ex_vesicular_rash"])
    assert not fired(result, "U7")
    assert "infectious_disease" not in referrals(result)


@pytest.mark.parametrize("location", LOCATIONS)
def test_major_trauma_without_a_deficit_is_an_urgent_region_xray_and_traumatology(kb, location):
    result = run(kb, location, "rf_major_trauma")
    assert result["disposition"] == "urgent"
    assert fired(result, "U8")
    for code in REGION_XRAY[location]:
        assert_item(result, code, "urgent", "rf_major_trauma")
    assert_referral(result, "traumatology", "urgent", "rf_major_trauma")
    assert "ct_spine" not in items(result)


def test_no_trauma_xray_without_major_trauma(kb):
    result = run(kb, "loc_lumbar", "sx_tingling")
    assert not fired(result, "U8")
    assert "traumatology" not in referrals(result)


@pytest.mark.parametrize(
    "age, codes",
    [(65, ("hx_minor_trauma",)), (80, ("hx_minor_trauma",)), (40, ("hx_minor_trauma", "hx_osteoporosis"))],
)
def test_minor_trauma_in_the_old_or_osteoporotic_is_an_urgent_fracture_workup(kb, age, codes):
    result = run(kb, "loc_interscapular", *codes, age=age)
    assert result["disposition"] == "urgent"
    assert fired(result, "U9")
    assert not fired(result, "R19")
    assert_item(result, "xray_thoracic_spine", "urgent", *codes)
    assert_referral(result, "traumatology", "urgent", *codes)


def test_minor_trauma_at_64_without_osteoporosis_is_not_a_fragility_fracture(kb):
    result = run(kb, "loc_interscapular", "hx_minor_trauma", age=64, absent=["hx_osteoporosis"])
    assert not fired(result, "U9")
    assert fired(result, "R19")
    assert result["disposition"] == "routine"
    assert referrals(result)["traumatology"] == "routine"
    assert "xray_thoracic_spine" not in items(result)


def test_osteoporosis_without_trauma_is_not_a_fragility_fracture(kb):
    result = run(kb, "loc_lumbar", "hx_osteoporosis", age=70)
    assert not fired(result, "U9")
    assert "traumatology" not in referrals(result)


@pytest.mark.parametrize("deficit", ["ex_leg_weakness", "ex_reflexes_reduced", "ex_sensory_deficit"])
@pytest.mark.parametrize("location", LOCATIONS)
def test_neurological_deficit_is_an_urgent_region_mri_and_neurology(kb, deficit, location):
    result = run(kb, location, deficit)
    assert result["disposition"] == "urgent"
    assert fired(result, "U10")
    for code in REGION_MRI[location]:
        assert_item(result, code, "urgent", deficit)
    assert_referral(result, "neurology", "urgent", deficit)


@pytest.mark.parametrize(
    "codes, instead",
    [
        (("loc_lumbar", "ex_leg_weakness", "rf_progressive_leg_weakness"), "E1"),
        (("loc_lumbar", "ex_sensory_deficit", "rf_major_trauma"), "E5"),
    ],
)
def test_deficit_with_cauda_equina_or_major_trauma_is_not_the_urgent_deficit_rule(kb, codes, instead):
    result = run(kb, *codes)
    assert fired(result, instead)
    assert not fired(result, "U10")
    assert "neurology" not in referrals(result)


def test_no_deficit_rule_without_a_deficit(kb):
    result = run(
        kb, "loc_lumbar", "sx_tingling", absent=["ex_leg_weakness", "ex_reflexes_reduced", "ex_sensory_deficit"]
    )
    assert not fired(result, "U10")
    assert referrals(result)["neurology"] == "routine"


@pytest.mark.parametrize("location", THORACIC_LOCATIONS)
@pytest.mark.parametrize("symptom", ["sx_chest_heaviness", "sx_pain_radiating_heart", "sx_dyspnea"])
def test_thoracic_numbness_with_a_cardiac_symptom_is_an_urgent_ecg_and_cardiology(kb, location, symptom):
    result = run(kb, location, symptom)
    assert result["disposition"] == "urgent"
    assert fired(result, "U11")
    for code in ("ecg", "lab_cbc", "lab_biochemistry"):
        assert_item(result, code, "urgent", symptom)
    assert_referral(result, "cardiology", "urgent", symptom)
    assert "lab_troponin" not in items(result)


@pytest.mark.parametrize(
    "codes, cardiology",
    [
        (("loc_lumbar", "sx_chest_heaviness"), None),  # not thoracic
        (("loc_interscapular", "sx_chest_heaviness", "sx_dyspnea"), "emergency"),  # E2 fired instead
        (("loc_interscapular", "sx_dyspnea", "rf_fever"), None),  # explained by the chest infection U5
    ],
)
def test_no_urgent_cardiac_rule_when_not_thoracic_e2_fired_or_explained_by_chest_infection(kb, codes, cardiology):
    result = run(kb, *codes)
    assert not fired(result, "U11")
    assert referrals(result).get("cardiology") == cardiology


@pytest.mark.parametrize("age", [50, 51, 70])
def test_abnormal_bleeding_at_50_or_over_is_an_urgent_pelvic_ultrasound_and_gynecology(kb, age):
    result = run(kb, "loc_interscapular", "sx_abnormal_vaginal_bleeding", sex="female", age=age, pregnant=False)
    assert result["disposition"] == "urgent"
    assert fired(result, "U12")
    assert_item(result, "us_pelvis", "urgent", "sx_abnormal_vaginal_bleeding")
    assert_referral(result, "gynecology", "urgent", "sx_abnormal_vaginal_bleeding")


def test_abnormal_bleeding_at_49_is_not_the_urgent_bleeding_rule(kb):
    result = run(kb, "loc_interscapular", "sx_abnormal_vaginal_bleeding", sex="female", age=49, pregnant=False)
    assert not fired(result, "U12")
    assert "gynecology" not in referrals(result)
    assert result["disposition"] == "observe"


def test_abnormal_bleeding_with_an_ectopic_picture_is_the_emergency_not_u12(kb):
    result = run(
        kb,
        "loc_lumbar",
        "sx_abnormal_vaginal_bleeding",
        "sx_pelvic_pain",
        "sx_missed_period",
        sex="female",
        age=50,
        pregnant=False,
    )
    assert fired(result, "E4")
    assert not fired(result, "U12")
    assert referrals(result) == {"gynecology": "emergency"}


# -- section 3: routine pathways -------------------------------------------------------------------


def test_baseline_blood_tests_come_with_any_workup_and_carry_its_triggers(kb):
    result = run(kb, "loc_whole_spine", "pattern_recurrent", "sx_tingling", age=45, duration_days=20)
    assert result["disposition"] == "routine"
    assert fired(result, "R1")
    for code in ("lab_cbc", "lab_biochemistry"):
        assert_item(result, code, "routine", "pattern_recurrent", "sx_tingling")


def test_no_baseline_blood_tests_when_observing(kb):
    result = run(kb, "loc_lumbar", "pattern_positional")
    assert result["disposition"] == "observe"
    assert not fired(result, "R1")
    assert "lab_cbc" not in items(result)


@pytest.mark.parametrize(
    "finding",
    ["pattern_recurrent", "sx_pain_with_movement", "sx_tingling", "sx_dizziness_on_standing", "sx_urinary_frequency"],
)
def test_reasons_to_see_a_neurologist_give_a_routine_neurology_referral(kb, finding):
    result = run(kb, "loc_interscapular", finding)
    assert fired(result, "R2")
    assert_referral(result, "neurology", "routine", finding)
    assert result["disposition"] == "routine"


def test_no_neurologist_without_one_of_the_five_reasons(kb):
    result = run(kb, "loc_interscapular", "sx_stiffness", "pattern_nocturnal")
    assert not fired(result, "R2")
    assert "neurology" not in referrals(result)


@pytest.mark.parametrize(
    "finding, nephrology",
    [
        ("sx_urinary_frequency", False),
        ("sx_dysuria", False),
        ("sx_visceral_numbness", False),
        ("ex_cva_tenderness", True),
        ("hx_kidney_disease", True),
    ],
)
def test_lumbar_numbness_with_a_kidney_sign_gives_urine_tests_and_kidney_ultrasound(kb, finding, nephrology):
    result = run(kb, "loc_lumbar", finding, sex="female", age=38, pregnant=False)
    assert fired(result, "R3")
    for code in ("lab_urinalysis", "lab_nechiporenko", "us_kidneys"):
        assert_item(result, code, "routine", finding)
    if nephrology:
        assert_referral(result, "nephrology", "routine", finding)
    else:
        assert "nephrology" not in referrals(result)


def test_kidney_pathway_needs_lumbar_numbness(kb):
    result = run(kb, "loc_interscapular", "sx_dysuria", "ex_cva_tenderness", sex="female", age=38, pregnant=False)
    assert not fired(result, "R3")
    assert "us_kidneys" not in items(result)
    assert "nephrology" not in referrals(result)


@pytest.mark.parametrize(
    "location, codes",
    [
        ("loc_interscapular", ("hx_prostate_disease",)),
        ("loc_lumbar", ("hx_prostate_disease",)),
        ("loc_lumbar", ("sx_urinary_frequency",)),
        ("loc_whole_spine", ("sx_urinary_frequency",)),
    ],
)
def test_prostate_disease_or_lumbar_frequency_in_a_man_gives_prostate_ultrasound_and_urology(kb, location, codes):
    result = run(kb, location, *codes, sex="male")
    assert fired(result, "R4")
    for code in ("lab_urinalysis", "us_prostate"):
        assert_item(result, code, "routine", *codes)
    assert_referral(result, "urology", "routine", *codes)


@pytest.mark.parametrize(
    "sex, location",
    [("female", "loc_lumbar"), ("male", "loc_interscapular")],
)
def test_no_prostate_pathway_for_women_or_for_frequency_without_lumbar_numbness(kb, sex, location):
    result = run(kb, location, "sx_urinary_frequency", sex=sex, age=40, pregnant=False if sex == "female" else None)
    assert not fired(result, "R4")
    assert "urology" not in referrals(result)
    assert "us_prostate" not in items(result)


@pytest.mark.parametrize(
    "finding", ["hx_gyn_disease", "sx_pelvic_pain", "sx_menstrual_related", "sx_abnormal_vaginal_bleeding"]
)
def test_lumbar_numbness_with_a_gynaecological_sign_gives_pelvic_ultrasound_and_gynecology(kb, finding):
    result = run(kb, "loc_lumbar", finding, sex="female", age=31, pregnant=False)
    assert fired(result, "R5")
    assert_item(result, "us_pelvis", "routine", finding)
    assert_referral(result, "gynecology", "routine", finding)


def test_pregnancy_with_lumbar_numbness_gives_a_gynecology_referral_without_ultrasound(kb):
    result = run(kb, "loc_lumbar", "pattern_positional", sex="female", age=29, pregnant=True)
    assert fired(result, "R5")
    assert_referral(result, "gynecology", "routine", "pregnant")
    assert "us_pelvis" not in items(result)
    assert result["disposition"] == "routine"


@pytest.mark.parametrize(
    "sex, location, pregnant",
    [("female", "loc_interscapular", False), ("female", "loc_interscapular", True), ("male", "loc_lumbar", None)],
)
def test_no_gynaecology_pathway_without_lumbar_numbness_in_a_woman(kb, sex, location, pregnant):
    codes = ("sx_pelvic_pain", "hx_gyn_disease") if sex == "female" else ("sx_pelvic_pain",)
    result = run(kb, location, *codes, sex=sex, age=31, pregnant=pregnant)
    assert not fired(result, "R5")
    assert "gynecology" not in referrals(result)


@pytest.mark.parametrize("finding", ["hx_pancreatic_disease", "sx_pain_radiating_abdomen", "ex_abdominal_tenderness"])
def test_pancreatic_or_abdominal_signs_give_abdominal_ultrasound_enzymes_and_gastroenterology(kb, finding):
    result = run(kb, "loc_interscapular", finding)
    assert fired(result, "R6")
    for code in ("us_abdomen", "lab_pancreatic_enzymes"):
        assert_item(result, code, "routine", finding)
    assert_referral(result, "gastroenterology", "routine", finding)


def test_no_abdominal_pathway_without_its_signs(kb):
    result = run(kb, "loc_lumbar", "sx_tingling")
    assert not fired(result, "R6")
    assert "gastroenterology" not in referrals(result)


@pytest.mark.parametrize("location", ["loc_lumbar", "loc_whole_spine"])
def test_rectal_symptoms_with_lumbar_numbness_give_proctology(kb, location):
    result = run(kb, location, "sx_rectal_symptoms")
    assert fired(result, "R7")
    assert_referral(result, "proctology", "routine", "sx_rectal_symptoms", location)


def test_rectal_symptoms_without_lumbar_numbness_are_not_proctology(kb):
    result = run(kb, "loc_interscapular", "sx_rectal_symptoms")
    assert not fired(result, "R7")
    assert "proctology" not in referrals(result)


@pytest.mark.parametrize("finding", ["ex_posture_deformity", "hx_scoliosis_kyphosis"])
@pytest.mark.parametrize("location", LOCATIONS)
def test_posture_deformity_gives_region_xray_and_orthopedics(kb, finding, location):
    result = run(kb, location, finding, age=17, duration_days=90)
    assert fired(result, "R8")
    for code in REGION_XRAY[location]:
        assert_item(result, code, "routine", finding)
    assert not (REGION_XRAY["loc_whole_spine"] - REGION_XRAY[location]) & set(items(result))
    assert_referral(result, "orthopedics", "routine", finding)


def test_no_posture_pathway_without_deformity(kb):
    result = run(kb, "loc_interscapular", "sx_stiffness", "sx_tingling")
    assert not fired(result, "R8")
    assert "orthopedics" not in referrals(result)


@pytest.mark.parametrize("radicular", ["sx_leg_pain", "ex_straight_leg_raise_positive"])
@pytest.mark.parametrize("duration", [42, 43, 60, 400])
def test_radicular_symptoms_for_six_weeks_give_lumbar_mri_and_neurology(kb, radicular, duration):
    result = run(kb, "loc_lumbar", radicular, duration_days=duration)
    assert fired(result, "R9")
    assert not fired(result, "R9-early")
    assert_item(result, "mri_lumbar_spine", "routine", radicular)
    assert_referral(result, "neurology", "routine", radicular)
    assert result["disposition"] == "routine"


def test_radicular_symptoms_for_41_days_give_no_mri(kb):
    result = run(kb, "loc_lumbar", "sx_leg_pain", "sx_pain_with_movement", duration_days=41)
    assert not fired(result, "R9")
    assert "mri_lumbar_spine" not in items(result)


def test_radicular_symptoms_with_only_thoracic_numbness_give_no_lumbar_mri(kb):
    result = run(kb, "loc_interscapular", "sx_leg_pain", "ex_straight_leg_raise_positive", duration_days=60)
    assert not fired(result, "R9")
    assert "mri_lumbar_spine" not in items(result)


@pytest.mark.parametrize("duration", [0, 10, 41])
def test_early_radicular_symptoms_without_a_deficit_are_no_imaging(kb, duration):
    result = run(
        kb,
        "loc_lumbar",
        "sx_leg_pain",
        "ex_straight_leg_raise_positive",
        "sx_pain_with_movement",
        age=35,
        duration_days=duration,
    )
    assert fired(result, "R9-early")
    assert result["disposition"] == "routine"
    assert referrals(result) == {"neurology": "routine"}
    assert not {"mri_lumbar_spine", "xray_lumbar_spine", "ct_spine"} & set(items(result))
    entries = {entry["code"]: entry for entry in result["not_indicated"]}
    for code in ("mri_lumbar_spine", "xray_lumbar_spine", "ct_spine"):
        assert code in entries
        assert "six weeks" in entries[code]["reason"]
        assert any("Choosing Wisely" in source for source in entries[code]["sources"])


@pytest.mark.parametrize("deficit", ["ex_leg_weakness", "ex_reflexes_reduced", "ex_sensory_deficit"])
def test_early_radicular_symptoms_with_a_deficit_are_imaged_urgently(kb, deficit):
    result = run(kb, "loc_lumbar", "sx_leg_pain", deficit, duration_days=10)
    assert not fired(result, "R9-early")
    assert_item(result, "mri_lumbar_spine", "urgent", deficit)
    assert "mri_lumbar_spine" not in not_indicated_codes(result)


@pytest.mark.parametrize("duration", [42, 120])
def test_known_disc_herniation_for_six_weeks_gives_lumbar_mri_and_neurology(kb, duration):
    result = run(kb, "loc_lumbar", "hx_disc_herniation", duration_days=duration)
    assert fired(result, "R10")
    assert_item(result, "mri_lumbar_spine", "routine", "hx_disc_herniation", "loc_lumbar")
    assert_referral(result, "neurology", "routine", "hx_disc_herniation")


def test_known_disc_herniation_with_thoracic_numbness_gives_neurology_but_no_lumbar_mri(kb):
    result = run(kb, "loc_interscapular", "hx_disc_herniation", duration_days=60)
    assert fired(result, "R10")
    assert_referral(result, "neurology", "routine", "hx_disc_herniation")
    assert "mri_lumbar_spine" not in items(result)


def test_known_disc_herniation_for_41_days_is_not_reimaged(kb):
    result = run(kb, "loc_lumbar", "hx_disc_herniation", duration_days=41)
    assert not fired(result, "R10")
    assert "mri_lumbar_spine" not in items(result)
    assert "neurology" not in referrals(result)


@pytest.mark.parametrize("finding, vascular", [("sx_leg_cramps", False), ("ex_peripheral_pulses_reduced", True)])
def test_leg_cramps_or_weak_pulses_give_a_leg_doppler(kb, finding, vascular):
    result = run(kb, "loc_lumbar", finding)
    assert fired(result, "R11")
    assert_item(result, "doppler_lower_limb", "routine", finding)
    if vascular:
        assert_referral(result, "vascular_surgery", "routine", finding)
    else:
        assert "vascular_surgery" not in referrals(result)


def test_no_leg_doppler_without_cramps_or_weak_pulses(kb):
    result = run(kb, "loc_lumbar", "sx_tingling")
    assert not fired(result, "R11")
    assert "doppler_lower_limb" not in items(result)


def test_dizziness_on_standing_gives_neck_doppler_and_ecg(kb):
    result = run(kb, "loc_interscapular", "sx_dizziness_on_standing")
    assert fired(result, "R12")
    for code in ("doppler_neck_vessels", "ecg"):
        assert_item(result, code, "routine", "sx_dizziness_on_standing")
    assert_referral(result, "neurology", "routine", "sx_dizziness_on_standing")


def test_dizziness_in_an_ectopic_pregnancy_is_not_the_dizziness_pathway(kb):
    result = run(
        kb,
        "loc_lumbar",
        "sx_dizziness_on_standing",
        "sx_pelvic_pain",
        "sx_missed_period",
        sex="female",
        age=28,
        pregnant=False,
    )
    assert fired(result, "E4")
    assert not fired(result, "R12")
    assert "doppler_neck_vessels" not in items(result)
    assert "doppler_neck_vessels" not in deferred_codes(result, "item")


@pytest.mark.parametrize("age, duration", [(44, 90), (20, 365), (30, 91)])
def test_inflammatory_back_pain_for_three_months_before_45_gives_crp_and_rheumatology(kb, age, duration):
    result = run(kb, "loc_lumbar", "sx_inflammatory_pattern", age=age, duration_days=duration)
    assert fired(result, "R13")
    assert_item(result, "lab_crp_esr", "routine", "sx_inflammatory_pattern")
    assert_referral(result, "rheumatology", "routine", "sx_inflammatory_pattern")


@pytest.mark.parametrize("age, duration", [(45, 90), (60, 400), (44, 89)])
def test_no_rheumatology_at_45_or_under_three_months(kb, age, duration):
    result = run(kb, "loc_lumbar", "sx_inflammatory_pattern", age=age, duration_days=duration)
    assert not fired(result, "R13")
    assert "rheumatology" not in referrals(result)


@pytest.mark.parametrize("location", THORACIC_LOCATIONS)
def test_cough_after_a_viral_infection_with_thoracic_numbness_gives_chest_xray_and_pulmonology(kb, location):
    result = run(kb, location, "sx_cough", "hx_recent_viral_infection", temperature_c=37.2)
    assert fired(result, "R14")
    assert result["disposition"] == "routine"
    assert_item(result, "xray_chest", "routine", "sx_cough", "hx_recent_viral_infection")
    assert_referral(result, "pulmonology", "routine", "sx_cough", "hx_recent_viral_infection")


@pytest.mark.parametrize(
    "location, extra",
    [("loc_interscapular", {"temperature_c": 38.0}), ("loc_lumbar", {})],
)
def test_post_viral_chest_pathway_needs_thoracic_numbness_and_no_fever(kb, location, extra):
    result = run(kb, location, "sx_cough", "hx_recent_viral_infection", **extra)
    assert not fired(result, "R14")
    assert referrals(result).get("pulmonology") != "routine"


def test_fever_turns_the_post_viral_chest_pathway_into_an_urgent_chest_infection(kb):
    result = run(kb, "loc_interscapular", "sx_cough", "hx_recent_viral_infection", "rf_fever", temperature_c=38.6)
    assert not fired(result, "R14") and fired(result, "U5")
    assert items(result)["xray_chest"] == "urgent"
    assert referrals(result) == {"pulmonology": "urgent"}
    assert "mri_thoracic_spine" not in items(result)


def test_restricted_arm_movement_gives_orthopedics(kb):
    result = run(kb, "loc_right_scapular", "sx_arm_movement_restricted")
    assert fired(result, "R15")
    assert_referral(result, "orthopedics", "routine", "sx_arm_movement_restricted")


def test_no_orthopedics_without_restricted_arms_or_deformity(kb):
    result = run(kb, "loc_right_scapular", "sx_tingling")
    assert not fired(result, "R15")
    assert "orthopedics" not in referrals(result)


def test_red_swollen_skin_gives_blood_count_and_inflammatory_markers(kb):
    result = run(kb, "loc_lumbar", "ex_skin_redness_swelling")
    assert fired(result, "R16")
    for code in ("lab_cbc", "lab_crp_esr"):
        assert_item(result, code, "routine", "ex_skin_redness_swelling")
    assert result["disposition"] == "routine"


def test_no_inflammatory_markers_without_skin_changes(kb):
    result = run(kb, "loc_lumbar", "sx_tingling")
    assert not fired(result, "R16")
    assert "lab_crp_esr" not in items(result)


@pytest.mark.parametrize(
    "location, finding",
    [
        ("loc_interscapular", "ex_intercostal_tenderness"),
        ("loc_left_scapular", "sx_acute_paroxysmal_pain"),
        ("loc_whole_spine", "sx_acute_paroxysmal_pain"),
    ],
)
def test_intercostal_neuralgia_gives_ecg_and_neurology(kb, location, finding):
    result = run(kb, location, finding)
    assert fired(result, "R17")
    assert_item(result, "ecg", "routine", finding)
    assert_referral(result, "neurology", "routine", finding)


def test_paroxysmal_pain_without_thoracic_numbness_is_not_intercostal_neuralgia(kb):
    result = run(kb, "loc_lumbar", "sx_acute_paroxysmal_pain")
    assert not fired(result, "R17")
    assert "ecg" not in items(result)
    assert "neurology" not in referrals(result)


@pytest.mark.parametrize("location", THORACIC_LOCATIONS)
def test_known_heart_disease_with_thoracic_numbness_gives_ecg_and_cardiology(kb, location):
    result = run(kb, location, "hx_heart_disease", age=60)
    assert fired(result, "R18")
    assert_item(result, "ecg", "routine", "hx_heart_disease", location)
    assert_referral(result, "cardiology", "routine", "hx_heart_disease")


def test_known_heart_disease_with_lumbar_numbness_only_is_not_the_cardiology_pathway(kb):
    result = run(kb, "loc_lumbar", "hx_heart_disease", age=60)
    assert not fired(result, "R18")
    assert "cardiology" not in referrals(result)


@pytest.mark.parametrize("location", LOCATIONS)
def test_minor_trauma_gives_traumatology_and_no_xray_without_tenderness(kb, location):
    result = run(kb, location, "hx_minor_trauma", age=40, absent=["ex_paravertebral_tenderness"])
    assert fired(result, "R19")
    assert_referral(result, "traumatology", "routine", "hx_minor_trauma")
    assert not SPINE_IMAGING & set(items(result))


@pytest.mark.parametrize("location", LOCATIONS)
def test_minor_trauma_with_paravertebral_tenderness_gives_region_xray(kb, location):
    result = run(kb, location, "hx_minor_trauma", "ex_paravertebral_tenderness", age=40)
    assert fired(result, "R19")
    for code in REGION_XRAY[location]:
        assert_item(result, code, "routine", "hx_minor_trauma", "ex_paravertebral_tenderness")
    assert_referral(result, "traumatology", "routine", "hx_minor_trauma")


def test_no_traumatology_without_trauma(kb):
    result = run(kb, "loc_lumbar", "ex_paravertebral_tenderness", "sx_tingling")
    assert not fired(result, "R19")
    assert "traumatology" not in referrals(result)


# -- observe ---------------------------------------------------------------------------------------


def test_a_single_episode_after_a_static_posture_is_observed_with_advice(kb):
    result = run(
        kb,
        "loc_lumbar",
        "pattern_positional",
        "hx_prolonged_static_posture",
        sex="female",
        age=34,
        pregnant=False,
        duration_days=2,
    )
    assert result["disposition"] == "observe"
    assert result["items"] == []
    assert result["referrals"] == []
    assert result["deferred"] == []
    assert result["advice"] and all(result["advice"])
    assert result["review"]
    assert "red_flags_not_screened" not in warning_codes(result)


@pytest.mark.parametrize(
    "change",
    [
        {"codes": ("pattern_recurrent",)},  # recurrent numbness
        {"screen": None},  # red flags not screened
        {"codes": ("rf_night_pain",)},  # a red flag present
        {"codes": ("sx_tingling",)},  # a routine rule fires
        {"temperature_c": 38.0},  # measured fever
    ],
)
def test_not_observed_when_recurrent_unscreened_or_a_rule_fires(kb, change):
    change = dict(change)
    codes = change.pop("codes", ())
    result = run(
        kb,
        "loc_lumbar",
        "pattern_positional",
        "hx_prolonged_static_posture",
        *codes,
        sex="female",
        age=34,
        pregnant=False,
        duration_days=2,
        **change,
    )
    assert result["disposition"] != "observe"
    assert result["advice"] == []
    assert result["review"] is None
    assert items(result)


# -- section 4: safety rules -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "location, xray, mri",
    [
        ("loc_lumbar", "xray_lumbar_spine", "mri_lumbar_spine"),
        ("loc_interscapular", "xray_thoracic_spine", "mri_thoracic_spine"),
    ],
)
def test_pregnancy_replaces_a_spine_xray_by_the_mri(kb, location, xray, mri):
    result = run(
        kb,
        location,
        "hx_minor_trauma",
        "ex_paravertebral_tenderness",
        sex="female",
        age=29,
        pregnant=True,
        duration_days=5,
    )
    assert fired(result, "S1")
    assert xray not in items(result)
    assert_item(result, mri, "routine", "hx_minor_trauma", "ex_paravertebral_tenderness")
    entry = withheld(result, xray)
    assert entry["replaced_by"] == mri
    assert entry["reason"] and entry["sources"]
    assert entry["rule"] == "S1"
    assert "lab_pregnancy_test" not in items(result)
    # The MRI's rationale says what it stands in for and why, not only the X-ray's purpose it copies.
    (row,) = [row for row in result["items"] if row["code"] == mri]
    swap = f"{kb.vocabulary.item_name(xray)} → {kb.vocabulary.item_name(mri)}: pregnant: ionising imaging replaced"
    assert swap in row["rationale"], row["rationale"]


def test_pregnancy_replaces_the_whole_spine_xrays_by_both_mris(kb):
    result = run(kb, "loc_whole_spine", "ex_posture_deformity", sex="female", age=29, pregnant=True)
    assert not {"xray_lumbar_spine", "xray_thoracic_spine"} & set(items(result))
    assert {"mri_lumbar_spine", "mri_thoracic_spine"} <= set(items(result))
    assert withheld(result, "xray_lumbar_spine")["replaced_by"] == "mri_lumbar_spine"
    assert withheld(result, "xray_thoracic_spine")["replaced_by"] == "mri_thoracic_spine"


@pytest.mark.parametrize("location", LOCATIONS)
def test_pregnancy_replaces_emergency_spine_ct_by_region_mri(kb, location):
    result = run(kb, location, "rf_major_trauma", "ex_leg_weakness", sex="female", age=30, pregnant=True)
    assert result["disposition"] == "emergency"
    assert "ct_spine" not in items(result)
    for code in REGION_MRI[location]:
        assert_item(result, code, "emergency", "rf_major_trauma", "ex_leg_weakness")
    entry = withheld(result, "ct_spine")
    assert entry["replaced_by"] in REGION_MRI[location]


def test_pregnancy_replaces_abdominal_ct_by_ultrasound(kb):
    result = run(kb, "loc_lumbar", "ex_abdominal_mass", sex="female", age=30, pregnant=True)
    assert "ct_abdomen" not in items(result)
    assert_item(result, "us_abdomen", "urgent", "ex_abdominal_mass")
    assert withheld(result, "ct_abdomen")["replaced_by"] == "us_abdomen"


def test_pregnancy_keeps_a_chest_xray_with_a_warning(kb):
    result = run(kb, "loc_interscapular", "rf_fever", "sx_cough", sex="female", age=30, pregnant=True)
    assert_item(result, "xray_chest", "urgent", "rf_fever", "sx_cough")
    assert "xray_chest" not in {row["code"] for row in result["withheld"]}
    (warning,) = [w for w in result["warnings"] if w["code"] == "ionising_imaging_in_pregnancy"]
    assert warning["items"] == ["xray_chest"]
    assert warning["message"]


def test_no_pregnancy_replacements_when_not_pregnant(kb):
    result = run(
        kb,
        "loc_lumbar",
        "hx_minor_trauma",
        "ex_paravertebral_tenderness",
        "ex_abdominal_mass",
        sex="female",
        age=29,
        pregnant=False,
    )
    assert {"xray_lumbar_spine", "ct_abdomen"} <= set(items(result))
    assert result["withheld"] == []
    assert "ionising_imaging_in_pregnancy" not in warning_codes(result)


@pytest.mark.parametrize("age", [12, 13, 30, 49, 50])
@pytest.mark.parametrize("pregnant", [False, None])
def test_a_woman_of_reproductive_age_gets_a_pregnancy_test_before_ionising_imaging(kb, age, pregnant):
    result = run(kb, "loc_interscapular", "hx_scoliosis_kyphosis", sex="female", age=age, pregnant=pregnant)
    assert "xray_thoracic_spine" in items(result)
    row = item_row(result, "lab_pregnancy_test")
    assert row["urgency"] == "routine"
    assert row["rationale"] and row["sources"]
    assert "hx_scoliosis_kyphosis" in row["triggered_by"]


def test_pregnancy_test_takes_the_urgency_of_the_ionising_item(kb):
    result = run(kb, "loc_lumbar", "rf_weight_loss", sex="female", age=30, pregnant=False)
    assert item_row(result, "lab_pregnancy_test")["urgency"] == "urgent"


@pytest.mark.parametrize(
    "sex, age, pregnant",
    [("female", 51, False), ("female", 11, False), ("female", 30, True), ("male", 30, None)],
)
def test_no_pregnancy_test_outside_12_to_50_for_men_or_when_pregnant(kb, sex, age, pregnant):
    result = run(kb, "loc_interscapular", "sx_cough", "hx_recent_viral_infection", sex=sex, age=age, pregnant=pregnant)
    assert "xray_chest" in items(result)
    assert "lab_pregnancy_test" not in items(result)


def test_no_pregnancy_test_without_ionising_imaging(kb):
    result = run(kb, "loc_lumbar", "hx_gyn_disease", "sx_menstrual_related", sex="female", age=31, pregnant=False)
    assert "lab_pregnancy_test" not in items(result)


@pytest.mark.parametrize(
    "location, mri_codes",
    [
        ("loc_lumbar", ["mri_lumbar_spine"]),
        ("loc_interscapular", ["mri_thoracic_spine"]),
        ("loc_whole_spine", ["mri_thoracic_spine", "mri_lumbar_spine"]),
    ],
)
def test_mri_contraindication_replaces_spine_mri_by_ct(kb, location, mri_codes):
    result = run(kb, location, "rf_cancer_history", "hx_mri_contraindication")
    assert fired(result, "S3")
    assert not set(mri_codes) & set(items(result))
    assert_item(result, "ct_spine", "urgent", "rf_cancer_history")
    for code in mri_codes:
        entry = withheld(result, code)
        assert entry["replaced_by"] == "ct_spine"
        assert entry["rule"] == "S3"
        assert entry["reason"]


def test_mri_contraindication_in_a_young_woman_also_adds_a_pregnancy_test(kb):
    result = run(kb, "loc_lumbar", "rf_cancer_history", "hx_mri_contraindication", sex="female", age=40, pregnant=False)
    assert "ct_spine" in items(result)
    assert "lab_pregnancy_test" in items(result)


def test_mri_contraindication_in_pregnancy_withholds_the_mri_without_a_substitute(kb):
    result = run(kb, "loc_lumbar", "rf_cancer_history", "hx_mri_contraindication", sex="female", age=30, pregnant=True)
    assert fired(result, "S3-pregnant")
    assert not fired(result, "S3")
    assert not {"mri_lumbar_spine", "ct_spine", "xray_lumbar_spine"} & set(items(result))
    entry = withheld(result, "mri_lumbar_spine")
    assert entry["replaced_by"] is None
    assert entry["reason"]
    assert referrals(result)  # a specialist decides


def test_mri_contraindication_in_pregnancy_with_no_other_referral_falls_back_to_neurology(kb):
    # U2 orders an X-ray (S1: replaced by the MRI, S3-pregnant: withheld) and no referral.
    result = run(
        kb, "loc_interscapular", "rf_weight_loss", "hx_mri_contraindication", sex="female", age=30, pregnant=True
    )
    assert not {"xray_thoracic_spine", "mri_thoracic_spine", "ct_spine"} & set(items(result))
    assert withheld(result, "xray_thoracic_spine")["replaced_by"] == "mri_thoracic_spine"
    assert withheld(result, "mri_thoracic_spine")["replaced_by"] is None
    assert "neurology" in referrals(result)


def test_spine_mri_stays_without_a_contraindication(kb):
    result = run(kb, "loc_lumbar", "rf_cancer_history", absent=["hx_mri_contraindication"])
    assert "mri_lumbar_spine" in items(result)
    assert "ct_spine" not in items(result)
    assert result["withheld"] == []


@pytest.mark.parametrize(
    "codes, imaging",
    [
        (("loc_lumbar", "hx_kidney_disease", "rf_cancer_history"), "mri_lumbar_spine"),
        (("loc_lumbar", "hx_kidney_disease", "ex_abdominal_mass"), "ct_abdomen"),
        (("loc_lumbar", "hx_kidney_disease", "rf_major_trauma", "ex_leg_weakness"), "ct_spine"),
    ],
)
def test_kidney_disease_with_ct_or_mri_warns_about_contrast(kb, codes, imaging):
    result = run(kb, *codes)
    (warning,) = [w for w in result["warnings"] if w["code"] == "contrast_and_kidney_disease"]
    assert imaging in warning["items"]
    assert "hx_kidney_disease" in warning["findings"]
    assert warning["message"]


def test_kidney_disease_without_ct_or_mri_has_no_contrast_warning(kb):
    result = run(kb, "loc_lumbar", "hx_kidney_disease")
    assert "us_kidneys" in items(result)
    assert "contrast_and_kidney_disease" not in warning_codes(result)


def test_ct_or_mri_without_kidney_disease_has_no_contrast_warning(kb):
    result = run(kb, "loc_lumbar", "rf_cancer_history")
    assert "mri_lumbar_spine" in items(result)
    assert "contrast_and_kidney_disease" not in warning_codes(result)


# -- edges found in review --------------------------------------------------------------------------


def test_cardiac_symptoms_with_a_chest_infection_still_get_an_ecg(kb):
    result = run(kb, "loc_interscapular", "rf_fever", "sx_cough", "sx_chest_heaviness")
    assert "xray_chest" in items(result)
    assert_item(result, "ecg", "urgent", "sx_chest_heaviness")
    assert referrals(result)["cardiology"] == "urgent"


def test_breathlessness_explained_by_a_chest_infection_is_not_called_cardiac(kb):
    result = run(kb, "loc_interscapular", "rf_fever", "sx_cough", "sx_dyspnea")
    assert "ecg" not in items(result) and "cardiology" not in referrals(result)


def test_early_sciatica_with_a_red_flag_is_not_told_conservative_care_first(kb):
    result = run(kb, "loc_lumbar", "sx_leg_pain", "rf_saddle_anesthesia")
    assert result["not_indicated"] == []
    result = run(kb, "loc_lumbar", "sx_leg_pain", "rf_weight_loss")
    assert not any("conservative care" in row["reason"] for row in result["not_indicated"])


def test_not_indicated_never_contradicts_ordered_spine_imaging(kb):
    result = run(kb, "loc_lumbar", "ex_vesicular_rash", "hx_scoliosis_kyphosis")
    assert "xray_lumbar_spine" in items(result)
    assert result["not_indicated"] == []


def test_an_emergency_item_keeps_the_triggers_and_sources_of_lower_tiers(kb):
    result = run(kb, "loc_lumbar", "rf_saddle_anesthesia", "rf_cancer_history")
    mri = assert_item(result, "mri_lumbar_spine", "emergency", "rf_saddle_anesthesia", "rf_cancer_history")
    assert {"E1", "U1"} <= set(mri["rules"])
    assert "mri_lumbar_spine" not in {row["code"] for row in result["deferred"]}


def test_baseline_bloods_name_the_numbness_when_nothing_else_triggered_them(kb):
    result = run(kb, "loc_lumbar", "pattern_positional", screen=None)
    assert_item(result, "lab_cbc", "routine", "loc_lumbar")


def test_safety_rules_are_listed_as_fired_only_when_they_acted(kb):
    result = run(kb, "loc_lumbar", "rf_weight_loss", sex="female", age=30, pregnant=True)
    assert "S1" in result["fired_rules"] and "S1-kept" not in result["fired_rules"]
    result = run(kb, "loc_lumbar", "hx_kidney_disease")
    assert "S4" not in result["fired_rules"]
    result = run(kb, "loc_lumbar", "pattern_recurrent", sex="female", age=30, pregnant=False)
    assert "S2" not in result["fired_rules"]


def test_withheld_mri_in_pregnancy_is_decided_by_a_specialist_as_urgently_as_it_was_needed(kb):
    result = run(kb, "loc_lumbar", "rf_weight_loss", "hx_mri_contraindication", sex="female", age=30, pregnant=True)
    withheld = {row["code"]: row for row in result["withheld"]}
    assert withheld["mri_lumbar_spine"]["replaced_by"] is None
    assert referrals(result)["neurology"] == "urgent"
    assert "gynecology" in referrals(result)


def test_no_fallback_referral_when_a_specialist_already_decides_as_soon(kb):
    result = run(
        kb,
        "loc_lumbar",
        "rf_saddle_anesthesia",
        "pattern_recurrent",
        "hx_mri_contraindication",
        sex="female",
        age=30,
        pregnant=True,
    )
    assert "mri_lumbar_spine" in {row["code"] for row in result["withheld"]}
    assert referrals(result) == {"neurosurgery": "emergency"}
    assert "neurology" in {row["code"] for row in result["deferred"] if row["kind"] == "referral"}
