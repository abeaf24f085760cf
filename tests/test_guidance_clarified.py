"""The first-visit rules as clarified (GUIDANCE 0.2, 0.6 and U6): the safety rules apply to what waits
behind an emergency, stewardship never contradicts a red flag, and immunosuppression is a reason of its own."""

from tests.cases import case, items, referrals
from workups.engine import evaluate, get_knowledge_base

KB = get_knowledge_base()
# A heart attack (E2) in a woman with thoracic numbness and weight loss: U2's thoracic X-ray waits behind it.
CARDIAC_WITH_WEIGHT_LOSS = {
    "loc_interscapular": True,
    "sx_chest_heaviness": True,
    "sx_pain_radiating_heart": True,
    "rf_weight_loss": True,
}


def deferred(result, kind="item"):
    return {row["code"]: row["urgency"] for row in result["deferred"] if row["kind"] == kind}


def withheld(result):
    return {row["code"]: row for row in result["withheld"]}


def test_a_deferred_xray_for_a_pregnant_patient_waits_as_its_mri():
    result = evaluate(KB, case(sex="female", age=30, pregnant=True, findings=CARDIAC_WITH_WEIGHT_LOSS))

    assert result["disposition"] == "emergency"
    assert "xray_thoracic_spine" not in deferred(result) and deferred(result)["mri_thoracic_spine"] == "urgent"
    assert withheld(result)["xray_thoracic_spine"]["deferred"] is True
    assert withheld(result)["xray_thoracic_spine"]["replaced_by"] == "mri_thoracic_spine"


def test_the_defect_a_deferred_xray_for_a_pregnant_patient_who_cannot_have_mri_no_longer_vanishes():
    findings = {**CARDIAC_WITH_WEIGHT_LOSS, "hx_mri_contraindication": True}
    result = evaluate(KB, case(sex="female", age=30, pregnant=True, findings=findings))

    spine = {"xray_thoracic_spine", "mri_thoracic_spine", "ct_spine"}
    assert not spine & set(items(result)) and not spine & set(deferred(result))
    # Both steps are on record: the X-ray replaced by MRI, and that MRI withheld with no alternative.
    assert withheld(result)["xray_thoracic_spine"]["replaced_by"] == "mri_thoracic_spine"
    assert withheld(result)["mri_thoracic_spine"]["replacements"] == []
    assert withheld(result)["mri_thoracic_spine"]["deferred"] is True
    # S3's deciding referral waits with the withheld MRI, at its urgency.
    assert deferred(result, "referral")["neurology"] == "urgent"
    assert "neurology" not in referrals(result)
    # And nothing says spine imaging is not indicated: it was, and could not be done.
    assert result["not_indicated"] == []


def test_a_deferred_ionising_study_for_a_woman_of_reproductive_age_brings_a_deferred_pregnancy_test():
    result = evaluate(KB, case(sex="female", age=30, pregnant=False, findings=CARDIAC_WITH_WEIGHT_LOSS))

    assert deferred(result)["xray_thoracic_spine"] == "urgent"
    assert deferred(result)["lab_pregnancy_test"] == "urgent"
    assert "lab_pregnancy_test" not in items(result)


def test_no_deferred_pregnancy_test_for_a_man_or_a_woman_over_50():
    for sex, age in (("male", 30), ("female", 51)):
        result = evaluate(
            KB, case(sex=sex, age=age, pregnant=None if sex == "male" else False, findings=CARDIAC_WITH_WEIGHT_LOSS)
        )
        assert "lab_pregnancy_test" not in deferred(result)


def test_stewardship_says_nothing_about_spine_imaging_when_a_red_flag_is_present():
    # Night pain alone fires U2 with an X-ray; with the X-ray declined by the guidance elsewhere this still
    # must hold: any red flag present means "no red flags" would be false.
    for findings in (
        {"loc_lumbar": True, "rf_fever": True, "sx_dysuria": True},
        {"loc_lumbar": True, "rf_bowel_incontinence": False, "rf_immunosuppression": True},
    ):
        result = evaluate(KB, case(sex="female", age=40, pregnant=False, findings=findings))
        assert not any(KB.vocabulary.is_spine_imaging(row["code"]) for row in result["not_indicated"])


def test_stewardship_still_speaks_when_no_red_flag_is_present_and_no_spine_study_is_considered():
    result = evaluate(KB, case(findings={"loc_lumbar": True, "pattern_positional": True}))

    assert {row["code"] for row in result["not_indicated"]} == {"xray_lumbar_spine", "mri_lumbar_spine"}


def test_u6_immunosuppression_fires_by_itself_even_when_a_kidney_infection_explains_the_fever():
    findings = {"loc_lumbar": True, "rf_fever": True, "sx_dysuria": True, "rf_immunosuppression": True}
    result = evaluate(KB, case(sex="female", age=40, pregnant=False, findings=findings))

    assert {"U4", "U6"} <= set(result["fired_rules"])
    assert referrals(result)["infectious_disease"] == "urgent"
    infection = next(row for row in result["referrals"] if row["specialty"] == "infectious_disease")
    assert "rf_immunosuppression" in infection["triggered_by"]


def test_u6_a_fever_explained_by_a_kidney_infection_alone_is_still_not_a_spinal_infection():
    result = evaluate(
        KB,
        case(sex="female", age=40, pregnant=False, findings={"loc_lumbar": True, "rf_fever": True, "sx_dysuria": True}),
    )

    assert "U6" not in result["fired_rules"]
